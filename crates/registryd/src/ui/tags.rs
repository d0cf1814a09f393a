//! A repository's tags, in pages of [`PAGE`] read by key from the tags index (so the page
//! costs the same at the 100,000th tag as at the first): each tag's digest, kind, total size,
//! platforms (of an index), push time, and copyable `docker pull` commands.

use maud::{html, Markup};

use super::error::PageError;
use super::image_doc::ManifestDoc;
use super::layout::{self, copy_button, query_value};
use super::viewer::Viewer;
use crate::names::{Digest, Reference, RepoName};
use crate::service::Registry;

/// Tags per page.
const PAGE: u32 = 50;
/// Children of an index read to add up its size.
const MAX_CHILDREN: usize = 32;

/// The size and platforms of the manifest a tag names.
pub struct Summary {
    /// Config plus layers; for an index, the sum over its platforms. `None` when unreadable.
    pub size: Option<u64>,
    /// An index's platforms.
    pub platforms: Vec<String>,
}

/// The manifest `digest` of `repo`, parsed.
///
/// # Errors
/// `ManifestUnknown` when it is gone; `Internal` for a stored digest that does not parse.
pub async fn manifest_doc(
    reg: &Registry,
    repo: &RepoName,
    digest: &str,
) -> Result<ManifestDoc, PageError> {
    let digest =
        Digest::parse(digest).map_err(|e| PageError::Internal(format!("stored digest: {e:?}")))?;
    let m = reg
        .get_manifest(repo, &Reference::Digest(digest), true)
        .await?;
    Ok(ManifestDoc::parse(m.body.as_deref().unwrap_or_default()))
}

/// Size and platforms of manifest `digest` of type `media_type`.
pub async fn summarize(reg: &Registry, repo: &RepoName, digest: &str, media_type: &str) -> Summary {
    let Ok(doc) = manifest_doc(reg, repo, digest).await else {
        return Summary {
            size: None,
            platforms: Vec::new(),
        };
    };
    if !layout::is_index(media_type) {
        return Summary {
            size: Some(doc.image_size()),
            platforms: Vec::new(),
        };
    }
    let mut size = Some(0u64);
    for child in doc.manifests.iter().take(MAX_CHILDREN) {
        let child_size = manifest_doc(reg, repo, &child.digest)
            .await
            .ok()
            .map(|c| c.image_size());
        size = size.zip(child_size).map(|(a, b)| a + b);
    }
    Summary {
        size,
        platforms: doc.platforms(),
    }
}

/// `GET /ui/r/NAME?last=…`.
///
/// # Errors
/// `NotFound` when the repository does not exist or may not be pulled (the same answer, so
/// the page reveals nothing); as [`Viewer::access`].
pub async fn page(
    viewer: &Viewer,
    name: &RepoName,
    last: &str,
    host: &str,
    deleted: Option<&str>,
) -> Result<Markup, PageError> {
    let unknown = || {
        PageError::NotFound(format!(
            "There is no repository {name}, or you may not pull from it."
        ))
    };
    let can_delete = viewer.repo_access(name, unknown).await?;
    let reg = viewer.registry();
    let page = reg.tag_rows(name, last, PAGE).await.map_err(|e| match e {
        crate::Error::NameUnknown(_) => unknown(),
        other => other.into(),
    })?;
    let count = reg.tag_count(name).await?;
    let mut rows = Vec::with_capacity(page.items.len());
    for row in &page.items {
        rows.push(summarize(reg, name, &row.digest, &row.media_type).await);
    }
    let body = html! {
        @if let Some(deleted) = deleted { p.note role="status" { "Deleted " code { (deleted) } "." } }
        p.lead {
            (count) @if count == 1 { " tag" } @else { " tags" }
            " · " code { "docker pull " (host) "/" (name) ":TAG" }
        }
        @if page.items.is_empty() {
            p.empty { "No tags" @if !last.is_empty() { " after " code { (last) } } "." }
        } @else {
            div.scroll {
                table #tags {
                    thead { tr {
                        th scope="col" { "Tag" } th scope="col" { "Digest" } th scope="col" { "Kind" }
                        th.num scope="col" { "Size" } th scope="col" { "Platforms" } th scope="col" { "Pushed" }
                        th scope="col" { "Pull" }
                        @if can_delete { th scope="col" { span.sr-only { "Delete" } } }
                    } }
                    tbody {
                        @for (row, summary) in page.items.iter().zip(&rows) {
                            tr {
                                td { a href={ "/ui/r/" (name) "/-/" (row.tag) } { (row.tag) } }
                                td { a.digest href={ "/ui/r/" (name) "/-/" (row.digest) } title=(row.digest) { code { (layout::short_digest(&row.digest)) } } }
                                td { (layout::kind(&row.media_type)) }
                                td.num { @if let Some(size) = summary.size { (layout::size(size)) } }
                                td { (summary.platforms.join(", ")) }
                                td { (layout::when(row.pushed_at)) }
                                td.actions {
                                    (copy_button("Copy tag", &format!("docker pull {host}/{name}:{}", row.tag)))
                                    " "
                                    (copy_button("Copy digest", &format!("docker pull {host}/{name}@{}", row.digest)))
                                }
                                @if can_delete {
                                    td { a.danger href={ "/ui/r/" (name) "/-/" (row.tag) "/delete" } { "Delete…" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if !last.is_empty() { a href={ "/ui/r/" (name) } { "← First page" } " " }
            @if page.more {
                @if let Some(row) = page.items.last() {
                    a rel="next" href={ "/ui/r/" (name) "?last=" (query_value(&row.tag)) } { "Next page →" }
                }
            }
        }
    };
    Ok(layout::page(viewer, name.as_str(), &body))
}
