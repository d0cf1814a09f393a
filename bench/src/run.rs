//! One benchmark run: the machine's limits, the servers, every workload on both registries, the
//! memory of both registry processes, and the table.

use std::time::{Duration, Instant};

use crate::args::{Plan, Store, Workload};
use crate::daemon::Memory;
use crate::error::BenchError;
use crate::limits;
use crate::load::Bounds;
use crate::scaled::ScaledStore;
use crate::stack::{Programs, Stack};
use crate::table::{mib, render, Figure, Row};
use crate::workloads::{
    self, blobs, gc, images, pages, replicas, scaling, tokens, Env, Limits, Pair,
};

/// Connections driving the hello server (as many as the manifest GET workload).
const HELLO_CONNECTIONS: usize = 32;
/// How long the registries sit idle before their idle memory is read.
const SETTLE: Duration = Duration::from_secs(1);

/// Runs the plan and prints the report (machine, limits, table, notes) on stdout.
///
/// # Errors
/// The servers could not be started or a workload could not be set up.
pub async fn run(plan: &Plan) -> Result<(), BenchError> {
    let begun = Instant::now();
    let load_before = load_average();
    progress("measuring the machine's limits");
    let limits = measure_limits(plan).await?;

    let scaled = match plan.store {
        Store::Local => None,
        Store::S3 => {
            progress("starting PostgreSQL and a three-node Garage cluster");
            Some(ScaledStore::start().await)
        }
    };
    progress("starting authd, registryd and registry:2");
    let programs = Programs {
        bin_dir: plan.bin_dir.clone(),
        registry2: plan.registry2.clone(),
        inline_maxsize: plan.inline_maxsize,
    };
    let stack = Stack::start(&programs, scaled.as_ref()).await?;
    for daemon in [&stack.authd, &stack.berth, &stack.registry2] {
        progress(&format!(
            "{} pid {} on {}",
            daemon.name,
            daemon.pid().unwrap_or(0),
            daemon.addr
        ));
    }
    tokio::time::sleep(SETTLE).await;
    let idle = Pair {
        berth: stack.berth.memory()?,
        registry2: stack.registry2.memory()?,
    };
    let authd_idle = stack.authd.memory()?;

    let env = Env {
        plan,
        login: stack.login.clone(),
        registries: Pair {
            berth: stack.berth.addr,
            registry2: stack.registry2.addr,
        },
        berth_config: &stack.berth_config,
        limits,
        base: workloads::base_image(),
    };
    env.seed().await?;
    let mut rows = Vec::new();
    let pulls = plan.runs(Workload::Pull) || plan.runs(Workload::CurlPull);
    if plan.runs(Workload::Monolithic) || plan.runs(Workload::Chunked) || pulls {
        progress("making the large blobs");
        let blobs = blobs::Blobs::new(&env);
        if plan.runs(Workload::Monolithic) || pulls {
            progress("monolithic push");
            rows.push(blobs::push(&env, &blobs, false).await?);
        }
        if plan.runs(Workload::Chunked) {
            progress("chunked push");
            rows.push(blobs::push(&env, &blobs, true).await?);
        }
        if plan.runs(Workload::Pull) {
            progress("pull");
            rows.push(blobs::pull(&env, &blobs).await?);
        }
        if plan.runs(Workload::CurlPull) {
            progress("pull by curl beside nginx");
            rows.push(blobs::curl_pull(&env, &blobs).await?);
        }
    }
    if plan.runs(Workload::Cache) {
        progress("pull-through cache");
        rows.extend(workloads::cache::rows(&env).await?);
    }
    if plan.runs(Workload::Tiny) {
        progress("tiny images");
        rows.push(images::tiny(&env).await?);
    }
    if plan.runs(Workload::Manifest) {
        progress("manifest GET");
        rows.push(images::manifest_get(&env).await?);
    }
    if plan.runs(Workload::Retag) {
        progress("tag PUT");
        rows.push(images::retag(&env).await?);
    }
    if plan.runs(Workload::Gc) {
        progress("pushes and pulls with and without garbage collection");
        rows.extend(gc::rows(&env).await?);
    }
    if plan.runs(Workload::Token) {
        progress("token endpoint");
        rows.push(tokens::token_endpoint(&env).await?);
    }
    if plan.runs(Workload::LdapToken) {
        progress("token endpoint for an LDAP user");
        rows.extend(tokens::ldap(&env).await?);
    }
    if plan.runs(Workload::Tags) {
        progress("tags list (filling)");
        rows.extend(scaling::tags(&env).await?);
        progress("web pages of the filled repository");
        rows.extend(pages::rows(&env).await?);
    }
    if plan.runs(Workload::Catalog) {
        progress("catalog (filling)");
        rows.extend(scaling::catalog(&env).await?);
    }
    if plan.runs(Workload::Replicas) {
        progress("one replica against two, through nginx");
        rows.extend(replicas::rows(&env).await?);
    }
    let end = Pair {
        berth: stack.berth.memory()?,
        registry2: stack.registry2.memory()?,
    };
    let mut memory = memory_row(&idle, &end);
    memory.note = format!(
        "authd (not compared): {} / {}",
        mib(authd_idle.rss),
        mib(stack.authd.memory()?.peak)
    );
    rows.push(memory);

    let mut report = machine_description();
    report.push_str(match plan.store {
        Store::Local => "Store: Berth on SQLite and a local folder, registry:2 on a local folder.\n",
        Store::S3 => "Store: one three-node Garage cluster (S3, replication factor 3) for both, blobs streamed through the registries (no redirects); Berth's metadata in PostgreSQL.\n",
    });
    report.push_str(&format!(
        "Limits: SHA-256 {} on one core, loopback {}, hello server {} ({HELLO_CONNECTIONS} connections), {} fsyncs/s (4 KiB write + fsync) and {} durable writes (one blob-sized file + fsync) in the temp folder. Load average before / after: {load_before} / {}. Run took {:.0} s{}.\n\n",
        Figure::throughput(limits.sha256).text,
        Figure::throughput(limits.loopback).text,
        Figure::rate(limits.hello, "req/s").text,
        limits.fsync.round(),
        Figure::throughput(limits.durable_write).text,
        load_average(),
        begun.elapsed().as_secs_f64(),
        if plan.quick { " (--quick)" } else { "" },
    ));
    report.push_str(&render(&rows));
    print!("{report}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    progress("stopping the servers and removing their data");
    drop(stack);
    drop(scaled);
    Ok(())
}

async fn measure_limits(plan: &Plan) -> Result<Limits, BenchError> {
    let time = plan.limit_time;
    let sha256 = tokio::task::spawn_blocking(move || limits::sha256_throughput(time))
        .await
        .map_err(|e| BenchError::protocol("SHA-256 measurement", e.to_string()))?;
    let loopback = limits::loopback_throughput(time).await?;
    let fsync =
        tokio::task::spawn_blocking(move || limits::fsync_rate(&std::env::temp_dir(), time))
            .await
            .map_err(|e| BenchError::protocol("fsync measurement", e.to_string()))??;
    let len = plan.blob_bytes;
    let durable_write = tokio::task::spawn_blocking(move || {
        limits::durable_write_throughput(&std::env::temp_dir(), len, time)
    })
    .await
    .map_err(|e| BenchError::protocol("disk measurement", e.to_string()))??;
    let hello = limits::hello_rate(
        HELLO_CONNECTIONS,
        Bounds {
            duration: time,
            max_ops: 10_000_000,
        },
    )
    .await?;
    Ok(Limits {
        sha256,
        loopback,
        hello: hello.rate(),
        fsync,
        durable_write,
    })
}

fn memory_row(idle: &Pair<Memory>, end: &Pair<Memory>) -> Row {
    let figure = |idle: &Memory, end: &Memory| {
        Figure::text(
            end.peak as f64,
            format!("{} / {}", mib(idle.rss), mib(end.peak)),
        )
        .lower_better()
    };
    let met = idle.berth.rss <= 15 << 20 && end.berth.peak <= end.registry2.peak;
    Row {
        workload: "resident memory idle / peak (VmRSS after start / VmHWM at the end)".into(),
        berth: Some(figure(&idle.berth, &end.berth)),
        registry2: Some(figure(&idle.registry2, &end.registry2)),
        limit: None,
        target: format!("≤ 15 MiB / ≤ registry:2's ({})", mib(end.registry2.peak)),
        met: Some(met),
        note: String::new(),
    }
}

/// CPU model, cores, memory and kernel, from `/proc`.
fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / (1u64 << 20) as f64);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "Machine: {model}, {cores} cores, {mem_gib:.0} GiB RAM, Linux {}\n",
        kernel.trim()
    )
}

/// The 1-minute load average (other work on the machine skews every figure).
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_owned()
}

fn progress(step: &str) {
    eprintln!("[berth-bench] {step}");
}
