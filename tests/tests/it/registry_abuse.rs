//! Hostile clients with push rights or none: reading another team's private layer through a
//! mount, a digest or a manifest; making the server read a body it will refuse; overflowing
//! upload offsets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use berth_tests::content::{sha256, Content, Image};
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_error, header, Registry};
use berth_tests::tokens::{claims, repository_access, sign};
use berth_tests::uploads::upload_range;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `POST /v2/<repo>/blobs/uploads/?mount=<digest>[&from=<from>]`.
async fn mount(
    registry: &Registry,
    repo: &str,
    digest: &str,
    from: Option<&str>,
    token: &str,
) -> reqwest::Response {
    let mut query = vec![("mount", digest)];
    if let Some(from) = from {
        query.push(("from", from));
    }
    let path = format!("/v2/{repo}/blobs/uploads/");
    registry
        .send(
            registry
                .request(Method::POST, &path, Some(token))
                .query(&query),
        )
        .await
}

#[tokio::test]
async fn dave_cannot_read_alices_private_layer_any_way() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let owner = env.admin_token(&["alice/private"]).await;
    let image = Image::random(2);
    registry
        .push_image("alice/private", "v1", &image, Some(&owner))
        .await;
    let secret = &image.layers[0];
    let dave = sign(
        &env.certs,
        &claims(
            "dave",
            vec![repository_access("dave/loot", &["pull", "push"])],
        ),
    );

    // Mounts with and without `from`: a plain session each time, exactly as for a digest that
    // exists nowhere, so the answer does not even say whether the layer exists.
    let nowhere = sha256(b"a layer nobody pushed");
    for digest in [&secret.digest, &image.config.digest, &nowhere] {
        for from in [None, Some("alice/private")] {
            let resp = mount(&registry, "dave/loot", digest, from, &dave).await;
            assert_eq!(
                resp.status(),
                StatusCode::ACCEPTED,
                "mount of {digest} from {from:?} into dave/loot"
            );
            assert!(!header(&resp, "Docker-Upload-UUID").is_empty());
        }
    }
    // Finishing an upload, or a monolithic one, with the layer's digest needs its bytes.
    let location = registry.start_upload("dave/loot", &dave).await;
    let resp = registry
        .finish_upload(&location, &dave, &secret.digest, b"")
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let empty = Content::new(Vec::new(), "application/octet-stream");
    let claim = Content {
        digest: secret.digest.clone(),
        ..empty
    };
    let resp = registry.post_blob("dave/loot", &claim, Some(&dave)).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    // A manifest naming alice's content links none of it.
    let resp = registry
        .put_manifest("dave/loot", "stolen", &image.manifest, Some(&dave))
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;

    // After all that, nothing of alice's reads through dave/loot, by GET or HEAD.
    for blob in image.blobs() {
        let path = format!("/v2/dave/loot/blobs/{}", blob.digest);
        let resp = registry.get(&path, Some(&dave)).await;
        expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
        assert_eq!(
            registry.head(&path, Some(&dave)).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    for reference in [image.manifest.digest.as_str(), "v1", "stolen"] {
        let path = format!("/v2/dave/loot/manifests/{reference}");
        let resp = registry.get(&path, Some(&dave)).await;
        expect_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
        assert_eq!(
            registry.head(&path, Some(&dave)).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    // And alice/private itself is not dave's to read.
    let resp = registry
        .get(
            &format!("/v2/alice/private/blobs/{}", secret.digest),
            Some(&dave),
        )
        .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // Whoever may pull alice/private does get the automatic mount.
    let alice = sign(
        &env.certs,
        &claims(
            "alice",
            vec![
                repository_access("alice/private", &["pull"]),
                repository_access("alice/copy", &["pull", "push"]),
            ],
        ),
    );
    let resp = mount(&registry, "alice/copy", &secret.digest, None, &alice).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "automatic mount");
    let resp = registry
        .get(
            &format!("/v2/alice/copy/blobs/{}", secret.digest),
            Some(&alice),
        )
        .await;
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        secret.bytes.as_slice()
    );
}

/// Sends `head` (a request's header block) and a few bytes of its announced 1 GiB body, then
/// reads the answer without sending more. Returns the answer's head, or panics when none comes
/// within the bound (a server waiting for the body would answer only after it gave up draining).
async fn answer_before_body(addr: std::net::SocketAddr, head: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"first bytes").await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no answer while the body is pending: {head}"))
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).to_lowercase()
}

#[tokio::test]
async fn a_request_without_credentials_is_refused_before_its_body() {
    let env = TestEnv::standard().await;
    let addr = env.registryd.daemon.addr;
    let registry = env.registry();
    let token = env.admin_token(&["team/app"]).await;
    let location = registry.start_upload("team/app", &token).await;
    let upload = reqwest::Url::parse(&registry.url(&location)).unwrap();
    let pull_only = env.token("admin", &["repository:team/app:pull"]).await;
    let digest = sha256(b"x");
    let requests = [
        format!("PATCH {}", upload.path()),
        format!("PUT {}?digest={digest}", upload.path()),
        format!("POST /v2/team/app/blobs/uploads/?digest={digest}"),
        "PUT /v2/team/app/manifests/v1".to_string(),
    ];
    for line in &requests {
        for auth in [
            String::new(),
            "Authorization: Bearer not-a-token\r\n".to_string(),
            format!("Authorization: Bearer {pull_only}\r\n"),
        ] {
            let head = format!(
                "{line} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/octet-stream\r\nContent-Length: 1073741824\r\n\r\n"
            );
            let answer = answer_before_body(addr, &head).await;
            assert!(answer.starts_with("http/1.1 401"), "{line}: {answer}");
            assert!(answer.contains("connection: close"), "{line}: {answer}");
            assert!(
                answer.contains("www-authenticate: bearer"),
                "{line}: {answer}"
            );
        }
    }
    // The session is untouched.
    let resp = registry.get(&location, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(upload_range(&resp), "0-0");
}

#[tokio::test]
async fn overflowing_content_ranges_are_416_and_change_nothing() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/app"]).await;
    let blob = Content::random(10);

    // The reported case: an empty chunk "ending" at u64::MAX on a fresh session.
    let location = registry.start_upload("team/app", &token).await;
    let resp = registry
        .patch_chunk(&location, &token, b"", Some("0-18446744073709551615"))
        .await;
    expect_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID").await;
    let empty = sha256(b"");
    let resp = registry.finish_upload(&location, &token, &empty, b"").await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "the session still works"
    );

    let location = registry.start_upload("team/app", &token).await;
    let resp = registry
        .patch_chunk(&location, &token, &blob.bytes[..5], Some("0-4"))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let bad = [
        "5-18446744073709551615",
        "0-18446744073709551615",
        "18446744073709551615-18446744073709551615",
        "5-18446744073709551616",
        "9223372036854775807-9223372036854775807",
        "5-4",
        "5-",
        "-5",
        "five-nine",
        "5 - 9 - 13",
    ];
    for range in bad {
        for body in [&b""[..], &blob.bytes[5..]] {
            let resp = registry
                .patch_chunk(&location, &token, body, Some(range))
                .await;
            let what = format!("{range} with {} bytes", body.len());
            assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{what}");
            expect_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID").await;
            let resp = registry.get(&location, Some(&token)).await;
            assert_eq!(upload_range(&resp), "0-4", "{what} moved the session");
        }
    }
    let resp = registry
        .patch_chunk(&location, &token, &blob.bytes[5..], Some("5-9"))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = registry
        .finish_upload(&location, &token, &blob.digest, b"")
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    registry.assert_blob("team/app", &blob, &token).await;
}

#[tokio::test]
async fn a_content_length_near_u64_max_is_a_client_error_and_changes_nothing() {
    let env = TestEnv::standard().await;
    let addr = env.registryd.daemon.addr;
    let registry = env.registry();
    let token = env.admin_token(&["team/app"]).await;
    let location = registry.start_upload("team/app", &token).await;
    let upload = reqwest::Url::parse(&registry.url(&location)).unwrap();
    for length in [u64::MAX, u64::MAX - 3, u64::MAX / 2 + 1] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "PATCH {} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {length}\r\n\r\nhello",
            upload.path()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The client gives up: the body ends far short of its announced length.
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("an answer once the body ended")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 4"), "{length}: {answer}");
        let resp = registry.get(&location, Some(&token)).await;
        assert_eq!(upload_range(&resp), "0-0", "{length} moved the session");
    }
}
