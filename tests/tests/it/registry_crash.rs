//! Durability: kill -9 registryd in the middle of concurrent pushes, restart it on the same data,
//! and check that every acknowledged push pulls back byte-identical and nothing half-written is
//! visible.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_tests::content::{sha256, Content, Image};
use berth_tests::env::TestEnv;
use berth_tests::registry::{header, Registry};
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
