//! The real Docker daemon against authd + registryd: login (bad and good password), push of a
//! multi-layer image, pull back by digest, layers shared with a second image not re-uploaded,
//! a read-only user denied, logout; the same as a user an `ext_auth` program accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::auth_yaml::{self, Write};
use berth_tests::content::{Content, Image};
use berth_tests::docker::Docker;
use berth_tests::docker_flows::assert_login_refused;
use berth_tests::env::TestEnv;
use berth_tests::oci_layout::OciLayout;
use berth_tests::registry::header;
use berth_tests::skopeo::skopeo_ok;

/// Loads `image` into the Docker daemon as `name:tag` (OCI layout → docker-archive with skopeo →
/// `docker load`), remembered for cleanup.
fn load(docker: &Docker, env: &TestEnv, image: &Image, name: &str) -> String {
    let dir = env
        .dir
        .path()
        .join(format!("layout-{}", image.manifest.hex()));
    let mut layout = OciLayout::create(&dir);
    layout.add_image(image);
    layout.tag(&image.manifest, "v1");
    let archive = env.dir.path().join(format!("{}.tar", image.manifest.hex()));
    skopeo_ok(&[
        "copy",
        &layout.reference("v1"),
        &format!("docker-archive:{}:{name}", archive.display()),
    ]);
    docker.load(&archive)
}

/// The digest in `docker push`'s last line (`v1: digest: sha256:… size: N`).
fn pushed_digest(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.split("digest: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in push output:\n{output}"))
        .to_string()
}

/// Loads `image` as `local`, pushes it as `remote`, removes both and pulls `remote` back,
/// checking the pull names the pushed digest.
fn push_and_pull_back(docker: &Docker, env: &TestEnv, image: &Image, local: &str, remote: &str) {
    let local = load(docker, env, image, local);
    docker.ok(&["tag", &local, remote]);
    docker.remember(remote);
    let digest = pushed_digest(&docker.ok(&["push", remote]));
    docker.ok(&["rmi", remote, &local]);
    let out = docker.ok(&["pull", remote]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
}

fn count(output: &str, needle: &str) -> usize {
    output.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn docker_login_push_pull_share_deny_logout() {
    let docker = Docker::connect();
    let env = TestEnv::standard().await;
    let host = env.registry_host();

    assert_login_refused(&docker, &host, "alice", "wrong-pass");
    assert!(
        !docker.config_json().contains(&host),
        "a failed login stored credentials"
    );
    let out = docker.login(&host, "alice", "alice-pass");
    assert!(
        out.success && out.all().contains("Login Succeeded"),
        "{}",
        out.all()
    );
    assert!(docker.config_json().contains(&host));

    // Three layers, pushed for real.
    let shared: Vec<Content> = (0..2)
        .map(|i| Content::tar_layer(&format!("shared{i}"), 8192 + i))
        .collect();
    let first = Image::oci(
        "amd64",
        [shared.clone(), vec![Content::tar_layer("first", 4096)]].concat(),
    );
    let local = load(&docker, &env, &first, "berth-test/first:v1");
    let remote = format!("{host}/alice/app:v1");
    docker.ok(&["tag", &local, &remote]);
    docker.remember(&remote);
    let out = docker.ok(&["push", &remote]);
    assert_eq!(count(&out, "Pushed"), 3, "three layers uploaded:\n{out}");
    let digest = pushed_digest(&out);
    let token = env.token("alice", &["repository:alice/app:pull"]).await;
    let resp = env
        .registry()
        .head("/v2/alice/app/manifests/v1", Some(&token))
        .await;
    assert_eq!(header(&resp, "Docker-Content-Digest"), digest);

    // Gone locally, pulled back: the same digest.
    docker.ok(&["rmi", &remote, &local]);
    assert!(
        !docker.run(&["image", "inspect", &remote]).success,
        "image still present locally"
    );
    let out = docker.ok(&["pull", &remote]);
    assert!(
        out.contains(&format!("Digest: {digest}")),
        "pull digest differs:\n{out}"
    );
    let repo_digest = docker.inspect(&remote, "{{index .RepoDigests 0}}");
    assert_eq!(repo_digest, format!("{host}/alice/app@{digest}"));

    // A second image sharing two layers: those are mounted or skipped, only the new one is sent.
    let second = Image::oci(
        "amd64",
        [shared, vec![Content::tar_layer("second", 4096)]].concat(),
    );
    let local2 = load(&docker, &env, &second, "berth-test/second:v1");
    let remote2 = format!("{host}/alice/other:v1");
    docker.ok(&["tag", &local2, &remote2]);
    docker.remember(&remote2);
    let out = docker.ok(&["push", &remote2]);
    let reused = count(&out, "Mounted from") + count(&out, "Layer already exists");
    assert_eq!(reused, 2, "shared layers re-uploaded:\n{out}");
    assert_eq!(
        count(&out, "Pushed"),
        1,
        "only the new layer is uploaded:\n{out}"
    );

    // bob reads but may not push.
    docker.ok(&["logout", &host]);
    let out = docker.login(&host, "bob", "bob-pass");
    assert!(out.success, "{}", out.all());
    let out = docker.run(&["push", &remote2]);
    assert!(!out.success, "bob pushed:\n{}", out.all());
    assert!(
        out.all().contains("denied"),
        "Docker's message names the denial:\n{}",
        out.all()
    );
    docker.ok(&["rmi", &remote]);
    docker.ok(&["pull", &remote]);

    // Logged out: the credentials are gone and alice/ is closed to anonymous users.
    let out = docker.ok(&["logout", &host]);
    assert!(out.contains("Removing login credentials"), "{out}");
    assert!(
        !docker.config_json().contains(&host),
        "logout left credentials"
    );
    docker.ok(&["rmi", &remote]);
    let out = docker.run(&["pull", &remote]);
    assert!(
        !out.success,
        "anonymous pull of alice/app succeeded:\n{}",
        out.all()
    );
}

#[tokio::test]
async fn docker_pulls_its_platform_from_a_multi_arch_index() {
    let docker = Docker::connect();
    let env = TestEnv::standard().await;
    let host = env.registry_host();
    let amd = Image::oci_gzip("amd64", 2);
    let arm = Image::oci_gzip("arm64", 1);
    let multi = berth_tests::content::index(
        berth_tests::content::OCI_INDEX,
        &[("arm64", &arm), ("amd64", &amd)],
    );
    let token = env
        .token("alice", &["repository:alice/multi:pull,push"])
        .await;
    let registry = env.registry();
    for image in [&amd, &arm] {
        for blob in image.blobs() {
            registry.push_blob("alice/multi", blob, Some(&token)).await;
        }
        registry
            .push_manifest(
                "alice/multi",
                &image.manifest.digest,
                &image.manifest,
                Some(&token),
            )
            .await;
    }
    registry
        .push_manifest("alice/multi", "v1", &multi, Some(&token))
        .await;

    assert!(docker.login(&host, "bob", "bob-pass").success);
    let remote = format!("{host}/alice/multi:v1");
    docker.remember(&remote);
    let out = docker.ok(&["pull", "--platform", "linux/amd64", &remote]);
    assert!(out.contains(&format!("Digest: {}", multi.digest)), "{out}");
    assert_eq!(docker.inspect(&remote, "{{.Architecture}}"), "amd64");
    let config_id = docker.inspect(&remote, "{{.Id}}");
    assert_eq!(
        config_id, amd.config.digest,
        "docker took the amd64 entry's config"
    );
}

#[tokio::test]
async fn docker_works_with_an_htpasswd_registry() {
    let docker = Docker::connect();
    let env = TestEnv::htpasswd(&[berth_tests::authd::User::new("carol", "carol-pass")]).await;
    let host = env.registry_host();
    let out = docker.login(&host, "carol", "wrong");
    assert!(!out.success, "a wrong password logged in: {}", out.all());
    assert!(docker.login(&host, "carol", "carol-pass").success);
    let image = Image::oci(
        "amd64",
        vec![Content::tar_layer("a", 1000), Content::tar_layer("b", 2000)],
    );
    let remote = format!("{host}/team/basic:v1");
    push_and_pull_back(&docker, &env, &image, "berth-test/basic:v1", &remote);
    docker.ok(&["logout", &host]);
    docker.ok(&["rmi", &remote]);
    assert!(
        !docker.run(&["pull", &remote]).success,
        "pulled without credentials"
    );
}

/// An `ext_auth` program (docker_auth's protocol) that knows only `carol`, with the password
/// `carol pass;$x`, and gives her the `writers` label; it records each user it is asked about.
const CHECK_LOGIN: &str = r#"#!/bin/sh
read -r u p
echo "$u" >> "$(dirname "$0")/calls"
[ "$u" = carol ] || exit 2
[ "$p" = 'carol pass;$x' ] || exit 1
echo '{"labels": {"group": ["writers"]}}'
"#;

#[tokio::test]
async fn docker_logs_in_pushes_and_pulls_as_an_ext_auth_user() {
    let docker = Docker::connect();
    let env = TestEnv::standard().await;
    let host = env.registry_host();
    let program = env.dir.path().join("check-login.sh");
    std::fs::write(&program, CHECK_LOGIN).unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = env.dir.path().join("auth.yaml");
    auth_yaml::prepend_rule(
        &config,
        r#"{match: {labels: {group: writers}, name: "team/*"}, actions: [push, pull]}"#,
        Write::Rename,
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let section = format!("ext_auth:\n  command: {}\n", program.display());
    auth_yaml::write_text(&config, &format!("{text}{section}"), Write::Rename);
    let mut reloaded = false;
    for _ in 0..50 {
        let resp = env
            .authd()
            .request_token(Some(("carol", "carol pass;$x")), &[])
            .await;
        if resp.status() == 200 {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(reloaded, "authd did not take the ext_auth section");

    let out = docker.login(&host, "carol", "carol pass;$y");
    assert!(!out.success, "a wrong password logged in: {}", out.all());
    let out = docker.login(&host, "carol", "carol pass;$x");
    assert!(out.success, "{}", out.all());
    // No refresh token for a program's user: Docker keeps the password, not an identity token.
    let stored = docker.config_json();
    assert!(
        stored.contains(&host) && !stored.contains("identitytoken"),
        "{stored}"
    );

    let image = Image::oci("amd64", vec![Content::tar_layer("ext", 3000)]);
    let remote = format!("{host}/team/ext:v1");
    push_and_pull_back(&docker, &env, &image, "berth-test/ext:v1", &remote);
    let calls = std::fs::read_to_string(env.dir.path().join("calls")).unwrap_or_default();
    assert!(
        calls.lines().all(|l| l == "carol") && calls.lines().count() >= 3,
        "{calls}"
    );
    docker.ok(&["logout", &host]);
}
