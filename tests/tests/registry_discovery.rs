//! Content discovery: tags list and catalog with `n`/`last` pagination and `Link`, and the
//! referrers API with `artifactType` filtering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{artifact, empty_config, sha256, Content, Image, OCI_INDEX};
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_error, header, Registry};
use reqwest::{Method, StatusCode};
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

#[tokio::test]
async fn referrers_list_artifacts_and_filter_by_type() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env
        .token("admin", &["repository:team/app:pull,push,delete"])
        .await;
    let image = Image::random(1);
    registry
        .push_image("team/app", "v1", &image, Some(&token))
        .await;
    let layer = Content::random(32);
    registry
        .push_blob("team/app", &empty_config(), Some(&token))
        .await;
    registry.push_blob("team/app", &layer, Some(&token)).await;
    let sbom = artifact("application/vnd.example.sbom+json", &layer, &image.manifest);
    let signature = artifact("application/vnd.example.signature", &layer, &image.manifest);
    for manifest in [&sbom, &signature] {
        registry
            .push_manifest("team/app", &manifest.digest, manifest, Some(&token))
            .await;
    }

    let path = format!("/v2/team/app/referrers/{}", image.manifest.digest);
    let resp = registry.get(&path, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "Content-Type"), OCI_INDEX);
    assert!(
        header(&resp, "OCI-Filters-Applied").is_empty(),
        "no filter asked"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["schemaVersion"], 2);
    assert_eq!(body["mediaType"], OCI_INDEX);
    let mut listed: Vec<(String, String, u64)> = body["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["mediaType"], "application/vnd.oci.image.manifest.v1+json");
            assert!(
                d["annotations"]["test.unique"].is_string(),
                "annotations carried over: {d}"
            );
            (
                d["digest"].as_str().unwrap().into(),
                d["artifactType"].as_str().unwrap().into(),
                d["size"].as_u64().unwrap(),
            )
        })
        .collect();
    listed.sort();
    let mut expected: Vec<(String, String, u64)> = [
        (&sbom, "application/vnd.example.sbom+json"),
        (&signature, "application/vnd.example.signature"),
    ]
    .iter()
    .map(|(m, t)| (m.digest.clone(), (*t).to_string(), m.bytes.len() as u64))
    .collect();
    expected.sort();
    assert_eq!(listed, expected);

    let resp = registry
        .send(
            registry
                .request(Method::GET, &path, Some(&token))
                .query(&[("artifactType", "application/vnd.example.signature")]),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "OCI-Filters-Applied"), "artifactType");
    let body: Value = resp.json().await.unwrap();
    let digests: Vec<&str> = body["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, vec![signature.digest.as_str()]);

    // Unknown subject: an empty index, not a 404.
    let resp = registry
        .get(
            &format!("/v2/team/app/referrers/{}", sha256(b"nothing")),
            Some(&token),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "Content-Type"), OCI_INDEX);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["manifests"], json!([]));

    let resp = registry
        .get("/v2/team/app/referrers/sha256:nothex", Some(&token))
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;

    // A deleted referrer is no longer listed.
    let resp = registry
        .send(registry.request(
            Method::DELETE,
            &format!("/v2/team/app/manifests/{}", sbom.digest),
            Some(&token),
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = registry
        .get(&path, Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let digests: Vec<&str> = body["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, vec![signature.digest.as_str()]);
}
