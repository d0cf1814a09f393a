//! A daemon under test: a child process with its log file, killed when dropped.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How many times [`Daemon::wait_healthy`] polls `/healthz` (every 100 ms: 30 s in all).
const HEALTH_POLLS: u32 = 300;

/// A free TCP port on 127.0.0.1 (bound once, then released for the daemon to take).
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("bound listener has no address: {e}"))
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
    /// Starts `binary args…` with stdout/stderr appended to `log`, serving on `addr`,
    /// and waits until `GET http://addr/healthz` answers 200.
    ///
    /// # Panics
    /// When the process cannot start, exits early, or never becomes healthy.
    pub async fn start(
        name: &str,
        binary: &Path,
        args: &[&str],
        log: &Path,
        addr: SocketAddr,
    ) -> Daemon {
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
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
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
