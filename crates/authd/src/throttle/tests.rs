//! Reservations, settlements and lockouts at chosen instants, and the waiting of concurrent
//! attempts.

use super::*;

const LIMITS: RawThrottle = RawThrottle {
    window: 60,
    account_failures: 3,
    ip_failures: 5,
    lockout: 30,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

fn keys(limits: &RawThrottle, account: &str, address: &str) -> Vec<(Key, u32)> {
    vec![
        (Key::Account(account.to_owned()), limits.account_failures),
        (Key::Ip(ip(address)), limits.ip_failures),
    ]
}

/// One whole attempt at `now` that fails.
fn fail_at(t: &Throttle, now: Instant, limits: &RawThrottle, account: &str, address: &str) {
    let reserved = t.try_reserve_at(now, limits, &keys(limits, account, address));
    match reserved {
        Ok(Some(k)) => t.settle_at(now, limits, &k, true),
        other => panic!("{account}@{address}: no slot: {other:?}"),
    }
}

fn free(t: &Throttle, now: Instant, account: &str, address: &str) -> bool {
    t.try_reserve_at(now, &LIMITS, &keys(&LIMITS, account, address))
        .is_ok_and(|slot| {
            slot.is_some_and(|k| {
                t.settle_at(now, &LIMITS, &k, false);
                true
            })
        })
}

#[test]
fn locks_an_account_after_the_limit_until_the_lockout_ends() {
    let t = Throttle::default();
    let start = Instant::now();
    for i in 0..3 {
        assert!(free(&t, start, "alice", "10.0.0.9"));
        fail_at(&t, start, &LIMITS, "alice", &format!("10.0.0.{i}"));
    }
    let later = start + Duration::from_secs(10);
    assert!(matches!(
        t.try_reserve_at(later, &LIMITS, &keys(&LIMITS, "alice", "10.0.0.9")),
        Err(Error::Throttled { retry_after: 20 })
    ));
    assert!(free(&t, later, "bob", "10.0.0.9"));
    assert!(free(
        &t,
        start + Duration::from_secs(30),
        "alice",
        "10.0.0.9"
    ));
}

#[test]
fn concurrent_attempts_share_the_limit_and_a_success_gives_its_slot_back() {
    let t = Throttle::default();
    let now = Instant::now();
    let alice = keys(&LIMITS, "alice", "10.0.0.1");
    let reserve = || t.try_reserve_at(now, &LIMITS, &alice);
    let held: Vec<_> = (0..3).filter_map(|_| reserve().ok().flatten()).collect();
    assert_eq!(held.len(), 3);
    assert!(matches!(reserve(), Ok(None)), "a 4th check while 3 run");
    assert!(free(&t, now, "bob", "10.0.0.2"), "other accounts go on");
    t.settle_at(now, &LIMITS, &held[0], false);
    let fourth = reserve().ok().flatten();
    assert!(fourth.is_some(), "a success frees its slot");
    for k in held[1..].iter().chain(&fourth) {
        t.settle_at(now, &LIMITS, k, true);
    }
    assert!(matches!(reserve(), Err(Error::Throttled { .. })));
}

#[tokio::test]
async fn a_waiting_attempt_is_refused_once_the_running_ones_lock_the_account() {
    let t = Throttle::default();
    let at = ip("10.0.0.1");
    let mut running = Vec::new();
    for _ in 0..3 {
        running.push(t.reserve(&LIMITS, Some("alice"), at).await);
    }
    let mut right_password = pin!(t.reserve(&LIMITS, Some("alice"), at));
    tokio::select! {
        biased;
        _ = &mut right_password => panic!("a 4th check ran while 3 were under way"),
        () = std::future::ready(()) => {}
    }
    for attempt in running {
        attempt
            .map(Attempt::failed)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(matches!(
        right_password.await,
        Err(Error::Throttled { retry_after: 30 })
    ));
    assert!(t.check(Some("alice"), ip("10.9.9.9")).is_err());
    assert!(t.check(Some("bob"), ip("10.9.9.9")).is_ok());
}

#[tokio::test]
async fn a_waiting_attempt_runs_once_a_slot_is_given_back_and_drops_count() {
    let t = Throttle::default();
    let at = ip("10.0.0.1");
    let first = t.reserve(&LIMITS, Some("alice"), at).await;
    let second = t.reserve(&LIMITS, Some("alice"), at).await;
    let third = t.reserve(&LIMITS, Some("alice"), at).await;
    let mut waiting = pin!(t.reserve(&LIMITS, Some("alice"), at));
    tokio::select! {
        biased;
        _ = &mut waiting => panic!("ran without a slot"),
        () = std::future::ready(()) => {}
    }
    first
        .map(Attempt::succeeded)
        .unwrap_or_else(|e| panic!("{e}"));
    let fourth = waiting.await;
    assert!(fourth.is_ok());
    // Two abandoned, one dropped mid-check (counts), one failed (counts): not locked.
    second
        .map(Attempt::abandoned)
        .unwrap_or_else(|e| panic!("{e}"));
    drop(third);
    fourth
        .map(Attempt::failed)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(t.check(Some("alice"), at).is_ok());
    let last = t.reserve(&LIMITS, Some("alice"), at).await;
    last.map(Attempt::failed).unwrap_or_else(|e| panic!("{e}"));
    assert!(t.check(Some("alice"), at).is_err(), "3 failures lock");
}

#[test]
fn locks_an_address_and_forgets_old_failures() {
    let t = Throttle::default();
    let start = Instant::now();
    for i in 0..5 {
        fail_at(&t, start, &LIMITS, &format!("user{i}"), "::1");
    }
    assert!(!free(&t, start, "someone", "::1"));
    assert!(free(&t, start, "someone", "::2"));

    let t = Throttle::default();
    fail_at(&t, start, &LIMITS, "carol", "10.1.1.1");
    fail_at(&t, start, &LIMITS, "carol", "10.1.1.1");
    let later = start + Duration::from_secs(61);
    fail_at(&t, later, &LIMITS, "carol", "10.1.1.1");
    fail_at(&t, later, &LIMITS, "carol", "10.1.1.1");
    assert!(
        free(&t, later, "carol", "10.1.1.2"),
        "2 failures in this window"
    );

    let off = RawThrottle {
        account_failures: 0,
        ip_failures: 0,
        ..LIMITS
    };
    for _ in 0..10 {
        fail_at(&t, start, &off, "dave", "10.1.1.3");
    }
    assert!(free(&t, start, "dave", "10.1.1.3"));
}
