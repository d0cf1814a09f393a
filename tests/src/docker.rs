//! The real `docker` CLI against the Docker daemon named by `DOCKER_HOST`, with a private
//! `DOCKER_CONFIG` so logins never leak between tests.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use crate::cli::{run, run_ok, Output};

/// A docker CLI with its own config directory.
pub struct Docker {
    config: TempDir,
    host: String,
    /// Image references this wrapper loaded or pulled; removed from the daemon on drop.
    created: std::cell::RefCell<Vec<String>>,
}

impl Docker {
    /// # Panics
    /// When `DOCKER_HOST` is unset or its daemon does not answer `docker version`: these tests
    /// need a real Docker daemon, which the README's test command (`./scripts/test`) starts.
    pub fn connect() -> Docker {
        let host = std::env::var("DOCKER_HOST").unwrap_or_default();
        assert!(
            !host.is_empty(),
            "DOCKER_HOST is not set: the docker tests need a running Docker daemon. \
             Run the README's test command, `./scripts/test`, which starts one and sets DOCKER_HOST."
        );
        Docker::connect_to(&host)
    }

    /// A docker CLI for the daemon at `host` (`unix:///…/docker.sock`).
    ///
    /// # Panics
    /// When that daemon does not answer `docker version`.
    pub fn connect_to(host: &str) -> Docker {
        let host = host.to_string();
        let config =
            tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let docker = Docker {
            config,
            host,
            created: std::cell::RefCell::new(Vec::new()),
        };
        let out = docker.run(&["version", "--format", "{{.Server.Version}}"]);
        assert!(
            out.success,
            "the Docker daemon at DOCKER_HOST={} does not answer `docker version`: {}\n\
             Run the README's test command, `./scripts/test`, which starts one.",
            docker.host,
            out.all()
        );
        docker
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_HOST", &self.host)
            .args(args);
        cmd
    }

    /// `docker args…`, success or not.
    pub fn run(&self, args: &[&str]) -> Output {
        run(self.command(args), None)
    }

    /// `docker args…`, which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        run_ok(self.command(args), None)
    }

    /// `docker login host -u user --password-stdin`.
    pub fn login(&self, host: &str, user: &str, password: &str) -> Output {
        run(
            self.command(&["login", host, "-u", user, "--password-stdin"]),
            Some(password),
        )
    }

    /// The private config.json (to check what login/logout stored).
    pub fn config_json(&self) -> String {
        std::fs::read_to_string(self.config.path().join("config.json")).unwrap_or_default()
    }

    /// `docker load -i tar`; returns the loaded reference, remembered for cleanup.
    pub fn load(&self, tar: &Path) -> String {
        let path = tar.to_string_lossy();
        let out = self.ok(&["load", "-i", &path]);
        let reference = out
            .lines()
            .find_map(|l| l.strip_prefix("Loaded image: "))
            .unwrap_or_else(|| panic!("docker load printed no image name: {out}"))
            .trim()
            .to_string();
        self.remember(&reference);
        reference
    }

    /// Adds `reference` to what is removed from the daemon on drop.
    pub fn remember(&self, reference: &str) {
        self.created.borrow_mut().push(reference.into());
    }

    /// `docker image inspect --format '{{json .RepoDigests}}'`-style query on one field.
    pub fn inspect(&self, reference: &str, format: &str) -> String {
        self.ok(&["image", "inspect", "--format", format, reference])
            .trim()
            .to_string()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let refs = self.created.borrow().clone();
        for reference in refs {
            // Best effort: the image may already be gone.
            let _ = self.run(&["rmi", "--force", &reference]);
        }
    }
}
