//! htpasswd Basic auth for small deployments without a token server: bcrypt entries only; any
//! authenticated user may do everything (as registry:2's htpasswd mode). Successful checks are
//! cached by the SHA-256 of the header so bcrypt runs once per credential, off the async threads.

use std::collections::HashMap;

use base64::Engine as _;
use quick_cache::sync::Cache;
use sha2::{Digest as _, Sha256};

use super::{strip_scheme, Grants};
use crate::config::HtpasswdAuth;
use crate::error::Error;

/// `auth.htpasswd` at run time.
pub struct BasicAuth {
    realm: String,
    /// user → bcrypt hash.
    users: HashMap<String, String>,
    /// Headers already checked good.
    verified: Cache<[u8; 32], String>,
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
    /// `Config` when it cannot be read or has a line that is not `user:$2…` bcrypt.
    pub fn load(cfg: &HtpasswdAuth) -> Result<Self, Error> {
        let text = std::fs::read_to_string(&cfg.path).map_err(|e| {
            Error::Config(format!("auth.htpasswd.path {}: {e}", cfg.path.display()))
        })?;
        Ok(Self {
            realm: cfg.realm.clone(),
            users: parse_htpasswd(&text)?,
            verified: Cache::new(1024),
        })
    }

    /// Checks `Basic` credentials.
    pub async fn authorize(&self, credentials: Option<&str>) -> Result<Grants, Error> {
        let denied = || Error::Unauthorized {
            challenge: format!("Basic realm=\"{}\"", self.realm.replace('"', "")),
        };
        let header = credentials.ok_or_else(denied)?;
        let key: [u8; 32] = Sha256::digest(header.as_bytes()).into();
        if let Some(user) = self.verified.get(&key) {
            return Ok(Grants::User(user));
        }
        let encoded = strip_scheme(header, "Basic").ok_or_else(denied)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| denied())?;
        let text = String::from_utf8(decoded).map_err(|_| denied())?;
        let (user, password) = text.split_once(':').ok_or_else(denied)?;
        let hash = self.users.get(user).ok_or_else(denied)?.clone();
        let password = password.to_owned();
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .map_err(|e| Error::Internal(format!("bcrypt task: {e}")))?;
        if !ok {
            return Err(denied());
        }
        self.verified.insert(key, user.to_owned());
        Ok(Grants::User(user.to_owned()))
    }
}

fn parse_htpasswd(text: &str) -> Result<HashMap<String, String>, Error> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((user, hash)) if !user.is_empty() && hash.starts_with("$2") => {
                users.insert(user.to_owned(), hash.to_owned());
            }
            _ => {
                return Err(Error::Config(format!(
                    "htpasswd line {}: expected user:bcrypt-hash",
                    i + 1
                )))
            }
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> BasicAuth {
        let hash = bcrypt::hash("pw", 4).unwrap();
        BasicAuth {
            realm: "r".into(),
            users: parse_htpasswd(&format!("# c\nalice:{hash}\n")).unwrap(),
            verified: Cache::new(8),
        }
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
    fn non_bcrypt_lines_are_refused() {
        assert!(parse_htpasswd("alice:{SHA}abc").is_err());
        assert!(parse_htpasswd("nocolon").is_err());
    }
}
