//! Uploads in steps: POST+PUT, chunked PATCH with `Content-Range` (order enforced, 416 with the
//! current range), status, cancel, and sessions used from another repository.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{sha256, Content};
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_error, header, Registry};
use berth_tests::uploads::upload_range;
use reqwest::{Method, StatusCode};

async fn env_and_token(repos: &[&str]) -> (TestEnv, Registry, String) {
    let env = TestEnv::standard().await;
    let token = env.admin_token(repos).await;
    let registry = env.registry();
    (env, registry, token)
}

#[tokio::test]
async fn post_then_put_uploads_in_one_go() {
    let (_env, registry, token) = env_and_token(&["team/app"]).await;
    let blob = Content::random(3000);
    let location = registry.start_upload("team/app", &token).await;
    let resp = registry
        .finish_upload(&location, &token, &blob.digest, &blob.bytes)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(header(&resp, "Location").ends_with(&format!("/v2/team/app/blobs/{}", blob.digest)));
    assert_eq!(header(&resp, "Docker-Content-Digest"), blob.digest);
    registry.assert_blob("team/app", &blob, &token).await;

    // A PUT with a wrong digest fails and stores nothing under either digest.
    let location = registry.start_upload("team/app", &token).await;
    let fresh = Content::random(100);
    let wrong = sha256(b"not this");
    expect_error(
        registry
            .finish_upload(&location, &token, &wrong, &fresh.bytes)
            .await,
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
    )
    .await;
    assert_eq!(
        registry
            .blob_status("team/app", &fresh.digest, Some(&token))
            .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        registry.blob_status("team/app", &wrong, Some(&token)).await,
        StatusCode::NOT_FOUND
    );

    // A PUT without any digest is refused.
    let location = registry.start_upload("team/app", &token).await;
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
    let location = registry.start_upload("team/app", &token).await;

    let resp = registry
        .patch_chunk(&location, &token, &blob.bytes[..100], Some("0-99"))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(upload_range(&resp), "0-99");
    let location = header(&resp, "Location");
    assert!(!location.is_empty());

    let resp = registry.get(&location, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(upload_range(&resp), "0-99");
    assert!(header(&resp, "Location").contains("/v2/team/app/blobs/uploads/"));

    for (what, bad_range, bytes) in [
        ("gap", "200-299", &blob.bytes[200..]),
        ("overlap", "50-149", &blob.bytes[50..150]),
        ("restart", "0-99", &blob.bytes[..100]),
    ] {
        let resp = registry
            .patch_chunk(&location, &token, bytes, Some(bad_range))
            .await;
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{what}");
        assert_eq!(
            upload_range(&resp),
            "0-99",
            "{what}: the 416 tells the current range"
        );
        let resp = registry.get(&location, Some(&token)).await;
        assert_eq!(upload_range(&resp), "0-99", "{what} changed the upload");
    }
    let resp = registry
        .patch_chunk(&location, &token, &blob.bytes[100..200], Some("100-199"))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(upload_range(&resp), "0-199");
    let location = header(&resp, "Location");
    // Docker streams a chunk without Content-Range: it appends.
    let resp = registry
        .patch_chunk(&location, &token, &blob.bytes[200..], None)
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(upload_range(&resp), "0-299");
    let location = header(&resp, "Location");
    let resp = registry
        .finish_upload(&location, &token, &blob.digest, &[])
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    registry.assert_blob("team/app", &blob, &token).await;
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
    let location = registry.start_upload("team/app", &token).await;
    let resp = registry
        .patch_chunk(&location, &token, &[1; 10], Some("not-a-range"))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::RANGE_NOT_SATISFIABLE,
        "malformed Content-Range"
    );
    // Content-Range announcing 100 bytes with a 50-byte body.
    let resp = registry
        .patch_chunk(&location, &token, &[1; 50], Some("0-99"))
        .await;
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
        ["", "0-0"].contains(&upload_range(&resp).as_str()),
        "refused chunks changed the upload: range {}",
        upload_range(&resp)
    );
}

#[tokio::test]
async fn cancelled_and_foreign_upload_sessions_are_unknown() {
    let (_env, registry, token) = env_and_token(&["team/app", "team/other"]).await;
    let location = registry.start_upload("team/app", &token).await;
    let resp = registry
        .patch_chunk(&location, &token, &[7; 64], Some("0-63"))
        .await;
    let location = header(&resp, "Location");

    // The same session id under another repository (that the token may push to) is unknown there.
    let foreign = location.replace("/v2/team/app/", "/v2/team/other/");
    expect_error(
        registry.get(&foreign, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let resp = registry
        .patch_chunk(&foreign, &token, &[7; 64], Some("64-127"))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let digest = sha256(&[7; 64]);
    expect_error(
        registry.finish_upload(&foreign, &token, &digest, &[]).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let resp = registry
        .send(registry.request(Method::DELETE, &foreign, Some(&token)))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    assert_eq!(
        registry
            .blob_status("team/other", &digest, Some(&token))
            .await,
        StatusCode::NOT_FOUND
    );
    // …and the real session is untouched.
    assert_eq!(
        upload_range(&registry.get(&location, Some(&token)).await),
        "0-63"
    );

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
        registry
            .finish_upload(&location, &token, &digest, &[])
            .await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    assert_eq!(
        registry
            .blob_status("team/app", &digest, Some(&token))
            .await,
        StatusCode::NOT_FOUND
    );

    let made_up = "/v2/team/app/blobs/uploads/00000000-0000-4000-8000-000000000000";
    expect_error(
        registry.get(made_up, Some(&token)).await,
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
    )
    .await;
    let resp = registry
        .patch_chunk(
            "/v2/team/app/blobs/uploads/not-a-session",
            &token,
            &[1],
            None,
        )
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

/// Attempts to resume an abandoned upload (the abandoned request may still be finishing on the
/// server when the client asks for the status).
const RESUME_ATTEMPTS: usize = 20;

#[tokio::test]
async fn a_chunk_the_client_abandons_leaves_a_consistent_session() {
    let (env, registry, token) = env_and_token(&["team/app"]).await;
    let blob = Content::random(8 * 1024 * 1024);
    let location = registry.start_upload("team/app", &token).await;
    let cut = 3 * 1024 * 1024;
    let req = registry
        .request(Method::PATCH, &location, Some(&token))
        .header("Content-Type", "application/octet-stream")
        .body(berth_tests::bodies::broken_body(blob.bytes[..cut].to_vec()));
    assert!(
        req.send().await.is_err(),
        "the abandoned request cannot succeed"
    );

    // Resume from whatever range the registry reports. A refused chunk is answered before its
    // body is read and the connection dropped (see registry_http), so a fresh connection per
    // request, and a transport error counts as a refusal.
    let fresh = Registry::unpooled(&env.registryd.url());
    let mut finished_at = None;
    for _ in 0..RESUME_ATTEMPTS {
        let resp = fresh.get(&location, Some(&token)).await;
        assert_eq!(
            resp.status(),
            StatusCode::NO_CONTENT,
            "the session is still there"
        );
        let range = upload_range(&resp);
        let next = match range.as_str() {
            "" | "0-0" => 0,
            r => r
                .strip_prefix("0-")
                .and_then(|e| e.parse::<usize>().ok())
                .map(|e| e + 1)
                .unwrap_or_else(|| panic!("Range {r}")),
        };
        assert!(next <= cut, "Range {range} beyond what was sent");
        let range_header = format!("{next}-{}", blob.bytes.len() - 1);
        let req = fresh
            .request(Method::PATCH, &header(&resp, "Location"), Some(&token))
            .header("Content-Range", range_header)
            .body(blob.bytes[next..].to_vec());
        if let Ok(resp) = req.send().await {
            if resp.status() == StatusCode::ACCEPTED {
                finished_at = Some(header(&resp, "Location"));
                break;
            }
            assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        }
    }
    let location = finished_at.expect("the upload could be resumed");
    let resp = fresh
        .finish_upload(&location, &token, &blob.digest, &[])
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "the resumed upload hashes right"
    );
    let resp = fresh
        .get(&format!("/v2/team/app/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(sha256(&resp.bytes().await.unwrap()), blob.digest);
}
