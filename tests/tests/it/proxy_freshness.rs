//! How the pull-through cache keeps tags fresh (`ttl: 1s`) and what it serves when the upstream
//! is away, counted on the upstream's access log: past the ttl an unchanged tag costs one `HEAD`
//! and no `GET`, a tag moved upstream is seen, a stopped upstream leaves cached tags served as
//! stale (with a `Warning`) and a miss answered 503 `UNAVAILABLE`.
//!
//! Needs `upstream.test` and `berth.test` in /etc/hosts: run through `./scripts/test`.

use std::time::Duration;

use berth_tests::content::{Content, Image};
use berth_tests::pull_through::{cache_state, PullThrough, PREFIX};
use berth_tests::registry::{expect_error, header};
use berth_tests::upstream::{count, Request, UpstreamAuth};
use reqwest::{Method, StatusCode};

/// The tag every test here moves or keeps.
const TAG: &str = "latest";

/// Longer than the ttl of 1 s: a tag cached before this wait is past its ttl after it.
const PAST_TTL: Duration = Duration::from_millis(1500);

/// A cache with ttl 1 s of an upstream holding `image` as `<repo>:latest`, and alice's token.
async fn cache_of(image: &Image) -> (PullThrough, String, String) {
    let (cache, repo) = PullThrough::stocked(UpstreamAuth::Bearer, "1s", "fresh", image).await;
    cache.upstream.push(&repo, TAG, image).await;
    let scope = format!("repository:{PREFIX}/{repo}:pull");
    let token = cache.token("alice", &[&scope]).await;
    (cache, repo, token)
}

/// `GET` of the cached tag: 200 with `expected`'s bytes and digest; returns `Berth-Cache`.
async fn get_tag(cache: &PullThrough, repo: &str, token: &str, expected: &Content) -> String {
    let name = format!("{PREFIX}/{repo}");
    let resp = cache.manifest(Method::GET, &name, TAG, Some(token)).await;
    assert_eq!(resp.status(), StatusCode::OK, "GET {name}:{TAG}");
    assert_eq!(header(&resp, "Docker-Content-Digest"), expected.digest);
    let state = cache_state(&resp);
    let body = resp.bytes().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(body.as_ref(), expected.bytes.as_slice(), "GET {name}:{TAG}");
    state
}

/// The upstream's requests for manifests of `repo` since the first `since` requests.
async fn manifest_requests(cache: &PullThrough, repo: &str, since: usize) -> Vec<Request> {
    let prefix = format!("/v2/{repo}/manifests/");
    cache.upstream.requests().await[since..]
        .iter()
        .filter(|r| r.path().starts_with(&prefix))
        .cloned()
        .collect()
}

#[tokio::test]
async fn past_the_ttl_an_unchanged_tag_costs_one_head_and_a_moved_tag_is_seen() {
    let first = Image::random(1);
    let (mut cache, repo, token) = cache_of(&first).await;
    let tag_path = format!("/v2/{repo}/manifests/{TAG}");

    assert_eq!(
        get_tag(&cache, &repo, &token, &first.manifest).await,
        "miss"
    );

    tokio::time::sleep(PAST_TTL).await;
    let since = cache.upstream.requests().await.len();
    let state = get_tag(&cache, &repo, &token, &first.manifest).await;
    assert_eq!(state, "revalidated", "an unchanged tag past the ttl");
    let asked = manifest_requests(&cache, &repo, since).await;
    assert_eq!(count(&asked, "HEAD", &tag_path), 1, "{asked:?}");
    assert!(
        asked.iter().all(|r| r.method == "HEAD"),
        "revalidating an unchanged tag fetched it: {asked:?}"
    );

    let second = Image::random(1);
    cache.upstream.push(&repo, TAG, &second).await;
    tokio::time::sleep(PAST_TTL).await;
    let since = cache.upstream.requests().await.len();
    let state = get_tag(&cache, &repo, &token, &second.manifest).await;
    assert_eq!(state, "miss", "a tag moved upstream, past the ttl");
    let asked = manifest_requests(&cache, &repo, since).await;
    let gets = asked.iter().filter(|r| r.method == "GET").count();
    assert_eq!(gets, 1, "one GET of the moved tag's manifest: {asked:?}");

    // The moved tag's manifest is cached like the first one: with the upstream away it is
    // what the tag serves (stale past the ttl).
    cache.upstream.stop();
    tokio::time::sleep(PAST_TTL).await;
    assert_eq!(
        get_tag(&cache, &repo, &token, &second.manifest).await,
        "stale"
    );
}

#[tokio::test]
async fn with_the_upstream_stopped_a_cached_tag_is_stale_and_a_miss_is_unavailable() {
    let image = Image::random(1);
    let (mut cache, repo, token) = cache_of(&image).await;
    let name = format!("{PREFIX}/{repo}");
    assert_eq!(
        get_tag(&cache, &repo, &token, &image.manifest).await,
        "miss"
    );
    let layer = &image.layers[0];
    let resp = cache.blob(&name, &layer.digest, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(cache_state(&resp), "miss");
    drop(resp);
    let unknown = cache
        .manifest(Method::GET, &name, "never-pushed", Some(&token))
        .await;
    expect_error(unknown, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;

    cache.upstream.stop();
    tokio::time::sleep(PAST_TTL).await;
    let resp = cache.manifest(Method::GET, &name, TAG, Some(&token)).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a cached tag, upstream stopped"
    );
    assert_eq!(cache_state(&resp), "stale");
    let warning = header(&resp, "Warning");
    assert!(warning.starts_with("110 "), "Warning: {warning}");
    let resp = cache.blob(&name, &layer.digest, Some(&token)).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a cached blob, upstream stopped"
    );
    assert_eq!(cache_state(&resp), "hit");

    let uncached = cache
        .manifest(Method::GET, &name, "never-asked", Some(&token))
        .await;
    expect_error(uncached, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
    let scope = format!("repository:{PREFIX}/{repo}-other:pull");
    let other = cache.token("alice", &[&scope]).await;
    let resp = cache
        .manifest(Method::GET, &format!("{name}-other"), TAG, Some(&other))
        .await;
    expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE").await;
}
