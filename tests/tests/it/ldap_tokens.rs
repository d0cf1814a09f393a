//! `ldap_auth` against a real slapd, at the token endpoint: group membership → labels → ACL,
//! wrong password and unknown user 401, injection in the user name never matching anyone else,
//! static users first, no refresh token for LDAP users, and the bind cache (binds counted in
//! slapd's own log).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::authd::SERVICE;
use berth_tests::env::TestEnv;
use berth_tests::slapd::{ldap_spec, people, Slapd};
use berth_tests::tokens::granted;
use serde_json::{json, Value};

/// authd (with the LDAP section for `slapd` over plain LDAP, `extra` keys merged into it) and
/// registryd.
pub async fn ldap_env(slapd: &Slapd, tls: &str, extra: Value) -> TestEnv {
    let mut section = slapd.ldap_auth(tls, &slapd.ca());
    if let (Some(s), Some(e)) = (section.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    TestEnv::with_auth_extra(ldap_spec(), &json!({ "ldap_auth": section })).await
}

/// The status and JSON error code (or `OK`) of a token request.
pub async fn answer(env: &TestEnv, user: &str, password: &str, scope: &str) -> (u16, String) {
    let resp = env
        .authd()
        .request_token(Some((user, password)), &[scope])
        .await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    let code = body["errors"][0]["code"]
        .as_str()
        .unwrap_or("OK")
        .to_string();
    (status, code)
}

const DEV_APP: &str = "repository:dev/app:pull,push";

#[tokio::test]
async fn groups_become_labels_and_the_acl_decides() {
    let slapd = Slapd::start(&people());
    let env = ldap_env(&slapd, "none", json!({})).await;
    let authd = env.authd();
    let token = authd
        .token_with(Some(("dave", "dave-pass")), &[DEV_APP])
        .await;
    assert_eq!(granted(&token), ["repository:dev/app:pull,push"]);
    let token = authd
        .token_with(Some(("erin", "erin-pass")), &[DEV_APP])
        .await;
    assert_eq!(granted(&token), ["repository:dev/app:pull"]);
    let token = authd
        .token_with(Some(("frank", "frank-pass")), &[DEV_APP])
        .await;
    assert_eq!(
        granted(&token),
        ["repository:dev/app:"],
        "no group, no rule"
    );
}

#[tokio::test]
async fn wrong_passwords_unknown_users_and_injections_are_refused() {
    let slapd = Slapd::start(&people());
    let env = ldap_env(&slapd, "none", json!({})).await;
    let refused = [
        ("dave", "wrong"),
        ("dave", "erin-pass"),
        ("nobody", "dave-pass"),
        ("*", "dave-pass"),
        ("*", "star-pass"),
        ("d*", "dave-pass"),
        (")(uid=*", "dave-pass"),
        ("dave)(uid=*", "dave-pass"),
        ("*)(|(uid=*", "dave-pass"),
        ("dave\0", "dave-pass"),
        ("dave\\", "dave-pass"),
        ("\\64ave", "dave-pass"),
        ("star", "star-pass"),
        ("sta*", "star-pass"),
        ("star\\2a", "star-pass"),
        ("dave,ou=people", "dave-pass"),
    ];
    for (user, password) in refused {
        assert_eq!(
            answer(&env, user, password, DEV_APP).await,
            (401, "UNAUTHORIZED".to_string()),
            "{user:?} / {password:?}"
        );
    }
    // The uid that holds a `*` is found as itself, and only so.
    let token = env
        .authd()
        .token_with(Some(("star*", "star-pass")), &[DEV_APP])
        .await;
    assert_eq!(granted(&token), ["repository:dev/app:"]);
    // An empty password never reaches a bind (it would be an unauthenticated bind, which
    // slapd accepts): no bind for dave's entry is sent at all.
    let dave = people()[0].dn();
    let before = slapd.binds_as(&dave);
    assert_eq!(
        answer(&env, "dave", "", DEV_APP).await,
        (401, "UNAUTHORIZED".to_string())
    );
    assert_eq!(
        slapd.binds_as(&dave),
        before,
        "an empty password was sent to slapd"
    );
    // The server never saw a filter with an unescaped metacharacter from a client: each is the
    // configured one, two terms, with no wildcard.
    // (authd's searches, not the harness's own readiness checks)
    let filters: Vec<String> = slapd
        .filters()
        .into_iter()
        .filter(|f| f.contains("inetOrgPerson"))
        .collect();
    assert!(filters.len() >= 10, "{filters:?}");
    for filter in filters {
        assert!(
            filter.matches('(').count() == 3 && !filter.contains('*'),
            "{filter}"
        );
    }
}

#[tokio::test]
async fn static_users_come_first_and_ldap_users_get_no_refresh_token() {
    let slapd = Slapd::start(&people());
    let env = ldap_env(&slapd, "none", json!({})).await;
    // alice is a static user: her LDAP password is not asked of the directory.
    assert_eq!(
        answer(&env, "alice", "ldap-alice-pass", DEV_APP).await,
        (401, "UNAUTHORIZED".to_string())
    );
    let token = env
        .authd()
        .token_with(Some(("alice", "alice-pass")), &[DEV_APP])
        .await;
    assert_eq!(
        granted(&token),
        ["repository:dev/app:pull"],
        "the static alice's rules"
    );
    env.authd()
        .token_with(Some(("dave", "dave-pass")), &[DEV_APP])
        .await;
    let filters = slapd.filters();
    assert!(
        !filters.is_empty() && !filters.iter().any(|f| f.contains("uid=alice")),
        "the directory was asked about a static user: {filters:?}"
    );

    let offline = |user: &str, password: &str| {
        reqwest::Client::new()
            .post(env.authd().realm())
            .form(&[
                ("grant_type", "password"),
                ("service", SERVICE),
                ("client_id", "docker"),
                ("access_type", "offline"),
                ("username", user),
                ("password", password),
                ("scope", DEV_APP),
            ])
            .send()
    };
    let body: Value = offline("dave", "dave-pass")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["access_token"].is_string(), "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "an LDAP user got a refresh token: {body}"
    );
    let body: Value = offline("alice", "alice-pass")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        body["refresh_token"].is_string(),
        "static users still get one: {body}"
    );
}

#[tokio::test]
async fn repeated_logins_bind_once_until_the_cache_is_off() {
    let slapd = Slapd::start(&people());
    let dave = people()[0].dn();
    let user_binds = |s: &Slapd| s.binds_as(&dave);

    let env = ldap_env(&slapd, "none", json!({})).await;
    let before = slapd.binds();
    for _ in 0..20 {
        env.authd()
            .token_with(Some(("dave", "dave-pass")), &[DEV_APP])
            .await;
    }
    assert_eq!(
        user_binds(&slapd),
        1,
        "one bind as dave for 20 token requests"
    );
    assert!(
        slapd.binds() - before <= 2,
        "service account bound once, dave once"
    );
    // A wrong password is not answered from the cache of successes.
    assert_eq!(answer(&env, "dave", "wrong", DEV_APP).await.0, 401);
    assert_eq!(user_binds(&slapd), 2);
    let metrics = reqwest::get(format!("{}/metrics", env.authd().daemon.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("authd_ldap_cache_hits_total 19"),
        "{metrics}"
    );
    assert!(
        metrics.contains("authd_ldap_binds_total{result=\"invalid_credentials\"} 1"),
        "{metrics}"
    );
    drop(env);

    let uncached = ldap_env(&slapd, "none", json!({"cache_ttl": 0})).await;
    for _ in 0..3 {
        uncached
            .authd()
            .token_with(Some(("dave", "dave-pass")), &[DEV_APP])
            .await;
    }
    assert_eq!(user_binds(&slapd), 5, "without the cache every login binds");
}
