//! The pull-through cache reached the three ways clients reach it, each with the real client and
//! an image that exists only upstream, pulled once through Berth and then again with the upstream
//! stopped (served from the cache): `docker pull berth.test:PORT/docker.io/library/x` (prefix),
//! `docker pull x` on a daemon with `registry-mirrors` (default upstream), and `ctr images pull
//! --hosts-dir` with a `hosts.toml` naming Berth as mirror (`?ns=`). And the `Accept` header
//! as Docker sends it, one line per media type, reaching the upstream whole.
//!
//! Needs root, dockerd, `berth.test` and `upstream.test` in /etc/hosts: run through
//! `./scripts/test`.

use berth_tests::content::{Image, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use berth_tests::ctr::Ctr;
use berth_tests::docker::Docker;
use berth_tests::docker_flows::forget;
use berth_tests::mirror_dockerd::MirrorDockerd;
use berth_tests::pull_through::{PullThrough, PREFIX};
use berth_tests::registry::header;
use berth_tests::upstream::UpstreamAuth;
use reqwest::{Method, StatusCode};

/// Blob answers of the cache served from its store so far.
async fn blob_hits(cache: &PullThrough) -> f64 {
    let labels = [("kind", "blob"), ("result", "hit")];
    cache.metric("registry_proxy_requests_total", &labels).await
}

/// `docker pull reference`, which must succeed and name `image`'s manifest digest; the pulled
/// image must be `image` (its config digest is the image id).
fn pull(docker: &Docker, reference: &str, image: &Image, when: &str) {
    let out = docker.run(&["pull", reference]);
    assert!(
        out.success,
        "{when}: docker pull {reference}:\n{}",
        out.all()
    );
    docker.remember(reference);
    let digest = format!("Digest: {}", image.manifest.digest);
    assert!(out.stdout.contains(&digest), "{when}: {}", out.all());
    assert_eq!(
        docker.inspect(reference, "{{.Id}}"),
        image.config.digest,
        "{when}: docker holds another image as {reference}"
    );
}

/// Pulls `reference` through the cache, then again (after removing it from the daemon) with the
/// upstream stopped; the second pull's blobs must come from the cache's store.
async fn pull_twice(cache: &mut PullThrough, docker: &Docker, reference: &str, image: &Image) {
    pull(docker, reference, image, "through the cache");
    forget(docker, reference);
    cache.upstream.stop();
    let hits = blob_hits(cache).await;
    pull(docker, reference, image, "with the upstream stopped");
    let served = blob_hits(cache).await - hits;
    assert!(
        served >= image.blobs().len() as f64,
        "{served} blob hits for the {} blobs of the second pull",
        image.blobs().len()
    );
}

#[tokio::test]
async fn docker_pulls_by_prefix_then_from_the_cache_with_the_upstream_stopped() {
    let image = Image::oci_gzip("amd64", 2);
    let (mut cache, repo) =
        PullThrough::stocked(UpstreamAuth::Bearer, "10m", "by-prefix", &image).await;
    let dockerd = MirrorDockerd::start(&cache.mirror_url()).await;
    let docker = dockerd.docker();
    let login = docker.login(&cache.host(), "alice", "alice-pass");
    assert!(login.success, "docker login as alice:\n{}", login.all());
    let reference = format!("{}/{PREFIX}/{repo}:1", cache.host());
    pull_twice(&mut cache, &docker, &reference, &image).await;
}

#[tokio::test]
async fn docker_pulls_through_registry_mirrors_then_from_the_cache_with_the_upstream_stopped() {
    let image = Image::oci_gzip("amd64", 2);
    let (mut cache, repo) =
        PullThrough::stocked(UpstreamAuth::Bearer, "10m", "mirrored", &image).await;
    let dockerd = MirrorDockerd::start(&cache.mirror_url()).await;
    // Anonymous, as a site's Docker hosts pull through their mirror (the ACL lets anonymous
    // clients pull un-prefixed `library/` names); a fallback to Docker Hub could not succeed.
    let docker = dockerd.docker();
    let short = repo.trim_start_matches("library/");
    pull_twice(&mut cache, &docker, &format!("{short}:1"), &image).await;
}

#[tokio::test]
async fn ctr_pulls_through_a_hosts_toml_mirror_then_from_the_cache_with_the_upstream_stopped() {
    let image = Image::oci_gzip("amd64", 2);
    let (mut cache, repo) =
        PullThrough::stocked(UpstreamAuth::Bearer, "10m", "containerd", &image).await;
    let dockerd = MirrorDockerd::start(&cache.mirror_url()).await;
    let ctr = Ctr::new(&dockerd.containerd_socket());
    ctr.add_mirror(&cache.upstream.host(), &cache.mirror_url());
    let reference = format!("{}/{repo}:1", cache.upstream.host());
    let alice = Some(("alice", "alice-pass"));
    let every = || image.blobs().into_iter().chain([&image.manifest]);

    let out = ctr.pull(&reference, alice);
    assert!(out.success, "ctr pull {reference}:\n{}", out.all());
    let direct: Vec<_> = cache.upstream.requests().await;
    let direct: Vec<_> = direct
        .iter()
        .filter(|r| r.user_agent.starts_with("containerd/"))
        .collect();
    assert!(
        direct.is_empty(),
        "containerd went past the mirror to the upstream: {direct:?}"
    );
    // Routed by `?ns=` (not as a default-upstream name): the challenge named the cached
    // repository, which is what containerd asked authd for.
    let asked_authd = cache.env.authd().daemon.log_text();
    let canonical = format!("\"repository:{PREFIX}/{repo}:pull\"");
    assert!(
        asked_authd.contains(&canonical),
        "containerd never asked for {canonical}; authd's log:\n{asked_authd}"
    );
    ctr.remove(&reference);
    let kept = ctr.content();
    assert!(
        every().all(|c| !kept.contains(&c.digest)),
        "containerd kept content after removing the image: {kept:?}"
    );

    cache.upstream.stop();
    let hits = blob_hits(&cache).await;
    let out = ctr.pull(&reference, alice);
    assert!(
        out.success,
        "ctr pull {reference} with the upstream stopped:\n{}",
        out.all()
    );
    let content = ctr.content();
    for c in every() {
        assert!(
            content.contains(&c.digest),
            "{} not pulled: {content:?}",
            c.digest
        );
    }
    let served = blob_hits(&cache).await - hits;
    assert!(
        served >= image.blobs().len() as f64,
        "{served} blob hits for the {} blobs of the second pull",
        image.blobs().len()
    );
}

#[tokio::test]
async fn accept_sent_as_one_line_per_media_type_as_docker_sends_it_reaches_the_upstream() {
    let image = Image::oci_gzip("amd64", 1);
    let (cache, repo) = PullThrough::stocked(UpstreamAuth::Bearer, "10m", "accept", &image).await;
    let name = format!("{PREFIX}/{repo}");
    let token = cache
        .token("alice", &[&format!("repository:{name}:pull")])
        .await;
    let registry = cache.registry();
    // Docker's HEAD (a miss) and then its GET.
    for method in [Method::HEAD, Method::GET] {
        let path = format!("/v2/{name}/manifests/1");
        let mut req = registry.request(method.clone(), &path, Some(&token));
        for media_type in [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX] {
            req = req.header("Accept", media_type);
        }
        let resp = registry.send(req).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{method} {path}, an OCI manifest"
        );
        assert_eq!(
            header(&resp, "Docker-Content-Digest"),
            image.manifest.digest
        );
    }
}
