//! skopeo against authd + registryd: a multi-arch OCI index copied in and out (`--all`),
//! `list-tags`, `inspect`, `delete`, and a read-only user refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{index, Image, OCI_INDEX};
use berth_tests::env::TestEnv;
use berth_tests::oci_layout::{read_blob, OciLayout};
use berth_tests::registry::header;
use berth_tests::skopeo::{skopeo, skopeo_ok};
use serde_json::{json, Value};

const ALICE: &str = "alice:alice-pass";

#[tokio::test]
async fn skopeo_copies_a_multi_arch_index_in_and_out() {
    let env = TestEnv::standard().await;
    let host = env.registry_host();
    let amd = Image::oci_gzip("amd64", 2);
    let arm = Image::oci_gzip("arm64", 2);
    let multi = index(OCI_INDEX, &[("amd64", &amd), ("arm64", &arm)]);
    let source = env.dir.path().join("layout-in");
    let mut layout = OciLayout::create(&source);
    layout.add_image(&amd);
    layout.add_image(&arm);
    layout.tag(&multi, "v1");

    let dest = format!("docker://{host}/alice/multi:v1");
    skopeo_ok(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        "--dest-creds",
        ALICE,
        &layout.reference("v1"),
        &dest,
    ]);

    // The registry holds the very same index, and every child and blob under it.
    let registry = env.registry();
    let token = env.token("alice", &["repository:alice/multi:pull"]).await;
    let resp = registry
        .get("/v2/alice/multi/manifests/v1", Some(&token))
        .await;
    assert_eq!(header(&resp, "Content-Type"), OCI_INDEX);
    assert_eq!(
        header(&resp, "Docker-Content-Digest"),
        multi.digest,
        "skopeo kept the index as written"
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), multi.bytes.as_slice());
    for image in [&amd, &arm] {
        registry
            .assert_serves(
                "alice/multi",
                &image.manifest.digest,
                &image.manifest,
                &token,
            )
            .await;
        for blob in image.blobs() {
            let resp = registry
                .get(
                    &format!("/v2/alice/multi/blobs/{}", blob.digest),
                    Some(&token),
                )
                .await;
            assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.bytes.as_slice());
        }
    }

    // inspect --raw: the index; inspect of one platform: its layers.
    let raw = skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        ALICE,
        &dest,
    ]);
    let raw: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(raw, serde_json::from_slice::<Value>(&multi.bytes).unwrap());
    let arm_info = skopeo_ok(&[
        "--override-arch",
        "arm64",
        "inspect",
        "--tls-verify=false",
        "--creds",
        ALICE,
        &dest,
    ]);
    let arm_info: Value = serde_json::from_str(&arm_info).unwrap();
    assert_eq!(arm_info["Architecture"], "arm64");
    let arm_layers: Vec<&str> = arm.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(arm_info["Layers"], json!(arm_layers));

    // Registry to registry (pull + push, blobs mounted), then list-tags.
    let v2 = format!("docker://{host}/alice/multi:v2");
    skopeo_ok(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        ALICE,
        "--dest-creds",
        ALICE,
        &dest,
        &v2,
    ]);
    let tags = skopeo_ok(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        ALICE,
        &format!("docker://{host}/alice/multi"),
    ]);
    let tags: Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], json!(["v1", "v2"]));

    // Out again into a fresh layout: same index, same bytes.
    let out_dir = env.dir.path().join("layout-out");
    let out = format!("oci:{}:v1", out_dir.display());
    skopeo_ok(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--src-creds",
        ALICE,
        &dest,
        &out,
    ]);
    let out_index: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(out_index["manifests"][0]["digest"], multi.digest.as_str());
    for content in [&multi, &amd.manifest, &arm.manifest]
        .into_iter()
        .chain(amd.blobs())
        .chain(arm.blobs())
    {
        assert_eq!(
            read_blob(&out_dir, &content.digest).as_deref(),
            Some(content.bytes.as_slice()),
            "{} in the copied-out layout",
            content.digest
        );
    }
}

#[tokio::test]
async fn skopeo_delete_needs_the_delete_right() {
    let env = TestEnv::standard().await;
    let host = env.registry_host();
    let image = Image::oci_gzip("amd64", 1);
    let source = env.dir.path().join("layout");
    let mut layout = OciLayout::create(&source);
    layout.add_image(&image);
    layout.tag(&image.manifest, "v1");
    let dest = format!("docker://{host}/alice/gone:v1");
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        ALICE,
        &layout.reference("v1"),
        &dest,
    ]);

    // bob only reads: his push and his delete are refused, and nothing changes.
    let out = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "bob:bob-pass",
        &layout.reference("v1"),
        &format!("docker://{host}/alice/bobs:v1"),
    ]);
    assert!(!out.success, "bob pushed: {}", out.all());
    let out = skopeo(&[
        "delete",
        "--tls-verify=false",
        "--creds",
        "bob:bob-pass",
        &dest,
    ]);
    assert!(!out.success, "bob deleted: {}", out.all());
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "bob:bob-pass",
        &dest,
    ]);
    assert!(out.success, "bob can still read: {}", out.all());

    skopeo_ok(&["delete", "--tls-verify=false", "--creds", ALICE, &dest]);
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        ALICE,
        &dest,
    ]);
    assert!(!out.success, "deleted image still inspects: {}", out.stdout);
    assert!(
        out.stderr.to_lowercase().contains("manifest unknown"),
        "{}",
        out.stderr
    );
    let tags = skopeo_ok(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        ALICE,
        &format!("docker://{host}/alice/gone"),
    ]);
    let tags: Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(
        tags["Tags"],
        json!([]),
        "the deleted manifest's tag is gone"
    );
}
