//! A server process the benchmark starts (authd, registryd, registry:2, the hello server): its
//! log file, readiness polling on loopback, resident memory from `/proc/PID/status`, and a
//! SIGTERM-then-SIGKILL stop when dropped.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;

use crate::error::BenchError;
use crate::http::{request, Conn, Keep, Payload};

/// How long a daemon may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Resident memory of a process, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the most ever resident.
    pub peak: u64,
}

impl Memory {
    /// Parses the `VmRSS` and `VmHWM` lines of a `/proc/PID/status` text.
    pub fn parse(status: &str) -> Option<Memory> {
        let field = |name: &str| {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kib: u64 = line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kib * 1024)
        };
        Some(Memory {
            rss: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
///
/// # Errors
/// Binding failed.
pub fn free_addr() -> Result<SocketAddr, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(BenchError::io("bind 127.0.0.1:0"))?;
    listener
        .local_addr()
        .map_err(BenchError::io("read the bound address"))
}

/// A running server process.
pub struct Daemon {
    pub name: String,
    pub addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` (stdin empty, stdout and stderr to `log`) as the server `name` that will
    /// listen on `addr`.
    ///
    /// # Errors
    /// The log cannot be created or the program cannot start.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        addr: SocketAddr,
        log: &Path,
    ) -> Result<Daemon, BenchError> {
        let out = File::create(log).map_err(BenchError::io(format!("create {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(BenchError::io("clone a log handle"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(BenchError::io(format!("start {name} ({cmd:?})")))?;
        Ok(Daemon {
            name: name.into(),
            addr,
            child: Some(child),
            log: log.into(),
        })
    }

    /// Polls `GET path` until the answer's status passes `ready`, the process exits, or 30 s.
    ///
    /// # Errors
    /// The process exited or never answered as wanted.
    pub async fn wait_ready(
        &mut self,
        path: &str,
        ready: fn(http::StatusCode) -> bool,
    ) -> Result<(), BenchError> {
        let begun = Instant::now();
        let mut last = String::from("no answer");
        while begun.elapsed() < START_TIMEOUT {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(self.start_error(format!("exited with {status}")));
            }
            let req = request(Method::GET, path, &[], Payload::empty())?;
            match Conn::new(self.addr).send(req, Keep::Body).await {
                Ok(answer) if ready(answer.status) => return Ok(()),
                Ok(answer) => last = format!("GET {path} answered {}", answer.status),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(self.start_error(format!("not ready after {START_TIMEOUT:?} ({last})")))
    }

    fn start_error(&self, reason: String) -> BenchError {
        BenchError::Start {
            name: self.name.clone(),
            reason,
            log_tail: self.log_tail(20),
        }
    }

    /// The whole log so far (empty when unreadable).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Resident memory now and at peak.
    ///
    /// # Errors
    /// The process is gone or `/proc` is unreadable.
    pub fn memory(&self) -> Result<Memory, BenchError> {
        let pid = self
            .pid()
            .ok_or_else(|| BenchError::protocol(&self.name, "not running"))?;
        let path = format!("/proc/{pid}/status");
        let text =
            std::fs::read_to_string(&path).map_err(BenchError::io(format!("read {path}")))?;
        Memory::parse(&text).ok_or_else(|| BenchError::protocol(path, "no VmRSS/VmHWM lines"))
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let begun = Instant::now();
        while begun.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resident_and_peak_memory() {
        let status =
            "Name:\tregistryd\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            Memory::parse(status),
            Some(Memory {
                rss: 1024 * 1024,
                peak: 2048 * 1024
            })
        );
    }

    #[test]
    fn status_without_memory_lines_gives_none() {
        assert_eq!(
            Memory::parse("Name:\tkthreadd\nState:\tS (sleeping)\n"),
            None
        );
        assert_eq!(Memory::parse("VmHWM:\tlots kB\nVmRSS:\t1 kB\n"), None);
    }
}
