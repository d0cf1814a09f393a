//! The single-connection pull against its static-file limit: one large blob downloaded by curl
//! from nginx (the same bytes as a file, `sendfile on`), from Berth and from registry:2, in
//! rounds that take one download from each, so the three share the machine's moments alike.

use crate::content::BigBlob;
use crate::curl::download;
use crate::error::BenchError;
use crate::nginx::Nginx;
use crate::table::{Figure, Row};

use super::{Env, Pair};

/// Berth's target: this fraction of nginx's throughput.
const TARGET: f64 = 0.9;

/// Where each server is asked for the blob, and with which headers.
struct Source {
    url: String,
    headers: Vec<String>,
}

/// Throughputs of the downloads from each server, bytes/s, round by round.
#[derive(Debug)]
struct Samples {
    nginx: Vec<f64>,
    berth: Vec<f64>,
    registry2: Vec<f64>,
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
        Source {
            url: nginx.url(&blob.digest),
            headers: vec![],
        },
        registry(env.registries.berth).await?,
        registry(env.registries.registry2).await?,
    ];
    let curl = &env.plan.curl;
    // One unmeasured download each: the files are in the page cache, the daemons warm.
    for source in &sources {
        download(curl, &source.url, &source.headers, blob.len).await?;
    }
    let mut rounds: [Vec<f64>; 3] = Default::default();
    for _ in 0..env.plan.curl_rounds {
        for (source, got) in sources.iter().zip(rounds.iter_mut()) {
            got.push(
                download(curl, &source.url, &source.headers, blob.len)
                    .await?
                    .throughput(),
            );
        }
    }
    let [nginx_samples, berth, registry2] = rounds;
    let samples = Samples {
        nginx: nginx_samples,
        berth,
        registry2,
    };
    drop(nginx);
    Ok(make_row(
        format!("blob pull, {} MiB, one connection, curl", blob.len >> 20),
        &samples,
    ))
}

fn make_row(workload: String, samples: &Samples) -> Row {
    let nginx = median(&samples.nginx);
    let registries = Pair {
        berth: median(&samples.berth),
        registry2: median(&samples.registry2),
    };
    let against = |value: f64| {
        Figure::text(
            value,
            format!(
                "{} ({:.2} × nginx)",
                Figure::throughput(value).text,
                value / nginx.max(1.0)
            ),
        )
    };
    Row {
        workload,
        berth: Some(against(registries.berth)),
        registry2: Some(against(registries.registry2)),
        limit: Some(format!(
            "{} (nginx, sendfile)",
            Figure::throughput(nginx).text
        )),
        target: format!(
            "≥ {TARGET} × nginx = {}",
            Figure::throughput(TARGET * nginx).text
        ),
        met: Some(registries.berth >= TARGET * nginx),
        note: format!(
            "medians of {} downloads each, one from each server per round",
            samples.nginx.len()
        ),
    }
}

/// The median of `values` (0 when empty).
fn median(values: &[f64]) -> f64 {
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
    fn the_row_shows_medians_as_ratios_to_nginx() {
        let samples = Samples {
            nginx: vec![3.0e9, 1.0e9, 2.0e9],
            berth: vec![1.9e9, 1.8e9, 5.0e9],
            registry2: vec![1.0e9, 1.2e9],
        };
        let row = make_row("pull".into(), &samples);
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
    fn below_nine_tenths_of_nginx_is_not_met() {
        let samples = Samples {
            nginx: vec![2.0e9],
            berth: vec![1.7e9],
            registry2: vec![1.0e9],
        };
        assert_eq!(make_row("pull".into(), &samples).met, Some(false));
        assert_eq!(median(&[]), 0.0);
    }
}
