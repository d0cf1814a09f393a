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
    /// `NameInvalid`, `DigestInvalid`, `ManifestInvalid` (bad tag to write or delete;
    /// `ManifestUnknown` to read) for bad arguments,
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
                let name = name(n - 2)?;
                let reference = Reference::parse(last).map_err(|e| match *method {
                    // A reference that could never exist is simply not there to read (what the
                    // OCI conformance suite expects); writing one stays a bad request.
                    Method::GET | Method::HEAD => Error::ManifestUnknown(format!("{name}:{last}")),
                    _ => Error::from(e),
                })?;
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

    /// The repository a pull reads (manifests, blobs, tags, referrers), to be rewritten when
    /// it is served from a cache.
    pub fn pull_name_mut(&mut self) -> Option<&mut RepoName> {
        match self {
            Self::GetManifest { name, .. }
            | Self::GetBlob { name, .. }
            | Self::TagsList { name }
            | Self::Referrers { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The repository a request writes into (manifest or blob uploads).
    #[must_use]
    pub fn push_name(&self) -> Option<&RepoName> {
        match self {
            Self::PutManifest { name, .. }
            | Self::StartUpload { name }
            | Self::PatchUpload { name, .. }
            | Self::FinishUpload { name, .. } => Some(name),
            _ => None,
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
mod tests;
