//! Garbage collection against a real store: what goes, what stays, the grace period, the
//! race with a push, and the trash after a crash.

use bytes::Bytes;

use super::*;
use crate::names::{Reference, RepoName};
use crate::service::manifest_doc::OCI_MANIFEST;

/// A run with no grace period.
const NOW: GcRun = GcRun {
    grace: Duration::ZERO,
    delete_untagged: false,
    dry_run: false,
};

async fn blob(reg: &Registry, repo: &RepoName, bytes: &'static [u8]) -> Digest {
    let d = Digest::of(bytes);
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(bytes))]);
    reg.upload_whole(repo, "", &d, String::new(), body)
        .await
        .unwrap();
    d
}

/// Pushes an image of `layers` (the first is its config), with an optional subject,
/// under `reference` (untagged when `None`); returns its digest.
async fn image(
    reg: &Registry,
    repo: &RepoName,
    reference: Option<&str>,
    layers: &[&Digest],
    subject: Option<&Digest>,
) -> Digest {
    let desc = |d: &Digest| serde_json::json!({"mediaType": "application/octet-stream", "digest": d.as_str(), "size": 1});
    let mut doc = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": desc(layers[0]),
        "layers": layers[1..].iter().map(|d| desc(d)).collect::<Vec<_>>(),
    });
    if let Some(s) = subject {
        doc["subject"] =
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": s.as_str(), "size": 1});
    }
    let body = Bytes::from(serde_json::to_vec(&doc).unwrap());
    // Untagged when no reference is given: pushed by its own digest.
    let reference = match reference {
        Some(r) => Reference::parse(r).unwrap(),
        None => Reference::Digest(Digest::of(&body)),
    };
    reg.put_manifest(repo, &reference, Some(OCI_MANIFEST), &body)
        .await
        .unwrap()
        .0
}

/// A registry whose blobs are all files, even the smallest (not inline): these tests look at
/// the files.
async fn files_only(dir: &std::path::Path) -> Registry {
    Registry::open(dir, true).await.unwrap().with_inline_max(0)
}

fn stored(reg: &Registry, d: &Digest) -> bool {
    reg.blobs.has_blob(d)
}

#[tokio::test]
async fn a_deleted_image_frees_its_own_layers_and_keeps_shared_ones() {
    let dir = tempfile::tempdir().unwrap();
    let reg = files_only(dir.path()).await;
    let (a, b) = (RepoName::parse("a").unwrap(), RepoName::parse("b").unwrap());
    // Configs are one byte each, as the descriptors say.
    let (config, shared, own) = (
        blob(&reg, &a, b"c").await,
        blob(&reg, &a, b"s").await,
        blob(&reg, &a, b"o").await,
    );
    blob(&reg, &b, b"s").await;
    blob(&reg, &b, b"c").await;
    let gone = image(&reg, &a, Some("v1"), &[&config, &shared, &own], None).await;
    image(&reg, &b, Some("v1"), &[&config, &shared], None).await;
    let sig_layer = blob(&reg, &a, b"g").await;
    let signature = image(&reg, &a, None, &[&config, &sig_layer], Some(&gone)).await;
    assert_eq!(
        reg.collect_garbage(NOW).await.unwrap(),
        GcReport::default(),
        "all referenced"
    );

    let doomed = [&own, &gone, &signature, &sig_layer];
    let doomed_bytes: u64 = reg
        .blobs
        .list_blobs()
        .await
        .unwrap()
        .iter()
        .filter(|f| doomed.contains(&&f.digest))
        .map(|f| f.size)
        .sum();
    reg.delete_manifest(&a, &Reference::Digest(gone.clone()))
        .await
        .unwrap();
    let dry = reg
        .collect_garbage(GcRun {
            dry_run: true,
            ..NOW
        })
        .await
        .unwrap();
    assert!(
        stored(&reg, &own) && stored(&reg, &gone),
        "a dry run removes nothing"
    );
    let report = reg.collect_garbage(NOW).await.unwrap();
    assert_eq!(report, dry, "a dry run counts what the run frees");
    // The image's own layer, its manifest, the signature (its subject is gone) and the
    // signature's layer; not the config and layer b still uses.
    assert_eq!(
        (report.manifests, report.blobs, report.bytes),
        (1, 4, doomed_bytes)
    );
    for d in doomed {
        assert!(!stored(&reg, d), "{d} is freed");
    }
    for d in [&config, &shared] {
        assert!(stored(&reg, d), "{d} stays");
        assert!(reg.blob_size(&b, d).await.is_ok());
        assert!(reg.blob_size(&a, d).await.is_err(), "a no longer links {d}");
    }
    assert!(reg.blobs.list_trash().await.unwrap().is_empty());
}

#[tokio::test]
async fn nothing_younger_than_the_grace_period_is_collected() {
    let dir = tempfile::tempdir().unwrap();
    let reg = files_only(dir.path()).await;
    let a = RepoName::parse("a").unwrap();
    let pending = blob(&reg, &a, b"layer of a push whose manifest is on its way").await;
    let rowless = Digest::of(b"row-less");
    reg.blobs
        .write_blob(&rowless, &Bytes::from_static(b"row-less"))
        .await
        .unwrap();
    let hour = GcRun {
        grace: Duration::from_secs(3600),
        ..NOW
    };
    assert_eq!(
        reg.collect_garbage(hour).await.unwrap(),
        GcReport::default()
    );
    assert!(reg.blob_size(&a, &pending).await.is_ok());
    let report = reg.collect_garbage(NOW).await.unwrap();
    assert_eq!((report.links, report.blobs), (1, 2));
    assert!(!stored(&reg, &pending) && !stored(&reg, &rowless));
}

#[tokio::test]
async fn a_blob_row_is_never_recorded_for_collected_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let reg = files_only(dir.path()).await;
    let a = RepoName::parse("a").unwrap();
    let d = blob(&reg, &a, b"x").await;
    reg.delete_blob(&a, &d).await.unwrap();
    // A push of the same bytes finds them stored (its commit does nothing) just before a
    // collection takes them: recording them is then refused, not accepted without bytes.
    assert!(stored(&reg, &d));
    assert_eq!(reg.collect_garbage(NOW).await.unwrap().blobs, 1);
    let refused = reg.db.link_blob("a", d.as_str(), 1, None, None).await;
    assert!(
        matches!(refused, Err(Error::BlobCollected(_))),
        "{refused:?}"
    );
    assert_eq!(reg.db.blob_size(d.as_str()).await.unwrap(), None);
    // The push places its bytes again and records them.
    blob(&reg, &a, b"x").await;
    assert!(stored(&reg, &d));
    assert_eq!(reg.blob_size(&a, &d).await.unwrap(), 1);
}

#[tokio::test]
async fn trashed_bytes_go_back_when_their_row_survived() {
    let dir = tempfile::tempdir().unwrap();
    let reg = files_only(dir.path()).await;
    let a = RepoName::parse("a").unwrap();
    let kept = blob(&reg, &a, b"kept").await;
    let dead = Digest::of(b"dead");
    reg.blobs
        .write_blob(&dead, &Bytes::from_static(b"dead"))
        .await
        .unwrap();
    // As a run killed between moving bytes out and committing leaves them.
    reg.blobs.trash_blob(&kept).unwrap();
    reg.blobs.trash_blob(&dead).unwrap();
    drop(reg);
    let reg = files_only(dir.path()).await;
    assert!(stored(&reg, &kept) && !stored(&reg, &dead));
    assert!(reg.blobs.list_trash().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_push_after_a_killed_collection_places_the_bytes_again() {
    let dir = tempfile::tempdir().unwrap();
    let reg = files_only(dir.path()).await;
    let a = RepoName::parse("a").unwrap();
    let d = blob(&reg, &a, b"x").await;
    // A collection killed before its commit: the row stays, the bytes are in the trash.
    reg.blobs.trash_blob(&d).unwrap();
    assert!(
        !reg.try_mount(&a, &d, None).await.unwrap(),
        "no mount of absent bytes"
    );
    blob(&reg, &a, b"x").await;
    assert!(stored(&reg, &d), "the push put its bytes back");
    reg.settle_trash().await.unwrap();
    assert!(stored(&reg, &d) && reg.blobs.list_trash().await.unwrap().is_empty());
    assert_eq!(reg.blob_size(&a, &d).await.unwrap(), 1);
}
