//! bcrypt hashes as both daemons store them (auth.yaml users, htpasswd files), parsed strictly:
//! only well-formed `$2a$`/`$2b$`/`$2y$` hashes with a cost of 4 to 31 and the 53-character
//! salt-and-digest tail; an htpasswd file with anything else, or a user twice, is refused with
//! file and line.

use std::path::Path;

use serde::Deserialize;

use crate::error::Error;

/// The characters of bcrypt's base64 alphabet.
fn bcrypt_char(c: u8) -> bool {
    c == b'.' || c == b'/' || c.is_ascii_alphanumeric()
}

/// A well-formed bcrypt hash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct BcryptHash(String);

impl TryFrom<String> for BcryptHash {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let b = s.as_bytes();
        let well_formed = b.len() == 60
            && ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p))
            && b[4].is_ascii_digit()
            && b[5].is_ascii_digit()
            && b[6] == b'$'
            && (4..=31).contains(&cost_of(b))
            && b[7..].iter().copied().all(bcrypt_char)
            && s.parse::<bcrypt::HashParts>().is_ok();
        if well_formed {
            Ok(BcryptHash(s))
        } else {
            Err("not a bcrypt hash (expected $2y$NN$ and 53 characters; make one with `authd hash-password` or `htpasswd -B`)".to_owned())
        }
    }
}

fn cost_of(b: &[u8]) -> u32 {
    u32::from(b[4] - b'0') * 10 + u32::from(b[5] - b'0')
}

impl BcryptHash {
    /// The hash text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its cost (4..=31): verifying it takes 2^cost rounds.
    pub fn cost(&self) -> u32 {
        cost_of(self.0.as_bytes())
    }
}

/// A `$2y$` bcrypt hash of `password` (the form htpasswd and docker_auth use).
///
/// # Errors
/// [`Error::Bcrypt`] for a cost outside 4..=31.
pub fn hash_password(password: &str, cost: u32) -> Result<String, Error> {
    bcrypt::hash_with_result(password, cost)
        .map(|h| h.format_for_version(bcrypt::Version::TwoY))
        .map_err(|e| Error::Bcrypt(e.to_string()))
}

/// Parses the content of the htpasswd file `path`: `user:hash` lines, `#` comments, blank
/// lines.
///
/// # Errors
/// [`Error::Htpasswd`] for a line without `:`, an empty user, a hash that is not bcrypt, or a
/// user that appears twice.
pub fn parse_htpasswd(path: &Path, text: &str) -> Result<Vec<(String, BcryptHash)>, Error> {
    let mut out: Vec<(String, BcryptHash)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |reason: String| Error::Htpasswd {
            path: path.to_path_buf(),
            line: n + 1,
            reason,
        };
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| at("expected user:hash".to_owned()))?;
        if user.is_empty() {
            return Err(at("empty user name".to_owned()));
        }
        let hash = BcryptHash::try_from(hash.to_owned()).map_err(|_| {
            at(format!(
                "user {user:?}: only well-formed bcrypt hashes are supported (htpasswd -B)"
            ))
        })?;
        if out.iter().any(|(u, _)| u == user) {
            return Err(at(format!("user {user:?} appears twice")));
        }
        out.push((user.to_owned(), hash));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "$2y$04$9eRqHbxGj9ZXZf4Ihz/yueokDX2o91c1wyEI0zRHqk3xHSk8gx6mK";

    #[test]
    fn only_well_formed_bcrypt_hashes_parse() {
        let made = hash_password("pw", 4).unwrap();
        for good in [
            GOOD,
            made.as_str(),
            &GOOD.replacen("$2y$", "$2a$", 1),
            &GOOD.replacen("$2y$", "$2b$", 1),
        ] {
            let h = BcryptHash::try_from(good.to_owned()).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(h.cost(), 4);
        }
        let tail = &GOOD[7..];
        for bad in [
            String::new(),
            "$2$".to_owned(),
            GOOD.replacen("$2y$", "$2x$", 1),
            GOOD.replacen("$2y$", "$1$", 1),
            format!("$2y$03${tail}"),
            format!("$2y$32${tail}"),
            format!("$2y$4${tail}"),
            format!("$2y$x4${tail}"),
            GOOD[..59].to_owned(),
            format!("{GOOD}x"),
            GOOD.replacen('9', "!", 1),
            "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".to_owned(),
            "$apr1$x$y".to_owned(),
        ] {
            assert!(BcryptHash::try_from(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn htpasswd_lines_are_checked_with_file_and_line() {
        let path = Path::new("users.htpasswd");
        let table = [
            (format!("# users\nann:{GOOD}\n\nbob:{GOOD}\n"), None),
            (
                "ann:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n".to_owned(),
                Some("users.htpasswd: line 1: user \"ann\": only well-formed bcrypt"),
            ),
            (format!("ok:{GOOD}\nann:$apr1$x$y\n"), Some("line 2")),
            ("ok:$2y$04$short\n".to_owned(), Some("line 1")),
            ("no colon here\n".to_owned(), Some("expected user:hash")),
            (format!(":{GOOD}\n"), Some("empty user name")),
            (
                format!("ann:{GOOD}\n# x\nann:{GOOD}\n"),
                Some("line 3: user \"ann\" appears twice"),
            ),
        ];
        for (text, want) in table {
            match (parse_htpasswd(path, &text), want) {
                (Ok(entries), None) => assert_eq!(entries.len(), 2),
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{e}"),
                (r, w) => panic!("{text}: {r:?} wanted {w:?}"),
            }
        }
    }
}
