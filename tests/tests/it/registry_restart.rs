//! Restarts: an upload resumes after registryd restarts, a chunk cut by kill -9 resumes from
//! the range the registry reports, and SIGTERM stops registryd cleanly with its data (upload
//! sessions opened just before included) kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::bodies::stalling_body;
use berth_tests::content::{sha256, Content, Image};
use berth_tests::env::TestEnv;
use berth_tests::registry::header;
use berth_tests::uploads::upload_range;
use reqwest::{Method, StatusCode};

/// `Location` without scheme and host (the port changes across a restart).
fn path_of(location: &str) -> String {
    match location.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or_else(String::new, |i| rest[i..].to_string()),
        None => location.to_string(),
    }
}

#[tokio::test]
async fn an_upload_resumes_after_a_restart() {
    let mut env = TestEnv::standard().await;
    let token = env.admin_token(&["team/app"]).await;
    let blob = Content::random(200_000);
    let registry = env.registry();
    let location = registry.start_upload("team/app", &token).await;
    let resp = registry
        .patch_chunk(&location, &token, &blob.bytes[..120_000], Some("0-119999"))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = path_of(&header(&resp, "Location"));

    env.registryd.restart().await;
    let registry = env.registry();
    let resp = registry.get(&location, Some(&token)).await;
    assert_eq!(
        resp.status(),
        StatusCode::NO_CONTENT,
        "the session survived the restart"
    );
    assert_eq!(upload_range(&resp), "0-119999");
    let resp = registry
        .patch_chunk(
            &location,
            &token,
            &blob.bytes[120_000..],
            Some("120000-199999"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = path_of(&header(&resp, "Location"));
    let resp = registry
        .finish_upload(&location, &token, &blob.digest, &[])
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    registry.assert_blob("team/app", &blob, &token).await;
}

#[tokio::test]
async fn sigterm_stops_registryd_cleanly_and_keeps_its_data() {
    let mut env = TestEnv::standard().await;
    let token = env.admin_token(&["team/app"]).await;
    let image = Image::random(2);
    env.registry()
        .push_image("team/app", "v1", &image, Some(&token))
        .await;
    // Sessions opened just before the signal: their rows are committed on the way out.
    let mut sessions = vec![];
    for _ in 0..20 {
        let location = env.registry().start_upload("team/app", &token).await;
        sessions.push(path_of(&location));
    }
    assert!(
        env.registryd.daemon.terminate().await,
        "registryd did not exit successfully on SIGTERM"
    );
    env.registryd.restart().await;
    env.registry()
        .assert_serves("team/app", "v1", &image.manifest, &token)
        .await;
    for session in sessions {
        let resp = env.registry().get(&session, Some(&token)).await;
        assert_eq!(
            resp.status(),
            StatusCode::NO_CONTENT,
            "session {session} was forgotten"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_cut_by_kill_9_resumes_from_the_reported_range() {
    cut_chunk_then_resume(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_with_content_range_cut_by_kill_9_resumes_from_the_reported_range() {
    cut_chunk_then_resume(true).await;
}

/// Sends 1 MiB, then a second chunk (announced with `Content-Range` and `Content-Length` when
/// `announced`) that is cut by kill -9 after 6 of its 11 MiB; after the restart the upload goes on
/// from the range the registry reports and must produce the right blob.
async fn cut_chunk_then_resume(announced: bool) {
    let mut env = TestEnv::standard().await;
    let token = env.admin_token(&["team/app"]).await;
    let blob = Content::random(12 * 1024 * 1024);
    let registry = env.registry();
    let location = registry.start_upload("team/app", &token).await;
    let first = 1024 * 1024;
    let resp = registry
        .patch_chunk(
            &location,
            &token,
            &blob.bytes[..first],
            Some(&format!("0-{}", first - 1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = path_of(&header(&resp, "Location"));

    // The second chunk is cut after 6 MiB of its 11: kill -9 while the server is reading it.
    let (sent, was_sent) = tokio::sync::oneshot::channel();
    let cut = first + 6 * 1024 * 1024;
    let body = stalling_body(blob.bytes[first..cut].to_vec(), sent);
    let mut req = registry
        .request(Method::PATCH, &location, Some(&token))
        .header("Content-Type", "application/octet-stream")
        .body(body);
    if announced {
        req = req
            .header("Content-Range", format!("{first}-{}", blob.bytes.len() - 1))
            .header("Content-Length", (blob.bytes.len() - first).to_string());
    }
    let pending = tokio::spawn(req.send());
    was_sent.await.unwrap();
    env.registryd.daemon.kill9();
    assert!(
        pending.await.unwrap().is_err(),
        "the cut request cannot have completed"
    );

    env.registryd.restart().await;
    let registry = env.registry();
    let resp = registry.get(&location, Some(&token)).await;
    assert_eq!(
        resp.status(),
        StatusCode::NO_CONTENT,
        "the session survived the crash"
    );
    let range = upload_range(&resp);
    let end: usize = range
        .strip_prefix("0-")
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("status Range {range}"));
    assert!(
        (first - 1..cut).contains(&end),
        "Range {range} outside what was sent"
    );
    eprintln!("after the crash the upload is at {range}");
    let location = path_of(&header(&resp, "Location"));
    let resp = registry
        .patch_chunk(
            &location,
            &token,
            &blob.bytes[end + 1..],
            Some(&format!("{}-{}", end + 1, blob.bytes.len() - 1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = path_of(&header(&resp, "Location"));
    let resp = registry
        .finish_upload(&location, &token, &blob.digest, &[])
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "resumed upload completes with the right digest"
    );
    let resp = registry
        .get(&format!("/v2/team/app/blobs/{}", blob.digest), Some(&token))
        .await;
    assert_eq!(sha256(&resp.bytes().await.unwrap()), blob.digest);
}
