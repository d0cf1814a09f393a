//! The `skopeo` CLI against registryd over plain http on loopback.

use std::path::Path;
use std::process::Command;

use crate::cli::{run, run_ok, Output};

/// `skopeo args…` (success or not), with an empty auth file so no host login leaks in.
pub fn skopeo(args: &[&str]) -> Output {
    let auth = empty_auth_file();
    run(command(args, auth.path()), None)
}

/// `skopeo args…`, which must succeed; returns stdout.
pub fn skopeo_ok(args: &[&str]) -> String {
    let auth = empty_auth_file();
    run_ok(command(args, auth.path()), None)
}

fn empty_auth_file() -> tempfile::NamedTempFile {
    let file =
        tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("cannot create a temp file: {e}"));
    std::fs::write(file.path(), br#"{"auths":{}}"#)
        .unwrap_or_else(|e| panic!("cannot write the auth file: {e}"));
    file
}

fn command(args: &[&str], auth_file: &Path) -> Command {
    let mut cmd = Command::new("skopeo");
    cmd.env("REGISTRY_AUTH_FILE", auth_file).args(args);
    cmd
}
