//! Running the external programs of `ext_auth` and `ext_authz`: the command and its arguments as
//! configured (no shell), the request on stdin, a bounded stdout and stderr, a deadline after
//! which the program and everything it started are killed, and a bound on how many run at once.
//! Any failure is logged here and reaches the client as [`Error::Backend`] (503).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};

use crate::config::raw::RawProgram;
use crate::error::Error;

/// The most a program may print on stdout, and on stderr; more is a failure.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// A configured program, ready to run.
pub struct Program {
    /// `ext_auth` or `ext_authz`, for logs and errors.
    section: &'static str,
    /// The resolved executable.
    command: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    /// One permit per run allowed at once.
    slots: Semaphore,
}

/// What a program that ran to its end gave.
pub struct Exit {
    /// Its exit code.
    pub code: i32,
    /// Its standard output (at most [`MAX_OUTPUT`] bytes).
    pub stdout: Vec<u8>,
    /// Its standard error (at most [`MAX_OUTPUT`] bytes).
    pub stderr: Vec<u8>,
}

/// Why a run gave no [`Exit`].
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("could not start: {0}")]
    Spawn(std::io::Error),
    #[error("no result within {0:?} (killed)")]
    Timeout(Duration),
    #[error("more than {MAX_OUTPUT} bytes on {0} (killed)")]
    TooMuchOutput(&'static str),
    #[error("reading its output: {0}")]
    Io(std::io::Error),
    #[error("ended by a signal")]
    Signal,
}

impl Program {
    /// Checks `raw`: the command exists and is executable, the bounds are usable.
    ///
    /// # Errors
    /// What is wrong, prefixed with `section`.
    pub fn new(section: &'static str, raw: RawProgram, base: &Path) -> Result<Program, String> {
        let command = resolve(&raw.command, base)
            .ok_or_else(|| format!("{section}.command: {:?} is not an executable file (a path relative to the config file, or a name found in PATH)", raw.command))?;
        if raw.timeout.is_zero() {
            return Err(format!("{section}.timeout: must be more than 0"));
        }
        if raw.max_running == 0 || raw.max_running > Semaphore::MAX_PERMITS {
            return Err(format!("{section}.max_running: must be at least 1"));
        }
        Ok(Program {
            section,
            command,
            args: raw.args,
            timeout: raw.timeout,
            slots: Semaphore::new(raw.max_running),
        })
    }

    /// Runs the program once with `input` on stdin.
    ///
    /// # Errors
    /// [`Error::Backend`] (logged) when it cannot start, outlives the timeout (then it and its
    /// process group are killed), prints too much, or is ended by a signal.
    pub async fn run(&self, input: &[u8]) -> Result<Exit, Error> {
        let deadline = Instant::now() + self.timeout;
        let Ok(Ok(_slot)) = timeout_at(deadline, self.slots.acquire()).await else {
            return Err(self.failed(Failure::Timeout(self.timeout), b""));
        };
        let child = Command::new(&self.command)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills what it started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.failed(Failure::Spawn(e), b""))?;
        let mut running = Running(child);
        let failure = match timeout_at(deadline, exchange(&mut running.0, input)).await {
            Ok(Ok(exit)) => return Ok(exit),
            Ok(Err(failure)) => failure,
            Err(_) => Failure::Timeout(self.timeout),
        };
        running.stop().await;
        Err(self.failed(failure, b""))
    }

    /// Logs a failed run and gives the client's error. `stderr` is logged (lossily, at most
    /// [`MAX_OUTPUT`] bytes) as the program wrote it: callers remove any secret first.
    pub fn failed(&self, reason: impl std::fmt::Display, stderr: &[u8]) -> Error {
        tracing::error!(
            section = self.section,
            command = %self.command.display(),
            %reason,
            stderr = %String::from_utf8_lossy(stderr).trim(),
            "external program failed"
        );
        Error::Backend(format!("{} program failed", self.section))
    }
}

/// Writes `input` and closes stdin while reading both outputs (so a program that prints before
/// reading, or never reads, cannot block it), then waits for the exit.
async fn exchange(child: &mut Child, input: &[u8]) -> Result<Exit, Failure> {
    let (mut stdin, stdout, stderr) =
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => return Err(Failure::Io(std::io::ErrorKind::BrokenPipe.into())),
        };
    let write = async move {
        // A program that exits without reading its input is no failure: its exit code decides.
        let _ = stdin.write_all(input).await;
        drop(stdin);
        Ok(())
    };
    let ((), stdout, stderr) =
        tokio::try_join!(write, bounded(stdout, "stdout"), bounded(stderr, "stderr"))?;
    let status = child.wait().await.map_err(Failure::Io)?;
    let code = status.code().ok_or(Failure::Signal)?;
    Ok(Exit {
        code,
        stdout,
        stderr,
    })
}

/// Reads `pipe` to its end, failing as soon as it holds more than [`MAX_OUTPUT`] bytes.
async fn bounded(pipe: impl AsyncRead + Unpin, name: &'static str) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    pipe.take(MAX_OUTPUT as u64 + 1)
        .read_to_end(&mut out)
        .await
        .map_err(Failure::Io)?;
    if out.len() > MAX_OUTPUT {
        return Err(Failure::TooMuchOutput(name));
    }
    Ok(out)
}

/// A started program. Dropped before it ended (its request went away), its process group is
/// killed; the program itself is killed and reaped by tokio (`kill_on_drop`).
struct Running(Child);

impl Running {
    /// Kills the process group and the program, and reaps it.
    async fn stop(&mut self) {
        self.kill_group();
        let _ = self.0.kill().await;
    }

    /// Kills the process group while the program is not reaped (its id cannot have been reused
    /// yet); nothing once it has been.
    fn kill_group(&self) {
        let pid = self.0.id().and_then(|id| i32::try_from(id).ok());
        if let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// `command` as a path (relative to `base`) when it holds a `/`, else looked up in `PATH`;
/// `None` unless it is an executable file.
fn resolve(command: &str, base: &Path) -> Option<PathBuf> {
    if command.is_empty() {
        return None;
    }
    if command.contains('/') {
        return Some(base.join(command)).filter(|p| executable(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(command))
        .find(|p| executable(p))
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests;
