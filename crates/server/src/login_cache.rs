//! A bounded cache of recent successful logins, keyed by an HMAC of the credentials under a
//! per-instance random key (so a memory dump shows nothing to test guesses against), each entry
//! kept at most a time to live. Used by the bcrypt checks and by authd's LDAP binds, so a
//! client asking for a token per request does not pay a full check each time.

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use rand::RngCore as _;

use crate::mac;

/// Recent successes and what each gave (`()` when the success itself is all there is).
pub struct LoginCache<V: Clone> {
    /// Keyed by HMAC(credential fields) under `key`; the value is when it was stored and what.
    entries: Cache<[u8; 32], (Instant, V)>,
    key: [u8; 32],
    /// How long an entry answers; `None`: until evicted for room.
    ttl: Option<Duration>,
}

impl<V: Clone> LoginCache<V> {
    /// A cache of at most `capacity` entries, each answering for `ttl` (`None`: no limit).
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        LoginCache {
            entries: Cache::new(capacity.max(1)),
            key,
            ttl,
        }
    }

    /// The key of the credentials made of `parts` (user, password, …).
    pub fn key(&self, parts: &[&[u8]]) -> [u8; 32] {
        mac::tag(&self.key, parts)
    }

    /// What a success for `key` gave, if one is remembered and still fresh.
    pub fn get(&self, key: &[u8; 32]) -> Option<V> {
        let (stored, value) = self.entries.get(key)?;
        if self.ttl.is_some_and(|ttl| stored.elapsed() >= ttl) {
            self.entries.remove(key);
            return None;
        }
        Some(value)
    }

    /// Remembers a success.
    pub fn insert(&self, key: [u8; 32], value: V) {
        self.entries.insert(key, (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_for_the_same_fields_only_and_until_the_ttl() {
        let cache = LoginCache::new(4, None);
        let k = cache.key(&[b"alice", b"pw"]);
        assert_ne!(k, cache.key(&[b"alic", b"epw"]));
        assert_ne!(k, LoginCache::<u8>::new(4, None).key(&[b"alice", b"pw"]));
        cache.insert(k, 7u8);
        assert_eq!(cache.get(&k), Some(7));
        assert_eq!(cache.get(&cache.key(&[b"alice", b"pw2"])), None);

        let expiring = LoginCache::new(4, Some(Duration::ZERO));
        let k = expiring.key(&[b"alice", b"pw"]);
        expiring.insert(k, ());
        assert_eq!(expiring.get(&k), None);
    }
}
