//! A stored blob's bytes for a response body, read one piece at a time when hyper asks for the
//! next (so when the socket has taken the last): on the serving thread straight from the page
//! cache when the bytes are there (`preadv2` with `RWF_NOWAIT`, which never waits for the
//! disk), by a blocking thread when they are not. Reading on the thread that then writes them
//! to the socket keeps the piece in its cache for that second copy and spares a thread hand-off
//! per piece. Each piece's buffer comes back to its reader when hyper has written it, so a pull
//! holds two pieces at most whatever the blob's size, and a client that stops reading holds no
//! thread.

use std::fs::File;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use rustix::io::{Errno, ReadWriteFlags};
use tokio::task::JoinHandle;

/// Bytes per piece of a response body.
pub const PIECE: usize = 256 * 1024;
/// Buffers a reader keeps for reuse (hyper holds one or two pieces at a time).
const SPARE_BUFFERS: usize = 2;

/// Buffers of written pieces, back for the next reads.
type Spare = Arc<Mutex<Vec<Vec<u8>>>>;
/// A blocking thread's read: the buffer and how many bytes it got.
type BlockingRead = JoinHandle<io::Result<(Vec<u8>, usize)>>;

/// The bytes `pos..end` of a blob file, as a stream of pieces.
pub struct BlobReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
    spare: Spare,
    /// A piece a blocking thread is reading (the page cache did not hold it all).
    reading: Option<BlockingRead>,
    /// Whether `RWF_NOWAIT` reads are worth trying (the filesystem supports them).
    nowait: bool,
}

impl BlobReader {
    /// Reads `len` bytes of `file` from `start`.
    pub fn new(file: File, start: u64, len: u64) -> Self {
        Self {
            file: Arc::new(file),
            pos: start,
            end: start.saturating_add(len),
            spare: Arc::default(),
            reading: None,
            nowait: true,
        }
    }

    fn buffer(&self) -> Vec<u8> {
        let reused = self
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| vec![0; PIECE])
    }

    /// The first `len` bytes of `buf` as a piece whose buffer comes back when dropped.
    fn piece(&mut self, buf: Vec<u8>, len: usize) -> io::Result<Bytes> {
        if len == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += len as u64;
        Ok(Bytes::from_owner(Piece {
            buf,
            len,
            spare: self.spare.clone(),
        }))
    }
}

impl Stream for BlobReader {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(reading) = &mut this.reading {
            let read = ready!(Pin::new(reading).poll(cx)).map_err(io::Error::other);
            this.reading = None;
            return Poll::Ready(Some(
                read.and_then(|r| r).and_then(|(buf, n)| this.piece(buf, n)),
            ));
        }
        if this.pos >= this.end {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.end - this.pos).map_or(PIECE, |left| left.min(PIECE));
        let mut buf = this.buffer();
        if this.nowait {
            let mut slices = [IoSliceMut::new(&mut buf[..want])];
            match rustix::io::preadv2(&*this.file, &mut slices, this.pos, ReadWriteFlags::NOWAIT) {
                Ok(n) => return Poll::Ready(Some(this.piece(buf, n))),
                // Not all in the page cache: a blocking thread waits for the disk.
                Err(Errno::AGAIN) => {}
                // A kernel or filesystem without `RWF_NOWAIT`; real errors show again below.
                Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => this.nowait = false,
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
            }
        }
        let (file, pos) = (this.file.clone(), this.pos);
        this.reading = Some(tokio::task::spawn_blocking(move || {
            let n = file.read_at(&mut buf[..want], pos)?;
            Ok((buf, n))
        }));
        self.poll_next(cx)
    }
}

/// A piece of a response body; its buffer goes back to its reader when hyper drops it.
struct Piece {
    buf: Vec<u8>,
    len: usize,
    spare: Spare,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < SPARE_BUFFERS {
            spare.push(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::io::Write as _;

    fn file_of(data: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(data).unwrap();
        tmp.flush().unwrap();
        let file = File::open(tmp.path()).unwrap();
        (tmp, file)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    async fn read_all(reader: BlobReader) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut pieces = std::pin::pin!(reader);
        while let Some(piece) = pieces.next().await {
            let piece = piece?;
            assert!(piece.len() <= PIECE);
            out.extend_from_slice(&piece);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn serves_exactly_the_range_asked_across_piece_boundaries() {
        let data = pattern(2 * PIECE + PIECE / 2 + 7);
        let (tmp, _) = file_of(&data);
        for (start, len) in [
            (0, data.len()),
            (1, data.len() - 1),
            (PIECE - 3, PIECE + 10),
            (data.len() - 1, 1),
            (5, 0),
        ] {
            let file = File::open(tmp.path()).unwrap();
            let got = read_all(BlobReader::new(file, start as u64, len as u64))
                .await
                .unwrap();
            assert_eq!(got, &data[start..start + len], "range {start}+{len}");
        }
    }

    #[tokio::test]
    async fn a_written_piece_gives_its_buffer_to_the_next() {
        let data = pattern(3 * PIECE);
        let (_tmp, file) = file_of(&data);
        let mut reader = std::pin::pin!(BlobReader::new(file, 0, data.len() as u64));
        let first = reader.next().await.unwrap().unwrap();
        let second = reader.next().await.unwrap().unwrap();
        assert_ne!(
            first.as_ptr(),
            second.as_ptr(),
            "both are held: two buffers"
        );
        let reused = first.as_ptr();
        drop(first);
        let third = reader.next().await.unwrap().unwrap();
        assert_eq!(
            third.as_ptr(),
            reused,
            "the dropped piece's buffer is read into again"
        );
        assert_eq!(&third[..], &data[2 * PIECE..]);
    }

    #[tokio::test]
    async fn a_file_shorter_than_the_range_ends_in_an_error() {
        let data = pattern(1000);
        let (_tmp, file) = file_of(&data);
        let mut reader = std::pin::pin!(BlobReader::new(file, 0, 2000));
        assert_eq!(&reader.next().await.unwrap().unwrap()[..], &data[..]);
        let err = reader.next().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn bytes_not_in_the_page_cache_are_read_by_a_blocking_thread() {
        let data = pattern(PIECE + 100);
        let (tmp, file) = file_of(&data);
        tmp.as_file().sync_all().unwrap();
        // Clean pages can be dropped from the cache: the first reads then find nothing there.
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        let got = read_all(BlobReader::new(file, 0, data.len() as u64))
            .await
            .unwrap();
        assert_eq!(got, data);
    }
}
