//! The one error type of authd: configuration and startup failures, and every answer a client
//! can get from `/auth` other than a token (with its HTTP status and JSON code).

use std::path::PathBuf;

use axum::http::StatusCode;

/// Everything that can go wrong in authd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file that cannot be parsed or holds an invalid value.
    #[error("{file}: {reason}")]
    Config {
        /// The file, as given.
        file: PathBuf,
        /// What is wrong and where (`acl[2].match: … at line 14 column 7`).
        reason: String,
    },
    /// A file that cannot be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (shown in the message, so not chained again).
        cause: std::io::Error,
    },
    /// A signing key or certificate that cannot be used.
    #[error("{path}: {cause}")]
    Key {
        /// The key or certificate file.
        path: PathBuf,
        /// The cause (shown in the message, so not chained again).
        cause: token::KeyError,
    },
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    CertGen(String),
    /// A TLS setup failure.
    #[error("TLS: {0}")]
    Tls(String),

    /// Failed authentication: unknown user, wrong password, or no anonymous access.
    #[error("authentication failed")]
    Unauthorized,
    /// The `Authorization` header is present but not valid `Basic` credentials.
    #[error("malformed Authorization header: {0}")]
    BadAuthorization(&'static str),
    /// The `account` parameter names someone else than the authenticated user.
    #[error("account parameter {0:?} does not match the authenticated user")]
    AccountMismatch(String),
    /// A malformed `scope` parameter.
    #[error(transparent)]
    Scope(#[from] token::ScopeError),
    /// A `repository` scope naming something that is not a repository name.
    #[error(transparent)]
    Name(#[from] token::NameError),
    /// A required parameter is absent.
    #[error("missing parameter {0:?}")]
    MissingParameter(&'static str),
    /// A service this server does not issue tokens for.
    #[error("unknown service {0:?}")]
    UnknownService(String),
    /// The query string is longer than allowed.
    #[error("query string longer than {0} bytes")]
    QueryTooLong(usize),
    /// The form body is larger than allowed.
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// A method the endpoint does not serve.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A malformed form body or query string.
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// An OAuth2 grant type other than `password` and `refresh_token`.
    #[error("unsupported grant_type {0:?}")]
    UnsupportedGrant(String),
    /// A refresh token that is malformed, forged, or no longer valid for its user.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// Too many failures for this account or address.
    #[error("too many failed attempts, retry in {retry_after} s")]
    Throttled {
        /// Seconds until the lockout ends.
        retry_after: u64,
    },
    /// No such endpoint.
    #[error("not found")]
    NotFound,
    /// An authentication backend (LDAP) could not give an answer: unreachable, timed out or
    /// failing. Logged with its cause where it happens; never a denial, never counted as a
    /// failed login.
    #[error("authentication backend unavailable, retry later")]
    Unavailable,
    /// A failure on our side; the client gets a generic 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status a client gets for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::BadAuthorization(_)
            | Error::AccountMismatch(_)
            | Error::Scope(_)
            | Error::Name(_)
            | Error::MissingParameter(_)
            | Error::UnknownService(_)
            | Error::BadRequest(_)
            | Error::UnsupportedGrant(_)
            | Error::InvalidRefreshToken => StatusCode::BAD_REQUEST,
            Error::QueryTooLong(_) => StatusCode::URI_TOO_LONG,
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Error::Config { .. }
            | Error::Io { .. }
            | Error::Key { .. }
            | Error::CertGen(_)
            | Error::Tls(_)
            | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The distribution-style error code (`{"errors":[{"code":…}]}`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthorized => "UNAUTHORIZED",
            Error::Throttled { .. } => "TOOMANYREQUESTS",
            Error::UnsupportedGrant(_) => "UNSUPPORTED",
            Error::InvalidRefreshToken => "DENIED",
            Error::NotFound => "NOT_FOUND",
            Error::Name(_) => "NAME_INVALID",
            Error::MethodNotAllowed => "UNSUPPORTED",
            Error::Unavailable => "UNAVAILABLE",
            e if e.status() == StatusCode::INTERNAL_SERVER_ERROR => "UNKNOWN",
            _ => "INVALID_REQUEST",
        }
    }

    /// The RFC 6749 §5.2 `error` value, for OAuth2 clients.
    pub fn oauth_code(&self) -> &'static str {
        match self {
            Error::Unauthorized | Error::InvalidRefreshToken => "invalid_grant",
            Error::UnsupportedGrant(_) => "unsupported_grant_type",
            Error::Scope(_) | Error::Name(_) => "invalid_scope",
            Error::Unavailable => "temporarily_unavailable",
            e if e.status() == StatusCode::INTERNAL_SERVER_ERROR => "server_error",
            _ => "invalid_request",
        }
    }

    /// Builds a [`Error::Config`] for `file`.
    pub fn config(file: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Config {
            file: file.into(),
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }
}
