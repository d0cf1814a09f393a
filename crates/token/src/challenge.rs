//! The `WWW-Authenticate: Bearer …` challenge a registry sends to point a client at the realm.

use std::fmt;

/// A Bearer challenge; its `Display` is the header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// Where the client gets a token (authd's `/auth`).
    pub realm: &'a str,
    /// The service the token must be issued for (the token's `aud`).
    pub service: &'a str,
    /// The scope the request needs, e.g. `repository:team/app:pull,push`.
    pub scope: Option<String>,
    /// Set when a valid token lacked the needed action (`error="insufficient_scope"`).
    pub insufficient_scope: bool,
}

impl fmt::Display for Challenge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Bearer realm=\"{}\",service=\"{}\"",
            Quoted(self.realm),
            Quoted(self.service)
        )?;
        if let Some(scope) = &self.scope {
            write!(f, ",scope=\"{}\"", Quoted(scope))?;
        }
        if self.insufficient_scope {
            f.write_str(",error=\"insufficient_scope\"")?;
        }
        Ok(())
    }
}

/// Writes a value for a quoted-string, escaping `"` and `\` (RFC 9110 §5.6.4).
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                write!(f, "\\")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_distribution() {
        let mut c = Challenge {
            realm: "https://auth.example.com/auth",
            service: "registry",
            scope: None,
            insufficient_scope: false,
        };
        assert_eq!(
            c.to_string(),
            r#"Bearer realm="https://auth.example.com/auth",service="registry""#
        );
        c.scope = Some("repository:team/app:pull,push".into());
        c.insufficient_scope = true;
        assert_eq!(
            c.to_string(),
            r#"Bearer realm="https://auth.example.com/auth",service="registry",scope="repository:team/app:pull,push",error="insufficient_scope""#
        );
    }

    #[test]
    fn escapes_quotes() {
        let c = Challenge {
            realm: "a\"b",
            service: "s\\",
            scope: None,
            insufficient_scope: false,
        };
        assert_eq!(c.to_string(), r#"Bearer realm="a\"b",service="s\\""#);
    }
}
