//! Understanding a pushed manifest: which of the five accepted kinds it is (Docker schema2,
//! Docker manifest list, OCI image manifest, OCI index, OCI artifact), whether it is well formed,
//! and what it references. Small serde structs, tolerant of fields we do not use.

use serde::Deserialize;

use crate::db::References;
use crate::error::Error;
use crate::names::Digest;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A content descriptor, as far as we need it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: i64,
    /// Foreign layers live elsewhere and are not pushed to us.
    #[serde(default)]
    urls: Option<Vec<String>>,
}

/// The fields of any manifest or index we look at.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    schema_version: Option<i64>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A validated manifest: what the database stores about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// One of the four accepted manifest media types.
    pub media_type: String,
    /// `artifactType`, or for an image manifest its config's media type (for referrers).
    pub artifact_type: Option<String>,
    /// The manifest this one refers to (`subject`).
    pub subject: Option<Digest>,
    /// `annotations` as JSON text, echoed by the referrers API.
    pub annotations: Option<String>,
    /// Config and layers that must be linked in the repository.
    pub blobs: Vec<String>,
    /// Children that must be manifests of the repository.
    pub manifests: Vec<String>,
}

impl Parsed {
    pub fn references(&self) -> References {
        References {
            blobs: self.blobs.clone(),
            manifests: self.manifests.clone(),
        }
    }
}

fn invalid(why: impl Into<String>) -> Error {
    Error::ManifestInvalid(why.into())
}

fn check(d: &Descriptor) -> Result<String, Error> {
    if d.size < 0 || d.media_type.is_empty() {
        return Err(invalid(format!(
            "descriptor {} has a bad size or media type",
            d.digest
        )));
    }
    Digest::parse(&d.digest)
        .map(|d| d.to_string())
        .map_err(|_| invalid(format!("descriptor digest {:?} is invalid", d.digest)))
}

/// Parses and validates `body` pushed with `Content-Type: content_type` (None when absent or
/// generic JSON).
///
/// # Errors
/// `ManifestInvalid` for malformed JSON, an unknown or contradictory media type, a missing
/// required field or a bad descriptor.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Parsed, Error> {
    let doc: Doc =
        serde_json::from_slice(body).map_err(|e| invalid(format!("malformed JSON: {e}")))?;
    if doc.schema_version != Some(2) {
        return Err(invalid(
            "schemaVersion must be 2 (schema 1 is not supported)",
        ));
    }
    let inferred = if doc.manifests.is_some() {
        OCI_INDEX
    } else {
        OCI_MANIFEST
    };
    let media_type = match (content_type, doc.media_type.as_deref()) {
        (Some(h), Some(b)) if h != b => {
            return Err(invalid(format!(
                "Content-Type {h} does not match mediaType {b}"
            )))
        }
        (Some(h), _) => h,
        (None, Some(b)) => b,
        (None, None) => inferred,
    };
    let annotations = doc
        .annotations
        .as_ref()
        .map(|a| serde_json::Value::Object(a.clone()).to_string());
    let subject = doc
        .subject
        .as_ref()
        .map(check)
        .transpose()?
        .map(|d| Digest::parse(&d))
        .transpose()?;
    match media_type {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let config = doc
                .config
                .as_ref()
                .ok_or_else(|| invalid("image manifest without config"))?;
            let layers = doc
                .layers
                .as_ref()
                .ok_or_else(|| invalid("image manifest without layers"))?;
            if doc.manifests.is_some() {
                return Err(invalid("image manifest with a manifests list"));
            }
            let mut blobs = vec![check(config)?];
            for layer in layers {
                let digest = check(layer)?;
                if layer.urls.is_none() {
                    blobs.push(digest);
                }
            }
            let artifact_type = doc
                .artifact_type
                .clone()
                .or_else(|| Some(config.media_type.clone()));
            Ok(Parsed {
                media_type: media_type.to_owned(),
                artifact_type,
                subject,
                annotations,
                blobs,
                manifests: vec![],
            })
        }
        DOCKER_LIST | OCI_INDEX => {
            let children = doc
                .manifests
                .as_ref()
                .ok_or_else(|| invalid("index without manifests"))?;
            if doc.config.is_some() || doc.layers.is_some() {
                return Err(invalid("index with config or layers"));
            }
            let manifests = children.iter().map(check).collect::<Result<_, _>>()?;
            Ok(Parsed {
                media_type: media_type.to_owned(),
                artifact_type: doc.artifact_type,
                subject,
                annotations,
                blobs: vec![],
                manifests,
            })
        }
        other => Err(invalid(format!(
            "unsupported manifest media type {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_references_config_and_layers() {
        let body = json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d('a'), "size": 2},
            "layers": [{"mediaType": "l", "digest": d('b'), "size": 3},
                       {"mediaType": "foreign", "digest": d('c'), "size": 3, "urls": ["https://x"]}]});
        let p = parse(Some(DOCKER_MANIFEST), body.to_string().as_bytes()).unwrap();
        assert_eq!(p.blobs, vec![d('a'), d('b')]);
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
        assert!(p.subject.is_none());
    }

    #[test]
    fn artifact_with_subject_and_inferred_media_type() {
        let body = json!({"schemaVersion": 2, "artifactType": "application/x-sig",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": d('a'), "size": 2},
            "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": d('e'), "size": 9},
            "annotations": {"k": "v"}});
        let p = parse(None, body.to_string().as_bytes()).unwrap();
        assert_eq!(p.media_type, OCI_MANIFEST);
        assert_eq!(p.artifact_type.as_deref(), Some("application/x-sig"));
        assert_eq!(p.subject.unwrap().to_string(), d('e'));
        assert_eq!(p.annotations.as_deref(), Some(r#"{"k":"v"}"#));
    }

    #[test]
    fn index_references_children() {
        let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": d('1'), "size": 5, "platform": {"os": "linux"}}]});
        let p = parse(Some(OCI_INDEX), body.to_string().as_bytes()).unwrap();
        assert_eq!(p.manifests, vec![d('1')]);
        assert!(p.blobs.is_empty());
    }

    #[test]
    fn bad_manifests_are_manifest_invalid() {
        let cases = [
            (Some(OCI_MANIFEST), "{not json".to_owned()),
            (Some(OCI_MANIFEST), json!({"schemaVersion": 1}).to_string()),
            (Some(OCI_MANIFEST), json!({"schemaVersion": 2, "layers": []}).to_string()),
            (Some(OCI_INDEX), json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "manifests": []}).to_string()),
            (Some("text/plain"), json!({"schemaVersion": 2, "manifests": []}).to_string()),
            (Some(OCI_INDEX), json!({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": "sha256:zz", "size": 1}]}).to_string()),
            (Some(OCI_INDEX), json!({"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": d('a'), "size": -1}]}).to_string()),
        ];
        for (ct, body) in cases {
            assert_eq!(
                parse(ct, body.as_bytes()).unwrap_err().code(),
                "MANIFEST_INVALID",
                "{body}"
            );
        }
    }
}
