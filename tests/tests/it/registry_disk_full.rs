//! A full disk: registryd's data folder on a small tmpfs, filled to the last byte. Pushes that
//! do not fit fail at once with 507 in the spec's JSON and leave nothing visible, an upload
//! session stays resumable, pulls keep working, a database write on the full disk is refused
//! without harm, and once space is freed pushes work again (also after a kill -9).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tests::content::{Content, Image};
use berth_tests::env::TestEnv;
use berth_tests::gc::pull_matches;
use berth_tests::registry::{header, Registry};
use berth_tests::uploads::upload_range;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

/// Size of the tmpfs.
const TMPFS_MIB: u32 = 64;

/// A tmpfs mounted for the test; lazily unmounted when dropped (the daemon may still hold
/// files in it; they go when it is killed).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a `TMPFS_MIB` tmpfs at `path`. The tests run as root; failing to mount fails the
    /// test.
    fn mount(path: &Path) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_MIB}m"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed ({status}): this test needs root",
            path.display()
        );
        Tmpfs(path.into())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the disk refuses (bounded by the tmpfs size); the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 256 * 1024];
    let mut written = 0u64;
    for _ in 0..(TMPFS_MIB * 4 + 8) {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "filling: {e}");
                break;
            }
        }
    }
    // Small writes take the last partial pages.
    while matches!(file.write(&chunk[..512]), Ok(n) if n > 0) {}
    written
}

/// 507 with the spec's error body, saying the storage is full.
async fn expect_full(resp: Response, what: &str) {
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{what}: {body}");
    assert_eq!(body["errors"][0]["code"], "UNKNOWN", "{what}: {body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("storage is full"), "{what}: {body}");
}

async fn upload_status(registry: &Registry, location: &str) -> (StatusCode, String) {
    let resp = registry.get(location, Some("")).await;
    (resp.status(), upload_range(&resp))
}

#[tokio::test]
async fn a_full_disk_refuses_pushes_cleanly_and_recovers_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tmpfs = Tmpfs::mount(&data);
    let mut env = TestEnv::open_in(dir, json!({"maintenance": {"gc": {"enabled": false}}})).await;
    let registry = env.registry();
    let keep = Image::random(2);
    registry.push_image("full/app", "keep", &keep, None).await;
    let location = registry.start_upload("full/app", "").await;
    let first = Content::random(100_000);
    let resp = registry
        .patch_chunk(&location, "", &first.bytes, Some("0-99999"))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = header(&resp, "Location");

    let filler = data.join("filler");
    let filled = fill(&filler);
    assert!(
        filled > u64::from(TMPFS_MIB) * 1024 * 1024 / 2,
        "the tmpfs held only {filled} bytes"
    );

    // A chunk that does not fit: 507, and the session is where it was, ready to resume.
    let big = Content::random(4 * 1024 * 1024);
    let resp = registry
        .patch_chunk(
            &location,
            "",
            &big.bytes,
            Some(&format!("100000-{}", 100_000 + big.bytes.len() - 1)),
        )
        .await;
    expect_full(resp, "PATCH on a full disk").await;
    assert_eq!(
        upload_status(&registry, &location).await,
        (StatusCode::NO_CONTENT, "0-99999".into())
    );
    // A monolithic push: 507, and nothing visible.
    expect_full(
        registry.post_blob("full/app", &big, None).await,
        "POST on a full disk",
    )
    .await;
    assert_eq!(
        registry.blob_status("full/app", &big.digest, None).await,
        StatusCode::NOT_FOUND
    );
    // A new manifest's bytes do not fit either.
    let other = Image::random(1);
    for blob in other.blobs() {
        let status = registry.post_blob("full/app", blob, None).await.status();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::INSUFFICIENT_STORAGE,
            "{status}"
        );
    }
    // Pulls go on.
    pull_matches(&registry, "full/app", "keep", &keep)
        .await
        .unwrap();
    // A write that needs only the database (a tag for a stored manifest) lands or is refused
    // with 507; either way nothing breaks.
    let resp = registry
        .put_manifest("full/app", "again", &keep.manifest, None)
        .await;
    let tagged = resp.status();
    assert!(
        tagged == StatusCode::CREATED || tagged == StatusCode::INSUFFICIENT_STORAGE,
        "{tagged}"
    );
    let log = env.registryd.daemon.log_text();
    assert!(
        !log.contains("panicked"),
        "registryd panicked on the full disk"
    );

    // Space back: the session resumes where it was and the pushes work.
    std::fs::remove_file(&filler).unwrap();
    let resp = registry
        .patch_chunk(
            &location,
            "",
            &big.bytes,
            Some(&format!("100000-{}", 100_000 + big.bytes.len() - 1)),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let whole: Vec<u8> = first.bytes.iter().chain(&big.bytes).copied().collect();
    let whole = Content::new(whole, "application/octet-stream");
    let resp = registry
        .finish_upload(&header(&resp, "Location"), "", &whole.digest, &[])
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    registry.push_image("full/app", "other", &other, None).await;
    registry
        .push_manifest("full/app", "again", &keep.manifest, None)
        .await;

    // And after a crash, the database that saw a full disk opens and serves all of it.
    env.registryd.restart().await;
    let registry = env.registry();
    for tag in ["keep", "again"] {
        pull_matches(&registry, "full/app", tag, &keep)
            .await
            .unwrap();
    }
    pull_matches(&registry, "full/app", "other", &other)
        .await
        .unwrap();
    let resp = registry
        .get(&format!("/v2/full/app/blobs/{}", whole.digest), None)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), whole.bytes);
    let resp = registry
        .send(registry.request(Method::GET, "/v2/full/app/tags/list", None))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    drop(tmpfs);
}
