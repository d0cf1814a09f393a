//! The auth schemes end to end: Bearer tokens (scope, mount source, expiry, foreign keys),
//! htpasswd Basic auth; plus TLS serving, `/healthz` and `/metrics`.

use std::time::Duration;

use token::{Access, Claims, KidStyle, SigningKey};

use crate::{client, data_dir, push_blob, Server};

/// A token signing key (EC P-256) and its certificate, as PEM.
fn signer() -> (SigningKey, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["token".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = cert.pem();
    (
        SigningKey::from_pem(
            key.serialize_pem().as_bytes(),
            pem.as_bytes(),
            KidStyle::Libtrust,
        )
        .unwrap(),
        pem,
    )
}

fn bearer(key: &SigningKey, aud: &str, access: &[(&str, &str, &[&str])]) -> String {
    let access = access
        .iter()
        .map(|(k, n, a)| Access {
            kind: (*k).into(),
            name: (*n).into(),
            actions: a.iter().map(|s| (*s).to_owned()).collect(),
        })
        .collect();
    let claims = Claims::new("berth-auth", "alice", aud, Duration::from_secs(300), access);
    format!("Bearer {}", key.sign(&claims).unwrap())
}

async fn token_server() -> (tempfile::TempDir, Server, SigningKey) {
    let (dir, data) = data_dir();
    let (key, pem) = signer();
    let bundle = dir.path().join("token.crt");
    std::fs::write(&bundle, pem).unwrap();
    let auth = format!(
        "auth: {{token: {{realm: \"http://127.0.0.1:1/auth\", service: registry, issuer: berth-auth, rootcertbundle: {}}}}}\n",
        bundle.display()
    );
    let server = Server::start(&data, &auth, None).await;
    (dir, server, key)
}

#[tokio::test]
async fn tokens_are_checked_for_scope_audience_expiry_and_key() {
    let (_dir, server, key) = token_server().await;
    let c = client();
    let get = |path: &str, auth: Option<String>| {
        let mut req = c.get(format!("{}{path}", server.url));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    let resp = get("/v2/", None).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer realm="http://127.0.0.1:1/auth",service="registry""#
    );
    assert_eq!(
        get("/v2/", Some(bearer(&key, "registry", &[])))
            .await
            .unwrap()
            .status(),
        200
    );

    let pull_only = bearer(&key, "registry", &[("repository", "team/app", &["pull"])]);
    let resp = get("/v2/team/app/tags/list", Some(pull_only.clone()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404, "authorized, but nothing pushed yet");
    let resp = c
        .post(format!("{}/v2/team/app/blobs/uploads/", server.url))
        .header("authorization", &pull_only)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"scope="repository:team/app:pull,push""#)
            && challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");

    for bad in [
        bearer(
            &key,
            "other-service",
            &[("repository", "team/app", &["pull"])],
        ),
        bearer(
            &signer().0,
            "registry",
            &[("repository", "team/app", &["pull"])],
        ),
        "Bearer not.a.jwt".to_owned(),
    ] {
        let resp = get("/v2/team/app/tags/list", Some(bad)).await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(!resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope"));
    }
    let mut expired = Claims::new(
        "berth-auth",
        "alice",
        "registry",
        Duration::from_secs(1),
        vec![],
    );
    expired.exp -= 3600;
    expired.nbf -= 3600;
    expired.iat -= 3600;
    let expired = format!("Bearer {}", key.sign(&expired).unwrap());
    assert_eq!(get("/v2/", Some(expired)).await.unwrap().status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn mounting_needs_pull_on_the_source_repository() {
    let (_dir, server, key) = token_server().await;
    let c = client();
    let owner = bearer(
        &key,
        "registry",
        &[("repository", "src/app", &["pull", "push"])],
    );
    let d = push_blob(&c, &server.url, "src/app", b"secret layer", Some(&owner)).await;
    let mount = |auth: String| {
        c.post(format!(
            "{}/v2/dst/app/blobs/uploads/?mount={d}&from=src/app",
            server.url
        ))
        .header("authorization", auth)
        .send()
    };
    let no_pull = bearer(
        &key,
        "registry",
        &[("repository", "dst/app", &["pull", "push"])],
    );
    let resp = mount(no_pull).await.unwrap();
    assert_eq!(
        resp.status(),
        202,
        "without pull on the source: a plain upload session"
    );
    assert!(resp.headers().contains_key("docker-upload-uuid"));
    let with_pull = bearer(
        &key,
        "registry",
        &[
            ("repository", "dst/app", &["pull", "push"]),
            ("repository", "src/app", &["pull"]),
        ],
    );
    let resp = mount(with_pull.clone()).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["docker-content-digest"], d.as_str());
    let resp = c
        .get(format!("{}/v2/dst/app/blobs/{d}", server.url))
        .header("authorization", with_pull)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"secret layer");
    server.stop().await;
}

#[tokio::test]
async fn htpasswd_mode_wants_basic_credentials() {
    let (dir, data) = data_dir();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("alice:{}\n", bcrypt::hash("s3cret", 4).unwrap()),
    )
    .unwrap();
    let server = Server::start(
        &data,
        &format!(
            "auth: {{htpasswd: {{realm: berth, path: {}}}}}\n",
            htpasswd.display()
        ),
        None,
    )
    .await;
    let c = client();
    let resp = c.get(format!("{}/v2/", server.url)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], r#"Basic realm="berth""#);
    let resp = c
        .get(format!("{}/v2/", server.url))
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = c
        .get(format!("{}/v2/", server.url))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let resp = c
        .post(format!("{}/v2/x/blobs/uploads/", server.url))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    server.stop().await;
}

#[tokio::test]
async fn serves_tls_healthz_and_metrics() {
    let (dir, data) = data_dir();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let acceptor = registryd::app::tls_acceptor(&cert_path, &key_path).unwrap();
    let server = Server::start(&data, "", Some(acceptor)).await;
    let c = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let resp = c
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        c.get(format!("{}/v2/", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Served over TLS; what it counts is checked against a registryd process of its own
    // (berth-tests `registry_ops`): this binary's servers share one recorder.
    let resp = c
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .is_ok_and(|t| t.starts_with("text/plain")));
    server.stop().await;
}
