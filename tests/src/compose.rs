//! Berth in containers: the repository's `Dockerfile` built as the tests build it (binaries from
//! `target/release`, on the `debian:bookworm-slim` that `scripts/test` makes), and the
//! repository's `docker-compose.yml` (or `scaled/docker-compose.yml`, with the images of
//! `scaled/Dockerfile`) run as written by `docker-compose`, with a temp folder as its project
//! directory (its own `auth.yaml`, `registry.yaml`, `certs/` and, scaled, `.env`).

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
    build(docker, &repo_root(), None, IMAGE);
}

/// `docker build --network host --build-arg PREBUILT=1 --build-arg
/// BUILD_IMAGE=debian:bookworm-slim [--target T] -t IMAGE CONTEXT`; the image is removed when
/// `docker` drops.
fn build(docker: &Docker, context: &Path, target: Option<&str>, image: &str) {
    docker.remember(image);
    let context = context.to_string_lossy().into_owned();
    let mut args = vec![
        "build",
        "--network",
        "host",
        "--build-arg",
        "PREBUILT=1",
        "--build-arg",
        "BUILD_IMAGE=debian:bookworm-slim",
    ];
    if let Some(target) = target {
        args.extend(["--target", target]);
    }
    args.extend(["-t", image, context.as_str()]);
    let out = docker.run(&args);
    assert!(
        out.success,
        "docker build of {image} ({context}, target {target:?}) failed (scripts/test makes its \
         debian:bookworm-slim):\n{}",
        out.all()
    );
}

/// The images `scaled/docker-compose.yml` names, by `scaled/Dockerfile` target.
pub const SCALED_IMAGES: [(&str, &str); 3] = [
    ("garage", "berth-garage:latest"),
    ("postgres", "berth-postgres:latest"),
    ("balancer", "berth-balancer:latest"),
];

/// `docker build --network host --build-arg PREBUILT=1 --build-arg
/// BUILD_IMAGE=debian:bookworm-slim --target T -t IMAGE` of `scaled/Dockerfile` for each of
/// [`SCALED_IMAGES`], with the Garage the tests run (`garage` beside the folder's files in the
/// build context) instead of one compiled in the image; removed when `docker` drops.
///
/// # Panics
/// When a build fails.
pub fn build_scaled_images(docker: &Docker) {
    let context = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
    for file in ["Dockerfile", ".dockerignore", "garage.sh", "postgres.sh"] {
        copy_example(&format!("scaled/{file}"), context.path());
    }
    std::fs::copy(crate::garage::binary(), context.path().join("garage"))
        .unwrap_or_else(|e| panic!("cannot copy the garage binary: {e}"));
    for (target, image) in SCALED_IMAGES {
        build(docker, context.path(), Some(target), image);
    }
}

/// One `docker-compose` project of the repository's docker-compose.yml or
/// scaled/docker-compose.yml; `down --volumes` on drop, after printing the services' logs when
/// a test is failing.
pub struct Compose {
    file: PathBuf,
    project: String,
    /// The project directory: the temp folder, or its `scaled/`.
    project_dir: PathBuf,
    dir: TempDir,
}

impl Compose {
    /// A project folder holding copies of the example `auth.yaml` and `registry.yaml` and a
    /// `certs/` from `authd gen-cert`, owned by the image's uid as the README says.
    pub fn new() -> Compose {
        let dir = with_auth();
        copy_example("registry.yaml", dir.path());
        let project_dir = dir.path().to_path_buf();
        Compose::of("docker-compose.yml", project_dir, dir)
    }

    /// A project of scaled/docker-compose.yml: the temp folder holds the example `auth.yaml`
    /// and `certs/` (which the file names as `../`) and `scaled/` with copies of its
    /// `registry.yaml` and `nginx.conf` and a `.env` that its `make-env` printed.
    pub fn scaled() -> Compose {
        let dir = with_auth();
        let project_dir = dir.path().join("scaled");
        std::fs::create_dir(&project_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", project_dir.display()));
        for file in ["registry.yaml", "nginx.conf"] {
            copy_example(&format!("scaled/{file}"), &project_dir);
        }
        let env = Command::new(repo_root().join("scaled/make-env"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run scaled/make-env: {e}"));
        assert!(env.status.success(), "scaled/make-env failed: {env:?}");
        std::fs::write(project_dir.join(".env"), env.stdout)
            .unwrap_or_else(|e| panic!("cannot write .env: {e}"));
        Compose::of("scaled/docker-compose.yml", project_dir, dir)
    }

    fn of(file: &str, project_dir: PathBuf, dir: TempDir) -> Compose {
        Compose {
            file: repo_root().join(file),
            project: format!("berth-test-{}", unique()),
            project_dir,
            dir,
        }
    }

    /// `NAME=value` of the project's `.env` (scaled).
    pub fn env(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.project_dir.join(".env"))
            .unwrap_or_else(|e| panic!("cannot read .env: {e}"));
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in .env:\n{text}"))
            .to_owned()
    }

    /// The project's `auth.yaml`, mounted into authd.
    pub fn auth_yaml(&self) -> PathBuf {
        self.dir.path().join("auth.yaml")
    }

    /// The project folder (for files next to the configuration).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `docker-compose --file <repo>/FILE --project-directory DIR --project-name P args…`,
    /// success or not.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("--file")
            .arg(&self.file)
            .arg("--project-directory")
            .arg(&self.project_dir)
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

/// A temp folder with a copy of the example `auth.yaml` and a `certs/` from `authd gen-cert`,
/// owned by the image's uid.
fn with_auth() -> TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
    copy_example("auth.yaml", dir.path());
    let certs = dir.path().join("certs");
    gen_cert(&certs, &[]);
    chown_tree(&certs, UID);
    dir
}

/// Copies the repository's `file` into `dir`.
fn copy_example(file: &str, dir: &Path) {
    let name = Path::new(file).file_name().unwrap_or_default();
    std::fs::copy(repo_root().join(file), dir.join(name))
        .unwrap_or_else(|e| panic!("cannot copy the example {file}: {e}"));
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
