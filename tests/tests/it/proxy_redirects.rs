//! Upstreams send blob downloads elsewhere (a `307` to object storage or a CDN): the cache follows
//! the redirect, serves the blob byte-exact, and never sends the upstream's credentials to the
//! redirect target.
//!
//! Needs `upstream.test` and `berth.test` in /etc/hosts: run through `./scripts/test`.

use berth_tests::content::{unique, Image};
use berth_tests::pull_through::{PullThrough, PREFIX};
use berth_tests::redirecting_front::RedirectingFront;
use berth_tests::upstream::{Upstream, UpstreamAuth, HOST};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn blob_redirects_are_followed_without_the_upstream_credentials() {
    let image = Image::random(1);
    let upstream = Upstream::start(UpstreamAuth::Basic).await;
    let repo = format!("library/redirected-{}", unique());
    upstream.push(&repo, "1", &image).await;
    let front = RedirectingFront::start(upstream.addr(), &upstream.puller).await;
    let remoteurl = format!("http://{HOST}:{}", front.port);
    let cache = PullThrough::start_via(upstream, &remoteurl, "10m").await;
    let name = format!("{PREFIX}/{repo}");
    let token = cache
        .token("alice", &[&format!("repository:{name}:pull")])
        .await;

    let resp = cache.manifest(Method::GET, &name, "1", Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK, "GET {name}:1");
    for blob in image.blobs() {
        let resp = cache.blob(&name, &blob.digest, Some(&token)).await;
        assert_eq!(resp.status(), StatusCode::OK, "blob {}", blob.digest);
        let body = resp.bytes().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            body.as_ref() == blob.bytes.as_slice(),
            "other bytes for {}",
            blob.digest
        );
    }

    let cdn = front.cdn_requests();
    assert_eq!(
        cdn.len(),
        image.blobs().len(),
        "each blob fetched once from the redirect target: {cdn:?}"
    );
    assert!(
        cdn.iter().all(Option::is_none),
        "credentials went to the redirect target: {cdn:?}"
    );
}
