//! The single-connection pull against its static-file limit: one large blob downloaded by curl
//! from nginx (the same bytes as a file, `sendfile on`), from Berth and from registry:2, in
//! rounds that take one download from each, so the three share the machine's moments alike.
//! The cache rows use the same rounds and rows with other references.

use std::path::Path;

use crate::content::BigBlob;
use crate::curl::download;
use crate::error::BenchError;
use crate::nginx::Nginx;
use crate::table::{Figure, Row};

use super::Env;

/// Berth's target: this fraction of the reference's throughput.
pub const TARGET: f64 = 0.9;

/// Where a server is asked for a blob, and with which headers.
#[derive(Clone, Debug)]
pub struct Source {
    pub url: String,
    pub headers: Vec<String>,
}

impl Source {
    /// `url` without headers.
    pub fn open(url: String) -> Source {
        Source {
            url,
            headers: vec![],
        }
    }
}

/// Throughputs of the downloads from each server, bytes/s, round by round.
#[derive(Debug, Default)]
pub struct Samples {
    pub reference: Vec<f64>,
    pub berth: Vec<f64>,
    pub registry2: Vec<f64>,
}

impl Samples {
    /// One round: a download of `len` bytes from each of `[reference, berth, registry2]`.
    ///
    /// # Errors
    /// A download failed.
    pub async fn round(
        &mut self,
        curl: &Path,
        sources: [&Source; 3],
        len: u64,
    ) -> Result<(), BenchError> {
        let lists = [&mut self.reference, &mut self.berth, &mut self.registry2];
        for (source, list) in sources.into_iter().zip(lists) {
            let got = download(curl, &source.url, &source.headers, len).await?;
            list.push(got.throughput());
        }
        Ok(())
    }
}

/// "blob pull, N MiB, one connection, curl" row: `blob` (already pushed to `repo` on both
/// registries), Berth's and registry:2's medians shown as ratios to nginx's.
///
/// # Errors
/// nginx did not start, a token could not be fetched, or a download failed.
pub async fn row(env: &Env<'_>, repo: &str, blob: &BigBlob) -> Result<Row, BenchError> {
    let nginx = Nginx::start(&env.plan.nginx, &[blob]).await?;
    let registry = |addr| async move {
        let mut conn = crate::http::Conn::new(env.login.authd);
        let token = env
            .login
            .token(&mut conn, &format!("repository:{repo}:pull"))
            .await?;
        Ok::<_, BenchError>(Source {
            url: format!("http://{addr}/v2/{repo}/blobs/{}", blob.digest),
            headers: vec![format!("Authorization: Bearer {token}")],
        })
    };
    let sources = [
        Source::open(nginx.url(&blob.digest)),
        registry(env.registries.berth).await?,
        registry(env.registries.registry2).await?,
    ];
    let row = static_limit_row(
        &env.plan.curl,
        [&sources[0], &sources[1], &sources[2]],
        blob.len,
        env.plan.curl_rounds,
        format!("blob pull, {} MiB, one connection, curl", blob.len >> 20),
    )
    .await;
    drop(nginx);
    row
}

/// Written data flushed (a push or a cold fill before must not write back during the rounds),
/// one unmeasured download from each source (files in the page cache, daemons warm), then
/// `rounds` rounds; the row compares with `sources[0]`, nginx.
///
/// # Errors
/// A download failed.
pub async fn static_limit_row(
    curl: &Path,
    sources: [&Source; 3],
    len: u64,
    rounds: u32,
    workload: String,
) -> Result<Row, BenchError> {
    flush_disk_writes()?;
    let mut warm_up = Samples::default();
    warm_up.round(curl, sources, len).await?;
    let mut samples = Samples::default();
    for _ in 0..rounds {
        samples.round(curl, sources, len).await?;
    }
    Ok(ratio_row(workload, "nginx", "nginx, sendfile", &samples))
}

/// `sync`: written data goes to the disk now, not during the next measurement.
pub fn flush_disk_writes() -> Result<(), BenchError> {
    let status = std::process::Command::new("sync")
        .status()
        .map_err(BenchError::io("run sync"))?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::protocol(
            "sync",
            format!("exited with {status}"),
        ))
    }
}

/// A row of Berth's and registry:2's median throughputs as ratios to the reference's median
/// (`name` in the figures, `limit` in the limit column); met at [`TARGET`] × the reference.
pub fn ratio_row(workload: String, name: &str, limit: &str, samples: &Samples) -> Row {
    let reference = median(&samples.reference);
    let (berth, registry2) = (median(&samples.berth), median(&samples.registry2));
    let against = |value: f64| {
        Figure::text(
            value,
            format!(
                "{} ({:.2} × {name})",
                Figure::throughput(value).text,
                value / reference.max(1.0)
            ),
        )
    };
    Row {
        workload,
        berth: Some(against(berth)),
        registry2: Some(against(registry2)),
        limit: Some(format!("{} ({limit})", Figure::throughput(reference).text)),
        target: format!(
            "≥ {TARGET} × {name} = {}",
            Figure::throughput(TARGET * reference).text
        ),
        met: Some(berth >= TARGET * reference),
        note: format!(
            "medians of {} downloads each, one from each server per round",
            samples.reference.len()
        ),
    }
}

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_shows_medians_as_ratios_to_the_reference() {
        let samples = Samples {
            reference: vec![3.0e9, 1.0e9, 2.0e9],
            berth: vec![1.9e9, 1.8e9, 5.0e9],
            registry2: vec![1.0e9, 1.2e9],
        };
        let row = ratio_row("pull".into(), "nginx", "nginx, sendfile", &samples);
        assert_eq!(row.berth.as_ref().unwrap().text, "1900 MB/s (0.95 × nginx)");
        assert_eq!(
            row.registry2.as_ref().unwrap().text,
            "1100 MB/s (0.55 × nginx)"
        );
        assert_eq!(row.limit.as_deref(), Some("2000 MB/s (nginx, sendfile)"));
        assert_eq!(row.target, "≥ 0.9 × nginx = 1800 MB/s");
        assert_eq!(row.met, Some(true));
    }

    #[test]
    fn below_nine_tenths_of_the_reference_is_not_met() {
        let samples = Samples {
            reference: vec![2.0e9],
            berth: vec![1.7e9],
            registry2: vec![1.0e9],
        };
        let row = ratio_row("pull".into(), "direct", "direct", &samples);
        assert_eq!(row.met, Some(false));
        assert_eq!(median(&[]), 0.0);
    }
}
