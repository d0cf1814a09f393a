//! The cache's size limit (`proxy.maxsize`): pulling more than fits evicts cached content least
//! recently used first and keeps the cache under the limit, and never touches pushed images, nor
//! a cached blob that a pushed manifest references.
//!
//! Needs `upstream.test` and `berth.test` in /etc/hosts: run through `./scripts/test`.

use std::time::Duration;

use berth_tests::content::{unique, Content, Image};
use berth_tests::pull_through::{cache_state, PullThrough, PREFIX};
use berth_tests::registry::expect_error;
use berth_tests::upstream::{Upstream, UpstreamAuth};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Each cached image's layer.
const LAYER: usize = 1 << 20;

/// The limit: two and a half layers.
const MAXSIZE: u64 = 5 * (LAYER as u64) / 2;

/// Between pulls, so that their recency differs even to a clock counting seconds.
const APART: Duration = Duration::from_millis(1100);

/// Polls of the cache's size (every 100 ms: 10 s) before it counts as never back under the limit.
const SETTLE_POLLS: u32 = 100;

#[tokio::test]
async fn eviction_keeps_the_cache_under_its_limit_lru_first_and_never_touches_pushed_content() {
    let images: Vec<Image> = (0..4)
        .map(|i| Image::oci("amd64", vec![Content::tar_layer(&format!("l{i}"), LAYER)]))
        .collect();
    let upstream = Upstream::start(UpstreamAuth::Bearer).await;
    let repos: Vec<String> = (0..4)
        .map(|i| format!("library/evict{i}-{}", unique()))
        .collect();
    for (repo, image) in repos.iter().zip(&images) {
        upstream.push(repo, "1", image).await;
    }
    let remoteurl = upstream.url();
    let maxsize = json!({"maxsize": MAXSIZE});
    let mut cache = PullThrough::start_with(upstream, &remoteurl, "10m", maxsize).await;
    let names: Vec<String> = repos.iter().map(|r| format!("{PREFIX}/{r}")).collect();
    let mut scopes: Vec<String> = names
        .iter()
        .map(|n| format!("repository:{n}:pull"))
        .collect();
    scopes.extend(
        [
            "repository:alice/app:pull,push",
            "repository:alice/shared:pull,push",
        ]
        .map(String::from),
    );
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let token = cache.token("alice", &scopes).await;
    let registry = cache.registry();

    // Pushed: an image of its own, and one whose layer is the first cached image's.
    let own = Image::random(1);
    registry
        .push_image("alice/app", "1", &own, Some(&token))
        .await;
    let shared = Image::oci("amd64", images[0].layers.clone());
    registry
        .push_image("alice/shared", "1", &shared, Some(&token))
        .await;

    for (name, image) in names.iter().zip(&images) {
        let resp = cache.manifest(Method::GET, name, "1", Some(&token)).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET {name}:1");
        for blob in image.blobs() {
            let resp = cache.blob(name, &blob.digest, Some(&token)).await;
            assert_eq!(resp.status(), StatusCode::OK, "{name}: {}", blob.digest);
            let body = resp.bytes().await.unwrap_or_else(|e| panic!("{e}"));
            assert!(
                body.as_ref() == blob.bytes.as_slice(),
                "{name}: {}",
                blob.digest
            );
        }
        tokio::time::sleep(APART).await;
    }

    let mut size = f64::MAX;
    for _ in 0..SETTLE_POLLS {
        size = cache.metric("registry_proxy_cache_bytes", &[]).await;
        if (1.0..=MAXSIZE as f64).contains(&size) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        (1.0..=MAXSIZE as f64).contains(&size),
        "the cache holds {size} bytes (registry_proxy_cache_bytes), not within 1..={MAXSIZE}"
    );
    let evictions = cache.metric("registry_proxy_evictions_total", &[]).await;
    assert!(
        evictions >= 1.0,
        "{evictions} evictions after pulling over the limit"
    );

    // Only the store can answer now: what was evicted is unavailable, what was kept is a hit.
    cache.upstream.stop();
    let evicted = &images[1].layers[0];
    let resp = cache.blob(&names[1], &evicted.digest, Some(&token)).await;
    expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
    let latest = &images[3].layers[0];
    let resp = cache.blob(&names[3], &latest.digest, Some(&token)).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the most recent pull was evicted"
    );
    assert_eq!(cache_state(&resp), "hit");

    for blob in own.blobs() {
        registry.assert_blob("alice/app", blob, &token).await;
    }
    for blob in shared.blobs() {
        registry.assert_blob("alice/shared", blob, &token).await;
    }
}
