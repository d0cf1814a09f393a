//! Durability: kill -9 registryd in the middle of concurrent pushes, restart it on the same data,
//! and check that every acknowledged push pulls back byte-identical and nothing half-written is
//! visible. Also: an upload resumes after a restart, and SIGTERM stops it cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_tests::bodies::stalling_body;
use berth_tests::content::{sha256, Content, Image};
use berth_tests::env::TestEnv;
use berth_tests::registry::{header, Registry};
use berth_tests::uploads::upload_range;
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Concurrent pushers.
const WORKERS: usize = 4;
/// Upper bound of images one worker pushes per round (the kill comes much earlier).
const MAX_IMAGES: usize = 300;
/// Crash and restart cycles.
const ROUNDS: usize = 3;
/// Acknowledged pushes to wait for before the kill, per round.
const ACKS_BEFORE_KILL: usize = 40;

/// What a worker sent: a blob, or a manifest under a tag.
#[derive(Clone)]
struct Sent {
    repo: String,
    content: Content,
    tag: Option<String>,
}

#[derive(Clone, Default)]
struct Ledger {
    /// Answered 201.
    acked: Vec<Sent>,
    /// Sent without a 201 (in flight at the kill, or refused).
    unacked: Vec<Sent>,
}

/// Sends one request; `None` when the connection failed (the daemon is gone).
async fn try_send(req: reqwest::RequestBuilder) -> Option<StatusCode> {
    req.send().await.ok().map(|r| r.status())
}

/// Pushes one blob, monolithic or in two chunks; returns whether the registry acknowledged it.
async fn push_blob(registry: &Registry, repo: &str, blob: &Content, chunked: bool) -> Option<bool> {
    if !chunked {
        let req = registry
            .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), None)
            .query(&[("digest", &blob.digest)])
            .body(blob.bytes.clone());
        return try_send(req).await.map(|s| s == StatusCode::CREATED);
    }
    let resp = registry
        .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), None)
        .send()
        .await
        .ok()?;
    let mut location = header(&resp, "Location");
    let half = blob.bytes.len() / 2;
    for (from, to) in [(0, half), (half, blob.bytes.len())] {
        let req = registry
            .request(Method::PATCH, &location, None)
            .header("Content-Range", format!("{from}-{}", to - 1))
            .body(blob.bytes[from..to].to_vec());
        let resp = req.send().await.ok()?;
        location = header(&resp, "Location");
    }
    let req = registry
        .request(Method::PUT, &location, None)
        .query(&[("digest", &blob.digest)]);
    try_send(req).await.map(|s| s == StatusCode::CREATED)
}

/// Pushes images until the daemon disappears (or `MAX_IMAGES`), recording everything sent.
async fn worker(registry: Registry, id: usize, round: usize, ledger: Arc<Mutex<Ledger>>) {
    let repo = format!("crash/w{id}");
    for i in 0..MAX_IMAGES {
        // Worker 0 pushes multi-MiB blobs, so that the kill likely lands inside a blob's write.
        let sizes = if id == 0 {
            2 << 20..6 << 20
        } else {
            16 << 10..256 << 10
        };
        let size = rand::thread_rng().gen_range(sizes);
        let image = Image::oci("amd64", vec![Content::random(size)]);
        for blob in image.blobs() {
            let sent = Sent {
                repo: repo.clone(),
                content: blob.clone(),
                tag: None,
            };
            let ok = push_blob(&registry, &repo, blob, i % 3 == 0).await;
            record(&ledger, sent, ok == Some(true));
            if ok != Some(true) {
                return;
            }
        }
        let tag = format!("r{round}-{i}");
        let sent = Sent {
            repo: repo.clone(),
            content: image.manifest.clone(),
            tag: Some(tag.clone()),
        };
        let ok = try_send(
            registry
                .request(Method::PUT, &format!("/v2/{repo}/manifests/{tag}"), None)
                .header("Content-Type", image.manifest.media_type.as_str())
                .body(image.manifest.bytes.clone()),
        )
        .await;
        record(&ledger, sent, ok == Some(StatusCode::CREATED));
        if ok != Some(StatusCode::CREATED) {
            return;
        }
    }
}

fn record(ledger: &Mutex<Ledger>, sent: Sent, acked: bool) {
    let mut ledger = ledger.lock().unwrap();
    if acked {
        ledger.acked.push(sent);
    } else {
        ledger.unacked.push(sent);
    }
}

/// One round: workers push, the daemon is killed after `ACKS_BEFORE_KILL` acknowledgements while
/// they are still pushing, then restarted.
async fn push_and_crash(env: &mut TestEnv, round: usize, ledger: &Arc<Mutex<Ledger>>) {
    let registry = env.registry();
    let start = ledger.lock().unwrap().acked.len();
    let workers: Vec<_> = (0..WORKERS)
        .map(|id| tokio::spawn(worker(registry.clone(), id, round, ledger.clone())))
        .collect();
    let mut polls = 0;
    while ledger.lock().unwrap().acked.len() < start + ACKS_BEFORE_KILL {
        polls += 1;
        assert!(
            polls < 3000,
            "round {round}: the registry acknowledged too few pushes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    env.registryd.daemon.kill9();
    for w in workers {
        w.await.unwrap();
    }
    env.registryd.restart().await;
}

/// Every acknowledged push is there byte for byte; what was not acknowledged is absent or whole.
async fn verify(registry: &Registry, ledger: &Ledger) {
    for sent in &ledger.acked {
        assert_eq!(
            fetch(registry, sent).await.as_deref(),
            Some(sent.content.bytes.as_slice()),
            "acknowledged {} lost",
            describe(sent)
        );
    }
    for sent in &ledger.unacked {
        if let Some(bytes) = fetch(registry, sent).await {
            assert_eq!(
                bytes,
                sent.content.bytes,
                "unacknowledged {} visible but not whole",
                describe(sent)
            );
        }
    }
    // Whatever is listed is complete: each tag's manifest and all its blobs are whole.
    let catalog: Value = registry
        .get("/v2/_catalog", None)
        .await
        .json()
        .await
        .unwrap();
    for repo in catalog["repositories"].as_array().unwrap() {
        let repo = repo.as_str().unwrap();
        let tags: Value = registry
            .get(&format!("/v2/{repo}/tags/list"), None)
            .await
            .json()
            .await
            .unwrap();
        for tag in tags["tags"].as_array().into_iter().flatten() {
            let resp = registry
                .get(
                    &format!("/v2/{repo}/manifests/{}", tag.as_str().unwrap()),
                    None,
                )
                .await;
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "{repo}:{tag} listed but not served"
            );
            let manifest: Value = resp.json().await.unwrap();
            let blobs =
                std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().unwrap());
            for descriptor in blobs {
                let digest = descriptor["digest"].as_str().unwrap();
                let resp = registry
                    .get(&format!("/v2/{repo}/blobs/{digest}"), None)
                    .await;
                assert_eq!(
                    resp.status(),
                    StatusCode::OK,
                    "{repo}:{tag} names a missing blob {digest}"
                );
                assert_eq!(
                    sha256(&resp.bytes().await.unwrap()),
                    digest,
                    "{repo}:{tag}: blob {digest} is not whole"
                );
            }
        }
    }
}

/// The content as the registry serves it now (by tag for manifests), `None` when absent.
async fn fetch(registry: &Registry, sent: &Sent) -> Option<Vec<u8>> {
    let path = match &sent.tag {
        Some(tag) => format!("/v2/{}/manifests/{tag}", sent.repo),
        None => format!("/v2/{}/blobs/{}", sent.repo, sent.content.digest),
    };
    let resp = registry.get(&path, None).await;
    match resp.status() {
        StatusCode::OK => Some(resp.bytes().await.unwrap().to_vec()),
        StatusCode::NOT_FOUND => None,
        other => panic!("GET {path} after the crash: {other}"),
    }
}

fn describe(sent: &Sent) -> String {
    match &sent.tag {
        Some(tag) => format!("manifest {}:{tag}", sent.repo),
        None => format!("blob {}@{}", sent.repo, sent.content.digest),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_concurrent_pushes_loses_nothing_acknowledged() {
    let mut env = TestEnv::open().await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for round in 0..ROUNDS {
        push_and_crash(&mut env, round, &ledger).await;
        let snapshot = ledger.lock().unwrap().clone();
        eprintln!(
            "round {round}: {} acknowledged, {} cut off by the kill",
            snapshot.acked.len(),
            snapshot.unacked.len()
        );
        verify(&env.registry(), &snapshot).await;
    }
    assert!(ledger.lock().unwrap().acked.len() >= ROUNDS * ACKS_BEFORE_KILL);
}

/// `Location` without scheme and host (the port changes across a restart).
fn path_of(location: &str) -> String {
    match location.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or_else(String::new, |i| rest[i..].to_string()),
        None => location.to_string(),
    }
}

#[tokio::test]
async fn an_upload_resumes_after_a_restart() {
    let mut env = TestEnv::standard().await;
    let token = env.admin_token(&["team/app"]).await;
    let blob = Content::random(200_000);
    let registry = env.registry();
    let location = registry.start_upload("team/app", &token).await;
    let resp = registry
        .patch_chunk(&location, &token, &blob.bytes[..120_000], Some("0-119999"))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = path_of(&header(&resp, "Location"));

    env.registryd.restart().await;
    let registry = env.registry();
    let resp = registry.get(&location, Some(&token)).await;
    assert_eq!(
        resp.status(),
        StatusCode::NO_CONTENT,
        "the session survived the restart"
    );
    assert_eq!(upload_range(&resp), "0-119999");
    let resp = registry
        .patch_chunk(
            &location,
            &token,
            &blob.bytes[120_000..],
            Some("120000-199999"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = path_of(&header(&resp, "Location"));
    let resp = registry
        .finish_upload(&location, &token, &blob.digest, &[])
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = registry
        .get(&format!("/v2/team/app/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.bytes.as_slice());
}

#[tokio::test]
async fn sigterm_stops_registryd_cleanly_and_keeps_its_data() {
    let mut env = TestEnv::standard().await;
    let token = env.admin_token(&["team/app"]).await;
    let image = Image::random(2);
    env.registry()
        .push_image("team/app", "v1", &image, Some(&token))
        .await;
    assert!(
        env.registryd.daemon.terminate().await,
        "registryd did not exit successfully on SIGTERM"
    );
    env.registryd.restart().await;
    env.registry()
        .assert_serves("team/app", "v1", &image.manifest, &token)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_cut_by_kill_9_resumes_from_the_reported_range() {
    cut_chunk_then_resume(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_with_content_range_cut_by_kill_9_resumes_from_the_reported_range() {
    cut_chunk_then_resume(true).await;
}

/// Sends 1 MiB, then a second chunk (announced with `Content-Range` and `Content-Length` when
/// `announced`) that is cut by kill -9 after 6 of its 11 MiB; after the restart the upload goes on
/// from the range the registry reports and must produce the right blob.
async fn cut_chunk_then_resume(announced: bool) {
    let mut env = TestEnv::standard().await;
    let token = env.admin_token(&["team/app"]).await;
    let blob = Content::random(12 * 1024 * 1024);
    let registry = env.registry();
    let location = registry.start_upload("team/app", &token).await;
    let first = 1024 * 1024;
    let resp = registry
        .patch_chunk(
            &location,
            &token,
            &blob.bytes[..first],
            Some(&format!("0-{}", first - 1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = path_of(&header(&resp, "Location"));

    // The second chunk is cut after 6 MiB of its 11: kill -9 while the server is reading it.
    let (sent, was_sent) = tokio::sync::oneshot::channel();
    let cut = first + 6 * 1024 * 1024;
    let body = stalling_body(blob.bytes[first..cut].to_vec(), sent);
    let mut req = registry
        .request(Method::PATCH, &location, Some(&token))
        .header("Content-Type", "application/octet-stream")
        .body(body);
    if announced {
        req = req
            .header("Content-Range", format!("{first}-{}", blob.bytes.len() - 1))
            .header("Content-Length", (blob.bytes.len() - first).to_string());
    }
    let pending = tokio::spawn(req.send());
    was_sent.await.unwrap();
    env.registryd.daemon.kill9();
    assert!(
        pending.await.unwrap().is_err(),
        "the cut request cannot have completed"
    );

    env.registryd.restart().await;
    let registry = env.registry();
    let resp = registry.get(&location, Some(&token)).await;
    assert_eq!(
        resp.status(),
        StatusCode::NO_CONTENT,
        "the session survived the crash"
    );
    let range = upload_range(&resp);
    let end: usize = range
        .strip_prefix("0-")
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("status Range {range}"));
    assert!(
        (first - 1..cut).contains(&end),
        "Range {range} outside what was sent"
    );
    eprintln!("after the crash the upload is at {range}");
    let location = path_of(&header(&resp, "Location"));
    let resp = registry
        .patch_chunk(
            &location,
            &token,
            &blob.bytes[end + 1..],
            Some(&format!("{}-{}", end + 1, blob.bytes.len() - 1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = path_of(&header(&resp, "Location"));
    let resp = registry
        .finish_upload(&location, &token, &blob.digest, &[])
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "resumed upload completes with the right digest"
    );
    let resp = registry
        .get(&format!("/v2/team/app/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(sha256(&resp.bytes().await.unwrap()), blob.digest);
}
