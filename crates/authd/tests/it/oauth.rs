//! OAuth2 POST /auth: the password grant, the refresh-token grant Docker uses after login, and
//! refresh tokens that stop working when the user's password changes or the user goes.

use crate::harness::{granted, hash, yaml, Authd, Pairs, SERVICE, STANDARD_ACL};

async fn login(authd: &Authd) -> String {
    let (status, body, _) = authd
        .get(
            Some(("alice", "alice-pass")),
            &[
                ("service", SERVICE),
                ("offline_token", "true"),
                ("client_id", "docker"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh_token: {body}"))
        .to_owned()
}

#[tokio::test]
async fn both_grants_issue_tokens() {
    let authd = Authd::start(&yaml(STANDARD_ACL, "")).await;
    let refresh = login(&authd).await;
    let (status, body, _) = authd
        .post(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", SERVICE),
            ("client_id", "docker"),
            (
                "scope",
                "repository:alice/app:pull,push repository:other:pull,push",
            ),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        granted(&body),
        ["repository:alice/app:pull,push", "repository:other:pull"]
    );
    assert!(body.get("refresh_token").is_none(), "{body}");

    let form = [
        ("grant_type", "password"),
        ("username", "bob"),
        ("password", "bob-pass"),
        ("service", SERVICE),
        ("client_id", "curl"),
        ("access_type", "offline"),
        ("scope", "repository:x:push,pull"),
    ];
    let (status, body, _) = authd.post(&form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(granted(&body), ["repository:x:pull"]);
    let bobs = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, body, _) = authd
        .post(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &bobs),
            ("service", SERVICE),
        ])
        .await;
    assert_eq!(
        (
            status,
            crate::harness::claims(body["access_token"].as_str().unwrap_or_default()).sub
        ),
        (200, "bob".to_owned())
    );
}

#[tokio::test]
async fn bad_grants_get_oauth_errors() {
    let authd = Authd::start(&yaml(STANDARD_ACL, "")).await;
    let refresh = login(&authd).await;
    let forged = format!("{}x", refresh);
    let table: &[(&str, Pairs, u16, &str)] = &[
        (
            "wrong password",
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "x"),
                ("service", SERVICE),
            ],
            401,
            "invalid_grant",
        ),
        (
            "no password",
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("service", SERVICE),
            ],
            400,
            "invalid_request",
        ),
        (
            "forged refresh token",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &forged),
                ("service", SERVICE),
            ],
            400,
            "invalid_grant",
        ),
        (
            "junk refresh token",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "junk"),
                ("service", SERVICE),
            ],
            400,
            "invalid_grant",
        ),
        (
            "unsupported grant",
            vec![("grant_type", "client_credentials"), ("service", SERVICE)],
            400,
            "unsupported_grant_type",
        ),
        (
            "no grant type",
            vec![("service", SERVICE)],
            400,
            "invalid_request",
        ),
        (
            "malformed scope",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("service", SERVICE),
                ("scope", "x"),
            ],
            400,
            "invalid_scope",
        ),
        (
            "unknown service",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("service", "other"),
            ],
            400,
            "invalid_request",
        ),
    ];
    for (what, form, status, error) in table {
        let (got, body, _) = authd.post(form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (*status, Some(*error)),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn refresh_token_dies_with_a_password_change_or_the_user() {
    let authd = Authd::start(&yaml(STANDARD_ACL, "")).await;
    let refresh = login(&authd).await;
    let form = |t: &str| {
        vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), t.to_owned()),
            ("service".to_owned(), SERVICE.to_owned()),
        ]
    };
    let post = |t: String| {
        let authd = &authd;
        async move {
            let f = form(&t);
            let pairs: Vec<(&str, &str)> =
                f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            authd.post(&pairs).await.0
        }
    };
    assert_eq!(post(refresh.clone()).await, 200);

    let text = std::fs::read_to_string(&authd.config).unwrap_or_default();
    let old_hash = text
        .lines()
        .find(|l| l.contains("alice:"))
        .unwrap_or_default()
        .to_owned();
    let changed = text.replace(
        &old_hash,
        &format!("  alice: {{password: \"{}\"}}", hash("new-pass")),
    );
    std::fs::write(&authd.config, &changed).unwrap_or_else(|e| panic!("{e}"));
    authd::reload::reload(&authd.app).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        post(refresh.clone()).await,
        400,
        "old password's refresh token must fail"
    );

    let new_refresh = {
        let (status, body, _) = authd
            .get(
                Some(("alice", "new-pass")),
                &[("service", SERVICE), ("offline_token", "true")],
            )
            .await;
        assert_eq!(status, 200);
        body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(post(new_refresh.clone()).await, 200);
    let removed = changed
        .lines()
        .filter(|l| !l.starts_with("  alice:"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&authd.config, removed).unwrap_or_else(|e| panic!("{e}"));
    authd::reload::reload(&authd.app).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        post(new_refresh).await,
        400,
        "removed user's refresh token must fail"
    );
}

#[tokio::test]
async fn refresh_tokens_expire_after_refresh_expiration() {
    let config = yaml(STANDARD_ACL, "").replace(
        "  expiration: 300\n",
        "  expiration: 300\n  refresh_expiration: 86400\n",
    );
    let authd = Authd::start(&config).await;
    let before = token::unix_now();
    let refresh = login(&authd).await;
    let after = token::unix_now();
    let redeem = |t: String| {
        let authd = &authd;
        async move {
            let (status, body, _) = authd
                .post(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &t),
                    ("service", SERVICE),
                ])
                .await;
            (status, body["error"].as_str().map(str::to_owned))
        }
    };
    assert_eq!(redeem(refresh.clone()).await, (200, None));
    // The expiry travels in the token, under its tag: a day from issuing.
    let stamp = refresh.split('.').nth(2).unwrap_or_default().to_owned();
    let expires: u64 = stamp.parse().unwrap_or_else(|e| panic!("{stamp}: {e}"));
    assert!(
        (before + 86400..=after + 86400).contains(&expires),
        "{expires}"
    );

    // One that has run out (minted with the server's own secret), and ours with a later time
    // written in: both are refused as OAuth2's invalid_grant.
    let secret = authd.app.config.load().token.refresh_secret;
    let users = authd.app.config.load().authn.users.clone();
    let alice = users.current("alice").unwrap_or_else(|| panic!("no alice"));
    let expired = authd::refresh::mint(&secret, &alice, token::unix_now() - 1)
        .unwrap_or_else(|| panic!("no token"));
    let extended = refresh.replace(
        &format!(".{stamp}."),
        &format!(".{}.", expires + 365 * 86400),
    );
    for (what, token) in [("expired", expired), ("extended", extended)] {
        assert_eq!(
            redeem(token).await,
            (400, Some("invalid_grant".to_owned())),
            "{what}"
        );
    }
}
