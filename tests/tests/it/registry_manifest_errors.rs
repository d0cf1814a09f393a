//! Manifests refused: malformed or invalid (MANIFEST_INVALID), naming content the repository
//! lacks (MANIFEST_BLOB_UNKNOWN), over the 4 MiB limit; none of them leaves anything behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{index, Content, Image, OCI_INDEX, OCI_MANIFEST};
use berth_tests::env::TestEnv;
use berth_tests::registry::expect_error;
use reqwest::StatusCode;
use serde_json::json;

async fn admin(env: &TestEnv, repo: &str) -> String {
    env.admin_token(&[repo]).await
}

/// A registry holding one image at `team/app:base`, an admin token for `team/app`, and the image.
async fn with_base_image() -> (TestEnv, String, Image) {
    let env = TestEnv::standard().await;
    let token = admin(&env, "team/app").await;
    let image = Image::random(1);
    env.registry()
        .push_image("team/app", "base", &image, Some(&token))
        .await;
    (env, token, image)
}

#[tokio::test]
async fn invalid_manifests_are_refused_and_store_nothing() {
    let (env, token, image) = with_base_image().await;
    let registry = env.registry();
    let config = image.config.descriptor();
    let layer = image.layers[0].descriptor();

    let invalid = [
        (
            "malformed",
            Content::new(b"{\"schemaVersion\": 2, ".to_vec(), OCI_MANIFEST),
        ),
        (
            "not an object",
            Content::new(b"[1, 2, 3]".to_vec(), OCI_MANIFEST),
        ),
        (
            "no config",
            Content::json(
                &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [layer]}),
                OCI_MANIFEST,
            ),
        ),
        (
            "schemaVersion 1",
            Content::json(
                &json!({"schemaVersion": 1, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}),
                OCI_MANIFEST,
            ),
        ),
        (
            "bad digest in a descriptor",
            Content::json(
                &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:nothex", "size": 1}]}),
                OCI_MANIFEST,
            ),
        ),
        (
            "declared type differs from the body",
            Content::new(image.manifest.bytes.clone(), OCI_INDEX),
        ),
        (
            "unknown media type",
            Content::new(image.manifest.bytes.clone(), "application/x-not-a-manifest"),
        ),
    ];
    for (what, manifest) in invalid {
        let resp = registry
            .put_manifest("team/app", "bad", &manifest, Some(&token))
            .await;
        assert!(resp.status().is_client_error(), "{what}: {}", resp.status());
        expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
        let resp = registry
            .get("/v2/team/app/manifests/bad", Some(&token))
            .await;
        expect_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    }
}

#[tokio::test]
async fn manifests_naming_missing_content_are_manifest_blob_unknown() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env
        .token(
            "admin",
            &[
                "repository:team/app:pull,push",
                "repository:team/other:pull,push",
            ],
        )
        .await;
    let image = Image::random(2);
    // The config and the first layer only: the second layer is missing.
    registry
        .push_blob("team/app", &image.config, Some(&token))
        .await;
    registry
        .push_blob("team/app", &image.layers[0], Some(&token))
        .await;
    let resp = registry
        .put_manifest("team/app", "v1", &image.manifest, Some(&token))
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;

    // Present in another repository is not present in this one.
    registry
        .push_blob("team/other", &image.layers[1], Some(&token))
        .await;
    let resp = registry
        .put_manifest("team/app", "v1", &image.manifest, Some(&token))
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    expect_error(
        registry
            .get("/v2/team/app/manifests/v1", Some(&token))
            .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;

    // An index whose child manifest was never pushed.
    let child = Image::random(1);
    let list = index(OCI_INDEX, &[("amd64", &child)]);
    let resp = registry
        .put_manifest("team/app", "list", &list, Some(&token))
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    expect_error(
        registry
            .get("/v2/team/app/manifests/list", Some(&token))
            .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn oversize_manifest_is_refused() {
    let (env, token, image) = with_base_image().await;
    let registry = env.registry();
    let mut body: serde_json::Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
    body["annotations"] = json!({"padding": "x".repeat(4 * 1024 * 1024)});
    let big = Content::json(&body, OCI_MANIFEST);
    assert!(big.bytes.len() > 4 * 1024 * 1024);
    let resp = registry
        .put_manifest("team/app", "big", &big, Some(&token))
        .await;
    let status = resp.status();
    assert!(
        status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::BAD_REQUEST,
        "oversize: {status}"
    );
    let text = resp.text().await.unwrap();
    let error: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("oversize: not the spec's JSON ({e}): {text}"));
    let code = error["errors"][0]["code"].as_str().unwrap_or_default();
    assert!(
        ["MANIFEST_INVALID", "SIZE_INVALID"].contains(&code),
        "oversize: {text}"
    );
    expect_error(
        registry
            .get("/v2/team/app/manifests/big", Some(&token))
            .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    let resp = registry
        .head(
            &format!("/v2/team/app/manifests/{}", big.digest),
            Some(&token),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_manifest_naming_a_deleted_blob_is_refused() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = admin(&env, "team/app").await;
    let image = Image::random(1);
    for blob in image.blobs() {
        registry.push_blob("team/app", blob, Some(&token)).await;
    }
    let layer = format!("/v2/team/app/blobs/{}", image.layers[0].digest);
    let resp = registry
        .send(registry.request(reqwest::Method::DELETE, &layer, Some(&token)))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = registry
        .put_manifest("team/app", "v1", &image.manifest, Some(&token))
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn a_manifest_of_exactly_4_mib_is_accepted() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = admin(&env, "team/app").await;
    let image = Image::random(1);
    for blob in image.blobs() {
        registry.push_blob("team/app", blob, Some(&token)).await;
    }
    // The spec: registries SHOULD accept manifests of at least 4 MiB.
    let limit = 4 * 1024 * 1024;
    let mut body: serde_json::Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
    body["annotations"] = json!({"padding": ""});
    let base = serde_json::to_vec(&body).unwrap().len();
    body["annotations"]["padding"] = json!("x".repeat(limit - base));
    let exact = Content::new(serde_json::to_vec(&body).unwrap(), OCI_MANIFEST);
    assert_eq!(exact.bytes.len(), limit);
    registry
        .put_manifest_ok("team/app", "big", &exact, &token)
        .await;
    registry
        .assert_serves("team/app", "big", &exact, &token)
        .await;
}

/// Files under the data directory other than the database's, and their total size.
fn stored_files(data: &std::path::Path) -> (usize, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![data.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if !entry
                .file_name()
                .to_string_lossy()
                .starts_with("registry.db")
            {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

#[tokio::test]
async fn refused_manifest_puts_leave_nothing_on_disk() {
    let (env, token, image) = with_base_image().await;
    let registry = env.registry();
    let data = env.dir.path().join("data");
    let before = stored_files(&data);
    let missing = Content::random(7);
    for i in 0..50 {
        let mut body: serde_json::Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
        // Half a MiB each, and each one different.
        body["annotations"] = json!({"i": i, "padding": "x".repeat(512 * 1024)});
        let (code, status) = match i % 4 {
            0 => {
                body["layers"][0] = missing.descriptor();
                ("MANIFEST_BLOB_UNKNOWN", StatusCode::BAD_REQUEST)
            }
            1 => {
                body["layers"][0]["size"] = json!(999_999);
                ("MANIFEST_INVALID", StatusCode::BAD_REQUEST)
            }
            2 => {
                body["config"]["mediaType"] = json!("");
                ("MANIFEST_INVALID", StatusCode::BAD_REQUEST)
            }
            _ => {
                body["annotations"]["padding"] = json!("x".repeat(4 * 1024 * 1024));
                ("SIZE_INVALID", StatusCode::PAYLOAD_TOO_LARGE)
            }
        };
        let manifest = Content::json(&body, OCI_MANIFEST);
        let resp = registry
            .put_manifest("team/app", &format!("refused{i}"), &manifest, Some(&token))
            .await;
        expect_error(resp, status, code).await;
    }
    assert_eq!(
        stored_files(&data),
        before,
        "refused PUTs left files behind (count, bytes)"
    );
    let resp = registry
        .get("/v2/team/app/tags/list", Some(&token))
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(resp["tags"], json!(["base"]));
}
