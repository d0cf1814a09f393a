//! nginx (Debian's `nginx-light`) as the reverse proxy users put in front of Berth: one process
//! (no master, so no change of user) listening on a free port on both loopback addresses,
//! 127.0.0.1 and ::1, with the `location` blocks a test gives, everything it writes kept in its
//! own temporary folder. Stopped when dropped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::spawned::Spawned;
use crate::upstream::free_port;

/// A running nginx.
pub struct Nginx {
    pub port: u16,
    process: Spawned,
    /// Kept last so the folder outlives the process using it.
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx serving `locations` (the body of its one `server` block).
    ///
    /// # Panics
    /// When nginx is missing or does not answer within 10 s.
    pub async fn start(locations: &str) -> Nginx {
        Self::start_with("", locations).await
    }

    /// As [`Nginx::start`], with `http` (e.g. an `upstream` block) in the `http` block.
    ///
    /// # Panics
    /// As [`Nginx::start`].
    pub async fn start_with(http: &str, locations: &str) -> Nginx {
        let dir = tempfile::Builder::new()
            .prefix("berth-nginx.")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"));
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, http, locations))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", conf.display()));
        let mut cmd = Command::new("nginx");
        // `-e` before the configuration is read: nginx opens its compiled-in log otherwise.
        cmd.arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf);
        let mut process = Spawned::start("nginx", cmd, &dir.path().join("nginx.out"));
        let http = reqwest::Client::new();
        let health = format!("http://127.0.0.1:{port}/nginx-up");
        process
            .wait_ok(&http, &health, 100, Duration::from_millis(100))
            .await;
        Nginx {
            port,
            process,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT` or, with `ipv6`, `http://[::1]:PORT`.
    pub fn url(&self, ipv6: bool) -> String {
        if ipv6 {
            format!("http://[::1]:{}", self.port)
        } else {
            format!("http://127.0.0.1:{}", self.port)
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.process.stop();
    }
}

fn config(dir: &Path, port: u16, http: &str, locations: &str) -> String {
    let temp = dir.join("temp");
    let temp_paths: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|kind| format!("  {kind}_temp_path {};\n", temp.display()))
        .collect();
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log {access};\n{temp_paths}{http}\n  \
         server {{\n    listen 127.0.0.1:{port};\n    listen [::1]:{port};\n    \
         location = /nginx-up {{ return 200; }}\n{locations}\n  }}\n}}\n",
        pid = dir.join("nginx.pid").display(),
        access = dir.join("access.log").display(),
    )
}
