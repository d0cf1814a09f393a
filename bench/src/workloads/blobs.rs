//! Large-blob workloads: monolithic push (one `PUT`), chunked push (`PATCH`es), and pull, each
//! in MB/s against the machine's SHA-256 or loopback limit.

use std::sync::Arc;
use std::time::Duration;

use crate::client::Client;
use crate::content::{BigBlob, BlobFamily};
use crate::error::BenchError;
use crate::load::{Bounds, Worker};
use crate::table::{Figure, Row};

use super::{alternate, error_note, Env, Pair};

const MONO_REPO: &str = "bench/mono";
const CHUNKED_REPO: &str = "bench/chunked";

/// One pushed blob per round: effectively no time bound beyond the per-operation timeout.
const PUSH_ROUND: Bounds = Bounds {
    duration: Duration::from_secs(600),
    max_ops: 1,
};

/// How a blob is pushed.
#[derive(Clone, Copy, Debug)]
enum Push {
    Monolithic,
    Chunked(usize),
}

/// Pushes member `seq` of its list of blobs.
struct PushWorker {
    client: Client,
    repo: &'static str,
    how: Push,
    blobs: Arc<Vec<BigBlob>>,
}

impl Worker for PushWorker {
    async fn op(&mut self, seq: u64) -> Result<u64, BenchError> {
        let blob = usize::try_from(seq)
            .ok()
            .and_then(|i| self.blobs.get(i))
            .ok_or_else(|| BenchError::protocol("push", format!("no blob number {seq}")))?;
        match self.how {
            Push::Monolithic => self.client.push_monolithic(self.repo, blob).await?,
            Push::Chunked(size) => self.client.push_chunked(self.repo, blob, size).await?,
        }
        Ok(blob.len)
    }
}

/// Pulls one blob over and over.
struct PullWorker {
    client: Client,
    blob: BigBlob,
}

impl Worker for PullWorker {
    async fn op(&mut self, _seq: u64) -> Result<u64, BenchError> {
        let got = self.client.pull_blob(MONO_REPO, &self.blob.digest).await?;
        if got != self.blob.len {
            return Err(BenchError::protocol(
                "blob GET",
                format!("{got} bytes, wanted {}", self.blob.len),
            ));
        }
        Ok(got)
    }
}

/// The blob families' members used: monolithic pushes take the first `rounds`, chunked pushes
/// the next `rounds` (new content for each push on each registry).
pub struct Blobs {
    members: Arc<Vec<BigBlob>>,
    rounds: usize,
}

impl Blobs {
    /// Makes the content (random, `blob_bytes` long, varying in the last chunk).
    pub fn new(env: &Env<'_>) -> Blobs {
        let rounds = env.plan.blob_rounds as usize;
        let family = BlobFamily::new(env.plan.blob_bytes, env.plan.chunk_bytes);
        let members = (0..2 * rounds as u64).map(|n| family.member(n)).collect();
        Blobs {
            members: Arc::new(members),
            rounds,
        }
    }

    fn slice(&self, from: usize) -> Arc<Vec<BigBlob>> {
        Arc::new(self.members[from..from + self.rounds].to_vec())
    }
}

/// Monolithic push row (against 0.8 × SHA-256) or chunked push row (0.7 × SHA-256).
///
/// # Errors
/// Tokens could not be fetched.
pub async fn push(env: &Env<'_>, blobs: &Blobs, chunked: bool) -> Result<Row, BenchError> {
    let (repo, how, first, factor) = if chunked {
        (
            CHUNKED_REPO,
            Push::Chunked(env.plan.chunk_bytes),
            blobs.rounds,
            0.7,
        )
    } else {
        (MONO_REPO, Push::Monolithic, 0, 0.8)
    };
    let list = blobs.slice(first);
    let scopes = format!("repository:{repo}:pull,push");
    let workers = env
        .workers(1, &scopes, |client| PushWorker {
            client,
            repo,
            how,
            blobs: list.clone(),
        })
        .await?;
    let out = alternate(workers, env.plan.blob_rounds, PUSH_ROUND).await?;
    let mib = env.plan.blob_bytes >> 20;
    let workload = if chunked {
        format!(
            "chunked push, {mib} MiB in {} MiB PATCHes",
            env.plan.chunk_bytes >> 20
        )
    } else {
        format!("monolithic push, {mib} MiB blob")
    };
    let mut row = throughput_row(workload, &out, env.limits.sha256, factor, "SHA-256");
    let disk = Figure::throughput(env.limits.durable_write).text;
    row.limit = row
        .limit
        .map(|l| format!("{l}; {disk} (disk write + fsync)"));
    Ok(row)
}

/// Pull row (0.7 × loopback): the last monolithically pushed blob, one connection.
///
/// # Errors
/// Tokens could not be fetched.
pub async fn pull(env: &Env<'_>, blobs: &Blobs) -> Result<Row, BenchError> {
    let blob = blobs.members[blobs.rounds - 1].clone();
    let scopes = format!("repository:{MONO_REPO}:pull");
    let workers = env
        .workers(1, &scopes, |client| PullWorker {
            client,
            blob: blob.clone(),
        })
        .await?;
    let out = alternate(workers, 2, env.rate_round()).await?;
    let workload = format!("pull of a {} MiB blob", env.plan.blob_bytes >> 20);
    Ok(throughput_row(
        workload,
        &out,
        env.limits.loopback,
        0.7,
        "loopback",
    ))
}

/// The single-connection curl pull of the same blob as [`pull`], beside nginx.
///
/// # Errors
/// See [`super::curl_pull::row`].
pub async fn curl_pull(env: &Env<'_>, blobs: &Blobs) -> Result<Row, BenchError> {
    super::curl_pull::row(env, MONO_REPO, &blobs.members[blobs.rounds - 1]).await
}

fn throughput_row(
    workload: String,
    out: &Pair<crate::load::Outcome>,
    limit: f64,
    factor: f64,
    limit_name: &str,
) -> Row {
    let berth = (out.berth.ops > 0).then(|| Figure::throughput(out.berth.throughput()));
    let registry2 = (out.registry2.ops > 0).then(|| Figure::throughput(out.registry2.throughput()));
    let met = berth
        .as_ref()
        .map(|b| b.value >= factor * limit && out.berth.errors == 0);
    Row {
        workload,
        limit: Some(format!("{} ({limit_name})", Figure::throughput(limit).text)),
        target: format!(
            "≥ {factor} × {limit_name} = {}",
            Figure::throughput(factor * limit).text
        ),
        met,
        note: error_note(&Pair {
            berth: &out.berth,
            registry2: &out.registry2,
        }),
        berth,
        registry2,
    }
}
