//! Garbage collections on Berth and what they did (how many, how long each took, what they
//! freed): `registryd gc --config FILE` run again and again beside the serving daemon until a
//! deadline, or a daemon's own runs as its `/metrics` counts them.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use tokio::process::Command;

use crate::error::BenchError;
use crate::http::{request, Conn, Keep, Payload};

/// One collection taking longer than this is killed and counted as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// The loop stops after this many failed runs.
const MAX_FAILURES: u64 = 5;

/// What the collections of one or more loops did.
#[derive(Clone, Debug, Default)]
pub struct Collections {
    pub runs: u64,
    pub failures: u64,
    pub first_failure: Option<String>,
    pub blobs: u64,
    pub bytes: u64,
    /// Wall time of each successful run, the process's start included.
    pub durations: Vec<Duration>,
}

impl Collections {
    /// Adds `other` (a later loop) to this one.
    pub fn merge(&mut self, other: Collections) {
        self.runs += other.runs;
        self.failures += other.failures;
        self.first_failure = self.first_failure.take().or(other.first_failure);
        self.blobs += other.blobs;
        self.bytes += other.bytes;
        self.durations.extend(other.durations);
    }

    /// The median and the longest run's wall time.
    pub fn median_and_longest(&self) -> Option<(Duration, Duration)> {
        let mut sorted = self.durations.clone();
        sorted.sort_unstable();
        Some((*sorted.get(sorted.len() / 2)?, *sorted.last()?))
    }
}

/// Runs `registryd gc --config config` one run after the other until `deadline` (a run started
/// before it finishes) or [`MAX_FAILURES`] failed runs.
pub async fn collect_until(registryd: &Path, config: &Path, deadline: Instant) -> Collections {
    let mut done = Collections::default();
    while Instant::now() < deadline && done.failures < MAX_FAILURES {
        let begun = Instant::now();
        let run = Command::new(registryd)
            .arg("gc")
            .arg("--config")
            .arg(config)
            .kill_on_drop(true)
            .output();
        let failure = match tokio::time::timeout(RUN_TIMEOUT, run).await {
            Err(_) => format!("no result within {RUN_TIMEOUT:?}"),
            Ok(Err(e)) => format!("cannot run {}: {e}", registryd.display()),
            Ok(Ok(out)) if out.status.success() => {
                let said = String::from_utf8_lossy(&out.stdout);
                match said.lines().find_map(parse_freed) {
                    Some((blobs, bytes)) => {
                        done.runs += 1;
                        done.blobs += blobs;
                        done.bytes += bytes;
                        done.durations.push(begun.elapsed());
                        continue;
                    }
                    None => format!("no `garbage collection freed` line in: {said}"),
                }
            }
            Ok(Ok(out)) => {
                let said = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = said.lines().rev().take(3).collect();
                format!("exited with {}: {}", out.status, tail.join(" / "))
            }
        };
        done.failures += 1;
        done.first_failure.get_or_insert(failure);
    }
    done
}

/// The collections a daemon ran itself, from its `/metrics` (no run times: it does not export
/// them; a counter is absent until its first increment).
///
/// # Errors
/// `/metrics` could not be fetched.
pub async fn daemon_collections(addr: SocketAddr) -> Result<Collections, BenchError> {
    let req = request(Method::GET, "/metrics", &[], Payload::empty())?;
    let answer = Conn::new(addr)
        .send(req, Keep::Body)
        .await?
        .expect("GET /metrics", StatusCode::OK)?;
    let text = String::from_utf8_lossy(&answer.body);
    let counter = |name: &str| counter(&text, name).unwrap_or(0);
    Ok(Collections {
        runs: counter("registry_gc_runs_total"),
        blobs: counter("registry_gc_blobs_freed_total"),
        bytes: counter("registry_gc_bytes_freed_total"),
        ..Collections::default()
    })
}

/// The value of the unlabelled counter `name` in a Prometheus text.
fn counter(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Blobs and bytes of `registryd gc`'s summary line
/// (`garbage collection freed N blobs, M bytes (…)`).
fn parse_freed(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("garbage collection freed ")?;
    let (blobs, rest) = rest.split_once(" blobs, ")?;
    let (bytes, _) = rest.split_once(" bytes")?;
    Some((blobs.parse().ok()?, bytes.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blobs_and_bytes_from_the_summary_line() {
        assert_eq!(
            parse_freed(
                "garbage collection freed 12 blobs, 34567 bytes (6 manifests, 18 repository links)"
            ),
            Some((12, 34567))
        );
        assert_eq!(
            parse_freed("garbage collection would free 1 blobs, 2 bytes (…)"),
            None
        );
        assert_eq!(parse_freed("garbage collection freed many blobs"), None);
    }

    #[test]
    fn reads_unlabelled_counters_from_prometheus_text() {
        let text = "# TYPE registry_gc_runs_total counter\nregistry_gc_runs_total 7\nregistry_gc_runs_total_x 1\nregistry_gc_bytes_freed_total 1.5e3\n";
        assert_eq!(counter(text, "registry_gc_runs_total"), Some(7));
        assert_eq!(counter(text, "registry_gc_bytes_freed_total"), Some(1500));
        assert_eq!(counter(text, "registry_gc_blobs_freed_total"), None);
    }

    #[test]
    fn median_and_longest_of_the_runs() {
        let mut c = Collections::default();
        assert_eq!(c.median_and_longest(), None);
        c.durations = [30, 10, 20].map(Duration::from_millis).to_vec();
        assert_eq!(
            c.median_and_longest(),
            Some((Duration::from_millis(20), Duration::from_millis(30)))
        );
    }
}
