//! Repository names: the spec's grammar, NAME_INVALID for anything outside it (including paths
//! that could leave the data directory), NAME_UNKNOWN for valid names never pushed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::env::TestEnv;
use berth_tests::raw_http::raw_request;
use berth_tests::registry::expect_error;
use berth_tests::tokens::{claims, repository_access, sign};
use reqwest::StatusCode;

/// Files and directories under `dir`, recursively (to show that nothing was created).
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            out.push(path.display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn invalid_names_are_name_invalid_and_create_nothing() {
    let env = TestEnv::standard().await;
    let addr = env.registryd.daemon.addr;
    let long = format!("{}/{}", "a".repeat(128), "b".repeat(127)); // 256 characters
    assert_eq!(long.len(), 256);
    let names = [
        "Team/App".to_string(),
        "team//app".to_string(),
        "team/../app".to_string(),
        "../escape".to_string(),
        "team/./app".to_string(),
        "team/%2e%2e/app".to_string(),
        "-team/app".to_string(),
        "team/app-".to_string(),
        "team/app/".to_string(),
        "team/a%20b".to_string(),
        "team/a___b".to_string(),
        "team/a..b".to_string(),
        "team/a-.b".to_string(),
        "team/.a".to_string(),
        "team/a%2Fb".to_string(),
        "team/\u{e9}t\u{e9}".to_string(),
        long,
    ];
    let before = tree(env.dir.path());
    for name in &names {
        // A token granting exactly this name: the refusal must come from the name itself.
        let token = sign(
            &env.certs,
            &claims(
                "admin",
                vec![repository_access(name, &["pull", "push", "delete"])],
            ),
        );
        for (method, suffix) in [
            ("GET", "tags/list"),
            ("GET", "manifests/latest"),
            ("POST", "blobs/uploads/"),
            ("PUT", "manifests/latest"),
        ] {
            let path = format!("/v2/{name}/{suffix}");
            let resp = raw_request(addr, method, &path, Some(&token)).await;
            let body = String::from_utf8_lossy(&resp.body).into_owned();
            assert_eq!(resp.status, 400, "{method} {path}: {body}");
            let json: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}"));
            assert_eq!(
                json["errors"][0]["code"], "NAME_INVALID",
                "{method} {path}: {body}"
            );
        }
    }
    let after: Vec<String> = tree(env.dir.path())
        .into_iter()
        .filter(|p| !p.ends_with(".log") && !p.contains("-wal") && !p.contains("-shm"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|p| !p.ends_with(".log") && !p.contains("-wal") && !p.contains("-shm"))
        .collect();
    assert_eq!(after, before, "refused names created files");
}

#[tokio::test]
async fn valid_but_unknown_names_are_name_unknown() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let longest = format!("{}/{}", "a".repeat(127), "b".repeat(127)); // 255 characters
    for name in ["team/app", "a", "a.b_c__d-e/f--g/h", longest.as_str()] {
        let token = sign(
            &env.certs,
            &claims("admin", vec![repository_access(name, &["pull"])]),
        );
        let resp = registry
            .get(&format!("/v2/{name}/tags/list"), Some(&token))
            .await;
        expect_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
    }
}

#[tokio::test]
async fn reading_a_reference_that_could_never_exist_is_manifest_unknown() {
    let env = TestEnv::standard().await;
    let registry = env.registry();
    let token = env.admin_token(&["team/app"]).await;
    let too_long = "t".repeat(129);
    let references = [
        (".INVALID_MANIFEST_NAME", "MANIFEST_INVALID"),
        ("-bad", "MANIFEST_INVALID"),
        (too_long.as_str(), "MANIFEST_INVALID"),
        ("sha256:abc", "DIGEST_INVALID"),
    ];
    for (reference, put_code) in references {
        // What the OCI conformance suite expects of reads: 404, not 400.
        let path = format!("/v2/team/app/manifests/{reference}");
        let resp = registry.get(&path, Some(&token)).await;
        expect_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
        let resp = registry.head(&path, Some(&token)).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "HEAD {path}");
        // Writing one is still a bad request.
        let req = registry
            .request(reqwest::Method::PUT, &path, Some(&token))
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body("{}");
        expect_error(registry.send(req).await, StatusCode::BAD_REQUEST, put_code).await;
    }
}
