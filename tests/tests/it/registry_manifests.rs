//! Manifests of every media type: push by tag and by digest, pull with the spec's headers,
//! mutable tags, deletes by digest and by tag, and deletes switched off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::authd::AuthSpec;
use berth_tests::content::{
    artifact, empty_config, index, sha256, Content, Image, DOCKER_LIST, OCI_INDEX,
};
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_error, header};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn admin(env: &TestEnv, repo: &str) -> String {
    env.admin_token(&[repo]).await
}

#[tokio::test]
async fn every_manifest_media_type_round_trips() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = admin(&env, "team/app").await;
    let oci_amd = Image::random(2);
    let oci_arm = Image::oci("arm64", vec![Content::tar_layer("arm", 100)]);
    let docker_amd = Image::docker(
        "amd64",
        vec![Content::tar_layer("d1", 300), Content::tar_layer("d2", 200)],
    );
    let docker_arm = Image::docker("arm64", vec![Content::tar_layer("d3", 300)]);
    for image in [&oci_amd, &oci_arm, &docker_amd, &docker_arm] {
        for blob in image.blobs() {
            registry.push_blob("team/app", blob, Some(&token)).await;
        }
    }
    let oci_index = index(OCI_INDEX, &[("amd64", &oci_amd), ("arm64", &oci_arm)]);
    let docker_list = index(
        DOCKER_LIST,
        &[("amd64", &docker_amd), ("arm64", &docker_arm)],
    );
    let cases = [
        ("oci", &oci_amd.manifest),
        ("oci-arm", &oci_arm.manifest),
        ("docker", &docker_amd.manifest),
        ("docker-arm", &docker_arm.manifest),
        ("oci-index", &oci_index),
        ("docker-list", &docker_list),
    ];
    for (tag, manifest) in cases {
        registry
            .put_manifest_ok("team/app", tag, manifest, &token)
            .await;
        registry
            .assert_serves("team/app", tag, manifest, &token)
            .await;
        registry
            .assert_serves("team/app", &manifest.digest, manifest, &token)
            .await;
    }

    // An OCI artifact with a subject: the PUT answers OCI-Subject.
    let layer = Content::random(64);
    registry
        .push_blob("team/app", &empty_config(), Some(&token))
        .await;
    registry.push_blob("team/app", &layer, Some(&token)).await;
    let sbom = artifact(
        "application/vnd.example.sbom+json",
        &layer,
        &oci_amd.manifest,
    );
    let resp = registry
        .put_manifest_ok("team/app", &sbom.digest, &sbom, &token)
        .await;
    assert_eq!(header(&resp, "OCI-Subject"), oci_amd.manifest.digest);
    registry
        .assert_serves("team/app", &sbom.digest, &sbom, &token)
        .await;
}

#[tokio::test]
async fn tags_move_and_digests_stay() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = admin(&env, "team/app").await;
    let (first, second) = (Image::random(1), Image::random(1));
    registry
        .push_image("team/app", "v1", &first, Some(&token))
        .await;
    // Read once so registryd caches it: the next PUT of the tag must replace the cached answer.
    registry
        .assert_serves("team/app", "v1", &first.manifest, &token)
        .await;
    registry
        .push_image("team/app", "v1", &second, Some(&token))
        .await;
    registry
        .assert_serves("team/app", "v1", &second.manifest, &token)
        .await;
    registry
        .assert_serves("team/app", &first.manifest.digest, &first.manifest, &token)
        .await;

    // PUT by digest: stored untagged; a body that does not hash to the digest is refused.
    let third = Image::random(1);
    for blob in third.blobs() {
        registry.push_blob("team/app", blob, Some(&token)).await;
    }
    let resp = registry
        .put_manifest(
            "team/app",
            &second.manifest.digest,
            &third.manifest,
            Some(&token),
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    registry
        .assert_serves(
            "team/app",
            &second.manifest.digest,
            &second.manifest,
            &token,
        )
        .await;
    registry
        .put_manifest_ok("team/app", &third.manifest.digest, &third.manifest, &token)
        .await;
    let tags: serde_json::Value = registry
        .get("/v2/team/app/tags/list", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!(["v1"]));
}

#[tokio::test]
async fn deleting_by_digest_and_by_tag() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = admin(&env, "team/app").await;
    let (kept, gone) = (Image::random(1), Image::random(1));
    registry
        .push_image("team/app", "kept", &kept, Some(&token))
        .await;
    registry
        .push_image("team/app", "also-kept", &kept, Some(&token))
        .await;
    registry
        .push_image("team/app", "gone", &gone, Some(&token))
        .await;
    // Read them all once so registryd caches them: each DELETE below must reach the cache.
    for (tag, image) in [("kept", &kept), ("also-kept", &kept), ("gone", &gone)] {
        registry
            .assert_serves("team/app", tag, &image.manifest, &token)
            .await;
    }
    let delete = |reference: &str| {
        registry.send(registry.request(
            Method::DELETE,
            &format!("/v2/team/app/manifests/{reference}"),
            Some(&token),
        ))
    };

    // By tag: only the tag goes.
    assert_eq!(delete("also-kept").await.status(), StatusCode::ACCEPTED);
    expect_error(
        registry
            .get("/v2/team/app/manifests/also-kept", Some(&token))
            .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    registry
        .assert_serves("team/app", "kept", &kept.manifest, &token)
        .await;

    // By digest: the manifest and the tags pointing at it go.
    assert_eq!(
        delete(&gone.manifest.digest).await.status(),
        StatusCode::ACCEPTED
    );
    let by_digest = format!("/v2/team/app/manifests/{}", gone.manifest.digest);
    expect_error(
        registry.get(&by_digest, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_error(
        registry
            .get("/v2/team/app/manifests/gone", Some(&token))
            .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_error(
        delete(&gone.manifest.digest).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_error(
        delete("never-was").await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    expect_error(
        delete(&sha256(b"unknown")).await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    let tags: serde_json::Value = registry
        .get("/v2/team/app/tags/list", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!(["kept"]));
}

#[tokio::test]
async fn deletes_switched_off_are_unsupported() {
    let env = TestEnv::with_auth(AuthSpec::standard(), false).await;
    let registry = env.registry();
    let token = admin(&env, "team/app").await;
    let image = Image::random(1);
    registry
        .push_image("team/app", "v1", &image, Some(&token))
        .await;
    for path in [
        format!("/v2/team/app/manifests/{}", image.manifest.digest),
        "/v2/team/app/manifests/v1".to_string(),
        format!("/v2/team/app/blobs/{}", image.layers[0].digest),
    ] {
        let resp = registry
            .send(registry.request(Method::DELETE, &path, Some(&token)))
            .await;
        expect_error(resp, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    }
    registry
        .assert_serves("team/app", "v1", &image.manifest, &token)
        .await;
    let resp = registry
        .head(
            &format!("/v2/team/app/blobs/{}", image.layers[0].digest),
            Some(&token),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn deleted_content_can_be_pushed_again() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = admin(&env, "team/app").await;
    let image = Image::random(2);
    registry
        .push_image("team/app", "v1", &image, Some(&token))
        .await;
    let delete =
        |path: String| registry.send(registry.request(Method::DELETE, &path, Some(&token)));
    assert_eq!(
        delete(format!("/v2/team/app/manifests/{}", image.manifest.digest))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    for blob in image.blobs() {
        assert_eq!(
            delete(format!("/v2/team/app/blobs/{}", blob.digest))
                .await
                .status(),
            StatusCode::ACCEPTED
        );
    }
    expect_error(
        registry
            .get("/v2/team/app/manifests/v1", Some(&token))
            .await,
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
    )
    .await;
    registry
        .push_image("team/app", "v1", &image, Some(&token))
        .await;
    registry
        .assert_serves("team/app", "v1", &image.manifest, &token)
        .await;
    for blob in image.blobs() {
        registry.assert_blob("team/app", blob, &token).await;
    }
}
