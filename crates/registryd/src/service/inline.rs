//! Small blobs inline (`storage.inline`): a blob at most `inline_max` bytes long is recorded with
//! its bytes in the database, in one transaction, instead of being placed in the blob store
//! first; reads of such a size look in the database before the store (a blob stored before the
//! bound was raised is still a file or an object).

use std::future::Future;

use bytes::Bytes;
use uuid::Uuid;

use super::gc::placed;
use super::Registry;
use crate::error::Error;
use crate::names::Digest;

impl Registry {
    /// Places verified upload `uuid` (blob `digest` of `size` bytes) and records it with
    /// `record`: inline when it is small (`record` gets its bytes), else committed to the store
    /// first (`record` gets `None`, and runs again if a collection took the bytes meanwhile).
    pub(super) async fn place_upload<T, R>(
        &self,
        uuid: &Uuid,
        digest: &Digest,
        size: u64,
        record: impl Fn(Option<Bytes>) -> R,
    ) -> Result<T, Error>
    where
        R: Future<Output = Result<T, Error>>,
    {
        if size <= self.inline_max {
            let bytes = self.blobs.read_upload(uuid).await?;
            return record(Some(bytes)).await;
        }
        placed(
            || async move { Ok(self.blobs.commit_upload(uuid, digest).await?) },
            || record(None),
        )
        .await
    }

    /// Places `body` (blob `digest`) and records it with `record`, as [`Registry::place_upload`].
    pub(super) async fn place_bytes<T, R>(
        &self,
        digest: &Digest,
        body: &Bytes,
        record: impl Fn(Option<Bytes>) -> R,
    ) -> Result<T, Error>
    where
        R: Future<Output = Result<T, Error>>,
    {
        if body.len() as u64 <= self.inline_max {
            return record(Some(body.clone())).await;
        }
        placed(
            || async move { Ok(self.blobs.write_blob(digest, body).await?) },
            || record(None),
        )
        .await
    }

    /// The bytes of blob `digest` of `size` bytes when they are inline.
    pub(super) async fn inline_bytes(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Option<Bytes>, Error> {
        if size > self.inline_max {
            return Ok(None);
        }
        self.db.inline_bytes(digest.as_str()).await
    }

    /// The whole of a stored blob of `size` bytes (a manifest), inline or from the store.
    ///
    /// # Errors
    /// `Io` (`NotFound` when the bytes are gone) or `Db`.
    pub(super) async fn read_whole(&self, digest: &Digest, size: u64) -> Result<Bytes, Error> {
        match self.inline_bytes(digest, size).await? {
            Some(bytes) => Ok(bytes),
            None => Ok(self.blobs.read_blob(digest).await?),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use futures_util::TryStreamExt;

    use super::*;
    use crate::config::inline::DEFAULT_MAX;
    use crate::names::{Reference, RepoName};
    use crate::service::manifest_doc::OCI_MANIFEST;
    use crate::service::GcRun;

    async fn push(reg: &Registry, repo: &RepoName, bytes: Vec<u8>) -> Digest {
        let d = Digest::of(&bytes);
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(bytes))]);
        reg.upload_whole(repo, "", &d, String::new(), body)
            .await
            .unwrap();
        d
    }

    async fn read(reg: &Registry, d: &Digest, size: u64, start: u64, len: u64) -> Vec<u8> {
        let got: BytesMut = reg
            .blob_range(d, size, start, len)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        got.to_vec()
    }

    #[tokio::test]
    async fn small_blobs_and_manifests_live_in_rows_and_leave_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), true).await.unwrap();
        let (a, b) = (RepoName::parse("a").unwrap(), RepoName::parse("b").unwrap());
        let max = usize::try_from(DEFAULT_MAX).unwrap();
        let small: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
        let large = vec![9u8; max + 1];
        let (s, l) = (
            push(&reg, &a, small.clone()).await,
            push(&reg, &a, large).await,
        );
        assert!(
            !reg.blobs.has_blob(&s),
            "a blob of the bound's size became a file"
        );
        assert!(reg.blobs.has_blob(&l), "a blob above the bound is a file");
        assert_eq!(read(&reg, &s, DEFAULT_MAX, 0, DEFAULT_MAX).await, small);
        assert_eq!(read(&reg, &s, DEFAULT_MAX, 10, 5).await, small[10..15]);
        assert!(
            reg.try_mount(&b, &s, None).await.unwrap(),
            "mounting an inline blob"
        );

        let desc = |d: &Digest, n: usize| serde_json::json!({"mediaType": "application/octet-stream", "digest": d.as_str(), "size": n});
        let doc = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": desc(&s, max), "layers": [desc(&l, max + 1)]});
        let body = Bytes::from(serde_json::to_vec(&doc).unwrap());
        let tag = Reference::parse("v1").unwrap();
        let (m, _) = reg
            .put_manifest(&a, &tag, Some(OCI_MANIFEST), &body)
            .await
            .unwrap();
        assert!(!reg.blobs.has_blob(&m));
        // Read from its row, not from the cache the push filled.
        reg.manifest_cache.invalidate("a");
        let got = reg.get_manifest(&a, &tag, true).await.unwrap();
        assert_eq!(got.body.unwrap(), body);

        // Gone from every repository, then collected: row and bytes leave together.
        reg.delete_manifest(&a, &Reference::Digest(m.clone()))
            .await
            .unwrap();
        for (repo, d) in [(&a, &s), (&a, &l), (&b, &s)] {
            reg.delete_blob(repo, d).await.unwrap();
        }
        let run = GcRun {
            grace: std::time::Duration::ZERO,
            delete_untagged: false,
            dry_run: false,
        };
        let report = reg.collect_garbage(run).await.unwrap();
        assert_eq!(report.blobs, 3, "{report}");
        assert_eq!(
            report.bytes,
            DEFAULT_MAX + DEFAULT_MAX + 1 + body.len() as u64
        );
        for d in [&s, &m] {
            assert_eq!(reg.db.inline_bytes(d.as_str()).await.unwrap(), None);
        }
        assert!(!reg.blobs.has_blob(&l));
    }

    #[tokio::test]
    async fn a_blob_stored_as_a_file_before_the_bound_was_raised_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let a = RepoName::parse("a").unwrap();
        let files = Registry::open(dir.path(), true)
            .await
            .unwrap()
            .with_inline_max(0);
        let d = push(&files, &a, b"tiny".to_vec()).await;
        assert!(files.blobs.has_blob(&d));
        drop(files);
        let reg = Registry::open(dir.path(), true).await.unwrap();
        assert_eq!(read(&reg, &d, 4, 0, 4).await, b"tiny");
        // Pushed again now, it is recorded inline too; either copy serves it.
        push(&reg, &a, b"tiny".to_vec()).await;
        assert_eq!(
            reg.db.inline_bytes(d.as_str()).await.unwrap().unwrap(),
            "tiny"
        );
    }
}
