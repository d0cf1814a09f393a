//! Hot reload: an edit to the running authd's auth.yaml changes the next grant without a
//! restart; a broken edit keeps the last good configuration and shows in /metrics.

use crate::harness::{granted, respond, yaml, Authd, SERVICE};
use crate::process::{sample, serve};

const READ_ONLY: &str = "  - match: {account: bob}\n    actions: [pull]\n";
const READ_WRITE: &str = "  - match: {account: bob}\n    actions: [pull, push]\n";
const RELOADED: &str = "authd_config_reloads_total{result=\"ok\"}";
const REFUSED: &str = "authd_config_reloads_total{result=\"error\"}";

async fn bob_push(url: &str) -> Vec<String> {
    let req = reqwest::Client::new()
        .get(format!("{url}/auth"))
        .basic_auth("bob", Some("bob-pass"))
        .query(&[("service", SERVICE), ("scope", "repository:x:push")]);
    let (status, body, _) = respond(req).await;
    assert_eq!(status, 200, "{body}");
    granted(&body)
}

/// Runs the binary: its `/metrics` count only this test's reloads.
#[tokio::test]
async fn an_acl_edit_applies_and_a_broken_edit_is_refused() {
    let authd = serve(&yaml(READ_ONLY, ""));
    let url = authd.url.as_str();
    assert_eq!(bob_push(url).await, ["repository:x:"]);

    std::fs::write(&authd.config, yaml(READ_WRITE, "")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        crate::harness::eventually(|| async { bob_push(url).await == ["repository:x:push"] }).await,
        "edit not applied"
    );
    assert_eq!(
        (sample(url, RELOADED).await, sample(url, REFUSED).await),
        (Some(1.0), None)
    );
    assert_eq!(sample(url, "authd_config_last_reload_ok").await, Some(1.0));

    let broken =
        yaml(READ_ONLY, "").replace("acl:", "acl:\n  - match: {acount: bob}\n    actions: []");
    std::fs::write(&authd.config, broken).unwrap_or_else(|e| panic!("{e}"));
    let refused =
        crate::harness::eventually(|| async { sample(url, REFUSED).await == Some(1.0) }).await;
    assert!(refused, "broken edit not seen in /metrics");
    assert_eq!(sample(url, "authd_config_last_reload_ok").await, Some(0.0));
    assert_eq!(
        bob_push(url).await,
        ["repository:x:push"],
        "last good config must keep serving"
    );
    let error = authd::config::load(&authd.config)
        .map(drop)
        .map_err(|e| e.to_string());
    assert!(
        error
            .as_ref()
            .is_err_and(|e| e.contains("unknown field `acount`") && e.contains("line")),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_htpasswd_edit_applies_without_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("users.htpasswd");
    std::fs::write(&file, format!("carol:{}\n", crate::harness::hash("one")))
        .unwrap_or_else(|e| panic!("{e}"));
    // No lockout: the polling below fails with the new password until the reload.
    let extra = format!(
        "htpasswd: {{path: {}}}\nthrottle: {{account_failures: 0, ip_failures: 0}}",
        file.display()
    );
    let authd = Authd::start(&yaml(READ_ONLY, &extra)).await;
    let status = |password: &'static str| {
        let authd = &authd;
        async move {
            authd
                .get(Some(("carol", password)), &[("service", SERVICE)])
                .await
                .0
        }
    };
    assert_eq!((status("one").await, status("two").await), (200, 401));
    std::fs::write(&file, format!("carol:{}\n", crate::harness::hash("two")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        crate::harness::eventually(|| async { status("two").await == 200 }).await,
        "new password never accepted"
    );
    assert_eq!(
        status("one").await,
        401,
        "the old password (cached before) must stop working"
    );
}
