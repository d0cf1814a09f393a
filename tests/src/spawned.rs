//! Processes the docker tests start besides the harness's [`crate::daemon::Daemon`]s:
//! distribution's reference registry, `./scripts/run` (which starts both daemons as its
//! children) and daemons serving HTTPS. Each runs in its own process group, so stopping it stops
//! everything it started; dropping it stops it.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// How long [`Spawned::stop`] waits after SIGTERM before SIGKILL (polls of 100 ms: 30 s).
const STOP_POLLS: u32 = 300;

/// A running process group led by `child`, its output appended to `log`.
pub struct Spawned {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    /// Where this start's lines begin in `log`.
    log_start: u64,
}

impl Spawned {
    /// Starts `cmd` as the leader of a new process group, stdin empty, stdout and stderr
    /// appended to `log`.
    ///
    /// # Panics
    /// When the log cannot be opened or the program cannot start.
    pub fn start(name: &str, mut cmd: Command, log: &Path) -> Spawned {
        let log_start = crate::daemon::log_len(log);
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open log {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone log handle: {e}"));
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Spawned {
            name: name.into(),
            child: Some(child),
            log: log.into(),
            log_start,
        }
    }

    /// The address the process bound, from its `listening on ADDR` line (for a configuration
    /// that asks for port 0).
    ///
    /// # Panics
    /// When the process exits first or never logs the line.
    pub async fn announced_addr(&mut self) -> std::net::SocketAddr {
        let child = self.child.as_mut();
        let child = child.unwrap_or_else(|| panic!("{} was already stopped", self.name));
        crate::daemon::wait_for_addr(&self.name, &self.log, self.log_start, || {
            child.try_wait().ok().flatten()
        })
        .await
    }

    /// Everything the process group printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log when the leader has exited.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                panic!(
                    "{} exited with {status}; its log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
        } else {
            panic!("{} was already stopped", self.name);
        }
    }

    /// Polls `url` with `http` every `interval` until it answers 200, at most `polls` times.
    ///
    /// # Panics
    /// When the process exits first or `url` never answers 200.
    pub async fn wait_ok(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        polls: u32,
        interval: Duration,
    ) {
        for _ in 0..polls {
            self.assert_running();
            if let Ok(resp) = http.get(url).send().await {
                if resp.status() == reqwest::StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(interval).await;
        }
        panic!(
            "{} never answered 200 on {url}; its log:\n{}",
            self.name,
            self.log_text()
        );
    }

    /// SIGTERM to the whole group; waits for the leader and then for the rest of the group
    /// (SIGKILL to what is left after 30 s). Returns the leader's exit status, `None` when it
    /// was already stopped or had to be killed.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let group = format!("-{}", child.id());
        signal_group("-TERM", &group);
        let mut status = None;
        for _ in 0..STOP_POLLS {
            if let Ok(Some(exit)) = child.try_wait() {
                status = Some(exit);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for _ in 0..STOP_POLLS {
            if !signal_group("-0", &group) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        signal_group("-KILL", &group);
        if status.is_none() {
            let _ = child.wait();
        }
        status
    }
}

/// `kill SIGNAL -- -PGID`; whether some member of the group received it.
fn signal_group(signal: &str, group: &str) -> bool {
    Command::new("kill")
        .args([signal, "--", group])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        if std::thread::panicking() {
            crate::daemon::print_log_tail(&self.name, &self.log);
        }
    }
}
