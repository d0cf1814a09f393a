//! One replica against two (`--store s3`): a second registryd on Berth's database and bucket,
//! and two nginx balancers of the same configuration (round-robin, kept-alive upstream
//! connections), one in front of Berth alone and one in front of both replicas. Tiny image
//! pushes and manifest GETs go through each balancer in alternating rounds; the row gives the
//! two-replica figure, the note the one-replica figure and the ratio.

use std::net::SocketAddr;

use berth_tests::nginx::Nginx;

use crate::error::BenchError;
use crate::load::Outcome;
use crate::stack::start_berth_beside;
use crate::table::{Figure, Row};

use super::images::{ManifestWorker, TinyWorker, REQUESTS_PER_IMAGE};
use super::{alternate, error_note, Env, Pair, BASE_REPO};

const TWO_REPO: &str = "bench/replicas-two";
const ONE_REPO: &str = "bench/replicas-one";

/// The rows: tiny images, then manifest GETs.
///
/// # Errors
/// The second replica did not come up or tokens could not be fetched.
pub async fn rows(env: &Env<'_>) -> Result<Vec<Row>, BenchError> {
    let second =
        start_berth_beside(&env.plan.bin_dir, env.berth_config, "replica", |_, _| {}).await?;
    let one = balancer(&[env.registries.berth.to_string()]).await;
    let two = balancer(&[env.registries.berth.to_string(), second.addr.to_string()]).await;
    let addrs = Pair {
        berth: addr(&two)?,
        registry2: addr(&one)?,
    };

    // A repository per side: the rounds push the same content, and a blob already linked into
    // the repository would not be uploaded again.
    let workers = Pair {
        berth: tiny_workers(env, addrs.berth, TWO_REPO).await?,
        registry2: tiny_workers(env, addrs.registry2, ONE_REPO).await?,
    };
    let tiny = compare(
        "tiny images through nginx, 8 workers: two replicas (one in the note)",
        &alternate(workers, 2, env.rate_round()).await?,
        "images/s",
        Figure::rate(env.limits.hello / REQUESTS_PER_IMAGE, "images/s").text,
    );

    let scopes = format!("repository:{BASE_REPO}:pull");
    let make = |client| ManifestWorker { client };
    let workers = Pair {
        berth: env.workers_at(addrs.berth, 32, &scopes, make).await?,
        registry2: env.workers_at(addrs.registry2, 32, &scopes, make).await?,
    };
    let manifests = compare(
        "manifest GET by tag through nginx, 32 connections: two replicas (one in the note)",
        &alternate(workers, 2, env.rate_round()).await?,
        "req/s",
        Figure::rate(env.limits.hello, "req/s").text,
    );
    Ok(vec![tiny, manifests])
}

/// Eight tiny-image pushers into `repo` through `addr`.
async fn tiny_workers(
    env: &Env<'_>,
    addr: SocketAddr,
    repo: &'static str,
) -> Result<Vec<TinyWorker>, BenchError> {
    let scopes = format!("repository:{repo}:pull,push");
    env.workers_at(addr, 8, &scopes, |client| TinyWorker { client, repo })
        .await
}

/// nginx balancing round-robin over `servers` (`host:port`).
async fn balancer(servers: &[String]) -> Nginx {
    let servers: String = servers
        .iter()
        .map(|s| format!("    server {s};\n"))
        .collect();
    Nginx::start_with(
        &format!("  upstream replicas {{\n{servers}    keepalive 32;\n  }}"),
        "    client_max_body_size 0;\n    location /v2/ {\n      proxy_pass http://replicas;\n      \
         proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      \
         proxy_set_header Host $http_host;\n    }",
    )
    .await
}

fn addr(nginx: &Nginx) -> Result<SocketAddr, BenchError> {
    format!("127.0.0.1:{}", nginx.port)
        .parse()
        .map_err(|e: std::net::AddrParseError| BenchError::protocol("nginx address", e.to_string()))
}

/// The row of `out`: `berth` measured through two replicas, `registry2` through one.
fn compare(workload: &str, out: &Pair<Outcome>, unit: &str, limit: String) -> Row {
    let (two, one) = (&out.berth, &out.registry2);
    let figure = |o: &Outcome| {
        (o.ops > 0).then(|| {
            Figure::rate_with_latency(o.rate(), unit, o.latency_ms(0.5), o.latency_ms(0.99))
        })
    };
    let one_text = figure(one).map_or_else(|| "nothing measured".into(), |f| f.text);
    let mut note = format!(
        "one replica: {one_text}; two ÷ one = {:.2}× (both replicas, nginx, PostgreSQL and Garage share the machine's cores)",
        two.rate() / one.rate().max(1e-9)
    );
    let errors = error_note(&Pair {
        berth: two,
        registry2: one,
    })
    .replace("Berth", "two replicas")
    .replace("registry:2", "one replica");
    if !errors.is_empty() {
        note.push_str("; ");
        note.push_str(&errors);
    }
    Row {
        workload: workload.into(),
        berth: figure(two),
        registry2: None,
        limit: Some(limit),
        target: "—".into(),
        met: None,
        note,
    }
}
