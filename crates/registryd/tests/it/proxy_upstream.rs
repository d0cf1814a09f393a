//! The pull-through cache against upstreams whose behaviour no local registry reproduces on
//! cue: a blob answered by a redirect to another host (object storage, a CDN), a token realm
//! whose calls are counted, and an account the upstream refuses. (The cache with real
//! upstreams and real clients is in `berth-tests`.) The stand-in upstream is a small axum app.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;

use super::{client, data_dir, digest, Server};

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// What the stand-in upstream and its "CDN" saw.
#[derive(Default)]
struct Seen {
    token_calls: AtomicUsize,
    token_auth: Mutex<Vec<String>>,
    cdn_auth: Mutex<Vec<Option<String>>>,
    blob_gets: AtomicUsize,
    accept: Mutex<Vec<String>>,
}

struct Upstream {
    seen: Seen,
    /// Where the token realm and the CDN listen.
    base: String,
    cdn: String,
    layer: Vec<u8>,
    manifest: Vec<u8>,
    /// `Basic` instead of the Bearer dance.
    basic: bool,
}

const ACCOUNT: (&str, &str) = ("puller", "s3cret-upstream-pw");

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

fn authorized(up: &Upstream, headers: &HeaderMap) -> bool {
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if up.basic {
        got == Some(basic(ACCOUNT.0, ACCOUNT.1).as_str())
    } else {
        got == Some("Bearer tok-lib/app")
    }
}

fn challenge(up: &Upstream) -> Response {
    let value = if up.basic {
        "Basic realm=\"ecr\"".to_owned()
    } else {
        format!(
            "Bearer realm=\"{}/token\",service=\"upstream\",scope=\"repository:lib/app:pull\"",
            up.base
        )
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, value)],
    )
        .into_response()
}

async fn token(State(up): State<Arc<Upstream>>, headers: HeaderMap) -> Response {
    up.seen.token_calls.fetch_add(1, Ordering::SeqCst);
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    up.seen.token_auth.lock().unwrap().push(got.clone());
    if got != basic(ACCOUNT.0, ACCOUNT.1) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(serde_json::json!({"token": "tok-lib/app", "expires_in": 300})).into_response()
}

async fn manifest(
    State(up): State<Arc<Upstream>>,
    UrlPath(reference): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&up, &headers) {
        return challenge(&up);
    }
    let accept = headers.get_all(header::ACCEPT).iter();
    let accept = accept.filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    up.seen.accept.lock().unwrap().push(accept.join(", "));
    if reference != "1" && reference != digest(&up.manifest) {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, MANIFEST_TYPE.to_owned()),
            (
                header::HeaderName::from_static("docker-content-digest"),
                digest(&up.manifest),
            ),
        ],
        up.manifest.clone(),
    )
        .into_response()
}

async fn blob(State(up): State<Arc<Upstream>>, headers: HeaderMap) -> Response {
    if !authorized(&up, &headers) {
        return challenge(&up);
    }
    up.seen.blob_gets.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, format!("{}/bucket/layer?sig=abc", up.cdn))],
    )
        .into_response()
}

async fn cdn(State(up): State<Arc<Upstream>>, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    up.seen.cdn_auth.lock().unwrap().push(auth);
    up.layer.clone().into_response()
}

/// Starts the upstream (on 127.0.0.1) and its CDN (reached as `localhost`: another host).
async fn upstream(basic: bool) -> (Arc<Upstream>, String) {
    let up_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up_listener.local_addr().unwrap();
    let cdn_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cdn_port = cdn_listener.local_addr().unwrap().port();
    let layer = b"layer bytes from object storage".repeat(1000);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let manifest_bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let up = Arc::new(Upstream {
        seen: Seen::default(),
        base: format!("http://{up_addr}"),
        cdn: format!("http://localhost:{cdn_port}"),
        layer,
        manifest: manifest_bytes,
        basic,
    });
    let router = Router::new()
        .route("/token", get(token))
        .route("/v2/lib/app/manifests/{reference}", get(manifest))
        .route("/v2/lib/app/blobs/{digest}", get(blob))
        .with_state(up.clone());
    tokio::spawn(async move { axum::serve(up_listener, router).await.unwrap() });
    let cdn_router = Router::new()
        .route("/bucket/layer", get(cdn))
        .with_state(up.clone());
    tokio::spawn(async move { axum::serve(cdn_listener, cdn_router).await.unwrap() });
    let url = up.base.clone();
    (up, url)
}

fn proxy_yaml(url: &str, password: &str) -> String {
    format!(
        "proxy: {{upstreams: [{{name: up.test, remoteurl: '{url}', username: {}, password: {password}}}]}}\n",
        ACCOUNT.0
    )
}

#[tokio::test]
async fn bearer_upstream_redirects_without_our_credentials_and_tokens_are_reused() {
    let (up, url) = upstream(false).await;
    let (_dir, data) = data_dir();
    let server = Server::start(&data, &proxy_yaml(&url, ACCOUNT.1), None).await;
    let c = client();
    // Docker sends one Accept line per media type; the upstream must get them all.
    let m = c
        .get(format!("{}/v2/up.test/lib/app/manifests/1", server.url))
        .header(
            header::ACCEPT,
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .header(header::ACCEPT, MANIFEST_TYPE)
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
    assert_eq!(m.headers()["berth-cache"], "miss");
    assert_eq!(
        *up.seen.accept.lock().unwrap(),
        vec![format!(
            "application/vnd.docker.distribution.manifest.v2+json, {MANIFEST_TYPE}"
        )]
    );
    let text = m.text().await.unwrap();
    assert!(!text.contains(ACCOUNT.1));
    let layer_digest = digest(&up.layer);
    let b = c
        .get(format!(
            "{}/v2/up.test/lib/app/blobs/{layer_digest}",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(b.status(), 200);
    let headers = format!("{:?}", b.headers());
    assert_eq!(b.bytes().await.unwrap(), up.layer);
    assert!(!headers.contains(ACCOUNT.1) && !headers.contains("tok-"));
    // The redirect target got no Authorization; the token realm got the account, once for both
    // requests (the token is cached for the repository's scope).
    assert_eq!(*up.seen.cdn_auth.lock().unwrap(), vec![None]);
    assert_eq!(up.seen.token_calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        *up.seen.token_auth.lock().unwrap(),
        vec![basic(ACCOUNT.0, ACCOUNT.1)]
    );
    // Cached now: no further upstream GET.
    let again = c
        .get(format!(
            "{}/v2/up.test/lib/app/blobs/{layer_digest}",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers()["berth-cache"], "hit");
    assert_eq!(again.bytes().await.unwrap(), up.layer);
    assert_eq!(up.seen.blob_gets.load(Ordering::SeqCst), 1);
    server.stop().await;
}

#[tokio::test]
async fn basic_upstream_gets_the_account_and_a_refused_account_is_a_clear_miss() {
    let (up, url) = upstream(true).await;
    let (_dir, data) = data_dir();
    let server = Server::start(&data, &proxy_yaml(&url, ACCOUNT.1), None).await;
    let c = client();
    let m = c
        .get(format!("{}/v2/up.test/lib/app/manifests/1", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
    assert_eq!(up.seen.token_calls.load(Ordering::SeqCst), 0);
    server.stop().await;

    // A wrong password: one retry, then MANIFEST_UNKNOWN saying the upstream refused; nothing
    // cached and the password in no answer.
    let (_dir2, data2) = data_dir();
    let server = Server::start(&data2, &proxy_yaml(&url, "wrong-pw-123"), None).await;
    let m = c
        .get(format!("{}/v2/up.test/lib/app/manifests/1", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 404);
    let body = m.text().await.unwrap();
    assert!(
        body.contains("MANIFEST_UNKNOWN") && body.contains("refused the request (401"),
        "{body}"
    );
    assert!(!body.contains("wrong-pw-123"));
    let tags = c
        .get(format!("{}/v2/up.test/lib/app/tags/list", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(tags.status(), 404);
    server.stop().await;
}
