//! The binary's subcommands: hash-password, check, gen-cert, --help, and refusing a bad config.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::harness::{certs, yaml, STANDARD_ACL};

fn authd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_authd"))
}

fn run(cmd: &mut Command, stdin: &str) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `authd check --config CONFIG ARGS…`, which must succeed; its stdout.
fn check(config: &std::path::Path, args: &[&str]) -> String {
    let (ok, out, err) = run(
        authd().arg("check").arg("--config").arg(config).args(args),
        "",
    );
    assert!(ok, "{err}");
    out
}

#[test]
fn hash_password_makes_a_verifiable_bcrypt_hash() {
    let (ok, out, err) = run(
        authd().args(["hash-password", "--cost", "4"]),
        "s3cret pass\n",
    );
    assert!(ok, "{err}");
    let hash = out.trim();
    assert!(hash.starts_with("$2y$04$"), "{hash}");
    assert!(bcrypt::verify("s3cret pass", hash).unwrap_or(false));
    let (ok, _, err) = run(authd().args(["hash-password"]), "");
    assert!(!ok && err.contains("empty password"), "{err}");
}

#[test]
fn check_says_what_is_granted_and_why() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("auth.yaml");
    std::fs::write(&config, yaml(STANDARD_ACL, "")).unwrap_or_else(|e| panic!("{e}"));
    let out = check(
        &config,
        &[
            "--account",
            "bob",
            "--scope",
            "repository:x:pull,push",
            "--scope",
            "registry:catalog:*",
        ],
    );
    assert!(
        out.contains("repository:x:pull,push -> [pull] by acl[4]"),
        "{out}"
    );
    assert!(
        out.contains("registry:catalog:* -> [] by no rule matched"),
        "{out}"
    );
    let (ok, _, err) = run(
        authd().arg("check").arg("--config").arg(&config).args([
            "--account",
            "bob",
            "--scope",
            "nonsense",
        ]),
        "",
    );
    assert!(!ok && err.contains("not of the form"), "{err}");
    // As /auth does: no grant is reported for a name no registry could serve.
    let (ok, out, err) = run(
        authd().arg("check").arg("--config").arg(&config).args([
            "--account",
            "admin",
            "--scope",
            "repository:alice/../secret/db:pull",
        ]),
        "",
    );
    assert!(!ok && out.is_empty() && !err.is_empty(), "{out}{err}");
}

#[test]
fn check_leaves_ext_authz_scopes_to_the_program_without_running_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let program = dir.path().join("authz.sh");
    let ran = dir.path().join("ran");
    std::fs::write(&program, format!("#!/bin/sh\ntouch '{}'\n", ran.display()))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("auth.yaml");
    let extra = format!("ext_authz: {{command: {}}}", program.display());
    std::fs::write(&config, yaml(STANDARD_ACL, &extra)).unwrap_or_else(|e| panic!("{e}"));
    let out = check(
        &config,
        &[
            "--account",
            "bob",
            "--ip",
            "127.0.0.1",
            "--scope",
            "repository:x:pull,push",
            "--scope",
            "registry:catalog:*",
        ],
    );
    assert!(
        out.contains("repository:x:pull,push -> [pull] by acl[4]"),
        "{out}"
    );
    let stdin = r#"{"Account":"bob","Type":"registry","Name":"catalog","Service":"registry","IP":"127.0.0.1","Actions":["*"],"Labels":{"group":["readers"]}}"#;
    assert!(
        out.contains(&format!("registry:catalog:* -> no rule matched: ext_authz decides (check does not run it; its stdin would be {stdin})")),
        "{out}"
    );
    assert!(!ran.exists(), "check ran the program");
}

#[test]
fn check_warns_of_rules_that_can_never_match_with_their_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("auth.yaml");
    let acl = format!("  - match: {{name: \"${{user}}/*\"}}\n    actions: [\"*\"]\n{STANDARD_ACL}");
    let text = yaml(&acl, "");
    let line = text
        .lines()
        .position(|l| l.contains("${user}"))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{text}"));
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    let out = check(
        &config,
        &["--account", "bob", "--scope", "repository:bob/x:push"],
    );
    let want = format!(
        "warning: {}:{line}: acl[0]: unknown placeholder ${{user}}",
        config.display()
    );
    assert!(out.contains(&want), "{want}\n{out}");
    assert!(
        out.contains("repository:bob/x:push -> [] by acl[5]"),
        "{out}"
    );
}

#[test]
fn a_bad_config_is_refused_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("auth.yaml");
    std::fs::write(&config, yaml(STANDARD_ACL, "ldap_auth: {}")).unwrap_or_else(|e| panic!("{e}"));
    let (ok, _, err) = run(authd().arg("--config").arg(&config), "");
    assert!(!ok);
    assert!(
        err.contains("auth.yaml")
            && err.contains("ldap_auth: missing field `addr`")
            && err.contains("line"),
        "{err}"
    );
}

#[test]
fn gen_cert_and_help() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (ok, out, err) = run(
        authd().arg("gen-cert").arg("--out").arg(dir.path()).args([
            "--dns",
            "reg.local",
            "--ip",
            "192.0.2.7",
        ]),
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 6, "{out}");
    let (ok, out, _) = run(authd().arg("gen-cert").arg("--out").arg(dir.path()), "");
    assert!(ok && out.is_empty(), "second run writes nothing: {out}");
    assert!(certs().join("token.crt").exists());
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["gen-cert", "--help"],
        &["hash-password", "--help"],
    ] {
        let (ok, out, _) = run(authd().args(args), "");
        assert!(ok && out.contains("Usage"), "{args:?}");
    }
}
