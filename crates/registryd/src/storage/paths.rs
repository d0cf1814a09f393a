//! Every path registryd touches on disk is built here, and only here:
//!
//! ```text
//! <rootdirectory>/
//!   registry.db                      SQLite metadata (plus -wal / -shm)
//!   blobs/sha256/<hex[0..2]>/<hex>   verified content, named by its digest, shared by all repos
//!   uploads/<uuid>                   bytes of an upload session (or a manifest) not yet verified
//!   trash/<hex>                      blob bytes garbage collection is removing (see service/gc.rs)
//! ```
//!
//! Inputs are validated types ([`Digest`], [`Uuid`]), so no path can leave the root.

use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::names::Digest;

/// The layout under one data directory.
#[derive(Debug, Clone)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// The layout rooted at `root`.
    #[must_use]
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    /// The data directory itself.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database file.
    #[must_use]
    pub fn database(&self) -> PathBuf {
        self.root.join("registry.db")
    }

    /// Folder of in-progress uploads.
    #[must_use]
    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    /// One upload's bytes.
    #[must_use]
    pub fn upload(&self, uuid: &Uuid) -> PathBuf {
        self.uploads_dir().join(uuid.to_string())
    }

    /// The sha256 content store (`blobs/sha256`).
    #[must_use]
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Folder of blob bytes being collected.
    #[must_use]
    pub fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }

    /// A blob's bytes while being collected.
    #[must_use]
    pub fn trashed(&self, digest: &Digest) -> PathBuf {
        self.trash_dir().join(digest.hex())
    }

    /// The folder a blob lives in (`blobs/sha256/ab`).
    #[must_use]
    pub fn blob_dir(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs_dir().join(hex.get(..2).unwrap_or("00"))
    }

    /// A blob's bytes.
    #[must_use]
    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.blob_dir(digest).join(digest.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_tree_above() {
        let p = Paths::new(Path::new("/data"));
        let d = Digest::of(b"");
        assert_eq!(p.database(), Path::new("/data/registry.db"));
        assert_eq!(
            p.blob(&d),
            Path::new("/data/blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let u = Uuid::nil();
        assert_eq!(
            p.upload(&u),
            Path::new("/data/uploads/00000000-0000-0000-0000-000000000000")
        );
    }
}
