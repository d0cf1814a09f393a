//! The pull-through cache's servers, on free loopback ports in one temporary folder, all
//! without auth: an upstream (a plain registry:2, whose access log counts what the caches fetch
//! from it), Berth's registryd caching it under the prefix [`PREFIX`], and registry:2 configured
//! as a pull-through cache of it (`proxy.remoteurl`, which serves the upstream's names as its
//! own).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::daemon::{free_addr, Daemon};
use crate::error::BenchError;
use crate::stack::{write_yaml, Programs};

/// The upstream's name in Berth's configuration: the prefix of its cached repositories.
pub const PREFIX: &str = "upstream.test";

/// The running servers; dropping it stops them (the temporary folder goes with it).
pub struct CacheStack {
    pub upstream: Daemon,
    pub berth: Daemon,
    pub registry2: Daemon,
    /// Kept last so the folder outlives the daemons using it.
    _dir: tempfile::TempDir,
}

impl CacheStack {
    /// Starts the upstream, then both caches of it.
    ///
    /// # Errors
    /// A file could not be written or a server did not come up.
    pub async fn start(programs: &Programs) -> Result<CacheStack, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-cache.")
            .tempdir()
            .map_err(BenchError::io("create a temporary folder"))?;
        let root = dir.path();
        let upstream = registry2(programs, root, "upstream", None).await?;
        let remote = format!("http://{}", upstream.addr);

        let addr = free_addr()?;
        let yaml = root.join("berth-cache.yaml");
        let mut config = json!({
            "http": {"addr": addr.to_string()},
            "storage": {"filesystem": {"rootdirectory": root.join("berth-cache-data")},
                "maintenance": {"gc": {"enabled": false}}},
            "proxy": {"upstreams": [{"name": PREFIX, "remoteurl": remote}]},
        });
        programs.set_inline(&mut config);
        write_yaml(&yaml, &config)?;
        let mut cmd = Command::new(programs.bin_dir.join("registryd"));
        cmd.arg("--config").arg(&yaml);
        let mut berth = Daemon::spawn(
            "registryd (cache)",
            cmd,
            addr,
            &root.join("berth-cache.log"),
        )?;
        berth.wait_ready("/healthz", |s| s.is_success()).await?;

        let registry2 = registry2(programs, root, "registry2-cache", Some(&remote)).await?;
        Ok(CacheStack {
            upstream,
            berth,
            registry2,
            _dir: dir,
        })
    }
}

/// registry:2 named `name`, open, on its own folder; a pull-through cache of `remote` if given.
async fn registry2(
    programs: &Programs,
    root: &Path,
    name: &str,
    remote: Option<&str>,
) -> Result<Daemon, BenchError> {
    let addr: SocketAddr = free_addr()?;
    let mut config = json!({
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {
            "cache": {"blobdescriptor": "inmemory"},
            "filesystem": {"rootdirectory": root.join(format!("{name}-data"))},
        },
        "http": {"addr": addr.to_string()},
    });
    if let Some(remote) = remote {
        config["proxy"] = json!({"remoteurl": remote});
    }
    let yaml = root.join(format!("{name}.yml"));
    write_yaml(&yaml, &config)?;
    let mut cmd = Command::new(&programs.registry2);
    cmd.arg("serve").arg(&yaml);
    let mut daemon = Daemon::spawn(name, cmd, addr, &root.join(format!("{name}.log")))?;
    daemon.wait_ready("/v2/", |s| s.is_success()).await?;
    Ok(daemon)
}

/// Body bytes the upstream sent for `GET`s of the blob `digest`, from its access log lines
/// (`"GET /v2/…/blobs/DIGEST HTTP/1.1" 200 BYTES …`) in `log`.
pub fn blob_bytes_sent(log: &str, digest: &str) -> u64 {
    let wanted = format!("/blobs/{digest} HTTP/");
    log.lines()
        .filter_map(|line| {
            let (_, request) = line.split_once("\"GET ")?;
            let (path, rest) = request.split_once('"')?;
            if !path.contains(&wanted) {
                return None;
            }
            let mut fields = rest.split_whitespace();
            let _status = fields.next()?;
            fields.next()?.parse::<u64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_bytes_of_gets_of_one_blob() {
        let log = r#"127.0.0.1 - - [30/Nov/2026:22:09:21 +0000] "GET /v2/a/blobs/sha256:ab HTTP/1.1" 200 1000 "" "Go-http-client/1.1"
time="x" level=info msg="response completed" http.request.uri="/v2/a/blobs/sha256:ab" http.response.written=1000
127.0.0.1 - - [30/Nov/2026:22:09:22 +0000] "HEAD /v2/a/blobs/sha256:ab HTTP/1.1" 200 0 "" "x"
127.0.0.1 - - [30/Nov/2026:22:09:22 +0000] "GET /v2/a/blobs/sha256:ab HTTP/1.1" 200 24 "" "x"
127.0.0.1 - - [30/Nov/2026:22:09:23 +0000] "GET /v2/a/blobs/sha256:cd HTTP/1.1" 200 7 "" "x"
"#;
        assert_eq!(blob_bytes_sent(log, "sha256:ab"), 1024);
        assert_eq!(blob_bytes_sent(log, "sha256:cd"), 7);
        assert_eq!(blob_bytes_sent(log, "sha256:ef"), 0);
    }
}
