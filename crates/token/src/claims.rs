//! The JWT claim set of a registry token, and its `access` list.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One granted resource: what a token lets its bearer do to one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Resource type (`repository`, `registry`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Resource name.
    pub name: String,
    /// Granted actions, sorted; may be empty.
    pub actions: Vec<String>,
}

/// The `aud` claim: a single string on the wire, though an array is accepted when reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Audience(vec![s]),
            OneOrMany::Many(v) => Audience(v),
        })
    }
}

/// The claims of a token issued by authd and checked by a registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer; the registry's `auth.token.issuer` must equal it.
    pub iss: String,
    /// Subject: the authenticated account (`""` for anonymous).
    pub sub: String,
    /// Audience: the service the token is for.
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Unique token id.
    pub jti: String,
    /// What the token grants; one entry per requested scope.
    #[serde(default)]
    pub access: Vec<Access>,
}

/// Seconds since the Unix epoch (0 for a clock set before it): the time base of `exp`, `nbf`
/// and `iat`, and of anything else that expires alongside tokens.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Claims {
    /// Claims valid from now for `ttl`, with a fresh random `jti`.
    pub fn new(
        issuer: &str,
        subject: &str,
        audience: &str,
        ttl: Duration,
        access: Vec<Access>,
    ) -> Self {
        let now = unix_now();
        Claims {
            iss: issuer.to_owned(),
            sub: subject.to_owned(),
            aud: Audience(vec![audience.to_owned()]),
            exp: now.saturating_add(ttl.as_secs()),
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
        }
    }

    /// Whether some `access` entry of this type and name lists `action` (or `*`).
    pub fn grants(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| {
            a.kind == kind && a.name == name && a.actions.iter().any(|x| x == action || x == "*")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims::new(
            "berth-auth",
            "alice",
            "registry",
            Duration::from_secs(300),
            vec![Access {
                kind: "repository".into(),
                name: "alice/app".into(),
                actions: vec!["pull".into(), "push".into()],
            }],
        )
    }

    #[test]
    fn audience_is_a_string_on_the_wire_and_reads_either_form() -> Result<(), serde_json::Error> {
        let json = serde_json::to_value(claims())?;
        assert_eq!(json["aud"], "registry");
        assert_eq!(json["access"][0]["type"], "repository");
        let many: Audience = serde_json::from_str(r#"["a","b"]"#)?;
        assert_eq!(many, Audience(vec!["a".into(), "b".into()]));
        Ok(())
    }

    #[test]
    fn grants_only_what_is_listed() {
        let mut c = claims();
        assert!(c.grants("repository", "alice/app", "pull"));
        assert!(!c.grants("repository", "alice/app", "delete"));
        assert!(!c.grants("repository", "alice/other", "pull"));
        assert!(!c.grants("registry", "alice/app", "pull"));
        c.access.push(Access {
            kind: "registry".into(),
            name: "catalog".into(),
            actions: vec!["*".into()],
        });
        assert!(c.grants("registry", "catalog", "*"));
    }

    #[test]
    fn times_are_consistent_and_jti_unique() {
        let (a, b) = (claims(), claims());
        assert_eq!(a.exp, a.iat + 300);
        assert_eq!(a.nbf, a.iat);
        assert_ne!(a.jti, b.jti);
    }
}
