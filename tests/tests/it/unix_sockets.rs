//! Both daemons on Unix sockets behind nginx on the same host. authd (docker_auth's
//! `server.net: unix`): the client address comes from the proxy's `X-Real-IP`, so ACL `ip` rules
//! see the real client; a request on the socket without that header is refused; a second authd
//! cannot take a live socket over; SIGTERM removes the socket file. registryd (registry:2's
//! `http.net: unix`): skopeo copies an image in and out through nginx.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_tests::authd::{gen_cert, AuthSpec, SERVICE};
use berth_tests::bins::binary;
use berth_tests::content::Image;
use berth_tests::nginx::Nginx;
use berth_tests::oci_layout::{read_blob, OciLayout};
use berth_tests::skopeo::skopeo_ok;
use berth_tests::spawned::Spawned;
use berth_tests::tokens::granted;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// authd with `dir/auth.yaml` serving `spec` on `socket`, its token key in `certs`.
fn authd_on(dir: &Path, certs: &Path, socket: &Path, spec: &AuthSpec) -> Command {
    let server = json!({"server": {"addr": socket, "net": "unix", "real_ip_header": "X-Real-IP"}});
    let config = dir.join("auth.yaml");
    std::fs::write(&config, spec.yaml("", certs, &server)).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(binary("authd"));
    cmd.arg("--config").arg(&config).env("RUST_LOG", "info");
    cmd
}

/// Starts `cmd`, waiting until `socket` answers.
async fn start_on(name: &str, cmd: Command, socket: &Path, log: &Path) -> Spawned {
    let mut daemon = Spawned::start(name, cmd, log);
    for _ in 0..100 {
        daemon.assert_running();
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            return daemon;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never listened on {}", socket.display());
}

/// A `GET` straight to the socket, with `headers`; the status and body.
async fn over_socket(socket: &Path, path: &str, headers: &str) -> (u16, String) {
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: authd\r\n{headers}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    (status, answer)
}

/// What bob is granted on `bob/app` when asking through `base`.
async fn bob_granted(base: &str) -> Vec<String> {
    let resp = reqwest::Client::new()
        .get(format!("{base}/auth"))
        .basic_auth("bob", Some("bob-pass"))
        .query(&[
            ("service", SERVICE),
            ("scope", "repository:bob/app:pull,push"),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200, "{base}");
    let body: Value = resp.json().await.unwrap_or_else(|e| panic!("{e}"));
    granted(body["token"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn authd_on_a_unix_socket_behind_nginx_judges_the_clients_address() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    gen_cert(&dir.path().join("certs"), &[]);
    let socket = dir.path().join("run").join("authd.sock");
    std::fs::create_dir(dir.path().join("run")).unwrap_or_else(|e| panic!("{e}"));
    let mut spec = AuthSpec::standard();
    // bob pushes his own repository only from the IPv6 loopback; pulls from anywhere.
    spec.acl = json!([
        {"match": {"account": "bob", "ip": "::1/128", "name": "bob/*"}, "actions": ["push", "pull"]},
        {"match": {"account": "bob"}, "actions": ["pull"]},
    ]);
    let cmd = authd_on(dir.path(), &dir.path().join("certs"), &socket, &spec);
    let mut authd = start_on("authd", cmd, &socket, &dir.path().join("authd.log")).await;
    let nginx = Nginx::start(&format!(
        "    location / {{\n      proxy_pass http://unix:{}:;\n      \
         proxy_set_header X-Real-IP $remote_addr;\n    }}",
        socket.display()
    ))
    .await;

    assert_eq!(
        bob_granted(&nginx.url(true)).await,
        ["repository:bob/app:pull,push"]
    );
    assert_eq!(
        bob_granted(&nginx.url(false)).await,
        ["repository:bob/app:pull"],
        "the ip rule matched the proxy, not the client"
    );

    // Straight to the socket: the header decides, and without it nothing is issued.
    let token_path = format!("/auth?service={SERVICE}&scope=repository:public/x:pull");
    let (status, body) = over_socket(&socket, &token_path, "").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("x-real-ip header: absent"), "{body}");
    let (status, body) = over_socket(&socket, &token_path, "X-Real-IP: 192.0.2.9\r\n").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = over_socket(&socket, "/healthz", "").await;
    assert_eq!(status, 200, "health checks need no client address");

    // A second authd on the same live socket stops at start, and the first keeps serving.
    let mut second = start_second(dir.path(), &socket, &spec).await;
    let status = second.stop();
    assert!(
        second.log_text().contains("another process is listening"),
        "{}",
        second.log_text()
    );
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    assert_eq!(
        bob_granted(&nginx.url(true)).await,
        ["repository:bob/app:pull,push"]
    );

    let status = authd.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(!socket.exists(), "the socket file outlived authd");
}

/// A second authd configured with the same socket, once it has said why it cannot bind.
async fn start_second(dir: &Path, socket: &Path, spec: &AuthSpec) -> Spawned {
    let other = dir.join("second");
    std::fs::create_dir(&other).unwrap_or_else(|e| panic!("{e}"));
    let cmd = authd_on(&other, &dir.join("certs"), socket, spec);
    let second = Spawned::start("second authd", cmd, &other.join("authd.log"));
    for _ in 0..100 {
        if second.log_text().contains("binding") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second
}

#[tokio::test]
async fn registryd_on_a_unix_socket_behind_nginx_takes_and_gives_images() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let socket = dir.path().join("registryd.sock");
    let config = dir.path().join("registry.yaml");
    std::fs::write(
        &config,
        "http: {addr: ./registryd.sock, net: unix}\n\
         storage: {filesystem: {rootdirectory: ./data}, delete: {enabled: true}}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(binary("registryd"));
    cmd.arg("--config").arg(&config).env("RUST_LOG", "info");
    let log = dir.path().join("registryd.log");
    let mut registryd = start_on("registryd", cmd, &socket, &log).await;
    let nginx = Nginx::start(&format!(
        "    client_max_body_size 0;\n    proxy_request_buffering off;\n    \
         location /v2/ {{\n      proxy_pass http://unix:{}:;\n      \
         proxy_set_header Host $http_host;\n    }}",
        socket.display()
    ))
    .await;

    let image = Image::oci_gzip("amd64", 3);
    let mut source = OciLayout::create(&dir.path().join("in"));
    source.add_image(&image);
    source.tag(&image.manifest, "v1");
    let remote = format!("docker://127.0.0.1:{}/team/app:v1", nginx.port);
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        &source.reference("v1"),
        &remote,
    ]);
    let out = dir.path().join("out");
    let back = OciLayout::create(&out);
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &remote,
        &back.reference("v1"),
    ]);
    for blob in image.layers.iter().chain([&image.config]) {
        assert_eq!(
            read_blob(&out, &blob.digest).as_deref(),
            Some(&blob.bytes[..]),
            "{} came back different",
            blob.digest
        );
    }

    let status = registryd.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(!socket.exists(), "the socket file outlived registryd");
    assert!(
        registryd
            .log_text()
            .lines()
            .any(|l| l.contains("listening on unix:/") && l.contains("registryd.sock")),
        "{}",
        registryd.log_text()
    );
}
