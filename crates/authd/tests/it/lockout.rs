//! The login lockout under concurrency, against the real binary (whose `/metrics` counts only
//! this test's password checks): a burst of guesses for one account runs at most
//! `account_failures` checks, and the right password sent in the middle of it is refused.

use crate::harness::{raw, raw_get, read_raw, send_raw, yaml, STANDARD_ACL};
use crate::process::{sample, serve};

/// `throttle.account_failures` of this test.
const LIMIT: usize = 10;
/// Guesses sent before the right password, and after it.
const BEFORE: usize = 49;
const AFTER: usize = 50;

#[tokio::test]
async fn a_burst_of_guesses_runs_at_most_the_limit_of_checks() {
    // A real cost (not the harness's 4), so guesses are still being checked when the right
    // password arrives, as on a server under attack.
    let hash = authd::authn::hash_password("alice-pass", 10).unwrap_or_else(|e| panic!("{e}"));
    let throttle = format!(
        "throttle: {{window: 600, account_failures: {LIMIT}, ip_failures: 100000, lockout: 600}}"
    );
    let config: String = yaml(STANDARD_ACL, &throttle)
        .lines()
        .map(|l| match l.starts_with("  alice: ") {
            true => format!("  alice: {{password: \"{hash}\"}}\n"),
            false => format!("{l}\n"),
        })
        .collect();
    let running = serve(&config);
    let url = running.url.as_str();
    let scope = "repository:alice/app:pull";

    let right = raw_get("alice", "alice-pass", scope);
    let mut guesses = Vec::new();
    for i in 0..BEFORE {
        let stream = send_raw(url, &raw_get("alice", &format!("guess-{i}"), scope)).await;
        guesses.push(tokio::spawn(read_raw(stream)));
    }
    // Once the first guess is answered, the server has read every guess sent before it (their
    // checks are under way or waiting for a slot), so the right password comes after them, as
    // at position 50 of a burst.
    let first = guesses.remove(0).await.map(|(status, _)| status);
    let mut statuses = vec![first.unwrap_or(0)];
    let right_answer = tokio::spawn(read_raw(send_raw(url, &right).await));
    for i in BEFORE..BEFORE + AFTER {
        let stream = send_raw(url, &raw_get("alice", &format!("guess-{i}"), scope)).await;
        guesses.push(tokio::spawn(read_raw(stream)));
    }
    for g in guesses {
        statuses.push(g.await.map(|(status, _)| status).unwrap_or(0));
    }
    let (status, body) = right_answer.await.unwrap_or_else(|e| panic!("{e}"));
    let checks = sample(url, "authd_bcrypt_seconds_count").await;
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (wrong, locked),
        (LIMIT, BEFORE + AFTER - LIMIT),
        "guesses answered 401 and 429: {statuses:?}"
    );
    assert_eq!(
        checks,
        Some(LIMIT as f64),
        "password checks run for {} guesses",
        BEFORE + AFTER
    );
    assert_eq!(
        status, 429,
        "the right password, sent while the guesses that lock the account were being checked: {body}"
    );
    assert_eq!(raw(url, &right).await.0, 429, "the account stays locked");
    let bob = raw(url, &raw_get("bob", "bob-pass", scope)).await;
    assert_eq!(bob.0, 200, "another account is not locked: {}", bob.1);
}
