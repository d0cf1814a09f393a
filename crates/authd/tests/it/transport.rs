//! HTTPS with `server.certificate`/`key` from gen-cert, trusted through its CA.

use crate::harness::{certs, yaml, Authd, SERVICE, STANDARD_ACL};

#[tokio::test]
async fn serves_tls_with_the_generated_server_certificate() {
    let dir = certs().display().to_string();
    let config = yaml(STANDARD_ACL, "").replace(
        "  addr: \"127.0.0.1:0\"\n",
        &format!(
            "  addr: \"127.0.0.1:0\"\n  certificate: {dir}/server.crt\n  key: {dir}/server.key\n"
        ),
    );
    let authd = Authd::start(&config).await;
    assert!(authd.url.starts_with("https://"));
    let ca = std::fs::read(certs().join("ca.crt")).unwrap_or_else(|e| panic!("{e}"));
    let ca = reqwest::Certificate::from_pem(&ca).unwrap_or_else(|e| panic!("{e}"));
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let req = client
        .get(authd.auth_url())
        .basic_auth("alice", Some("alice-pass"))
        .query(&[("service", SERVICE)]);
    let (status, body, _) = crate::harness::respond(req).await;
    assert_eq!(status, 200, "{body}");
    let untrusting = reqwest::Client::new().get(authd.auth_url()).send().await;
    assert!(
        untrusting.is_err(),
        "a client without the CA must not connect"
    );
}

#[tokio::test]
async fn a_replaced_server_certificate_is_served_without_restart() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let tls = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for f in ["server.crt", "server.key"] {
        std::fs::copy(certs().join(f), tls.path().join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    let dir = tls.path().display().to_string();
    let config = yaml(STANDARD_ACL, "").replace(
        "  addr: \"127.0.0.1:0\"\n",
        &format!(
            "  addr: \"127.0.0.1:0\"\n  certificate: {dir}/server.crt\n  key: {dir}/server.key\n"
        ),
    );
    let authd = Authd::start(&config).await;
    let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let req = authd::certs::CertRequest {
        out: other.path().to_path_buf(),
        dns: vec![],
        ips: vec![],
        force: false,
        rsa: false,
    };
    authd::certs::generate(&req).unwrap_or_else(|e| panic!("{e}"));
    // A fresh client per request: no pooled connection, no TLS session to resume.
    let connects = |ca_dir: &std::path::Path| {
        let ca = std::fs::read(ca_dir.join("ca.crt")).unwrap_or_else(|e| panic!("{e}"));
        let ca = reqwest::Certificate::from_pem(&ca).unwrap_or_else(|e| panic!("{e}"));
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let health = format!("{}/healthz", authd.url);
        async move { client.get(&health).send().await.is_ok() }
    };
    assert!(connects(certs()).await);
    assert!(!connects(other.path()).await);

    for f in ["server.key", "server.crt"] {
        std::fs::copy(other.path().join(f), tls.path().join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    let switched = crate::harness::eventually(|| connects(other.path())).await;
    assert!(switched, "the new certificate was never served");
    assert!(!connects(certs()).await);
}
