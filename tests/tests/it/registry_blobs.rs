//! Blobs: pull with headers and ranges, monolithic push and its digest checks, cross-repository
//! mount (and its fallback), delete, and content served exactly as stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{sha256, Content, Image};
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_error, header, Registry};
use reqwest::{Method, StatusCode};
use sha2::Digest;

async fn env_and_token(repos: &[&str]) -> (TestEnv, Registry, String) {
    let env = TestEnv::standard().await;
    let token = env.admin_token(repos).await;
    let registry = env.registry();
    (env, registry, token)
}

#[tokio::test]
async fn blobs_pull_with_headers_and_ranges() {
    let (_env, registry, token) = env_and_token(&["team/app"]).await;
    let blob = Content::random(1000);
    let resp = registry.post_blob("team/app", &blob, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(header(&resp, "Location").ends_with(&format!("/v2/team/app/blobs/{}", blob.digest)));
    assert_eq!(header(&resp, "Docker-Content-Digest"), blob.digest);

    let path = format!("/v2/team/app/blobs/{}", blob.digest);
    let resp = registry.get(&path, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "Docker-Content-Digest"), blob.digest);
    assert_eq!(header(&resp, "Content-Length"), "1000");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.bytes.as_slice());

    let resp = registry.head(&path, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "Content-Length"), "1000");
    assert_eq!(header(&resp, "Docker-Content-Digest"), blob.digest);

    for (asked, from, to) in [
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
    ] {
        let resp = registry
            .send(
                registry
                    .request(Method::GET, &path, Some(&token))
                    .header("Range", asked),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{asked}");
        assert_eq!(
            header(&resp, "Content-Range"),
            format!("bytes {from}-{to}/1000"),
            "{asked}"
        );
        assert_eq!(
            resp.bytes().await.unwrap().as_ref(),
            &blob.bytes[from..=to],
            "{asked}"
        );
    }
    let req = registry
        .request(Method::GET, &path, Some(&token))
        .header("Range", "bytes=1000-1100");
    expect_error(
        registry.send(req).await,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "RANGE_INVALID",
    )
    .await;

    let unknown = sha256(b"never pushed");
    let resp = registry
        .get(&format!("/v2/team/app/blobs/{unknown}"), Some(&token))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    assert_eq!(
        registry
            .blob_status("team/app", &unknown, Some(&token))
            .await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn monolithic_upload_with_a_wrong_digest_leaves_nothing() {
    let (_env, registry, token) = env_and_token(&["team/app"]).await;
    let blob = Content::random(4096);
    let other = sha256(b"something else");
    let sha512 = format!("sha512:{}", hex::encode(sha2::Sha512::digest(&blob.bytes)));
    let cases = [
        ("wrong digest", other.clone()),
        ("wrong algorithm", sha512),
        ("unknown algorithm", format!("md5:{}", "0".repeat(32))),
        ("malformed", "sha256:xyz".to_string()),
        (
            "uppercase hex",
            blob.digest.to_uppercase().replace("SHA256", "sha256"),
        ),
    ];
    for (what, digest) in cases {
        let req = registry
            .request(Method::POST, "/v2/team/app/blobs/uploads/", Some(&token))
            .query(&[("digest", &digest)])
            .body(blob.bytes.clone());
        let resp = registry.send(req).await;
        assert!(resp.status().is_client_error(), "{what}: {}", resp.status());
        expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
        assert_eq!(
            registry
                .blob_status("team/app", &blob.digest, Some(&token))
                .await,
            StatusCode::NOT_FOUND,
            "{what}"
        );
    }
    assert_eq!(
        registry.blob_status("team/app", &other, Some(&token)).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn cross_repository_mount_and_its_fallback() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env
        .token(
            "admin",
            &[
                "repository:team/src:pull,push",
                "repository:team/dst:pull,push",
                "repository:team/auto:pull,push",
            ],
        )
        .await;
    let blob = Content::random(2048);
    registry.push_blob("team/src", &blob, Some(&token)).await;

    let mount = |repo: &str, from: Option<&str>, digest: &str, token: &str| {
        let mut query = vec![("mount", digest.to_string())];
        if let Some(from) = from {
            query.push(("from", from.to_string()));
        }
        registry
            .request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                Some(token),
            )
            .query(&query)
    };
    let resp = registry
        .send(mount("team/dst", Some("team/src"), &blob.digest, &token))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(header(&resp, "Location").ends_with(&format!("/v2/team/dst/blobs/{}", blob.digest)));
    assert_eq!(header(&resp, "Docker-Content-Digest"), blob.digest);
    let resp = registry
        .get(&format!("/v2/team/dst/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.bytes.as_slice());

    // Unknown digest: a normal upload session instead, which works.
    let missing = Content::random(10);
    let resp = registry
        .send(mount("team/dst", Some("team/src"), &missing.digest, &token))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = header(&resp, "Location");
    assert_eq!(
        registry
            .finish_upload(&location, &token, &missing.digest, &missing.bytes)
            .await
            .status(),
        StatusCode::CREATED
    );

    // No pull right on the source: no mount, a session, and the blob is not linked.
    let narrow = env
        .token("alice", &["repository:alice/mine:pull,push"])
        .await;
    let resp = registry
        .send(mount("alice/mine", Some("team/src"), &blob.digest, &narrow))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::ACCEPTED,
        "mount without pull on the source must fall back"
    );
    assert_eq!(
        registry
            .blob_status("alice/mine", &blob.digest, Some(&narrow))
            .await,
        StatusCode::NOT_FOUND
    );

    // `from` omitted: mounted automatically from a repository the token may pull (team/src).
    let resp = registry
        .send(mount("team/auto", None, &blob.digest, &token))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "automatic mount");
    assert_eq!(
        registry
            .blob_status("team/auto", &blob.digest, Some(&token))
            .await,
        StatusCode::OK
    );

    // Never from a repository the token may not pull: a session, as for an unknown digest.
    let blind = env
        .token("admin", &["repository:team/blind:pull,push"])
        .await;
    for from in [None, Some("team/src")] {
        let resp = registry
            .send(mount("team/blind", from, &blob.digest, &blind))
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "from {from:?}");
        assert_eq!(
            registry
                .blob_status("team/blind", &blob.digest, Some(&blind))
                .await,
            StatusCode::NOT_FOUND,
            "from {from:?}"
        );
    }
    // A `from` the token may not pull: automatic discovery, from a repository it may pull.
    let other = env
        .token(
            "admin",
            &["repository:team/dst:pull", "repository:team/via:pull,push"],
        )
        .await;
    let resp = registry
        .send(mount("team/via", Some("team/src"), &blob.digest, &other))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "mount via team/dst");
}

#[tokio::test]
async fn an_open_registry_mounts_from_any_repository() {
    let env = TestEnv::open().await;
    let registry = env.registry();
    let blob = Content::random(300);
    registry.push_blob("team/src", &blob, None).await;
    let req = registry
        .request(Method::POST, "/v2/team/auto/blobs/uploads/", None)
        .query(&[("mount", blob.digest.as_str())]);
    assert_eq!(registry.send(req).await.status(), StatusCode::CREATED);
    let resp = registry
        .get(&format!("/v2/team/auto/blobs/{}", blob.digest), None)
        .await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.bytes.as_slice());
}

#[tokio::test]
async fn deleting_a_blob_unlinks_it_from_one_repository_only() {
    let (_env, registry, token) = env_and_token(&["team/a", "team/b"]).await;
    let blob = Content::random(512);
    registry.push_blob("team/a", &blob, Some(&token)).await;
    registry.push_blob("team/b", &blob, Some(&token)).await;
    let path = format!("/v2/team/a/blobs/{}", blob.digest);
    let resp = registry
        .send(registry.request(Method::DELETE, &path, Some(&token)))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    expect_error(
        registry.get(&path, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
    let resp = registry
        .send(registry.request(Method::DELETE, &path, Some(&token)))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    let resp = registry
        .get(&format!("/v2/team/b/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        blob.bytes.as_slice(),
        "team/b still has it"
    );
}

#[tokio::test]
async fn a_mount_needs_the_blob_in_the_source_repository() {
    let (_env, registry, token) = env_and_token(&["team/a", "team/b", "team/c"]).await;
    let blob = Content::random(256);
    registry.push_blob("team/a", &blob, Some(&token)).await;
    registry.push_blob("team/c", &blob, Some(&token)).await;
    let path = format!("/v2/team/a/blobs/{}", blob.digest);
    let resp = registry
        .send(registry.request(Method::DELETE, &path, Some(&token)))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // team/a no longer has it (team/c does): mounting from team/a is not possible.
    let req = registry
        .request(Method::POST, "/v2/team/b/blobs/uploads/", Some(&token))
        .query(&[("mount", blob.digest.as_str()), ("from", "team/a")]);
    let resp = registry.send(req).await;
    assert_eq!(
        resp.status(),
        StatusCode::ACCEPTED,
        "mounted from a repository without the blob"
    );
}

#[tokio::test]
async fn content_is_served_as_stored_whatever_the_client_accepts() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/app"]).await;
    let image = Image::random(1);
    // Tags may mix case, digits, dots, dashes and underscores.
    for tag in ["Latest_1.0-RC", "_", "A"] {
        registry
            .push_image("team/app", tag, &image, Some(&token))
            .await;
        registry
            .assert_serves("team/app", tag, &image.manifest, &token)
            .await;
    }
    let blob = Content::new(vec![b'a'; 64 * 1024], "application/octet-stream"); // compressible
    registry.push_blob("team/app", &blob, Some(&token)).await;
    for path in [
        format!("/v2/team/app/blobs/{}", blob.digest),
        "/v2/team/app/manifests/A".to_string(),
    ] {
        let req = registry
            .request(Method::GET, &path, Some(&token))
            .header("Accept-Encoding", "gzip, br, zstd");
        let resp = registry.send(req).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(
            header(&resp, "Content-Encoding").is_empty(),
            "{path} was re-encoded: {}",
            header(&resp, "Content-Encoding")
        );
        let digest = header(&resp, "Docker-Content-Digest");
        assert_eq!(
            sha256(&resp.bytes().await.unwrap()),
            digest,
            "{path}: bytes differ from their digest"
        );
    }
    // Several ranges at once: a registry may serve them or the whole blob, never fail.
    let req = registry
        .request(
            Method::GET,
            &format!("/v2/team/app/blobs/{}", blob.digest),
            Some(&token),
        )
        .header("Range", "bytes=0-1,5-9");
    let status = registry.send(req).await.status();
    assert!(
        [
            StatusCode::OK,
            StatusCode::PARTIAL_CONTENT,
            StatusCode::RANGE_NOT_SATISFIABLE
        ]
        .contains(&status),
        "multi-range: {status}"
    );
}
