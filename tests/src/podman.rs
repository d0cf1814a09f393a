//! The real `podman` CLI, as root, with its own storage (`--root`/`--runroot` in a temp dir, vfs
//! driver), its own `registries.conf` (`CONTAINERS_REGISTRIES_CONF`) and auth file, and a proxy
//! that leads nowhere for everything but the test's hosts, so nothing can leave the machine.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use serde_json::json;
use tempfile::TempDir;

use crate::cli::{run, Output};

/// A podman with private storage and configuration; its storage goes away on drop.
pub struct Podman {
    dir: TempDir,
}

impl Podman {
    /// A podman whose `registries.conf` sends pulls of `prefix` to `mirror`
    /// (`berth.test:PORT/docker.io`, plain http), in the form the README gives.
    pub fn with_mirror(prefix: &str, mirror: &str) -> Podman {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let podman = Podman { dir };
        write(
            &podman.path("registries.conf"),
            &registries_conf(prefix, mirror),
        );
        write(&podman.path("auth.json"), r#"{"auths":{}}"#);
        podman
    }

    /// Stores `user`/`password` for `host` in podman's auth file (what `podman login` writes).
    pub fn login(&self, host: &str, user: &str, password: &str) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let file = json!({"auths": {host: {"auth": auth}}});
        write(&self.path("auth.json"), &file.to_string());
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `podman <global flags> args…`, success or not.
    pub fn run(&self, args: &[&str]) -> Output {
        let root = self.path("root");
        let runroot = self.path("runroot");
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf"))
            .env("REGISTRY_AUTH_FILE", self.path("auth.json"))
            // A fallback past the mirror to a registry off this machine goes nowhere.
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "berth.test,upstream.test")
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(["--storage-driver", "vfs", "--events-backend", "file"])
            .args(args);
        run(cmd, None)
    }

    /// `podman image inspect --format FORMAT reference`, which must succeed.
    pub fn inspect(&self, reference: &str, format: &str) -> String {
        let out = self.run(&["image", "inspect", "--format", format, reference]);
        assert!(
            out.success,
            "podman image inspect {reference}:\n{}",
            out.all()
        );
        out.stdout.trim().to_string()
    }
}

/// The `registries.conf` of the README: pulls of `prefix` go to `mirror` first.
pub fn registries_conf(prefix: &str, mirror: &str) -> String {
    format!(
        "[[registry]]\nprefix = \"{prefix}\"\nlocation = \"{prefix}\"\n\
         [[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = true\n"
    )
}

fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
