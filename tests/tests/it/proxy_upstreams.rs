//! The stand-ins the pull-through cache tests rely on, checked on their own: registry:2 upstreams
//! behind Bearer tokens and Basic auth refuse strangers, serve the puller, keep their port and
//! content across a stop, and log what they were asked; the fault relay cuts a blob mid-way on
//! cue; the mirror dockerd's fallback to Docker Hub cannot leave the machine; ctr pulls from an
//! upstream directly.
//!
//! Needs `upstream.test` and `berth.test` in /etc/hosts, root and dockerd: run through
//! `./scripts/test`.

use berth_tests::content::{unique, Content, Image, OCI_MANIFEST};
use berth_tests::ctr::Ctr;
use berth_tests::fault_relay::FaultRelay;
use berth_tests::mirror_dockerd::MirrorDockerd;
use berth_tests::registry::{header, Registry};
use berth_tests::upstream::{count, Upstream, UpstreamAuth};
use reqwest::{Method, StatusCode};

/// A client of `upstream` with the puller's credentials, and the token (Bearer) it sends.
async fn puller(upstream: &Upstream, repo: &str) -> (Registry, Option<String>) {
    let base = format!("http://{}", upstream.addr());
    let user = &upstream.puller;
    match &upstream.authd {
        Some(authd) => {
            let scope = format!("repository:{repo}:pull");
            let creds = Some((user.name.as_str(), user.password.as_str()));
            let token = authd.token_with(creds, &[&scope]).await;
            (Registry::new(&base), Some(token))
        }
        None => (Registry::basic(&base, &user.name, &user.password), None),
    }
}

async fn upstream_serves_the_puller_only(auth: UpstreamAuth, challenge: &str) {
    let mut upstream = Upstream::start(auth).await;
    let repo = format!("library/stand-in-{}", unique());
    let image = Image::random(1);
    upstream.push(&repo, "1", &image).await;
    let manifest = format!("/v2/{repo}/manifests/1");

    let anonymous = Registry::new(&format!("http://{}", upstream.addr()));
    let resp = anonymous.get(&manifest, None).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "{auth:?}: anonymous GET"
    );
    let offered = header(&resp, "WWW-Authenticate");
    assert!(
        offered.starts_with(challenge),
        "{auth:?}: challenge {offered}"
    );

    let before = upstream.requests().await.len();
    let (client, token) = puller(&upstream, &repo).await;
    let get = client.request(Method::GET, &manifest, token.as_deref());
    let resp = client.send(get.header("Accept", OCI_MANIFEST)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{auth:?}: the puller's GET");
    let body = resp.bytes().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(body.as_ref(), image.manifest.bytes.as_slice());
    let asked = upstream.requests().await;
    assert_eq!(count(&asked[before..], "GET", &manifest), 1, "{asked:?}");

    upstream.stop();
    assert!(
        client.http.get(client.url(&manifest)).send().await.is_err(),
        "{auth:?}: a stopped upstream still answers"
    );
    upstream.resume().await;
    let head = client.request(Method::HEAD, &manifest, token.as_deref());
    let resp = client.send(head.header("Accept", OCI_MANIFEST)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{auth:?}: after resume");
    let asked = upstream.requests().await;
    assert_eq!(count(&asked[before..], "GET", &manifest), 1, "{asked:?}");
    assert_eq!(count(&asked[before..], "HEAD", &manifest), 1, "{asked:?}");
}

#[tokio::test]
async fn bearer_upstream_serves_the_puller_only_and_survives_a_restart() {
    upstream_serves_the_puller_only(UpstreamAuth::Bearer, "Bearer ").await;
}

#[tokio::test]
async fn basic_upstream_serves_the_puller_only_and_survives_a_restart() {
    upstream_serves_the_puller_only(UpstreamAuth::Basic, "Basic ").await;
}

#[tokio::test]
async fn relay_cuts_a_blob_mid_way_on_cue_and_heals() {
    let upstream = Upstream::start(UpstreamAuth::Basic).await;
    let repo = format!("library/relayed-{}", unique());
    let layer = Content::random(1 << 20);
    let image = Image::oci("amd64", vec![layer.clone()]);
    upstream.push(&repo, "1", &image).await;
    let relay = FaultRelay::start(upstream.addr()).await;
    let user = &upstream.puller;
    let client = Registry::basic(
        &format!("http://{}", relay.addr),
        &user.name,
        &user.password,
    );
    let path = format!("/v2/{repo}/blobs/{}", layer.digest);

    let whole = client.get(&path, None).await.bytes().await;
    assert!(whole.is_ok_and(|b| b.as_ref() == layer.bytes.as_slice()));

    relay.cut_after(256 * 1024);
    let resp = client.get(&path, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cut = resp.bytes().await;
    assert!(cut.is_err(), "the relay let the whole blob through");

    relay.heal();
    let whole = client.get(&path, None).await.bytes().await;
    assert!(whole.is_ok_and(|b| b.as_ref() == layer.bytes.as_slice()));
}

#[tokio::test]
async fn mirror_dockerd_cannot_reach_docker_hub_and_ctr_pulls_from_an_upstream() {
    let upstream = Upstream::start(UpstreamAuth::Bearer).await;
    let repo = format!("library/direct-{}", unique());
    let image = Image::oci_gzip("amd64", 2);
    upstream.push(&repo, "1", &image).await;

    // No mirror listens on port 1: the daemon falls back to Docker Hub, through a dead proxy.
    let dockerd = MirrorDockerd::start("http://berth.test:1").await;
    let docker = dockerd.docker();
    let out = docker.run(&["pull", "stand-in-never-on-docker-hub:1"]);
    assert!(!out.success, "pulled from Docker Hub:\n{}", out.all());
    assert!(
        out.all().contains("127.0.0.1:9"),
        "the fallback did not go to the dead proxy:\n{}",
        out.all()
    );

    let ctr = Ctr::new(&dockerd.containerd_socket());
    let reference = format!("{}/{repo}:1", upstream.host());
    let user = &upstream.puller;
    let out = ctr.pull(&reference, Some((&user.name, &user.password)));
    assert!(out.success, "ctr pull {reference}:\n{}", out.all());
    let content = ctr.content();
    for blob in image.blobs().into_iter().chain([&image.manifest]) {
        assert!(
            content.contains(&blob.digest),
            "{} not in {content:?}",
            blob.digest
        );
    }
    let asked = upstream.requests().await;
    assert!(
        asked
            .iter()
            .any(|r| r.user_agent.starts_with("containerd/")),
        "no request from containerd in {asked:?}"
    );
    let refused = ctr.pull(&reference, None);
    assert!(
        !refused.success,
        "ctr pulled anonymously: {}",
        refused.all()
    );
}
