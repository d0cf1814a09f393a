//! Edges a client can reach: large and empty blobs, repository isolation, concurrent pushes of
//! the same content, and malformed requests of every kind (always a 4xx
//! in the spec's format, never a 5xx).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{sha256, Content, Image, OCI_MANIFEST};
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_client_error, expect_error, header};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn large_blobs_stream_in_and_out_whole() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/big"]).await;
    // Larger than any request buffering limit (manifests stop at 4 MiB; blobs must not).
    let blob = Content::random(24 * 1024 * 1024);
    registry.push_blob("team/big", &blob, Some(&token)).await;
    let resp = registry
        .get(&format!("/v2/team/big/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(
        header(&resp, "Content-Length"),
        blob.bytes.len().to_string()
    );
    assert_eq!(sha256(&resp.bytes().await.unwrap()), blob.digest);

    let chunked = Content::random(12 * 1024 * 1024);
    let location = registry.start_upload("team/big", &token).await;
    let half = chunked.bytes.len() / 2;
    let resp = registry
        .patch_chunk(
            &location,
            &token,
            &chunked.bytes[..half],
            Some(&format!("0-{}", half - 1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = header(&resp, "Location");
    let resp = registry
        .finish_upload(&location, &token, &chunked.digest, &chunked.bytes[half..])
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "PUT with the last chunk"
    );
    let resp = registry
        .get(
            &format!("/v2/team/big/blobs/{}", chunked.digest),
            Some(&token),
        )
        .await;
    assert_eq!(sha256(&resp.bytes().await.unwrap()), chunked.digest);
}

#[tokio::test]
async fn the_empty_blob_is_a_blob() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/app"]).await;
    let empty = Content::new(Vec::new(), "application/octet-stream");
    registry.push_blob("team/app", &empty, Some(&token)).await;
    let path = format!("/v2/team/app/blobs/{}", empty.digest);
    let resp = registry.get(&path, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "Content-Length"), "0");
    let req = registry
        .request(Method::GET, &path, Some(&token))
        .header("Range", "bytes=0-0");
    expect_error(
        registry.send(req).await,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "RANGE_INVALID",
    )
    .await;
}

#[tokio::test]
async fn repositories_do_not_see_each_others_content() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/a", "team/b"]).await;
    let image = Image::random(1);
    registry
        .push_image("team/a", "v1", &image, Some(&token))
        .await;
    registry
        .push_image("team/b", "other", &Image::random(1), Some(&token))
        .await;
    for blob in image.blobs() {
        let resp = registry
            .get(&format!("/v2/team/b/blobs/{}", blob.digest), Some(&token))
            .await;
        expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
        assert_eq!(
            registry
                .blob_status("team/b", &blob.digest, Some(&token))
                .await,
            StatusCode::NOT_FOUND
        );
    }
    let resp = registry
        .get(
            &format!("/v2/team/b/manifests/{}", image.manifest.digest),
            Some(&token),
        )
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    let resp = registry.get("/v2/team/b/manifests/v1", Some(&token)).await;
    expect_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    // A token for team/b cannot reach team/a's content through a mount either.
    let only_b = env.token("admin", &["repository:team/b:pull,push"]).await;
    let req = registry
        .request(Method::POST, "/v2/team/b/blobs/uploads/", Some(&only_b))
        .query(&[
            ("mount", image.layers[0].digest.as_str()),
            ("from", "team/a"),
        ]);
    assert_eq!(registry.send(req).await.status(), StatusCode::ACCEPTED);
    assert_eq!(
        registry
            .blob_status("team/b", &image.layers[0].digest, Some(&only_b))
            .await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_blob_pushed_concurrently_everywhere_is_served_everywhere() {
    let env = TestEnv::standard().await;
    let repos: Vec<String> = (0..8).map(|i| format!("team/r{i}")).collect();
    let names: Vec<&str> = repos.iter().map(String::as_str).collect();
    let token = env.admin_token(&names).await;
    let image = Image::random(1);
    let tasks: Vec<_> = repos
        .iter()
        .map(|repo| {
            let (registry, token, image, repo) =
                (env.registry(), token.clone(), image.clone(), repo.clone());
            tokio::spawn(
                async move { registry.push_image(&repo, "v1", &image, Some(&token)).await },
            )
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // The same tag written concurrently with different manifests ends on one of them, whole.
    let rivals: Vec<Image> = (0..6).map(|_| Image::random(1)).collect();
    let tasks: Vec<_> = rivals
        .iter()
        .map(|image| {
            let (registry, token, image) = (env.registry(), token.clone(), image.clone());
            tokio::spawn(async move {
                registry
                    .push_image("team/r0", "race", &image, Some(&token))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let registry = env.registry();
    for repo in &repos {
        registry
            .assert_serves(repo, "v1", &image.manifest, &token)
            .await;
    }
    let winner = header(
        &registry
            .head("/v2/team/r0/manifests/race", Some(&token))
            .await,
        "Docker-Content-Digest",
    );
    let winner = rivals
        .iter()
        .find(|i| i.manifest.digest == winner)
        .expect("the tag names one of the pushed manifests");
    registry
        .assert_serves("team/r0", "race", &winner.manifest, &token)
        .await;
}

#[tokio::test]
async fn malformed_requests_are_client_errors_in_the_spec_format() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/app", "team/other"]).await;
    let image = Image::random(1);
    registry
        .push_image("team/app", "v1", &image, Some(&token))
        .await;
    let blob = format!("/v2/team/app/blobs/{}", image.layers[0].digest);
    let location = registry.start_upload("team/app", &token).await;
    let t = Some(token.as_str());

    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "blob digest malformed",
            registry.request(Method::GET, "/v2/team/app/blobs/sha256:abc", t),
        ),
        (
            "blob digest without algorithm",
            registry.request(
                Method::GET,
                &format!("/v2/team/app/blobs/{}", "a".repeat(64)),
                t,
            ),
        ),
        (
            "manifest digest malformed",
            registry.request(Method::GET, "/v2/team/app/manifests/sha256:zz", t),
        ),
        (
            "tag too long",
            registry.request(
                Method::GET,
                &format!("/v2/team/app/manifests/{}", "t".repeat(129)),
                t,
            ),
        ),
        (
            "tag with bad characters",
            registry.request(Method::GET, "/v2/team/app/manifests/.hidden", t),
        ),
        (
            "PUT to a bad tag",
            registry
                .request(Method::PUT, "/v2/team/app/manifests/-bad", t)
                .header("Content-Type", OCI_MANIFEST)
                .body(image.manifest.bytes.clone()),
        ),
        (
            "reversed range",
            registry
                .request(Method::GET, &blob, t)
                .header("Range", "bytes=9-2"),
        ),
        (
            "range not in bytes",
            registry
                .request(Method::GET, &blob, t)
                .header("Range", "lines=1-2"),
        ),
        (
            "range overflowing u64",
            registry
                .request(Method::GET, &blob, t)
                .header("Range", "bytes=0-99999999999999999999999"),
        ),
        (
            "Content-Range overflowing u64",
            registry
                .request(Method::PATCH, &location, t)
                .header("Content-Range", "0-99999999999999999999999")
                .body(vec![1; 4]),
        ),
        (
            "Content-Range end before start",
            registry
                .request(Method::PATCH, &location, t)
                .header("Content-Range", "5-1")
                .body(vec![1; 4]),
        ),
        (
            "n negative",
            registry.request(Method::GET, "/v2/team/app/tags/list?n=-1", t),
        ),
        (
            "n overflowing",
            registry.request(
                Method::GET,
                "/v2/team/app/tags/list?n=99999999999999999999999",
                t,
            ),
        ),
        (
            "digest param twice, one wrong",
            registry
                .request(Method::POST, "/v2/team/other/blobs/uploads/", t)
                .query(&[
                    ("digest", image.layers[0].digest.as_str()),
                    ("digest", "sha256:00"),
                ])
                .body(image.layers[0].bytes.clone()),
        ),
        (
            "mount of a malformed digest",
            registry
                .request(Method::POST, "/v2/team/other/blobs/uploads/", t)
                .query(&[("mount", "sha256:nope"), ("from", "team/app")]),
        ),
        (
            "referrers of a malformed digest",
            registry.request(Method::GET, "/v2/team/app/referrers/notadigest", t),
        ),
    ];
    for (what, req) in cases {
        let resp = registry.send(req).await;
        expect_client_error(resp, what).await;
    }
    // No Content-Type: the body's own mediaType decides (or the PUT is refused as invalid).
    let req = registry
        .request(Method::PUT, "/v2/team/app/manifests/untyped", t)
        .body(image.manifest.bytes.clone());
    let resp = registry.send(req).await;
    if resp.status() == StatusCode::CREATED {
        registry
            .assert_serves("team/app", "untyped", &image.manifest, &token)
            .await;
    } else {
        expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    }
    // None of that changed the image.
    registry
        .assert_serves("team/app", "v1", &image.manifest, &token)
        .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_answered_in_the_spec_format() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/app"]).await;
    let t = Some(token.as_str());
    let cases = [
        (Method::POST, "/v2/team/app/manifests/v1"),
        (Method::PATCH, "/v2/team/app/manifests/v1"),
        (Method::PUT, "/v2/team/app/tags/list"),
        (Method::GET, "/v2/team/app/blobs/uploads/"),
        (Method::GET, "/v2/team/app/nothing-here"),
    ];
    for (method, path) in cases {
        let resp = registry
            .send(registry.request(method.clone(), path, t))
            .await;
        let status = resp.status();
        assert!(
            [
                StatusCode::NOT_FOUND,
                StatusCode::METHOD_NOT_ALLOWED,
                StatusCode::BAD_REQUEST,
                StatusCode::UNAUTHORIZED
            ]
            .contains(&status),
            "{method} {path}: {status}"
        );
        expect_client_error(resp, &format!("{method} {path}")).await;
    }
}

/// Files under `dir` (recursively) whose name is `name`.
fn files_named(dir: &std::path::Path, name: &str) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            count += files_named(&path, name);
        } else if path.file_name().is_some_and(|n| n == name) {
            count += 1;
        }
    }
    count
}

#[tokio::test]
async fn a_blob_in_many_repositories_is_stored_once() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let repos: Vec<String> = (0..5).map(|i| format!("team/copy{i}")).collect();
    let names: Vec<&str> = repos.iter().map(String::as_str).collect();
    let token = env.admin_token(&names).await;
    let blob = Content::random(100_000);
    for repo in &repos {
        registry.push_blob(repo, &blob, Some(&token)).await;
    }
    assert_eq!(
        files_named(&env.dir.path().join("data"), blob.hex()),
        1,
        "one file for one content"
    );
}
