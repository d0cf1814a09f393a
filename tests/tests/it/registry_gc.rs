//! Garbage collection frees what deleted images leave, safely while registryd serves: unique
//! layers of a deleted image go from disk and from their repository, shared ones stay and pull
//! byte-identical; a blob waiting for its manifest survives until the grace period is over;
//! `registryd gc` runs beside the daemon. The soak and the crash during collection are in
//! `registry_gc_soak`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use berth_tests::content::{Content, Image};
use berth_tests::env::TestEnv;
use berth_tests::gc::{blob_files, digests, pull_matches, run_gc, trash_files};
use berth_tests::registry::expect_error;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Polls of a blob waiting for the periodic collection (every 200 ms: 30 s at most).
const POLLS: usize = 150;

/// `registry.yaml` of `env` with `storage.maintenance.gc.grace` set to `grace`, written beside
/// it, for a `registryd gc` run with another grace period than the daemon's.
fn config_with_grace(env: &TestEnv, grace: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(env.registryd.config()).unwrap();
    let mut yaml: Value = serde_yaml::from_str(&text).unwrap();
    yaml["storage"]["maintenance"]["gc"]["grace"] = json!(grace);
    let path = env.dir.path().join(format!("registry-grace-{grace}.yaml"));
    std::fs::write(&path, serde_yaml::to_string(&yaml).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn deleting_an_image_frees_its_own_layers_and_keeps_shared_ones() {
    let env = TestEnv::open_with(
        json!({"inline": {"maxsize": 0}, "maintenance": {"gc": {"enabled": false, "grace": "0s"}}}),
    )
    .await;
    let registry = env.registry();
    let data = env.registryd.data();
    let shared = Content::tar_layer("shared", 40_000);
    let a = Image::oci(
        "amd64",
        vec![shared.clone(), Content::tar_layer("a", 50_000)],
    );
    let b = Image::oci(
        "amd64",
        vec![shared.clone(), Content::tar_layer("b", 60_000)],
    );
    let c = Image::oci("arm64", vec![shared.clone()]);
    registry.push_image("gc/app", "a", &a, None).await;
    registry.push_image("gc/app", "b", &b, None).await;
    registry.push_image("gc/other", "c", &c, None).await;
    let before = blob_files(&data);
    let out = run_gc(env.registryd.config(), &[]);
    assert!(out.contains("freed 0 blobs, 0 bytes"), "{out}");
    assert_eq!(blob_files(&data), before, "everything is referenced");

    let resp = registry
        .send(registry.request(
            Method::DELETE,
            &format!("/v2/gc/app/manifests/{}", a.manifest.digest),
            None,
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // The manifest, the config and the unique layer; the shared layer is b's and c's too.
    let own = [&a.manifest, &a.config, &a.layers[1]];
    let own_bytes: usize = own.iter().map(|c| c.bytes.len()).sum();
    let expected = format!("3 blobs, {own_bytes} bytes");
    let out = run_gc(env.registryd.config(), &["--dry-run"]);
    assert!(out.contains(&format!("would free {expected}")), "{out}");
    assert_eq!(blob_files(&data), before, "a dry run removes nothing");

    // The daemon keeps serving meanwhile: the run is another process over the same data.
    let out = run_gc(env.registryd.config(), &[]);
    assert!(out.contains(&format!("freed {expected}")), "{out}");
    let after = blob_files(&data);
    for blob in own {
        assert!(
            !after.contains(&blob.digest),
            "{} is still on disk",
            blob.digest
        );
        let resp = registry
            .get(&format!("/v2/gc/app/blobs/{}", blob.digest), None)
            .await;
        expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    }
    let mut expected_files: Vec<String> = digests(&b).into_iter().chain(digests(&c)).collect();
    expected_files.sort();
    expected_files.dedup();
    assert_eq!(after.into_iter().collect::<Vec<_>>(), expected_files);
    assert!(trash_files(&data).is_empty());
    pull_matches(&registry, "gc/app", "b", &b).await.unwrap();
    pull_matches(&registry, "gc/other", "c", &c).await.unwrap();
    let resp = registry.get("/v2/gc/app/manifests/a", None).await;
    expect_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn a_blob_waiting_for_its_manifest_survives_the_grace_period_only() {
    let env = TestEnv::open_with(
        json!({"inline": {"maxsize": 0}, "maintenance": {"gc": {"enabled": true, "interval": "1s", "grace": "2s"}}}),
    )
    .await;
    let registry = env.registry();
    let data = env.registryd.data();
    let pending = Content::random(30_000);
    registry.push_blob("gc/pending", &pending, None).await;
    let path = format!("/v2/gc/pending/blobs/{}", pending.digest);

    // Within the grace period (an hour for this run) nothing is collected.
    let out = run_gc(&config_with_grace(&env, "1h"), &[]);
    assert!(out.contains("freed 0 blobs"), "{out}");
    let resp = registry.get(&path, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), pending.bytes);

    // The daemon's own runs (every second, grace 2 s) collect it once the grace is over.
    let mut collected = false;
    for _ in 0..POLLS {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if registry.get(&path, None).await.status() == StatusCode::NOT_FOUND {
            collected = true;
            break;
        }
    }
    assert!(collected, "the blob outlived its grace period");
    let resp = registry.get(&path, None).await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    // Its row goes in the same transaction as its file; the file follows at once.
    let mut gone = false;
    for _ in 0..POLLS {
        if !blob_files(&data).contains(&pending.digest) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gone, "the blob's file stayed");
    let metrics = registry.get("/metrics", None).await.text().await.unwrap();
    let counter = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(counter("registry_gc_runs_total") >= 1.0, "{metrics}");
    assert!(counter("registry_gc_blobs_freed_total") >= 1.0, "{metrics}");
    assert!(
        counter("registry_gc_bytes_freed_total") >= pending.bytes.len() as f64,
        "{metrics}"
    );
}

#[tokio::test]
async fn untagged_manifests_go_only_when_asked() {
    let env = TestEnv::open_with(
        json!({"inline": {"maxsize": 0}, "maintenance": {"gc": {"enabled": false, "grace": "0s"}}}),
    )
    .await;
    let registry = env.registry();
    let data = env.registryd.data();
    let tagged = Image::random(1);
    let untagged = Image::random(1);
    registry.push_image("gc/untag", "v1", &tagged, None).await;
    registry
        .push_image("gc/untag", &untagged.manifest.digest, &untagged, None)
        .await;
    let out = run_gc(env.registryd.config(), &[]);
    assert!(out.contains("freed 0 blobs"), "{out}");
    let by_digest = format!("/v2/gc/untag/manifests/{}", untagged.manifest.digest);
    assert_eq!(
        registry.get(&by_digest, None).await.status(),
        StatusCode::OK
    );

    let out = run_gc(env.registryd.config(), &["--delete-untagged"]);
    assert!(
        out.contains("freed 3 blobs") && out.contains("(1 manifests"),
        "{out}"
    );
    let files = blob_files(&data);
    for d in digests(&untagged) {
        assert!(
            !files.contains(&d),
            "{d} of the untagged image is still on disk"
        );
    }
    pull_matches(&registry, "gc/untag", "v1", &tagged)
        .await
        .unwrap();
    // The daemon caches manifests it served; another process deleted this one, so the
    // manifest may still be served from that cache, but its blobs are gone.
    let resp = registry
        .get(
            &format!("/v2/gc/untag/blobs/{}", untagged.config.digest),
            None,
        )
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
}
