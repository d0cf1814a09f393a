//! Lockout after repeated authentication failures, per account and per client address. An
//! attempt reserves a slot on its account and address *before* its password is checked and
//! settles it afterwards: a failure counts, a success only gives the slot back. Slots are
//! `limit - failures`, so however many guesses arrive at once, at most `limit` checks run per
//! window; the others wait for a slot, and are refused (429 with `Retry-After`) once the
//! settled failures lock the account or address, a right password included. Counters survive
//! reloads; the limits come from the current config.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

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
    /// Settled failures in the current window; always below the limit (reaching it locks).
    failures: u32,
    /// Attempts reserved and not yet settled.
    pending: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            failures: 0,
            pending: 0,
            window_start: now,
            locked_until: None,
        }
    }

    /// Forgets failures older than the window (a lockout and pending attempts stay).
    fn roll(&mut self, now: Instant, window: Duration) {
        if now.duration_since(self.window_start) >= window {
            self.failures = 0;
            self.window_start = now;
        }
    }

    fn locked_for(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    fn forgettable(&self, now: Instant, window: Duration) -> bool {
        self.pending == 0
            && self.locked_for(now).is_none()
            && now.duration_since(self.window_start) >= window
    }
}

/// Failure counters. A std `Mutex`: it is never held across an `.await`.
#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
    /// Wakes the attempts waiting for a slot whenever one settles.
    settled: Notify,
}

/// A reserved check. Settle it with [`Attempt::succeeded`], [`Attempt::failed`] or
/// [`Attempt::abandoned`]; dropped unsettled (the client went away mid-check), it counts as a
/// failure, since the check ran all the same.
#[derive(Debug)]
#[must_use = "an attempt counts as a failure unless settled"]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    limits: RawThrottle,
    keys: Vec<(Key, u32)>,
    settled: bool,
}

impl Attempt<'_> {
    /// The credentials were right: the slot is given back, nothing counts.
    pub fn succeeded(mut self) {
        self.settle(false);
    }

    /// The credentials were wrong: the failure counts and may lock.
    pub fn failed(mut self) {
        self.settle(true);
    }

    /// Nothing was learnt about the credentials (an internal error): the slot is given back.
    pub fn abandoned(mut self) {
        self.settle(false);
    }

    fn settle(&mut self, failed: bool) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        self.throttle
            .settle_at(Instant::now(), &self.limits, &self.keys, failed);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.settle(true);
    }
}

impl Throttle {
    /// Refuses when the account or the address is locked, without reserving anything (for
    /// requests that present no secret).
    ///
    /// # Errors
    /// [`Error::Throttled`] with the seconds left.
    pub fn check(&self, account: Option<&str>, ip: IpAddr) -> Result<(), Error> {
        let map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = account
            .map(|a| Key::Account(a.to_owned()))
            .into_iter()
            .chain([Key::Ip(ip)]);
        let now = Instant::now();
        match keys.filter_map(|k| map.get(&k)?.locked_for(now)).max() {
            Some(left) => Err(throttled(left)),
            None => Ok(()),
        }
    }

    /// Reserves a check for `account` (if any) and `ip`, waiting while every slot is taken by
    /// checks under way.
    ///
    /// # Errors
    /// [`Error::Throttled`] once the account or the address is locked.
    pub async fn reserve(
        &self,
        limits: &RawThrottle,
        account: Option<&str>,
        ip: IpAddr,
    ) -> Result<Attempt<'_>, Error> {
        let keys: Vec<(Key, u32)> = account
            .map(|a| (Key::Account(a.to_owned()), limits.account_failures))
            .into_iter()
            .chain([(Key::Ip(ip), limits.ip_failures)])
            .collect();
        loop {
            // Listen before looking, so a settlement in between is not missed.
            let mut settled = pin!(self.settled.notified());
            settled.as_mut().enable();
            if let Some(reserved) = self.try_reserve_at(Instant::now(), limits, &keys)? {
                return Ok(Attempt {
                    throttle: self,
                    limits: *limits,
                    keys: reserved,
                    settled: false,
                });
            }
            settled.await;
        }
    }

    /// Takes a slot on every limited key, or none: `Ok(None)` when some key has none free.
    /// Returns the keys whose slot was taken.
    fn try_reserve_at(
        &self,
        now: Instant,
        limits: &RawThrottle,
        keys: &[(Key, u32)],
    ) -> Result<Option<Vec<(Key, u32)>>, Error> {
        let mut map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let window = Duration::from_secs(limits.window);
        if let Some(left) = keys
            .iter()
            .filter_map(|(k, _)| map.get(k)?.locked_for(now))
            .max()
        {
            return Err(throttled(left));
        }
        let mut full = false;
        for (key, limit) in keys.iter().filter(|(_, limit)| *limit > 0) {
            if let Some(e) = map.get_mut(key) {
                e.roll(now, window);
                full |= e.failures.saturating_add(e.pending) >= *limit;
            }
        }
        if full {
            return Ok(None);
        }
        if map.len() + keys.len() > MAX_ENTRIES {
            map.retain(|_, e| !e.forgettable(now, window));
        }
        let mut reserved = Vec::with_capacity(keys.len());
        for (key, limit) in keys.iter().filter(|(_, limit)| *limit > 0) {
            if map.len() >= MAX_ENTRIES && !map.contains_key(key) {
                // Full of live entries: this key goes untracked rather than refusing everyone.
                continue;
            }
            let e = map.entry(key.clone()).or_insert_with(|| Entry::new(now));
            e.pending += 1;
            reserved.push((key.clone(), *limit));
        }
        Ok(Some(reserved))
    }

    fn settle_at(&self, now: Instant, limits: &RawThrottle, keys: &[(Key, u32)], failed: bool) {
        {
            let mut map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let window = Duration::from_secs(limits.window);
            for (key, limit) in keys {
                let Some(e) = map.get_mut(key) else {
                    continue;
                };
                e.pending = e.pending.saturating_sub(1);
                if !failed {
                    continue;
                }
                e.roll(now, window);
                e.failures += 1;
                if e.failures >= *limit {
                    e.locked_until = Some(now + Duration::from_secs(limits.lockout));
                    e.failures = 0;
                    e.window_start = now;
                }
            }
        }
        self.settled.notify_waiters();
    }
}

fn throttled(left: Duration) -> Error {
    Error::Throttled {
        retry_after: left.as_secs() + u64::from(left.subsec_nanos() > 0),
    }
}

#[cfg(test)]
mod tests;
