//! Uploads in the object store. A session's bytes become the parts of one S3 multipart upload
//! (created when its first part is full), cut at every `chunksize` bytes of the blob whatever
//! the client's chunks are, and at the end of a chunk when what it leaves over is a part S3
//! takes (every part but the last must be at least 5 MiB; cut at a 64-byte block, for the
//! midstate). What a chunk leaves over (less than that) is saved, with the part ETags and the
//! sha256 midstate after the parts, in one small object written once the chunk is complete
//! (`uploads/<uuid>/state`). That object is the session: a failed or cut chunk never
//! rewrites it, so the session stays at its last good offset (the parts the failed chunk sent
//! are overwritten by the next ones under the same numbers, or dropped when the upload
//! completes or aborts), and any replica continues from it without re-reading a byte: the hash
//! is resumed from the midstate and the left-over bytes. On commit the left-over becomes the
//! last part, the multipart upload completes under `uploads/<uuid>/data`, and that object is
//! copied under its digest (a blob smaller than a part is PUT under its digest directly).

use std::collections::HashMap;
use std::io;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::PutPayload;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::{to_io, S3};
use crate::names::Digest;
use crate::storage::{AppendError, UploadHash};

/// Parts of one upload being sent at once.
pub(super) const PARTS_IN_FLIGHT: usize = 4;

/// The saved state of an upload (the header line of its state object; the left-over bytes
/// follow it).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// The multipart upload, once a part was sent.
    multipart: Option<String>,
    /// ETags of the parts, in order.
    parts: Vec<String>,
    /// Bytes in the parts.
    parted: u64,
    /// sha256 state after the parts.
    midstate: Option<[u32; 8]>,
}

/// An upload as read back: its saved state and the bytes not in a part yet.
#[derive(Debug, Default)]
struct Upload {
    saved: Saved,
    rest: Bytes,
}

impl Upload {
    fn len(&self) -> u64 {
        self.saved.parted + self.rest.len() as u64
    }

    /// The hash after the parts.
    fn parted_hash(&self) -> io::Result<UploadHash> {
        match self.saved.midstate {
            Some(state) => UploadHash::resume(state, self.saved.parted).map_err(io::Error::other),
            None => Ok(UploadHash::default()),
        }
    }

    fn encode(&self) -> io::Result<Bytes> {
        let mut out = serde_json::to_vec(&self.saved).map_err(io::Error::other)?;
        out.push(b'\n');
        out.extend_from_slice(&self.rest);
        Ok(Bytes::from(out))
    }

    fn decode(bytes: &Bytes) -> io::Result<Self> {
        let end = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| io::Error::other("an upload state without its header"))?;
        Ok(Self {
            saved: serde_json::from_slice(&bytes[..end]).map_err(io::Error::other)?,
            rest: bytes.slice(end + 1..),
        })
    }
}

impl S3 {
    /// The upload's saved state; an upload never saved is empty.
    async fn load(&self, uuid: &Uuid) -> io::Result<Upload> {
        match self.store.get(&self.keys.upload_state(uuid)).await {
            Ok(got) => Upload::decode(&got.bytes().await.map_err(to_io)?),
            Err(object_store::Error::NotFound { .. }) => Ok(Upload::default()),
            Err(e) => Err(to_io(e)),
        }
    }

    pub(in crate::storage) async fn upload_len(&self, uuid: &Uuid) -> io::Result<u64> {
        Ok(self.load(uuid).await?.len())
    }

    pub(in crate::storage) async fn rehash(&self, uuid: &Uuid) -> io::Result<UploadHash> {
        let upload = self.load(uuid).await?;
        let mut hash = upload.parted_hash()?;
        hash.update(&upload.rest);
        Ok(hash)
    }

    /// The whole of an upload smaller than a part (a small one, kept inline).
    pub(in crate::storage) async fn read_upload(&self, uuid: &Uuid) -> io::Result<Bytes> {
        let upload = self.load(uuid).await?;
        if upload.saved.multipart.is_some() {
            return Err(io::Error::other(format!(
                "upload {uuid} is in parts: too large to read whole"
            )));
        }
        Ok(upload.rest)
    }

    /// Appends `body` (see the module's doc), saved only when `accept` takes its length;
    /// `hasher` ends as the hash of the whole upload.
    pub(in crate::storage) async fn append<S, E>(
        &self,
        uuid: &Uuid,
        body: S,
        hasher: &mut UploadHash,
        accept: impl FnOnce(u64) -> bool,
    ) -> Result<u64, AppendError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let mut upload = self.load(uuid).await.map_err(AppendError::Io)?;
        let mut parted = upload.parted_hash().map_err(AppendError::Io)?;
        let mut pending = BytesMut::from(&upload.rest[..]);
        let mut parts = Parts {
            sent: upload.saved.parts.iter().cloned().map(Some).collect(),
            sending: JoinSet::new(),
        };
        let mut received = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| AppendError::Body(e.to_string()))?;
            received += piece.len() as u64;
            pending.extend_from_slice(&piece);
            while pending.len() >= self.chunksize {
                let part = pending.split_to(self.chunksize).freeze();
                parted.update(&part);
                self.queue_part(uuid, &mut upload, &mut parts, part).await?;
            }
        }
        if received == 0 || !accept(received) {
            // An empty body (the usual last `PUT`) has nothing to save; a refused one must not.
            parted.update(&pending);
            *hasher = parted;
            return Ok(0);
        }
        // What the chunk leaves over is a part too once S3 takes it as one (cut at a 64-byte
        // block, for the midstate): a client's large chunks then leave (almost) nothing to
        // rewrite in the state object at every chunk.
        let whole = pending.len() - pending.len() % 64;
        if whole >= self.min_part {
            let part = pending.split_to(whole).freeze();
            parted.update(&part);
            self.queue_part(uuid, &mut upload, &mut parts, part).await?;
        }
        while let Some(done) = parts.sending.join_next().await {
            record(&mut parts.sent, Some(done))?;
        }
        upload.saved.parts = parts.sent.into_iter().flatten().collect();
        upload.saved.parted = parted.len();
        upload.saved.midstate = parted.midstate();
        upload.rest = pending.freeze();
        let state = upload.encode().map_err(AppendError::Io)?;
        self.store
            .put(&self.keys.upload_state(uuid), PutPayload::from(state))
            .await
            .map_err(|e| AppendError::Io(to_io(e)))?;
        parted.update(&upload.rest);
        *hasher = parted;
        Ok(received)
    }

    /// Commits a verified upload under `digest` (see the module's doc).
    pub(in crate::storage) async fn commit_upload(
        &self,
        uuid: &Uuid,
        digest: &Digest,
    ) -> io::Result<()> {
        let blob = self.keys.blob(digest);
        if self.exists(&blob).await? {
            return Ok(());
        }
        let upload = self.load(uuid).await?;
        let Some(id) = &upload.saved.multipart else {
            self.store
                .put(&blob, PutPayload::from(upload.rest))
                .await
                .map_err(to_io)?;
            return Ok(());
        };
        let data = self.keys.upload_data(uuid);
        // Completed already by an earlier try whose record lost a race with the collector.
        if !self.exists(&data).await? {
            let mut parts: Vec<PartId> = upload
                .saved
                .parts
                .iter()
                .map(|etag| PartId {
                    content_id: etag.clone(),
                })
                .collect();
            if !upload.rest.is_empty() {
                let last = send_part(&*self.store, &data, id, parts.len(), upload.rest.clone());
                parts.push(last.await?);
            }
            self.store
                .complete_multipart(&data, id, parts)
                .await
                .map_err(to_io)?;
        }
        self.store.copy(&data, &blob).await.map_err(to_io)
    }

    /// Aborts the upload's multipart upload and deletes its objects.
    pub(in crate::storage) async fn remove_upload(&self, uuid: &Uuid) -> io::Result<()> {
        let upload = self.load(uuid).await?;
        let data = self.keys.upload_data(uuid);
        if let Some(id) = &upload.saved.multipart {
            // Fails once completed (nothing is left to abort then).
            if let Err(e) = self.store.abort_multipart(&data, id).await {
                tracing::debug!(%uuid, error = %e, "aborting a multipart upload");
            }
        }
        self.store.delete(&data).await.or_else(absent_ok)?;
        self.store
            .delete(&self.keys.upload_state(uuid))
            .await
            .or_else(absent_ok)
    }

    /// Every upload with objects, with when it was last written.
    pub(in crate::storage) async fn list_uploads(&self) -> io::Result<Vec<(Uuid, SystemTime)>> {
        let prefix = self.keys.uploads();
        let mut found: HashMap<Uuid, SystemTime> = HashMap::new();
        let mut listing = self.store.list(Some(&prefix));
        while let Some(meta) = listing.try_next().await.map_err(to_io)? {
            let Some(uuid) = meta
                .location
                .prefix_match(&prefix)
                .and_then(|mut parts| parts.next())
                .and_then(|part| Uuid::parse_str(part.as_ref()).ok())
            else {
                continue;
            };
            let modified = SystemTime::from(meta.last_modified);
            let latest = found.entry(uuid).or_insert(modified);
            *latest = (*latest).max(modified);
        }
        Ok(found.into_iter().collect())
    }
}

/// The parts of a chunk: the ETags known (`None` while sending) and the sends in flight.
struct Parts {
    sent: Vec<Option<String>>,
    sending: JoinSet<(usize, io::Result<PartId>)>,
}

impl S3 {
    /// Sends `part` as the upload's next part (creating its multipart upload with the first),
    /// with at most `in_flight` parts on their way.
    async fn queue_part(
        &self,
        uuid: &Uuid,
        upload: &mut Upload,
        parts: &mut Parts,
        part: Bytes,
    ) -> Result<(), AppendError> {
        let id = match &upload.saved.multipart {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .store
                    .create_multipart(&self.keys.upload_data(uuid))
                    .await
                    .map_err(|e| AppendError::Io(to_io(e)))?;
                upload.saved.multipart = Some(id.clone());
                id
            }
        };
        let index = parts.sent.len();
        parts.sent.push(None);
        let (store, data) = (self.store.clone(), self.keys.upload_data(uuid));
        parts
            .sending
            .spawn(async move { (index, send_part(&*store, &data, &id, index, part).await) });
        if parts.sending.len() >= self.in_flight {
            record(&mut parts.sent, parts.sending.join_next().await)?;
        }
        Ok(())
    }
}

/// Sends part `index` (0-based) of multipart upload `id` of `data`.
async fn send_part(
    store: &(impl MultipartStore + ?Sized),
    data: &Path,
    id: &str,
    index: usize,
    part: Bytes,
) -> io::Result<PartId> {
    let id = id.to_owned();
    store
        .put_part(data, &id, index, part.into())
        .await
        .map_err(to_io)
}

/// Notes a sent part's ETag; an error ends the chunk.
fn record(
    sent: &mut [Option<String>],
    done: Option<Result<(usize, io::Result<PartId>), tokio::task::JoinError>>,
) -> Result<(), AppendError> {
    if let Some(done) = done {
        let (index, part) = done.map_err(|e| AppendError::Io(io::Error::other(e)))?;
        let part = part.map_err(AppendError::Io)?;
        if let Some(slot) = sent.get_mut(index) {
            *slot = Some(part.content_id);
        }
    }
    Ok(())
}

pub(super) fn absent_ok(e: object_store::Error) -> io::Result<()> {
    match e {
        object_store::Error::NotFound { .. } => Ok(()),
        e => Err(to_io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::ObjectStore;

    const PART: usize = 64 * 1024;

    fn body(
        pieces: Vec<Result<Bytes, &'static str>>,
    ) -> impl Stream<Item = Result<Bytes, &'static str>> {
        futures_util::stream::iter(pieces)
    }

    async fn keys(bucket: &InMemory) -> Vec<String> {
        let mut all: Vec<String> = bucket
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        all.sort();
        all
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn chunks_become_parts_a_cut_chunk_is_dropped_and_another_process_finishes() {
        let bucket = Arc::new(InMemory::new());
        let first = S3::in_memory(bucket.clone(), PART);
        let data: Vec<u8> = (0..3 * PART + 1000).map(|i| (i % 251) as u8).collect();
        let uuid = Uuid::new_v4();
        let mut hash = UploadHash::default();
        // Two chunks smaller than a part, then one crossing a part boundary.
        let mut at = 0;
        for len in [1000, PART / 2, PART] {
            let chunk = Bytes::copy_from_slice(&data[at..at + len]);
            assert_eq!(
                first
                    .append(&uuid, body(vec![Ok(chunk)]), &mut hash, |_| true)
                    .await
                    .unwrap(),
                len as u64
            );
            at += len;
            assert_eq!(first.upload_len(&uuid).await.unwrap(), at as u64);
        }
        // A chunk that breaks off after a whole part leaves the upload where it was.
        let cut = body(vec![
            Ok(Bytes::copy_from_slice(&data[at..at + PART + 10])),
            Err("reset"),
        ]);
        assert!(matches!(
            first.append(&uuid, cut, &mut hash, |_| true).await,
            Err(AppendError::Body(_))
        ));
        assert_eq!(first.upload_len(&uuid).await.unwrap(), at as u64);

        // A chunk the caller refuses (not the announced length) is not kept either.
        let refused = body(vec![Ok(Bytes::copy_from_slice(&data[at..at + PART + 10]))]);
        first
            .append(&uuid, refused, &mut hash, |_| false)
            .await
            .unwrap();
        assert_eq!(first.upload_len(&uuid).await.unwrap(), at as u64);

        // Another process takes it up from the bucket alone.
        let second = S3::in_memory(bucket.clone(), PART);
        let mut hash = second.rehash(&uuid).await.unwrap();
        assert_eq!(
            hash.clone().finalize()[..],
            <sha2::Sha256 as sha2::Digest>::digest(&data[..at])[..]
        );
        let rest = Bytes::copy_from_slice(&data[at..]);
        second
            .append(&uuid, body(vec![Ok(rest)]), &mut hash, |_| true)
            .await
            .unwrap();
        let digest = Digest::from_sha256(&hash.finalize());
        assert_eq!(digest, Digest::of(&data));
        second.commit_upload(&uuid, &digest).await.unwrap();
        second.remove_upload(&uuid).await.unwrap();
        assert_eq!(&second.read_blob(&digest).await.unwrap()[..], &data[..]);
        assert_eq!(
            keys(&bucket).await,
            [format!(
                "root/blobs/sha256/{}/{}",
                &digest.hex()[..2],
                digest.hex()
            )]
        );
        let range: Vec<Bytes> = second
            .read_blob_range(&digest, 10, 5)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(range.concat(), &data[10..15]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_small_blob_is_one_put_and_a_removed_upload_leaves_nothing() {
        let bucket = Arc::new(InMemory::new());
        let s3 = S3::in_memory(bucket.clone(), PART);
        let (small, big) = (Uuid::new_v4(), Uuid::new_v4());
        let mut hash = UploadHash::default();
        s3.append(
            &small,
            body(vec![Ok(Bytes::from_static(b"tiny"))]),
            &mut hash,
            |_| true,
        )
        .await
        .unwrap();
        let digest = Digest::of(b"tiny");
        s3.commit_upload(&small, &digest).await.unwrap();
        s3.remove_upload(&small).await.unwrap();
        s3.append(
            &big,
            body(vec![Ok(Bytes::from(vec![1u8; 2 * PART]))]),
            &mut UploadHash::default(),
            |_| true,
        )
        .await
        .unwrap();
        assert_eq!(s3.list_uploads().await.unwrap().len(), 1);
        s3.remove_upload(&big).await.unwrap();
        assert_eq!(keys(&bucket).await.len(), 1);
        assert_eq!(&s3.read_blob(&digest).await.unwrap()[..], b"tiny");
        assert!(s3
            .blob_url(&digest)
            .await
            .unwrap()
            .contains("X-Amz-Signature="));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_large_chunks_left_over_is_a_part_and_the_state_keeps_only_a_block() {
        let bucket = Arc::new(InMemory::new());
        let s3 = S3::in_memory(bucket.clone(), PART);
        let (min, uuid) = (PART / 2, Uuid::new_v4());
        let data: Vec<u8> = (0..4 * PART).map(|i| (i * 7 % 253) as u8).collect();
        let mut hash = UploadHash::default();
        let mut at = 0;
        // (chunk length, parts after it, bytes left in the state after it)
        for (len, parts, rest) in [
            (min + 64, 1, 0),
            (1000, 1, 1000),
            (min + 10, 2, (1000 + min + 10) % 64),
            // The 50 bytes left over stay: a part, then the rest a part but those 50.
            (PART + min, 4, 50),
            (100, 4, 150),
        ] {
            let chunk = Bytes::copy_from_slice(&data[at..at + len]);
            s3.append(&uuid, body(vec![Ok(chunk)]), &mut hash, |_| true)
                .await
                .unwrap();
            at += len;
            let upload = s3.load(&uuid).await.unwrap();
            assert_eq!(
                (upload.saved.parts.len(), upload.rest.len(), upload.len()),
                (parts, rest, at as u64),
                "after a chunk of {len}"
            );
            assert_eq!(upload.saved.parted % 64, 0);
        }
        let digest = Digest::from_sha256(&s3.rehash(&uuid).await.unwrap().finalize());
        assert_eq!(digest, Digest::of(&data[..at]));
        s3.commit_upload(&uuid, &digest).await.unwrap();
        assert_eq!(&s3.read_blob(&digest).await.unwrap()[..], &data[..at]);
    }

    #[test]
    fn a_saved_state_reads_back() {
        let upload = Upload {
            saved: Saved {
                multipart: Some("id".into()),
                parts: vec!["e1".into()],
                parted: 64,
                midstate: Some([1; 8]),
            },
            rest: Bytes::from_static(b"left\nover"),
        };
        let back = Upload::decode(&upload.encode().unwrap()).unwrap();
        assert_eq!(back.len(), 64 + 9);
        assert_eq!(back.saved.parts, ["e1"]);
        assert_eq!(&back.rest[..], b"left\nover");
        assert!(Upload::decode(&Bytes::from_static(b"{}")).is_err());
    }
}
