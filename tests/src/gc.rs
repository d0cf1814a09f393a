//! What the garbage-collection and fault tests need: `registryd gc` runs over a data
//! directory, the blob files and trash in it, and pulls that compare every byte of an image.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use reqwest::StatusCode;

use crate::bins::binary;
use crate::content::Image;
use crate::registry::Registry;

/// `registryd gc --config <config> <args…>`, which must succeed; returns its stdout.
pub fn run_gc(config: &Path, args: &[&str]) -> String {
    let out: Output = gc_command(config, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run registryd gc: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "registryd gc failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// `registryd gc --config <config> <args…>` started in the background (to be killed).
pub fn spawn_gc(config: &Path, args: &[&str]) -> Child {
    gc_command(config, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start registryd gc: {e}"))
}

fn gc_command(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary("registryd"));
    cmd.arg("gc").arg("--config").arg(config).args(args);
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// The digests (`sha256:…`) of every blob file under `data/blobs`.
pub fn blob_files(data: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(prefixes) = std::fs::read_dir(data.join("blobs/sha256")) else {
        return out;
    };
    for prefix in prefixes.flatten() {
        for file in std::fs::read_dir(prefix.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.insert(format!("sha256:{}", file.file_name().to_string_lossy()));
        }
    }
    out
}

/// Names of the files left in `data/trash` (empty once a collection settled).
pub fn trash_files(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("trash"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every digest an image is made of: manifest, config and layers.
pub fn digests(image: &Image) -> Vec<String> {
    std::iter::once(&image.manifest)
        .chain(image.blobs())
        .map(|c| c.digest.clone())
        .collect()
}

/// Pulls `repo:tag` (manifest by tag, then every blob) and compares each byte with `image`;
/// the first difference or failed request, as text.
///
/// # Errors
/// What differed.
pub async fn pull_matches(
    registry: &Registry,
    repo: &str,
    tag: &str,
    image: &Image,
) -> Result<(), String> {
    let manifest = registry
        .get(&format!("/v2/{repo}/manifests/{tag}"), None)
        .await;
    let status = manifest.status();
    let body = manifest.bytes().await.map_err(|e| e.to_string())?;
    if status != StatusCode::OK || body != image.manifest.bytes {
        return Err(format!("{repo}:{tag}: manifest answered {status}"));
    }
    for blob in image.blobs() {
        let resp = registry
            .get(&format!("/v2/{repo}/blobs/{}", blob.digest), None)
            .await;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if status != StatusCode::OK || body != blob.bytes {
            return Err(format!(
                "{repo}:{tag}: blob {} answered {status}",
                blob.digest
            ));
        }
    }
    Ok(())
}
