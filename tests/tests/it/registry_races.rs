//! Concurrent requests on one upload session: exactly one chunk at an offset wins, exactly one
//! PUT finishes the upload, and the stored blob is whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::Content;
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_client_error, header, Registry};
use berth_tests::uploads::upload_range;
use reqwest::StatusCode;

/// Identical requests raced against one session.
const RACERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_chunks_and_puts_on_one_session_apply_once() {
    let env = TestEnv::standard().await;
    let token = env.admin_token(&["team/app"]).await;
    // Losing chunks are refused before their body is read; a fresh connection per request keeps
    // this test about the session (connection reuse after that is registry_http's subject).
    let registry = Registry::unpooled(&env.registryd.url());
    let blob = Content::random(2 * 1024 * 1024);
    let half = blob.bytes.len() / 2;
    let location = registry.start_upload("team/app", &token).await;

    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (registry, token, location) = (registry.clone(), token.clone(), location.clone());
            let chunk = blob.bytes[..half].to_vec();
            let range = format!("0-{}", half - 1);
            tokio::spawn(async move {
                registry
                    .patch_chunk(&location, &token, &chunk, Some(&range))
                    .await
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for racer in racers {
        let resp = racer.await.unwrap();
        if resp.status() == StatusCode::ACCEPTED {
            accepted.push(header(&resp, "Location"));
        } else {
            expect_client_error(resp, "a losing chunk").await;
        }
    }
    assert_eq!(
        accepted.len(),
        1,
        "the same offset was written {} times",
        accepted.len()
    );
    let location = accepted.remove(0);
    let resp = registry.get(&location, Some(&token)).await;
    assert_eq!(
        upload_range(&resp),
        format!("0-{}", half - 1),
        "the session holds one copy of the chunk"
    );

    let resp = registry
        .patch_chunk(
            &location,
            &token,
            &blob.bytes[half..],
            Some(&format!("{half}-{}", blob.bytes.len() - 1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = header(&resp, "Location");
    let finishers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (registry, token, location, digest) = (
                registry.clone(),
                token.clone(),
                location.clone(),
                blob.digest.clone(),
            );
            tokio::spawn(async move {
                registry
                    .finish_upload(&location, &token, &digest, &[])
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for finisher in finishers {
        let resp = finisher.await.unwrap();
        if resp.status() == StatusCode::CREATED {
            created += 1;
        } else {
            expect_client_error(resp, "a losing PUT").await;
        }
    }
    assert_eq!(created, 1, "one upload finished {created} times");
    registry.assert_blob("team/app", &blob, &token).await;
}
