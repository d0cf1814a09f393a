//! The stylesheet and script every page loads, compiled into the binary: the pages need
//! nothing from another host (they work on an air-gapped network) and no build step.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::PageError;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("app.js");

/// `GET /ui/static/{file}`.
///
/// # Errors
/// `NotFound` for any other file.
pub async fn get(Path(file): Path<String>) -> Result<Response, PageError> {
    let (body, content_type) = match file.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return Err(PageError::NotFound("No such file.".into())),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response())
}
