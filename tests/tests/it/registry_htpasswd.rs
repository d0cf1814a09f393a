//! registryd with `auth.htpasswd`: Basic auth without a token server, for the API and skopeo.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::authd::User;
use berth_tests::content::Image;
use berth_tests::env::TestEnv;
use berth_tests::oci_layout::OciLayout;
use berth_tests::registry::{expect_error, header};
use berth_tests::skopeo::{skopeo, skopeo_ok};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn basic_auth_guards_every_route() {
    let env = TestEnv::htpasswd(&[User::new("carol", "carol-pass")]).await;
    let registry = env.registry();
    let image = Image::random(1);

    let resp = registry.get("/v2/", None).await;
    let challenge = header(&resp, "WWW-Authenticate");
    assert!(
        challenge.starts_with("Basic ") && challenge.contains("realm=\"berth-test\""),
        "challenge {challenge}"
    );
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    for (user, password) in [("carol", "wrong"), ("nobody", "carol-pass"), ("", "")] {
        let req = registry
            .request(Method::GET, "/v2/", None)
            .basic_auth(user, Some(password));
        expect_error(
            registry.send(req).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
        )
        .await;
    }
    let req = registry
        .request(Method::GET, "/v2/", None)
        .basic_auth("carol", Some("carol-pass"));
    let resp = registry.send(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "Docker-Distribution-API-Version"),
        "registry/2.0"
    );

    // A push without credentials is refused and stores nothing.
    let resp = registry.post_blob("team/app", &image.layers[0], None).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // With them, push and pull work.
    for blob in image.blobs() {
        let req = registry
            .request(Method::POST, "/v2/team/app/blobs/uploads/", None)
            .query(&[("digest", &blob.digest)])
            .basic_auth("carol", Some("carol-pass"))
            .body(blob.bytes.clone());
        assert_eq!(registry.send(req).await.status(), StatusCode::CREATED);
    }
    let req = registry
        .request(Method::PUT, "/v2/team/app/manifests/v1", None)
        .header("Content-Type", image.manifest.media_type.as_str())
        .basic_auth("carol", Some("carol-pass"))
        .body(image.manifest.bytes.clone());
    assert_eq!(registry.send(req).await.status(), StatusCode::CREATED);
    let resp = registry.get("/v2/team/app/manifests/v1", None).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let req = registry
        .request(Method::GET, "/v2/team/app/manifests/v1", None)
        .basic_auth("carol", Some("carol-pass"));
    let resp = registry.send(req).await;
    assert_eq!(
        header(&resp, "Docker-Content-Digest"),
        image.manifest.digest
    );
    // A bearer token means nothing to an htpasswd registry.
    let resp = registry
        .get("/v2/team/app/manifests/v1", Some("some.bearer.token"))
        .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn skopeo_works_with_basic_auth() {
    let env = TestEnv::htpasswd(&[User::new("carol", "carol-pass")]).await;
    let image = Image::oci_gzip("amd64", 2);
    let mut layout = OciLayout::create(&env.dir.path().join("layout"));
    layout.add_image(&image);
    layout.tag(&image.manifest, "v1");
    let dest = format!("docker://{}/team/app:v1", env.registry_host());
    let out = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "carol:nope",
        &layout.reference("v1"),
        &dest,
    ]);
    assert!(!out.success, "a wrong password pushed: {}", out.all());
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "carol:carol-pass",
        &layout.reference("v1"),
        &dest,
    ]);
    let raw = skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "carol:carol-pass",
        &dest,
    ]);
    assert_eq!(
        raw.trim().as_bytes(),
        String::from_utf8(image.manifest.bytes.clone())
            .unwrap()
            .trim()
            .as_bytes()
    );
}
