//! Listing handlers: `GET /v2/<name>/tags/list`, `GET /v2/_catalog` (both with `n`/`last` and a
//! `Link` to the next page) and `GET /v2/<name>/referrers/<digest>` (`artifactType` filter).

use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::response::Listing;
use super::Params;
use crate::error::Error;
use crate::names::{Digest, RepoName};
use crate::service::{Page, Registry, MAX_PAGE};

/// `n` as a page size (absent: the maximum), `last` as a cursor.
fn page_args(p: &Params) -> Result<(u32, &str), Error> {
    let n =
        p.n.as_deref()
            .map(|n| {
                n.parse::<u32>()
                    .map_err(|_| Error::BadParameter(format!("n={n:?} is not a page size")))
            })
            .transpose()?;
    Ok((n.unwrap_or(MAX_PAGE), p.last.as_deref().unwrap_or("")))
}

/// The `Link` target of the page after `page`, when there is one.
fn next_link(path: &str, page: &Page, n: u32) -> Option<String> {
    let last = page.items.last().filter(|_| page.more)?;
    Some(format!("{path}?n={n}&last={last}"))
}

/// `GET /v2/<name>/tags/list` → `{"name","tags"}`; `NAME_UNKNOWN` for a repository never pushed.
pub async fn tags(reg: &Registry, name: &RepoName, p: &Params) -> Result<Response, Error> {
    let (n, last) = page_args(p)?;
    let page = reg.tags(name, n, last).await?;
    let next = next_link(&format!("/v2/{name}/tags/list"), &page, n);
    let body = json!({"name": name.as_str(), "tags": page.items});
    Ok(Listing {
        body,
        content_type: "application/json",
        next,
        filters_applied: None,
    }
    .into_response())
}

/// `GET /v2/_catalog` → `{"repositories"}`.
pub async fn catalog(reg: &Registry, p: &Params) -> Result<Response, Error> {
    let (n, last) = page_args(p)?;
    let page = reg.catalog(n, last).await?;
    let next = next_link("/v2/_catalog", &page, n);
    let body = json!({"repositories": page.items});
    Ok(Listing {
        body,
        content_type: "application/json",
        next,
        filters_applied: None,
    }
    .into_response())
}

/// `GET /v2/<name>/referrers/<digest>` → an OCI index (empty for an unknown digest).
pub async fn referrers(
    reg: &Registry,
    name: &RepoName,
    digest: &Digest,
    p: &Params,
) -> Result<Response, Error> {
    let filter = p.artifact_type.as_deref().filter(|t| !t.is_empty());
    let body = reg.referrers(name, digest, filter).await?;
    let filters_applied = filter.map(|_| "artifactType");
    Ok(Listing {
        body,
        content_type: "application/vnd.oci.image.index.v1+json",
        next: None,
        filters_applied,
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_only_when_more_follow() {
        let page = Page {
            items: vec!["a".into(), "b".into()],
            more: true,
        };
        assert_eq!(
            next_link("/v2/x/tags/list", &page, 2).as_deref(),
            Some("/v2/x/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(
                "/v2/_catalog",
                &Page {
                    items: vec!["a".into()],
                    more: false
                },
                1
            ),
            None
        );
    }

    #[test]
    fn bad_page_sizes_are_refused() {
        for bad in ["-1", "x", "1.5"] {
            let p = Params {
                n: Some(bad.into()),
                ..Params::default()
            };
            assert_eq!(page_args(&p).unwrap_err().status(), 400, "{bad}");
        }
        assert_eq!(page_args(&Params::default()).unwrap().0, MAX_PAGE);
    }
}
