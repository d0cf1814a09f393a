//! Running client command-line tools (docker, skopeo) and keeping what they printed.

use std::io::Write;
use std::process::{Command, Stdio};

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout and stderr together, for matching client messages wherever they went.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd`, feeding `stdin` if given, and waits for it.
///
/// # Panics
/// When the program cannot be started (not installed).
pub fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    let shown = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot run {shown}: {e} (is it installed? see the README's test command)")
    });
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("cannot write to {shown}: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {shown} failed: {e}"));
    Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Like [`run`], but the command must succeed; returns its stdout.
pub fn run_ok(cmd: Command, stdin: Option<&str>) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd, stdin);
    assert!(out.success, "{shown} failed:\n{}", out.all());
    out.stdout
}
