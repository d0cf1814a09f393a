//! What the pages read from a manifest, an index and an image config: tolerant serde structs
//! (unknown fields ignored, missing ones empty), for display only — pushes were validated by
//! the service.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A manifest or an index.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManifestDoc {
    pub media_type: Option<String>,
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    /// An index's children.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub annotations: BTreeMap<String, serde_json::Value>,
}

/// A content descriptor.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub platform: Option<Platform>,
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, serde_json::Value>,
}

/// An index child's platform.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    #[serde(rename = "os.version")]
    pub os_version: Option<String>,
}

impl Platform {
    /// `linux/arm64/v8`.
    #[must_use]
    pub fn label(&self) -> String {
        let mut s = format!("{}/{}", self.os, self.architecture);
        if let Some(v) = &self.variant {
            s.push('/');
            s.push_str(v);
        }
        s
    }
}

/// An image config (OCI or Docker), the parts a person reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub created: Option<String>,
    pub config: RunConfig,
    pub history: Vec<History>,
}

/// What a container of the image runs with.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RunConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// One line of the image's history.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct History {
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

impl ManifestDoc {
    /// Parses manifest bytes; an unreadable document reads as empty.
    #[must_use]
    pub fn parse(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// Config plus layers: what pulling the image transfers.
    #[must_use]
    pub fn image_size(&self) -> u64 {
        self.config.as_ref().map_or(0, |c| c.size) + self.layers.iter().map(|l| l.size).sum::<u64>()
    }

    /// The platforms of an index's children, attestations left out.
    #[must_use]
    pub fn platforms(&self) -> Vec<String> {
        self.manifests
            .iter()
            .filter_map(|m| m.platform.as_ref())
            .filter(|p| p.os != "unknown")
            .map(Platform::label)
            .collect()
    }
}

/// An annotation value as text (strings as they are, anything else as JSON).
#[must_use]
pub fn annotation_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a config media type is an image config a person can read.
#[must_use]
pub fn is_image_config(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.config.v1+json"
            | "application/vnd.docker.container.image.v1+json"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_images_indexes_and_configs() {
        let image = ManifestDoc::parse(
            br#"{"schemaVersion":2,"config":{"mediaType":"c","digest":"sha256:1","size":10},
                "layers":[{"mediaType":"l","digest":"sha256:2","size":100},{"digest":"sha256:3","size":5}],
                "annotations":{"a":"<b>","n":3}}"#,
        );
        assert_eq!(image.image_size(), 115);
        assert_eq!(annotation_text(&image.annotations["n"]), "3");
        let index = ManifestDoc::parse(
            br#"{"manifests":[{"digest":"sha256:1","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
                {"digest":"sha256:2","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]}"#,
        );
        assert_eq!(index.platforms(), vec!["linux/arm64/v8".to_owned()]);
        assert_eq!(ManifestDoc::parse(b"not json").layers.len(), 0);
        let cfg: ImageConfig = serde_json::from_str(
            r#"{"architecture":"amd64","config":{"Cmd":["sh"],"Env":["A=1"],"ExposedPorts":{"80/tcp":{}},"Labels":null},
                "history":[{"created_by":"RUN x","empty_layer":true}]}"#,
        )
        .unwrap();
        assert_eq!(cfg.config.cmd, Some(vec!["sh".to_owned()]));
        assert!(cfg.config.labels.is_none());
        assert!(cfg.history[0].empty_layer);
    }
}
