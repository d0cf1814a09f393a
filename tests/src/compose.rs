//! Berth in containers: the repository's `Dockerfile` built as the tests build it (binaries from
//! `target/release`, on the `debian:bookworm-slim` that `scripts/test` makes), and the
//! repository's `docker-compose.yml` run as written by `docker-compose`, with a temp folder as
//! its project directory (its own `auth.yaml`, `registry.yaml` and `certs/`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::authd::gen_cert;
use crate::bins::{binary, repo_root};
use crate::cli::{run, Output};
use crate::content::unique;
use crate::docker::Docker;

/// The image docker-compose.yml names.
pub const IMAGE: &str = "berth:latest";
/// The uid the image runs as (docker-compose.yml's comments and the README ask for it).
pub const UID: u32 = 10001;

/// `docker build --network host --build-arg PREBUILT=1 --build-arg
/// BUILD_IMAGE=debian:bookworm-slim -t berth:latest .` in the repository; the image is removed
/// when `docker` drops.
///
/// # Panics
/// When the build fails.
pub fn build_image(docker: &Docker) {
    // The harness's binaries are the ones the image takes.
    let _ = binary("authd");
    let root = repo_root().to_string_lossy().into_owned();
    docker.remember(IMAGE);
    let out = docker.run(&[
        "build",
        "--network",
        "host",
        "--build-arg",
        "PREBUILT=1",
        "--build-arg",
        "BUILD_IMAGE=debian:bookworm-slim",
        "-t",
        IMAGE,
        &root,
    ]);
    assert!(
        out.success,
        "docker build of the Dockerfile failed (scripts/test makes its debian:bookworm-slim):\n{}",
        out.all()
    );
}

/// One `docker-compose` project of the repository's docker-compose.yml; `down --volumes` on
/// drop, after printing the services' logs when a test is failing.
pub struct Compose {
    project: String,
    dir: TempDir,
}

impl Compose {
    /// A project folder holding copies of the example `auth.yaml` and `registry.yaml` and a
    /// `certs/` from `authd gen-cert`, owned by the image's uid as the README says.
    pub fn new() -> Compose {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let root = repo_root();
        for file in ["auth.yaml", "registry.yaml"] {
            std::fs::copy(root.join(file), dir.path().join(file))
                .unwrap_or_else(|e| panic!("cannot copy the example {file}: {e}"));
        }
        let certs = dir.path().join("certs");
        gen_cert(&certs, &[]);
        chown_tree(&certs, UID);
        Compose {
            project: format!("berth-test-{}", unique()),
            dir,
        }
    }

    /// The project's `auth.yaml`, mounted into authd.
    pub fn auth_yaml(&self) -> PathBuf {
        self.dir.path().join("auth.yaml")
    }

    /// The project folder (for files next to the configuration).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `docker-compose --file <repo>/docker-compose.yml --project-directory DIR --project-name P
    /// args…`, success or not.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("--file")
            .arg(repo_root().join("docker-compose.yml"))
            .arg("--project-directory")
            .arg(self.dir.path())
            .args(["--project-name", &self.project, "--ansi", "never"])
            .args(args);
        run(cmd, None)
    }

    /// Like [`Compose::run`], which must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.success,
            "docker-compose {} failed:\n{}",
            args.join(" "),
            out.all()
        );
        out.stdout
    }

    /// The container id of `service`.
    pub fn container(&self, service: &str) -> String {
        let id = self.ok(&["ps", "-q", service]).trim().to_string();
        assert!(
            !id.is_empty(),
            "docker-compose has no container for {service}"
        );
        id
    }

    /// `docker inspect --format FORMAT` of `service`'s container.
    pub fn inspect(&self, docker: &Docker, service: &str, format: &str) -> String {
        docker
            .ok(&["inspect", "--format", format, &self.container(service)])
            .trim()
            .to_string()
    }

    /// Waits until Docker reports `service`'s healthcheck as passing (polls of 1 s, 90 at most:
    /// the file's healthchecks run every 10 s).
    ///
    /// # Panics
    /// When it never does, with the service's logs.
    pub async fn wait_healthy(&self, docker: &Docker, service: &str) {
        let mut status = String::new();
        for _ in 0..90 {
            status = self.inspect(docker, service, "{{.State.Health.Status}}");
            if status == "healthy" {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!(
            "{service} is {status:?}, not healthy, after 90 s; its logs:\n{}",
            self.run(&["logs", "--no-color", service]).all()
        );
    }

    /// `docker-compose exec -T service sh -c script` (as the image's user), success or not.
    pub fn sh(&self, service: &str, script: &str) -> Output {
        self.run(&["exec", "-T", service, "sh", "-c", script])
    }
}

impl Default for Compose {
    fn default() -> Self {
        Compose::new()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What the services said, for the failure being reported.
            eprintln!(
                "docker-compose logs:\n{}",
                self.run(&["logs", "--no-color"]).all()
            );
        }
        // Best effort: the project may already be down.
        let _ = self.run(&["down", "--volumes", "--timeout", "5"]);
    }
}

/// `chown -R uid:uid dir` (the tests run as root, as `scripts/test` does).
fn chown_tree(dir: &Path, uid: u32) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .path();
        std::os::unix::fs::chown(&path, Some(uid), Some(uid))
            .unwrap_or_else(|e| panic!("cannot chown {}: {e}", path.display()));
    }
    std::os::unix::fs::chown(dir, Some(uid), Some(uid))
        .unwrap_or_else(|e| panic!("cannot chown {}: {e}", dir.display()));
}
