//! Every bad input at /auth gets its stated status and a JSON error, and issues nothing.

use crate::harness::{yaml, Authd, Creds, Pairs, SERVICE, STANDARD_ACL};

#[tokio::test]
async fn each_bad_request_gets_its_answer() {
    let authd = Authd::start(&yaml(STANDARD_ACL, "")).await;
    let alice = Some(("alice", "alice-pass"));
    let long = "repository:a:pull ".repeat(600);
    let table: &[(&str, Creds, Pairs, u16, &str)] = &[
        (
            "malformed scope",
            alice,
            vec![("service", SERVICE), ("scope", "repository:nope")],
            400,
            "INVALID_REQUEST",
        ),
        (
            "bad action",
            alice,
            vec![("service", SERVICE), ("scope", "repository:a:PULL")],
            400,
            "INVALID_REQUEST",
        ),
        (
            "unknown service",
            alice,
            vec![("service", "elsewhere")],
            400,
            "INVALID_REQUEST",
        ),
        ("missing service", alice, vec![], 400, "INVALID_REQUEST"),
        (
            "oversize query",
            alice,
            vec![("service", SERVICE), ("scope", long.as_str())],
            414,
            "INVALID_REQUEST",
        ),
        (
            "wrong password",
            Some(("alice", "bob-pass")),
            vec![("service", SERVICE)],
            401,
            "UNAUTHORIZED",
        ),
        (
            "unknown user",
            Some(("mallory", "alice-pass")),
            vec![("service", SERVICE)],
            401,
            "UNAUTHORIZED",
        ),
        (
            "empty user name",
            Some(("", "x")),
            vec![("service", SERVICE)],
            401,
            "UNAUTHORIZED",
        ),
        (
            "account mismatch",
            alice,
            vec![("service", SERVICE), ("account", "admin")],
            400,
            "INVALID_REQUEST",
        ),
    ];
    for (what, creds, query, status, code) in table {
        let (got, body, headers) = authd.get(*creds, query).await;
        assert_eq!(got, *status, "{what}: {body}");
        assert_eq!(body["errors"][0]["code"], *code, "{what}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert!(body.get("token").is_none(), "{what}");
        assert_eq!(
            *status == 401,
            headers.contains_key("www-authenticate"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn scopes_naming_no_possible_repository_are_400() {
    let authd = Authd::start(&yaml(STANDARD_ACL, "")).await;
    let admin = Some(("admin", "admin-pass"));
    let long = format!("repository:{}:pull", "a".repeat(256));
    let bad = [
        "repository:alice/../secret/db:pull",
        "repository:alice/:pull",
        "repository:/alice:pull",
        "repository:Alice/App:pull",
        "repository:a//b:pull",
        "repository:a/b_-c:pull",
        "repository:host:5000/a:pull",
        long.as_str(),
    ];
    for scope in bad {
        let (status, body, _) = authd
            .get(admin, &[("service", SERVICE), ("scope", scope)])
            .await;
        assert_eq!(
            (status, &body["errors"][0]["code"]),
            (400, &serde_json::json!("NAME_INVALID")),
            "{scope}: {body}"
        );
        assert!(body.get("token").is_none(), "{scope}");
        // One bad scope among good ones refuses the request; so does the OAuth2 form.
        let both = format!("repository:alice/app:pull {scope}");
        let (status, _, _) = authd
            .get(admin, &[("service", SERVICE), ("scope", &both)])
            .await;
        assert_eq!(status, 400, "{both}");
        let form = [
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", "admin-pass"),
            ("service", SERVICE),
            ("scope", scope),
        ];
        let (status, body, _) = authd.post(&form).await;
        assert_eq!(
            (status, &body["error"]),
            (400, &serde_json::json!("invalid_scope")),
            "{body}"
        );
    }
    let good = "repository:alice/app:pull registry:catalog:* repository(plugin):Vieux/SSHFS:pull";
    let (status, body, _) = authd
        .get(admin, &[("service", SERVICE), ("scope", good)])
        .await;
    assert_eq!(
        (status, crate::harness::granted(&body)),
        (
            200,
            vec![
                "repository:alice/app:pull".to_owned(),
                "registry:catalog:*".to_owned(),
                "repository:Vieux/SSHFS:pull".to_owned()
            ]
        ),
        "{body}"
    );
}

#[tokio::test]
async fn broken_authorization_headers_are_400() {
    let authd = Authd::start(&yaml(STANDARD_ACL, "")).await;
    for header in [
        "Basic !!!notbase64",
        "Basic YWxpY2U=",
        "Bearer abc.def.ghi",
        "Basic",
        "Basic /w==",
    ] {
        let req = reqwest::Client::new()
            .get(authd.auth_url())
            .header("Authorization", header)
            .query(&[("service", SERVICE)]);
        let (status, body, _) = crate::harness::respond(req).await;
        assert_eq!(status, 400, "{header}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Authorization")),
            "{header}: {body}"
        );
    }
}

#[tokio::test]
async fn repeated_failures_lock_the_account_even_for_the_right_password() {
    let throttle = "throttle: {window: 600, account_failures: 3, ip_failures: 0, lockout: 600}";
    let authd = Authd::start(&yaml(STANDARD_ACL, throttle)).await;
    for _ in 0..3 {
        let (status, _, _) = authd
            .get(Some(("alice", "guess")), &[("service", SERVICE)])
            .await;
        assert_eq!(status, 401);
    }
    let (status, body, headers) = authd
        .get(Some(("alice", "alice-pass")), &[("service", SERVICE)])
        .await;
    assert_eq!(status, 429, "{body}");
    let retry: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After"));
    assert!((1..=600).contains(&retry));
    let (status, _, _) = authd
        .get(Some(("bob", "bob-pass")), &[("service", SERVICE)])
        .await;
    assert_eq!(status, 200, "another account is not locked");
}

#[tokio::test]
async fn failures_from_one_address_lock_it_but_anonymous_refusals_do_not_count() {
    let throttle = "throttle: {window: 600, account_failures: 0, ip_failures: 2, lockout: 600}";
    let no_anonymous = yaml(STANDARD_ACL, throttle).replace("  \"\": {}\n", "");
    let authd = Authd::start(&no_anonymous).await;
    for _ in 0..3 {
        let (status, _, _) = authd.get(None, &[("service", SERVICE)]).await;
        assert_eq!(status, 401);
    }
    let (status, _, _) = authd
        .get(Some(("bob", "bob-pass")), &[("service", SERVICE)])
        .await;
    assert_eq!(status, 200, "anonymous refusals are not password guesses");
    for user in ["carol", "dave"] {
        let (status, _, _) = authd
            .get(Some((user, "guess")), &[("service", SERVICE)])
            .await;
        assert_eq!(status, 401);
    }
    let (status, body, headers) = authd
        .get(Some(("bob", "bob-pass")), &[("service", SERVICE)])
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn unknown_paths_and_health() {
    let authd = Authd::start(&yaml(STANDARD_ACL, "")).await;
    let (status, body, _) =
        crate::harness::respond(reqwest::Client::new().get(format!("{}/nope", authd.url))).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let put = reqwest::Client::new().put(authd.auth_url());
    let (status, body, _) = crate::harness::respond(put).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (405, Some("UNSUPPORTED"))
    );
    let big = reqwest::Client::new()
        .post(authd.auth_url())
        .body("a".repeat(64 * 1024));
    let (status, body, _) = crate::harness::respond(big).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (413, Some("INVALID_REQUEST")),
        "{body}"
    );
    let health = reqwest::get(format!("{}/healthz", authd.url))
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(health.ok(), Some(200));
}
