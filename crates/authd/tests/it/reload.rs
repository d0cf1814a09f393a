//! Hot reload: an edit to the running authd's auth.yaml changes the next grant without a
//! restart; a broken edit keeps the last good configuration and shows in /metrics.

use crate::harness::{granted, yaml, Authd, SERVICE};

const READ_ONLY: &str = "  - match: {account: bob}\n    actions: [pull]\n";
const READ_WRITE: &str = "  - match: {account: bob}\n    actions: [pull, push]\n";

async fn bob_push(authd: &Authd) -> Vec<String> {
    let (status, body, _) = authd
        .get(
            Some(("bob", "bob-pass")),
            &[("service", SERVICE), ("scope", "repository:x:push")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    granted(&body)
}

#[tokio::test]
async fn an_acl_edit_applies_and_a_broken_edit_is_refused() {
    let authd = Authd::start(&yaml(READ_ONLY, "")).await;
    assert_eq!(bob_push(&authd).await, ["repository:x:"]);

    std::fs::write(&authd.config, yaml(READ_WRITE, "")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        crate::harness::eventually(|| async { bob_push(&authd).await == ["repository:x:push"] })
            .await,
        "edit not applied"
    );

    let broken =
        yaml(READ_ONLY, "").replace("acl:", "acl:\n  - match: {acount: bob}\n    actions: []");
    std::fs::write(&authd.config, broken).unwrap_or_else(|e| panic!("{e}"));
    let metrics_url = format!("{}/metrics", authd.url);
    let refused = crate::harness::eventually(|| async {
        let text = reqwest::get(&metrics_url).await.ok().map(|r| r.text());
        match text {
            Some(t) => t.await.unwrap_or_default().contains("result=\"error\""),
            None => false,
        }
    })
    .await;
    assert!(refused, "broken edit not seen in /metrics");
    assert_eq!(
        bob_push(&authd).await,
        ["repository:x:push"],
        "last good config must keep serving"
    );
    let error = authd::reload::reload(&authd.app).map_err(|e| e.to_string());
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
