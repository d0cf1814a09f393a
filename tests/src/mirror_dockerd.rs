//! A second Docker daemon, started by a test, that pulls Docker Hub images through a registry
//! mirror (`registry-mirrors` in its daemon.json) and treats the mirror as an insecure (plain
//! http) registry; and the containerd it runs, for `ctr`. It has its own data-root, exec-root and
//! socket (vfs storage, no iptables, no bridge), and a proxy that leads nowhere for everything
//! but loopback, so a fallback to the real Docker Hub can never leave the machine.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tempfile::TempDir;

use crate::cli::run;
use crate::docker::Docker;
use crate::spawned::Spawned;

/// Polls of `docker version` (every 250 ms) before the daemon counts as dead: 60 s.
const READY_POLLS: u32 = 240;

/// A running dockerd (and its containerd); stopped when dropped.
pub struct MirrorDockerd {
    /// `unix://…/docker.sock`, for `DOCKER_HOST`.
    pub host: String,
    process: Spawned,
    // Dropped last: the daemon stops before its folders go away.
    dir: TempDir,
}

impl MirrorDockerd {
    /// The daemon.json keys that make a Docker daemon pull through `mirror`
    /// (`http://berth.test:PORT`, whose host:port is also named an insecure registry, so that
    /// images can be pulled from it by prefix too).
    pub fn daemon_json(mirror: &str) -> serde_json::Value {
        let host = mirror
            .split_once("://")
            .map_or(mirror, |(_, host)| host)
            .trim_end_matches('/');
        json!({"registry-mirrors": [mirror], "insecure-registries": [host]})
    }

    /// Starts dockerd with [`MirrorDockerd::daemon_json`]`(mirror)` and waits until it answers.
    ///
    /// # Panics
    /// When dockerd cannot start or does not answer within 60 s (it needs root).
    pub async fn start(mirror: &str) -> MirrorDockerd {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let path = |name: &str| dir.path().join(name);
        let config = path("daemon.json");
        let text = serde_json::to_string_pretty(&Self::daemon_json(mirror))
            .unwrap_or_else(|e| panic!("cannot serialize daemon.json: {e}"));
        std::fs::write(&config, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let host = format!("unix://{}", path("docker.sock").display());
        let mut cmd = Command::new("dockerd");
        cmd.args([
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
        ])
        .arg("--config-file")
        .arg(&config)
        .arg("--data-root")
        .arg(path("data"))
        .arg("--exec-root")
        .arg(path("exec"))
        .arg("--pidfile")
        .arg(path("docker.pid"))
        .args(["-H", &host])
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "berth.test,localhost,127.0.0.1,::1");
        let process = Spawned::start("dockerd", cmd, &path("dockerd.log"));
        let mut daemon = MirrorDockerd { host, process, dir };
        daemon.wait_ready().await;
        daemon
    }

    async fn wait_ready(&mut self) {
        for _ in 0..READY_POLLS {
            self.process.assert_running();
            let mut cmd = Command::new("docker");
            cmd.args([
                "-H",
                &self.host,
                "version",
                "--format",
                "{{.Server.Version}}",
            ]);
            if run(cmd, None).success && self.containerd_socket().exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "dockerd never answered on {}; its log:\n{}",
            self.host,
            self.process.log_text()
        );
    }

    /// A docker CLI for this daemon.
    pub fn docker(&self) -> Docker {
        Docker::connect_to(&self.host)
    }

    /// The socket of the containerd this dockerd started (under its exec-root).
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.path().join("exec/containerd/containerd.sock")
    }

    /// Everything dockerd (and its containerd) printed so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }
}
