//! Authentication: the users of `auth.yaml` and of an htpasswd file, checked with the shared
//! [`Passwords`] (bcrypt off the async runtime, the same cost for every failure, a bounded cache
//! of recent successes so a client asking for a token per push or pull does not pay a full
//! bcrypt each time); the other backends ([`ldap`]) and the order they are asked in
//! ([`chain`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use server::passwords::Passwords;

pub use server::htpasswd::{hash_password, parse_htpasswd, BcryptHash};

use crate::error::Error;

pub mod chain;
pub mod ext_auth;
pub mod ldap;
pub use chain::{Authenticators, Backend, Verdict};

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
    /// The stored hash, which refresh tokens are bound to; `None` for anonymous and for
    /// accounts of other backends (LDAP), which get no refresh token.
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
    /// Decoys and the cache of recent successes.
    passwords: Arc<Passwords>,
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
        let passwords = Passwords::new(users.values().filter_map(|u| u.password.as_ref()), "authd")
            .map_err(|e| e.to_string())?;
        Ok(Users {
            users,
            passwords: Arc::new(passwords),
        })
    }

    /// The user of that name, if any.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Checks credentials against these users; bcrypt runs on the blocking pool unless the
    /// cache knows the answer. An account that is not one of them is [`Verdict::NoMatch`]
    /// without any bcrypt, so the next backend is asked at no cost; anonymous access is decided
    /// here alone (`""` configured or not).
    ///
    /// # Errors
    /// [`Error::Unauthorized`] for anonymous access when `""` is not configured.
    pub async fn verdict(&self, creds: &Credentials) -> Result<Verdict, Error> {
        let (user, password) = match creds {
            Credentials::Anonymous => {
                return match self.users.get("") {
                    Some(u) => Ok(Verdict::Accepted(identity("", u))),
                    None => Err(Error::Unauthorized),
                };
            }
            Credentials::Password { user, password } => (user, password),
        };
        let Some(known) = self.users.get(user.as_str()).filter(|_| !user.is_empty()) else {
            return Ok(Verdict::NoMatch);
        };
        let ok = self
            .passwords
            .check(user, password, known.password.as_ref())
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(if ok {
            Verdict::Accepted(identity(user, known))
        } else {
            Verdict::WrongPassword
        })
    }

    /// Refuses credentials no authenticator knows, after the decoy check an unknown user costs
    /// (so a failure takes as long whether the account exists or not).
    ///
    /// # Errors
    /// Always: [`Error::Unauthorized`], or [`Error::Internal`] when the check itself fails.
    pub async fn refuse_unknown(&self, creds: &Credentials) -> Result<Identity, Error> {
        if let Credentials::Password { user, password } = creds {
            self.passwords
                .check(user, password, None)
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        Err(Error::Unauthorized)
    }

    /// The identity of a known, non-anonymous user, as currently configured.
    pub fn current(&self, account: &str) -> Option<Identity> {
        self.users
            .get(account)
            .filter(|_| !account.is_empty())
            .map(|u| identity(account, u))
    }
}

fn identity(account: &str, user: &User) -> Identity {
    Identity {
        account: account.to_owned(),
        labels: user.labels.clone(),
        password: user.password.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pw: &str) -> BcryptHash {
        BcryptHash::try_from(bcrypt::hash(pw, 4).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn users() -> Authenticators {
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
            Ok(u) => Authenticators {
                users: Arc::new(u),
                backends: Vec::new(),
            },
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
