//! What a page answers when it cannot show what was asked: an HTML page with the status that
//! says why, or for a session authd no longer honours (or a forged or expired cookie) the way
//! to the login page. Internal causes are logged by the request observer, never shown.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::layout;
use super::session::clear_cookie;
use crate::error::{Error, InternalCause};

/// A page that cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No valid session where one was presented: log in (again).
    #[error("please log in again")]
    Login { expired: bool },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    /// Deletes are off (`storage.delete.enabled`).
    #[error("{0}")]
    NotAllowed(String),
    /// authd cannot answer, or too many logins were attempted.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        match e {
            Error::NameUnknown(_) | Error::ManifestUnknown(_) | Error::BlobUnknown(_) => {
                Self::NotFound("Not found.".into())
            }
            Error::NameInvalid(m) | Error::BadParameter(m) => Self::BadRequest(m),
            Error::Unsupported(m) => Self::NotAllowed(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Login { .. } => StatusCode::SEE_OTHER,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let Self::Login { expired } = self {
            let to = if expired {
                "/ui/login?expired=1"
            } else {
                "/ui/login"
            };
            return (
                [(header::SET_COOKIE, clear_cookie(false))],
                Redirect::to(to),
            )
                .into_response();
        }
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let message = match &self {
            Self::Internal(_) => "Something went wrong on the registry's side.".to_owned(),
            other => other.to_string(),
        };
        let mut resp = (status, layout::bare(title, &message)).into_response();
        if let Self::Internal(cause) = self {
            resp.extensions_mut().insert(InternalCause(cause));
        }
        resp
    }
}
