//! An upstream's `WWW-Authenticate` challenge (`Bearer realm=…,service=…,scope=…` or `Basic
//! realm=…`) and its token endpoint's answer.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

/// What a 401 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Fetch a token from `realm` for `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Send the account's password with every request (ECR-style upstreams).
    Basic,
}

impl Challenge {
    /// Parses a `WWW-Authenticate` value; `None` for schemes we cannot answer.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let params = params(rest);
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Self::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        Some(Self::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `key=value` or `key="quoted, value"` pairs separated by commas; keys lowercased.
fn params(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.insert(key, value);
        rest = tail.trim_start().trim_start_matches(',');
    }
    out
}

/// A token endpoint's JSON answer (Docker's `token` or OAuth2's `access_token`).
#[derive(Debug, Deserialize)]
pub struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenAnswer {
    /// The token and how long it may be reused: its lifetime (60 s when unstated, the spec's
    /// default) less 10 s of margin, at least 1 s.
    #[must_use]
    pub fn into_token(self) -> Option<(String, Duration)> {
        let token = self.token.or(self.access_token)?;
        let life = self.expires_in.unwrap_or(60).saturating_sub(10).max(1);
        Some((token, Duration::from_secs(life)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_style_bearer() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            })
        );
    }

    #[test]
    fn quoted_commas_escapes_and_spacing() {
        let c = Challenge::parse(
            r#"bearer  realm="http://a/b?x=1,2" , service=svc, scope="repository:a:pull,push" "#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "http://a/b?x=1,2".into(),
                service: Some("svc".into()),
                scope: Some("repository:a:pull,push".into()),
            })
        );
        let c = Challenge::parse(r#"Bearer realm="say \"hi\"""#);
        assert!(matches!(c, Some(Challenge::Bearer { realm, .. }) if realm == "say \"hi\""));
    }

    #[test]
    fn basic_and_unknown() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="ecr""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None);
        assert!(Challenge::parse(r#"Bearer realm="unterminated"#).is_some());
    }

    #[test]
    fn token_answers() {
        let a: TokenAnswer = serde_json::from_str(r#"{"token":"t","expires_in":300}"#).unwrap();
        assert_eq!(a.into_token(), Some(("t".into(), Duration::from_secs(290))));
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"o"}"#).unwrap();
        assert_eq!(a.into_token(), Some(("o".into(), Duration::from_secs(50))));
        let a: TokenAnswer = serde_json::from_str(r#"{"expires_in":5}"#).unwrap();
        assert_eq!(a.into_token(), None);
    }
}
