//! The real binary serving: the `listening on` line, SIGHUP forcing a reload, SIGTERM stopping
//! it cleanly; and the repository's example auth.yaml granting what its comments promise.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::harness::{certs, granted, respond, yaml, Creds, SERVICE, STANDARD_ACL};

struct Running {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {name} failed");
}

/// Starts the binary on 127.0.0.1:0 and reads its address from the `listening on` line.
fn start(config_text: &str) -> (Running, BufReader<std::process::ChildStderr>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("auth.yaml");
    std::fs::write(&config, config_text).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_authd"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stderr = BufReader::new(child.stderr.take().unwrap_or_else(|| panic!("no stderr")));
    let mut line = String::new();
    let mut addr = None;
    for _ in 0..50 {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(rest) = line.split("listening on ").nth(1) {
            addr = rest
                .split_whitespace()
                .next()
                .map(|a| a.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned());
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no `listening on` line; last: {line}"));
    (
        Running {
            child,
            url: format!("http://{addr}"),
            _dir: dir,
        },
        stderr,
    )
}

async fn reloads_ok(url: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .ok()
        .map(|r| r.text());
    let text = match text {
        Some(t) => t.await.unwrap_or_default(),
        None => String::new(),
    };
    text.lines()
        .find(|l| l.starts_with("authd_config_reloads_total{result=\"ok\"}"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn sighup_reloads_and_sigterm_stops() {
    let (mut running, mut stderr) = start(&yaml(STANDARD_ACL, ""));
    let health = reqwest::get(format!("{}/healthz", running.url))
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(health.ok(), Some(200));
    assert_eq!(
        reloads_ok(&running.url).await,
        0,
        "nothing changed, nothing reloaded"
    );
    signal(&running.child, "-HUP");
    let url = running.url.clone();
    let reloaded = crate::harness::eventually(|| async { reloads_ok(&url).await == 1 }).await;
    assert!(reloaded, "SIGHUP did not reload");
    signal(&running.child, "-TERM");
    let status = running.child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert!(
        rest.contains("configuration reloaded") && rest.contains("stopped"),
        "{rest}"
    );
}

#[tokio::test]
async fn the_example_config_grants_what_it_says() {
    let example = include_str!("../../../../auth.yaml");
    let certs = certs().display().to_string();
    let config = example
        .replace("addr: \"127.0.0.1:5001\"", "addr: \"127.0.0.1:0\"")
        .replace("certs/token.crt", &format!("{certs}/token.crt"))
        .replace("certs/token.key", &format!("{certs}/token.key"));
    let (running, _stderr) = start(&config);
    let table: &[(Creds, &str, &str)] = &[
        (
            Some(("admin", "admin-pass")),
            "repository:any/thing:pull,push,delete",
            "repository:any/thing:delete,pull,push",
        ),
        (
            Some(("admin", "admin-pass")),
            "registry:catalog:*",
            "registry:catalog:*",
        ),
        (
            Some(("alice", "alice-pass")),
            "repository:alice/app:pull,push",
            "repository:alice/app:pull,push",
        ),
        (
            Some(("alice", "alice-pass")),
            "repository:bob/app:pull,push",
            "repository:bob/app:pull",
        ),
        (
            Some(("alice", "alice-pass")),
            "registry:catalog:*",
            "registry:catalog:*",
        ),
        (
            Some(("bob", "bob-pass")),
            "repository:alice/app:pull,push",
            "repository:alice/app:pull",
        ),
        (
            Some(("bob", "bob-pass")),
            "registry:catalog:*",
            "registry:catalog:",
        ),
        (
            None,
            "repository:public/base:pull,push",
            "repository:public/base:pull",
        ),
        (None, "repository:alice/app:pull", "repository:alice/app:"),
    ];
    for (creds, scope, want) in table {
        let mut req = reqwest::Client::new()
            .get(format!("{}/auth", running.url))
            .query(&[("service", SERVICE), ("scope", scope)]);
        if let Some((u, p)) = creds {
            req = req.basic_auth(u, Some(p));
        }
        let (status, body, _) = respond(req).await;
        assert_eq!(status, 200, "{creds:?} {scope}: {body}");
        assert_eq!(granted(&body), [*want], "{creds:?} {scope}");
    }
}
