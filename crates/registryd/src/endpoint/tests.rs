//! The route table's tests: every endpoint from the spec's paths, every refusal with its code.

use super::*;

const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const U: &str = "3f0c6c54-4e1c-4f7a-9a53-5b1c3e0c9f10";

fn n(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}
fn d() -> Digest {
    Digest::parse(D).unwrap()
}
fn u() -> Uuid {
    Uuid::parse_str(U).unwrap()
}

#[test]
fn table_of_endpoints() {
    let tag = |t: &str| Reference::Tag(t.into());
    let cases: Vec<(Method, String, Endpoint)> = vec![
        (Method::GET, String::new(), Endpoint::Base),
        (Method::HEAD, String::new(), Endpoint::Base),
        (Method::GET, "_catalog".into(), Endpoint::Catalog),
        (
            Method::GET,
            "a/b/tags/list".into(),
            Endpoint::TagsList { name: n("a/b") },
        ),
        (
            Method::GET,
            "tags/tags/list".into(),
            Endpoint::TagsList { name: n("tags") },
        ),
        (
            Method::GET,
            "a/manifests/v1".into(),
            Endpoint::GetManifest {
                name: n("a"),
                reference: tag("v1"),
                head: false,
            },
        ),
        (
            Method::HEAD,
            format!("a/manifests/{D}"),
            Endpoint::GetManifest {
                name: n("a"),
                reference: Reference::Digest(d()),
                head: true,
            },
        ),
        (
            Method::PUT,
            "x/manifests/manifests/latest".into(),
            Endpoint::PutManifest {
                name: n("x/manifests"),
                reference: tag("latest"),
            },
        ),
        (
            Method::DELETE,
            "a/manifests/v1".into(),
            Endpoint::DeleteManifest {
                name: n("a"),
                reference: tag("v1"),
            },
        ),
        (
            Method::GET,
            format!("a/b/c/blobs/{D}"),
            Endpoint::GetBlob {
                name: n("a/b/c"),
                digest: d(),
                head: false,
            },
        ),
        (
            Method::HEAD,
            format!("a/blobs/{D}"),
            Endpoint::GetBlob {
                name: n("a"),
                digest: d(),
                head: true,
            },
        ),
        (
            Method::DELETE,
            format!("a/blobs/{D}"),
            Endpoint::DeleteBlob {
                name: n("a"),
                digest: d(),
            },
        ),
        (
            Method::POST,
            "a/blobs/uploads/".into(),
            Endpoint::StartUpload { name: n("a") },
        ),
        (
            Method::POST,
            "a/blobs/uploads".into(),
            Endpoint::StartUpload { name: n("a") },
        ),
        (
            Method::GET,
            format!("a/blobs/uploads/{U}"),
            Endpoint::UploadStatus {
                name: n("a"),
                uuid: u(),
            },
        ),
        (
            Method::PATCH,
            format!("a/blobs/uploads/{U}"),
            Endpoint::PatchUpload {
                name: n("a"),
                uuid: u(),
            },
        ),
        (
            Method::PUT,
            format!("a/blobs/uploads/{U}"),
            Endpoint::FinishUpload {
                name: n("a"),
                uuid: u(),
            },
        ),
        (
            Method::DELETE,
            format!("a/blobs/uploads/{U}"),
            Endpoint::CancelUpload {
                name: n("a"),
                uuid: u(),
            },
        ),
        (
            Method::GET,
            format!("a/referrers/{D}"),
            Endpoint::Referrers {
                name: n("a"),
                digest: d(),
            },
        ),
    ];
    for (m, path, want) in cases {
        assert_eq!(Endpoint::parse(&m, &path).unwrap(), want, "{m} {path}");
    }
}

#[test]
fn bad_paths_get_spec_errors() {
    let long = format!("{}/manifests/v1", "a".repeat(256));
    let cases: Vec<(Method, String, &str)> = vec![
        (Method::GET, "../manifests/v1".into(), "NAME_INVALID"),
        (Method::GET, "a/../b/manifests/v1".into(), "NAME_INVALID"),
        (Method::GET, "a//b/manifests/v1".into(), "NAME_INVALID"),
        (Method::GET, "Upper/manifests/v1".into(), "NAME_INVALID"),
        (Method::GET, "a%2fb/manifests/v1".into(), "NAME_INVALID"),
        (Method::GET, long, "NAME_INVALID"),
        (Method::GET, "/manifests/v1".into(), "NAME_INVALID"),
        (Method::GET, "a/blobs/sha256:abc".into(), "DIGEST_INVALID"),
        (
            Method::GET,
            format!("a/blobs/sha512:{}", "a".repeat(128)),
            "DIGEST_INVALID",
        ),
        (Method::GET, "a/manifests/-bad".into(), "MANIFEST_UNKNOWN"),
        (
            Method::HEAD,
            "a/manifests/.INVALID_MANIFEST_NAME".into(),
            "MANIFEST_UNKNOWN",
        ),
        (
            Method::GET,
            "a/manifests/sha256:abc".into(),
            "MANIFEST_UNKNOWN",
        ),
        (Method::PUT, "a/manifests/-bad".into(), "MANIFEST_INVALID"),
        (
            Method::PUT,
            "a/manifests/.INVALID_MANIFEST_NAME".into(),
            "MANIFEST_INVALID",
        ),
        (
            Method::PUT,
            "a/manifests/sha256:abc".into(),
            "DIGEST_INVALID",
        ),
        (
            Method::DELETE,
            "a/manifests/-bad".into(),
            "MANIFEST_INVALID",
        ),
        (Method::GET, "Bad/manifests/-bad".into(), "NAME_INVALID"),
        (
            Method::GET,
            "a/blobs/uploads/not-a-uuid".into(),
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (Method::GET, "a/b".into(), "UNSUPPORTED"),
        (Method::GET, "a/things/x".into(), "UNSUPPORTED"),
        (Method::POST, "a/manifests/v1".into(), "UNSUPPORTED"),
        (Method::PUT, format!("a/blobs/{D}"), "UNSUPPORTED"),
        (Method::DELETE, "_catalog".into(), "UNSUPPORTED"),
    ];
    for (m, path, code) in cases {
        let err = Endpoint::parse(&m, &path).unwrap_err();
        assert_eq!(err.code(), code, "{m} {path}: {err}");
    }
    assert_eq!(
        Endpoint::parse(&Method::GET, "a/b").unwrap_err().status(),
        404
    );
    assert_eq!(
        Endpoint::parse(&Method::GET, "a/manifests/-bad")
            .unwrap_err()
            .status(),
        404
    );
    assert_eq!(
        Endpoint::parse(&Method::POST, "a/manifests/v1")
            .unwrap_err()
            .status(),
        405
    );
}

#[test]
fn required_access_follows_the_method() {
    let scope = |m: Method, p: &str| {
        Endpoint::parse(&m, p)
            .unwrap()
            .required_access()
            .map(|a| a.scope())
    };
    assert_eq!(scope(Method::GET, ""), None);
    assert_eq!(
        scope(Method::GET, "_catalog").as_deref(),
        Some("registry:catalog:*")
    );
    assert_eq!(
        scope(Method::GET, "a/b/manifests/v1").as_deref(),
        Some("repository:a/b:pull")
    );
    assert_eq!(
        scope(Method::PUT, "a/manifests/v1").as_deref(),
        Some("repository:a:pull,push")
    );
    assert_eq!(
        scope(Method::POST, "a/blobs/uploads/").as_deref(),
        Some("repository:a:pull,push")
    );
    assert_eq!(
        scope(Method::PATCH, &format!("a/blobs/uploads/{U}")).as_deref(),
        Some("repository:a:pull,push")
    );
    assert_eq!(
        scope(Method::DELETE, &format!("a/blobs/{D}")).as_deref(),
        Some("repository:a:delete")
    );
    assert_eq!(
        scope(Method::GET, &format!("a/referrers/{D}")).as_deref(),
        Some("repository:a:pull")
    );
}
