//! An upstream that fails in the middle of a blob: one serving other bytes than the digest
//! names, and one whose connection breaks mid-blob. Either way the client's download fails,
//! nothing is cached (the next pull is a miss, fetched again), and once the upstream is right the
//! next pull gets the blob byte-exact and caches it.
//!
//! Needs `upstream.test` and `berth.test` in /etc/hosts: run through `./scripts/test`.

use berth_tests::content::{unique, Content, Image};
use berth_tests::fault_relay::FaultRelay;
use berth_tests::pull_through::{cache_state, PullThrough, PREFIX};
use berth_tests::registry::expect_error;
use berth_tests::upstream::{count, Upstream, UpstreamAuth};
use reqwest::StatusCode;

/// The layer's size: large enough to be streamed in many chunks.
const LAYER: usize = 8 << 20;

/// alice's pull token for the cached name of `repo`.
async fn alice(cache: &PullThrough, repo: &str) -> String {
    let scope = format!("repository:{PREFIX}/{repo}:pull");
    cache.token("alice", &[&scope]).await
}

/// Asserts that a pull of `layer` through the cache fails for the client: an error status, or a
/// body that breaks off (never all of some bytes with a 200).
async fn assert_pull_fails(cache: &PullThrough, repo: &str, layer: &Content, token: &str) {
    let name = format!("{PREFIX}/{repo}");
    let resp = cache.blob(&name, &layer.digest, Some(token)).await;
    let status = resp.status();
    let body = resp.bytes().await;
    assert!(
        status != StatusCode::OK || body.is_err(),
        "the client got a whole 200 answer ({} bytes) for a blob the upstream broke",
        body.map_or(0, |b| b.len())
    );
}

/// Asserts that the next pull of `layer` is fetched from upstream (`miss`, one upstream GET) and
/// byte-exact, and the one after is served from the cache (`hit`).
async fn assert_pulled_then_cached(cache: &PullThrough, repo: &str, layer: &Content, token: &str) {
    let name = format!("{PREFIX}/{repo}");
    let since = cache.upstream.requests().await.len();
    let resp = cache.blob(&name, &layer.digest, Some(token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        cache_state(&resp),
        "miss",
        "the broken pull left a cached blob"
    );
    let body = resp.bytes().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        body.as_ref() == layer.bytes.as_slice(),
        "other bytes after the fix"
    );
    let asked = cache.upstream.requests().await;
    let path = format!("/v2/{repo}/blobs/{}", layer.digest);
    assert_eq!(count(&asked[since..], "GET", &path), 1, "{asked:?}");

    let resp = cache.blob(&name, &layer.digest, Some(token)).await;
    assert_eq!(cache_state(&resp), "hit");
    let body = resp.bytes().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        body.as_ref() == layer.bytes.as_slice(),
        "other bytes from the cache"
    );
}

#[tokio::test]
async fn wrong_bytes_from_upstream_fail_the_pull_and_cache_nothing() {
    let layer = Content::random(LAYER);
    let image = Image::oci("amd64", vec![layer.clone()]);
    let (cache, repo) = PullThrough::stocked(UpstreamAuth::Bearer, "10m", "wrong", &image).await;
    let token = alice(&cache, &repo).await;

    cache.upstream.corrupt_blob(&layer);
    assert_pull_fails(&cache, &repo, &layer, &token).await;
    assert_pull_fails(&cache, &repo, &layer, &token).await;

    cache.upstream.restore_blob(&layer);
    assert_pulled_then_cached(&cache, &repo, &layer, &token).await;
}

#[tokio::test]
async fn an_upstream_cut_mid_blob_fails_the_pull_and_shows_no_partial_blob() {
    let layer = Content::random(LAYER);
    let image = Image::oci("amd64", vec![layer.clone()]);
    let upstream = Upstream::start(UpstreamAuth::Bearer).await;
    let repo = format!("library/cut-{}", unique());
    upstream.push(&repo, "1", &image).await;
    let relay = FaultRelay::start(upstream.addr()).await;
    let remoteurl = format!("http://{}", relay.addr);
    let mut cache = PullThrough::start_via(upstream, &remoteurl, "10m").await;
    let token = alice(&cache, &repo).await;
    let name = format!("{PREFIX}/{repo}");

    relay.cut_after(LAYER as u64 / 4);
    assert_pull_fails(&cache, &repo, &layer, &token).await;

    // With the upstream away, only a blob the cache holds could be served: the partial one
    // must not be.
    cache.upstream.stop();
    let resp = cache.blob(&name, &layer.digest, Some(&token)).await;
    expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;

    cache.upstream.resume().await;
    relay.heal();
    assert_pulled_then_cached(&cache, &repo, &layer, &token).await;
}
