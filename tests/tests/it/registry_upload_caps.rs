//! Caps on open upload sessions (`storage.uploadlimits`): per repository and per token subject,
//! 429 `TOOMANYREQUESTS` past them, a slot freed by every session that ends, no burst of
//! concurrent POSTs past a cap, and the count kept across a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::Content;
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_error, header, Registry};
use berth_tests::tokens::{claims, repository_access, sign};
use reqwest::{Method, StatusCode};

/// Sets the caps in the environment's `registry.yaml` and restarts registryd on it.
async fn set_upload_limits(env: &mut TestEnv, perrepository: usize, persubject: usize) {
    let path = env.dir.path().join("registry.yaml");
    let mut yaml: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    yaml["storage"]["uploadlimits"] = serde_yaml::to_value(serde_json::json!({
        "perrepository": perrepository, "persubject": persubject,
    }))
    .unwrap();
    std::fs::write(&path, serde_yaml::to_string(&yaml).unwrap()).unwrap();
    env.registryd.restart().await;
}

/// A token for `subject` with pull and push on each of `repos`.
fn token(env: &TestEnv, subject: &str, repos: &[&str]) -> String {
    let access = repos
        .iter()
        .map(|r| repository_access(r, &["pull", "push"]))
        .collect();
    sign(&env.certs, &claims(subject, access))
}

/// `POST /v2/<repo>/blobs/uploads/`, the raw response.
async fn post(registry: &Registry, repo: &str, token: &str) -> reqwest::Response {
    let path = format!("/v2/{repo}/blobs/uploads/");
    registry
        .send(registry.request(Method::POST, &path, Some(token)))
        .await
}

async fn refused(registry: &Registry, repo: &str, token: &str) {
    let resp = post(registry, repo, token).await;
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
}

#[tokio::test]
async fn sessions_are_capped_per_repository_and_subject_until_one_ends() {
    let mut env = TestEnv::standard().await;
    set_upload_limits(&mut env, 4, 6).await;
    let registry = env.registry();
    let dave = token(&env, "dave", &["dave/a", "dave/b"]);
    let erin = token(&env, "erin", &["dave/a", "dave/c"]);

    let mut in_a = Vec::new();
    for _ in 0..4 {
        in_a.push(registry.start_upload("dave/a", &dave).await);
    }
    refused(&registry, "dave/a", &dave).await;
    refused(&registry, "dave/a", &erin).await;
    // Another repository takes dave's last two slots, then his own cap holds.
    let b1 = registry.start_upload("dave/b", &dave).await;
    registry.start_upload("dave/b", &dave).await;
    refused(&registry, "dave/b", &dave).await;
    // Another subject in another repository is unaffected.
    registry.start_upload("dave/c", &erin).await;

    // A cancelled session frees its slot in its repository and for its subject.
    let resp = registry
        .send(registry.request(Method::DELETE, &in_a.pop().unwrap(), Some(&dave)))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    registry.start_upload("dave/a", &erin).await;
    refused(&registry, "dave/a", &dave).await;
    registry.start_upload("dave/b", &dave).await;
    refused(&registry, "dave/b", &dave).await;

    // So does a finished one.
    let blob = Content::random(64);
    let resp = registry
        .finish_upload(&b1, &dave, &blob.digest, &blob.bytes)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let again = registry.start_upload("dave/b", &dave).await;
    refused(&registry, "dave/b", &dave).await;

    // A failed finish (wrong digest) ends the session too.
    let resp = registry
        .finish_upload(&again, &dave, &blob.digest, b"no")
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    registry.start_upload("dave/b", &dave).await;

    // The open sessions are remembered across a restart (a clean stop: a session's row is
    // committed after its 202, so a crash may lose sessions that never received a chunk).
    assert!(env.registryd.daemon.terminate().await, "clean stop");
    env.registryd.restart().await;
    let registry = env.registry();
    refused(&registry, "dave/a", &erin).await;
    refused(&registry, "dave/b", &dave).await;
    let resp = registry
        .send(registry.request(Method::DELETE, &in_a.pop().unwrap(), Some(&dave)))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    registry.start_upload("dave/a", &erin).await;
}

#[tokio::test]
async fn a_burst_of_concurrent_posts_cannot_pass_the_cap() {
    let mut env = TestEnv::standard().await;
    set_upload_limits(&mut env, 5, 1000).await;
    let registry = env.registry();
    let dave = token(&env, "dave", &["dave/burst"]);
    let burst = (0..40).map(|_| post(&registry, "dave/burst", &dave));
    let answers = futures_util::future::join_all(burst).await;
    let mut opened = Vec::new();
    for resp in answers {
        match resp.status() {
            StatusCode::ACCEPTED => opened.push(header(&resp, "Location")),
            _ => {
                expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;
            }
        }
    }
    assert_eq!(opened.len(), 5, "sessions opened by the burst");
    for location in &opened {
        let resp = registry
            .send(registry.request(Method::DELETE, location, Some(&dave)))
            .await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    let burst = (0..10).map(|_| post(&registry, "dave/burst", &dave));
    let accepted = futures_util::future::join_all(burst)
        .await
        .iter()
        .filter(|r| r.status() == StatusCode::ACCEPTED)
        .count();
    assert_eq!(accepted, 5, "every freed slot is usable again");
}
