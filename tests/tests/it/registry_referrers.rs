//! The referrers API: artifacts listed by subject, `artifactType` filtering with
//! `OCI-Filters-Applied`, an empty index for unknown subjects, and the spec's edge cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::content::{
    artifact, empty_config, sha256, Content, Image, OCI_INDEX, OCI_MANIFEST,
};
use berth_tests::env::TestEnv;
use berth_tests::registry::{expect_error, header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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

#[tokio::test]
async fn referrers_cover_missing_subjects_and_config_typed_artifacts() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/app"]).await;
    let layer = Content::random(16);
    registry.push_blob("team/app", &layer, Some(&token)).await;
    registry
        .push_blob("team/app", &empty_config(), Some(&token))
        .await;
    // The subject is never pushed: the spec lets the referrer in and says so with OCI-Subject.
    let absent = Image::random(1);
    let config = Content::new(
        b"{\"kind\":\"sig\"}".to_vec(),
        "application/vnd.example.sig.config+json",
    );
    registry.push_blob("team/app", &config, Some(&token)).await;
    // No artifactType: the referrers API reports the config's media type instead.
    let referrer = Content::json(
        &json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": config.descriptor(), "layers": [layer.descriptor()],
            "subject": absent.manifest.descriptor(),
        }),
        OCI_MANIFEST,
    );
    let resp = registry
        .put_manifest_ok("team/app", &referrer.digest, &referrer, &token)
        .await;
    assert_eq!(header(&resp, "OCI-Subject"), absent.manifest.digest);
    let resp = registry
        .get(
            &format!("/v2/team/app/referrers/{}", absent.manifest.digest),
            Some(&token),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["manifests"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    assert_eq!(body["manifests"][0]["digest"], referrer.digest.as_str());
    assert_eq!(
        body["manifests"][0]["artifactType"],
        "application/vnd.example.sig.config+json"
    );
}

#[tokio::test]
async fn an_index_can_be_a_referrer_and_filters_can_match_nothing() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/app"]).await;
    let subject = Image::random(1);
    let child = Image::random(1);
    registry
        .push_image("team/app", "v1", &subject, Some(&token))
        .await;
    registry
        .push_image("team/app", "child", &child, Some(&token))
        .await;
    let mut index: Value =
        serde_json::from_slice(&berth_tests::content::index(OCI_INDEX, &[("amd64", &child)]).bytes)
            .unwrap();
    index["artifactType"] = json!("application/vnd.example.bundle");
    index["subject"] = subject.manifest.descriptor();
    let index = Content::json(&index, OCI_INDEX);
    let resp = registry
        .put_manifest_ok("team/app", &index.digest, &index, &token)
        .await;
    assert_eq!(header(&resp, "OCI-Subject"), subject.manifest.digest);

    let path = format!("/v2/team/app/referrers/{}", subject.manifest.digest);
    let body: Value = registry
        .get(&path, Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["manifests"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    assert_eq!(body["manifests"][0]["mediaType"], OCI_INDEX);
    assert_eq!(body["manifests"][0]["digest"], index.digest.as_str());
    assert_eq!(
        body["manifests"][0]["artifactType"],
        "application/vnd.example.bundle"
    );

    let req = registry
        .request(Method::GET, &path, Some(&token))
        .query(&[("artifactType", "application/vnd.example.none")]);
    let resp = registry.send(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "OCI-Filters-Applied"), "artifactType");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["manifests"], json!([]));
}
