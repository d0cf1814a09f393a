//! The web pages show an image the real Docker client pushed: its layers and the config values
//! `docker import --change` set (cmd, env, exposed port, label).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::browser::Browser;
use berth_tests::content::Content;
use berth_tests::docker::Docker;
use berth_tests::env::TestEnv;

#[tokio::test]
async fn ui_docker_pushed_image_shows_layers_and_config() {
    let docker = Docker::connect();
    let env = TestEnv::standard().await;
    let host = env.registry_host();
    let out = docker.login(&host, "alice", "alice-pass");
    assert!(out.success, "{}", out.all());
    let layer = Content::tar_layer("hello.txt", 2048);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &layer.bytes).unwrap();
    let remote = format!("{host}/alice/web:1.0");
    docker.ok(&[
        "import",
        "--change",
        "CMD [\"/hello\", \"--loud\"]",
        "--change",
        "ENV GREETING=hello-from-docker",
        "--change",
        "EXPOSE 8080",
        "--change",
        "LABEL org.example.team=alice-team",
        &file.path().to_string_lossy(),
        &remote,
    ]);
    docker.remember(&remote);
    docker.ok(&["push", &remote]);

    let base = env.registryd.url();
    let b = Browser::start("ui_docker_pushed_image_shows_layers_and_config").await;
    b.log_in(&base, "alice", "alice-pass").await;
    b.goto(&format!("{base}/ui/r/alice/web")).await;
    let tags = b.text("#tags").await;
    assert!(
        tags.contains("1.0") && tags.contains("Docker image"),
        "{tags}"
    );
    b.screenshot("tags").await;
    b.follow("#tags a[href$='/-/1.0']").await;
    assert_eq!(b.find_all("#layers-table tbody tr").await.len(), 1);
    assert!(b
        .text("#layers-table")
        .await
        .contains("application/vnd.docker.image.rootfs.diff.tar.gzip"));
    assert_eq!(b.text("#cmd").await, "[\"/hello\",\"--loud\"]");
    assert!(b.text("#env").await.contains("GREETING=hello-from-docker"));
    assert!(b.text("#ports").await.contains("8080/tcp"));
    assert!(b.text("#labels").await.contains("alice-team"));
    let pull = b.text("ul.commands").await;
    assert!(
        pull.contains(&format!("docker pull {host}/alice/web:1.0")),
        "{pull}"
    );
    b.screenshot("image").await;
    b.close().await;
}
