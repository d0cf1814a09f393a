//! The newcomer's journey, end to end: Berth started exactly as the README says (`./scripts/run`
//! with the example auth.yaml and registry.yaml), the README's next lines run as written, then
//! the real Docker client as three kinds of user, a live ACL edit, `docker logout` and a clean
//! stop. Also: docker-compose.yml validates.
//!
//! Uses the example's fixed ports 5000 and 5001, and needs `DOCKER_HOST` naming a running
//! daemon: run through `./scripts/test`.

use std::net::TcpListener;
use std::process::Command;

use berth_tests::authd::gen_cert;
use berth_tests::bins::binary;
use berth_tests::bins::repo_root;
use berth_tests::cli::run;
use berth_tests::docker::Docker;
use berth_tests::docker_flows::{acl_edit_lets_bob_push, assert_denied, forget, import_tiny};
use berth_tests::quickstart::{bash, block_after, Quickstart, AUTHD_URL, REGISTRY};
use serde_json::Value;

/// The README marks the block of commands that follow `./scripts/run` with this comment.
const README_MARKER: &str = "<!-- journey: the lines after ./scripts/run -->";

fn readme() -> String {
    let path = repo_root().join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `localhost:5000/name`
fn image(name: &str) -> String {
    format!("{REGISTRY}/{name}")
}

/// A Docker client logged in to the README's registry as `user`.
pub(crate) fn login(user: &str, password: &str) -> Docker {
    let docker = Docker::connect();
    let out = docker.login(REGISTRY, user, password);
    assert!(
        out.success,
        "docker login {REGISTRY} as {user} failed:\n{}",
        out.all()
    );
    docker
}

#[test]
fn readme_opens_with_the_two_commands() {
    let readme = readme();
    let first = block_after(&readme, "# Berth");
    let lines: Vec<&str> = first
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .collect();
    assert_eq!(
        lines,
        ["./scripts/run", "./scripts/test"],
        "the README's first block is not the two commands"
    );
}

#[tokio::test]
async fn the_readme_journey_works_as_written() {
    let mut berth = Quickstart::start().await;
    for file in [
        "token.key",
        "token.crt",
        "ca.key",
        "ca.crt",
        "server.key",
        "server.crt",
    ] {
        let path = berth.home.path().join("certs").join(file);
        assert!(
            path.is_file(),
            "scripts/run did not generate {}",
            path.display()
        );
    }
    let log = berth.process.log_text();
    for addr in ["127.0.0.1:5001", "127.0.0.1:5000"] {
        assert!(
            log.contains(&format!("listening on {addr}")),
            "no `listening on {addr}` in the log:\n{log}"
        );
    }

    let stranger = Docker::connect();
    assert_denied(
        &stranger.login(REGISTRY, "alice", "not-alices-password"),
        "docker login with a wrong password",
    );

    // The README's lines after ./scripts/run, as written: login, push, catalog token, catalog.
    let app = image("alice/app:1");
    let (cleaner, work) = readme_journey(&app, "./scripts/run");
    let docker_config = work.path().join("docker");

    // bob (group readers) pulls what alice pushed, but pushes nowhere.
    forget(&cleaner, &app);
    let bob = login("bob", "bob-pass");
    let pulled = bob.run(&["pull", &app]);
    assert!(
        pulled.success,
        "bob could not pull {app}:\n{}",
        pulled.all()
    );
    let bobs_tag = image("alice/app:bob");
    bob.ok(&["tag", &app, &bobs_tag]);
    bob.remember(&bobs_tag);
    assert_denied(&bob.run(&["push", &bobs_tag]), "bob's push into alice/app");

    // Anonymous users pull public/* (pushed by admin) and push nothing.
    let public = image("public/hello:1");
    let admin = login("admin", "admin-pass");
    import_tiny(&admin, &public);
    assert!(
        admin.run(&["push", &public]).success,
        "admin's push of {public} failed"
    );
    forget(&admin, &public);
    let anonymous = Docker::connect();
    let pulled = anonymous.run(&["pull", &public]);
    assert!(
        pulled.success,
        "anonymous pull of {public} failed:\n{}",
        pulled.all()
    );
    anonymous.remember(&public);
    let anon_tag = image("public/hello:anonymous");
    anonymous.ok(&["tag", &public, &anon_tag]);
    anonymous.remember(&anon_tag);
    assert_denied(
        &anonymous.run(&["push", &anon_tag]),
        "an anonymous push into public/hello",
    );
    assert_denied(
        &anonymous.run(&["pull", &app]),
        "an anonymous pull of alice/app",
    );

    // An ACL edit while Berth runs reaches bob's next push, without a restart.
    let bobs_app = image("bob/app:1");
    acl_edit_lets_bob_push(&bob, &app, &bobs_app, &berth.auth_yaml()).await;
    berth.process.assert_running();
    let log = berth.process.log_text();
    assert_eq!(
        log.matches("listening on 127.0.0.1:5001").count(),
        1,
        "authd was restarted:\n{log}"
    );

    // docker logout forgets the credentials: the README user's next push is anonymous, refused.
    let out = bash(
        &format!("docker logout {REGISTRY}"),
        work.path(),
        &docker_config,
    );
    assert!(out.success, "docker logout failed:\n{}", out.all());
    let config = std::fs::read_to_string(docker_config.join("config.json")).unwrap_or_default();
    assert!(
        !config.contains(REGISTRY),
        "credentials left after logout: {config}"
    );
    let out = bash(&format!("docker push {app}"), work.path(), &docker_config);
    assert_denied(&out, "a push after docker logout");

    // Ctrl-C / SIGTERM stops both daemons.
    let health = reqwest::get(format!("{AUTHD_URL}/healthz")).await;
    assert!(
        health.is_ok_and(|r| r.status().is_success()),
        "authd unhealthy at the end"
    );
    assert!(
        berth.process.stop().is_some(),
        "scripts/run did not stop on SIGTERM"
    );
    for port in [5000, 5001] {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} still taken after scripts/run stopped"
        );
    }
}

#[test]
fn docker_compose_file_validates() {
    let root = repo_root();
    let mut cmd = Command::new("docker-compose");
    cmd.args(["--file", "docker-compose.yml", "config"])
        .current_dir(&root);
    let out = run(cmd, None);
    assert!(
        out.success,
        "docker-compose config refused docker-compose.yml:\n{}",
        out.all()
    );
    let doc: serde_yaml::Value = serde_yaml::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("docker-compose config printed no YAML: {e}"));
    for (service, config) in [("authd", "auth.yaml"), ("registryd", "registry.yaml")] {
        let svc = &doc["services"][service];
        assert!(
            svc["build"].is_mapping() || svc["build"].is_string(),
            "{service} is not built from the repo: {svc:?}"
        );
        let test = svc["healthcheck"]["test"].as_sequence().map_or(0, Vec::len);
        assert!(test > 0, "{service} has no healthcheck: {svc:?}");
        let volumes: Vec<&str> = svc["volumes"]
            .as_sequence()
            .map(|v| v.iter().filter_map(serde_yaml::Value::as_str).collect())
            .unwrap_or_default();
        for target in [
            format!("/etc/berth/{config}"),
            "/etc/berth/certs".to_string(),
        ] {
            assert!(
                volumes.iter().any(|v| v.contains(&format!(":{target}"))),
                "{service} does not mount {target}: {volumes:?}"
            );
        }
    }
    let registry_volumes = format!("{:?}", doc["services"]["registryd"]["volumes"]);
    assert!(
        registry_volumes.contains("data:/etc/berth/data"),
        "registry data is not in the `data` volume: {registry_volumes}"
    );
    assert!(
        doc["volumes"].get("data").is_some(),
        "no `data` volume declared: {doc:?}"
    );
}

/// What `authd check` grants for `scope`, as printed: `SCOPE -> [a,b] by …`.
fn granted(config: &std::path::Path, account: &str, ip: &str, scope: &str) -> String {
    let mut cmd = Command::new(binary("authd"));
    cmd.arg("check").arg("--config").arg(config);
    cmd.args(["--account", account, "--ip", ip, "--scope", scope]);
    let out = run(cmd, None);
    assert!(
        out.success,
        "authd check {account} {ip} {scope} failed:\n{}",
        out.all()
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{scope} -> [")))
        .unwrap_or_else(|| panic!("authd check printed no grant for {scope}:\n{}", out.stdout));
    let rest = line.split_once("-> [").map_or("", |(_, r)| r);
    rest.split(']').next().unwrap_or_default().to_string()
}

#[test]
fn readme_acl_cookbook_grants_what_it_says() {
    let block = block_after(
        &readme(),
        "<!-- cookbook: checked by tests/tests/it/journey.rs -->",
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
    gen_cert(&dir.path().join("certs"), &[]);
    let config = dir.path().join("auth.yaml");
    let head =
        "server:\n  addr: \"127.0.0.1:5001\"\ntoken:\n  issuer: berth-auth\n  expiration: 900\n  \
                certificate: certs/token.crt\n  key: certs/token.key\n";
    std::fs::write(&config, format!("{head}{block}\n"))
        .unwrap_or_else(|e| panic!("cannot write auth.yaml: {e}"));
    let cases = [
        (
            "ci-deploy",
            "10.20.3.4",
            "repository:apps/web:push,pull",
            "pull,push",
        ),
        (
            "ci-deploy",
            "192.0.2.1",
            "repository:apps/web:push,pull",
            "",
        ),
        ("ci-deploy", "10.20.3.4", "repository:ci-deploy/x:push", ""),
        (
            "carol",
            "127.0.0.1",
            "repository:carol/tools:push,pull,delete",
            "delete,pull,push",
        ),
        ("carol", "127.0.0.1", "repository:qa/suite:push", "push"),
        (
            "carol",
            "127.0.0.1",
            "repository:alice/app:pull,push",
            "pull",
        ),
        ("", "127.0.0.1", "repository:public/base:pull,push", "pull"),
        ("", "127.0.0.1", "repository:carol/tools:pull", ""),
    ];
    for (account, ip, scope, expected) in cases {
        assert_eq!(
            granted(&config, account, ip, scope),
            expected,
            "cookbook: {account:?} from {ip} asking {scope}"
        );
    }
}

/// Runs the README's lines after `./scripts/run` as written (login, push, catalog token,
/// catalog) in a temp folder whose `docker` subfolder is their Docker config; asserts they
/// succeed against `daemons` and print the catalog `["alice/app"]`. Returns a client that
/// removes the pushed `app` at the end, and the folder.
pub(crate) fn readme_journey(app: &str, daemons: &str) -> (Docker, tempfile::TempDir) {
    let block = block_after(&readme(), README_MARKER);
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
    let out = bash(&block, work.path(), &work.path().join("docker"));
    let cleaner = Docker::connect();
    cleaner.remember(app);
    assert!(
        out.success,
        "the README's lines failed against {daemons}:\n{block}\n---\n{}",
        out.all()
    );
    let catalog = out.stdout.lines().last().unwrap_or_default();
    let catalog: Value = serde_json::from_str(catalog)
        .unwrap_or_else(|e| panic!("last line {catalog:?} is not JSON: {e}"));
    assert_eq!(
        catalog["repositories"],
        serde_json::json!(["alice/app"]),
        "catalog after the README's push"
    );
    (cleaner, work)
}
