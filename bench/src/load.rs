//! The load generator: N workers, each with its own connection, running one operation after
//! another until a deadline or an operation count is reached; per-operation latencies go into an
//! HDR histogram.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::error::BenchError;

/// Latencies are recorded in microseconds up to this (one minute).
const MAX_LATENCY_US: u64 = 60_000_000;
/// A worker stops after this many failed operations.
const MAX_ERRORS_PER_WORKER: u64 = 20;
/// One operation taking longer than this counts as failed (and ends the worker's run).
const OP_TIMEOUT: Duration = Duration::from_secs(120);

/// One client's state (connection, token) and its operation.
pub trait Worker: Send + 'static {
    /// Runs operation number `seq` (unique across the workers of a run); returns how many
    /// payload bytes it moved (0 when bytes are not what is measured).
    fn op(&mut self, seq: u64) -> impl Future<Output = Result<u64, BenchError>> + Send;
}

/// When a run stops: whichever comes first.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub duration: Duration,
    pub max_ops: u64,
}

/// What a run (or several merged runs) measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub ops: u64,
    pub bytes: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Latency of successful operations, microseconds.
    pub latency: Histogram<u64>,
}

impl Outcome {
    /// Nothing measured yet.
    ///
    /// # Errors
    /// The histogram could not be made (it has fixed, valid bounds, so this does not happen).
    pub fn empty() -> Result<Outcome, BenchError> {
        let latency = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .map_err(|e| BenchError::protocol("latency histogram", e.to_string()))?;
        Ok(Outcome {
            ops: 0,
            bytes: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency,
        })
    }

    /// Adds `other` (a later run of the same workload) to this one.
    pub fn merge(&mut self, other: Outcome) {
        self.ops += other.ops;
        self.bytes += other.bytes;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.elapsed += other.elapsed;
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }

    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Payload bytes per second.
    pub fn throughput(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency at `quantile` (0..=1), milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs `workers` concurrently within `bounds`, sequence numbers starting at `first_seq`.
/// Returns the outcome, the workers (to reuse their connections and tokens) and the next unused
/// sequence number.
///
/// # Errors
/// Only when the latency histogram cannot be made; failed operations are counted instead.
pub async fn drive<W: Worker>(
    workers: Vec<W>,
    bounds: Bounds,
    first_seq: u64,
) -> Result<(Outcome, Vec<W>, u64), BenchError> {
    let next = Arc::new(AtomicU64::new(first_seq));
    let last = first_seq.saturating_add(bounds.max_ops);
    let start = Instant::now();
    let deadline = start + bounds.duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|worker| {
            Ok(tokio::spawn(run_worker(
                worker,
                Outcome::empty()?,
                next.clone(),
                last,
                deadline,
            )))
        })
        .collect::<Result<_, BenchError>>()?;
    let mut total = Outcome::empty()?;
    let mut back = Vec::new();
    for task in tasks {
        match task.await {
            Ok((outcome, worker)) => {
                total.merge(outcome);
                back.push(worker);
            }
            Err(e) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert_with(|| format!("worker task failed: {e}"));
            }
        }
    }
    total.elapsed = start.elapsed();
    let next = next.load(Ordering::Relaxed).min(last);
    Ok((total, back, next))
}

async fn run_worker<W: Worker>(
    mut worker: W,
    mut outcome: Outcome,
    next: Arc<AtomicU64>,
    last: u64,
    deadline: Instant,
) -> (Outcome, W) {
    while Instant::now() < deadline && outcome.errors < MAX_ERRORS_PER_WORKER {
        let seq = next.fetch_add(1, Ordering::Relaxed);
        if seq >= last {
            break;
        }
        let begun = Instant::now();
        match tokio::time::timeout(OP_TIMEOUT, worker.op(seq)).await {
            Err(_) => {
                outcome.errors += 1;
                outcome
                    .first_error
                    .get_or_insert_with(|| format!("no answer within {OP_TIMEOUT:?}"));
                break;
            }
            Ok(Ok(bytes)) => {
                let micros = u64::try_from(begun.elapsed().as_micros()).unwrap_or(u64::MAX);
                outcome
                    .latency
                    .saturating_record(micros.clamp(1, MAX_LATENCY_US));
                outcome.ops += 1;
                outcome.bytes += bytes;
            }
            Ok(Err(e)) => {
                outcome.errors += 1;
                outcome.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    (outcome, worker)
}
