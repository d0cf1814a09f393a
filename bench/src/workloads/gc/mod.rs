//! Online garbage collection's cost: tiny-image pushes and pulls on Berth while a deleter turns
//! earlier pushes into garbage, in alternating rounds without and with a `registryd gc` loop on
//! Berth's data folder beside the serving daemon; registry:2 (no online collection) runs the
//! same load without one, for reference, and so does a second registryd that collects every
//! second by itself.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::collector::{collect_until, daemon_collections, Collections};
use crate::content::TinyImage;
use crate::error::BenchError;
use crate::load::{drive, Bounds, Outcome, Worker};
use crate::stack::start_collecting_berth;
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
/// Rounds of each kind: Berth without GC, Berth beside the `registryd gc` loop, the registryd
/// collecting itself, registry:2.
const ROUNDS: u32 = 2;

/// Pulls a live image as a client does: manifest by tag, then config and layer.
struct PullWorker {
    client: Client,
    live: Arc<Vec<TinyImage>>,
}

impl Worker for PullWorker {
    async fn op(&mut self, seq: u64) -> Result<u64, BenchError> {
        let n = seq % LIVE;
        let image = self
            .live
            .get(usize::try_from(n).unwrap_or(0))
            .ok_or_else(|| BenchError::protocol("live images", format!("no image {n}")))?;
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

/// Six rows: pushes, then pulls, without GC (Berth and registry:2), with a `registryd gc` loop
/// and with the daemon's own collections (Berth only).
///
/// # Errors
/// Tokens could not be fetched, the collecting daemon did not start or the images could not be
/// seeded.
pub async fn rows(env: &Env<'_>) -> Result<Vec<Row>, BenchError> {
    let live: Arc<Vec<TinyImage>> = Arc::new(
        (0..LIVE)
            .map(|n| TinyImage::new(LIVE_SEQ + n, TINY_LAYER))
            .collect(),
    );
    let collecting = start_collecting_berth(&env.plan.bin_dir, env.berth_config).await?;
    let mut berth = lane(env, env.registries.berth, &live).await?;
    let mut own_gc = lane(env, collecting.addr, &live).await?;
    let mut registry2 = lane(env, env.registries.registry2, &live).await?;
    for lane in [&mut berth, &mut own_gc, &mut registry2] {
        seed(lane, &live).await?;
    }
    let round = (env.plan.rate_time * 5 / 2).min(MAX_ROUND);
    let registryd = env.plan.bin_dir.join("registryd");
    let gc_loop = Some((registryd.as_path(), env.berth_config));
    let mut tallies = Tallies {
        off: Tally::new()?,
        looped: Tally::new()?,
        own: Tally::new()?,
        reference: Tally::new()?,
    };
    for _ in 0..ROUNDS {
        berth = run_round(berth, round, &mut tallies.off, None).await?;
        berth = run_round(berth, round, &mut tallies.looped, gc_loop).await?;
        own_gc = run_round(own_gc, round, &mut tallies.own, None).await?;
        registry2 = run_round(registry2, round, &mut tallies.reference, None).await?;
    }
    tallies.own.gc = daemon_collections(collecting.addr).await?;
    Ok(table_rows(&tallies, round))
}

/// What the rounds of each kind measured.
struct Tallies {
    /// Berth without collections.
    off: Tally,
    /// Berth beside a `registryd gc` loop.
    looped: Tally,
    /// The registryd collecting every second.
    own: Tally,
    /// registry:2.
    reference: Tally,
}

/// Clients for the registry at `addr`.
async fn lane(
    env: &Env<'_>,
    addr: SocketAddr,
    live: &Arc<Vec<TinyImage>>,
) -> Result<Lane, BenchError> {
    let scopes = format!("repository:{GC_REPO}:pull,push,delete");
    Ok(Lane {
        pushers: env
            .workers_at(addr, PUSHERS, &scopes, |client| TinyWorker {
                client,
                repo: GC_REPO,
            })
            .await?,
        pullers: env
            .workers_at(addr, PULLERS, &scopes, |client| PullWorker {
                client,
                live: live.clone(),
            })
            .await?,
        deleter: env
            .workers_at(addr, 1, &scopes, |client| DeleteWorker { client })
            .await?,
        pushed: 0,
        deleted: 0,
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

fn table_rows(t: &Tallies, round: Duration) -> Vec<Row> {
    let beside =
        format!("{PUSHERS} pushers, {PULLERS} pullers and a deleter, {ROUNDS} rounds of {round:?}");
    let mut rows = Vec::new();
    for (what, unit, pick) in [
        (
            "tiny image push (layer + config + manifest)",
            "images/s",
            Pick::Push,
        ),
        (
            "tiny image pull (manifest + config + layer)",
            "pulls/s",
            Pick::Pull,
        ),
    ] {
        let (without, reference) = (pick.of(&t.off), pick.of(&t.reference));
        let mut note = vec![error_note(&Pair {
            berth: without,
            registry2: reference,
        })];
        if pick == Pick::Push {
            note.push(deleter_note("Berth", &t.off.delete));
            note.push(deleter_note("registry:2", &t.reference.delete));
        }
        rows.push(Row {
            workload: format!("{what}, no GC ({beside})"),
            berth: figure(without, unit),
            registry2: figure(reference, unit),
            limit: None,
            target: "—".into(),
            met: None,
            note: joined(&note),
        });
        for (how, tally) in [
            ("`registryd gc` looping beside the daemon", &t.looped),
            ("the daemon collecting every 1 s itself", &t.own),
        ] {
            let with = pick.of(tally);
            let bound = 2.0 * without.latency_ms(0.99);
            let mut note = vec![NO_ONLINE_GC.to_owned(), failures("Berth", with)];
            if pick == Pick::Push {
                note.push(deleter_note("Berth", &tally.delete));
                note.push(gc_note(&tally.gc));
            }
            rows.push(Row {
                workload: format!("{what}, {how} ({beside})"),
                berth: figure(with, unit),
                registry2: None,
                limit: None,
                target: format!("no errors, p99 ≤ 2 × no GC's = {}", ms(bound)),
                met: (with.ops > 0 && without.ops > 0)
                    .then(|| with.errors == 0 && with.latency_ms(0.99) <= bound),
                note: joined(&note),
            });
        }
    }
    rows
}

const NO_ONLINE_GC: &str =
    "registry:2 has no online GC (its `garbage-collect` needs the registry stopped or read-only)";

/// Which operations of a [`Tally`] a row shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pick {
    Push,
    Pull,
}

impl Pick {
    fn of(self, tally: &Tally) -> &Outcome {
        match self {
            Pick::Push => &tally.push,
            Pick::Pull => &tally.pull,
        }
    }
}

fn figure(o: &Outcome, unit: &str) -> Option<Figure> {
    (o.ops > 0)
        .then(|| Figure::rate_with_latency(o.rate(), unit, o.latency_ms(0.5), o.latency_ms(0.99)))
}

/// What the collections did (run times only for `registryd gc`'s).
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

#[cfg(test)]
mod tests;
