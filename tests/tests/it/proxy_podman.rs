//! podman pulling through the cache as its registry mirror, configured as the README says (a
//! `registries.conf` whose `[[registry.mirror]]` is `berth.test:PORT/docker.io`, plain http): it
//! gets an image that exists only upstream, fetched by Berth (its user agent in the upstream's
//! log, misses in its metrics), never by podman itself.
//!
//! Needs root, podman, `berth.test` and `upstream.test` in /etc/hosts: run through
//! `./scripts/test`.

use berth_tests::content::Image;
use berth_tests::podman::Podman;
use berth_tests::pull_through::{PullThrough, PREFIX};
use berth_tests::upstream::UpstreamAuth;

/// The user agent registryd sends upstream.
const BERTH_AGENT: &str = "berth-registryd/";

/// Answers of the cache fetched from the upstream so far.
async fn misses(cache: &PullThrough) -> f64 {
    let labels = [("result", "miss")];
    cache.metric("registry_proxy_requests_total", &labels).await
}

#[tokio::test]
async fn podman_pulls_through_a_registries_conf_mirror() {
    let image = Image::oci_gzip("amd64", 2);
    let (cache, repo) = PullThrough::stocked(UpstreamAuth::Bearer, "10m", "podman", &image).await;
    let before = cache.upstream.requests().await.len();
    let podman = Podman::with_mirror(
        &cache.upstream.host(),
        &format!("{}/{PREFIX}", cache.host()),
    );
    podman.login(&cache.host(), "alice", "alice-pass");
    let missed = misses(&cache).await;

    let reference = format!("{}/{repo}:1", cache.upstream.host());
    let out = podman.run(&["pull", &reference]);
    assert!(out.success, "podman pull {reference}:\n{}", out.all());
    assert_eq!(
        podman.inspect(&reference, "{{.Id}}"),
        image.config.hex(),
        "podman holds another image"
    );
    assert_eq!(
        podman.inspect(&reference, "{{.Digest}}"),
        image.manifest.digest
    );

    let asked = cache.upstream.requests().await;
    let asked = &asked[before..];
    let past_the_mirror: Vec<_> = asked
        .iter()
        .filter(|r| !r.user_agent.starts_with(BERTH_AGENT))
        .collect();
    assert!(
        past_the_mirror.is_empty(),
        "podman went past the mirror to the upstream: {past_the_mirror:?}"
    );
    let manifest = format!("/v2/{repo}/manifests/1");
    assert!(
        asked
            .iter()
            .any(|r| r.is("GET", &manifest) && r.status == 200),
        "Berth never fetched {manifest}: {asked:?}"
    );
    let fetched = misses(&cache).await - missed;
    assert!(
        fetched >= 1.0 + image.blobs().len() as f64,
        "{fetched} cache misses for a manifest and {} blobs",
        image.blobs().len()
    );
}
