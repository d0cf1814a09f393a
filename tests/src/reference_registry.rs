//! distribution's reference registry (registry:2, Debian's `docker-registry` package) on a free
//! loopback port, trusting authd's tokens: the peer whose checks authd's tokens must pass.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::authd::{ISSUER, SERVICE};
use crate::spawned::Spawned;

/// The program Debian's `docker-registry` package installs.
pub const PROGRAM: &str = "docker-registry";

/// A running reference registry; stopped when dropped.
pub struct ReferenceRegistry {
    pub addr: SocketAddr,
    pub process: Spawned,
}

impl ReferenceRegistry {
    /// Writes `dir/registry2.yml` (storage in `dir/registry2-data`, `auth.token` with `realm`,
    /// service `registry`, issuer `berth-auth` and `rootcertbundle`) and serves it on a
    /// 127.0.0.1 port of its choosing, waiting until `GET /` answers 200.
    pub async fn start(dir: &Path, realm: &str, rootcertbundle: &Path) -> ReferenceRegistry {
        let config = json!({
            "version": 0.1,
            "log": {"level": "info"},
            "storage": {
                "filesystem": {"rootdirectory": dir.join("registry2-data")},
                "delete": {"enabled": true},
            },
            "http": {"addr": "127.0.0.1:0"},
            "auth": {"token": {
                "realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": rootcertbundle,
            }},
        });
        let path = dir.join("registry2.yml");
        let text = serde_yaml::to_string(&config)
            .unwrap_or_else(|e| panic!("cannot write registry2.yml: {e}"));
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        let mut cmd = Command::new(PROGRAM);
        cmd.arg("serve").arg(&path);
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
