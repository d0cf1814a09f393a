//! Concurrent misses of one blob share one upstream fetch: 8 clients pulling the same uncached
//! 64 MiB layer through the cache at once cost the upstream one `GET` of it (counted on its access
//! log), and each client gets the layer byte-exact.
//!
//! Needs `upstream.test` and `berth.test` in /etc/hosts: run through `./scripts/test`.

use berth_tests::content::{sha256, Content, Image};
use berth_tests::pull_through::{PullThrough, PREFIX};
use berth_tests::upstream::{count, UpstreamAuth};
use futures_util::future::join_all;
use reqwest::StatusCode;

/// The clients pulling at once.
const CLIENTS: usize = 8;

/// The cache's count of bytes read from an upstream.
const UPSTREAM_BYTES: &str = "registry_proxy_upstream_bytes_total";

/// The layer's size.
const LAYER: usize = 64 << 20;

#[tokio::test]
async fn eight_concurrent_pulls_of_an_uncached_layer_cost_one_upstream_get() {
    let layer = Content::random(LAYER);
    let image = Image::oci("amd64", vec![layer.clone()]);
    let (cache, repo) = PullThrough::stocked(UpstreamAuth::Bearer, "10m", "big", &image).await;
    let name = format!("{PREFIX}/{repo}");
    let token = cache
        .token("alice", &[&format!("repository:{name}:pull")])
        .await;
    let since = cache.upstream.requests().await.len();
    let upstream_bytes = || cache.metric(UPSTREAM_BYTES, &[("upstream", PREFIX)]);
    let bytes_before = upstream_bytes().await;

    // Each client its own connection (the cache sees 8 requests at once, not a queue).
    let pulls = (0..CLIENTS).map(|_| {
        let cache = &cache;
        let (name, digest, token) = (&name, &layer.digest, &token);
        async move {
            let resp = cache.blob(name, digest, Some(token)).await;
            let status = resp.status();
            let body = resp.bytes().await.map(|b| (b.len(), sha256(&b)));
            (status, body.map_err(|e| e.to_string()))
        }
    });
    for (i, (status, body)) in join_all(pulls).await.into_iter().enumerate() {
        assert_eq!(status, StatusCode::OK, "client {i}");
        assert_eq!(
            body,
            Ok((LAYER, layer.digest.clone())),
            "client {i} got other bytes"
        );
    }

    let asked = cache.upstream.requests().await;
    let blob_path = format!("/v2/{repo}/blobs/{}", layer.digest);
    assert_eq!(
        count(&asked[since..], "GET", &blob_path),
        1,
        "upstream GETs of the layer: {:?}",
        &asked[since..]
    );
    let fetched = upstream_bytes().await - bytes_before;
    assert!(
        (LAYER as f64..2.0 * LAYER as f64).contains(&fetched),
        "{fetched} bytes from upstream for one {LAYER}-byte layer"
    );
}
