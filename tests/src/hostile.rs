//! Daemons started with extra serving keys (timeouts, caps, TLS, a metrics listener) for the
//! hostile-connection tests, and what those tests read from outside: a daemon's resident memory
//! and open sockets (from /proc), its logged metrics address, the answer to an oversized header.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::authd::{gen_cert, ISSUER};
use crate::bins::binary;
use crate::daemon::Daemon;
use crate::registryd::merge;
use crate::spawned::Spawned;

/// registryd (open) with `http` keys added to its `http` section.
pub async fn registryd(http: Value) -> (TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = registryd_config(dir.path(), http);
    let daemon = start(dir.path(), "registryd", &config).await;
    (dir, daemon)
}

/// authd (anonymous pulls only) with `server` keys added to its `server` section.
pub async fn authd(server: Value) -> (TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let certs = dir.path().join("certs");
    gen_cert(&certs, &[]);
    let mut section = json!({"addr": "127.0.0.1:0"});
    merge(&mut section, server);
    let config = json!({
        "server": section,
        "token": {
            "issuer": ISSUER, "expiration": 900,
            "certificate": certs.join("token.crt"), "key": certs.join("token.key"),
        },
        "users": {"": {}},
        "acl": [{"match": {"account": ""}, "actions": ["pull"]}],
    });
    let daemon = start(dir.path(), "authd", &config).await;
    (dir, daemon)
}

/// An open registryd on port 0 with data in `dir/data`, `http` keys added to its `http` section.
fn registryd_config(dir: &Path, http: Value) -> Value {
    let mut section = json!({"addr": "127.0.0.1:0"});
    merge(&mut section, http);
    json!({
        "http": section,
        "storage": {"filesystem": {"rootdirectory": dir.join("data")}},
    })
}

async fn start(dir: &Path, name: &str, config: &Value) -> Daemon {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        serde_yaml::to_string(config).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let path = path.to_string_lossy().into_owned();
    let log = dir.join(format!("{name}.log"));
    Daemon::start(name, &binary(name), &["--config", &path], &log).await
}

/// The daemon's resident memory, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("{e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// How many sockets the daemon holds open (its listener and connections among them).
pub fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Sends a request with a `size`-byte header and returns the status line's code, or `None`
/// when the server closed the connection without one.
pub async fn with_header_of(addr: SocketAddr, size: usize) -> Option<u16> {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(size)
    );
    // The server may answer and close before it has read everything: a failed write is fine.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer));
    assert!(read.await.is_ok(), "no answer and no close");
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

/// The address a daemon logged for its `/metrics` listener.
pub async fn metrics_addr(daemon: &Daemon) -> SocketAddr {
    for _ in 0..100 {
        let log = daemon.log_text();
        if let Some(addr) = log
            .lines()
            .find_map(|l| l.split("serving /metrics on ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
        {
            return addr.parse().unwrap_or_else(|e| panic!("{e}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no metrics listener in the log:\n{}", daemon.log_text());
}

/// registryd over HTTPS, ready once its log says it listens, and its address.
pub async fn registryd_tls(http: Value) -> (TempDir, Spawned, SocketAddr) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = registryd_config(dir.path(), http);
    let path = dir.path().join("registryd.yaml");
    std::fs::write(
        &path,
        serde_yaml::to_string(&config).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = std::process::Command::new(binary("registryd"));
    cmd.arg("--config").arg(&path);
    let mut daemon = Spawned::start("registryd", cmd, &dir.path().join("registryd.log"));
    let addr = daemon.announced_addr().await;
    (dir, daemon, addr)
}
