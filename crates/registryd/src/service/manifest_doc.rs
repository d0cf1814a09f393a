//! Understanding a pushed manifest: which of the five accepted kinds it is (Docker schema2,
//! Docker manifest list, OCI image manifest, OCI index, OCI artifact), whether it is well formed,
//! and what it references. Small serde structs, tolerant of fields we do not use.

use serde::Deserialize;

use crate::db::{References, Target};
use crate::error::Error;
use crate::names::Digest;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Every manifest media type [`parse`] accepts.
pub const MANIFEST_TYPES: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// The media type a `Content-Type` value declares for a manifest: its parameters dropped, and
/// `None` when absent or generic (`application/json`, `application/octet-stream`), so [`parse`]
/// reads the type from the body.
#[must_use]
pub fn declared_type(content_type: Option<&str>) -> Option<String> {
    content_type
        .map(|v| v.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|v| !v.is_empty() && v != "application/json" && v != "application/octet-stream")
}

/// Layer types that may live elsewhere (`urls`) and need not be pushed to us: Docker's foreign
/// layers and OCI's non-distributable ones. Every other descriptor must name stored content.
const FOREIGN_LAYERS: &[&str] = &[
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// A content descriptor, as far as we need it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: i64,
    /// Where a foreign (non-distributable) layer can be fetched instead of from us.
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
    /// Config and layers that must be linked in the repository, with that size.
    pub blobs: Vec<Target>,
    /// Children that must be manifests of the repository, with that size.
    pub manifests: Vec<Target>,
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

fn check(d: &Descriptor) -> Result<Target, Error> {
    let size = u64::try_from(d.size)
        .ok()
        .filter(|_| !d.media_type.is_empty());
    let Some(size) = size else {
        return Err(invalid(format!(
            "descriptor {} has a bad size or media type",
            d.digest
        )));
    };
    let digest = Digest::parse(&d.digest)
        .map_err(|_| invalid(format!("descriptor digest {:?} is invalid", d.digest)))?;
    Ok(Target {
        digest: digest.to_string(),
        size,
    })
}

/// Whether a layer may be missing here: a foreign type that says where else to find it.
fn is_foreign(layer: &Descriptor) -> bool {
    FOREIGN_LAYERS.contains(&layer.media_type.as_str())
        && layer.urls.as_ref().is_some_and(|u| !u.is_empty())
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
        .map(|t| Digest::parse(&t.digest))
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
                let target = check(layer)?;
                if !is_foreign(layer) {
                    blobs.push(target);
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

    fn t(c: char, size: u64) -> Target {
        Target { digest: d(c), size }
    }

    #[test]
    fn image_manifest_references_config_and_layers() {
        let body = json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d('a'), "size": 2},
            "layers": [{"mediaType": "l", "digest": d('b'), "size": 3},
                       {"mediaType": FOREIGN_LAYERS[0], "digest": d('c'), "size": 4, "urls": ["https://x"]}]});
        let p = parse(Some(DOCKER_MANIFEST), body.to_string().as_bytes()).unwrap();
        assert_eq!(p.blobs, vec![t('a', 2), t('b', 3)]);
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
        assert!(p.subject.is_none());
    }

    #[test]
    fn only_foreign_layer_types_with_urls_may_be_missing() {
        let layer = |media_type: &str, urls: serde_json::Value| {
            let body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "c", "digest": d('a'), "size": 2},
                "layers": [{"mediaType": media_type, "digest": d('b'), "size": 3, "urls": urls}]});
            parse(Some(OCI_MANIFEST), body.to_string().as_bytes())
                .unwrap()
                .blobs
        };
        for foreign in FOREIGN_LAYERS {
            assert_eq!(
                layer(foreign, json!(["https://x"])),
                vec![t('a', 2)],
                "{foreign}"
            );
            assert_eq!(layer(foreign, json!([])).len(), 2, "{foreign} without urls");
            assert_eq!(
                layer(foreign, json!(null)).len(),
                2,
                "{foreign} without urls"
            );
        }
        for ordinary in [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/x-anything",
        ] {
            assert_eq!(layer(ordinary, json!(["https://x"])).len(), 2, "{ordinary}");
        }
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
        assert_eq!(p.manifests, vec![t('1', 5)]);
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
            (Some(OCI_INDEX), format!(r#"{{"schemaVersion": 2, "manifests": [{{"mediaType": "x", "digest": "{}", "size": 18446744073709551616}}]}}"#, d('a'))),
            (Some(OCI_INDEX), format!(r#"{{"schemaVersion": 2, "manifests": [{{"mediaType": "x", "digest": "{}", "size": 9223372036854775808}}]}}"#, d('a'))),
            (Some(OCI_INDEX), format!(r#"{{"schemaVersion": 2, "manifests": [{{"mediaType": "x", "digest": "{}", "size": 1e400}}]}}"#, d('a'))),
            (Some(OCI_INDEX), format!(r#"{{"schemaVersion": 2, "manifests": [{{"mediaType": "x", "digest": "{}", "size": 2.5}}]}}"#, d('a'))),
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
