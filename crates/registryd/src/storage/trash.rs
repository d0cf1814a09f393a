//! The blob store as garbage collection sees it: every blob file with its age, and the trash
//! (`trash/<hex>`) that bytes pass through on their way out, so that a removal can be undone
//! until the transaction deleting their row commits (see `service/gc.rs`).

use std::io;
use std::time::SystemTime;

use tokio::fs;

use super::files::{blocking, remove_if_present, Files};
use crate::names::Digest;

/// A file of the blob store.
#[derive(Debug, Clone)]
pub struct BlobFile {
    /// The digest it is named after.
    pub digest: Digest,
    /// When it was last written (or committed).
    pub modified: SystemTime,
    /// Its length.
    pub size: u64,
}

impl Files {
    /// Every blob file in the store (files not named by a digest are skipped).
    ///
    /// # Errors
    /// On disk failure.
    pub async fn list_blobs(&self) -> io::Result<Vec<BlobFile>> {
        let mut out = vec![];
        let mut prefixes = fs::read_dir(self.paths.blobs_dir()).await?;
        while let Some(prefix) = prefixes.next_entry().await? {
            if !prefix.file_type().await?.is_dir() {
                continue;
            }
            let mut files = fs::read_dir(prefix.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let Some(d) = digest_named(&file.file_name()) else {
                    continue;
                };
                match file.metadata().await {
                    Ok(m) => out.push(BlobFile {
                        digest: d,
                        modified: m.modified()?,
                        size: m.len(),
                    }),
                    // Collected by another run meanwhile.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    /// Whether a blob's bytes are in the store (a blocking `stat`, for use inside a database
    /// transaction).
    #[must_use]
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.paths.blob(digest).exists()
    }

    /// Moves a blob's bytes to the trash; their size, `None` when they were not in the store.
    /// Blocking (a `rename`), for use inside a database transaction.
    ///
    /// # Errors
    /// On disk failure.
    pub fn trash_blob(&self, digest: &Digest) -> io::Result<Option<u64>> {
        let from = self.paths.blob(digest);
        let size = match std::fs::metadata(&from) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match std::fs::rename(&from, self.paths.trashed(digest)) {
            Ok(()) => Ok(Some(size)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves trashed bytes back into the store (or drops them when the store has them again).
    /// Blocking, for use inside a database transaction.
    ///
    /// # Errors
    /// On disk failure.
    pub fn restore_blob(&self, digest: &Digest) -> io::Result<()> {
        let (from, to) = (self.paths.trashed(digest), self.paths.blob(digest));
        if to.exists() {
            return remove_if_present(&from);
        }
        std::fs::create_dir_all(self.paths.blob_dir(digest))?;
        match std::fs::rename(&from, &to) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => std::fs::File::open(self.paths.blob_dir(digest))?.sync_all(),
        }
    }

    /// The digests whose bytes are in the trash.
    ///
    /// # Errors
    /// On disk failure.
    pub async fn list_trash(&self) -> io::Result<Vec<Digest>> {
        let mut out = vec![];
        let mut dir = fs::read_dir(self.paths.trash_dir()).await?;
        while let Some(entry) = dir.next_entry().await? {
            out.extend(digest_named(&entry.file_name()));
        }
        Ok(out)
    }

    /// Deletes trashed bytes; absence is fine.
    ///
    /// # Errors
    /// On disk failure other than absence.
    pub async fn empty_trash(&self, digest: &Digest) -> io::Result<()> {
        let path = self.paths.trashed(digest);
        blocking(move || remove_if_present(&path)).await
    }
}

/// The digest a file is named after (its sha256 hex).
fn digest_named(name: &std::ffi::OsStr) -> Option<Digest> {
    name.to_str()
        .and_then(|n| Digest::parse(&format!("sha256:{n}")).ok())
}
