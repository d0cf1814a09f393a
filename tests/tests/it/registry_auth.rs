//! registryd's token auth as a black box: challenges, scopes, and every kind of bad token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::authd::SERVICE;
use berth_tests::content::Image;
use berth_tests::env::TestEnv;
use berth_tests::registry::{bearer_params, expect_error, header};
use berth_tests::tokens::{claims, expired, hmac_signed, repository_access, sign, unsigned};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn base_endpoint_answers_200_with_a_token_and_401_with_a_challenge_without() {
    let env = TestEnv::standard().await;
    let registry = env.registry();

    let resp = registry.get("/v2/", None).await;
    assert_eq!(
        header(&resp, "Docker-Distribution-API-Version"),
        "registry/2.0"
    );
    let challenge = bearer_params(&resp);
    assert_eq!(
        challenge.get("realm"),
        Some(&env.authd().realm()),
        "{challenge:?}"
    );
    assert_eq!(challenge.get("service").map(String::as_str), Some(SERVICE));
    assert!(
        !challenge.contains_key("scope"),
        "GET /v2/ needs no scope: {challenge:?}"
    );
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // A token with no access at all is still a valid login for /v2/.
    let token = env.token("bob", &[]).await;
    let resp = registry.get("/v2/", Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "Docker-Distribution-API-Version"),
        "registry/2.0"
    );

    // Garbage in the Authorization header is a 401, never a 400/500.
    let resp = registry.get("/v2/", Some("not-a-jwt")).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn every_route_challenges_with_the_scope_it_needs() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let digest = format!("sha256:{}", "a".repeat(64));
    let cases = [
        (
            Method::GET,
            "/v2/alice/app/manifests/v1".to_string(),
            "repository:alice/app:pull",
        ),
        (
            Method::HEAD,
            format!("/v2/alice/app/blobs/{digest}"),
            "repository:alice/app:pull",
        ),
        (
            Method::GET,
            "/v2/alice/app/tags/list".to_string(),
            "repository:alice/app:pull",
        ),
        (
            Method::POST,
            "/v2/alice/app/blobs/uploads/".to_string(),
            "repository:alice/app:pull,push",
        ),
        (
            Method::PUT,
            "/v2/alice/app/manifests/v1".to_string(),
            "repository:alice/app:pull,push",
        ),
        (
            Method::DELETE,
            format!("/v2/alice/app/manifests/{digest}"),
            "repository:alice/app:delete",
        ),
        (
            Method::GET,
            "/v2/_catalog".to_string(),
            "registry:catalog:*",
        ),
    ];
    for (method, path, scope) in cases {
        let resp = registry
            .send(registry.request(method.clone(), &path, None))
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let challenge = bearer_params(&resp);
        assert_eq!(
            challenge.get("realm"),
            Some(&env.authd().realm()),
            "{method} {path}: {challenge:?}"
        );
        assert_eq!(
            challenge.get("service").map(String::as_str),
            Some(SERVICE),
            "{method} {path}"
        );
        assert_eq!(
            challenge.get("scope").map(|s| scopes(s)),
            Some(scopes(scope)),
            "{method} {path}: {challenge:?}"
        );
        if method != Method::HEAD {
            expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
        }
    }
}

/// A scope as (type, class, name, actions in any order).
type ScopeParts = (
    String,
    Option<String>,
    String,
    std::collections::BTreeSet<String>,
);

/// Each scope of a `scope` value, whole: only the order of its actions may differ.
fn scopes(value: &str) -> Vec<ScopeParts> {
    token::parse_scopes(value)
        .unwrap_or_else(|e| panic!("{value}: {e}"))
        .into_iter()
        .map(|s| (s.kind, s.class, s.name, s.actions.into_iter().collect()))
        .collect()
}

#[tokio::test]
async fn a_client_following_the_challenge_gets_in() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let resp = registry.get("/v2/alice/app/tags/list", None).await;
    let challenge = bearer_params(&resp);
    // Exactly what Docker does: ask the realm for the service and scope it was told.
    let http = reqwest::Client::new();
    let resp = http
        .get(&challenge["realm"])
        .query(&[
            ("service", &challenge["service"]),
            ("scope", &challenge["scope"]),
        ])
        .basic_auth("alice", Some("alice-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    // Authorized now: the repository simply does not exist yet.
    let resp = registry.get("/v2/alice/app/tags/list", Some(token)).await;
    expect_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
}

#[tokio::test]
async fn a_token_lacking_the_action_gets_insufficient_scope() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let alice = env
        .token("alice", &["repository:alice/app:pull,push"])
        .await;
    registry
        .push_image("alice/app", "v1", &Image::random(1), Some(&alice))
        .await;

    // bob (readers) asked for push too but was granted pull only.
    let bob = env.token("bob", &["repository:alice/app:pull,push"]).await;
    let resp = registry.get("/v2/alice/app/manifests/v1", Some(&bob)).await;
    assert_eq!(resp.status(), StatusCode::OK, "bob may pull");
    let resp = registry
        .send(registry.request(Method::POST, "/v2/alice/app/blobs/uploads/", Some(&bob)))
        .await;
    let challenge = bearer_params(&resp);
    assert_eq!(
        challenge.get("error").map(String::as_str),
        Some("insufficient_scope"),
        "{challenge:?}"
    );
    assert!(
        challenge.get("scope").is_some_and(|s| s.contains("push")),
        "{challenge:?}"
    );
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // A token for another repository does not open this one.
    let other = env
        .token("alice", &["repository:alice/other:pull,push"])
        .await;
    let resp = registry
        .get("/v2/alice/app/manifests/v1", Some(&other))
        .await;
    let challenge = bearer_params(&resp);
    assert_eq!(
        challenge.get("error").map(String::as_str),
        Some("insufficient_scope"),
        "{challenge:?}"
    );
    assert_eq!(
        challenge.get("scope").map(String::as_str),
        Some("repository:alice/app:pull")
    );
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // Deleting needs `delete`, which push+pull does not include.
    let image_ref = "/v2/alice/app/manifests/v1";
    let resp = registry
        .send(registry.request(Method::DELETE, image_ref, Some(&alice)))
        .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    assert_eq!(
        registry.get(image_ref, Some(&alice)).await.status(),
        StatusCode::OK,
        "nothing was deleted"
    );
}

#[tokio::test]
async fn anonymous_pulls_public_only_and_catalog_needs_its_scope() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let admin = env
        .token("admin", &["repository:public/app:pull,push"])
        .await;
    registry
        .push_image("public/app", "v1", &Image::random(1), Some(&admin))
        .await;

    let anonymous = env
        .authd()
        .token_with(None, &["repository:public/app:pull"])
        .await;
    let resp = registry
        .get("/v2/public/app/manifests/v1", Some(&anonymous))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let anonymous = env
        .authd()
        .token_with(None, &["repository:alice/app:pull"])
        .await;
    let resp = registry
        .get("/v2/alice/app/manifests/v1", Some(&anonymous))
        .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    let alice = env.token("alice", &["registry:catalog:*"]).await;
    let resp = registry.get("/v2/_catalog", Some(&alice)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let bob = env.token("bob", &["registry:catalog:*"]).await;
    let resp = registry.get("/v2/_catalog", Some(&bob)).await;
    assert_eq!(
        bearer_params(&resp).get("scope").map(String::as_str),
        Some("registry:catalog:*")
    );
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn expired_foreign_unsigned_and_misaddressed_tokens_are_refused() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let full = || {
        claims(
            "admin",
            vec![repository_access("alice/app", &["pull", "push"])],
        )
    };

    // Control: the same claims signed with authd's key work.
    let good = sign(&env.certs, &full());
    let resp = registry.get("/v2/alice/app/tags/list", Some(&good)).await;
    expect_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;

    let other_certs = env.dir.path().join("other-certs");
    berth_tests::authd::gen_cert(&other_certs, &[]);
    let cert_pem = std::fs::read(env.certs.join("token.crt")).unwrap();
    let mut wrong_issuer = full();
    wrong_issuer.iss = "someone-else".into();
    let mut wrong_audience = full();
    wrong_audience.aud = token::Audience(vec!["another-registry".into()]);
    let bad = [
        ("expired", sign(&env.certs, &expired(full()))),
        ("signed by another key", sign(&other_certs, &full())),
        ("alg none", unsigned(&full())),
        (
            "HS256 keyed with the certificate",
            hmac_signed(&full(), &cert_pem),
        ),
        ("wrong issuer", sign(&env.certs, &wrong_issuer)),
        ("another audience", sign(&env.certs, &wrong_audience)),
        ("tampered payload", tamper(&good)),
    ];
    for (what, token) in bad {
        for path in ["/v2/", "/v2/alice/app/tags/list"] {
            let resp = registry.get(path, Some(&token)).await;
            assert_eq!(
                resp.status(),
                StatusCode::UNAUTHORIZED,
                "{what} token on {path}"
            );
            assert!(
                bearer_params(&resp).contains_key("realm"),
                "{what} token on {path}: no challenge"
            );
            expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
        }
    }
}

/// Replaces the payload of a signed JWT with one granting more, keeping the signature.
fn tamper(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let forged = claims("admin", vec![repository_access("*", &["*"])]);
    let forged = berth_tests::tokens::unsigned(&forged);
    let forged_payload = forged.split('.').nth(1).unwrap();
    format!("{}.{}.{}", parts[0], forged_payload, parts[2])
}

#[tokio::test]
async fn token_edge_cases_follow_the_token_spec() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let path = "/v2/alice/app/tags/list";
    let access = || vec![repository_access("alice/app", &["pull"])];

    // An audience list that contains our service is fine.
    let mut listed = claims("admin", access());
    listed.aud = token::Audience(vec!["another-registry".into(), SERVICE.into()]);
    let resp = registry.get(path, Some(&sign(&env.certs, &listed))).await;
    expect_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;

    // Not valid before an hour from now: refused (beyond any clock-skew leeway).
    let mut early = claims("admin", access());
    early.nbf += 3600;
    early.iat += 3600;
    early.exp += 3600;
    let resp = registry.get(path, Some(&sign(&env.certs, &early))).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;

    // Access for another type or another action does not count.
    let mut other_type = claims("admin", vec![repository_access("alice/app", &["pull"])]);
    other_type.access[0].kind = "registry".into();
    let resp = registry
        .get(path, Some(&sign(&env.certs, &other_type)))
        .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    let push_only = claims("admin", vec![repository_access("alice/app", &["push"])]);
    let resp = registry
        .get(path, Some(&sign(&env.certs, &push_only)))
        .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // A name is matched exactly: a prefix or a glob-looking name grants nothing.
    for name in ["alice", "alice/ap", "alice/*"] {
        let near = claims("admin", vec![repository_access(name, &["pull"])]);
        let resp = registry.get(path, Some(&sign(&env.certs, &near))).await;
        expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    }

    // Basic credentials sent to a token registry get the Bearer challenge, not a 500.
    let req = registry
        .request(Method::GET, path, None)
        .basic_auth("alice", Some("alice-pass"));
    let resp = registry.send(req).await;
    assert!(bearer_params(&resp).contains_key("realm"));
    expect_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
    // HEAD /v2/ answers like GET, without a body.
    let resp = registry.head("/v2/", None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(bearer_params(&resp).contains_key("realm"));
}

#[tokio::test]
async fn thumbprint_key_ids_are_accepted_too() {
    let spec = berth_tests::authd::AuthSpec {
        disable_legacy_key_id: true,
        ..berth_tests::authd::AuthSpec::standard()
    };
    let env = TestEnv::with_auth(spec, true).await;
    let registry = env.registry();
    let token = env
        .token("alice", &["repository:alice/app:pull,push"])
        .await;
    let header_json = token.split('.').next().map(|h| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap()
    });
    let header: serde_json::Value = serde_json::from_slice(&header_json.unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap();
    assert!(
        !kid.contains(':'),
        "authd still issues a libtrust kid: {kid}"
    );
    let image = Image::random(1);
    registry
        .push_image("alice/app", "v1", &image, Some(&token))
        .await;
    registry
        .assert_serves("alice/app", "v1", &image.manifest, &token)
        .await;
}
