//! A bounded, seeded storm of odd requests against an open registry: whatever the input, the
//! answer is never a 5xx, every error carries the spec's JSON, and the daemon stays up. The seed
//! is printed; `BERTH_SEED=<seed>` replays the same storm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{sha256, Content, Image, OCI_INDEX, OCI_MANIFEST};
use berth_tests::env::TestEnv;
use berth_tests::registry::{header, SPEC_CODES};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::{Method, StatusCode};

/// Requests sent.
const REQUESTS: usize = 600;

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from.choose(rng).copied().unwrap_or_default()
}

#[tokio::test]
async fn odd_requests_never_get_a_server_error() {
    let env = TestEnv::open().await;
    let registry = env.registry();
    let image = Image::random(2);
    registry.push_image("team/app", "v1", &image, None).await;
    let session = registry.start_upload("team/app", "").await;
    let (mut rng, seed) = berth_tests::seed::rng("odd_requests_never_get_a_server_error");

    let layer = image.layers[0].digest.clone();
    let manifest = image.manifest.digest.clone();
    let unknown = sha256(b"unknown");
    let long_tag = "t".repeat(200);
    let names = [
        "team/app",
        "team/other",
        "a",
        "Team/App",
        "team//app",
        "team/app/",
        "-x",
        "a/b/c/d/e/f/g/h/i/j",
        "x.y_z__w",
    ];
    let kinds = [
        "blobs",
        "manifests",
        "tags/list",
        "blobs/uploads/",
        "blobs/uploads",
        "referrers",
        "nothing",
    ];
    let refs = [
        layer.as_str(),
        manifest.as_str(),
        unknown.as_str(),
        "v1",
        "latest",
        "",
        "sha256:",
        "sha256:zz",
        "sha512:00",
        long_tag.as_str(),
        "..",
        "%00",
        "uploads",
        "x?y",
        session.rsplit('/').next().unwrap_or_default(),
    ];
    let queries = [
        "",
        "?n=1",
        "?n=0",
        "?n=-5",
        "?n=1000000000000",
        "?last=zz",
        "?last=",
        "?digest=sha256:00",
        "?digest=",
        "?mount=sha256:00&from=team/app",
        "?mount=&from=",
        "?artifactType=",
        "?artifactType=a/b",
        "?n=2&last=v1&n=3",
    ];
    let ranges = [
        "bytes=0-0",
        "bytes=5-1",
        "bytes=-0",
        "bytes=0-",
        "bytes=x",
        "0-10",
        "",
        "bytes=0-1,2-3",
    ];
    let content_types = [
        OCI_MANIFEST,
        OCI_INDEX,
        "application/json",
        "text/plain",
        "",
        "application/vnd.oci.image.manifest.v1+json; x=y",
    ];
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"{\"schemaVersion\":2}".to_vec(),
        b"{\"schemaVersion\":2,\"manifests\":[{}]}".to_vec(),
        b"{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:00\",\"size\":-1,\"mediaType\":\"x\"},\"layers\":[]}".to_vec(),
        image.manifest.bytes.clone(),
        Content::random(3000).bytes,
    ];
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];

    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..REQUESTS {
        let method = methods.choose(&mut rng).cloned().unwrap_or(Method::GET);
        let path = match rng.gen_range(0..10) {
            0 => format!("/v2/_catalog{}", pick(&mut rng, &queries)),
            1 => format!("/v2/{}{}", pick(&mut rng, &names), pick(&mut rng, &queries)),
            _ => format!(
                "/v2/{}/{}/{}{}",
                pick(&mut rng, &names),
                pick(&mut rng, &kinds),
                pick(&mut rng, &refs),
                pick(&mut rng, &queries)
            ),
        };
        let mut req = registry.request(method.clone(), &path, None);
        if rng.gen_bool(0.3) {
            req = req.header("Range", pick(&mut rng, &ranges));
        }
        if rng.gen_bool(0.3) {
            req = req.header(
                "Content-Range",
                pick(&mut rng, &ranges).trim_start_matches("bytes="),
            );
        }
        if rng.gen_bool(0.5) {
            req = req.header("Content-Type", pick(&mut rng, &content_types));
        }
        if method != Method::GET && method != Method::HEAD {
            req = req.body(bodies.choose(&mut rng).cloned().unwrap_or_default());
        }
        let Ok(resp) = req.send().await else {
            failures.push(format!("{method} {path}: no answer"));
            continue;
        };
        let status = resp.status();
        *seen.entry(status.as_u16()).or_insert(0) += 1;
        let content_type = header(&resp, "Content-Type");
        let text = resp.text().await.unwrap_or_default();
        if status.is_server_error() {
            failures.push(format!("{method} {path}: {status} {text}"));
        } else if status.is_client_error()
            && method != Method::HEAD
            && status != StatusCode::RANGE_NOT_SATISFIABLE
        {
            let body: Option<serde_json::Value> = serde_json::from_str(&text).ok();
            let code = body
                .as_ref()
                .and_then(|b| b["errors"][0]["code"].as_str().map(str::to_string));
            if !code.as_deref().is_some_and(|c| SPEC_CODES.contains(&c)) {
                failures.push(format!(
                    "{method} {path}: {status} without the spec's JSON ({content_type}): {text}"
                ));
            }
        }
    }
    eprintln!("statuses seen: {seen:?}");
    let health = registry.get("/healthz", None).await.status();
    assert_eq!(
        health,
        StatusCode::OK,
        "registryd is not healthy after the storm"
    );
    failures.sort();
    failures.dedup();
    assert!(
        failures.is_empty(),
        "seed {seed}: {} odd requests went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The storm may legitimately have deleted team/app's manifest or blobs (the registry is open
    // and DELETE is among its methods), so the proof that the registry still works is a new push.
    let after = Image::random(2);
    registry.push_image("team/after", "v1", &after, None).await;
    registry
        .assert_serves("team/after", &after.manifest.digest, &after.manifest, "")
        .await;
}
