//! The crate's one error type: every failure a handler, the service or storage can meet, with the
//! distribution spec's code and status for each and the `{"errors":[…]}` body it answers with.
//! Internal causes are never shown to the client: they become a generic `UNKNOWN` 500 and are
//! handed to the request-log middleware through the response extensions.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::names::NameError;

/// Everything that can go wrong, named after what the client (or operator) did.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(String),
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    #[error("blob upload unknown to registry")]
    BlobUploadUnknown,
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    #[error("blob unknown to registry: {0}")]
    ManifestBlobUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    #[error("provided length did not match content length: {0}")]
    SizeInvalid(String),
    /// A manifest over the buffering limit.
    #[error("manifest larger than {0} bytes")]
    ManifestTooLarge(usize),
    /// A chunk that does not start where the upload ends; answers with the current range.
    #[error("chunk out of order: upload is at offset {size}")]
    UploadOutOfOrder {
        location: String,
        uuid: String,
        size: u64,
    },
    /// A chunk's `Content-Range` that does not parse.
    #[error("invalid Content-Range: {0}")]
    ContentRangeInvalid(String),
    /// A `Range` the blob cannot satisfy.
    #[error("requested range not satisfiable")]
    RangeInvalid { size: u64 },
    /// No or bad credentials; carries the `WWW-Authenticate` value.
    #[error("authentication required")]
    Unauthorized { challenge: String },
    /// A cap on open upload sessions is reached (`storage.uploadlimits`).
    #[error("too many upload sessions: {0}")]
    TooManyUploads(String),
    #[error("the operation is unsupported: {0}")]
    Unsupported(String),
    /// A path under `/v2/` that names no endpoint.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    #[error("bad request parameter: {0}")]
    BadParameter(String),
    /// Startup problems: a broken configuration, unreadable keys.
    #[error("configuration: {0}")]
    Config(String),
    /// A database error; one that says the server is away becomes [`Error::Unavailable`]
    /// instead (see the `From` below).
    #[error("database: {0}")]
    Db(sqlx::Error),
    /// The metadata database cannot be reached (PostgreSQL restarting, the network away): the
    /// client may retry; the message names the cause.
    #[error("metadata database unavailable: {0}")]
    Unavailable(String),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("internal: {0}")]
    Internal(String),
    /// A pull-through cache miss the upstream could not fill (unreachable, 5xx, 429, or bytes
    /// that do not match their digest); the message says which upstream and why.
    #[error("{0}")]
    Upstream(String),
    /// A blob's bytes were collected between the caller placing them and recording them (see
    /// `service/gc.rs`); callers place them again, so a client never sees it.
    #[error("blob bytes were collected meanwhile: {0}")]
    BlobCollected(String),
}

/// An internal error that was answered with a generic 500; the request logger prints it.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl Error {
    /// The spec's error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::BlobUnknown(_) => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid(_) => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid(_) => "DIGEST_INVALID",
            Self::ManifestBlobUnknown(_) => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid(_) => "MANIFEST_INVALID",
            Self::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            Self::NameInvalid(_) => "NAME_INVALID",
            Self::NameUnknown(_) => "NAME_UNKNOWN",
            Self::SizeInvalid(_) | Self::ManifestTooLarge(_) => "SIZE_INVALID",
            Self::UploadOutOfOrder { .. }
            | Self::RangeInvalid { .. }
            | Self::ContentRangeInvalid(_) => "RANGE_INVALID",
            Self::Unauthorized { .. } => "UNAUTHORIZED",
            Self::Db(sqlx::Error::PoolTimedOut) | Self::TooManyUploads(_) => "TOOMANYREQUESTS",
            Self::Unsupported(_) | Self::NotFound(_) | Self::BadParameter(_) => "UNSUPPORTED",
            Self::Upstream(_) | Self::Unavailable(_) => "UNAVAILABLE",
            Self::Config(_)
            | Self::Db(_)
            | Self::Migrate(_)
            | Self::Io(_)
            | Self::Internal(_)
            | Self::BlobCollected(_) => "UNKNOWN",
        }
    }

    /// The HTTP status the spec gives that code.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        if self.is_storage_full() {
            return StatusCode::INSUFFICIENT_STORAGE;
        }
        match self {
            Self::BlobUnknown(_)
            | Self::BlobUploadUnknown
            | Self::ManifestUnknown(_)
            | Self::NameUnknown(_)
            | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BlobUploadInvalid(_)
            | Self::DigestInvalid(_)
            | Self::ManifestBlobUnknown(_)
            | Self::ManifestInvalid(_)
            | Self::NameInvalid(_)
            | Self::SizeInvalid(_)
            | Self::BadParameter(_) => StatusCode::BAD_REQUEST,
            Self::ManifestTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UploadOutOfOrder { .. }
            | Self::RangeInvalid { .. }
            | Self::ContentRangeInvalid(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Db(sqlx::Error::PoolTimedOut) | Self::TooManyUploads(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Unsupported(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Upstream(_) | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Config(_)
            | Self::Db(_)
            | Self::Migrate(_)
            | Self::Io(_)
            | Self::Internal(_)
            | Self::BlobCollected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether our disk (blob files or the database) is full: answered 507 with a message
    /// that says so, since the client can only wait for an operator to free space.
    fn is_storage_full(&self) -> bool {
        /// SQLite's `SQLITE_FULL`.
        const SQLITE_FULL: &str = "13";
        match self {
            Self::Io(e) => e.kind() == std::io::ErrorKind::StorageFull,
            Self::Db(sqlx::Error::Database(e)) => e.code().as_deref() == Some(SQLITE_FULL),
            _ => false,
        }
    }

    /// Whether the cause is ours: logged by the request observer, hidden from the client. An
    /// upstream's failure is the client's to know (it names no secret).
    fn is_internal(&self) -> bool {
        self.status().is_server_error() && !matches!(self, Self::Upstream(_))
    }
}

/// A database error, or [`Error::Unavailable`] when it says the server cannot be reached: the
/// connection failed or was cut, no connection came free in time (the pool could not connect;
/// the writer queue's own full answer is built as `Db(PoolTimedOut)`, 429), or the server is
/// shutting down or starting (PostgreSQL's classes `08` and `57P`).
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        let away = match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(d) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        };
        if away {
            Self::Unavailable(e.to_string())
        } else {
            Self::Db(e)
        }
    }
}

impl From<NameError> for Error {
    fn from(e: NameError) -> Self {
        match e {
            NameError::Digest(m) => Self::DigestInvalid(m),
            NameError::Algorithm(m) => Self::DigestInvalid(m),
            NameError::Tag(m) => Self::ManifestInvalid(m),
        }
    }
}

impl From<token::NameError> for Error {
    fn from(e: token::NameError) -> Self {
        Self::NameInvalid(e.to_string())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Db(sqlx::Error::PoolTimedOut) => "too many requests: retry later".to_owned(),
            Self::Unavailable(_) => {
                "the registry's database is unavailable: retry later".to_owned()
            }
            _ if self.status() == StatusCode::INSUFFICIENT_STORAGE => {
                "registry storage is full: retry once space is freed".to_owned()
            }
            _ if self.is_internal() => "internal server error".to_owned(),
            _ => self.to_string(),
        };
        let body = json!({"errors": [{"code": self.code(), "message": message, "detail": ""}]});
        let mut resp = (self.status(), axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        match &self {
            Self::Unauthorized { challenge } => {
                if let Ok(v) = HeaderValue::from_str(challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Self::UploadOutOfOrder {
                location,
                uuid,
                size,
            } => {
                let range = if *size == 0 {
                    "0-0".to_owned()
                } else {
                    format!("0-{}", size - 1)
                };
                for (name, value) in [
                    ("location", location.as_str()),
                    ("docker-upload-uuid", uuid),
                    ("range", &range),
                ] {
                    if let Ok(v) = HeaderValue::from_str(value) {
                        headers.insert(name, v);
                    }
                }
            }
            Self::Db(sqlx::Error::PoolTimedOut) | Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::RangeInvalid { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        if self.is_internal() {
            resp.extensions_mut()
                .insert(InternalCause(self.to_string()));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(resp: Response) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn client_errors_carry_code_status_and_message() {
        let resp = Error::BlobUnknown("sha256:x".into()).into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let v = body_json(resp).await;
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        assert!(v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sha256:x"));
    }

    #[tokio::test]
    async fn internal_errors_are_hidden_from_the_client() {
        let resp = Error::Internal("secret path /var/x".into()).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(resp.extensions().get::<InternalCause>().is_some());
        let v = body_json(resp).await;
        assert_eq!(v["errors"][0]["code"], "UNKNOWN");
        assert!(!v.to_string().contains("secret"));
    }

    #[test]
    fn out_of_order_chunks_answer_416_with_the_current_range() {
        let resp = Error::UploadOutOfOrder {
            location: "/v2/a/blobs/uploads/u".into(),
            uuid: "u".into(),
            size: 10,
        }
        .into_response();
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(resp.headers()["range"], "0-9");
        assert_eq!(resp.headers()["docker-upload-uuid"], "u");
    }

    #[test]
    fn unauthorized_sets_the_challenge() {
        let resp = Error::Unauthorized {
            challenge: "Bearer realm=\"r\"".into(),
        }
        .into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"r\""
        );
    }

    #[tokio::test]
    async fn an_exhausted_database_pool_asks_the_client_to_retry() {
        let resp = Error::Db(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert!(resp.extensions().get::<InternalCause>().is_none());
        assert_eq!(
            body_json(resp).await["errors"][0]["code"],
            "TOOMANYREQUESTS"
        );
        assert_eq!(
            Error::Db(sqlx::Error::RowNotFound).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[tokio::test]
    async fn a_database_that_is_away_answers_503_unavailable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let resp = Error::from(sqlx::Error::Io(refused)).into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert!(resp.extensions().get::<InternalCause>().is_some(), "logged");
        let v = body_json(resp).await;
        assert_eq!(v["errors"][0]["code"], "UNAVAILABLE");
        assert!(
            !v.to_string().contains("refused"),
            "the cause stays in the log"
        );
        assert_eq!(
            Error::from(sqlx::Error::PoolTimedOut).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            Error::from(sqlx::Error::RowNotFound).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[tokio::test]
    async fn a_full_upload_cap_says_so_with_429() {
        let resp = Error::TooManyUploads("a has 5 open".into()).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let v = body_json(resp).await;
        assert_eq!(v["errors"][0]["code"], "TOOMANYREQUESTS");
        assert!(v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("a has 5 open"));
    }

    #[test]
    fn name_errors_map_to_spec_codes() {
        assert_eq!(
            token::RepoName::parse("A")
                .map_err(Error::from)
                .err()
                .map(|e| e.code()),
            Some("NAME_INVALID")
        );
        assert_eq!(
            Error::from(NameError::Digest("x".into())).code(),
            "DIGEST_INVALID"
        );
        assert_eq!(
            Error::from(NameError::Algorithm("x".into())).status(),
            StatusCode::BAD_REQUEST
        );
    }
}
