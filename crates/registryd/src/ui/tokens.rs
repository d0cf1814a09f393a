//! Tokens for the pages, from authd's `/auth` (the realm of `auth.token`, or `ui.tokenurl`):
//! the OAuth2 password grant at login (asking for a refresh token), then per page the refresh
//! token, the password (accounts authd gives no refresh token, e.g. LDAP or an external
//! program) or nothing (anonymous, a `GET` without credentials) for the scope the page needs.

use std::time::Duration;

use serde::Deserialize;

/// How a session proves itself to authd for each new token.
#[derive(Clone)]
pub enum Credential {
    /// Nobody logged in: authd's anonymous account.
    Anonymous,
    /// authd's refresh token from the login.
    Refresh(String),
    /// The login's password, kept only in memory, for accounts that get no refresh token.
    Password { user: String, password: String },
}

/// Never shows a secret.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Refresh(_) => f.write_str("Refresh(..)"),
            Self::Password { user, .. } => write!(f, "Password({user}, ..)"),
        }
    }
}

/// Why authd gave no token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Wrong password, or a refresh token no longer honoured.
    #[error("authd refused the credentials")]
    Refused,
    /// Too many failed attempts: authd's throttle.
    #[error("too many attempts: try again later")]
    Throttled,
    /// authd could not be reached or answered something else.
    #[error("the token server is unavailable: {0}")]
    Unavailable(String),
}

/// A token authd issued.
#[derive(Debug, Deserialize)]
pub struct Issued {
    /// The JWT.
    pub token: String,
    /// Present after a password login when the account has a password hash authd knows.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Talks to authd.
#[derive(Debug, Clone)]
pub struct TokenClient {
    http: reqwest::Client,
    /// authd's `/auth`.
    url: String,
    /// The `service` parameter (our audience).
    service: String,
}

/// How long registryd waits for authd.
const TIMEOUT: Duration = Duration::from_secs(10);

impl TokenClient {
    /// A client of the token endpoint at `url` for `service`.
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(url: &str, service: &str) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            url: url.to_owned(),
            service: service.to_owned(),
        })
    }

    /// The password grant, asking for a refresh token (`access_type=offline`) and no scope.
    ///
    /// # Errors
    /// As [`TokenError`].
    pub async fn login(&self, user: &str, password: &str) -> Result<Issued, TokenError> {
        let form = [
            ("grant_type", "password"),
            ("service", &self.service),
            ("client_id", "berth-ui"),
            ("access_type", "offline"),
            ("username", user),
            ("password", password),
        ];
        self.send(self.http.post(&self.url).form(&form)).await
    }

    /// A token for `scope` (space-separated scopes) on behalf of `credential`.
    ///
    /// # Errors
    /// As [`TokenError`].
    pub async fn token(&self, credential: &Credential, scope: &str) -> Result<Issued, TokenError> {
        let service = self.service.as_str();
        let req = match credential {
            Credential::Anonymous => self
                .http
                .get(&self.url)
                .query(&[("service", service), ("scope", scope)]),
            Credential::Refresh(refresh) => self.http.post(&self.url).form(&[
                ("grant_type", "refresh_token"),
                ("service", service),
                ("client_id", "berth-ui"),
                ("refresh_token", refresh),
                ("scope", scope),
            ]),
            Credential::Password { user, password } => self.http.post(&self.url).form(&[
                ("grant_type", "password"),
                ("service", service),
                ("client_id", "berth-ui"),
                ("username", user),
                ("password", password),
                ("scope", scope),
            ]),
        };
        self.send(req).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Issued, TokenError> {
        let resp = req
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(e.to_string()))?;
        match resp.status().as_u16() {
            200 => resp
                .json()
                .await
                .map_err(|e| TokenError::Unavailable(format!("unreadable answer: {e}"))),
            401 | 403 => Err(TokenError::Refused),
            // OAuth2's invalid_grant: an expired or forged refresh token.
            400 => {
                let body = resp.text().await.unwrap_or_default();
                if body.contains("invalid_grant") || body.contains("DENIED") {
                    Err(TokenError::Refused)
                } else {
                    Err(TokenError::Unavailable(format!("status 400: {body}")))
                }
            }
            429 => Err(TokenError::Throttled),
            other => Err(TokenError::Unavailable(format!("status {other}"))),
        }
    }
}
