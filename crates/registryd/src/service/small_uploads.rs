//! Small blobs sent whole by the request that finishes an empty session: a monolithic `POST`,
//! or a `POST` then a `PUT` carrying the blob (how skopeo, containerd and registry clients push
//! a config or a tiny layer). When the blob is small enough to live inline, it is hashed in
//! memory and recorded in the database with nothing written to the blob store: on S3 one
//! request (to learn that the session is empty, which another replica could have appended to)
//! instead of seven (read the state twice, write it, read it back, read it again to remove it,
//! delete two objects).

use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::chunk_range::ChunkRange;
use super::uploads::chunk_fits;
use super::Registry;
use crate::error::Error;
use crate::names::{Digest, RepoName};

/// The first bytes of a request body.
pub(super) struct Head {
    pub bytes: Bytes,
    /// Whether they are the whole body.
    pub ended: bool,
}

/// Reads `body` until more than `limit` bytes came or it ended; a body that fails is the
/// client's error (`BlobUploadInvalid`), and the session is left as it was.
pub(super) async fn read_head<S, E>(mut body: Pin<&mut S>, limit: u64) -> Result<Head, Error>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let mut pieces: Vec<Bytes> = vec![];
    let mut len = 0u64;
    while len <= limit {
        match body.next().await {
            None => {
                return Ok(Head {
                    bytes: concat(pieces),
                    ended: true,
                })
            }
            Some(Err(e)) => {
                return Err(Error::BlobUploadInvalid(format!(
                    "request body failed: {e}"
                )))
            }
            Some(Ok(piece)) => {
                len += piece.len() as u64;
                pieces.push(piece);
            }
        }
    }
    Ok(Head {
        bytes: concat(pieces),
        ended: false,
    })
}

fn concat(mut pieces: Vec<Bytes>) -> Bytes {
    if pieces.len() == 1 {
        return pieces.pop().unwrap_or_default();
    }
    let mut all = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
    for piece in pieces {
        all.extend_from_slice(&piece);
    }
    all.freeze()
}

impl Registry {
    /// Finishes session `uuid` with `bytes`, the whole blob, when the session is empty and the
    /// blob small enough to be inline (see the module's doc); `false` (nothing done) otherwise,
    /// for the caller to append as usual. A `range` that does not start at 0 or does not match
    /// the length is refused as a chunk would be, the session kept; a digest that does not
    /// match ends the session, as at any finish.
    ///
    /// # Errors
    /// `BlobUploadUnknown`, `UploadOutOfOrder`, `BlobUploadInvalid`, `DigestInvalid`; `Io`/`Db`.
    pub(super) async fn finish_small(
        &self,
        repo: &RepoName,
        uuid: Uuid,
        digest: &Digest,
        range: Option<ChunkRange>,
        location: &str,
        bytes: &Bytes,
    ) -> Result<bool, Error> {
        let size = bytes.len() as u64;
        if size == 0 || size > self.inline_max {
            return Ok(false);
        }
        self.check_owner(repo, uuid).await?;
        let slot = self.uploads.slot(uuid);
        let mut guard = slot.lock().await;
        if self.blobs.shared() {
            // Another replica may have appended since this one last looked.
            *guard = None;
        }
        if self.hash_state(&mut guard, uuid).await?.size() != 0 {
            return Ok(false);
        }
        if range.is_some_and(|r| r.start() != 0) {
            return Err(Error::UploadOutOfOrder {
                location: location.to_owned(),
                uuid: uuid.to_string(),
                size: 0,
            });
        }
        chunk_fits(0, size, range)?;
        metrics::counter!("registry_bytes_received_total").increment(size);
        // The session ends here whatever the digest says.
        *guard = None;
        let actual = Digest::of(bytes);
        if actual != *digest {
            return Err(self.digest_mismatch(uuid, &actual, digest).await);
        }
        self.place_bytes(digest, bytes, |inline| {
            self.link_upload(repo, uuid, digest, size, inline)
        })
        .await?;
        self.close_session(uuid, self.blobs.remove_empty_upload(&uuid).await);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::inline::DEFAULT_MAX;

    fn pieces(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, String>> {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    async fn session(reg: &Registry, repo: &RepoName) -> Uuid {
        reg.start_upload(repo, "alice").await.unwrap().uuid
    }

    async fn finish(
        reg: &Registry,
        repo: &RepoName,
        uuid: Uuid,
        digest: &Digest,
        parts: &[&'static [u8]],
    ) -> Result<(), Error> {
        reg.finish_upload(repo, uuid, digest, None, String::new(), pieces(parts))
            .await
    }

    #[tokio::test]
    async fn a_small_blob_in_the_last_request_is_recorded_inline_and_leaves_no_upload() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), false).await.unwrap();
        let repo = RepoName::parse("a/b").unwrap();
        let whole = Digest::of(b"hello, world");

        // The blob in three pieces, after an empty POST.
        let uuid = session(&reg, &repo).await;
        finish(&reg, &repo, uuid, &whole, &[b"hello", b", ", b"world"])
            .await
            .unwrap();
        assert_eq!(
            reg.inline_bytes(&whole, 12).await.unwrap().unwrap(),
            "hello, world"
        );
        assert!(!reg.blobs.has_blob(&whole));
        assert!(
            reg.blobs.list_uploads().await.unwrap().is_empty(),
            "the upload's file stayed"
        );
        assert!(matches!(
            reg.upload_status(&repo, uuid).await,
            Err(Error::BlobUploadUnknown)
        ));

        // A wrong digest ends the session and records nothing.
        let uuid = session(&reg, &repo).await;
        let other = Digest::of(b"other");
        let err = reg
            .finish_upload(
                &repo,
                uuid,
                &other,
                None,
                String::new(),
                pieces(&[b"hello"]),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::DigestInvalid(_)), "{err:?}");
        assert!(matches!(
            reg.upload_status(&repo, uuid).await,
            Err(Error::BlobUploadUnknown)
        ));
        assert_eq!(reg.inline_bytes(&other, 5).await.unwrap(), None);

        // A range that does not start at 0, a range of another length and a body that breaks
        // off are refused with the session kept, empty; then the blob finishes it.
        let uuid = session(&reg, &repo).await;
        let refused = [
            (Some("5-16"), pieces(&[b"hello, world"]).boxed()),
            (Some("0-3"), pieces(&[b"hello, world"]).boxed()),
            (
                None,
                futures_util::stream::iter(vec![
                    Ok(Bytes::from_static(b"hel")),
                    Err("reset".to_owned()),
                ])
                .boxed(),
            ),
        ];
        for (range, body) in refused {
            let range = range.map(|r| ChunkRange::parse(r).unwrap());
            let err = reg
                .finish_upload(&repo, uuid, &whole, range, String::new(), body)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::UploadOutOfOrder { .. } | Error::BlobUploadInvalid(_)
                ),
                "{range:?}: {err:?}"
            );
            assert_eq!(reg.upload_status(&repo, uuid).await.unwrap().size, 0);
        }
        finish(&reg, &repo, uuid, &whole, &[b"hello, world"])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_session_with_bytes_or_a_blob_past_the_bound_takes_the_usual_way() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), false).await.unwrap();
        let repo = RepoName::parse("a/b").unwrap();

        // A chunk first: the last request's bytes are appended to it.
        let uuid = session(&reg, &repo).await;
        reg.append_chunk(&repo, uuid, None, String::new(), pieces(&[b"hello"]))
            .await
            .unwrap();
        let whole = Digest::of(b"hello, world");
        finish(&reg, &repo, uuid, &whole, &[b", world"])
            .await
            .unwrap();
        assert_eq!(
            reg.inline_bytes(&whole, 12).await.unwrap().unwrap(),
            "hello, world"
        );

        // One byte past the bound, in pieces: read up to the bound, then streamed to a file
        // with the rest.
        let max = usize::try_from(DEFAULT_MAX).unwrap();
        let big: &'static [u8] = Vec::leak(vec![7u8; max + 1]);
        let digest = Digest::of(big);
        let uuid = session(&reg, &repo).await;
        reg.finish_upload(
            &repo,
            uuid,
            &digest,
            None,
            String::new(),
            pieces(&[&big[..max / 2], &big[max / 2..max], &big[max..]]),
        )
        .await
        .unwrap();
        assert!(
            reg.blobs.has_blob(&digest),
            "a blob past the bound is a file"
        );
        assert!(reg.blobs.list_uploads().await.unwrap().is_empty());
    }
}
