//! authd as a child process on 127.0.0.1:0 (its address read from the `listening on` line), for
//! tests that signal it or read its `/metrics`: a process's recorder counts only what that
//! test did, where the in-process servers of this binary share one.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running authd, killed when dropped.
pub struct Running {
    pub child: Child,
    pub url: String,
    /// Its auth.yaml.
    pub config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on 127.0.0.1:0 and reads its address from the `listening on` line.
pub fn start(config_text: &str) -> (Running, BufReader<std::process::ChildStderr>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("auth.yaml");
    std::fs::write(&config, config_text).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_authd"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stderr = BufReader::new(child.stderr.take().unwrap_or_else(|| panic!("no stderr")));
    let mut line = String::new();
    let mut addr = None;
    for _ in 0..50 {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(rest) = line.split("listening on ").nth(1) {
            addr = rest
                .split_whitespace()
                .next()
                .map(|a| a.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned());
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no `listening on` line; last: {line}"));
    (
        Running {
            child,
            url: format!("http://{addr}"),
            config,
            _dir: dir,
        },
        stderr,
    )
}

/// [`start`], its log read and dropped in the background (a full pipe would stall it).
pub fn serve(config_text: &str) -> Running {
    let (running, mut stderr) = start(config_text);
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    running
}

/// The value of the first sample in `url`'s `/metrics` whose line starts with `series`
/// (`name` or `name{labels}`), if any.
pub async fn sample(url: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split_whitespace().next() == Some(series))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}
