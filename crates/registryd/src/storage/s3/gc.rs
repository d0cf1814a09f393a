//! The object store as garbage collection sees it: a listing of the blobs with their ages, and
//! the trash (`trash/<hex>`) that bytes pass through on their way out, as on the filesystem
//! (see `service/gc`). S3 has no rename: a move is a server-side copy and a delete.
//!
//! The database calls the checks and moves inside its write transaction, synchronously; here
//! they run on the runtime from that thread ([`blocking`]).

use std::io;
use std::time::SystemTime;

use futures_util::TryStreamExt;
use object_store::path::Path;

use super::uploads::absent_ok;
use super::{to_io, S3};
use crate::names::Digest;
use crate::storage::BlobFile;

impl S3 {
    pub(in crate::storage) async fn list_blobs(&self) -> io::Result<Vec<BlobFile>> {
        let mut out = vec![];
        let mut listing = self.store.list(Some(&self.keys.blobs()));
        while let Some(meta) = listing.try_next().await.map_err(to_io)? {
            if let Some(digest) = digest_named(&meta.location) {
                out.push(BlobFile {
                    digest,
                    modified: SystemTime::from(meta.last_modified),
                    size: meta.size,
                });
            }
        }
        Ok(out)
    }

    pub(in crate::storage) fn has_blob(&self, digest: &Digest) -> bool {
        // An unreachable store counts as "not there": the writer is refused and retries.
        blocking(self.exists(&self.keys.blob(digest))).unwrap_or(false)
    }

    pub(in crate::storage) fn trash_blob(&self, digest: &Digest) -> io::Result<Option<u64>> {
        let (from, to) = (self.keys.blob(digest), self.keys.trashed(digest));
        blocking(async {
            let size = match self.store.head(&from).await {
                Ok(meta) => meta.size,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(to_io(e)),
            };
            self.store.copy(&from, &to).await.map_err(to_io)?;
            self.store.delete(&from).await.or_else(absent_ok)?;
            Ok(Some(size))
        })
    }

    pub(in crate::storage) fn restore_blob(&self, digest: &Digest) -> io::Result<()> {
        let (from, to) = (self.keys.trashed(digest), self.keys.blob(digest));
        blocking(async {
            if !self.exists(&to).await? {
                match self.store.copy(&from, &to).await {
                    Err(object_store::Error::NotFound { .. }) => return Ok(()),
                    copied => copied.map_err(to_io)?,
                }
            }
            self.store.delete(&from).await.or_else(absent_ok)
        })
    }

    pub(in crate::storage) async fn list_trash(&self) -> io::Result<Vec<Digest>> {
        let mut out = vec![];
        let mut listing = self.store.list(Some(&self.keys.trash()));
        while let Some(meta) = listing.try_next().await.map_err(to_io)? {
            out.extend(digest_named(&meta.location));
        }
        Ok(out)
    }

    pub(in crate::storage) async fn empty_trash(&self, digest: &Digest) -> io::Result<()> {
        self.store
            .delete(&self.keys.trashed(digest))
            .await
            .or_else(absent_ok)
    }
}

/// Runs `work` to its end from a thread of the (multi-threaded) runtime that must not await.
fn blocking<T>(work: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| handle.block_on(work))
}

/// The digest an object is named after (its sha256 hex, the last part of its key).
fn digest_named(key: &Path) -> Option<Digest> {
    key.filename()
        .and_then(|hex| Digest::parse(&format!("sha256:{hex}")).ok())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn trashed_blobs_go_back_or_go() {
        let s3 = S3::in_memory(Arc::new(InMemory::new()), 1 << 20);
        let d = Digest::of(b"x");
        s3.write_blob(&d, &Bytes::from_static(b"x")).await.unwrap();
        assert!(s3.has_blob(&d));
        assert_eq!(s3.trash_blob(&d).unwrap(), Some(1));
        assert!(!s3.has_blob(&d));
        assert_eq!(s3.list_trash().await.unwrap(), std::slice::from_ref(&d));
        s3.restore_blob(&d).unwrap();
        assert!(s3.has_blob(&d) && s3.list_trash().await.unwrap().is_empty());
        assert_eq!(s3.list_blobs().await.unwrap().len(), 1);
        s3.trash_blob(&d).unwrap();
        s3.empty_trash(&d).await.unwrap();
        assert!(s3.list_blobs().await.unwrap().is_empty());
        assert!(s3.list_trash().await.unwrap().is_empty());
    }
}
