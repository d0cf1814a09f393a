//! A daemon under test: a child process with its log file, killed when dropped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How many times [`Daemon::wait_healthy`] polls `/healthz`, and [`wait_for_addr`] the log
/// (every 100 ms: 30 s in all).
const HEALTH_POLLS: u32 = 300;

/// The length of a log file now: where the next start's lines begin.
pub fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |m| m.len())
}

/// The address in the first `listening on ADDR` line of `log` past byte `from`, as the daemons
/// (and registry:2) print it once bound.
pub fn announced_addr(log: &Path, from: u64) -> Option<SocketAddr> {
    let mut file = File::open(log).ok()?;
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.split("listening on ").skip(1).find_map(|rest| {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"')
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    })
}

/// Waits until a process that was started with its configuration on port 0 names the address it
/// bound in `log` (past byte `from`), checking with `exited` that it still runs.
///
/// # Panics
/// When the process exits first, or names no address within 30 s.
pub async fn wait_for_addr(
    name: &str,
    log: &Path,
    from: u64,
    mut exited: impl FnMut() -> Option<std::process::ExitStatus>,
) -> SocketAddr {
    for _ in 0..HEALTH_POLLS {
        if let Some(addr) = announced_addr(log, from) {
            return addr;
        }
        if let Some(status) = exited() {
            panic!(
                "{name} exited with {status} before listening; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{name} never logged `listening on ADDR`; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// A running daemon. Dropping it kills the process (SIGKILL) and reaps it; when the
/// test is failing, the tail of the daemon's log is printed to help the reader.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    /// Its stdout and stderr, appended across restarts.
    log: PathBuf,
    /// The address it serves on (http).
    pub addr: SocketAddr,
}

impl Daemon {
    /// Starts `binary args…` (configured to listen on port 0) with stdout/stderr appended to
    /// `log`, reads the address it bound from its `listening on` line, and waits until
    /// `GET http://ADDR/healthz` answers 200.
    ///
    /// # Panics
    /// When the process cannot start, exits early, or never becomes healthy.
    pub async fn start(name: &str, binary: &Path, args: &[&str], log: &Path) -> Daemon {
        Daemon::start_with_env(name, binary, args, &[], log).await
    }

    /// As [`Daemon::start`], with the variables `env` (name, value) added to its environment.
    pub async fn start_with_env(
        name: &str,
        binary: &Path,
        args: &[&str],
        env: &[(String, String)],
        log: &Path,
    ) -> Daemon {
        let from = log_len(log);
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open log {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone log handle: {e}"));
        let child = Command::new(binary)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut child = child;
        let addr = wait_for_addr(name, log, from, || child.try_wait().ok().flatten()).await;
        let mut daemon = Daemon {
            name: name.into(),
            child: Some(child),
            log: log.into(),
            addr,
        };
        daemon.wait_healthy().await;
        daemon
    }

    /// `http://ADDR`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id (for signals sent by the test).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything the daemon logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `/healthz` until 200; panics with the log when the process died or never got healthy.
    async fn wait_healthy(&mut self) {
        let http = reqwest::Client::new();
        let url = format!("{}/healthz", self.url());
        for _ in 0..HEALTH_POLLS {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "{} exited with {status} before becoming healthy; log:\n{}",
                        self.name,
                        self.log_text()
                    );
                }
            }
            if let Ok(resp) = http.get(&url).send().await {
                if resp.status() == reqwest::StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} never answered 200 on {url}; log:\n{}",
            self.name,
            self.log_text()
        );
    }

    /// SIGKILL, as in a crash: no cleanup runs in the daemon.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already-exited children make kill fail; reaping below is what matters.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit (up to `HEALTH_POLLS` × 100 ms); returns whether it
    /// exited successfully.
    pub async fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "could not send SIGTERM to {}", self.name);
        for _ in 0..HEALTH_POLLS {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

/// Prints the last 40 lines of a process's log file, for a test that is failing.
pub fn print_log_tail(name: &str, log: &std::path::Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    eprintln!(
        "---- last lines of {name} log ({}) ----\n{}",
        log.display(),
        tail.join("\n")
    );
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            crate::daemon::print_log_tail(&self.name, &self.log);
        }
    }
}
