//! Writing OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/…`) for skopeo to copy.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::content::{Content, Image};

/// An OCI image layout directory being filled by a test.
pub struct OciLayout {
    pub dir: PathBuf,
    manifests: Vec<Value>,
}

impl OciLayout {
    /// Creates `dir` with its `oci-layout` marker.
    pub fn create(dir: &Path) -> OciLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256"))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        write(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        OciLayout {
            dir: dir.into(),
            manifests: Vec::new(),
        }
    }

    /// Stores content under `blobs/sha256/<hex>`.
    pub fn add(&mut self, content: &Content) {
        write(
            &self.dir.join("blobs/sha256").join(content.hex()),
            &content.bytes,
        );
    }

    /// Stores every blob of the image and its manifest (not tagged).
    pub fn add_image(&mut self, image: &Image) {
        for blob in image.blobs() {
            self.add(blob);
        }
        self.add(&image.manifest);
    }

    /// Stores `manifest` and names it `tag` in `index.json` (written at once).
    pub fn tag(&mut self, manifest: &Content, tag: &str) {
        self.add(manifest);
        let mut descriptor = manifest.descriptor();
        descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.manifests.push(descriptor);
        let index = json!({"schemaVersion": 2, "mediaType": crate::content::OCI_INDEX, "manifests": self.manifests});
        let bytes = serde_json::to_vec(&index)
            .unwrap_or_else(|e| panic!("cannot serialize index.json: {e}"));
        write(&self.dir.join("index.json"), &bytes);
    }

    /// `oci:DIR:tag`, skopeo's name for a tagged image in this layout.
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }
}

/// The bytes of `digest`'s blob in the layout at `dir`, if present.
pub fn read_blob(dir: &Path, digest: &str) -> Option<Vec<u8>> {
    std::fs::read(
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .ok()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
