//! What the docker tests do with the real Docker daemon beyond single commands: make a tiny image
//! to push, recognise a refusal for lack of rights, and retry a command while a change lands.

use std::time::Duration;

use crate::cli::Output;
use crate::content::Content;
use crate::docker::Docker;

/// Imports a one-layer image (one random file) into the daemon as `reference`, the way the
/// README does it (`tar -c FILE | docker import - REF`), and remembers it for cleanup.
pub fn import_tiny(docker: &Docker, reference: &str) {
    let layer = Content::tar_layer("hello.txt", 512);
    let file =
        tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("cannot create a temp file: {e}"));
    std::fs::write(file.path(), &layer.bytes)
        .unwrap_or_else(|e| panic!("cannot write the layer: {e}"));
    let path = file.path().to_string_lossy().into_owned();
    docker.ok(&["import", &path, reference]);
    docker.remember(reference);
}

/// Removes `reference` from the daemon so that a pull must fetch it from the registry.
pub fn forget(docker: &Docker, reference: &str) {
    docker.ok(&["rmi", "--force", reference]);
    assert!(
        !docker.run(&["image", "inspect", reference]).success,
        "{reference} is still in the daemon after rmi"
    );
}

/// Asserts that a docker command failed because the registry or authd refused the rights
/// (not because it could not connect or something crashed).
///
/// # Panics
/// When `out` succeeded or failed for another reason.
pub fn assert_denied(out: &Output, what: &str) {
    let text = out.all();
    assert!(
        !out.success,
        "{what} should have been refused, but it succeeded:\n{text}"
    );
    let lower = text.to_lowercase();
    let refused = ["denied", "unauthorized", "authentication required"]
        .iter()
        .any(|w| lower.contains(w));
    let broken = [
        "connection refused",
        "x509",
        "500 internal server error",
        ": eof",
    ]
    .iter()
    .any(|w| lower.contains(w));
    assert!(
        refused && !broken,
        "{what} failed, but not as a refusal of rights:\n{text}"
    );
}

/// Runs `attempt` until it succeeds, at most `tries` times `interval` apart; returns the last
/// output (which the caller checks). For changes that take effect "within a few seconds".
pub async fn retry(tries: u32, interval: Duration, mut attempt: impl FnMut() -> Output) -> Output {
    let mut out = attempt();
    for _ in 1..tries {
        if out.success {
            break;
        }
        tokio::time::sleep(interval).await;
        out = attempt();
    }
    out
}
