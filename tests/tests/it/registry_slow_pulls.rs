//! Pulls whose clients stop reading: each holds little of registryd's memory (a piece or two of
//! the blob, not megabytes read ahead of the socket), other pulls go on meanwhile, and a stalled
//! pull that resumes gets every byte.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use berth_tests::content::{sha256, Content};
use berth_tests::hostile::{registryd, rss_kib};
use berth_tests::registry::Registry;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const REPO: &str = "slow/pulls";
/// Large enough that a pull stalls with most of the blob unsent, whatever the socket buffers.
const BLOB: usize = 16 << 20;
/// Pulls left stalled at once.
const STALLED: usize = 64;
/// What one stalled pull may hold in registryd's memory: its pieces in flight (two of 256 KiB)
/// and its share of the runtime. Reading megabytes ahead of the socket (4 MiB queued plus the
/// piece being written, as registryd did before) does not fit.
const PER_PULL_KIB: u64 = 1024;

/// A connection that asked for the blob, read the answer's head, and reads no more: the socket
/// buffers fill with the start of the blob, and the server has nowhere to put the rest.
async fn stalled_pull(addr: std::net::SocketAddr, digest: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("GET /v2/{REPO}/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("no answer head within 30 s")
            .unwrap();
        assert_ne!(
            n,
            0,
            "closed before the head: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    (stream, got)
}

#[tokio::test]
async fn stalled_pulls_hold_little_memory_and_resume_whole() {
    let (_dir, daemon) = registryd(json!({})).await;
    let reg = Registry::new(&daemon.url());
    let blob = Content::random(BLOB);
    reg.push_blob(REPO, &blob, None).await;
    let path = format!("/v2/{REPO}/blobs/{}", blob.digest);
    // One whole pull first: the blob is in the page cache and the allocator warm.
    let whole = reg.get(&path, None).await.bytes().await.unwrap();
    assert_eq!(sha256(&whole), blob.digest);
    let before = rss_kib(daemon.pid());

    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        stalled.push(stalled_pull(daemon.addr, &blob.digest).await);
    }
    // The most registryd holds over two seconds with every pull stalled.
    let mut most = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        most = most.max(rss_kib(daemon.pid()));
    }
    let grown = most.saturating_sub(before);
    assert!(
        grown <= STALLED as u64 * PER_PULL_KIB,
        "{STALLED} stalled pulls grew registryd's memory by {grown} KiB (from {before} KiB), \
         more than {PER_PULL_KIB} KiB each"
    );

    // Another client's pull is served meanwhile.
    let other = reg.get(&path, None).await.bytes().await.unwrap();
    assert_eq!(sha256(&other), blob.digest);
    // A stalled pull that reads again gets the rest of the blob, byte for byte.
    let (mut stream, got) = stalled.pop().unwrap();
    let at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut body = got[at..].to_vec();
    let mut rest = vec![0u8; BLOB - body.len()];
    tokio::time::timeout(Duration::from_secs(60), stream.read_exact(&mut rest))
        .await
        .expect("the resumed pull did not finish within 60 s")
        .unwrap();
    body.extend_from_slice(&rest);
    assert_eq!(sha256(&body), blob.digest);
}
