//! Where the cache finds an upstream's account besides `username`/`password` in registry.yaml:
//! the environment (`usernameenv`/`passwordenv`, registryd started with those variables) and a
//! Docker `config.json`-style `authfile` with an `auths` entry for the upstream's host:port. Each
//! pulls an image that exists only upstream (which refuses anonymous clients) with skopeo; and
//! registryd refuses to start when a named variable is unset, naming it.
//!
//! Needs `berth.test` and `upstream.test` in /etc/hosts: run through `./scripts/test`.

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use berth_tests::bins::binary;
use berth_tests::content::{unique, Image};
use berth_tests::pull_through::{PullThrough, PREFIX};
use berth_tests::skopeo::skopeo;
use berth_tests::upstream::{Upstream, UpstreamAuth};
use serde_json::json;

/// The variables the cache reads the upstream's account from.
const USER_VAR: &str = "BERTH_UPSTREAM_USER";
const PASSWORD_VAR: &str = "BERTH_UPSTREAM_PASSWORD";

/// Polls (every 100 ms) of a registryd that must exit before it counts as started: 30 s.
const EXIT_POLLS: u32 = 300;

/// A new upstream authenticating as `auth` holding `image` as `library/<stem>-<random>:1`.
async fn stocked(auth: UpstreamAuth, stem: &str, image: &Image) -> (Upstream, String) {
    let upstream = Upstream::start(auth).await;
    let repo = format!("library/{stem}-{}", unique());
    upstream.push(&repo, "1", image).await;
    (upstream, repo)
}

/// `skopeo inspect --raw` of `repo:1` through the cache as alice must give `image`'s manifest,
/// and `skopeo copy` of it must succeed: an upstream fetch with the configured account.
fn pulls_through(cache: &PullThrough, repo: &str, image: &Image) {
    let source = format!("docker://{}/{PREFIX}/{repo}:1", cache.host());
    let creds = ["--tls-verify=false", "--creds", "alice:alice-pass"];
    let raw = skopeo(&[&["inspect", "--raw"][..], &creds, &[&source]].concat());
    assert!(raw.success, "skopeo inspect {source}:\n{}", raw.all());
    assert_eq!(raw.stdout.as_bytes(), image.manifest.bytes.as_slice());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dest = format!("oci:{}:1", dir.path().display());
    let src_creds = ["--src-tls-verify=false", "--src-creds", "alice:alice-pass"];
    let out = skopeo(&[&["copy"][..], &src_creds, &[&source, &dest]].concat());
    assert!(out.success, "skopeo copy {source}:\n{}", out.all());
}

#[tokio::test]
async fn an_upstream_account_from_the_environment_pulls() {
    let image = Image::oci_gzip("amd64", 2);
    let (upstream, repo) = stocked(UpstreamAuth::Bearer, "from-env", &image).await;
    let user = upstream.puller.clone();
    let env = vec![
        (USER_VAR.to_string(), user.name.clone()),
        (PASSWORD_VAR.to_string(), user.password.clone()),
    ];
    let keys = json!({"usernameenv": USER_VAR, "passwordenv": PASSWORD_VAR});
    let cache = PullThrough::start_credentialed(upstream, keys, env).await;
    pulls_through(&cache, &repo, &image);
    let config = std::fs::read_to_string(cache.env.registryd.config()).unwrap_or_default();
    assert!(
        !config.contains(&user.password),
        "the password is in registry.yaml"
    );
}

#[tokio::test]
async fn an_upstream_account_from_a_docker_config_json_pulls() {
    let image = Image::oci_gzip("amd64", 2);
    let (upstream, repo) = stocked(UpstreamAuth::Basic, "from-authfile", &image).await;
    let user = &upstream.puller;
    let pair = format!("{}:{}", user.name, user.password);
    let auth = base64::engine::general_purpose::STANDARD.encode(pair);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("config.json");
    let auths = json!({"auths": {
        "other.test:5000": {"auth": "b3RoZXI6d3Jvbmc="},
        upstream.host(): {"auth": auth},
    }});
    std::fs::write(&file, auths.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let keys = json!({"authfile": file});
    let cache = PullThrough::start_credentialed(upstream, keys, Vec::new()).await;
    pulls_through(&cache, &repo, &image);
}

#[test]
fn registryd_refuses_to_start_without_the_variable_it_is_told_to_read() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let upstream = json!({
        "name": PREFIX,
        "remoteurl": "http://upstream.test:1",
        "username": "puller",
        "passwordenv": PASSWORD_VAR,
    });
    let config = json!({
        "http": {"addr": "127.0.0.1:0"},
        "storage": {"filesystem": {"rootdirectory": dir.path().join("data")}},
        "proxy": {"upstreams": [upstream]},
    });
    let path = dir.path().join("registry.yaml");
    let yaml = serde_yaml::to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("{e}"));

    let mut child = Command::new(binary("registryd"))
        .args(["--config", &path.to_string_lossy()])
        .env_remove(PASSWORD_VAR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start registryd: {e}"));
    let mut polls = 0;
    while child.try_wait().ok().flatten().is_none() {
        polls += 1;
        if polls > EXIT_POLLS {
            let _ = child.kill();
            let _ = child.wait();
            panic!("registryd started without {PASSWORD_VAR}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for registryd: {e}"));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "registryd exited 0:\n{printed}");
    assert!(
        printed.contains(PASSWORD_VAR),
        "registryd's refusal does not name {PASSWORD_VAR}:\n{printed}"
    );
}
