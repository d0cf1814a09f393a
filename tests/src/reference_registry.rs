//! distribution's reference registry (registry:2, Debian's `docker-registry` package) on a
//! loopback port: trusting authd's tokens (the peer whose checks authd's tokens must pass), or
//! behind htpasswd Basic auth; its configuration file, start and storage folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::authd::{ISSUER, SERVICE};
use crate::spawned::Spawned;

/// The program Debian's `docker-registry` package installs.
pub const PROGRAM: &str = "docker-registry";

/// How a reference registry authenticates its clients.
#[derive(Clone, Copy, Debug)]
pub enum Registry2Auth<'a> {
    /// `auth.token`: authd's tokens (service `registry`, issuer `berth-auth`), fetched at `realm`
    /// and checked against `rootcertbundle`.
    Token {
        realm: &'a str,
        rootcertbundle: &'a Path,
    },
    /// `auth.htpasswd`: Basic auth against this bcrypt file.
    Htpasswd { path: &'a Path },
}

/// A running reference registry; stopped when dropped.
pub struct ReferenceRegistry {
    pub addr: SocketAddr,
    pub process: Spawned,
}

impl ReferenceRegistry {
    /// Serves `dir` (see [`write_config`]) with authd's tokens on a 127.0.0.1 port of its
    /// choosing, waiting until `GET /` answers 200.
    pub async fn start(dir: &Path, realm: &str, rootcertbundle: &Path) -> ReferenceRegistry {
        let auth = Registry2Auth::Token {
            realm,
            rootcertbundle,
        };
        let config = write_config(dir, "127.0.0.1:0", auth);
        let (process, addr) = serve(dir, &config).await;
        ReferenceRegistry { addr, process }
    }

    /// `127.0.0.1:PORT`, as docker names the registry.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// `dir/registry2-data`: the filesystem storage of the registry configured in `dir`.
pub fn storage(dir: &Path) -> PathBuf {
    dir.join("registry2-data")
}

/// Writes `dir/registry2.yml`: storage in [`storage`]`(dir)` with deletes enabled, listening on
/// `addr`, clients authenticated as `auth` says. Returns its path.
pub fn write_config(dir: &Path, addr: &str, auth: Registry2Auth) -> PathBuf {
    let auth = match auth {
        Registry2Auth::Token {
            realm,
            rootcertbundle,
        } => json!({"token": {
            "realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": rootcertbundle,
        }}),
        Registry2Auth::Htpasswd { path } => {
            json!({"htpasswd": {"realm": "registry2", "path": path}})
        }
    };
    let config = json!({
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {
            "filesystem": {"rootdirectory": storage(dir)},
            "delete": {"enabled": true},
        },
        "http": {"addr": addr},
        "auth": auth,
    });
    let path = dir.join("registry2.yml");
    let text = serde_yaml::to_string(&config)
        .unwrap_or_else(|e| panic!("cannot write registry2.yml: {e}"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Starts the reference registry with `config`, its output appended to `dir/registry2.log`, and
/// waits until `GET /` answers 200 on the address it logs; returns it with that address.
pub async fn serve(dir: &Path, config: &Path) -> (Spawned, SocketAddr) {
    let mut cmd = Command::new(PROGRAM);
    cmd.arg("serve").arg(config);
    let mut process = Spawned::start(PROGRAM, cmd, &dir.join("registry2.log"));
    let addr = process.announced_addr().await;
    let url = format!("http://{addr}/");
    process
        .wait_ok(
            &reqwest::Client::new(),
            &url,
            300,
            Duration::from_millis(100),
        )
        .await;
    (process, addr)
}
