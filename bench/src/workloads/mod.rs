//! The workloads, each run on Berth and on registry:2 in alternating rounds with the same
//! clients, sizes and token auth; each yields rows of the result table.

pub mod blobs;
pub mod cache;
pub mod curl_pull;
pub mod gc;
pub mod images;
pub mod pages;
pub mod replicas;
pub mod scaling;
pub mod tokens;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::args::Plan;
use crate::client::{Client, Login};
use crate::content::TinyImage;
use crate::error::BenchError;
use crate::load::{drive, Bounds, Outcome, Worker};

/// The repository holding the base image every other repository mounts from.
pub const BASE_REPO: &str = "bench/base";
/// The base image's tag.
pub const BASE_TAG: &str = "latest";
/// Sequence number of the base image's content (apart from every workload's).
const BASE_SEQ: u64 = u64::MAX;
/// Layer size of tiny images.
pub const TINY_LAYER: usize = 1024;

/// The same thing for each registry.
#[derive(Debug)]
pub struct Pair<T> {
    pub berth: T,
    pub registry2: T,
}

/// The machine's limits measured at the start of the run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Single-core SHA-256, bytes/s.
    pub sha256: f64,
    /// One loopback TCP connection, bytes/s.
    pub loopback: f64,
    /// The hello server under the same load generator, requests/s.
    pub hello: f64,
    /// 4 KiB writes each followed by fsync, per second, where the data folders are.
    pub fsync: f64,
    /// Bytes/s of writing a large-blob-sized file and fsyncing it, where the data folders are.
    pub durable_write: f64,
}

/// What every workload needs: the plan, the servers and the limits.
pub struct Env<'a> {
    pub plan: &'a Plan,
    pub login: Login,
    pub registries: Pair<SocketAddr>,
    /// Berth's registry.yaml.
    pub berth_config: &'a Path,
    pub limits: Limits,
    /// The base image, pushed to both registries by [`Env::seed`].
    pub base: TinyImage,
}

impl Env<'_> {
    /// Pushes the base image to [`BASE_REPO`]:[`BASE_TAG`] on both registries.
    ///
    /// # Errors
    /// A push failed.
    pub async fn seed(&self) -> Result<(), BenchError> {
        for addr in [self.registries.berth, self.registries.registry2] {
            let mut client = Client::login(
                addr,
                &self.login,
                &format!("repository:{BASE_REPO}:pull,push"),
            )
            .await?;
            client.push_small(BASE_REPO, &self.base.layer).await?;
            client.push_small(BASE_REPO, &self.base.config).await?;
            client
                .put_manifest(BASE_REPO, BASE_TAG, &self.base.manifest)
                .await?;
        }
        Ok(())
    }

    /// `n` workers per registry, each a client holding its own token for `scopes`, made into a
    /// worker by `make`.
    ///
    /// # Errors
    /// A token could not be fetched.
    pub async fn workers<W>(
        &self,
        n: usize,
        scopes: &str,
        make: impl Fn(Client) -> W,
    ) -> Result<Pair<Vec<W>>, BenchError> {
        Ok(Pair {
            berth: self
                .workers_at(self.registries.berth, n, scopes, &make)
                .await?,
            registry2: self
                .workers_at(self.registries.registry2, n, scopes, &make)
                .await?,
        })
    }

    /// `n` workers of the registry at `addr` (as [`Env::workers`]).
    ///
    /// # Errors
    /// A token could not be fetched.
    pub async fn workers_at<W>(
        &self,
        addr: SocketAddr,
        n: usize,
        scopes: &str,
        make: impl Fn(Client) -> W,
    ) -> Result<Vec<W>, BenchError> {
        let mut workers = Vec::with_capacity(n);
        for _ in 0..n {
            workers.push(make(Client::login(addr, &self.login, scopes).await?));
        }
        Ok(workers)
    }

    /// Bounds of one of the two alternating rounds of a request-rate workload.
    pub fn rate_round(&self) -> Bounds {
        Bounds {
            duration: self.plan.rate_time / 2,
            max_ops: 1_000_000,
        }
    }
}

/// The base image's content.
pub fn base_image() -> TinyImage {
    TinyImage::new(BASE_SEQ, TINY_LAYER)
}

/// Runs `rounds` rounds of `bounds` each, Berth then registry:2 in every round, and merges each
/// registry's outcomes.
///
/// # Errors
/// Only when an outcome cannot be made (see [`drive`]).
pub async fn alternate<W: Worker>(
    workers: Pair<Vec<W>>,
    rounds: u32,
    bounds: Bounds,
) -> Result<Pair<Outcome>, BenchError> {
    let Pair {
        mut berth,
        mut registry2,
    } = workers;
    let mut total = Pair {
        berth: Outcome::empty()?,
        registry2: Outcome::empty()?,
    };
    let (mut seq_b, mut seq_r) = (0, 0);
    for _ in 0..rounds {
        let (outcome, back, next) = drive(berth, bounds, seq_b).await?;
        total.berth.merge(outcome);
        (berth, seq_b) = (back, next);
        let (outcome, back, next) = drive(registry2, bounds, seq_r).await?;
        total.registry2.merge(outcome);
        (registry2, seq_r) = (back, next);
    }
    Ok(total)
}

/// What to tell about failed operations of each registry (empty when none failed).
pub fn error_note(outcomes: &Pair<&Outcome>) -> String {
    let notes: Vec<String> = [
        failures("Berth", outcomes.berth),
        failures("registry:2", outcomes.registry2),
    ]
    .into_iter()
    .filter(|n| !n.is_empty())
    .collect();
    notes.join("; ")
}

/// `{name}: N failed operations (first: …)`, or nothing when none failed.
pub fn failures(name: &str, outcome: &Outcome) -> String {
    if outcome.errors == 0 {
        return String::new();
    }
    let first = outcome.first_error.as_deref().unwrap_or("?");
    format!(
        "{name}: {} failed operations (first: {first})",
        outcome.errors
    )
}

/// Seconds as text for notes.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
