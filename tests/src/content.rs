//! Test content: random blobs, tar layers, image configs and manifests of every media type.

use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// `len` random bytes.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// A short random hex string, to make names unique per test.
pub fn unique() -> String {
    hex::encode(random_bytes(4))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Content addressed by its digest: a blob or a manifest.
#[derive(Clone, Debug)]
pub struct Content {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub media_type: String,
}

impl Content {
    pub fn new(bytes: Vec<u8>, media_type: &str) -> Content {
        Content {
            digest: sha256(&bytes),
            bytes,
            media_type: media_type.into(),
        }
    }

    /// A blob of `len` random bytes.
    pub fn random(len: usize) -> Content {
        Content::new(random_bytes(len), OCI_LAYER)
    }

    /// A serialized JSON document.
    pub fn json(value: &Value, media_type: &str) -> Content {
        let bytes = serde_json::to_vec_pretty(value)
            .unwrap_or_else(|e| panic!("cannot serialize JSON: {e}"));
        Content::new(bytes, media_type)
    }

    /// An uncompressed tar layer holding one file `name` of `len` random bytes.
    pub fn tar_layer(name: &str, len: usize) -> Content {
        Content::new(tar_bytes(name, len), OCI_LAYER)
    }

    /// The same layer gzip-compressed, with its diff_id (digest of the uncompressed tar).
    pub fn tar_gz_layer(name: &str, len: usize) -> (Content, String) {
        use std::io::Write;
        let tar = tar_bytes(name, len);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar)
            .unwrap_or_else(|e| panic!("gzip failed: {e}"));
        let bytes = gz.finish().unwrap_or_else(|e| panic!("gzip failed: {e}"));
        (Content::new(bytes, OCI_LAYER_GZIP), sha256(&tar))
    }

    /// This content's descriptor `{mediaType, digest, size}`.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len()})
    }

    /// The hex part of the digest.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// A tar archive holding one file `name` of `len` random bytes.
fn tar_bytes(name: &str, len: usize) -> Vec<u8> {
    let data = random_bytes(len);
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    builder
        .append_data(&mut header, name, data.as_slice())
        .unwrap_or_else(|e| panic!("cannot build a tar layer: {e}"));
    builder
        .into_inner()
        .unwrap_or_else(|e| panic!("cannot finish a tar layer: {e}"))
}

/// An image: config, layers and the manifest tying them.
#[derive(Clone, Debug)]
pub struct Image {
    pub config: Content,
    pub layers: Vec<Content>,
    pub manifest: Content,
}

impl Image {
    /// An OCI image for `os/arch` over the given uncompressed tar layers (diff_ids = digests).
    pub fn oci(arch: &str, layers: Vec<Content>) -> Image {
        let layers = layers
            .into_iter()
            .map(|l| {
                (
                    l.digest.clone(),
                    Content {
                        media_type: OCI_LAYER.into(),
                        ..l
                    },
                )
            })
            .collect();
        Image::build(arch, layers, OCI_MANIFEST, OCI_CONFIG)
    }

    /// An OCI image for `os/arch` of `count` random gzip-compressed layers (as registries
    /// usually hold them: clients then copy them without recompressing).
    pub fn oci_gzip(arch: &str, count: usize) -> Image {
        let layers = (0..count)
            .map(|i| {
                let (layer, diff_id) = Content::tar_gz_layer(&format!("{arch}-{i}"), 4096 + i);
                (diff_id, layer)
            })
            .collect();
        Image::build(arch, layers, OCI_MANIFEST, OCI_CONFIG)
    }

    /// The same in Docker schema2 media types.
    pub fn docker(arch: &str, layers: Vec<Content>) -> Image {
        let layers = layers
            .into_iter()
            .map(|l| {
                (
                    l.digest.clone(),
                    Content {
                        media_type: DOCKER_LAYER.into(),
                        ..l
                    },
                )
            })
            .collect();
        Image::build(arch, layers, DOCKER_MANIFEST, DOCKER_CONFIG)
    }

    /// An OCI image of `count` random single-file layers.
    pub fn random(count: usize) -> Image {
        let layers = (0..count)
            .map(|i| Content::tar_layer(&format!("file{i}"), 2048 + i))
            .collect();
        Image::oci("amd64", layers)
    }

    /// `layers` are (diff_id, blob) pairs.
    fn build(
        arch: &str,
        layers: Vec<(String, Content)>,
        manifest_type: &str,
        config_type: &str,
    ) -> Image {
        let diff_ids: Vec<&str> = layers.iter().map(|(d, _)| d.as_str()).collect();
        let config = Content::json(
            &json!({
                "architecture": arch, "os": "linux",
                "config": {"Labels": {"test.unique": unique()}},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }),
            config_type,
        );
        let layers: Vec<Content> = layers.into_iter().map(|(_, l)| l).collect();
        let manifest = Content::json(
            &json!({
                "schemaVersion": 2,
                "mediaType": manifest_type,
                "config": config.descriptor(),
                "layers": layers.iter().map(Content::descriptor).collect::<Vec<_>>(),
            }),
            manifest_type,
        );
        Image {
            config,
            layers,
            manifest,
        }
    }

    /// Every blob of the image (config first).
    pub fn blobs(&self) -> Vec<&Content> {
        std::iter::once(&self.config).chain(&self.layers).collect()
    }
}

/// An index (OCI) or manifest list (Docker) over `images`, each with its platform.
pub fn index(media_type: &str, images: &[(&str, &Image)]) -> Content {
    let manifests: Vec<Value> = images
        .iter()
        .map(|(arch, image)| {
            let mut d = image.manifest.descriptor();
            d["platform"] = json!({"architecture": arch, "os": "linux"});
            d
        })
        .collect();
    Content::json(
        &json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}),
        media_type,
    )
}

/// An OCI artifact manifest (`artifactType`, empty config, one layer) referring to `subject`.
/// Its blobs (the empty config `{}` and `layer`) must be pushed first.
pub fn artifact(artifact_type: &str, layer: &Content, subject: &Content) -> Content {
    Content::json(
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": empty_config().descriptor(),
            "layers": [layer.descriptor()],
            "subject": subject.descriptor(),
            "annotations": {"test.unique": unique()},
        }),
        OCI_MANIFEST,
    )
}

/// The OCI empty descriptor's content, `{}`.
pub fn empty_config() -> Content {
    Content::new(b"{}".to_vec(), OCI_EMPTY)
}
