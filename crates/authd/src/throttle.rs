//! Lockout after repeated authentication failures, per account and per client address: once
//! the limit is reached within the window, requests get 429 with `Retry-After` until the
//! lockout ends, before any password is looked at (so a right password is never answered
//! as a wrong one). Counters survive reloads; the limits come from the current config.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::raw::RawThrottle;
use crate::error::Error;

/// Upper bound on tracked accounts and addresses.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// Failure counters. A std `Mutex`: it is never held across an `.await`.
#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Throttle {
    /// Refuses when the account or the address is locked.
    ///
    /// # Errors
    /// [`Error::Throttled`] with the seconds left.
    pub fn check(&self, account: Option<&str>, ip: IpAddr) -> Result<(), Error> {
        self.check_at(Instant::now(), account, ip)
    }

    /// Counts a failed authentication.
    pub fn failure(&self, limits: &RawThrottle, account: Option<&str>, ip: IpAddr) {
        self.failure_at(Instant::now(), limits, account, ip);
    }

    /// Forgets the failures of an account that just logged in.
    pub fn success(&self, account: &str) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(&Key::Account(account.to_owned()));
        }
    }

    fn check_at(&self, now: Instant, account: Option<&str>, ip: IpAddr) -> Result<(), Error> {
        let Ok(map) = self.entries.lock() else {
            return Ok(());
        };
        let keys = account
            .map(|a| Key::Account(a.to_owned()))
            .into_iter()
            .chain([Key::Ip(ip)]);
        let left = keys
            .filter_map(|k| map.get(&k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match left {
            Some(d) => Err(Error::Throttled {
                retry_after: d.as_secs() + u64::from(d.subsec_nanos() > 0),
            }),
            None => Ok(()),
        }
    }

    fn failure_at(&self, now: Instant, limits: &RawThrottle, account: Option<&str>, ip: IpAddr) {
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        let window = Duration::from_secs(limits.window);
        let lockout = Duration::from_secs(limits.lockout);
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, e| {
                e.locked_until.is_some_and(|u| u > now) || now - e.window_start < window
            });
        }
        let targets = account
            .map(|a| (Key::Account(a.to_owned()), limits.account_failures))
            .into_iter()
            .chain([(Key::Ip(ip), limits.ip_failures)]);
        for (key, limit) in targets.filter(|(_, limit)| *limit > 0) {
            if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
                continue;
            }
            let e = map.entry(key).or_insert(Entry {
                failures: 0,
                window_start: now,
                locked_until: None,
            });
            if now - e.window_start >= window {
                *e = Entry {
                    failures: 0,
                    window_start: now,
                    locked_until: e.locked_until,
                };
            }
            e.failures += 1;
            if e.failures >= limit {
                e.locked_until = Some(now + lockout);
                e.failures = 0;
                e.window_start = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn locks_an_account_after_the_limit_until_the_lockout_ends() {
        let t = Throttle::default();
        let start = Instant::now();
        for i in 0..2 {
            t.failure_at(start, &LIMITS, Some("alice"), ip(&format!("10.0.0.{i}")));
            assert!(t.check_at(start, Some("alice"), ip("10.0.0.9")).is_ok());
        }
        t.failure_at(start, &LIMITS, Some("alice"), ip("10.0.0.3"));
        let later = start + Duration::from_secs(10);
        assert!(matches!(
            t.check_at(later, Some("alice"), ip("10.0.0.9")),
            Err(Error::Throttled { retry_after: 20 })
        ));
        assert!(t.check_at(later, Some("bob"), ip("10.0.0.9")).is_ok());
        assert!(t
            .check_at(
                start + Duration::from_secs(30),
                Some("alice"),
                ip("10.0.0.9")
            )
            .is_ok());
    }

    #[test]
    fn locks_an_address_and_forgets_old_failures() {
        let t = Throttle::default();
        let start = Instant::now();
        for i in 0..5 {
            t.failure_at(start, &LIMITS, Some(&format!("user{i}")), ip("::1"));
        }
        assert!(t.check_at(start, Some("someone"), ip("::1")).is_err());
        assert!(t.check_at(start, Some("someone"), ip("::2")).is_ok());

        let t = Throttle::default();
        t.failure_at(start, &LIMITS, Some("carol"), ip("10.1.1.1"));
        t.failure_at(start, &LIMITS, Some("carol"), ip("10.1.1.1"));
        t.failure_at(
            start + Duration::from_secs(61),
            &LIMITS,
            Some("carol"),
            ip("10.1.1.1"),
        );
        assert!(t
            .check_at(
                start + Duration::from_secs(61),
                Some("carol"),
                ip("10.1.1.2")
            )
            .is_ok());
        t.success("carol");
        let off = RawThrottle {
            account_failures: 0,
            ip_failures: 0,
            ..LIMITS
        };
        for _ in 0..10 {
            t.failure_at(start, &off, Some("dave"), ip("10.1.1.3"));
        }
        assert!(t.check_at(start, Some("dave"), ip("10.1.1.3")).is_ok());
    }
}
