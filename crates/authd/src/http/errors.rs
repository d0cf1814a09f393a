//! How an [`Error`] reaches a client: distribution's `{"errors":[{code,message,detail}]}` plus
//! OAuth2's `error`/`error_description` in one JSON body, `WWW-Authenticate: Basic` on 401,
//! `Retry-After` on 429. Internal causes are logged and replaced by a generic message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::Error;

/// The realm of the Basic challenge sent with 401.
const BASIC_REALM: &str = "Basic realm=\"Berth token service\"";

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "internal error");
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        let body = json!({
            "errors": [{"code": self.code(), "message": message, "detail": null}],
            "error": self.oauth_code(),
            "error_description": message,
        });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            Error::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(BASIC_REALM),
                );
            }
            Error::Throttled { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_status_code_and_headers() {
        let table = [
            (
                Error::Unauthorized,
                StatusCode::UNAUTHORIZED,
                Some(header::WWW_AUTHENTICATE),
            ),
            (
                Error::Throttled { retry_after: 7 },
                StatusCode::TOO_MANY_REQUESTS,
                Some(header::RETRY_AFTER),
            ),
            (
                Error::UnknownService("x".into()),
                StatusCode::BAD_REQUEST,
                None,
            ),
            (Error::QueryTooLong(8192), StatusCode::URI_TOO_LONG, None),
            (
                Error::Backend("ldap_auth".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            ),
            (
                Error::Internal("secret detail".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
            ),
        ];
        for (err, status, header) in table {
            let r = err.into_response();
            assert_eq!(r.status(), status);
            if let Some(h) = header {
                assert!(r.headers().contains_key(h), "{status}");
            }
        }
    }
}
