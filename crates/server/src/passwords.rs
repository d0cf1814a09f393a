//! Checking a password against a user's bcrypt hash so that a failure costs the same whoever
//! the user is: an unknown user is checked against a decoy of the highest cost in the
//! configuration, and a wrong password for a user whose hash is cheaper is followed by decoys of
//! each cost from the user's up to the highest, so every failure runs 2^max rounds
//! (2^c + 2^c + 2^(c+1) + … + 2^(max-1) = 2^max). Successes are remembered in a
//! [`LoginCache`], so a client asking for a token per request does not pay a bcrypt each time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rand::RngCore as _;

use crate::error::Error;
use crate::htpasswd::BcryptHash;
use crate::login_cache::LoginCache;

/// How many recent successful logins are remembered.
const CACHE_CAPACITY: usize = 10_000;

/// The decoys and the cache of recent successes for one set of users.
pub struct Passwords {
    /// A hash of a random secret at each cost from the cheapest user's to `max_cost`.
    decoys: BTreeMap<u32, BcryptHash>,
    /// The highest cost of any user's hash (bcrypt's default when there are none).
    max_cost: u32,
    /// Keyed by (user, password, hash); a hash change is a different key, so no expiry.
    cache: LoginCache<()>,
    /// Histogram of seconds per bcrypt verification.
    seconds_metric: String,
    /// Counter of checks answered from the cache.
    hits_metric: String,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("max_cost", &self.max_cost)
            .finish_non_exhaustive()
    }
}

impl Passwords {
    /// Decoys for users whose hashes are `hashes`; metrics are named `{prefix}_bcrypt_seconds`
    /// and `{prefix}_bcrypt_cache_hits_total`. Making the decoys costs about two bcrypt runs
    /// at the highest cost.
    ///
    /// # Errors
    /// [`Error::Bcrypt`] when a decoy cannot be made.
    pub fn new<'a>(
        hashes: impl IntoIterator<Item = &'a BcryptHash>,
        metric_prefix: &str,
    ) -> Result<Self, Error> {
        let costs: Vec<u32> = hashes.into_iter().map(BcryptHash::cost).collect();
        let max_cost = costs.iter().copied().max().unwrap_or(bcrypt::DEFAULT_COST);
        let min_cost = costs.iter().copied().min().unwrap_or(max_cost);
        let mut decoys = BTreeMap::new();
        for cost in min_cost..=max_cost {
            let decoy =
                BcryptHash::try_from(crate::htpasswd::hash_password(&hex(&random_bytes()), cost)?)
                    .map_err(Error::Bcrypt)?;
            decoys.insert(cost, decoy);
        }
        Ok(Self {
            decoys,
            max_cost,
            cache: LoginCache::new(CACHE_CAPACITY, None),
            seconds_metric: format!("{metric_prefix}_bcrypt_seconds"),
            hits_metric: format!("{metric_prefix}_bcrypt_cache_hits_total"),
        })
    }

    /// Whether `password` is `user`'s, whose hash is `hash` (`None`: an unknown user, which
    /// always fails). bcrypt runs on the blocking pool unless the cache knows the answer.
    ///
    /// # Errors
    /// [`Error::Bcrypt`] when the blocking task fails.
    pub async fn check(
        self: &Arc<Self>,
        user: &str,
        password: &str,
        hash: Option<&BcryptHash>,
    ) -> Result<bool, Error> {
        let key = hash.map(|h| {
            self.cache
                .key(&[user.as_bytes(), password.as_bytes(), h.as_str().as_bytes()])
        });
        if key.is_some_and(|k| self.cache.get(&k).is_some()) {
            metrics::counter!(self.hits_metric.clone()).increment(1);
            return Ok(true);
        }
        let (this, password, hash) = (self.clone(), password.to_owned(), hash.cloned());
        let ok = tokio::task::spawn_blocking(move || {
            this.check_with(&password, hash.as_ref(), |pw, h| {
                let start = Instant::now();
                let ok = bcrypt::verify(pw, h.as_str()).unwrap_or(false);
                metrics::histogram!(this.seconds_metric.clone())
                    .record(start.elapsed().as_secs_f64());
                ok
            })
        })
        .await
        .map_err(|e| Error::Bcrypt(format!("verification task: {e}")))?;
        if let (true, Some(k)) = (ok, key) {
            self.cache.insert(k, ());
        }
        Ok(ok)
    }

    /// The checks behind [`Passwords::check`], each run by `verify`: one against the user's
    /// hash (the top decoy for an unknown user), then on failure decoys from the user's cost
    /// up, so that every failure verifies 2^`max_cost` rounds in all.
    fn check_with(
        &self,
        password: &str,
        hash: Option<&BcryptHash>,
        verify: impl Fn(&str, &BcryptHash) -> bool,
    ) -> bool {
        let Some(hash) = hash else {
            if let Some(top) = self.decoys.get(&self.max_cost) {
                verify(password, top);
            }
            return false;
        };
        if verify(password, hash) {
            return true;
        }
        for decoy in self
            .decoys
            .range(hash.cost()..self.max_cost)
            .map(|(_, d)| d)
        {
            verify(password, decoy);
        }
        false
    }
}

fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::htpasswd::hash_password;

    fn hash(pw: &str, cost: u32) -> BcryptHash {
        BcryptHash::try_from(hash_password(pw, cost).unwrap()).unwrap()
    }

    /// The bcrypt rounds a failed check runs, counted by an injected verifier.
    fn rounds_of_failure(p: &Passwords, hash: Option<&BcryptHash>) -> u64 {
        let rounds = AtomicU64::new(0);
        let ok = p.check_with("wrong", hash, |_, h| {
            rounds.fetch_add(1 << h.cost(), Ordering::Relaxed);
            false
        });
        assert!(!ok);
        rounds.into_inner()
    }

    #[test]
    fn every_failure_costs_the_rounds_of_the_highest_cost() {
        let (cheap, mid, top) = (hash("a", 4), hash("b", 5), hash("c", 7));
        let p = Passwords::new([&cheap, &mid, &top], "test").unwrap();
        let unknown = rounds_of_failure(&p, None);
        assert_eq!(unknown, 1 << 7);
        for user in [&cheap, &mid, &top] {
            assert_eq!(
                rounds_of_failure(&p, Some(user)),
                unknown,
                "cost {}",
                user.cost()
            );
        }
    }

    #[tokio::test]
    async fn right_passwords_pass_wrong_ones_and_unknown_users_fail() {
        let (alice, bob) = (hash("alice-pw", 4), hash("bob-pw", 5));
        let p = Arc::new(Passwords::new([&alice, &bob], "test").unwrap());
        for _ in 0..2 {
            assert!(p.check("alice", "alice-pw", Some(&alice)).await.unwrap());
        }
        assert!(p.check("bob", "bob-pw", Some(&bob)).await.unwrap());
        assert!(!p.check("alice", "bob-pw", Some(&alice)).await.unwrap());
        assert!(!p.check("alice", "", Some(&alice)).await.unwrap());
        assert!(!p.check("carol", "alice-pw", None).await.unwrap());
        // A cached success is for that user, password and hash only.
        assert!(!p.check("bob", "alice-pw", Some(&bob)).await.unwrap());
    }

    #[test]
    fn without_users_the_decoy_has_the_default_cost() {
        let p = Passwords::new([], "test").unwrap();
        assert_eq!(p.max_cost, bcrypt::DEFAULT_COST);
        assert_eq!(p.decoys.len(), 1);
    }
}
