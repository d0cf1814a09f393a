//! What a path under `/ui/r/` names. Repository names contain `/`, so the reference follows a
//! `-` component, which no repository name has: `NAME` (its tags), `NAME/-/REFERENCE` (one
//! manifest), `NAME/-/REFERENCE/delete` (deleting it).

use super::error::PageError;
use crate::names::{NameError, Reference, RepoName};

/// A page of one repository.
#[derive(Debug, PartialEq, Eq)]
pub enum RepoPath {
    Tags(RepoName),
    Manifest(RepoName, Reference),
    Delete(RepoName, Reference),
}

impl RepoPath {
    /// Parses what follows `/ui/r/`.
    ///
    /// # Errors
    /// `NotFound` for a name, reference or suffix that is not valid.
    pub fn parse(path: &str) -> Result<Self, PageError> {
        let bad = |what: String| PageError::NotFound(what);
        let (name, rest) = match path.split_once("/-/") {
            Some((name, rest)) => (name, Some(rest)),
            None => (path.trim_end_matches('/'), None),
        };
        let name = RepoName::parse(name).map_err(|e| bad(format!("Not a repository name: {e}")))?;
        let Some(rest) = rest else {
            return Ok(Self::Tags(name));
        };
        let (reference, delete) = match rest.strip_suffix("/delete") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let reference = Reference::parse(reference)
            .map_err(|e| bad(format!("Not a tag or digest: {}", why(e))))?;
        Ok(if delete {
            Self::Delete(name, reference)
        } else {
            Self::Manifest(name, reference)
        })
    }
}

/// What a refused tag or digest is told.
fn why(e: NameError) -> String {
    match e {
        NameError::Digest(m) | NameError::Algorithm(m) | NameError::Tag(m) => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_references_and_deletes() {
        let name = |s: &str| RepoName::parse(s).unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        let table = [
            ("team/app", Some(RepoPath::Tags(name("team/app")))),
            ("team/app/", Some(RepoPath::Tags(name("team/app")))),
            (
                "a/b/c/-/v1",
                Some(RepoPath::Manifest(
                    name("a/b/c"),
                    Reference::Tag("v1".into()),
                )),
            ),
            (
                "app/-/v1/delete",
                Some(RepoPath::Delete(name("app"), Reference::Tag("v1".into()))),
            ),
            (
                &format!("app/-/{digest}"),
                Some(RepoPath::Manifest(
                    name("app"),
                    Reference::parse(&digest).unwrap(),
                )),
            ),
            ("App", None),
            ("app/-/", None),
            ("app/-/v1/x", None),
            ("app/-/sha256:zz", None),
            ("../etc", None),
            ("", None),
        ];
        for (path, want) in table {
            assert_eq!(RepoPath::parse(path).ok(), want, "{path}");
        }
    }
}
