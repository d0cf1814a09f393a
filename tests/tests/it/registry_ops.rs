//! Operating registryd: health, Prometheus metrics, and everything surviving a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{artifact, empty_config, Content, Image};
use berth_tests::env::TestEnv;
use berth_tests::registry::{header, Registry};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The value of the first sample of `metric` whose line contains every one of `labels`.
async fn sample(registry: &Registry, metric: &str, labels: &[&str]) -> Option<f64> {
    let text = registry.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(metric) && labels.iter().all(|needle| l.contains(needle)))
        .find_map(|l| l.rsplit(' ').next().and_then(|v| v.parse().ok()))
}

#[tokio::test]
async fn health_and_metrics_reflect_the_traffic() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let resp = registry.get("/healthz", None).await;
    assert_eq!(resp.status(), StatusCode::OK, "healthz needs no token");
    let resp = registry.get("/metrics", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        header(&resp, "Content-Type").starts_with("text/plain"),
        "{}",
        header(&resp, "Content-Type")
    );

    let token = env.admin_token(&["team/app"]).await;
    let blob = Content::random(100_000);
    registry.push_blob("team/app", &blob, Some(&token)).await;
    // This daemon served only this test: exactly one upload started, answered 201.
    let created = sample(
        &registry,
        "registry_http_requests_total",
        &["route=\"upload_start\"", "status=\"201\""],
    )
    .await;
    assert_eq!(created, Some(1.0), "the one monolithic upload");
    let received = sample(&registry, "registry_bytes_received_total", &[])
        .await
        .unwrap_or(0.0);
    assert!(received >= 100_000.0, "bytes received {received}");
    let _ = registry
        .get(&format!("/v2/team/app/blobs/{}", blob.digest), Some(&token))
        .await
        .bytes()
        .await;
    let sent = sample(&registry, "registry_bytes_sent_total", &[])
        .await
        .unwrap_or(0.0);
    assert!(sent >= 100_000.0, "bytes sent {sent}");

    let before = sample(&registry, "registry_uploads_in_progress", &[])
        .await
        .unwrap_or(0.0);
    let location = registry.start_upload("team/app", &token).await;
    let during = sample(&registry, "registry_uploads_in_progress", &[])
        .await
        .unwrap_or(0.0);
    assert_eq!(during, before + 1.0, "an open upload is counted");
    let resp = registry
        .send(registry.request(Method::DELETE, &location, Some(&token)))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let after = sample(&registry, "registry_uploads_in_progress", &[])
        .await
        .unwrap_or(0.0);
    assert_eq!(after, before, "a cancelled upload is no longer counted");
}

#[tokio::test]
async fn tags_catalog_and_referrers_survive_a_restart() {
    let mut env = TestEnv::standard().await;
    let token = env.admin_token(&["team/app", "team/lib"]).await;
    let catalog = env.token("admin", &["registry:catalog:*"]).await;
    let registry = env.registry();
    let image = Image::random(2);
    registry
        .push_image("team/app", "v1", &image, Some(&token))
        .await;
    registry
        .push_image("team/lib", "v2", &Image::random(1), Some(&token))
        .await;
    let layer = Content::random(10);
    registry
        .push_blob("team/app", &empty_config(), Some(&token))
        .await;
    registry.push_blob("team/app", &layer, Some(&token)).await;
    let sbom = artifact("application/vnd.example.sbom", &layer, &image.manifest);
    registry
        .push_manifest("team/app", &sbom.digest, &sbom, Some(&token))
        .await;

    env.registryd.restart().await;
    let registry = env.registry();
    registry
        .assert_serves("team/app", "v1", &image.manifest, &token)
        .await;
    let tags: Value = registry
        .get("/v2/team/lib/tags/list", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!(["v2"]));
    let repos: Value = registry
        .get("/v2/_catalog", Some(&catalog))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(repos["repositories"], json!(["team/app", "team/lib"]));
    let path = format!("/v2/team/app/referrers/{}", image.manifest.digest);
    let referrers: Value = registry
        .get(&path, Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(referrers["manifests"][0]["digest"], sbom.digest.as_str());
    for blob in image.blobs() {
        registry.assert_blob("team/app", blob, &token).await;
    }
}

#[tokio::test]
async fn startup_logs_the_address_and_warns_loudly_when_open() {
    let open = TestEnv::open().await;
    let log = open.registryd.daemon.log_text();
    assert!(
        log.contains(&format!("listening on {}", open.registryd.daemon.addr)),
        "no `listening on ADDR` line:\n{log}"
    );
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.to_lowercase().contains("open"));
    assert!(
        warning.is_some(),
        "an open registry starts without a warning:\n{log}"
    );
    // And it is open indeed: a push without any credentials works.
    open.registry()
        .push_image("team/app", "v1", &Image::random(1), None)
        .await;

    let guarded = TestEnv::standard().await;
    let log = guarded.registryd.daemon.log_text();
    assert!(log.contains(&format!("listening on {}", guarded.registryd.daemon.addr)));
    assert!(
        !log.lines()
            .any(|l| l.contains("WARN") && l.to_lowercase().contains("open")),
        "a token registry warns it is open:\n{log}"
    );
}
