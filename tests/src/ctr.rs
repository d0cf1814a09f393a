//! containerd's `ctr` (it ships with docker.io) against a running containerd, pulling as a
//! Kubernetes node does: `ctr images pull --hosts-dir DIR`, where `DIR/<host:port>/hosts.toml`
//! names a mirror for that registry host.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::cli::{run, run_ok, Output};
use crate::content::unique;

/// `ctr` in a namespace of its own on one containerd, with its own hosts directory.
pub struct Ctr {
    socket: PathBuf,
    namespace: String,
    hosts: TempDir,
}

impl Ctr {
    /// `ctr` for the containerd listening on `socket`, in a fresh namespace.
    pub fn new(socket: &Path) -> Ctr {
        Ctr {
            socket: socket.into(),
            namespace: format!("berth-test-{}", unique()),
            hosts: tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}")),
        }
    }

    /// The `hosts.toml` that sends pulls from `registry` (`host:port`, plain http) through
    /// `mirror` (`http://host:port`) first, as a containerd node is configured.
    pub fn hosts_toml(registry: &str, mirror: &str) -> String {
        format!(
            "server = \"http://{registry}\"\n\n[host.\"{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        )
    }

    /// Writes [`Ctr::hosts_toml`] as `<hosts dir>/<registry>/hosts.toml`.
    pub fn add_mirror(&self, registry: &str, mirror: &str) {
        let dir = self.hosts.path().join(registry);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let path = dir.join("hosts.toml");
        std::fs::write(&path, Self::hosts_toml(registry, mirror))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.socket)
            .args(["--namespace", &self.namespace])
            .args(args);
        cmd
    }

    /// `ctr images pull --hosts-dir DIR --plain-http --snapshotter native [--user U:P] reference`
    /// (the native snapshotter works without overlayfs), success or not.
    pub fn pull(&self, reference: &str, user: Option<(&str, &str)>) -> Output {
        let hosts = self.hosts.path().to_string_lossy().into_owned();
        let mut args = vec![
            "images",
            "pull",
            "--hosts-dir",
            &hosts,
            "--plain-http",
            "--snapshotter",
            "native",
        ];
        let credentials = user.map(|(name, password)| format!("{name}:{password}"));
        if let Some(credentials) = &credentials {
            args.extend(["--user", credentials]);
        }
        args.push(reference);
        run(self.command(&args), None)
    }

    /// `ctr images rm --sync reference`: the image and, once collected, its content are gone, so
    /// that the next pull fetches everything again.
    pub fn remove(&self, reference: &str) {
        run_ok(self.command(&["images", "rm", "--sync", reference]), None);
    }

    /// The digests of the content this namespace holds (`ctr content ls -q`).
    pub fn content(&self) -> Vec<String> {
        run_ok(self.command(&["content", "ls", "-q"]), None)
            .lines()
            .map(str::to_string)
            .collect()
    }
}
