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
