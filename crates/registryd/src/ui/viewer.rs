//! Who is looking at a page ([`Viewer`], from the session cookie) and what they may see
//! ([`Viewer::access`]): everything on an open registry, everything for a logged-in htpasswd
//! user, and otherwise what a token from authd grants for the page's scope — the user's, or
//! the anonymous account's when nobody is logged in. Tokens are reused for a minute at most,
//! so an ACL edit shows on the pages as soon as on `docker pull`'s next token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::PageError;
use super::session::{cookie_value, same_secret, Session, COOKIE};
use super::tokens::{Credential, TokenError};
use super::UiState;
use crate::app::AppState;
use crate::auth::{Authenticator, Grants};
use crate::names::RepoName;
use crate::service::Registry;

/// The longest a token from authd is reused, seconds.
const TOKEN_REUSE: u64 = 60;

/// Who asks.
#[derive(Debug, Clone)]
pub enum Who {
    /// An open registry: no logins, everyone may do everything.
    Everyone,
    /// Nobody is logged in.
    Anonymous,
    /// A login.
    User(Arc<Session>),
}

/// The person looking at a page, with what the pages need to answer them.
pub struct Viewer {
    pub who: Who,
    pub ui: Arc<UiState>,
    pub app: Arc<AppState>,
}

/// What the viewer may do, for one page's scope.
#[derive(Debug)]
pub struct Access(Option<Grants>);

impl Access {
    /// Whether `action` on `kind:name` is granted.
    #[must_use]
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.0
            .as_ref()
            .is_some_and(|g| g.allows(kind, name, action))
    }
}

impl FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, PageError> {
        let ui = parts
            .extensions
            .get::<Arc<UiState>>()
            .cloned()
            .ok_or_else(|| PageError::Unavailable("the web pages are not set up".into()))?;
        let id = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| cookie_value(v, COOKIE))
            .filter(|id| !id.is_empty());
        let who = match (id, &app.auth) {
            (Some(id), _) => Who::User(
                ui.sessions
                    .get(id)
                    .ok_or(PageError::Login { expired: true })?,
            ),
            (None, Authenticator::Open) => Who::Everyone,
            (None, _) => Who::Anonymous,
        };
        Ok(Self {
            who,
            ui,
            app: app.clone(),
        })
    }
}

impl Viewer {
    /// The registry behind the pages.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.app.registry
    }

    /// The logged-in account, if any.
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        match &self.who {
            Who::User(s) => Some(&s.user),
            _ => None,
        }
    }

    /// Whether this registry has logins at all (it is not open).
    #[must_use]
    pub fn has_logins(&self) -> bool {
        !matches!(self.app.auth, Authenticator::Open)
    }

    /// The CSRF token the viewer's forms carry: the session's, or on an open registry one
    /// secret per process (which keeps other sites from posting through a visitor's browser).
    #[must_use]
    pub fn csrf(&self) -> &str {
        match &self.who {
            Who::User(s) => &s.csrf,
            _ => &self.ui.open_csrf,
        }
    }

    /// Refuses a form whose CSRF token is missing or wrong.
    ///
    /// # Errors
    /// `Forbidden`.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), PageError> {
        match sent {
            Some(sent) if same_secret(sent, self.csrf()) => Ok(()),
            _ => Err(PageError::Forbidden(
                "this form has expired or did not come from this page: reload the page and try again".into(),
            )),
        }
    }

    /// Whether the viewer may delete in repository `name` (and deletes are on), once pulling
    /// from it is granted.
    ///
    /// # Errors
    /// `unknown()` (the page then reveals nothing) without pull; as [`Viewer::access`].
    pub async fn repo_access(
        &self,
        name: &RepoName,
        unknown: impl Fn() -> PageError,
    ) -> Result<bool, PageError> {
        let access = self
            .access(&format!("repository:{name}:pull,delete"))
            .await?;
        if !access.allows("repository", name.as_str(), "pull") {
            return Err(unknown());
        }
        Ok(
            self.registry().delete_enabled()
                && access.allows("repository", name.as_str(), "delete"),
        )
    }

    /// What the viewer may do within `scope` (`registry:catalog:*`, `repository:NAME:pull,delete`).
    ///
    /// # Errors
    /// `Login` when authd no longer honours the session (which then ends); `Unavailable` when
    /// authd cannot answer.
    pub async fn access(&self, scope: &str) -> Result<Access, PageError> {
        match (&self.app.auth, &self.who) {
            (Authenticator::Open, _) => Ok(Access(Some(Grants::All))),
            (Authenticator::Basic(_), Who::User(s)) => {
                Ok(Access(Some(Grants::User(s.user.clone()))))
            }
            (Authenticator::Basic(_), _) => Ok(Access(None)),
            (Authenticator::Bearer(bearer), who) => {
                let (key, credential) = match who {
                    Who::User(s) => (s.id.as_str(), &s.credential),
                    _ => ("", &Credential::Anonymous),
                };
                let key = (key.to_owned(), scope.to_owned());
                let now = token::unix_now();
                if let Some((claims, until)) = self.ui.token_cache.get(&key) {
                    if until > now {
                        return Ok(Access(Some(Grants::Token(claims))));
                    }
                }
                let Some(client) = &self.ui.tokens else {
                    return Err(PageError::Unavailable(
                        "no token server is configured".into(),
                    ));
                };
                let issued = match client.token(credential, scope).await {
                    Ok(issued) => issued,
                    Err(TokenError::Refused) => {
                        return match who {
                            Who::User(s) => {
                                self.ui.sessions.remove(&s.id);
                                Err(PageError::Login { expired: true })
                            }
                            // authd serves no anonymous account.
                            _ => Ok(Access(None)),
                        };
                    }
                    Err(e) => return Err(PageError::Unavailable(e.to_string())),
                };
                let claims = bearer.grants_of(&issued.token).map_err(|e| {
                    PageError::Unavailable(format!("authd's token did not verify: {e}"))
                })?;
                let until = claims.exp.min(now + TOKEN_REUSE);
                self.ui.token_cache.insert(key, (claims.clone(), until));
                Ok(Access(Some(Grants::Token(claims))))
            }
        }
    }
}
