//! Blob pull and every push path of the distribution spec: monolithic, POST+PUT, chunked PATCH,
//! status, cancel, cross-repository mount, and their bad inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{sha256, Content};
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_error, header, Registry};
use reqwest::{Method, StatusCode};
use sha2::Digest;

const PUSH: &str = "pull,push";

async fn env_and_token(repos: &[&str]) -> (TestEnv, Registry, String) {
    let env = TestEnv::standard().await;
    let scopes: Vec<String> = repos
        .iter()
        .map(|r| format!("repository:{r}:{PUSH},delete"))
        .collect();
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let token = env.token("admin", &scopes).await;
    let registry = env.registry();
    (env, registry, token)
}

/// POST /v2/<repo>/blobs/uploads/ → 202; returns the upload URL (`Location`).
async fn start_upload(registry: &Registry, repo: &str, token: &str) -> String {
    let resp = registry
        .send(registry.request(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/"),
            Some(token),
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(
        !header(&resp, "Docker-Upload-UUID").is_empty(),
        "no Docker-Upload-UUID"
    );
    let location = header(&resp, "Location");
    assert!(
        location.contains(&format!("/v2/{repo}/blobs/uploads/")),
        "Location {location}"
    );
    location
}

/// The `Range` header without a `bytes=` prefix.
fn range(resp: &reqwest::Response) -> String {
    header(resp, "Range")
        .trim_start_matches("bytes=")
        .to_string()
}

async fn patch(
    registry: &Registry,
    location: &str,
    token: &str,
    bytes: &[u8],
    content_range: Option<&str>,
) -> reqwest::Response {
    let mut req = registry
        .request(Method::PATCH, location, Some(token))
        .header("Content-Type", "application/octet-stream")
        .body(bytes.to_vec());
    if let Some(r) = content_range {
        req = req.header("Content-Range", r);
    }
    registry.send(req).await
}

async fn finish(
    registry: &Registry,
    location: &str,
    token: &str,
    digest: &str,
    bytes: &[u8],
) -> reqwest::Response {
    let req = registry
        .request(Method::PUT, location, Some(token))
        .query(&[("digest", digest)])
        .header("Content-Type", "application/octet-stream")
        .body(bytes.to_vec());
    registry.send(req).await
}

async fn blob_status(registry: &Registry, repo: &str, digest: &str, token: &str) -> StatusCode {
    registry
        .head(&format!("/v2/{repo}/blobs/{digest}"), Some(token))
        .await
        .status()
}

#[tokio::test]
async fn blobs_pull_with_headers_and_ranges() {
    let (_env, registry, token) = env_and_token(&["team/app"]).await;
    let blob = Content::random(1000);
    let resp = registry.post_blob("team/app", &blob, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(header(&resp, "Location").ends_with(&format!("/v2/team/app/blobs/{}", blob.digest)));
    assert_eq!(header(&resp, "Docker-Content-Digest"), blob.digest);

    let path = format!("/v2/team/app/blobs/{}", blob.digest);
    let resp = registry.get(&path, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "Docker-Content-Digest"), blob.digest);
    assert_eq!(header(&resp, "Content-Length"), "1000");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.bytes.as_slice());

    let resp = registry.head(&path, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "Content-Length"), "1000");
    assert_eq!(header(&resp, "Docker-Content-Digest"), blob.digest);

    for (asked, from, to) in [
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
    ] {
        let resp = registry
            .send(
                registry
                    .request(Method::GET, &path, Some(&token))
                    .header("Range", asked),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{asked}");
        assert_eq!(
            header(&resp, "Content-Range"),
            format!("bytes {from}-{to}/1000"),
            "{asked}"
        );
        assert_eq!(
            resp.bytes().await.unwrap().as_ref(),
            &blob.bytes[from..=to],
            "{asked}"
        );
    }
    let req = registry
        .request(Method::GET, &path, Some(&token))
        .header("Range", "bytes=1000-1100");
    expect_error(
        registry.send(req).await,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "RANGE_INVALID",
    )
    .await;

    let unknown = sha256(b"never pushed");
    let resp = registry
        .get(&format!("/v2/team/app/blobs/{unknown}"), Some(&token))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    assert_eq!(
        blob_status(&registry, "team/app", &unknown, &token).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn monolithic_upload_with_a_wrong_digest_leaves_nothing() {
    let (_env, registry, token) = env_and_token(&["team/app"]).await;
    let blob = Content::random(4096);
    let other = sha256(b"something else");
    let sha512 = format!("sha512:{}", hex::encode(sha2::Sha512::digest(&blob.bytes)));
    let cases = [
        ("wrong digest", other.clone()),
        ("wrong algorithm", sha512),
        ("unknown algorithm", format!("md5:{}", "0".repeat(32))),
        ("malformed", "sha256:xyz".to_string()),
        (
            "uppercase hex",
            blob.digest.to_uppercase().replace("SHA256", "sha256"),
        ),
    ];
    for (what, digest) in cases {
        let req = registry
            .request(Method::POST, "/v2/team/app/blobs/uploads/", Some(&token))
            .query(&[("digest", &digest)])
            .body(blob.bytes.clone());
        let resp = registry.send(req).await;
        assert!(resp.status().is_client_error(), "{what}: {}", resp.status());
        expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
        assert_eq!(
            blob_status(&registry, "team/app", &blob.digest, &token).await,
            StatusCode::NOT_FOUND,
            "{what}"
        );
    }
    assert_eq!(
        blob_status(&registry, "team/app", &other, &token).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn post_then_put_uploads_in_one_go() {
    let (_env, registry, token) = env_and_token(&["team/app"]).await;
    let blob = Content::random(3000);
    let location = start_upload(&registry, "team/app", &token).await;
    let resp = finish(&registry, &location, &token, &blob.digest, &blob.bytes).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(header(&resp, "Location").ends_with(&format!("/v2/team/app/blobs/{}", blob.digest)));
    assert_eq!(header(&resp, "Docker-Content-Digest"), blob.digest);
    let resp = registry
        .get(&format!("/v2/team/app/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.bytes.as_slice());

    // A PUT with a wrong digest fails and stores nothing under either digest.
    let location = start_upload(&registry, "team/app", &token).await;
    let fresh = Content::random(100);
    let wrong = sha256(b"not this");
    expect_error(
        finish(&registry, &location, &token, &wrong, &fresh.bytes).await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    assert_eq!(
        blob_status(&registry, "team/app", &fresh.digest, &token).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        blob_status(&registry, "team/app", &wrong, &token).await,
        StatusCode::NOT_FOUND
    );

    // A PUT without any digest is refused.
    let location = start_upload(&registry, "team/app", &token).await;
    let req = registry
        .request(Method::PUT, &location, Some(&token))
        .body(fresh.bytes.clone());
    let resp = registry.send(req).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn chunked_upload_enforces_order_and_reports_status() {
    let (_env, registry, token) = env_and_token(&["team/app"]).await;
    let blob = Content::random(300);
    let location = start_upload(&registry, "team/app", &token).await;

    let resp = patch(
        &registry,
        &location,
        &token,
        &blob.bytes[..100],
        Some("0-99"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(range(&resp), "0-99");
    let location = header(&resp, "Location");
    assert!(!location.is_empty());

    let resp = registry.get(&location, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(range(&resp), "0-99");
    assert!(header(&resp, "Location").contains("/v2/team/app/blobs/uploads/"));

    for (what, bad_range, bytes) in [
        ("gap", "200-299", &blob.bytes[200..]),
        ("overlap", "50-149", &blob.bytes[50..150]),
        ("restart", "0-99", &blob.bytes[..100]),
    ] {
        let resp = patch(&registry, &location, &token, bytes, Some(bad_range)).await;
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{what}");
        assert_eq!(
            range(&resp),
            "0-99",
            "{what}: the 416 tells the current range"
        );
        let resp = registry.get(&location, Some(&token)).await;
        assert_eq!(range(&resp), "0-99", "{what} changed the upload");
    }
    let resp = patch(
        &registry,
        &location,
        &token,
        &blob.bytes[100..200],
        Some("100-199"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(range(&resp), "0-199");
    let location = header(&resp, "Location");
    // Docker streams a chunk without Content-Range: it appends.
    let resp = patch(&registry, &location, &token, &blob.bytes[200..], None).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(range(&resp), "0-299");
    let location = header(&resp, "Location");
    let resp = finish(&registry, &location, &token, &blob.digest, &[]).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = registry
        .get(&format!("/v2/team/app/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.bytes.as_slice());
    // The finished session is gone.
    expect_error(
        registry.get(&location, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
}

#[tokio::test]
async fn chunk_with_a_bad_content_range_is_refused() {
    let (_env, registry, token) = env_and_token(&["team/app"]).await;
    let location = start_upload(&registry, "team/app", &token).await;
    let resp = patch(&registry, &location, &token, &[1; 10], Some("not-a-range")).await;
    assert_eq!(
        resp.status(),
        StatusCode::RANGE_NOT_SATISFIABLE,
        "malformed Content-Range"
    );
    // Content-Range announcing 100 bytes with a 50-byte body.
    let resp = patch(&registry, &location, &token, &[1; 50], Some("0-99")).await;
    let status = resp.status();
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert!(
        status.is_client_error()
            && ["BLOB_UPLOAD_INVALID", "SIZE_INVALID", "RANGE_INVALID"]
                .contains(&body["errors"][0]["code"].as_str().unwrap_or("")),
        "length mismatch: {status} {body}"
    );
    let resp = registry.get(&location, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(
        ["", "0-0"].contains(&range(&resp).as_str()),
        "refused chunks changed the upload: range {}",
        range(&resp)
    );
}

#[tokio::test]
async fn cancelled_and_foreign_upload_sessions_are_unknown() {
    let (_env, registry, token) = env_and_token(&["team/app", "team/other"]).await;
    let location = start_upload(&registry, "team/app", &token).await;
    let resp = patch(&registry, &location, &token, &[7; 64], Some("0-63")).await;
    let location = header(&resp, "Location");

    // The same session id under another repository (that the token may push to) is unknown there.
    let foreign = location.replace("/v2/team/app/", "/v2/team/other/");
    expect_error(
        registry.get(&foreign, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let resp = patch(&registry, &foreign, &token, &[7; 64], Some("64-127")).await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let digest = sha256(&[7; 64]);
    expect_error(
        finish(&registry, &foreign, &token, &digest, &[]).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let resp = registry
        .send(registry.request(Method::DELETE, &foreign, Some(&token)))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    assert_eq!(
        blob_status(&registry, "team/other", &digest, &token).await,
        StatusCode::NOT_FOUND
    );
    // …and the real session is untouched.
    assert_eq!(range(&registry.get(&location, Some(&token)).await), "0-63");

    let resp = registry
        .send(registry.request(Method::DELETE, &location, Some(&token)))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    expect_error(
        registry.get(&location, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    expect_error(
        finish(&registry, &location, &token, &digest, &[]).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    assert_eq!(
        blob_status(&registry, "team/app", &digest, &token).await,
        StatusCode::NOT_FOUND
    );

    let made_up = "/v2/team/app/blobs/uploads/00000000-0000-4000-8000-000000000000";
    expect_error(
        registry.get(made_up, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let resp = patch(
        &registry,
        "/v2/team/app/blobs/uploads/not-a-session",
        &token,
        &[1],
        None,
    )
    .await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn cross_repository_mount_and_its_fallback() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env
        .token(
            "admin",
            &[
                "repository:team/src:pull,push",
                "repository:team/dst:pull,push",
                "repository:team/auto:pull,push",
            ],
        )
        .await;
    let blob = Content::random(2048);
    registry.push_blob("team/src", &blob, Some(&token)).await;

    let mount = |repo: &str, from: Option<&str>, digest: &str, token: &str| {
        let mut query = vec![("mount", digest.to_string())];
        if let Some(from) = from {
            query.push(("from", from.to_string()));
        }
        registry
            .request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                Some(token),
            )
            .query(&query)
    };
    let resp = registry
        .send(mount("team/dst", Some("team/src"), &blob.digest, &token))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(header(&resp, "Location").ends_with(&format!("/v2/team/dst/blobs/{}", blob.digest)));
    assert_eq!(header(&resp, "Docker-Content-Digest"), blob.digest);
    let resp = registry
        .get(&format!("/v2/team/dst/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), blob.bytes.as_slice());

    // Unknown digest: a normal upload session instead, which works.
    let missing = Content::random(10);
    let resp = registry
        .send(mount("team/dst", Some("team/src"), &missing.digest, &token))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = header(&resp, "Location");
    assert_eq!(
        finish(
            &registry,
            &location,
            &token,
            &missing.digest,
            &missing.bytes
        )
        .await
        .status(),
        StatusCode::CREATED
    );

    // No pull right on the source: no mount, a session, and the blob is not linked.
    let narrow = env
        .token("alice", &["repository:alice/mine:pull,push"])
        .await;
    let resp = registry
        .send(mount("alice/mine", Some("team/src"), &blob.digest, &narrow))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::ACCEPTED,
        "mount without pull on the source must fall back"
    );
    assert_eq!(
        blob_status(&registry, "alice/mine", &blob.digest, &narrow).await,
        StatusCode::NOT_FOUND
    );

    // `from` omitted and the blob known: mounted automatically.
    let resp = registry
        .send(mount("team/auto", None, &blob.digest, &token))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "automatic mount");
    assert_eq!(
        blob_status(&registry, "team/auto", &blob.digest, &token).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn deleting_a_blob_unlinks_it_from_one_repository_only() {
    let (_env, registry, token) = env_and_token(&["team/a", "team/b"]).await;
    let blob = Content::random(512);
    registry.push_blob("team/a", &blob, Some(&token)).await;
    registry.push_blob("team/b", &blob, Some(&token)).await;
    let path = format!("/v2/team/a/blobs/{}", blob.digest);
    let resp = registry
        .send(registry.request(Method::DELETE, &path, Some(&token)))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    expect_error(
        registry.get(&path, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
    )
    .await;
    let resp = registry
        .send(registry.request(Method::DELETE, &path, Some(&token)))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    let resp = registry
        .get(&format!("/v2/team/b/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        blob.bytes.as_slice(),
        "team/b still has it"
    );
}
