//! The route table of the distribution API: one function turns a method and a path under `/v2/`
//! into an [`Endpoint`], validating names, references, digests and upload ids on the way, and
//! [`Endpoint::required_access`] says which token access each endpoint needs. Nothing else in the
//! crate looks at raw paths.

use axum::http::Method;
use uuid::Uuid;

use crate::error::Error;
use crate::names::{Digest, Reference, RepoName};

/// One operation of the API, with its validated arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /v2/`: the version check; needs authentication only.
    Base,
    /// `GET /v2/_catalog`.
    Catalog,
    /// `GET /v2/<name>/tags/list`.
    TagsList { name: RepoName },
    /// `GET|HEAD /v2/<name>/manifests/<reference>`.
    GetManifest {
        name: RepoName,
        reference: Reference,
        head: bool,
    },
    /// `PUT /v2/<name>/manifests/<reference>`.
    PutManifest {
        name: RepoName,
        reference: Reference,
    },
    /// `DELETE /v2/<name>/manifests/<reference>`.
    DeleteManifest {
        name: RepoName,
        reference: Reference,
    },
    /// `GET|HEAD /v2/<name>/blobs/<digest>`.
    GetBlob {
        name: RepoName,
        digest: Digest,
        head: bool,
    },
    /// `DELETE /v2/<name>/blobs/<digest>`.
    DeleteBlob { name: RepoName, digest: Digest },
    /// `POST /v2/<name>/blobs/uploads/` (also monolithic and mount).
    StartUpload { name: RepoName },
    /// `GET /v2/<name>/blobs/uploads/<uuid>`.
    UploadStatus { name: RepoName, uuid: Uuid },
    /// `PATCH /v2/<name>/blobs/uploads/<uuid>`.
    PatchUpload { name: RepoName, uuid: Uuid },
    /// `PUT /v2/<name>/blobs/uploads/<uuid>?digest=`.
    FinishUpload { name: RepoName, uuid: Uuid },
    /// `DELETE /v2/<name>/blobs/uploads/<uuid>`.
    CancelUpload { name: RepoName, uuid: Uuid },
    /// `GET /v2/<name>/referrers/<digest>`.
    Referrers { name: RepoName, digest: Digest },
}

/// What a token must grant for an endpoint: the scope the challenge names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredAccess {
    /// `repository` or `registry`.
    pub kind: &'static str,
    /// Repository name, or `catalog`.
    pub name: String,
    /// Every one of these must be granted.
    pub actions: &'static [&'static str],
}

impl RequiredAccess {
    /// The scope string for a `WWW-Authenticate` challenge, e.g. `repository:a/b:pull,push`.
    #[must_use]
    pub fn scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

const PULL: &[&str] = &["pull"];
const PUSH: &[&str] = &["pull", "push"];
const DELETE: &[&str] = &["delete"];

impl Endpoint {
    /// Parses `method` + the raw (still percent-encoded) path after `/v2/`.
    ///
    /// # Errors
    /// `NameInvalid`, `DigestInvalid`, `ManifestInvalid` (bad tag) for bad arguments,
    /// `BlobUploadUnknown` for a malformed upload id, `NotFound` for a path naming no endpoint and
    /// `Unsupported` for a method the endpoint does not have.
    pub fn parse(method: &Method, rest: &str) -> Result<Self, Error> {
        let get = method == Method::GET;
        let head = method == Method::HEAD;
        if rest.is_empty() {
            return allow(get || head, Self::Base);
        }
        if rest == "_catalog" {
            return allow(get, Self::Catalog);
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let n = parts.len();
        let name = |upto: usize| RepoName::parse(&parts[..upto].join("/"));
        let not_found = || Error::NotFound(format!("/v2/{rest}"));
        if n >= 3 && parts[n - 2] == "tags" && parts[n - 1] == "list" {
            return allow(get, Self::TagsList { name: name(n - 2)? });
        }
        if n < 3 {
            return Err(not_found());
        }
        if parts[n - 3] == "blobs" && parts[n - 2] == "uploads" {
            let name = name(n - 3)?;
            if parts[n - 1].is_empty() {
                return allow(method == Method::POST, Self::StartUpload { name });
            }
            let uuid = Uuid::parse_str(parts[n - 1]).map_err(|_| Error::BlobUploadUnknown)?;
            return match *method {
                Method::GET | Method::HEAD => Ok(Self::UploadStatus { name, uuid }),
                Method::PATCH => Ok(Self::PatchUpload { name, uuid }),
                Method::PUT => Ok(Self::FinishUpload { name, uuid }),
                Method::DELETE => Ok(Self::CancelUpload { name, uuid }),
                _ => Err(unsupported()),
            };
        }
        let (area, last) = (parts[n - 2], parts[n - 1]);
        match area {
            "blobs" if last == "uploads" => allow(
                method == Method::POST,
                Self::StartUpload { name: name(n - 2)? },
            ),
            "manifests" => {
                let (name, reference) = (name(n - 2)?, Reference::parse(last)?);
                match *method {
                    Method::GET | Method::HEAD => Ok(Self::GetManifest {
                        name,
                        reference,
                        head,
                    }),
                    Method::PUT => Ok(Self::PutManifest { name, reference }),
                    Method::DELETE => Ok(Self::DeleteManifest { name, reference }),
                    _ => Err(unsupported()),
                }
            }
            "blobs" => {
                let (name, digest) = (name(n - 2)?, Digest::parse(last)?);
                match *method {
                    Method::GET | Method::HEAD => Ok(Self::GetBlob { name, digest, head }),
                    Method::DELETE => Ok(Self::DeleteBlob { name, digest }),
                    _ => Err(unsupported()),
                }
            }
            "referrers" => allow(
                get,
                Self::Referrers {
                    name: name(n - 2)?,
                    digest: Digest::parse(last)?,
                },
            ),
            _ => Err(not_found()),
        }
    }

    /// The access a token needs for this endpoint; `None` for [`Endpoint::Base`], which only
    /// needs a valid token. Cross-repository mounts also need pull on the source repository; the
    /// upload service checks that itself and falls back to a plain upload without it.
    #[must_use]
    pub fn required_access(&self) -> Option<RequiredAccess> {
        let repo = |name: &RepoName, actions| {
            Some(RequiredAccess {
                kind: "repository",
                name: name.to_string(),
                actions,
            })
        };
        match self {
            Self::Base => None,
            Self::Catalog => Some(RequiredAccess {
                kind: "registry",
                name: "catalog".into(),
                actions: &["*"],
            }),
            Self::TagsList { name }
            | Self::GetManifest { name, .. }
            | Self::GetBlob { name, .. }
            | Self::UploadStatus { name, .. }
            | Self::Referrers { name, .. } => repo(name, PULL),
            Self::PutManifest { name, .. }
            | Self::StartUpload { name }
            | Self::PatchUpload { name, .. }
            | Self::FinishUpload { name, .. }
            | Self::CancelUpload { name, .. } => repo(name, PUSH),
            Self::DeleteManifest { name, .. } | Self::DeleteBlob { name, .. } => repo(name, DELETE),
        }
    }

    /// A short, bounded label for metrics and logs.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Catalog => "catalog",
            Self::TagsList { .. } => "tags_list",
            Self::GetManifest { .. } => "manifest_get",
            Self::PutManifest { .. } => "manifest_put",
            Self::DeleteManifest { .. } => "manifest_delete",
            Self::GetBlob { .. } => "blob_get",
            Self::DeleteBlob { .. } => "blob_delete",
            Self::StartUpload { .. } => "upload_start",
            Self::UploadStatus { .. } => "upload_status",
            Self::PatchUpload { .. } => "upload_patch",
            Self::FinishUpload { .. } => "upload_finish",
            Self::CancelUpload { .. } => "upload_cancel",
            Self::Referrers { .. } => "referrers",
        }
    }
}

fn allow(ok: bool, e: Endpoint) -> Result<Endpoint, Error> {
    if ok {
        Ok(e)
    } else {
        Err(unsupported())
    }
}

fn unsupported() -> Error {
    Error::Unsupported("method not allowed on this endpoint".into())
}

#[cfg(test)]
mod tests {
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
            (Method::GET, "a/manifests/-bad".into(), "MANIFEST_INVALID"),
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
}
