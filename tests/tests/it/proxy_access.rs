//! Who may use the pull-through cache and what it keeps to itself: authd's ACL decides on cached
//! names by every route (prefix, default upstream, containerd's `ns`) before anything is fetched;
//! the upstream's password (Bearer or Basic upstream) never shows in an answer or in registryd's
//! log; pushes into the proxied prefix are refused (405) while pushes elsewhere are stored in the
//! same registry, and the catalog lists both; an `ns` naming a host no upstream claims never
//! makes the cache connect there.
//!
//! Needs `upstream.test` and `berth.test` in /etc/hosts: run through `./scripts/test`.

use base64::Engine;
use berth_tests::content::Image;
use berth_tests::pull_through::{cache_state, PullThrough, PREFIX};
use berth_tests::registry::{bearer_params, expect_error, header, Registry};
use berth_tests::upstream::UpstreamAuth;
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

/// Everything the cache answered in a test: status, headers and body of each answer as text.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    /// Keeps `resp`'s status, headers and body; returns its status and body.
    async fn keep(&mut self, resp: Response) -> (StatusCode, Vec<u8>) {
        let status = resp.status();
        let headers: Vec<String> = resp
            .headers()
            .iter()
            .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let body = resp
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .to_vec();
        self.0.push(format!(
            "{status}\n{}\n{}",
            headers.join("\n"),
            String::from_utf8_lossy(&body)
        ));
        (status, body)
    }
}

/// Asserts that the upstream's password (as is, and in a Basic header) appears in none of the
/// answers `seen` and not in registryd's log, though it is in registryd's configuration.
fn assert_password_kept(cache: &PullThrough, seen: &Seen) {
    let user = &cache.upstream.puller;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", user.name, user.password));
    let config = std::fs::read_to_string(cache.env.registryd.config()).unwrap_or_default();
    assert!(
        config.contains(&user.password),
        "the password looked for is not the configured one"
    );
    let log = cache.env.registryd.daemon.log_text();
    assert!(
        log.contains("upstream fetch"),
        "registryd logged no upstream fetch:\n{log}"
    );
    for secret in [&user.password, &basic] {
        assert!(!log.contains(secret), "registryd logged {secret}:\n{log}");
        for answer in &seen.0 {
            assert!(
                !answer.contains(secret),
                "an answer carries {secret}:\n{answer}"
            );
        }
    }
}

/// alice pulls `image` (manifest by tag, then every blob) from the cache by prefix: each answer
/// 200 and byte-exact, the manifest fetched now (`miss`).
async fn alice_pulls(cache: &PullThrough, repo: &str, image: &Image, seen: &mut Seen) {
    let name = format!("{PREFIX}/{repo}");
    let token = cache
        .token("alice", &[&format!("repository:{name}:pull")])
        .await;
    let resp = cache.manifest(Method::GET, &name, "1", Some(&token)).await;
    assert_eq!(cache_state(&resp), "miss");
    let (status, body) = seen.keep(resp).await;
    assert_eq!(status, StatusCode::OK, "alice's pull of {name}:1");
    assert!(body == image.manifest.bytes, "other manifest bytes");
    for blob in image.blobs() {
        let (status, body) = seen
            .keep(cache.blob(&name, &blob.digest, Some(&token)).await)
            .await;
        assert_eq!(status, StatusCode::OK, "blob {}", blob.digest);
        assert!(body == blob.bytes, "other bytes for {}", blob.digest);
    }
}

/// Asserts a refusal for lack of rights (401 or 403), keeping the answer.
async fn assert_refused(resp: Response, seen: &mut Seen, what: &str) {
    let (status, body) = seen.keep(resp).await;
    assert!(
        [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&status),
        "{what}: {status} {}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test]
async fn the_acl_refuses_pulls_by_every_route_and_the_bearer_upstream_password_never_shows() {
    let image = Image::random(1);
    let (cache, repo) = PullThrough::stocked(UpstreamAuth::Bearer, "10m", "acl", &image).await;
    let name = format!("{PREFIX}/{repo}");
    let ns = format!("?ns={}", cache.upstream.host());
    let since = cache.upstream.requests().await.len();
    let mut seen = Seen::default();

    let anonymous = cache.manifest(Method::GET, &name, "1", None).await;
    assert_eq!(
        bearer_params(&anonymous).get("scope").map(String::as_str),
        Some(format!("repository:{name}:pull").as_str()),
        "the challenge of a prefixed name"
    );
    assert_refused(anonymous, &mut seen, "anonymous, by prefix").await;
    let anonymous = cache
        .manifest(Method::GET, &repo, &format!("1{ns}"), None)
        .await;
    assert_eq!(
        bearer_params(&anonymous).get("scope").map(String::as_str),
        Some(format!("repository:{name}:pull").as_str()),
        "the challenge of an ns request names the cached repository"
    );
    assert_refused(anonymous, &mut seen, "anonymous, by ns").await;

    // carol's rules grant her nothing here: her tokens carry no action on these names.
    let carol = cache
        .token(
            "carol",
            &[
                &format!("repository:{name}:pull"),
                &format!("repository:{repo}:pull"),
            ],
        )
        .await;
    for (path, reference, route) in [
        (name.as_str(), "1".to_string(), "by prefix"),
        (repo.as_str(), "1".to_string(), "as the default upstream"),
        (repo.as_str(), format!("1{ns}"), "by ns"),
    ] {
        let resp = cache
            .manifest(Method::GET, path, &reference, Some(&carol))
            .await;
        assert_refused(resp, &mut seen, &format!("carol, {route}")).await;
        let layer = &image.layers[0].digest;
        let resp = cache.blob(path, layer, Some(&carol)).await;
        assert_refused(resp, &mut seen, &format!("carol's blob pull, {route}")).await;
    }
    let asked = cache.upstream.requests().await;
    assert!(
        asked[since..].is_empty(),
        "refused pulls reached the upstream: {:?}",
        &asked[since..]
    );

    alice_pulls(&cache, &repo, &image, &mut seen).await;
    assert_password_kept(&cache, &seen);
}

#[tokio::test]
async fn a_basic_auth_upstream_is_pulled_through_and_its_password_never_shows() {
    let image = Image::random(2);
    let (cache, repo) = PullThrough::stocked(UpstreamAuth::Basic, "10m", "basic", &image).await;
    let mut seen = Seen::default();
    alice_pulls(&cache, &repo, &image, &mut seen).await;
    assert_password_kept(&cache, &seen);
}

#[tokio::test]
async fn pushes_into_the_proxied_prefix_are_refused_pushes_elsewhere_stored_and_both_listed() {
    let image = Image::random(1);
    let (cache, repo) = PullThrough::stocked(UpstreamAuth::Bearer, "10m", "mixed", &image).await;
    let name = format!("{PREFIX}/{repo}");
    let fresh = format!("{PREFIX}/library/never-cached");
    let token = cache
        .token(
            "alice",
            &[
                &format!("repository:{name}:pull,push"),
                &format!("repository:{fresh}:pull,push"),
                "repository:alice/app:pull,push",
                "registry:catalog:*",
            ],
        )
        .await;
    let registry = cache.registry();
    let resp = cache.manifest(Method::GET, &name, "1", Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK, "alice's pull of {name}:1");
    let since = cache.upstream.requests().await.len();

    let own = Image::random(1);
    for target in [&name, &fresh] {
        let resp = registry
            .post_blob(target, &own.layers[0], Some(&token))
            .await;
        expect_error(resp, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
        let start = registry.request(
            Method::POST,
            &format!("/v2/{target}/blobs/uploads/"),
            Some(&token),
        );
        let resp = registry.send(start).await;
        expect_error(resp, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
        let resp = registry
            .put_manifest(target, "pushed", &image.manifest, Some(&token))
            .await;
        expect_error(resp, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    }
    let asked = cache.upstream.requests().await;
    assert!(
        asked[since..]
            .iter()
            .all(|r| r.method == "GET" || r.method == "HEAD"),
        "a refused push reached the upstream: {:?}",
        &asked[since..]
    );

    registry
        .push_image("alice/app", "v1", &own, Some(&token))
        .await;
    registry
        .assert_blob("alice/app", &own.layers[0], &token)
        .await;

    let catalog = json(&registry, "/v2/_catalog", &token).await;
    let listed = catalog["repositories"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for expected in [&name, "alice/app"] {
        assert!(
            listed.iter().any(|r| r == expected),
            "{expected} not in the catalog: {catalog}"
        );
    }
    assert!(
        !listed.iter().any(|r| r == fresh.as_str()),
        "a refused push created {fresh}: {catalog}"
    );
    let tags = json(&registry, &format!("/v2/{name}/tags/list"), &token).await;
    assert_eq!(tags["tags"], serde_json::json!(["1"]), "{tags}");
}

/// `GET path` answered 200 with JSON.
async fn json(registry: &Registry, path: &str, token: &str) -> Value {
    let resp = registry.get(path, Some(token)).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "GET {path}: {}",
        header(&resp, "Content-Type")
    );
    resp.json()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
}

#[tokio::test]
async fn an_ns_no_upstream_claims_never_makes_the_cache_connect_there() {
    let image = Image::random(1);
    let (cache, repo) = PullThrough::stocked(UpstreamAuth::Bearer, "10m", "ns", &image).await;
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot bind the trap: {e}"));
    let trap_addr = trap
        .local_addr()
        .unwrap_or_else(|e| panic!("trap address: {e}"));
    let scopes = [
        format!("repository:{repo}:pull"),
        format!("repository:{PREFIX}/{repo}:pull"),
    ];
    let token = cache
        .token(
            "alice",
            &scopes.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    let layer = &image.layers[0].digest;
    for ns in [
        trap_addr.to_string(),
        format!("localhost:{}", trap_addr.port()),
    ] {
        let manifest = cache
            .manifest(Method::GET, &repo, &format!("1?ns={ns}"), Some(&token))
            .await;
        assert!(
            !manifest.status().is_server_error(),
            "ns={ns}: {}",
            manifest.status()
        );
        let path = format!("/v2/{repo}/blobs/{layer}?ns={ns}");
        let blob = cache.registry().get(&path, Some(&token)).await;
        assert!(
            !blob.status().is_server_error(),
            "ns={ns}: {}",
            blob.status()
        );
    }
    // A connection the cache opened would be waiting in the trap's backlog by now.
    let knocked = tokio::time::timeout(std::time::Duration::ZERO, trap.accept()).await;
    assert!(
        knocked.is_err(),
        "the cache connected to a host named by ?ns="
    );
}
