//! Online garbage collection's cost: tiny-image pushes and pulls on Berth while a deleter turns
//! earlier pushes into garbage, in alternating rounds without and with a `registryd gc` loop on
//! Berth's data folder beside the serving daemon; registry:2 (no online collection) runs the
//! same load without one, for reference.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::collector::{collect_until, Collections};
use crate::content::TinyImage;
use crate::error::BenchError;
use crate::load::{drive, Bounds, Outcome, Worker};
use crate::table::{ms, Figure, Row};

use super::images::TinyWorker;
use super::{error_note, failures, Env, Pair, TINY_LAYER};

const GC_REPO: &str = "bench/gc";
const PUSHERS: usize = 4;
const PULLERS: usize = 4;
/// Tagged images the pullers pull; never deleted, so every collection must keep them.
const LIVE: u64 = 16;
/// Sequence number of the first live image (apart from the pushed ones).
const LIVE_SEQ: u64 = 1 << 40;
/// Images pushed before the first round, so that the deleter has work from the start.
const SEEDED: u64 = 100;
/// Longest time the seeding may take.
const SEED_TIME: Duration = Duration::from_secs(60);
/// Longest round (rounds are 2.5 × `--seconds`, capped by this).
const MAX_ROUND: Duration = Duration::from_secs(6);
/// Rounds of each kind: Berth without GC, Berth with GC, registry:2.
const ROUNDS: u32 = 2;

/// Pulls a live image as a client does: manifest by tag, then config and layer.
struct PullWorker {
    client: Client,
    live: Arc<Vec<TinyImage>>,
}

impl Worker for PullWorker {
    async fn op(&mut self, seq: u64) -> Result<u64, BenchError> {
        let n = seq % LIVE;
        let image = &self.live[n as usize];
        let mut bytes = self.client.get_manifest(GC_REPO, &live_tag(n)).await?;
        bytes += self.client.pull_blob(GC_REPO, &image.config.digest).await?;
        bytes += self.client.pull_blob(GC_REPO, &image.layer.digest).await?;
        Ok(bytes)
    }
}

/// Deletes the manifest tagged `img-SEQ` by digest, as a client deletes an image by tag (its
/// blobs become garbage).
struct DeleteWorker {
    client: Client,
}

impl Worker for DeleteWorker {
    async fn op(&mut self, seq: u64) -> Result<u64, BenchError> {
        let digest = self
            .client
            .manifest_digest(GC_REPO, &TinyWorker::tag(seq))
            .await?;
        self.client.delete_manifest(GC_REPO, &digest).await?;
        Ok(0)
    }
}

fn live_tag(n: u64) -> String {
    format!("live-{n}")
}

/// One registry's clients and how far its pushes and deletes have come.
struct Lane {
    pushers: Vec<TinyWorker>,
    pullers: Vec<PullWorker>,
    deleter: Vec<DeleteWorker>,
    /// Next image to push: every image below it was pushed (or its push failed).
    pushed: u64,
    /// Next image to delete.
    deleted: u64,
}

/// What rounds of one kind measured.
struct Tally {
    push: Outcome,
    pull: Outcome,
    delete: Outcome,
    gc: Collections,
}

impl Tally {
    fn new() -> Result<Tally, BenchError> {
        Ok(Tally {
            push: Outcome::empty()?,
            pull: Outcome::empty()?,
            delete: Outcome::empty()?,
            gc: Collections::default(),
        })
    }
}

/// Four rows: pushes and pulls without GC (Berth and registry:2), then with GC (Berth only).
///
/// # Errors
/// Tokens could not be fetched or the images could not be seeded.
pub async fn rows(env: &Env<'_>) -> Result<Vec<Row>, BenchError> {
    let live: Arc<Vec<TinyImage>> = Arc::new(
        (0..LIVE)
            .map(|n| TinyImage::new(LIVE_SEQ + n, TINY_LAYER))
            .collect(),
    );
    let mut lanes = lanes(env, &live).await?;
    for lane in [&mut lanes.berth, &mut lanes.registry2] {
        seed(lane, &live).await?;
    }
    let round = (env.plan.rate_time * 5 / 2).min(MAX_ROUND);
    let registryd = env.plan.bin_dir.join("registryd");
    let gc = Some((registryd.as_path(), env.berth_config));
    let (mut off, mut on, mut reference) = (Tally::new()?, Tally::new()?, Tally::new()?);
    let Pair {
        mut berth,
        mut registry2,
    } = lanes;
    for _ in 0..ROUNDS {
        berth = run_round(berth, round, &mut off, None).await?;
        berth = run_round(berth, round, &mut on, gc).await?;
        registry2 = run_round(registry2, round, &mut reference, None).await?;
    }
    Ok(table_rows(&off, &on, &reference, round))
}

/// Clients for both registries.
async fn lanes(env: &Env<'_>, live: &Arc<Vec<TinyImage>>) -> Result<Pair<Lane>, BenchError> {
    let scopes = format!("repository:{GC_REPO}:pull,push,delete");
    let pushers = env
        .workers(PUSHERS, &scopes, |client| TinyWorker {
            client,
            repo: GC_REPO,
        })
        .await?;
    let pullers = env
        .workers(PULLERS, &scopes, |client| PullWorker {
            client,
            live: live.clone(),
        })
        .await?;
    let deleter = env
        .workers(1, &scopes, |client| DeleteWorker { client })
        .await?;
    let lane = |pushers, pullers, deleter| Lane {
        pushers,
        pullers,
        deleter,
        pushed: 0,
        deleted: 0,
    };
    Ok(Pair {
        berth: lane(pushers.berth, pullers.berth, deleter.berth),
        registry2: lane(pushers.registry2, pullers.registry2, deleter.registry2),
    })
}

/// Pushes the live images (tagged `live-N`) and [`SEEDED`] images for the deleter.
async fn seed(lane: &mut Lane, live: &[TinyImage]) -> Result<(), BenchError> {
    let client = &mut lane.pushers[0].client;
    for (n, image) in (0..).zip(live) {
        client.push_small(GC_REPO, &image.layer).await?;
        client.push_small(GC_REPO, &image.config).await?;
        client
            .put_manifest(GC_REPO, &live_tag(n), &image.manifest)
            .await?;
    }
    let bounds = Bounds {
        duration: SEED_TIME,
        max_ops: SEEDED,
    };
    let (outcome, pushers, next) = drive(std::mem::take(&mut lane.pushers), bounds, 0).await?;
    lane.pushers = pushers;
    lane.pushed = next;
    match outcome.first_error {
        Some(e) => Err(BenchError::protocol("seeding the GC workload", e)),
        None => Ok(()),
    }
}

/// One round of `duration`: pushers, pullers and the deleter (of images pushed before the
/// round) together, beside a loop of `registryd gc --config FILE` when `gc` names the program
/// and the file; adds what they did to `tally`.
async fn run_round(
    lane: Lane,
    duration: Duration,
    tally: &mut Tally,
    gc: Option<(&Path, &Path)>,
) -> Result<Lane, BenchError> {
    let deadline = Instant::now() + duration;
    let bounds = Bounds {
        duration,
        max_ops: 1_000_000,
    };
    let deletes = Bounds {
        duration,
        max_ops: lane.pushed - lane.deleted,
    };
    let collect = async {
        match gc {
            Some((registryd, config)) => collect_until(registryd, config, deadline).await,
            None => Collections::default(),
        }
    };
    let (push, pull, delete, collections) = tokio::join!(
        drive(lane.pushers, bounds, lane.pushed),
        drive(lane.pullers, bounds, 0),
        drive(lane.deleter, deletes, lane.deleted),
        collect,
    );
    let (push, pushers, pushed) = push?;
    let (pull, pullers, _) = pull?;
    let (delete, deleter, deleted) = delete?;
    tally.push.merge(push);
    tally.pull.merge(pull);
    tally.delete.merge(delete);
    tally.gc.merge(collections);
    Ok(Lane {
        pushers,
        pullers,
        deleter,
        pushed,
        deleted,
    })
}

fn table_rows(off: &Tally, on: &Tally, reference: &Tally, round: Duration) -> Vec<Row> {
    let figure = |o: &Outcome, unit: &str| {
        (o.ops > 0).then(|| {
            Figure::rate_with_latency(o.rate(), unit, o.latency_ms(0.5), o.latency_ms(0.99))
        })
    };
    let beside =
        format!("{PUSHERS} pushers, {PULLERS} pullers and a deleter, {ROUNDS} rounds of {round:?}");
    let no_gc = "registry:2 has no online GC (its `garbage-collect` needs the registry stopped or read-only)";
    let push_notes = (
        [
            deleter_note("Berth", &off.delete),
            deleter_note("registry:2", &reference.delete),
        ],
        [deleter_note("Berth", &on.delete), gc_note(&on.gc)],
    );
    let mut rows = Vec::new();
    for (what, unit, without, with, reg2, (notes_off, notes_on)) in [
        (
            "tiny image push (layer + config + manifest)",
            "images/s",
            &off.push,
            &on.push,
            &reference.push,
            push_notes,
        ),
        (
            "tiny image pull (manifest + config + layer)",
            "pulls/s",
            &off.pull,
            &on.pull,
            &reference.pull,
            Default::default(),
        ),
    ] {
        let mut note = vec![error_note(&Pair {
            berth: without,
            registry2: reg2,
        })];
        note.extend(notes_off);
        rows.push(Row {
            workload: format!("{what}, no GC ({beside})"),
            berth: figure(without, unit),
            registry2: figure(reg2, unit),
            limit: None,
            target: "—".into(),
            met: None,
            note: joined(&note),
        });
        let bound = 2.0 * without.latency_ms(0.99);
        let mut note = vec![no_gc.to_owned(), failures("Berth", with)];
        note.extend(notes_on);
        rows.push(Row {
            workload: format!("{what}, `registryd gc` looping beside the daemon ({beside})"),
            berth: figure(with, unit),
            registry2: None,
            limit: None,
            target: format!("no errors, p99 ≤ 2 × no GC's = {}", ms(bound)),
            met: (with.ops > 0 && without.ops > 0)
                .then(|| with.errors == 0 && with.latency_ms(0.99) <= bound),
            note: joined(&note),
        });
    }
    rows
}

/// What the collections did.
fn gc_note(gc: &Collections) -> String {
    let millis = |d: Duration| ms(d.as_secs_f64() * 1000.0);
    let times = gc
        .median_and_longest()
        .map_or_else(String::new, |(p50, max)| {
            format!(
                ", each {} (median) / {} (longest)",
                millis(p50),
                millis(max)
            )
        });
    let failed = match &gc.first_failure {
        Some(e) => format!("; {} failed runs (first: {e})", gc.failures),
        None => String::new(),
    };
    format!(
        "GC: {} runs{times}, freed {} blobs ({} bytes){failed}",
        gc.runs, gc.blobs, gc.bytes
    )
}

fn deleter_note(name: &str, delete: &Outcome) -> String {
    let who = format!("{name}'s deleter");
    joined(&[
        format!("{who}: {} images deleted", delete.ops),
        failures(&who, delete),
    ])
}

fn joined(parts: &[String]) -> String {
    let parts: Vec<&str> = parts
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    parts.join("; ")
}
