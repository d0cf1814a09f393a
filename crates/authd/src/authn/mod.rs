//! Authentication: the users of `auth.yaml` and of an htpasswd file, bcrypt verification off
//! the async runtime, and a bounded cache of recent successes so a client asking for a token
//! per push or pull does not pay a full bcrypt each time. [`htpasswd`]: hashes and htpasswd files.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rand::RngCore;
use serde::Deserialize;

pub mod htpasswd;

pub use htpasswd::{hash_password, parse_htpasswd, BcryptHash};

use crate::error::Error;
use crate::mac;
use crate::metrics::{BCRYPT_CACHE_HITS, BCRYPT_SECONDS};

/// How many recent successful logins are remembered.
const CACHE_CAPACITY: usize = 10_000;

/// One user as written in `auth.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// bcrypt hash; absent only for the anonymous user `""`.
    pub password: Option<BcryptHash>,
    /// Labels used by ACL `labels` conditions and `${labels:NAME}`.
    #[serde(default)]
    pub labels: BTreeMap<String, Vec<String>>,
}

/// Who a request was authenticated as.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The account name (`""` for anonymous).
    pub account: String,
    /// The account's labels.
    pub labels: BTreeMap<String, Vec<String>>,
    /// The stored hash, which refresh tokens are bound to; `None` for anonymous.
    pub password: Option<BcryptHash>,
}

/// What a client presented.
#[derive(Clone)]
pub enum Credentials {
    /// No credentials: the anonymous account `""`.
    Anonymous,
    /// A user name and password.
    Password {
        /// User name.
        user: String,
        /// Password, kept only for the duration of the request.
        password: String,
    },
}

/// Never shows the password.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Password { user, .. } => write!(f, "Password {{ user: {user:?}, .. }}"),
        }
    }
}

/// All known users and the cache of recent successes; rebuilt (so cleared) on every reload.
pub struct Users {
    users: BTreeMap<String, User>,
    /// Verified against for unknown users, so they cost the same time as a wrong password.
    decoy: BcryptHash,
    /// Keys are HMAC(user, password, hash) under a random per-instance key: a memory dump shows
    /// neither passwords nor anything to test guesses against without that key.
    cache: quick_cache::sync::Cache<[u8; 32], ()>,
    cache_key: [u8; 32],
}

impl Users {
    /// Merges the users of `auth.yaml` with those of an htpasswd file; a name in both must have
    /// its password in only one of them (an auth.yaml entry without one adds labels).
    ///
    /// # Errors
    /// A named user without password, a duplicate name, or a failure to make the decoy hash.
    pub fn new(
        mut users: BTreeMap<String, User>,
        htpasswd: Vec<(String, BcryptHash)>,
    ) -> Result<Self, String> {
        for (name, hash) in htpasswd {
            match users.get_mut(&name) {
                // An auth.yaml entry without password gives an htpasswd user its labels.
                Some(user) if user.password.is_none() && !name.is_empty() => {
                    user.password = Some(hash)
                }
                Some(_) => {
                    return Err(format!(
                        "user {name:?} has a password both in users and in the htpasswd file"
                    ));
                }
                None => {
                    users.insert(
                        name,
                        User {
                            password: Some(hash),
                            labels: BTreeMap::new(),
                        },
                    );
                }
            }
        }
        if let Some((name, _)) = users
            .iter()
            .find(|(n, u)| !n.is_empty() && u.password.is_none())
        {
            return Err(format!(
                "users.{name:?}: password is required (only \"\" may have none, or the user is in the htpasswd file)"
            ));
        }
        let cost = users
            .values()
            .filter_map(|u| {
                u.password
                    .as_ref()?
                    .as_str()
                    .parse::<bcrypt::HashParts>()
                    .ok()
            })
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let decoy = bcrypt::hash(random_bytes(), cost).map_err(|e| format!("bcrypt: {e}"))?;
        Ok(Users {
            users,
            decoy: BcryptHash::try_from(decoy)?,
            cache: quick_cache::sync::Cache::new(CACHE_CAPACITY),
            cache_key: random_bytes(),
        })
    }

    /// The user of that name, if any.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Checks credentials; bcrypt runs on the blocking pool unless the cache knows the answer.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for an unknown user, a wrong password, or anonymous access when
    /// `""` is not configured.
    pub async fn authenticate(self: &Arc<Self>, creds: &Credentials) -> Result<Identity, Error> {
        let (user, password) = match creds {
            Credentials::Anonymous => {
                return match self.users.get("") {
                    Some(u) => Ok(identity("", u)),
                    None => Err(Error::Unauthorized),
                };
            }
            Credentials::Password { user, password } => (user, password),
        };
        let known = self.users.get(user.as_str()).filter(|_| !user.is_empty());
        let hash = known
            .and_then(|u| u.password.clone())
            .unwrap_or_else(|| self.decoy.clone());
        let key = self.cache_key(user, password, &hash);
        let ok = if known.is_some() && self.cache.get(&key).is_some() {
            metrics::counter!(BCRYPT_CACHE_HITS).increment(1);
            true
        } else {
            let candidate = password.clone();
            let stored = hash.as_str().to_owned();
            let verified = tokio::task::spawn_blocking(move || {
                let start = Instant::now();
                let ok = bcrypt::verify(candidate, &stored).unwrap_or(false);
                metrics::histogram!(BCRYPT_SECONDS).record(start.elapsed().as_secs_f64());
                ok
            })
            .await
            .map_err(|e| Error::Internal(format!("bcrypt task: {e}")))?;
            if verified && known.is_some() {
                self.cache.insert(key, ());
            }
            verified
        };
        match known {
            Some(u) if ok => Ok(identity(user, u)),
            _ => Err(Error::Unauthorized),
        }
    }

    /// The identity of a known, non-anonymous user, as currently configured.
    pub fn current(&self, account: &str) -> Option<Identity> {
        self.users
            .get(account)
            .filter(|_| !account.is_empty())
            .map(|u| identity(account, u))
    }

    fn cache_key(&self, user: &str, password: &str, hash: &BcryptHash) -> [u8; 32] {
        mac::tag(
            &self.cache_key,
            &[
                user.as_bytes(),
                password.as_bytes(),
                hash.as_str().as_bytes(),
            ],
        )
    }
}

fn identity(account: &str, user: &User) -> Identity {
    Identity {
        account: account.to_owned(),
        labels: user.labels.clone(),
        password: user.password.clone(),
    }
}

fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pw: &str) -> BcryptHash {
        BcryptHash::try_from(bcrypt::hash(pw, 4).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn users() -> Arc<Users> {
        let mut map = BTreeMap::new();
        map.insert(
            "alice".to_owned(),
            User {
                password: Some(hash("pw")),
                labels: BTreeMap::new(),
            },
        );
        map.insert(
            String::new(),
            User {
                password: None,
                labels: BTreeMap::new(),
            },
        );
        let from_file = vec![("bob".to_owned(), hash("bob-pw"))];
        match Users::new(map, from_file) {
            Ok(u) => Arc::new(u),
            Err(e) => panic!("{e}"),
        }
    }

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials::Password {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    #[tokio::test]
    async fn checks_passwords_from_both_sources_and_the_cache() {
        let u = users();
        for _ in 0..2 {
            assert_eq!(
                u.authenticate(&creds("alice", "pw"))
                    .await
                    .map(|i| i.account)
                    .ok(),
                Some("alice".into())
            );
        }
        assert!(u.authenticate(&creds("bob", "bob-pw")).await.is_ok());
        for (user, pw) in [
            ("alice", "nope"),
            ("alice", ""),
            ("carol", "pw"),
            ("", "pw"),
            ("bob", "pw"),
        ] {
            assert!(
                matches!(
                    u.authenticate(&creds(user, pw)).await,
                    Err(Error::Unauthorized)
                ),
                "{user}/{pw}"
            );
        }
        assert_eq!(
            u.authenticate(&Credentials::Anonymous)
                .await
                .map(|i| i.account)
                .ok(),
            Some(String::new())
        );
    }

    #[test]
    fn unknown_users_are_checked_against_a_decoy_as_costly_as_the_real_hashes() {
        let u = users();
        let cost = |h: &BcryptHash| {
            h.as_str()
                .parse::<bcrypt::HashParts>()
                .map(|p| p.get_cost())
                .ok()
        };
        assert_eq!(cost(&u.decoy), Some(4));
        assert!(bcrypt::verify("", u.decoy.as_str()).is_ok_and(|ok| !ok));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let shown = format!("{:?}", creds("alice", "hunter2"));
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn refuses_missing_passwords_and_duplicates() {
        let mut map = BTreeMap::new();
        map.insert(
            "x".to_owned(),
            User {
                password: None,
                labels: BTreeMap::new(),
            },
        );
        assert!(Users::new(map, vec![]).is_err_and(|e| e.contains("password is required")));
        let mut map = BTreeMap::new();
        map.insert(
            "x".to_owned(),
            User {
                password: Some(hash("a")),
                labels: BTreeMap::new(),
            },
        );
        assert!(
            Users::new(map, vec![("x".to_owned(), hash("b"))]).is_err_and(|e| e.contains("both"))
        );
        let mut map = BTreeMap::new();
        let labels = BTreeMap::from([("group".to_owned(), vec!["ops".to_owned()])]);
        map.insert(
            "y".to_owned(),
            User {
                password: None,
                labels: labels.clone(),
            },
        );
        let merged =
            Users::new(map, vec![("y".to_owned(), hash("c"))]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            merged
                .current("y")
                .map(|i| (i.labels, i.password.is_some())),
            Some((labels, true))
        );
    }
}
