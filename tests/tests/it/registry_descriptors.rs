//! A manifest's descriptors against what the repository stores: only foreign (non-distributable)
//! layer types with `urls` may be missing, and every size must be the stored content's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{index, Content, Image, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use berth_tests::env::TestEnv;
use berth_tests::registry::expect_error;
use reqwest::StatusCode;
use serde_json::{json, Value};

const DOCKER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
const OCI_NONDISTRIBUTABLE: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

/// `image`'s manifest with its first layer (or config) changed by `edit`.
fn edited(image: &Image, edit: impl FnOnce(&mut Value)) -> Value {
    let mut body: Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
    edit(&mut body);
    body
}

#[tokio::test]
async fn descriptors_must_name_stored_content_of_their_size() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/app"]).await;
    let image = Image::random(1);
    registry
        .push_image("team/app", "base", &image, Some(&token))
        .await;
    let tiny = Content::new(
        b"7 bytes".to_vec(),
        "application/vnd.oci.image.layer.v1.tar",
    );
    registry.push_blob("team/app", &tiny, Some(&token)).await;
    let absent = Content::random(100);
    let layer_size = image.layers[0].bytes.len();
    let elsewhere = json!(["https://example.com/layer"]);

    let refused: Vec<(&str, Value, &str)> = vec![
        (
            "layer size 999999 for a 7-byte blob",
            edited(&image, |b| {
                b["layers"][0] = tiny.descriptor();
                b["layers"][0]["size"] = json!(999_999);
            }),
            "MANIFEST_INVALID",
        ),
        (
            "layer size one short",
            edited(&image, |b| b["layers"][0]["size"] = json!(layer_size - 1)),
            "MANIFEST_INVALID",
        ),
        (
            "config size wrong",
            edited(&image, |b| b["config"]["size"] = json!(1)),
            "MANIFEST_INVALID",
        ),
        (
            "negative size",
            edited(&image, |b| b["layers"][0]["size"] = json!(-7)),
            "MANIFEST_INVALID",
        ),
        (
            "size past i64",
            edited(&image, |b| {
                b["layers"][0]["size"] = json!(9_223_372_036_854_775_808_u64);
            }),
            "MANIFEST_INVALID",
        ),
        (
            "size as a huge float",
            edited(&image, |b| b["layers"][0]["size"] = json!(1e30)),
            "MANIFEST_INVALID",
        ),
        (
            "an ordinary layer type with urls, never pushed",
            edited(&image, |b| {
                b["layers"][0] = absent.descriptor();
                b["layers"][0]["urls"] = elsewhere.clone();
            }),
            "MANIFEST_BLOB_UNKNOWN",
        ),
        (
            "a non-distributable layer without urls, never pushed",
            edited(&image, |b| {
                b["layers"][0] = absent.descriptor();
                b["layers"][0]["mediaType"] = json!(OCI_NONDISTRIBUTABLE);
            }),
            "MANIFEST_BLOB_UNKNOWN",
        ),
        (
            "a non-distributable layer with empty urls, never pushed",
            edited(&image, |b| {
                b["layers"][0] = absent.descriptor();
                b["layers"][0]["mediaType"] = json!(OCI_NONDISTRIBUTABLE);
                b["layers"][0]["urls"] = json!([]);
            }),
            "MANIFEST_BLOB_UNKNOWN",
        ),
    ];
    for (what, body, code) in refused {
        let manifest = Content::json(&body, OCI_MANIFEST);
        let resp = registry
            .put_manifest("team/app", "refused", &manifest, Some(&token))
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{what}");
        expect_error(resp, StatusCode::BAD_REQUEST, code).await;
        let resp = registry
            .get("/v2/team/app/manifests/refused", Some(&token))
            .await;
        expect_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    }

    // An index child of the wrong size.
    registry
        .push_manifest(
            "team/app",
            &image.manifest.digest,
            &image.manifest,
            Some(&token),
        )
        .await;
    let mut list: Value =
        serde_json::from_slice(&index(OCI_INDEX, &[("amd64", &image)]).bytes).unwrap();
    list["manifests"][0]["size"] = json!(image.manifest.bytes.len() + 1);
    let resp = registry
        .put_manifest(
            "team/app",
            "list",
            &Content::json(&list, OCI_INDEX),
            Some(&token),
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;

    // Foreign layers with urls need not be here, in both formats; the right sizes pass.
    let oci = edited(&image, |b| {
        let mut foreign = absent.descriptor();
        foreign["mediaType"] = json!(OCI_NONDISTRIBUTABLE);
        foreign["urls"] = elsewhere.clone();
        let layers = b["layers"].as_array_mut().unwrap();
        layers.push(foreign);
        layers.push(tiny.descriptor());
    });
    let oci = Content::json(&oci, OCI_MANIFEST);
    registry
        .push_manifest("team/app", "foreign-oci", &oci, Some(&token))
        .await;
    let docker_image = Image::docker("amd64", vec![]);
    for blob in docker_image.blobs() {
        registry.push_blob("team/app", blob, Some(&token)).await;
    }
    let docker = edited(&docker_image, |b| {
        b["layers"] = json!([{"mediaType": DOCKER_FOREIGN, "digest": absent.digest,
            "size": 100, "urls": elsewhere}]);
    });
    let docker = Content::json(&docker, DOCKER_MANIFEST);
    registry
        .push_manifest("team/app", "foreign-docker", &docker, Some(&token))
        .await;
    registry
        .assert_serves("team/app", "foreign-docker", &docker, &token)
        .await;
}
