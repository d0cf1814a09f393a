//! Repository names as the distribution spec defines them: `/`-separated components of
//! `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, 255 characters at most. The registry serves only such
//! names and the token server grants only such names, so both check them here.

use std::fmt;

/// Longest repository name the spec allows.
const MAX_NAME_LEN: usize = 255;

/// Why a repository name was refused; the message names the rule and quotes the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

/// A repository name that follows the spec's grammar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    /// Validates `s` against the spec's grammar.
    ///
    /// # Errors
    /// [`NameError`] when `s` is empty, too long, or any component is empty, `..`, uppercase or
    /// otherwise off-grammar.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let bad = |why: &str| NameError(format!("{why}: {s:?}"));
        if s.is_empty() {
            return Err(bad("empty repository name"));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(bad("repository name longer than 255 characters"));
        }
        if !s.split('/').all(valid_component) {
            return Err(bad("repository name does not match the spec's grammar"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as the client wrote it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One path component: alphanumeric runs joined by `.`, `_`, `__` or one or more `-`.
fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let dashes = !sep.is_empty() && sep.bytes().all(|b| b == b'-');
        if !(sep == "." || sep == "_" || sep == "__" || dashes) {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_follow_the_grammar() {
        for ok in [
            "a",
            "library/ubuntu",
            "a.b_c__d---e/f0",
            "x/y/z/w/v/u/t/s",
            "0",
            "docker.io/library/alpine",
        ] {
            assert_eq!(
                RepoName::parse(ok).map(|n| n.to_string()),
                Ok(ok.to_owned())
            );
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "..",
            "a/../b",
            "alice/../secret/db",
            "a//b",
            "/a",
            "a/",
            "Upper",
            "Alice/App",
            "a.",
            ".a",
            "a___b",
            "a-",
            "a..b",
            "a b",
            "a%2fb",
            "host:5000/a",
            "a/é",
            long.as_str(),
        ] {
            let err = RepoName::parse(bad).map_err(|e| e.to_string());
            assert!(
                err.as_ref().is_err_and(|e| e.contains("repository name")),
                "{bad}: {err:?}"
            );
        }
        assert!(RepoName::parse(&"a".repeat(255)).is_ok());
    }
}
