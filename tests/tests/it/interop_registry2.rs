//! authd as the token server of distribution's reference registry (registry:2, Debian's
//! `docker-registry`), driven by the real Docker daemon: the peer accepts authd's tokens, honours
//! the actions they grant and refuses what they leave out; an ACL edit reaches the next push.
//!
//! Needs `DOCKER_HOST` naming a running daemon: run through `./scripts/test`.

use std::process::Command;
use std::time::Duration;

use berth_tests::auth_yaml::{self, Write};
use berth_tests::authd::{gen_cert, AuthSpec, Authd, User};
use berth_tests::cli::run;
use berth_tests::docker::Docker;
use berth_tests::docker_flows::{assert_denied, forget, import_tiny, retry};
use berth_tests::reference_registry::ReferenceRegistry;
use berth_tests::registryd::{RegistryAuth, Registryd};
use berth_tests::skopeo::skopeo;
use serde_json::Value;
use tempfile::TempDir;

/// authd and a reference registry trusting its token certificate, over one temp dir.
struct Interop {
    authd: Authd,
    registry: ReferenceRegistry,
    // Dropped last: the processes above stop before their files go away.
    dir: TempDir,
}

impl Interop {
    /// With an ES256 token key (gen-cert's default).
    async fn start(spec: AuthSpec) -> Interop {
        Interop::start_with_keys(spec, &[]).await
    }

    /// With the token key `gen-cert` makes given `args`.
    async fn start_with_keys(spec: AuthSpec, args: &[&str]) -> Interop {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let certs = dir.path().join("certs");
        gen_cert(&certs, args);
        let authd = Authd::start(dir.path(), &certs, spec).await;
        let registry =
            ReferenceRegistry::start(dir.path(), &authd.realm(), &certs.join("token.crt")).await;
        Interop {
            authd,
            registry,
            dir,
        }
    }

    /// `127.0.0.1:PORT/name`
    fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host())
    }

    /// A docker CLI logged in (successfully) as `user`.
    fn login(&self, user: &str, password: &str) -> Docker {
        let docker = Docker::connect();
        let out = docker.login(&self.registry.host(), user, password);
        assert!(out.success, "docker login as {user} failed:\n{}", out.all());
        docker
    }

    fn auth_yaml(&self) -> std::path::PathBuf {
        self.dir.path().join("auth.yaml")
    }
}

/// The standard users plus `carol`, a valid user whom no ACL rule names.
fn spec_with_stranger() -> AuthSpec {
    let mut spec = AuthSpec::standard();
    spec.users.push(User::new("carol", "carol-pass"));
    spec
}

/// `curl -s ARGS…` (the real curl), which must exit 0; returns stdout.
fn curl(args: &[&str]) -> String {
    let mut cmd = Command::new("curl");
    cmd.arg("-s").args(args);
    let out = run(cmd, None);
    assert!(out.success, "curl {args:?} failed:\n{}", out.all());
    out.stdout
}

/// A catalog token from authd for `user`, fetched with curl as the README shows.
fn catalog_token(authd: &Authd, user: &str, password: &str) -> String {
    let url = format!(
        "{}?service=registry&scope=registry:catalog:*",
        authd.realm()
    );
    let body = curl(&["-u", &format!("{user}:{password}"), &url]);
    let json: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("token answer {body:?} is not JSON: {e}"));
    json["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {json}"))
        .to_string()
}

#[tokio::test]
async fn docker_login_accepts_a_good_password_and_refuses_bad_ones() {
    let it = Interop::start(spec_with_stranger()).await;
    let docker = Docker::connect();
    let host = it.registry.host();

    let wrong = docker.login(&host, "alice", "not-alices-password");
    assert_denied(&wrong, "docker login with a wrong password");
    assert!(
        !docker.config_json().contains(&host),
        "a failed login stored credentials: {}",
        docker.config_json()
    );

    let unknown = docker.login(&host, "nobody", "alice-pass");
    assert_denied(&unknown, "docker login as an unknown user");

    let good = docker.login(&host, "alice", "alice-pass");
    assert!(
        good.success,
        "docker login with alice's password failed:\n{}",
        good.all()
    );
    assert!(
        good.stdout.contains("Login Succeeded"),
        "unexpected login output:\n{}",
        good.all()
    );
    assert!(
        docker.config_json().contains(&host),
        "login stored nothing for {host}: {}",
        docker.config_json()
    );

    // authd hands out a refresh token, so Docker keeps that instead of the password (later
    // pushes and pulls use the refresh_token grant).
    let config = docker.config_json();
    assert!(
        config.contains("identitytoken"),
        "docker stored no identity token: {config}"
    );
    assert!(
        !config.contains("YWxpY2U6YWxpY2UtcGFzcw"),
        "docker stored alice's password: {config}"
    );

    // A user whom no rule names still authenticates: login asks for no scope.
    assert!(
        docker.login(&host, "carol", "carol-pass").success,
        "carol's login failed"
    );
}

#[tokio::test]
async fn owner_pushes_reader_pulls_reader_cannot_push_strangers_cannot_pull() {
    let it = Interop::start(spec_with_stranger()).await;
    let image = it.image("alice/app:1");

    let alice = it.login("alice", "alice-pass");
    import_tiny(&alice, &image);
    let pushed = alice.run(&["push", &image]);
    assert!(
        pushed.success,
        "alice's push of {image} failed:\n{}",
        pushed.all()
    );
    assert!(
        pushed.stdout.contains("digest: sha256:"),
        "push printed no digest:\n{}",
        pushed.all()
    );
    forget(&alice, &image);

    let bob = it.login("bob", "bob-pass");
    let pulled = bob.run(&["pull", &image]);
    assert!(
        pulled.success,
        "bob (readers) could not pull {image}:\n{}",
        pulled.all()
    );
    bob.remember(&image);
    assert!(
        bob.run(&["image", "inspect", &image]).success,
        "the pulled image is not in the daemon"
    );

    let bobs_tag = it.image("alice/app:bob");
    bob.ok(&["tag", &image, &bobs_tag]);
    bob.remember(&bobs_tag);
    assert_denied(&bob.run(&["push", &bobs_tag]), "bob's push into alice/app");
    let bobs_own = it.image("bob/app:1");
    bob.ok(&["tag", &image, &bobs_own]);
    bob.remember(&bobs_own);
    assert_denied(
        &bob.run(&["push", &bobs_own]),
        "bob's push into bob/app (readers only pull)",
    );
    forget(&bob, &image);

    let carol = it.login("carol", "carol-pass");
    assert_denied(
        &carol.run(&["pull", &image]),
        "a pull by carol, whom no rule names",
    );
    let anonymous = Docker::connect();
    assert_denied(
        &anonymous.run(&["pull", &image]),
        "an anonymous pull of alice/app",
    );
}

#[tokio::test]
async fn curl_fetches_a_catalog_token_that_lists_the_reference_registry() {
    // RS256 here (the rest of this file is ES256): registry:2 must take both, as from docker_auth.
    let it = Interop::start_with_keys(AuthSpec::standard(), &["--rsa"]).await;
    let image = it.image("alice/listed:1");
    let alice = it.login("alice", "alice-pass");
    import_tiny(&alice, &image);
    assert!(
        alice.run(&["push", &image]).success,
        "alice's push of {image} failed"
    );

    let token = catalog_token(&it.authd, "alice", "alice-pass");
    let catalog_url = format!("{}/v2/_catalog", it.registry.url());
    let body = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &catalog_url,
    ]);
    let json: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("catalog {body:?} is not JSON: {e}"));
    assert_eq!(
        json["repositories"],
        serde_json::json!(["alice/listed"]),
        "catalog: {body}"
    );

    // bob's rule grants pull only: his catalog token carries no `*`, which registry:2 requires.
    let bobs = catalog_token(&it.authd, "bob", "bob-pass");
    let status = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("Authorization: Bearer {bobs}"),
        &catalog_url,
    ]);
    assert_eq!(status, "401", "registry:2 let bob list the catalog");
}

/// Waits until a line of authd's log says it refused a reload, so the check after it is
/// meaningful (the push below must then still see the old ACL).
async fn wait_reload_refused(authd: &Authd, before: usize) {
    for _ in 0..50 {
        let log = authd.daemon.log_text();
        let new = log.get(before..).unwrap_or_default().to_lowercase();
        let refused = |line: &&str| {
            line.contains("reload")
                && ["error", "not reloaded", "fail", "refus"]
                    .iter()
                    .any(|w| line.contains(w))
        };
        if new.lines().any(|line| refused(&line)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "authd logged no refused reload within 5 s; log:\n{}",
        authd.daemon.log_text()
    );
}

/// A push retried for up to 3 s, the time an ACL edit has to take effect.
async fn push_within_3s(docker: &Docker, image: &str) -> berth_tests::cli::Output {
    retry(15, Duration::from_millis(200), || {
        docker.run(&["push", image])
    })
    .await
}

async fn acl_edit_reaches_the_next_push(how: Write) {
    let it = Interop::start(AuthSpec::standard()).await;
    let image = it.image("bob/tool:1");
    let bob = it.login("bob", "bob-pass");
    import_tiny(&bob, &image);
    assert_denied(
        &bob.run(&["push", &image]),
        "bob's push before the ACL grants it",
    );

    let pid = it.authd.daemon.pid();
    auth_yaml::prepend_rule(
        &it.auth_yaml(),
        r#"{match: {account: bob, name: "bob/*"}, actions: [push, pull], comment: "bob owns bob/*"}"#,
        how,
    );
    let out = push_within_3s(&bob, &image).await;
    assert!(
        out.success,
        "bob's push still refused 3 s after the ACL granted it ({how:?}):\n{}",
        out.all()
    );
    assert_eq!(it.authd.daemon.pid(), pid, "authd was restarted");

    // A broken edit that also drops bob's rule: it must be refused whole, so bob keeps pushing.
    let before = it.authd.daemon.log_text().len();
    auth_yaml::drop_first_rule_and_break(&it.auth_yaml(), "no_such_key: true", how);
    wait_reload_refused(&it.authd, before).await;
    let second = it.image("bob/tool:2");
    bob.ok(&["tag", &image, &second]);
    bob.remember(&second);
    let out = bob.run(&["push", &second]);
    assert!(
        out.success,
        "a broken ACL edit changed what bob may do ({how:?}):\n{}",
        out.all()
    );
    let health = reqwest::get(format!("{}/healthz", it.authd.daemon.url())).await;
    assert!(
        health.is_ok_and(|r| r.status().is_success()),
        "authd is unhealthy after a broken edit"
    );
}

#[tokio::test]
async fn acl_edit_written_in_place_takes_effect_and_a_broken_one_keeps_the_old_acl() {
    acl_edit_reaches_the_next_push(Write::InPlace).await;
}

#[tokio::test]
async fn acl_edit_renamed_into_place_takes_effect_and_a_broken_one_keeps_the_old_acl() {
    acl_edit_reaches_the_next_push(Write::Rename).await;
}

/// `digest: sha256:…` from docker push's last line.
fn pushed_digest(out: &berth_tests::cli::Output) -> String {
    out.stdout
        .split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("docker push printed no digest:\n{}", out.all()))
        .to_string()
}

#[tokio::test]
async fn migrating_from_registry2_with_skopeo_copy_keeps_the_digest() {
    let it = Interop::start(AuthSpec::standard()).await;
    let berth_dir = it.dir.path().join("berth");
    std::fs::create_dir_all(&berth_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", berth_dir.display()));
    let auth = RegistryAuth::Token {
        realm: it.authd.realm(),
        rootcertbundle: it.dir.path().join("certs/token.crt"),
    };
    let berth = Registryd::start(&berth_dir, &auth, true).await;
    let berth_host = berth.daemon.addr.to_string();

    let old = it.image("alice/app:1");
    let alice = it.login("alice", "alice-pass");
    import_tiny(&alice, &old);
    let pushed = alice.run(&["push", &old]);
    assert!(
        pushed.success,
        "push to registry:2 failed:\n{}",
        pushed.all()
    );
    let digest = pushed_digest(&pushed);

    // The README's migration line (plus plain HTTP on both sides).
    let new = format!("{berth_host}/alice/app:1");
    let copied = skopeo(&[
        "copy",
        "--all",
        "--src-creds",
        "alice:alice-pass",
        "--dest-creds",
        "alice:alice-pass",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{old}"),
        &format!("docker://{new}"),
    ]);
    assert!(
        copied.success,
        "skopeo copy from registry:2 into registryd failed:\n{}",
        copied.all()
    );

    let docker = Docker::connect();
    assert!(
        docker.login(&berth_host, "bob", "bob-pass").success,
        "bob's login to registryd failed"
    );
    let pulled = docker.run(&["pull", &new]);
    assert!(
        pulled.success,
        "pull of the migrated image failed:\n{}",
        pulled.all()
    );
    docker.remember(&new);
    let digests = docker.inspect(&new, "{{json .RepoDigests}}");
    assert!(
        digests.contains(&format!("{berth_host}/alice/app@{digest}")),
        "the migrated image's digest changed: pushed {digest}, registryd has {digests}"
    );
}
