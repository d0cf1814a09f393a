//! Berth started the README's way, `./scripts/run`, with copies of the example `auth.yaml` and
//! `registry.yaml` in a temp folder (`BERTH_HOME`), on the example's fixed ports 5000 and 5001;
//! and the README's own command blocks, run by bash as written.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::{Mutex, MutexGuard};

use crate::bins::{as_in_a_shell, repo_root};
use crate::cli::{run, Output};
use crate::spawned::Spawned;

/// How the README names the registry to docker.
pub const REGISTRY: &str = "localhost:5000";
/// registryd of the example registry.yaml.
pub const REGISTRY_URL: &str = "http://127.0.0.1:5000";
/// authd of the example auth.yaml.
pub const AUTHD_URL: &str = "http://127.0.0.1:5001";

/// Waiting for the daemons: `scripts/run` may have to build them first (polls of 1 s: 30 min).
const START_POLLS: u32 = 1800;

/// Held by whoever runs Berth on the example's fixed ports (this module and the container tests),
/// so that tests of one process take turns.
pub static EXAMPLE_PORTS: Mutex<()> = Mutex::const_new(());

/// `./scripts/run` serving from a temp copy of the example configuration; stopped on drop.
pub struct Quickstart {
    pub process: Spawned,
    _ports: MutexGuard<'static, ()>,
    // Dropped last: the daemons stop before their folder goes away.
    pub home: TempDir,
}

impl Quickstart {
    /// Copies `auth.yaml` and `registry.yaml` from the repository's root into a temp folder, runs
    /// `scripts/run` with `BERTH_HOME` set to it and waits until both daemons answer `/healthz`.
    ///
    /// # Panics
    /// When port 5000 or 5001 is taken, or either daemon never gets healthy.
    pub async fn start() -> Quickstart {
        let ports = EXAMPLE_PORTS.lock().await;
        for port in [5000, 5001] {
            assert!(
                TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "port {port} is taken: the README's example runs Berth on 5000 and 5001 \
                 (stop whatever holds it, e.g. another ./scripts/run or Debian's docker-registry service)"
            );
        }
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let root = repo_root();
        for file in ["auth.yaml", "registry.yaml"] {
            std::fs::copy(root.join(file), home.path().join(file))
                .unwrap_or_else(|e| panic!("cannot copy the example {file}: {e}"));
        }
        let mut cmd = Command::new(root.join("scripts/run"));
        as_in_a_shell(&mut cmd)
            .env("BERTH_HOME", home.path())
            .current_dir(&root);
        let mut process = Spawned::start("scripts/run", cmd, &home.path().join("run.log"));
        let http = reqwest::Client::new();
        for url in [AUTHD_URL, REGISTRY_URL] {
            process
                .wait_ok(
                    &http,
                    &format!("{url}/healthz"),
                    START_POLLS,
                    Duration::from_secs(1),
                )
                .await;
        }
        Quickstart {
            process,
            _ports: ports,
            home,
        }
    }

    /// The running authd's `auth.yaml` (the copy), for live edits.
    pub fn auth_yaml(&self) -> PathBuf {
        self.home.path().join("auth.yaml")
    }
}

/// The fenced code block of `markdown` that follows the first line containing `marker`.
///
/// # Panics
/// When there is no such marker or no block after it.
pub fn block_after(markdown: &str, marker: &str) -> String {
    let start = markdown
        .find(marker)
        .unwrap_or_else(|| panic!("the README has no marker {marker:?}"));
    let rest = &markdown[start..];
    let open = rest
        .find("```")
        .unwrap_or_else(|| panic!("no code block after {marker:?}"));
    let body = &rest[open..];
    let first_line_end = body.find('\n').unwrap_or(body.len());
    let body = &body[first_line_end..];
    let close = body
        .find("\n```")
        .unwrap_or_else(|| panic!("the code block after {marker:?} is not closed"));
    body[..close].trim().to_string()
}

/// Runs `script` with `bash -euo pipefail` in `cwd`, with docker's config in `docker_config`.
pub fn bash(script: &str, cwd: &Path, docker_config: &Path) -> Output {
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(cwd)
        .env("DOCKER_CONFIG", docker_config);
    run(cmd, None)
}
