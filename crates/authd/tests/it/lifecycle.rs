//! The real binary serving: the `listening on` line, SIGHUP forcing a reload, SIGTERM stopping
//! it cleanly; and the repository's example auth.yaml granting what its comments promise, as
//! its `/metrics` count.

use std::process::{Child, Command};

use crate::harness::{certs, granted, respond, yaml, Creds, SERVICE, STANDARD_ACL};
use crate::process::{sample, start};

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {name} failed");
}

async fn reloads_ok(url: &str) -> u64 {
    sample(url, "authd_config_reloads_total{result=\"ok\"}")
        .await
        .map_or(0, |v| v as u64)
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
    // This process served only the table: 7 logins by 3 users (one bcrypt check each, then
    // the cache of recent successes) and 2 anonymous requests, each signed.
    let url = running.url.as_str();
    for (series, want) in [
        (
            "authd_token_requests_total{grant=\"password\",outcome=\"issued\"}",
            7.0,
        ),
        (
            "authd_token_requests_total{grant=\"anonymous\",outcome=\"issued\"}",
            2.0,
        ),
        ("authd_bcrypt_seconds_count", 3.0),
        ("authd_bcrypt_cache_hits_total", 4.0),
        ("authd_sign_seconds_count", 9.0),
    ] {
        assert_eq!(sample(url, series).await, Some(want), "{series}");
    }
}
