//! What the docker tests do with the real Docker daemon beyond single commands: make a tiny image
//! to push, recognise a refusal for lack of rights, and retry a command while a change lands.

use std::path::Path;
use std::time::Duration;

use crate::cli::Output;
use crate::content::Content;
use crate::docker::Docker;

/// Imports a one-layer image (one random file) into the daemon as `reference`, the way the
/// README does it (`tar -c FILE | docker import - REF`), and remembers it for cleanup.
pub fn import_tiny(docker: &Docker, reference: &str) {
    import_random(docker, reference, 512);
}

/// As [`import_tiny`], the file `bytes` long (random, so its layer is as large compressed).
pub fn import_random(docker: &Docker, reference: &str, bytes: usize) {
    let layer = Content::tar_layer("hello.txt", bytes);
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

/// Asserts that `docker login` to `host` as `user` with `password` fails as unauthorized.
///
/// # Panics
/// When the login succeeds or fails for another reason.
pub fn assert_login_refused(docker: &Docker, host: &str, user: &str, password: &str) {
    let out = docker.login(host, user, password);
    assert!(
        !out.success,
        "login as {user} with a wrong password succeeded: {}",
        out.all()
    );
    assert!(
        out.all().to_lowercase().contains("unauthorized"),
        "{}",
        out.all()
    );
}

/// The README's live ACL edit: `bob` tags `app` as `bobs_app` and is refused its push; a rule
/// giving bob `bob/*` is prepended to the running `auth_yaml` (written in place, as an editor
/// does); the push then succeeds within 3 s, without a restart (which the caller checks its own
/// way).
///
/// # Panics
/// When the first push is not refused or the second does not succeed.
pub async fn acl_edit_lets_bob_push(bob: &Docker, app: &str, bobs_app: &str, auth_yaml: &Path) {
    bob.ok(&["tag", app, bobs_app]);
    bob.remember(bobs_app);
    assert_denied(
        &bob.run(&["push", bobs_app]),
        "bob's push before the ACL edit",
    );
    crate::auth_yaml::prepend_rule(
        auth_yaml,
        r#"{match: {account: bob, name: "bob/*"}, actions: [push, pull], comment: "bob owns bob/*"}"#,
        crate::auth_yaml::Write::InPlace,
    );
    let out = retry(15, Duration::from_millis(200), || {
        bob.run(&["push", bobs_app])
    })
    .await;
    assert!(
        out.success,
        "bob's push still refused 3 s after the ACL edit of {}:\n{}",
        auth_yaml.display(),
        out.all()
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
