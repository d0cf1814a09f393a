//! bcrypt hashes as stored in auth.yaml and htpasswd files: checking them at load time, making
//! them (`authd hash-password`), and reading an htpasswd file (bcrypt entries only).

use std::path::Path;

use serde::Deserialize;

use crate::error::Error;

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

/// A `$2y$` bcrypt hash of `password` (the form htpasswd and docker_auth use).
///
/// # Errors
/// A cost outside 4..=31.
pub fn hash_password(password: &str, cost: u32) -> Result<String, Error> {
    bcrypt::hash_with_result(password, cost)
        .map(|h| h.format_for_version(bcrypt::Version::TwoY))
        .map_err(|e| Error::BadRequest(format!("bcrypt: {e}")))
}

/// Parses the content of the htpasswd file `path`; only bcrypt entries are accepted.
///
/// # Errors
/// A line without `:`, a duplicate user, or a non-bcrypt hash (with file and line).
pub fn parse_htpasswd(path: &Path, text: &str) -> Result<Vec<(String, BcryptHash)>, Error> {
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

    #[test]
    fn reads_bcrypt_entries_and_refuses_other_hash_types() {
        let hash = |pw: &str| BcryptHash(bcrypt::hash(pw, 4).unwrap_or_default());
        let path = Path::new("users.htpasswd");
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
            match (parse_htpasswd(path, &text), want) {
                (Ok(entries), None) => assert_eq!(entries.len(), 1),
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{e}"),
                (r, w) => panic!("{text}: {r:?} wanted {w:?}"),
            }
        }
    }
}
