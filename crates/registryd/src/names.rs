//! The validated identifiers of the distribution API: repository names (whose grammar the
//! `token` crate holds, since authd grants only such names), digests and references. Nothing
//! here does I/O; every value that reaches a handler went through one of these parsers.

use std::fmt;

pub use token::RepoName;

/// Longest tag the spec allows.
const MAX_TAG_LEN: usize = 128;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The digest is malformed.
    Digest(String),
    /// The digest is well formed but uses an algorithm we do not store.
    Algorithm(String),
    /// The tag breaks the spec's grammar.
    Tag(String),
}

/// A content digest. Only sha256 is stored; sha512 parses so that it can be refused as such.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `algorithm:hex`.
    ///
    /// # Errors
    /// [`NameError::Digest`] when malformed, [`NameError::Algorithm`] for a well-formed digest of
    /// an algorithm other than sha256.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let bad = || NameError::Digest(format!("invalid digest {s:?}"));
        let (alg, hex) = s.split_once(':').ok_or_else(bad)?;
        let lower_hex = |h: &str| {
            h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        match alg {
            "sha256" if hex.len() == 64 && lower_hex(hex) => Ok(Self(s.to_owned())),
            "sha512" if hex.len() == 128 && lower_hex(hex) => Err(NameError::Algorithm(format!(
                "unsupported digest algorithm in {s:?}"
            ))),
            _ => Err(bad()),
        }
    }

    /// The sha256 digest of `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self::from_sha256(&sha2::Sha256::digest(bytes))
    }

    /// The digest for a finished sha256 hash value.
    #[must_use]
    pub fn from_sha256(hash: &[u8]) -> Self {
        Self(format!("sha256:{}", hex::encode(hash)))
    }

    /// The hex part, used to build storage paths.
    #[must_use]
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, h)| h)
    }

    /// `sha256:…` as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What follows `/manifests/`: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A mutable tag, `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    Tag(String),
    /// An immutable digest.
    Digest(Digest),
}

impl Reference {
    /// Parses a tag or, when it contains `:`, a digest.
    ///
    /// # Errors
    /// [`NameError::Tag`] for a bad tag, the [`Digest::parse`] errors for a bad digest.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.contains(':') {
            return Digest::parse(s).map(Self::Digest);
        }
        let first_ok = s
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        let rest_ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if first_ok && rest_ok && s.len() <= MAX_TAG_LEN {
            Ok(Self::Tag(s.to_owned()))
        } else {
            Err(NameError::Tag(format!("invalid tag {s:?}")))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => f.write_str(t),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_lowercase_hex() {
        let hex = "a".repeat(64);
        assert_eq!(
            Digest::parse(&format!("sha256:{hex}")).map(|d| d.hex().to_owned()),
            Ok(hex.clone())
        );
        assert!(matches!(
            Digest::parse(&format!("sha512:{}", "b".repeat(128))),
            Err(NameError::Algorithm(_))
        ));
        for bad in [
            "sha256:",
            "sha256:ABC",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("md5:{hex}"),
            "nocolon",
            &format!("sha256:{hex}0"),
        ] {
            assert!(
                matches!(Digest::parse(bad), Err(NameError::Digest(_))),
                "{bad}"
            );
        }
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn references_are_tags_or_digests() {
        assert_eq!(
            Reference::parse("v1.0_rc-1"),
            Ok(Reference::Tag("v1.0_rc-1".into()))
        );
        assert_eq!(Reference::parse("_x"), Ok(Reference::Tag("_x".into())));
        assert!(Reference::parse(&"t".repeat(128)).is_ok());
        for bad in ["", ".x", "-x", "a/b", &"t".repeat(129), "a b"] {
            assert!(
                matches!(Reference::parse(bad), Err(NameError::Tag(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Reference::parse(&format!("sha256:{}", "0".repeat(64))),
            Ok(Reference::Digest(_))
        ));
        assert!(Reference::parse("sha256:zz").is_err());
    }
}
