//! Garbage collection under load and under kill -9: a bounded soak of concurrent pushes, pulls,
//! deletes and collections (the daemon's own every second and `registryd gc` runs beside it)
//! loses nothing acknowledged, answers no 5xx and leaves no orphan; a collection killed at any
//! moment leaves a store where every surviving image pulls, and the next one leaves no orphan.
//! The soak's seed is printed; `BERTH_SEED=<seed>` replays its choices.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_tests::content::{Content, Image};
use berth_tests::env::TestEnv;
use berth_tests::gc::{blob_files, digests, pull_matches, run_gc, spawn_gc, trash_files};
use berth_tests::registry::Registry;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// How long the soak's workers run.
const SOAK: Duration = Duration::from_secs(50);
/// The daemon's grace period in the soak, and how long the final check waits for it.
const GRACE: Duration = Duration::from_secs(4);
const PUSHERS: usize = 3;
const PULLERS: usize = 2;
/// Requests one worker sends at most (a bound should the machine be fast).
const MAX_STEPS: usize = 400;

/// An acknowledged image.
#[derive(Clone)]
struct Pushed {
    repo: String,
    tag: String,
    image: Image,
}

#[derive(Default)]
struct Ledger {
    /// Acknowledged and not (being) deleted.
    live: Vec<Pushed>,
    /// Manifest digests whose DELETE was sent.
    deleting: HashSet<String>,
    acked: usize,
    refused: usize,
    deleted: usize,
    pulls: usize,
    /// Anything that went wrong: a 5xx, an unexpected status, a pull that differed.
    failures: Vec<String>,
}

type Shared = Arc<Mutex<Ledger>>;

fn fail(ledger: &Shared, what: String) {
    ledger.lock().unwrap().failures.push(what);
}

async fn pusher(
    registry: Registry,
    id: usize,
    mut rng: StdRng,
    bases: Vec<Content>,
    ledger: Shared,
) {
    let deadline = Instant::now() + SOAK;
    for i in 0..MAX_STEPS {
        if Instant::now() > deadline {
            return;
        }
        let repo = format!("soak/r{}", rng.gen_range(0..3));
        let base = bases[rng.gen_range(0..bases.len())].clone();
        let own = Content::tar_layer(&format!("p{id}-{i}"), rng.gen_range(1_000..200_000));
        let image = Image::oci("amd64", vec![base, own]);
        for blob in image.blobs() {
            let status = registry.post_blob(&repo, blob, None).await.status();
            if status != StatusCode::CREATED {
                return fail(&ledger, format!("blob push to {repo} answered {status}"));
            }
        }
        let tag = format!("p{id}-{i}");
        let resp = registry
            .put_manifest(&repo, &tag, &image.manifest, None)
            .await;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let mut ledger = ledger.lock().unwrap();
        match status {
            StatusCode::CREATED => {
                ledger.acked += 1;
                ledger.live.push(Pushed { repo, tag, image });
            }
            // A collection may refuse a push whose blobs it took meanwhile (the grace period
            // makes that rare); never may it accept one.
            StatusCode::BAD_REQUEST if body.contains("MANIFEST_BLOB_UNKNOWN") => {
                ledger.refused += 1
            }
            _ => ledger
                .failures
                .push(format!("manifest push {repo}:{tag}: {status} {body}")),
        }
    }
}

async fn puller(registry: Registry, mut rng: StdRng, ledger: Shared) {
    let deadline = Instant::now() + SOAK;
    for _ in 0..MAX_STEPS {
        if Instant::now() > deadline {
            return;
        }
        let picked = {
            let ledger = ledger.lock().unwrap();
            (!ledger.live.is_empty())
                .then(|| ledger.live[rng.gen_range(0..ledger.live.len())].clone())
        };
        let Some(p) = picked else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let pulled = pull_matches(&registry, &p.repo, &p.tag, &p.image).await;
        let mut ledger = ledger.lock().unwrap();
        ledger.pulls += 1;
        if let Err(e) = pulled {
            if !ledger.deleting.contains(&p.image.manifest.digest) || e.contains(" 5") {
                ledger.failures.push(format!("pull: {e}"));
            }
        }
    }
}

async fn deleter(registry: Registry, mut rng: StdRng, ledger: Shared) {
    let deadline = Instant::now() + SOAK;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(200..600))).await;
        let picked = {
            let mut ledger = ledger.lock().unwrap();
            if ledger.live.len() < 4 {
                continue;
            }
            let at = rng.gen_range(0..ledger.live.len());
            let p = ledger.live.swap_remove(at);
            ledger.deleting.insert(p.image.manifest.digest.clone());
            p
        };
        let path = format!(
            "/v2/{}/manifests/{}",
            picked.repo, picked.image.manifest.digest
        );
        let status = registry
            .send(registry.request(Method::DELETE, &path, None))
            .await
            .status();
        if status == StatusCode::ACCEPTED {
            ledger.lock().unwrap().deleted += 1;
        } else {
            fail(&ledger, format!("DELETE {path}: {status}"));
        }
    }
}

/// The tags of every repository, through the API: `repo:tag` for each.
async fn listed_tags(registry: &Registry) -> BTreeSet<String> {
    let catalog: serde_json::Value = registry
        .get("/v2/_catalog?n=1000", None)
        .await
        .json()
        .await
        .unwrap();
    let mut out = BTreeSet::new();
    for repo in catalog["repositories"].as_array().into_iter().flatten() {
        let repo = repo.as_str().unwrap();
        let tags: serde_json::Value = registry
            .get(&format!("/v2/{repo}/tags/list?n=1000"), None)
            .await
            .json()
            .await
            .unwrap();
        for tag in tags["tags"].as_array().into_iter().flatten() {
            out.insert(format!("{repo}:{}", tag.as_str().unwrap()));
        }
    }
    out
}

/// After a last collection: every live image pulls byte-identical, the tags are exactly theirs,
/// and the blob files are exactly their blobs (no file without a live reference, none missing).
async fn assert_store_holds_exactly(env: &TestEnv, live: &[Pushed]) {
    let registry = env.registry();
    for p in live {
        pull_matches(&registry, &p.repo, &p.tag, &p.image)
            .await
            .unwrap();
    }
    let tags: BTreeSet<String> = live
        .iter()
        .map(|p| format!("{}:{}", p.repo, p.tag))
        .collect();
    assert_eq!(listed_tags(&registry).await, tags);
    let expected: BTreeSet<String> = live.iter().flat_map(|p| digests(&p.image)).collect();
    let data = env.registryd.data();
    let files = blob_files(&data);
    let orphans: Vec<&String> = files.difference(&expected).collect();
    let missing: Vec<&String> = expected.difference(&files).collect();
    assert!(
        orphans.is_empty() && missing.is_empty(),
        "orphan files {orphans:?}, missing {missing:?}"
    );
    assert!(
        trash_files(&data).is_empty(),
        "trash left: {:?}",
        trash_files(&data)
    );
}

#[tokio::test]
async fn a_soak_of_pushes_pulls_deletes_and_collections_loses_nothing() {
    let grace = format!("{}s", GRACE.as_secs());
    let env = TestEnv::open_with(
        json!({"inline": {"maxsize": 0}, "maintenance": {"gc": {"enabled": true, "interval": "1s", "grace": grace}}}),
    )
    .await;
    let (mut rng, seed) =
        berth_tests::seed::rng("a_soak_of_pushes_pulls_deletes_and_collections_loses_nothing");
    let bases: Vec<Content> = (0..3)
        .map(|i| Content::tar_layer(&format!("base{i}"), 100_000))
        .collect();
    let ledger = Shared::default();
    let mut workers = vec![];
    for id in 0..PUSHERS {
        let rng = StdRng::seed_from_u64(rng.gen());
        workers.push(tokio::spawn(pusher(
            env.registry(),
            id,
            rng,
            bases.clone(),
            ledger.clone(),
        )));
    }
    for _ in 0..PULLERS {
        let rng = StdRng::seed_from_u64(rng.gen());
        workers.push(tokio::spawn(puller(env.registry(), rng, ledger.clone())));
    }
    workers.push(tokio::spawn(deleter(
        env.registry(),
        StdRng::seed_from_u64(rng.gen()),
        ledger.clone(),
    )));
    let config = env.registryd.config().to_owned();
    let cli = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + SOAK;
        let mut runs = 0;
        while Instant::now() < deadline {
            run_gc(&config, &[]);
            runs += 1;
            std::thread::sleep(Duration::from_secs(2));
        }
        runs
    });
    for w in workers {
        w.await.unwrap();
    }
    let cli_runs = cli.await.unwrap();

    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    eprintln!(
        "seed {seed}: {} acked, {} refused, {} deleted, {} pulls, {cli_runs} gc runs beside the daemon",
        ledger.acked, ledger.refused, ledger.deleted, ledger.pulls
    );
    assert!(
        ledger.failures.is_empty(),
        "seed {seed}: {:#?}",
        ledger.failures
    );
    assert!(
        ledger.acked >= 10 && ledger.deleted >= 5 && ledger.pulls >= 10,
        "seed {seed}: too little happened"
    );
    let log = env.registryd.daemon.log_text();
    assert!(
        !log.contains("internal error"),
        "seed {seed}: the daemon logged an internal error"
    );

    // Everything left unreferenced is older than the grace period once it has passed.
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    let out = run_gc(env.registryd.config(), &[]);
    eprintln!("final run: {out}");
    assert_store_holds_exactly(&env, &ledger.live).await;
}

#[tokio::test]
async fn a_collection_killed_at_any_moment_leaves_a_consistent_store() {
    let mut env = TestEnv::open_with(
        json!({"inline": {"maxsize": 0}, "maintenance": {"gc": {"enabled": false, "grace": "0s"}}}),
    )
    .await;
    let registry = env.registry();
    let base = Content::tar_layer("base", 50_000);
    let mut images = vec![];
    for i in 0..8 {
        let image = Image::oci(
            "amd64",
            vec![base.clone(), Content::tar_layer(&format!("own{i}"), 20_000)],
        );
        registry
            .push_image("kill/app", &format!("v{i}"), &image, None)
            .await;
        images.push(image);
    }
    // Plenty to collect, so that the kills land inside the run: blobs no manifest references…
    for _ in 0..1500 {
        registry
            .push_blob("kill/loose", &Content::random(64), None)
            .await;
    }
    // …and half the images.
    let gone = images.split_off(4);
    for image in &gone {
        let path = format!("/v2/kill/app/manifests/{}", image.manifest.digest);
        let status = registry
            .send(registry.request(Method::DELETE, &path, None))
            .await
            .status();
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let data = env.registryd.data();
    let config = env.registryd.config().to_owned();
    for delay_ms in [5, 20, 60, 150, 400] {
        let mut child = spawn_gc(&config, &[]);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.kill();
        child.wait().unwrap();
        eprintln!(
            "killed after {delay_ms} ms: {} blob files, {} in the trash",
            blob_files(&data).len(),
            trash_files(&data).len()
        );
        // The daemon serves on meanwhile: every surviving image pulls.
        for (i, image) in images.iter().enumerate() {
            pull_matches(&registry, "kill/app", &format!("v{i}"), image)
                .await
                .unwrap();
        }
    }
    // A daemon killed too, and restarted: the store is consistent as it stands...
    env.registryd.restart().await;
    let registry = env.registry();
    for (i, image) in images.iter().enumerate() {
        pull_matches(&registry, "kill/app", &format!("v{i}"), image)
            .await
            .unwrap();
    }
    // ...and one whole run leaves exactly the surviving images.
    run_gc(&config, &[]);
    let live: Vec<Pushed> = images
        .into_iter()
        .enumerate()
        .map(|(i, image)| Pushed {
            repo: "kill/app".into(),
            tag: format!("v{i}"),
            image,
        })
        .collect();
    assert_store_holds_exactly(&env, &live).await;
}
