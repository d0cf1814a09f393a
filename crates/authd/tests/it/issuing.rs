//! GET /auth as Docker and curl use it: login without scope, pull/push scopes, catalog,
//! anonymous access, labels, several scopes, and what the token carries.

use crate::harness::{
    claims, granted, raw, raw_get, yaml, Authd, Creds, ISSUER, SERVICE, STANDARD_ACL,
};

#[tokio::test]
async fn docker_login_gets_an_empty_token_and_a_refresh_token() {
    let authd = Authd::start(&yaml(STANDARD_ACL, "")).await;
    let query = [
        ("account", "alice"),
        ("client_id", "docker"),
        ("offline_token", "true"),
        ("service", SERVICE),
    ];
    let (status, body, _) = authd.get(Some(("alice", "alice-pass")), &query).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(
        body["issued_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
        "{body}"
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    let c = claims(body["token"].as_str().unwrap_or_default());
    assert_eq!(
        (c.iss.as_str(), c.sub.as_str(), c.aud.0.as_slice()),
        (ISSUER, "alice", &[SERVICE.to_owned()][..])
    );
    assert!(c.access.is_empty());
    assert_eq!(c.exp, c.iat + 300);

    let (_, again, _) = authd
        .get(Some(("alice", "alice-pass")), &[("service", SERVICE)])
        .await;
    assert!(
        again.get("refresh_token").is_none(),
        "no offline_token, no refresh token: {again}"
    );
    let other = claims(again["token"].as_str().unwrap_or_default());
    assert_ne!(c.jti, other.jti);
}

#[tokio::test]
async fn grants_what_the_acl_allows_per_scope() {
    let authd = Authd::start(&yaml(STANDARD_ACL, "")).await;
    let table: &[(Creds, &[&str], &[&str])] = &[
        (
            Some(("alice", "alice-pass")),
            &["repository:alice/app:pull,push"],
            &["repository:alice/app:pull,push"],
        ),
        (
            Some(("alice", "alice-pass")),
            &["repository:bob/app:push,pull"],
            &["repository:bob/app:pull"],
        ),
        (
            Some(("alice", "alice-pass")),
            &["registry:catalog:*"],
            &["registry:catalog:*"],
        ),
        (
            Some(("bob", "bob-pass")),
            &["repository:alice/app:pull,push"],
            &["repository:alice/app:pull"],
        ),
        (
            Some(("bob", "bob-pass")),
            &["registry:catalog:*"],
            &["registry:catalog:"],
        ),
        (
            Some(("admin", "admin-pass")),
            &["repository:x/y:delete,pull"],
            &["repository:x/y:delete,pull"],
        ),
        (
            None,
            &["repository:public/base:pull,push"],
            &["repository:public/base:pull"],
        ),
        (
            None,
            &["repository:alice/app:pull"],
            &["repository:alice/app:"],
        ),
        (
            Some(("alice", "alice-pass")),
            &[
                "repository:alice/a:push repository:docker.io/library/x:pull",
                "registry:catalog:*",
            ],
            &[
                "repository:alice/a:push",
                "repository:docker.io/library/x:pull",
                "registry:catalog:*",
            ],
        ),
        (
            Some(("alice", "alice-pass")),
            &["repository(plugin):alice/p:pull"],
            &["repository:alice/p:pull"],
        ),
        // docker_auth matches a resource class as its type: `type: repository` applies.
        (
            Some(("alice", "alice-pass")),
            &["repository(plugin):Vieux/SSHFS:pull,push"],
            &["repository:Vieux/SSHFS:pull"],
        ),
    ];
    for (creds, scopes, want) in table {
        let mut query = vec![("service", SERVICE)];
        query.extend(scopes.iter().map(|s| ("scope", *s)));
        let (status, body, _) = authd.get(*creds, &query).await;
        assert_eq!(status, 200, "{creds:?} {scopes:?}: {body}");
        assert_eq!(granted(&body), *want, "{creds:?} {scopes:?}");
    }
}

#[tokio::test]
async fn anonymous_needs_the_empty_user() {
    let acl = "  - match: {}\n    actions: [pull]\n";
    let without = yaml(acl, "").replace("  \"\": {}\n", "");
    let authd = Authd::start(&without).await;
    let (status, body, headers) = authd
        .get(
            None,
            &[("service", SERVICE), ("scope", "repository:x:pull")],
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(headers
        .get("www-authenticate")
        .is_some_and(|v| v.to_str().is_ok_and(|s| s.starts_with("Basic "))));
    let (status, body, _) = authd
        .get(
            Some(("bob", "bob-pass")),
            &[("service", SERVICE), ("scope", "repository:x:pull")],
        )
        .await;
    assert_eq!(
        (status, granted(&body)),
        (200, vec!["repository:x:pull".to_owned()])
    );
}

#[tokio::test]
async fn uses_the_forwarded_address_only_from_trusted_proxies() {
    let acl = "  - match: {ip: 10.0.0.0/8}\n    actions: [pull]\n  - match: {ip: \"fd00::/8\"}\n    actions: [push]\n";
    let trusting = yaml(acl, "").replace(
        "  addr: \"127.0.0.1:0\"\n",
        "  addr: \"127.0.0.1:0\"\n  real_ip_header: X-Forwarded-For\n  real_ip_pos: -1\n  trusted_proxies: [127.0.0.0/8]\n",
    );
    let distrusting = trusting.replace("[127.0.0.0/8]", "[192.0.2.0/24]");
    for (config, forwarded, want) in [
        (&trusting, "1.2.3.4, 10.9.8.7", "repository:x:pull"),
        (&trusting, "10.9.8.7, 1.2.3.4", "repository:x:"),
        (&trusting, "fd00::5", "repository:x:push"),
        (&distrusting, "10.9.8.7", "repository:x:"),
    ] {
        let authd = Authd::start(config).await;
        let req = reqwest::Client::new()
            .get(authd.auth_url())
            .basic_auth("bob", Some("bob-pass"))
            .header("X-Forwarded-For", forwarded)
            .query(&[("service", SERVICE), ("scope", "repository:x:pull,push")]);
        let (status, body, _) = crate::harness::respond(req).await;
        assert_eq!(
            (status, granted(&body)),
            (200, vec![want.to_owned()]),
            "{forwarded}"
        );
    }
}

#[tokio::test]
async fn a_forwarded_header_over_two_lines_is_one_list() {
    let acl = "  - match: {ip: 10.20.0.0/16}\n    actions: [pull, push]\n";
    let config = yaml(acl, "").replace(
        "  addr: \"127.0.0.1:0\"\n",
        "  addr: \"127.0.0.1:0\"\n  real_ip_header: X-Forwarded-For\n  real_ip_pos: -1\n  trusted_proxies: [127.0.0.0/8]\n",
    );
    let authd = Authd::start(&config).await;
    let get = raw_get("bob", "bob-pass", "repository:x:pull,push");
    // The client's own line comes first; the proxy appends the address it saw (pos -1).
    for (lines, want) in [
        (&["10.20.1.1"][..], "repository:x:pull,push"),
        (&["10.20.1.1", "192.0.2.7"], "repository:x:"),
        (&["192.0.2.7", "10.20.1.1"], "repository:x:pull,push"),
        (&["10.20.1.1, 10.20.1.2", "192.0.2.7"], "repository:x:"),
    ] {
        let forwarded: Vec<String> = lines
            .iter()
            .map(|l| format!("X-Forwarded-For: {l}"))
            .collect();
        let head: Vec<String> = get.iter().chain(&forwarded).cloned().collect();
        let (status, body) = raw(&authd.url, &head).await;
        assert_eq!(
            (status, granted(&body)),
            (200, vec![want.to_owned()]),
            "{lines:?}"
        );
    }
}

#[tokio::test]
async fn a_believed_peer_without_a_usable_forwarded_address_is_refused() {
    let acl = "  - match: {ip: 127.0.0.0/8}\n    actions: [pull, push]\n";
    let header = "  addr: \"127.0.0.1:0\"\n  real_ip_header: X-Forwarded-For\n  real_ip_pos: -1\n";
    let believing = yaml(acl, "").replace("  addr: \"127.0.0.1:0\"\n", header);
    let trusting = believing.replace("-1\n", "-1\n  trusted_proxies: [127.0.0.0/8]\n");
    let distrusting = believing.replace("-1\n", "-1\n  trusted_proxies: [192.0.2.0/24]\n");
    for (config, forwarded, want) in [
        (&believing, None, Err("absent")),
        (&trusting, None, Err("absent")),
        (
            &trusting,
            Some("not-an-ip"),
            Err("\"not-an-ip\" is not an address"),
        ),
        (&trusting, Some("10.1.1.1, "), Err("\"\" is not an address")),
        (&trusting, Some("10.1.1.1"), Ok("repository:x:")),
        (
            &trusting,
            Some("127.0.0.9:4444"),
            Ok("repository:x:pull,push"),
        ),
        // Outside trusted_proxies the peer's own address decides, header or not.
        (&distrusting, None, Ok("repository:x:pull,push")),
        (&distrusting, Some("junk"), Ok("repository:x:pull,push")),
    ] {
        let authd = Authd::start(config).await;
        let mut req = reqwest::Client::new()
            .get(authd.auth_url())
            .basic_auth("bob", Some("bob-pass"))
            .query(&[("service", SERVICE), ("scope", "repository:x:pull,push")]);
        if let Some(f) = forwarded {
            req = req.header("X-Forwarded-For", f);
        }
        let (status, body, _) = crate::harness::respond(req).await;
        match want {
            Ok(grant) => assert_eq!(
                (status, granted(&body)),
                (200, vec![grant.to_owned()]),
                "{forwarded:?}"
            ),
            Err(reason) => {
                let message = body["errors"][0]["message"].as_str().unwrap_or_default();
                assert_eq!(
                    (
                        status,
                        body["errors"][0]["code"].as_str(),
                        body["error"].as_str()
                    ),
                    (400, Some("INVALID_REQUEST"), Some("invalid_request")),
                    "{forwarded:?}: {body}"
                );
                assert!(
                    message.contains(reason) && message.contains("must be present"),
                    "{message}"
                );
            }
        }
    }
}

#[tokio::test]
async fn auth_token_is_an_alias_of_auth() {
    let authd = Authd::start(&yaml(STANDARD_ACL, "")).await;
    let url = format!("{}/auth/token", authd.url);
    let get = reqwest::Client::new()
        .get(&url)
        .basic_auth("alice", Some("alice-pass"))
        .query(&[
            ("service", SERVICE),
            ("scope", "repository:alice/app:pull,push"),
        ]);
    let (status, body, _) = crate::harness::respond(get).await;
    assert_eq!(
        (status, granted(&body)),
        (200, vec!["repository:alice/app:pull,push".to_owned()])
    );
    let post = reqwest::Client::new().post(&url).form(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice-pass"),
        ("service", SERVICE),
        ("scope", "repository:alice/app:pull"),
    ]);
    let (status, body, _) = crate::harness::respond(post).await;
    assert_eq!(
        (status, granted(&body)),
        (200, vec!["repository:alice/app:pull".to_owned()])
    );
    let (status, _, _) = crate::harness::respond(reqwest::Client::new().get(&url)).await;
    assert_eq!(status, 400, "no service: the /auth handler's answer");
    let wrong = reqwest::Client::new()
        .get(&url)
        .basic_auth("alice", Some("nope"))
        .query(&[("service", SERVICE)]);
    let (status, _, _) = crate::harness::respond(wrong).await;
    assert_eq!(status, 401);
    let (status, _, _) = crate::harness::respond(reqwest::Client::new().put(&url)).await;
    assert_eq!(status, 405);
}
