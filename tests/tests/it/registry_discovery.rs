//! Content discovery: tags list and catalog, sorted, with `n`/`last` pagination and `Link`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::Image;
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_error, header, Registry};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// GET `path`: the JSON body and the `Link` header's target (if any).
async fn page(registry: &Registry, path: &str, token: &str) -> (Value, Option<String>) {
    let resp = registry.get(path, Some(token)).await;
    assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
    let link = header(&resp, "Link");
    let next = if link.is_empty() {
        None
    } else {
        assert!(link.contains("rel=\"next\""), "Link {link}");
        let target = link
            .split_once('<')
            .and_then(|(_, r)| r.split_once('>'))
            .map(|(t, _)| t.to_string());
        Some(target.unwrap_or_else(|| panic!("Link without <target>: {link}")))
    };
    (resp.json().await.unwrap(), next)
}

#[tokio::test]
async fn tags_list_is_sorted_and_paginated() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.token("admin", &["repository:team/app:pull,push"]).await;
    let image = Image::random(1);
    for tag in ["b", "latest", "a", "1.0", "c"] {
        registry
            .push_image("team/app", tag, &image, Some(&token))
            .await;
    }
    let (all, next) = page(&registry, "/v2/team/app/tags/list", &token).await;
    assert_eq!(
        all,
        json!({"name": "team/app", "tags": ["1.0", "a", "b", "c", "latest"]})
    );
    assert_eq!(next, None);

    let (first, next) = page(&registry, "/v2/team/app/tags/list?n=2", &token).await;
    assert_eq!(first["tags"], json!(["1.0", "a"]));
    let next = next.expect("a Link to the next page");
    assert!(
        next.contains("n=2") && next.contains("last=a"),
        "Link target {next}"
    );
    let (second, next) = page(&registry, &next, &token).await;
    assert_eq!(second["tags"], json!(["b", "c"]));
    let (third, next) = page(&registry, &next.expect("a Link to the last page"), &token).await;
    assert_eq!(third["tags"], json!(["latest"]));
    assert_eq!(next, None, "no Link after the last page");

    let (after, _) = page(&registry, "/v2/team/app/tags/list?last=b", &token).await;
    assert_eq!(after["tags"], json!(["c", "latest"]));
    // `last` need not be a tag: the list goes on after it in lexical order.
    let (after, _) = page(&registry, "/v2/team/app/tags/list?last=b0", &token).await;
    assert_eq!(after["tags"], json!(["c", "latest"]));
    let (after, _) = page(&registry, "/v2/team/app/tags/list?last=zzz", &token).await;
    assert_eq!(after["tags"], json!([]));
    let (exact, next) = page(&registry, "/v2/team/app/tags/list?n=5", &token).await;
    assert_eq!(exact["tags"].as_array().unwrap().len(), 5);
    assert_eq!(next, None, "no Link when nothing follows");

    let resp = registry
        .get("/v2/team/app/tags/list?n=abc", Some(&token))
        .await;
    assert!(resp.status().is_client_error(), "n=abc: {}", resp.status());
    let token = env.token("admin", &["repository:team/none:pull"]).await;
    let resp = registry.get("/v2/team/none/tags/list", Some(&token)).await;
    expect_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
}

#[tokio::test]
async fn catalog_lists_repositories_sorted_and_paginated() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let push = env
        .token(
            "admin",
            &[
                "repository:team/b:pull,push",
                "repository:team/a:pull,push",
                "repository:alice/x:pull,push",
            ],
        )
        .await;
    let image = Image::random(1);
    for repo in ["team/b", "team/a", "alice/x"] {
        registry.push_image(repo, "v1", &image, Some(&push)).await;
    }
    let token = env.token("admin", &["registry:catalog:*"]).await;
    let (all, next) = page(&registry, "/v2/_catalog", &token).await;
    assert_eq!(
        all,
        json!({"repositories": ["alice/x", "team/a", "team/b"]})
    );
    assert_eq!(next, None);
    let (first, next) = page(&registry, "/v2/_catalog?n=2", &token).await;
    assert_eq!(first["repositories"], json!(["alice/x", "team/a"]));
    let next = next.expect("a Link to the next page");
    assert!(
        next.contains("last=team%2Fa") || next.contains("last=team/a"),
        "Link target {next}"
    );
    let (second, next) = page(&registry, &next, &token).await;
    assert_eq!(second["repositories"], json!(["team/b"]));
    assert_eq!(next, None);
}

/// Follows `Link` from `first` to the end; returns every page's `key` entries in order.
async fn walk(registry: &Registry, first: &str, key: &str, token: &str) -> (Vec<String>, usize) {
    let (mut items, mut pages, mut next) = (Vec::new(), 0, Some(first.to_string()));
    while let Some(path) = next {
        pages += 1;
        assert!(pages <= 100, "pagination does not end");
        let (body, link) = page(registry, &path, token).await;
        items.extend(
            body[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string()),
        );
        next = link;
    }
    (items, pages)
}

#[tokio::test]
async fn listings_are_in_byte_order_and_pages_cover_them_once() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let repos = ["a", "a/b", "a-b", "a.b", "a_b", "z", "a/b/c"];
    let mut scopes: Vec<String> = repos
        .iter()
        .map(|r| format!("repository:{r}:pull,push"))
        .collect();
    scopes.push("repository:team/tags:pull,push".into());
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let token = env.token("admin", &scopes).await;
    let image = Image::random(1);
    for repo in repos {
        registry.push_image(repo, "v1", &image, Some(&token)).await;
    }
    // Tags: mixed case and punctuation, more than a few pages' worth.
    let mut tags: Vec<String> = ["a", "B", "_x", "1", "A-b", "a.b", "a-b", "a_b", "Z"]
        .iter()
        .map(|t| (*t).to_string())
        .collect();
    tags.extend((0..40).map(|i| format!("v{i}")));
    for blob in image.blobs() {
        registry.push_blob("team/tags", blob, Some(&token)).await;
    }
    for tag in &tags {
        registry
            .push_manifest("team/tags", tag, &image.manifest, Some(&token))
            .await;
    }
    let mut expected = tags.clone();
    expected.sort(); // byte order, as `str::cmp`
    let (all, _) = page(&registry, "/v2/team/tags/tags/list", &token).await;
    let all: Vec<String> = all["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(all, expected);
    let (paged, pages) = walk(&registry, "/v2/team/tags/tags/list?n=7", "tags", &token).await;
    assert_eq!(paged, expected, "pages of 7 cover every tag once, in order");
    assert_eq!(pages, expected.len().div_ceil(7));

    let catalog = env.token("admin", &["registry:catalog:*"]).await;
    let (all, _) = page(&registry, "/v2/_catalog", &catalog).await;
    let all: Vec<String> = all["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(all, sorted, "catalog in byte order, without duplicates");
    for repo in repos.iter().chain(&["team/tags"]) {
        assert!(all.iter().any(|r| r == repo), "{repo} missing from {all:?}");
    }
    let (paged, _) = walk(&registry, "/v2/_catalog?n=2", "repositories", &catalog).await;
    assert_eq!(
        paged, all,
        "catalog pages of 2 cover every repository once, in order"
    );
}
