//! Who may do what: turns a request's `Authorization` header and the endpoint's
//! [`RequiredAccess`] into [`Grants`] or a 401 with the right challenge. The one place access is
//! checked; the three schemes (authd's Bearer tokens, htpasswd Basic auth, open) live in the
//! submodules.

mod basic;
mod bearer;

pub use basic::BasicAuth;
pub use bearer::BearerAuth;

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use token::Claims;

use crate::config;
use crate::endpoint::RequiredAccess;
use crate::error::Error;

/// What an authenticated request may do beyond the endpoint it called (e.g. mount sources).
#[derive(Debug, Clone)]
pub enum Grants {
    /// Open registry: everything, for anyone.
    All,
    /// A Basic-authenticated user: everything.
    User(String),
    /// What the Bearer token lists.
    Token(Arc<Claims>),
}

impl Grants {
    /// Whether `action` on `kind:name` is granted.
    #[must_use]
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        match self {
            Self::All | Self::User(_) => true,
            Self::Token(c) => c.grants(kind, name, action),
        }
    }

    /// The repositories these grants may pull from, for automatic mounts; `None` when every
    /// repository may be pulled (an open registry, an htpasswd user).
    #[must_use]
    pub fn pullable_repositories(&self) -> Option<Vec<String>> {
        match self {
            Self::All | Self::User(_) => None,
            Self::Token(c) => Some(
                c.access
                    .iter()
                    .filter(|a| c.grants("repository", &a.name, "pull"))
                    .map(|a| a.name.clone())
                    .collect(),
            ),
        }
    }

    /// The authenticated account, for logs.
    #[must_use]
    pub fn subject(&self) -> &str {
        match self {
            Self::All => "",
            Self::User(u) => u,
            Self::Token(c) => &c.sub,
        }
    }
}

/// The configured scheme.
#[derive(Debug)]
pub enum Authenticator {
    /// No auth section: everyone may do everything.
    Open,
    /// `auth.token`.
    Bearer(bearer::BearerAuth),
    /// `auth.htpasswd`.
    Basic(basic::BasicAuth),
}

impl Authenticator {
    /// Builds the scheme of the `auth` section, reading its certificate bundle or htpasswd file.
    ///
    /// # Errors
    /// `Config` when the files cannot be read or parsed.
    pub fn from_config(auth: Option<&config::Auth>) -> Result<Self, Error> {
        Ok(match auth {
            None => Self::Open,
            Some(config::Auth::Token(t)) => Self::Bearer(bearer::BearerAuth::new(t)?),
            Some(config::Auth::Htpasswd(h)) => Self::Basic(basic::BasicAuth::load(h)?),
        })
    }

    /// Checks the request's credentials against what the endpoint needs (`None`: only a valid
    /// identity, as for `GET /v2/`).
    ///
    /// # Errors
    /// `Unauthorized` with a challenge naming the needed scope, and `insufficient_scope` when a
    /// valid token lacks it.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        need: Option<&RequiredAccess>,
    ) -> Result<Grants, Error> {
        let credentials = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match self {
            Self::Open => Ok(Grants::All),
            Self::Bearer(b) => b.authorize(credentials, need),
            Self::Basic(b) => b.authorize(credentials).await,
        }
    }
}

/// The credentials after `scheme ` (case-insensitive), if the header uses that scheme.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_is_case_insensitive() {
        assert_eq!(strip_scheme("Bearer abc", "bearer"), Some("abc"));
        assert_eq!(strip_scheme("basic abc", "Basic"), Some("abc"));
        assert_eq!(strip_scheme("Basic abc", "Bearer"), None);
        assert_eq!(strip_scheme("Bearer", "Bearer"), None);
    }

    #[tokio::test]
    async fn open_registry_allows_everything() {
        let g = Authenticator::Open
            .authorize(&HeaderMap::new(), None)
            .await
            .unwrap();
        assert!(g.allows("repository", "x", "push"));
        assert_eq!(g.pullable_repositories(), None);
    }

    #[test]
    fn a_token_may_pull_only_what_it_lists_with_pull() {
        let access = |name: &str, actions: &[&str]| token::claims::Access {
            kind: "repository".into(),
            name: name.into(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        };
        let claims = Claims::new(
            "i",
            "dave",
            "registry",
            std::time::Duration::from_secs(60),
            vec![
                access("dave/loot", &["pull", "push"]),
                access("dave/drop", &["push"]),
                access("team/all", &["*"]),
                token::claims::Access {
                    kind: "registry".into(),
                    name: "catalog".into(),
                    actions: vec!["*".into()],
                },
            ],
        );
        assert_eq!(
            Grants::Token(Arc::new(claims)).pullable_repositories(),
            Some(vec!["dave/loot".to_owned(), "team/all".to_owned()])
        );
    }
}
