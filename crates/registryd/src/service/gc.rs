//! Garbage collection of blob bytes: blobs that no repository links and that are no manifest
//! (after DELETEs) lose their row, then their file; files with no row (left by a crash between
//! rename and insert) are removed too. Runs under the exclusive commit lock, so it never races a
//! push or mount that is making the same blob reachable.

use super::Registry;
use crate::error::Error;
use crate::names::Digest;

impl Registry {
    /// Collects unreachable blobs; returns how many files were removed.
    ///
    /// # Errors
    /// `Db`/`Io` on failure; rows go first, so a failure leaves at worst files for the next run.
    pub async fn collect_garbage(&self) -> Result<usize, Error> {
        let _exclusive = self.commit_lock.write().await;
        let mut removed = 0;
        for d in self.db.delete_unlinked_blobs().await? {
            if let Ok(d) = Digest::parse(&d) {
                self.files.remove_blob(&d).await?;
                removed += 1;
            }
        }
        for d in self.files.list_blobs().await? {
            if self.db.blob_size(d.as_str()).await?.is_none() {
                self.files.remove_blob(&d).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RepoName;

    #[tokio::test]
    async fn only_unlinked_blobs_and_rowless_files_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), true).await.unwrap();
        let (a, b) = (RepoName::parse("a").unwrap(), RepoName::parse("b").unwrap());
        let shared = Digest::of(b"shared");
        let lonely = Digest::of(b"lonely");
        for (repo, bytes, d) in [
            (&a, &b"shared"[..], &shared),
            (&b, b"shared", &shared),
            (&a, b"lonely", &lonely),
        ] {
            reg.upload_whole(
                repo,
                "",
                d,
                String::new(),
                futures_util::stream::iter([Ok::<_, std::io::Error>(
                    bytes::Bytes::copy_from_slice(bytes),
                )]),
            )
            .await
            .unwrap();
        }
        let orphan = Digest::of(b"orphan");
        reg.files
            .write_blob(&orphan, &bytes::Bytes::from_static(b"orphan"))
            .await
            .unwrap();
        assert_eq!(
            reg.collect_garbage().await.unwrap(),
            1,
            "only the row-less file"
        );

        reg.delete_blob(&a, &shared).await.unwrap();
        reg.delete_blob(&a, &lonely).await.unwrap();
        assert_eq!(
            reg.collect_garbage().await.unwrap(),
            1,
            "lonely goes, shared is still in b"
        );
        assert_eq!(reg.blob_size(&b, &shared).await.unwrap(), 6);
        assert!(reg.blob_range(&shared, 0, 6).await.is_ok());
        let mut left = reg.files.list_blobs().await.unwrap();
        left.sort();
        assert_eq!(left, vec![shared]);
    }
}
