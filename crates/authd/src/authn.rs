//! Authentication: the users of `auth.yaml` and of an htpasswd file, bcrypt verification off
//! the async runtime, and a bounded cache of recent successes so a client asking for a token
//! per push or pull does not pay a full bcrypt each time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rand::RngCore;
use serde::Deserialize;

use crate::error::Error;
use crate::mac;
use crate::metrics::{BCRYPT_CACHE_HITS, BCRYPT_SECONDS};

/// How many recent successful logins are remembered.
const CACHE_CAPACITY: usize = 10_000;

/// A bcrypt hash (`$2a$`, `$2b$`, `$2y$`), checked when the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct BcryptHash(String);

impl TryFrom<String> for BcryptHash {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let bcrypt_prefix = ["$2a$", "$2b$", "$2y$", "$2x$"]
            .iter()
            .any(|p| s.starts_with(p));
        if bcrypt_prefix && s.parse::<bcrypt::HashParts>().is_ok() {
            Ok(BcryptHash(s))
        } else {
            Err(
                "not a bcrypt hash (expected $2y$…; make one with `authd hash-password`)"
                    .to_owned(),
            )
        }
    }
}

impl BcryptHash {
    /// The hash text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
#[derive(Debug, Clone)]
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
    /// Merges the users of `auth.yaml` with those of an htpasswd file (a name in both is an error).
    ///
    /// # Errors
    /// A named user without password, a duplicate name, or a failure to make the decoy hash.
    pub fn new(
        mut users: BTreeMap<String, User>,
        htpasswd: Vec<(String, BcryptHash)>,
    ) -> Result<Self, String> {
        if let Some((name, _)) = users
            .iter()
            .find(|(n, u)| !n.is_empty() && u.password.is_none())
        {
            return Err(format!(
                "users.{name:?}: password is required (only \"\" may have none)"
            ));
        }
        for (name, hash) in htpasswd {
            if users.contains_key(&name) {
                return Err(format!(
                    "user {name:?} is defined both in users and in the htpasswd file"
                ));
            }
            users.insert(
                name,
                User {
                    password: Some(hash),
                    labels: BTreeMap::new(),
                },
            );
        }
        let cost = users
            .values()
            .filter_map(|u| u.password.as_ref()?.0.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let decoy = bcrypt::hash(random_bytes(), cost).map_err(|e| format!("bcrypt: {e}"))?;
        Ok(Users {
            users,
            decoy: BcryptHash(decoy),
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
            let stored = hash.0.clone();
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

/// A `$2y$` bcrypt hash of `password` (the form htpasswd and docker_auth use).
///
/// # Errors
/// A cost outside 4..=31.
pub fn hash_password(password: &str, cost: u32) -> Result<String, Error> {
    bcrypt::hash_with_result(password, cost)
        .map(|h| h.format_for_version(bcrypt::Version::TwoY))
        .map_err(|e| Error::BadRequest(format!("bcrypt: {e}")))
}

/// Reads an htpasswd file; only bcrypt entries are accepted.
///
/// # Errors
/// An unreadable file, a line without `:`, or a non-bcrypt hash (with file and line).
pub fn read_htpasswd(path: &Path) -> Result<Vec<(String, BcryptHash)>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |reason: String| Error::config(path, format!("line {}: {reason}", n + 1));
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| at("expected user:hash".to_owned()))?;
        let hash = BcryptHash::try_from(hash.to_owned()).map_err(|_| {
            at(format!("user {user:?}: only bcrypt hashes are supported (htpasswd -B), found another hash type"))
        })?;
        if out.iter().any(|(u, _): &(String, BcryptHash)| u == user) {
            return Err(at(format!("user {user:?} appears twice")));
        }
        out.push((user.to_owned(), hash));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pw: &str) -> BcryptHash {
        BcryptHash(bcrypt::hash(pw, 4).unwrap_or_default())
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
    fn refuses_missing_passwords_duplicates_and_non_bcrypt_htpasswd() {
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

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("htpasswd");
        let good = hash("pw");
        let table = [
            (format!("# users\nann:{}\n\n", good.as_str()), None),
            (
                "ann:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n".to_owned(),
                Some("line 1: user \"ann\": only bcrypt"),
            ),
            (
                format!("ok:{}\nann:$apr1$x$y\n", good.as_str()),
                Some("line 2"),
            ),
            ("no colon here\n".to_owned(), Some("expected user:hash")),
        ];
        for (text, want) in table {
            std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
            match (read_htpasswd(&path), want) {
                (Ok(entries), None) => assert_eq!(entries.len(), 1),
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{e}"),
                (r, w) => panic!("{text}: {r:?} wanted {w:?}"),
            }
        }
    }
}
