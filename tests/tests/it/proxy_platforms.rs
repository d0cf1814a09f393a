//! A multi-platform OCI index pulled through the cache by prefix with skopeo choosing one
//! platform (`--override-arch amd64`): the index and the chosen child are cached (in the tags
//! list, hits, and pulled again with the upstream stopped), and the other platform's manifest and
//! blobs were never asked of the upstream.
//!
//! And the same with `docker pull --platform linux/amd64` on a daemon of the test's own.
//!
//! Needs root, dockerd, `berth.test` and `upstream.test` in /etc/hosts: run through
//! `./scripts/test`.

use berth_tests::content::{unique, Image};
use berth_tests::mirror_dockerd::MirrorDockerd;
use berth_tests::oci_layout::read_blob;
use berth_tests::pull_through::{cache_state, PullThrough, PREFIX};
use berth_tests::skopeo::skopeo;
use berth_tests::upstream::{Upstream, UpstreamAuth};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// `skopeo copy --override-arch amd64 SOURCE oci:DIR:1` as alice, which must succeed; returns the
/// digest of the one manifest the layout holds.
fn copy_amd64(source: &str, dir: &std::path::Path, when: &str) -> String {
    let dest = format!("oci:{}:1", dir.display());
    let out = skopeo(&[
        "copy",
        "--override-arch",
        "amd64",
        "--override-os",
        "linux",
        "--src-tls-verify=false",
        "--src-creds",
        "alice:alice-pass",
        source,
        &dest,
    ]);
    assert!(out.success, "{when}: skopeo copy {source}:\n{}", out.all());
    let index = std::fs::read(dir.join("index.json"))
        .unwrap_or_else(|e| panic!("{when}: no index.json in {}: {e}", dir.display()));
    let index: Value = serde_json::from_slice(&index)
        .unwrap_or_else(|e| panic!("{when}: index.json is not JSON: {e}"));
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(manifests.len(), 1, "{when}: {index}");
    manifests[0]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The upstream was asked (since its `before`-th logged request) for `chosen`'s manifest and
/// nothing of `other`'s.
async fn assert_only_fetched(cache: &PullThrough, before: usize, chosen: &Image, other: &Image) {
    let asked = cache.upstream.requests().await;
    let asked = &asked[before..];
    let other: Vec<String> = other
        .blobs()
        .into_iter()
        .chain([&other.manifest])
        .map(|c| c.digest.clone())
        .collect();
    let strays: Vec<_> = asked
        .iter()
        .filter(|r| other.iter().any(|d| r.path().ends_with(d.as_str())))
        .collect();
    assert!(
        strays.is_empty(),
        "the other platform was fetched: {strays:?}"
    );
    let digest = &chosen.manifest.digest;
    assert!(
        asked.iter().any(|r| r.path().ends_with(digest.as_str())),
        "{digest} never fetched: {asked:?}"
    );
}

#[tokio::test]
async fn one_platform_of_an_index_is_cached_with_the_index_and_the_other_never_fetched() {
    let amd64 = Image::oci_gzip("amd64", 2);
    let arm64 = Image::oci_gzip("arm64", 2);
    let upstream = Upstream::start(UpstreamAuth::Bearer).await;
    let repo = format!("library/platforms-{}", unique());
    let platforms = [("amd64", &amd64), ("arm64", &arm64)];
    let index = upstream.push_index(&repo, "1", &platforms).await;
    let before = upstream.requests().await.len();
    let mut cache = PullThrough::start(upstream, "10m").await;
    let name = format!("{PREFIX}/{repo}");
    let source = format!("docker://{}/{name}:1", cache.host());

    let first = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pulled = copy_amd64(&source, first.path(), "through the cache");
    assert_eq!(
        pulled, amd64.manifest.digest,
        "skopeo chose another manifest"
    );
    for blob in amd64.blobs() {
        let got = read_blob(first.path(), &blob.digest);
        assert!(
            got.is_some_and(|b| b == blob.bytes),
            "{} not pulled",
            blob.digest
        );
    }

    assert_only_fetched(&cache, before, &amd64, &arm64).await;

    let token = cache
        .token("alice", &[&format!("repository:{name}:pull")])
        .await;
    let tags = cache
        .registry()
        .get(&format!("/v2/{name}/tags/list"), Some(&token))
        .await;
    assert_eq!(tags.status(), StatusCode::OK);
    let tags: Value = tags.json().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tags["tags"], serde_json::json!(["1"]), "{tags}");

    cache.upstream.stop();
    for (reference, digest) in [
        ("1", &index.digest),
        (&amd64.manifest.digest, &amd64.manifest.digest),
    ] {
        let resp = cache
            .manifest(Method::HEAD, &name, reference, Some(&token))
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "HEAD {reference}, upstream stopped"
        );
        assert_eq!(cache_state(&resp), "hit", "HEAD {reference}");
        let served = berth_tests::registry::header(&resp, "Docker-Content-Digest");
        assert_eq!(&served, digest, "HEAD {reference}");
    }
    let resp = cache
        .manifest(Method::HEAD, &name, &arm64.manifest.digest, Some(&token))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the other platform's manifest is cached"
    );

    let second = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pulled = copy_amd64(&source, second.path(), "with the upstream stopped");
    assert_eq!(pulled, amd64.manifest.digest);
}

#[tokio::test]
async fn docker_pulls_one_platform_of_an_index_and_the_other_is_never_fetched() {
    let amd64 = Image::oci_gzip("amd64", 2);
    let arm64 = Image::oci_gzip("arm64", 2);
    let upstream = Upstream::start(UpstreamAuth::Bearer).await;
    let repo = format!("library/docker-platforms-{}", unique());
    upstream
        .push_index(&repo, "1", &[("amd64", &amd64), ("arm64", &arm64)])
        .await;
    let before = upstream.requests().await.len();
    let cache = PullThrough::start(upstream, "10m").await;
    let dockerd = MirrorDockerd::start(&cache.mirror_url()).await;
    let docker = dockerd.docker();
    let login = docker.login(&cache.host(), "alice", "alice-pass");
    assert!(login.success, "docker login as alice:\n{}", login.all());
    let reference = format!("{}/{PREFIX}/{repo}:1", cache.host());
    let out = docker.run(&["pull", "--platform", "linux/amd64", &reference]);
    assert!(out.success, "docker pull {reference}:\n{}", out.all());
    docker.remember(&reference);
    assert_eq!(docker.inspect(&reference, "{{.Id}}"), amd64.config.digest);
    assert_only_fetched(&cache, before, &amd64, &arm64).await;
}
