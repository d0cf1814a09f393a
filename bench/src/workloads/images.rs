//! Small-request workloads: pushing tiny images (8 workers), getting a manifest by tag (32
//! connections) and re-tagging one manifest (8 workers).

use bytes::Bytes;

use crate::client::Client;
use crate::content::TinyImage;
use crate::error::BenchError;
use crate::load::{Outcome, Worker};
use crate::table::{Figure, Row};

use super::{alternate, error_note, Env, Pair, BASE_REPO, BASE_TAG, TINY_LAYER};

const TINY_REPO: &str = "bench/tiny";
/// Requests one tiny image costs a client: HEAD + POST + PUT for each blob, PUT of the manifest.
pub const REQUESTS_PER_IMAGE: f64 = 7.0;

/// Pushes a new tiny image per operation to `repo` under tag `img-SEQ`, as `docker push` would.
pub struct TinyWorker {
    pub client: Client,
    pub repo: &'static str,
}

impl TinyWorker {
    /// The tag operation `seq` puts.
    pub fn tag(seq: u64) -> String {
        format!("img-{seq}")
    }
}

impl Worker for TinyWorker {
    async fn op(&mut self, seq: u64) -> Result<u64, BenchError> {
        let image = TinyImage::new(seq, TINY_LAYER);
        self.client.push_small(self.repo, &image.layer).await?;
        self.client.push_small(self.repo, &image.config).await?;
        self.client
            .put_manifest(self.repo, &TinyWorker::tag(seq), &image.manifest)
            .await?;
        Ok(0)
    }
}

/// Gets the base image's manifest by tag.
pub struct ManifestWorker {
    pub client: Client,
}

impl Worker for ManifestWorker {
    async fn op(&mut self, _seq: u64) -> Result<u64, BenchError> {
        self.client.get_manifest(BASE_REPO, BASE_TAG).await
    }
}

/// Puts one manifest under tag `{prefix}{seq:07}` of `repo`; also fills the tags list.
pub struct TagWorker {
    pub client: Client,
    pub repo: String,
    pub prefix: &'static str,
    pub manifest: Bytes,
}

impl TagWorker {
    /// The tag operation `seq` puts.
    pub fn tag(prefix: &str, seq: u64) -> String {
        format!("{prefix}{seq:07}")
    }
}

impl Worker for TagWorker {
    async fn op(&mut self, seq: u64) -> Result<u64, BenchError> {
        let tag = TagWorker::tag(self.prefix, seq);
        self.client
            .put_manifest(&self.repo, &tag, &self.manifest)
            .await?;
        Ok(0)
    }
}

/// Tiny images row: ≥ 10 × registry:2.
///
/// # Errors
/// Tokens could not be fetched.
pub async fn tiny(env: &Env<'_>) -> Result<Row, BenchError> {
    let workers = env
        .workers(8, &format!("repository:{TINY_REPO}:pull,push"), |client| {
            TinyWorker {
                client,
                repo: TINY_REPO,
            }
        })
        .await?;
    let out = alternate(workers, 2, env.rate_round()).await?;
    let limit = env.limits.hello / REQUESTS_PER_IMAGE;
    Ok(times_registry2_row(
        "tiny images (layer + config + manifest), 8 workers".into(),
        &out,
        "images/s",
        Some(format!(
            "{} (hello ÷ 7 requests); {:.0} fsyncs/s",
            Figure::rate(limit, "images/s").text,
            env.limits.fsync
        )),
    ))
}

/// Manifest GET row: ≥ 15k req/s with p99 ≤ 10 ms.
///
/// # Errors
/// Tokens could not be fetched.
pub async fn manifest_get(env: &Env<'_>) -> Result<Row, BenchError> {
    let workers = env
        .workers(32, &format!("repository:{BASE_REPO}:pull"), |client| {
            ManifestWorker { client }
        })
        .await?;
    let out = alternate(workers, 2, env.rate_round()).await?;
    let figure = |o: &Outcome| {
        (o.ops > 0).then(|| {
            Figure::rate_with_latency(o.rate(), "req/s", o.latency_ms(0.5), o.latency_ms(0.99))
        })
    };
    let met = (out.berth.ops > 0).then(|| {
        out.berth.rate() >= 15_000.0 && out.berth.latency_ms(0.99) <= 10.0 && out.berth.errors == 0
    });
    Ok(Row {
        workload: "manifest GET by tag, 32 connections".into(),
        berth: figure(&out.berth),
        registry2: figure(&out.registry2),
        limit: Some(format!(
            "{} (hello)",
            Figure::rate(env.limits.hello, "req/s").text
        )),
        target: "≥ 15k req/s, p99 ≤ 10 ms".into(),
        met,
        note: error_note(&Pair {
            berth: &out.berth,
            registry2: &out.registry2,
        }),
    })
}

/// Tag PUT row: ≥ 10 × registry:2.
///
/// # Errors
/// Tokens could not be fetched.
pub async fn retag(env: &Env<'_>) -> Result<Row, BenchError> {
    let manifest = env.base.manifest.clone();
    let workers = env
        .workers(8, &format!("repository:{BASE_REPO}:pull,push"), |client| {
            TagWorker {
                client,
                repo: BASE_REPO.into(),
                prefix: "re-",
                manifest: manifest.clone(),
            }
        })
        .await?;
    let out = alternate(workers, 2, env.rate_round()).await?;
    Ok(times_registry2_row(
        "tag PUT (re-tag one manifest), 8 workers".into(),
        &out,
        "tags/s",
        Some(format!(
            "{} (hello); {:.0} fsyncs/s",
            Figure::rate(env.limits.hello, "req/s").text,
            env.limits.fsync
        )),
    ))
}

/// A rate row whose target is ten times registry:2's figure.
fn times_registry2_row(
    workload: String,
    out: &Pair<Outcome>,
    unit: &str,
    limit: Option<String>,
) -> Row {
    let figure = |o: &Outcome| {
        (o.ops > 0).then(|| {
            Figure::rate_with_latency(o.rate(), unit, o.latency_ms(0.5), o.latency_ms(0.99))
        })
    };
    let target = 10.0 * out.registry2.rate();
    let met = (out.berth.ops > 0 && out.registry2.ops > 0)
        .then(|| out.berth.rate() >= target && out.berth.errors == 0);
    Row {
        workload,
        berth: figure(&out.berth),
        registry2: figure(&out.registry2),
        limit,
        target: format!("≥ 10 × registry:2 = {}", Figure::rate(target, unit).text),
        met,
        note: error_note(&Pair {
            berth: &out.berth,
            registry2: &out.registry2,
        }),
    }
}
