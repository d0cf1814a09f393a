//! Manifests: push (validate, store bytes as a blob, record rows), pull by tag or digest,
//! delete by digest or tag, and the referrers of a manifest.

use bytes::Bytes;

use super::manifest_doc::{self, OCI_INDEX};
use super::Registry;
use crate::db::{ManifestRow, Origin, Referrer};
use crate::error::Error;
use crate::names::{Digest, Reference, RepoName};

/// Largest manifest accepted (pushed or fetched from an upstream), as most registries set it.
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// A manifest found for a GET/HEAD.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Its digest (`Docker-Content-Digest`, `ETag`).
    pub digest: Digest,
    /// The media type it was pushed with (`Content-Type`).
    pub media_type: String,
    /// Length of its bytes (`Content-Length`).
    pub size: u64,
    /// The bytes, unless only a HEAD was asked for.
    pub body: Option<Bytes>,
}

impl Registry {
    /// Finds a manifest by tag or digest, with its bytes when `with_body`. Served from the
    /// manifest cache when it holds it; otherwise found, read and cached.
    ///
    /// # Errors
    /// `ManifestUnknown` when the repository has no such manifest.
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        with_body: bool,
    ) -> Result<StoredManifest, Error> {
        if let Some(mut hit) = self.manifest_cache.get(repo.as_str(), reference) {
            if !with_body {
                hit.body = None;
            }
            return Ok(hit);
        }
        let generation = self.manifest_cache.generation();
        let unknown = || Error::ManifestUnknown(format!("{repo}:{reference}"));
        let (digest, media_type, size) = match reference {
            Reference::Digest(d) => {
                let (media_type, size) = self
                    .db
                    .manifest(repo.as_str(), d.as_str())
                    .await?
                    .ok_or_else(unknown)?;
                (d.clone(), media_type, size)
            }
            Reference::Tag(t) => {
                let (d, media_type, size) = self
                    .db
                    .manifest_by_tag(repo.as_str(), t)
                    .await?
                    .ok_or_else(unknown)?;
                let d = Digest::parse(&d)
                    .map_err(|_| Error::Internal(format!("stored digest {d} is invalid")))?;
                (d, media_type, size)
            }
        };
        // Read even for a HEAD, so the next HEAD or GET (docker pulls HEAD by tag, then GET by
        // digest) is served from the cache. A DELETE racing this read may have let garbage
        // collection take the bytes.
        let body = match self.manifest_cache.body(repo.as_str(), &digest) {
            Some(body) => body,
            None => self.read_whole(&digest, size).await.map_err(|e| match e {
                Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => unknown(),
                e => e,
            })?,
        };
        let mut found = StoredManifest {
            digest,
            media_type,
            size,
            body: Some(body),
        };
        self.manifest_cache
            .insert(generation, repo.as_str(), reference, &found);
        if !with_body {
            found.body = None;
        }
        Ok(found)
    }

    /// Validates and stores a manifest, tagging it when `reference` is a tag. Returns its
    /// digest and subject.
    ///
    /// # Errors
    /// `ManifestInvalid` for a bad document or a descriptor whose size is not its content's;
    /// `DigestInvalid` when pushed by a digest that is not the body's; `ManifestBlobUnknown` when
    /// a referenced blob or child manifest is missing.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: &Bytes,
    ) -> Result<(Digest, Option<Digest>), Error> {
        let digest = Digest::of(body);
        if let Reference::Digest(d) = reference {
            if d != &digest {
                return Err(Error::DigestInvalid(format!(
                    "manifest is {digest}, not {d}"
                )));
            }
        }
        let parsed = manifest_doc::parse(content_type, body)?;
        self.store_manifest(repo, reference, &digest, body, &parsed, Origin::Pushed)
            .await?;
        Ok((digest, parsed.subject))
    }

    /// Stores a parsed manifest whose digest is `digest`: its bytes as a blob, then its rows,
    /// tagged when `reference` is a tag. A pushed manifest's references are checked before a
    /// byte is written, so a refused one leaves nothing behind; the database transaction checks
    /// them again, for a reference deleted or collected meanwhile (the bytes written then have
    /// no row, and garbage collection removes them). A cached one's blobs come when pulled.
    ///
    /// # Errors
    /// As [`Registry::put_manifest`].
    pub(super) async fn store_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        digest: &Digest,
        body: &Bytes,
        parsed: &manifest_doc::Parsed,
        origin: Origin,
    ) -> Result<(), Error> {
        let row = ManifestRow {
            digest: digest.to_string(),
            media_type: parsed.media_type.clone(),
            size: body.len() as u64,
            artifact_type: parsed.artifact_type.clone(),
            subject: parsed.subject.as_ref().map(ToString::to_string),
            annotations: parsed.annotations.clone(),
        };
        let refs = parsed.references();
        if origin == Origin::Pushed {
            self.db
                .check_manifest(repo.as_str(), digest.as_str(), &refs)
                .await?;
        }
        let tag = match reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        let stored = self
            .place_bytes(digest, body, |inline| {
                self.db
                    .put_manifest(repo.as_str(), &row, &refs, tag, origin, inline)
            })
            .await;
        self.manifest_cache.invalidate(repo.as_str());
        stored
    }

    /// Deletes a manifest by digest, or just the tag when given a tag.
    ///
    /// # Errors
    /// `Unsupported` when deletes are off; `ManifestUnknown` when there is nothing to delete.
    pub async fn delete_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<(), Error> {
        self.check_delete_enabled()?;
        let deleted = match reference {
            Reference::Digest(d) => self.db.delete_manifest(repo.as_str(), d.as_str()).await,
            Reference::Tag(t) => self.db.delete_tag(repo.as_str(), t).await,
        };
        self.manifest_cache.invalidate(repo.as_str());
        if deleted? {
            Ok(())
        } else {
            Err(Error::ManifestUnknown(format!("{repo}:{reference}")))
        }
    }

    /// The referrers index of `digest` (empty for an unknown digest), filtered by artifact type.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<serde_json::Value, Error> {
        let rows = self
            .db
            .referrers(repo.as_str(), digest.as_str(), artifact_type)
            .await?;
        Ok(referrers_index(&rows))
    }
}

/// The OCI image index listing `rows` as descriptors.
fn referrers_index(rows: &[Referrer]) -> serde_json::Value {
    let manifests: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut d =
                serde_json::json!({"mediaType": r.media_type, "digest": r.digest, "size": r.size});
            if let Some(t) = &r.artifact_type {
                d["artifactType"] = t.clone().into();
            }
            if let Some(a) = r
                .annotations
                .as_deref()
                .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
            {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_index_lists_descriptors() {
        let rows = vec![ManifestRow {
            digest: "sha256:ab".into(),
            media_type: "m".into(),
            size: 3,
            artifact_type: Some("t".into()),
            subject: None,
            annotations: Some(r#"{"a":"b"}"#.into()),
        }];
        let v = referrers_index(&rows);
        assert_eq!(v["mediaType"], OCI_INDEX);
        assert_eq!(v["manifests"][0]["artifactType"], "t");
        assert_eq!(v["manifests"][0]["annotations"]["a"], "b");
        assert_eq!(referrers_index(&[])["manifests"], serde_json::json!([]));
    }
}
