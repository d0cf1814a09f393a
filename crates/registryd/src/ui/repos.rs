//! The repositories page: the catalog in pages of [`PAGE`] with a prefix filter, each
//! repository's tag count and last push — when the viewer's token grants `registry:catalog:*`;
//! otherwise (and always, below it) a box to open a repository by name.

use axum::extract::Query;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::PageError;
use super::layout::{self, query_value};
use super::viewer::Viewer;
use crate::names::RepoName;

/// Repositories per page.
const PAGE: u32 = 50;

/// `?prefix=…&last=…`
#[derive(Debug, Default, Deserialize)]
pub struct ReposQuery {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    last: String,
}

/// `GET /ui/`.
///
/// # Errors
/// As [`Viewer::access`]; `Internal` when the database fails.
pub async fn list(viewer: Viewer, Query(q): Query<ReposQuery>) -> Result<Markup, PageError> {
    let access = viewer.access("registry:catalog:*").await?;
    let body = if access.allows("registry", "catalog", "*") {
        let page = viewer
            .registry()
            .repo_summaries(&q.prefix, &q.last, PAGE)
            .await?;
        html! {
            form.filter method="get" action="/ui/" role="search" {
                label for="prefix" { "Names starting with" }
                input #prefix type="search" name="prefix" value=(q.prefix) placeholder="team/";
                button type="submit" { "Filter" }
            }
            @if page.items.is_empty() {
                p.empty { "No repositories" @if !q.prefix.is_empty() { " starting with " code { (q.prefix) } } "." }
            } @else {
                div.scroll {
                    table #repositories {
                        thead { tr { th scope="col" { "Repository" } th.num scope="col" { "Tags" } th scope="col" { "Last push" } } }
                        tbody {
                            @for r in &page.items {
                                tr {
                                    td { a href={ "/ui/r/" (r.name) } { (r.name) } }
                                    td.num { (r.tags) }
                                    td { (layout::when(r.last_push)) }
                                }
                            }
                        }
                    }
                }
            }
            @if page.more {
                @if let Some(last) = page.items.last() {
                    nav.pager aria-label="Pages" {
                        a rel="next" href={ "/ui/?prefix=" (query_value(&q.prefix)) "&last=" (query_value(&last.name)) } { "Next page →" }
                    }
                }
            }
            (open_box())
        }
    } else {
        html! {
            p.note {
                "Your account may not list the registry's repositories"
                @if viewer.user().is_none() && viewer.has_logins() { " (" a href="/ui/login" { "log in" } " to see more)" }
                ". Open one by name:"
            }
            (open_box())
        }
    };
    Ok(layout::page(&viewer, "Repositories", &body))
}

fn open_box() -> Markup {
    html! {
        form.open method="get" action="/ui/open" {
            label for="name" { "Open a repository" }
            input #name type="text" name="name" placeholder="team/app" required autocapitalize="none" spellcheck="false";
            button type="submit" { "Open" }
        }
    }
}

/// `?name=…`
#[derive(Debug, Deserialize)]
pub struct OpenQuery {
    #[serde(default)]
    name: String,
}

/// `GET /ui/open?name=…`: to the repository's page.
///
/// # Errors
/// `BadRequest` for a name that is not a repository name.
pub async fn open(Query(q): Query<OpenQuery>) -> Result<Response, PageError> {
    let name = RepoName::parse(q.name.trim())
        .map_err(|e| PageError::BadRequest(format!("Not a repository name: {e}")))?;
    Ok(Redirect::to(&format!("/ui/r/{name}")).into_response())
}
