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

#[tokio::test]
async fn the_every_interface_form_serves_ipv4_and_ipv6_clients_and_ip_rules_see_them() {
    let acl = "  - match: {ip: \"::1\"}\n    actions: [push]\n  - match: {ip: 127.0.0.1}\n    actions: [pull]\n";
    let config = yaml(acl, "").replace("  addr: \"127.0.0.1:0\"\n", "  addr: \":0\"\n");
    let authd = crate::process::serve(&config);
    let port = authd.url.rsplit(':').next().unwrap_or_default().to_owned();
    assert!(
        authd.url.contains("[::]"),
        "bound dual-stack: {}",
        authd.url
    );
    for (host, want) in [
        ("127.0.0.1", "repository:x:pull"),
        ("[::1]", "repository:x:push"),
    ] {
        let req = reqwest::Client::new()
            .get(format!("http://{host}:{port}/auth"))
            .basic_auth("bob", Some("bob-pass"))
            .query(&[("service", SERVICE), ("scope", "repository:x:pull,push")]);
        let (status, body, _) = crate::harness::respond(req).await;
        assert_eq!(
            (status, crate::harness::granted(&body)),
            (200, vec![want.to_owned()]),
            "from {host}"
        );
    }
}

#[tokio::test]
async fn tls_min_version_hsts_and_path_prefix_as_docker_auth_reads_them() {
    let dir = certs().display().to_string();
    let config = yaml(STANDARD_ACL, "").replace(
        "  addr: \"127.0.0.1:0\"\n",
        &format!(
            "  addr: \"127.0.0.1:0\"\n  certificate: {dir}/server.crt\n  key: {dir}/server.key\n  \
             tls_min_version: TLS13\n  hsts: true\n  path_prefix: /registry-auth\n"
        ),
    );
    let authd = Authd::start(&config).await;
    let ca = std::fs::read(certs().join("ca.crt")).unwrap_or_else(|e| panic!("{e}"));
    let client = |max: Option<reqwest::tls::Version>| {
        let ca = reqwest::Certificate::from_pem(&ca).unwrap_or_else(|e| panic!("{e}"));
        let mut builder = reqwest::Client::builder().add_root_certificate(ca);
        if let Some(v) = max {
            builder = builder.max_tls_version(v);
        }
        builder.build().unwrap_or_else(|e| panic!("{e}"))
    };
    let tls12 = client(Some(reqwest::tls::Version::TLS_1_2))
        .get(format!("{}/healthz", authd.url))
        .send()
        .await;
    assert!(tls12.is_err(), "a TLS 1.2 client must fail the handshake");
    let modern = client(None);
    for (path, want) in [
        ("/registry-auth/auth", 200),
        ("/registry-auth/auth/token", 200),
        ("/auth", 404),
        ("/registry-auth", 404),
    ] {
        let req = modern
            .get(format!("{}{path}", authd.url))
            .basic_auth("alice", Some("alice-pass"))
            .query(&[("service", SERVICE)]);
        let (status, body, headers) = crate::harness::respond(req).await;
        assert_eq!(status, want, "{path}: {body}");
        assert_eq!(
            headers
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=63072000; includeSubDomains"),
            "{path}"
        );
    }
}
