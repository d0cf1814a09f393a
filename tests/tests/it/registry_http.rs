//! HTTP-level behaviour real clients depend on: a keep-alive connection stays usable after the
//! registry refuses an authenticated request before reading its body. (A request without valid
//! credentials is answered at once and its connection closed: `registry_abuse`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{Content, Image, OCI_MANIFEST};
use berth_tests::env::TestEnv;
use berth_tests::raw_http::{then_reuse, RawResponse};
use berth_tests::registry::Registry;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Attempts per case: the server's reaction races with the client's writing, so a single try
/// may miss a connection dropped without notice.
const ATTEMPTS: usize = 10;

/// The refusal must keep the connection (no `Connection: close`), and that same connection must
/// then carry the next request.
fn keeps_the_connection(
    what: &str,
    attempt: usize,
    first: &RawResponse,
    second: Result<u16, String>,
) {
    assert!(
        (400..500).contains(&first.status),
        "{what}: {}",
        first.status
    );
    let announced_close = first
        .headers
        .get("connection")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    assert!(
        !announced_close,
        "{what} (attempt {attempt}): answered {} with `Connection: close`",
        first.status
    );
    assert_eq!(
        second,
        Ok(200),
        "{what} (attempt {attempt}): answered {}, then the connection could not carry the next \
         request",
        first.status
    );
}

async fn setup() -> (TestEnv, String, String) {
    let env = TestEnv::standard().await;
    let token = env.admin_token(&["team/app"]).await;
    let location = env.registry().start_upload("team/app", &token).await;
    (env, token, location)
}

#[tokio::test]
async fn the_connection_survives_an_out_of_order_chunk() {
    let (env, token, location) = setup().await;
    let addr = env.registryd.daemon.addr;
    let body = Content::random(64 * 1024).bytes;
    for attempt in 0..ATTEMPTS {
        let headers = [
            ("Authorization", format!("Bearer {token}")),
            ("Content-Range", format!("100-{}", 100 + body.len() - 1)),
        ];
        let (first, second) =
            then_reuse(addr, ("PATCH", &location), &headers, body.clone(), &token).await;
        keeps_the_connection("out-of-order PATCH", attempt, &first, second);
    }
}

#[tokio::test]
async fn the_connection_survives_an_oversize_manifest() {
    let (env, token, _) = setup().await;
    let addr = env.registryd.daemon.addr;
    let image = Image::random(1);
    let mut body: serde_json::Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
    body["annotations"] = json!({"padding": "x".repeat(4 * 1024 * 1024 + 16 * 1024)});
    let oversize = Content::json(&body, OCI_MANIFEST);
    for attempt in 0..ATTEMPTS {
        let headers = [
            ("Authorization", format!("Bearer {token}")),
            ("Content-Type", OCI_MANIFEST.to_string()),
        ];
        let (first, second) = then_reuse(
            addr,
            ("PUT", "/v2/team/app/manifests/big"),
            &headers,
            oversize.bytes.clone(),
            &token,
        )
        .await;
        keeps_the_connection("oversize manifest PUT", attempt, &first, second);
    }
}

#[tokio::test]
async fn a_large_refused_request_still_gets_its_answer() {
    let (env, token, location) = setup().await;
    let registry = Registry::unpooled(&env.registryd.url());
    let big = Content::random(8 * 1024 * 1024);
    let small = Content::random(512 * 1024);
    for attempt in 0..ATTEMPTS {
        // A chunk at the wrong offset and an upload with a bad token: both refused before the
        // body is read. The client must be able to read that refusal, not a broken connection.
        let chunk = registry
            .request(Method::PATCH, &location, Some(&token))
            .header(
                "Content-Range",
                format!("100-{}", 100 + big.bytes.len() - 1),
            )
            .body(big.bytes.clone());
        // Without valid credentials the registry reads at most 1 MiB past its answer, then
        // closes: a client sending more may see the connection cut (which is the point).
        let upload = registry
            .request(
                Method::POST,
                "/v2/team/app/blobs/uploads/",
                Some("not-a-token"),
            )
            .query(&[("digest", &small.digest)])
            .body(small.bytes.clone());
        for (what, req, status) in [
            (
                "out-of-order chunk",
                chunk,
                StatusCode::RANGE_NOT_SATISFIABLE,
            ),
            ("upload with a bad token", upload, StatusCode::UNAUTHORIZED),
        ] {
            match req.send().await {
                Ok(resp) => assert_eq!(resp.status(), status, "{what}"),
                Err(e) => panic!(
                    "{what} (attempt {attempt}): the client got no answer, only {e:?}: the \
                     registry answered before reading the body and reset the connection"
                ),
            }
        }
    }
}

/// registry:2's `http.addr: ":5000"` is every interface, IPv6 included: one dual-stack socket
/// answers a client on 127.0.0.1 and one on ::1.
#[tokio::test]
async fn the_every_interface_form_serves_ipv4_and_ipv6_clients() {
    use berth_tests::registryd::{RegistryAuth, Registryd};
    let dir = tempfile::tempdir().unwrap();
    let registryd = Registryd::start_merged(
        dir.path(),
        &RegistryAuth::Open,
        false,
        json!({"http": {"addr": ":0"}}),
    )
    .await;
    let url = registryd.url();
    assert!(url.contains("[::]"), "bound dual-stack: {url}");
    let port = url.rsplit(':').next().unwrap().to_owned();
    for host in ["127.0.0.1", "[::1]"] {
        let status = reqwest::get(format!("http://{host}:{port}/v2/"))
            .await
            .map(|r| r.status());
        assert_eq!(status.ok(), Some(StatusCode::OK), "from {host}");
    }
}
