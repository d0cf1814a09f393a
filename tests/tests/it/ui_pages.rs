//! The web pages under `/ui/` in a real browser (headless chromium through WebDriver) against
//! authd + registryd: logins and what each account sees (alice's catalog and delete, bob's
//! read-only pages, anonymous `public/*` only), a wrong password, a forged and an expired
//! cookie, stored HTML shown as text, a form posted without its CSRF token; and the pages of
//! an open and an htpasswd registry over plain HTTP. Screenshots land in
//! `target/ui-screenshots/<test>/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use berth_tests::authd::{AuthSpec, User};
use berth_tests::browser::Browser;
use berth_tests::content::{artifact, empty_config, index, Content, Image};
use berth_tests::env::TestEnv;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// A label and an annotation that would run script if shown unescaped.
const XSS_LABEL: &str = "<img src=x onerror=\"document.title='owned'\" id=xss-label>";
const XSS_ANNOTATION: &str = "<script id=xss-annotation>document.title='owned'</script>";

/// An image whose config has an entrypoint, cmd, env, ports, labels (one hostile) and history,
/// and whose manifest carries a hostile annotation.
fn rich_image() -> (Content, Vec<Content>) {
    let layer = Content::tar_layer("app.txt", 3000);
    let config = Content::json(
        &json!({
            "architecture": "amd64", "os": "linux",
            "config": {
                "Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "Env": ["GREETING=hello", "PATH=/bin"],
                "ExposedPorts": {"8080/tcp": {}}, "Labels": {"xss": XSS_LABEL, "team": "alice"},
                "WorkingDir": "/srv"
            },
            "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "COPY app.txt /srv"}],
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        }),
        OCI_CONFIG,
    );
    let manifest = Content::json(
        &json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": config.descriptor(), "layers": [layer.descriptor()],
            "annotations": {"note": XSS_ANNOTATION},
        }),
        OCI_MANIFEST,
    );
    (manifest, vec![config, layer])
}

/// alice/app:v1 (rich), alice/app:v2, alice/multi:latest (an index of two platforms) with a
/// signature referring to it, public/hello:latest.
async fn seed(env: &TestEnv) -> String {
    let reg = env.registry();
    let token = env
        .admin_token(&["alice/app", "alice/multi", "public/hello"])
        .await;
    let t = Some(token.as_str());
    let (manifest, blobs) = rich_image();
    for b in &blobs {
        reg.push_blob("alice/app", b, t).await;
    }
    reg.push_manifest("alice/app", "v1", &manifest, t).await;
    reg.push_image("alice/app", "v2", &Image::random(1), t)
        .await;
    let (amd, arm) = (
        Image::random(2),
        Image::oci("arm64", vec![Content::tar_layer("a", 100)]),
    );
    for image in [&amd, &arm] {
        for b in image.blobs() {
            reg.push_blob("alice/multi", b, t).await;
        }
        reg.push_manifest("alice/multi", &image.manifest.digest, &image.manifest, t)
            .await;
    }
    let idx = index(OCI_INDEX, &[("amd64", &amd), ("arm64", &arm)]);
    reg.push_manifest("alice/multi", "latest", &idx, t).await;
    let sig_layer = Content::random(64);
    reg.push_blob("alice/multi", &empty_config(), t).await;
    reg.push_blob("alice/multi", &sig_layer, t).await;
    let sig = artifact(
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        &sig_layer,
        &idx,
    );
    reg.push_manifest("alice/multi", &sig.digest, &sig, t).await;
    reg.push_image("public/hello", "latest", &Image::random(1), t)
        .await;
    manifest.digest
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Logs in over plain HTTP; the `Cookie` header value of the session.
async fn login_cookie(base: &str, user: &str, password: &str) -> String {
    let resp = http()
        .post(format!("{base}/ui/login"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login as {user}");
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui/"] {
        assert!(set.contains(part), "{set}");
    }
    set.split(';').next().unwrap().to_owned()
}

/// The CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn ui_logins_access_and_escaping_in_a_browser() {
    let env = TestEnv::standard().await;
    let v1 = seed(&env).await;
    let base = env.registryd.url();
    let b = Browser::start("ui_logins_access_and_escaping_in_a_browser").await;

    // Anonymous: no catalog, a box to open a repository; public/* opens, alice/* does not.
    b.goto(&format!("{base}/ui/")).await;
    assert!(b.find_all("#repositories").await.is_empty());
    b.screenshot("01-anonymous-repositories").await;
    b.type_into("#name", "public/hello").await;
    b.follow("form.open button").await;
    assert_eq!(b.path().await, "/ui/r/public/hello");
    assert!(b.text("#tags").await.contains("latest"));
    b.goto(&format!("{base}/ui/r/alice/app")).await;
    assert!(b.find_all("#tags").await.is_empty());
    assert!(b.text("main").await.contains("may not pull"));

    // A wrong password: the form again, with an error.
    b.log_in(&base, "alice", "wrong-pass").await;
    assert!(b
        .text("#login-error")
        .await
        .contains("Wrong user name or password"));
    b.screenshot("02-wrong-password").await;

    // alice: the catalog with tag counts, the tags, one image with its layers and config.
    b.log_in(&base, "alice", "alice-pass").await;
    assert_eq!(b.path().await, "/ui/");
    let repos = b.text("#repositories").await;
    for name in ["alice/app", "alice/multi", "public/hello"] {
        assert!(repos.contains(name), "{repos}");
    }
    assert!(b.text("header.top").await.contains("alice"));
    b.screenshot("03-alice-repositories").await;
    b.type_into("#prefix", "public/").await;
    b.follow("form.filter button").await;
    let filtered = b.text("#repositories").await;
    assert!(
        filtered.contains("public/hello") && !filtered.contains("alice/app"),
        "{filtered}"
    );

    b.goto(&format!("{base}/ui/r/alice/app")).await;
    let tags = b.text("#tags").await;
    assert!(
        tags.contains("v1") && tags.contains("v2") && tags.contains("OCI image"),
        "{tags}"
    );
    assert!(b.text("p.lead").await.starts_with("2 tags"));
    b.screenshot("04-alice-tags").await;

    b.follow("#tags a[href$='/-/v1']").await;
    assert_eq!(b.path().await, "/ui/r/alice/app/-/v1");
    assert_eq!(b.text("#digest").await, v1);
    assert_eq!(b.find_all("#layers-table tbody tr").await.len(), 1);
    assert_eq!(b.text("#entrypoint").await, "[\"/bin/app\"]");
    assert_eq!(b.text("#cmd").await, "[\"--serve\"]");
    assert!(b.text("#env").await.contains("GREETING=hello"));
    assert!(b.text("#ports").await.contains("8080/tcp"));
    assert!(b.text("#history").await.contains("COPY app.txt /srv"));
    // Stored HTML is text: visible as written, no element made of it, no script run.
    assert!(b.text("#labels").await.contains(XSS_LABEL));
    assert!(b.text("#annotations-table").await.contains(XSS_ANNOTATION));
    assert!(b.find_all("#xss-label, #xss-annotation").await.is_empty());
    assert_ne!(b.client.title().await.unwrap(), "owned");
    assert!(!b.find_all("a.danger").await.is_empty(), "alice may delete");
    b.screenshot("05-alice-image").await;

    // An index: its platforms, and the signature referring to it.
    b.goto(&format!("{base}/ui/r/alice/multi/-/latest")).await;
    let platforms = b.text("#platforms-table").await;
    assert!(
        platforms.contains("linux/amd64") && platforms.contains("linux/arm64"),
        "{platforms}"
    );
    assert!(b
        .text("main")
        .await
        .contains("application/vnd.dev.cosign.artifact.sig.v1+json"));
    b.screenshot("06-alice-index").await;

    // Deleting a tag: a confirmation, then the tag is gone.
    b.goto(&format!("{base}/ui/r/alice/app/-/v2")).await;
    b.follow("a.danger[href$='/-/v2/delete']").await;
    b.screenshot("07-delete-confirmation").await;
    b.follow("form.confirm button").await;
    assert!(b.path().await.starts_with("/ui/r/alice/app?deleted="));
    assert!(!b.text("#tags").await.contains("v2"));

    // On a phone-sized window the image page still reads.
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{base}/ui/r/alice/app/-/v1")).await;
    b.screenshot("08-phone-image").await;
    b.client.set_window_size(1280, 900).await.unwrap();

    // bob: reads, no delete anywhere, no catalog.
    b.follow("header form button").await;
    b.log_in(&base, "bob", "bob-pass").await;
    assert!(b.find_all("#repositories").await.is_empty());
    b.goto(&format!("{base}/ui/r/alice/app/-/v1")).await;
    assert_eq!(b.text("#digest").await, v1);
    assert!(
        b.find_all("a.danger").await.is_empty(),
        "bob may not delete"
    );
    b.goto(&format!("{base}/ui/r/alice/app")).await;
    assert!(b.find_all("a.danger").await.is_empty());
    b.screenshot("09-bob-tags").await;
    b.goto(&format!("{base}/ui/r/alice/app/-/v1/delete")).await;
    assert!(b.text("main").await.contains("may not delete"));

    // A forged cookie: the login page.
    b.client.delete_all_cookies().await.unwrap();
    // Set from a script: a cookie named like the session's, whose value registryd never issued.
    b.client
        .execute(
            "document.cookie = 'berth_session=forged-session-id; path=/ui/'",
            vec![],
        )
        .await
        .unwrap();
    b.goto(&format!("{base}/ui/r/public/hello")).await;
    assert_eq!(b.path().await, "/ui/login?expired=1");
    assert!(b.text("main").await.contains("session has ended"));
    b.screenshot("10-forged-cookie").await;
    b.close().await;
}

#[tokio::test]
async fn ui_forms_need_their_csrf_token_and_sessions_expire() {
    let env = TestEnv::with_auth_merged(
        AuthSpec::standard(),
        true,
        json!({"ui": {"sessionlifetime": "3s"}}),
    )
    .await;
    seed(&env).await;
    let base = env.registryd.url();
    let cookie = login_cookie(&base, "alice", "alice-pass").await;
    let delete = format!("{base}/ui/r/alice/app/-/v1/delete");
    for form in [vec![], vec![("csrf", "guessed")]] {
        let resp = http()
            .post(&delete)
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{form:?}");
    }
    let page = http()
        .get(format!("{base}/ui/r/alice/app"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(
        page.text().await.unwrap().contains(">v1<"),
        "v1 survived the refused posts"
    );
    let logout = http()
        .post(format!("{base}/ui/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        logout.status(),
        StatusCode::FORBIDDEN,
        "logout without its token"
    );

    let confirm = http()
        .get(&delete)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&confirm.text().await.unwrap());
    let resp = http()
        .post(&delete)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let token = env.token("alice", &["repository:alice/app:pull"]).await;
    let gone = env
        .registry()
        .get("/v2/alice/app/manifests/v1", Some(&token))
        .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // A session past ui.sessionlifetime: the login page.
    let b = Browser::start("ui_forms_need_their_csrf_token_and_sessions_expire").await;
    b.log_in(&base, "alice", "alice-pass").await;
    assert_eq!(b.path().await, "/ui/");
    tokio::time::sleep(Duration::from_secs(4)).await;
    b.goto(&format!("{base}/ui/r/alice/app")).await;
    assert_eq!(b.path().await, "/ui/login?expired=1");
    b.screenshot("expired-session").await;
    b.close().await;
}

#[tokio::test]
async fn ui_open_and_htpasswd_registries() {
    let open = TestEnv::open().await;
    open.registry()
        .push_image("team/app", "v1", &Image::random(1), None)
        .await;
    let base = open.registryd.url();
    let page = http().get(format!("{base}/ui/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("team/app") && html.contains("open registry"),
        "{html}"
    );
    let tags = http()
        .get(format!("{base}/ui/r/team/app"))
        .send()
        .await
        .unwrap();
    let html = tags.text().await.unwrap();
    assert!(html.contains("Delete…"), "an open registry deletes");
    let refused = http()
        .post(format!("{base}/ui/r/team/app/-/v1/delete"))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    for (path, status) in [
        ("/ui/r/Bad..Name", StatusCode::NOT_FOUND),
        ("/ui/r/team/app/-/sha256:zz", StatusCode::NOT_FOUND),
        ("/ui/r/team/none", StatusCode::NOT_FOUND),
        ("/ui/open?name=..%2Fetc", StatusCode::BAD_REQUEST),
        ("/ui/nothing", StatusCode::NOT_FOUND),
    ] {
        let resp = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), status, "{path}");
    }

    let users = [User::new("carol", "carol-pass")];
    let htpasswd = TestEnv::htpasswd(&users).await;
    let base = htpasswd.registryd.url();
    let anonymous = http().get(format!("{base}/ui/")).send().await.unwrap();
    assert!(anonymous.text().await.unwrap().contains("log in"));
    let wrong = http()
        .post(format!("{base}/ui/login"))
        .form(&[("username", "carol"), ("password", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let cookie = login_cookie(&base, "carol", "carol-pass").await;
    let page = http()
        .get(format!("{base}/ui/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Signed in as") && html.contains("Names starting with"),
        "{html}"
    );

    let off = TestEnv::with_auth_merged(
        AuthSpec::standard(),
        true,
        json!({"ui": {"enabled": false}}),
    )
    .await;
    let resp = http()
        .get(format!("{}/ui/", off.registryd.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
