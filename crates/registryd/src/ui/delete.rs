//! Deleting a tag (the manifest stays) or a manifest (with every tag naming it): a confirmation
//! page, then a POST carrying the CSRF token. Offered only when `storage.delete.enabled` is on
//! and the viewer's token grants `delete` on the repository, and checked again on the POST.

use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};

use super::error::PageError;
use super::layout::{self, query_value};
use super::viewer::Viewer;
use crate::names::{Reference, RepoName};

/// Checks the viewer may delete in `name`.
async fn check(viewer: &Viewer, name: &RepoName) -> Result<(), PageError> {
    if !viewer.registry().delete_enabled() {
        return Err(PageError::NotAllowed(
            "Deleting is turned off on this registry (storage.delete.enabled).".into(),
        ));
    }
    let access = viewer.access(&format!("repository:{name}:delete")).await?;
    if access.allows("repository", name.as_str(), "delete") {
        Ok(())
    } else {
        Err(PageError::Forbidden(format!(
            "You may not delete in {name}."
        )))
    }
}

/// `GET /ui/r/NAME/-/REFERENCE/delete`: are you sure?
///
/// # Errors
/// `NotAllowed`/`Forbidden` as [`check`].
pub async fn confirm(
    viewer: &Viewer,
    name: &RepoName,
    reference: &Reference,
) -> Result<Markup, PageError> {
    check(viewer, name).await?;
    let what = match reference {
        Reference::Tag(t) => {
            html! { "Delete the tag " code { (name) ":" (t) } "? The manifest it names stays, as do its other tags." }
        }
        Reference::Digest(d) => {
            html! { "Delete the manifest " code.wrap { (name) "@" (d) } " and every tag that names it?" }
        }
    };
    let back = format!("/ui/r/{name}/-/{reference}");
    let body = html! {
        p { (what) }
        form.confirm method="post" action={ (back) "/delete" } {
            input type="hidden" name="csrf" value=(viewer.csrf());
            button.danger type="submit" { "Delete" }
            " "
            a href=(back) { "Cancel" }
        }
    };
    Ok(layout::page(viewer, "Delete?", &body))
}

/// `POST /ui/r/NAME/-/REFERENCE/delete`, then back to the tags.
///
/// # Errors
/// `Forbidden` without the CSRF token or the right; `NotFound` when there is nothing to
/// delete.
pub async fn delete(
    viewer: &Viewer,
    name: &RepoName,
    reference: &Reference,
    csrf: Option<&str>,
) -> Result<Response, PageError> {
    viewer.check_csrf(csrf)?;
    check(viewer, name).await?;
    viewer.registry().delete_manifest(name, reference).await?;
    tracing::info!(user = viewer.user().unwrap_or(""), repo = %name, %reference, "deleted from the web pages");
    let done = format!("{name}:{reference}");
    Ok(Redirect::to(&format!("/ui/r/{name}?deleted={}", query_value(&done))).into_response())
}
