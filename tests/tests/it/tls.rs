//! Both daemons over HTTPS with certificates from `authd gen-cert --dns berth.test`, and the real
//! Docker daemon trusting their CA through `/etc/docker/certs.d/berth.test:PORT/ca.crt`.
//!
//! `berth.test` must resolve to ::1 (`./scripts/test` adds it to /etc/hosts): Docker treats every
//! registry on 127.0.0.0/8 as insecure and skips certificate checks there, so a name on
//! 127.0.0.1 would prove nothing. Needs root (to write certs.d) and `DOCKER_HOST`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_tests::authd::{ISSUER, SERVICE};
use berth_tests::bins::binary;
use berth_tests::cli::run;
use berth_tests::docker::Docker;
use berth_tests::docker_flows::{assert_denied, forget, import_tiny};
use berth_tests::spawned::Spawned;
use serde_json::{json, Value};

const HOST: &str = "berth.test";

/// `/etc/docker/certs.d/HOST:PORT/ca.crt`, removed again on drop.
struct TrustedCa(PathBuf);

impl TrustedCa {
    fn install(port: u16, ca: &Path) -> TrustedCa {
        let dir = PathBuf::from(format!("/etc/docker/certs.d/{HOST}:{port}"));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {} (run as root): {e}", dir.display()));
        std::fs::copy(ca, dir.join("ca.crt"))
            .unwrap_or_else(|e| panic!("cannot copy the CA into {}: {e}", dir.display()));
        TrustedCa(dir)
    }
}

impl Drop for TrustedCa {
    fn drop(&mut self) {
        // Best effort: leaving the directory behind only trusts a CA that no longer exists.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bcrypt(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap_or_else(|e| panic!("bcrypt failed: {e}"))
}

fn write_yaml(path: &Path, doc: &Value) {
    let text = serde_yaml::to_string(doc).unwrap_or_else(|e| panic!("cannot serialize YAML: {e}"));
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A daemon serving HTTPS on [::1] (port 0 in its config), started with `--config` and awaited
/// on `/healthz`; returns it with the port it bound.
async fn start(name: &str, config: &Path, dir: &Path, https: &reqwest::Client) -> (Spawned, u16) {
    let mut cmd = Command::new(binary(name));
    cmd.arg("--config").arg(config).env("RUST_LOG", "info");
    let mut daemon = Spawned::start(name, cmd, &dir.join(format!("{name}.log")));
    let port = daemon.announced_addr().await.port();
    daemon
        .wait_ok(
            https,
            &format!("https://{HOST}:{port}/healthz"),
            300,
            Duration::from_millis(100),
        )
        .await;
    (daemon, port)
}

#[tokio::test]
async fn docker_logs_in_pushes_and_pulls_over_https_with_the_ca_in_certs_d() {
    let resolved: Vec<SocketAddr> = (HOST, 443)
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    assert!(
        !resolved.is_empty() && resolved.iter().all(|a| a.ip().is_loopback() && a.is_ipv6()),
        "{HOST} must resolve to ::1 only (got {resolved:?}): run through ./scripts/test, which adds it to /etc/hosts"
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
    let certs = dir.path().join("certs");
    let out = run(
        {
            let mut cmd = Command::new(binary("authd"));
            cmd.args(["gen-cert", "--out"])
                .arg(&certs)
                .args(["--dns", HOST]);
            cmd
        },
        None,
    );
    assert!(
        out.success,
        "authd gen-cert --dns {HOST} failed:\n{}",
        out.all()
    );
    let ca_pem = std::fs::read(certs.join("ca.crt"))
        .unwrap_or_else(|e| panic!("gen-cert wrote no ca.crt: {e}"));

    let tls = json!({"certificate": certs.join("server.crt"), "key": certs.join("server.key")});
    let mut server = json!({"addr": "[::1]:0"});
    server["certificate"] = tls["certificate"].clone();
    server["key"] = tls["key"].clone();
    write_yaml(
        &dir.path().join("auth.yaml"),
        &json!({
            "server": server,
            "token": {"issuer": ISSUER, "expiration": 900,
                      "certificate": certs.join("token.crt"), "key": certs.join("token.key")},
            "users": {
                "alice": {"password": bcrypt("alice-pass"), "labels": {}},
                "bob": {"password": bcrypt("bob-pass"), "labels": {}},
            },
            "acl": [
                {"match": {"account": "alice"}, "actions": ["*"], "comment": "alice may do anything"},
                {"match": {"account": "bob"}, "actions": ["pull"], "comment": "bob only pulls"},
            ],
        }),
    );
    let ca = reqwest::Certificate::from_pem(&ca_pem)
        .unwrap_or_else(|e| panic!("ca.crt is not a PEM certificate: {e}"));
    let https = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap_or_else(|e| panic!("cannot build an HTTPS client: {e}"));
    let (_authd, auth_port) =
        start("authd", &dir.path().join("auth.yaml"), dir.path(), &https).await;
    write_yaml(
        &dir.path().join("registry.yaml"),
        &json!({
            "http": {"addr": "[::1]:0", "tls": tls},
            "storage": {"filesystem": {"rootdirectory": dir.path().join("data")}, "delete": {"enabled": true}},
            "auth": {"token": {"realm": format!("https://{HOST}:{auth_port}/auth"), "service": SERVICE,
                               "issuer": ISSUER, "rootcertbundle": certs.join("token.crt")}},
        }),
    );

    let (_registryd, registry_port) = start(
        "registryd",
        &dir.path().join("registry.yaml"),
        dir.path(),
        &https,
    )
    .await;
    let untrusting = reqwest::get(format!("https://{HOST}:{registry_port}/healthz")).await;
    assert!(
        untrusting.is_err(),
        "a client without Berth's CA accepted registryd's certificate"
    );

    let registry = format!("{HOST}:{registry_port}");
    let image = format!("{registry}/alice/tls:1");
    let alice = Docker::connect();
    let refused = alice.login(&registry, "alice", "alice-pass");
    assert!(
        !refused.success,
        "docker trusted Berth's certificate before its CA was in certs.d"
    );
    assert!(
        refused.all().contains("certificate"),
        "login failed, but not on the certificate:\n{}",
        refused.all()
    );

    let _trust = TrustedCa::install(registry_port, &certs.join("ca.crt"));
    let out = alice.login(&registry, "alice", "alice-pass");
    assert!(
        out.success,
        "docker login over HTTPS failed with the CA in certs.d:\n{}",
        out.all()
    );
    import_tiny(&alice, &image);
    let pushed = alice.run(&["push", &image]);
    assert!(
        pushed.success,
        "docker push over HTTPS failed:\n{}",
        pushed.all()
    );
    forget(&alice, &image);

    let bob = Docker::connect();
    assert!(
        bob.login(&registry, "bob", "bob-pass").success,
        "bob's login over HTTPS failed"
    );
    let pulled = bob.run(&["pull", &image]);
    assert!(
        pulled.success,
        "docker pull over HTTPS failed:\n{}",
        pulled.all()
    );
    bob.remember(&image);
    let bobs = format!("{registry}/alice/tls:bob");
    bob.ok(&["tag", &image, &bobs]);
    bob.remember(&bobs);
    assert_denied(&bob.run(&["push", &bobs]), "bob's push over HTTPS");

    // The README's TLS lines: curl with the CA fetches a catalog token and lists the catalog.
    let ca_path = certs.join("ca.crt").to_string_lossy().into_owned();
    let token_url =
        format!("https://{HOST}:{auth_port}/auth?service={SERVICE}&scope=registry:catalog:*");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sf",
        "--cacert",
        &ca_path,
        "-u",
        "alice:alice-pass",
        &token_url,
    ]);
    let out = run(cmd, None);
    assert!(
        out.success,
        "curl over HTTPS for a catalog token failed:\n{}",
        out.all()
    );
    let token: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON: {e}: {}", out.stdout));
    let token = token["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {token}"));
    let mut cmd = Command::new("curl");
    let catalog_url = format!("https://{registry}/v2/_catalog");
    cmd.args([
        "-sf",
        "--cacert",
        &ca_path,
        "-H",
        &format!("Authorization: Bearer {token}"),
        &catalog_url,
    ]);
    let out = run(cmd, None);
    assert!(
        out.success,
        "curl over HTTPS for the catalog failed:\n{}",
        out.all()
    );
    let catalog: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON: {e}: {}", out.stdout));
    assert_eq!(
        catalog["repositories"],
        json!(["alice/tls"]),
        "catalog over HTTPS"
    );
}
