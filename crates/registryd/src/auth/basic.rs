//! htpasswd Basic auth for small deployments without a token server, as authd checks it: the
//! file is parsed strictly (well-formed bcrypt only, no duplicate users), and passwords are
//! checked with the shared `server::passwords` (the same cost for every failure, unknown users
//! included; recent successes cached under a keyed digest). Any authenticated user may do
//! everything (as registry:2's htpasswd mode).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use server::htpasswd::{parse_htpasswd, BcryptHash};
use server::passwords::Passwords;

use super::{strip_scheme, Grants};
use crate::config::HtpasswdAuth;
use crate::error::Error;

/// `auth.htpasswd` at run time.
pub struct BasicAuth {
    realm: String,
    /// user → bcrypt hash.
    users: HashMap<String, BcryptHash>,
    /// Decoys and the cache of recent successes.
    passwords: Arc<Passwords>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Reads the htpasswd file.
    ///
    /// # Errors
    /// `Config` when it cannot be read, has a line that is not `user:` and a well-formed bcrypt
    /// hash, or names a user twice (with file and line).
    pub fn load(cfg: &HtpasswdAuth) -> Result<Self, Error> {
        let text = std::fs::read_to_string(&cfg.path).map_err(|e| {
            Error::Config(format!("auth.htpasswd.path {}: {e}", cfg.path.display()))
        })?;
        let entries = parse_htpasswd(&cfg.path, &text)
            .map_err(|e| Error::Config(format!("auth.htpasswd: {e}")))?;
        Self::new(&cfg.realm, entries)
    }

    fn new(realm: &str, entries: Vec<(String, BcryptHash)>) -> Result<Self, Error> {
        let passwords = Passwords::new(entries.iter().map(|(_, h)| h), "registry")
            .map_err(|e| Error::Config(format!("auth.htpasswd: {e}")))?;
        Ok(Self {
            realm: realm.to_owned(),
            users: entries.into_iter().collect(),
            passwords: Arc::new(passwords),
        })
    }

    /// Checks `Basic` credentials.
    pub async fn authorize(&self, credentials: Option<&str>) -> Result<Grants, Error> {
        let denied = || Error::Unauthorized {
            challenge: format!("Basic realm=\"{}\"", self.realm.replace('"', "")),
        };
        let header = credentials.ok_or_else(denied)?;
        let encoded = strip_scheme(header, "Basic").ok_or_else(denied)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| denied())?;
        let text = String::from_utf8(decoded).map_err(|_| denied())?;
        let (user, password) = text.split_once(':').ok_or_else(denied)?;
        if !self.check(user, password).await? {
            return Err(denied());
        }
        Ok(Grants::User(user.to_owned()))
    }

    /// Whether `password` is `user`'s (the same cost whether the user exists or not).
    ///
    /// # Errors
    /// `Internal` when the check could not run.
    pub async fn check(&self, user: &str, password: &str) -> Result<bool, Error> {
        self.passwords
            .check(user, password, self.users.get(user))
            .await
            .map_err(|e| Error::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> BasicAuth {
        let hash = server::htpasswd::hash_password("pw", 4).unwrap();
        let entries =
            parse_htpasswd(std::path::Path::new("h"), &format!("# c\nalice:{hash}\n")).unwrap();
        BasicAuth::new("r", entries).unwrap()
    }

    fn basic(user_pw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pw)
        )
    }

    #[tokio::test]
    async fn right_password_passes_wrong_one_gets_basic_challenge() {
        let a = auth();
        assert!(a.authorize(Some(&basic("alice:pw"))).await.is_ok());
        assert!(a.authorize(Some(&basic("alice:pw"))).await.is_ok());
        for bad in [
            Some(basic("alice:nope")),
            Some(basic("bob:pw")),
            Some("Basic !!!".into()),
            Some("Bearer x".into()),
            None,
        ] {
            match a.authorize(bad.as_deref()).await {
                Err(Error::Unauthorized { challenge }) => {
                    assert_eq!(challenge, "Basic realm=\"r\"")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_hashes_and_duplicate_users_are_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let good = server::htpasswd::hash_password("pw", 4).unwrap();
        for (text, want) in [
            ("alice:{SHA}abc\n".to_owned(), "line 1"),
            ("nocolon\n".to_owned(), "line 1"),
            ("alice:$2y$04$tooshort\n".to_owned(), "line 1"),
            (
                format!("alice:{good}\nalice:{good}\n"),
                "line 2: user \"alice\" appears twice",
            ),
        ] {
            std::fs::write(&path, &text).unwrap();
            let cfg = HtpasswdAuth {
                realm: "r".into(),
                path: path.clone(),
            };
            match BasicAuth::load(&cfg) {
                Err(Error::Config(m)) => {
                    assert!(m.contains(want) && m.contains("htpasswd"), "{text}: {m}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
