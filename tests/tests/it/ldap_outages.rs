//! `ldap_auth` when the directory cannot answer, and over TLS: slapd stopped is 503 with a log
//! line (never a 401, never counted by the lockout) and logins work again once it is back on
//! the same pooled address; `tls: always` and `starttls` with the CA from `authd gen-cert`, and
//! a CA that did not sign slapd's certificate refused (503).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::authd::{gen_cert, Authd};
use berth_tests::slapd::{ldap_spec, people, Slapd};
use serde_json::json;

use crate::ldap_tokens::{answer, ldap_env};

const DEV_APP: &str = "repository:dev/app:pull";

#[tokio::test]
async fn a_stopped_directory_is_503_not_a_denial_and_logins_resume() {
    let mut slapd = Slapd::start(&people());
    let env = ldap_env(&slapd, "none", json!({})).await;
    let ok = (200, "OK".to_string());
    assert_eq!(answer(&env, "dave", "dave-pass", DEV_APP).await, ok);

    slapd.stop();
    // More attempts than the lockout's limit of failures (10 per account): none counts.
    for _ in 0..12 {
        assert_eq!(
            answer(&env, "erin", "erin-pass", DEV_APP).await,
            (503, "UNAVAILABLE".to_string())
        );
    }
    let log = env.authd().daemon.log_text();
    assert!(log.contains("the LDAP server gave no answer"), "{log}");
    // dave's login of a moment ago is still remembered (cache_ttl).
    assert_eq!(answer(&env, "dave", "dave-pass", DEV_APP).await, ok);

    slapd.run();
    // The first request after the restart finds the pooled connection dead and reconnects.
    assert_eq!(answer(&env, "erin", "erin-pass", DEV_APP).await, ok);
    assert_eq!(
        answer(&env, "erin", "wrong", DEV_APP).await,
        (401, "UNAUTHORIZED".to_string())
    );
}

/// authd alone with the LDAP section for `slapd` over `tls`, trusting the CA file `ca`.
async fn authd_over(slapd: &Slapd, tls: &str, ca: &std::path::Path) -> (tempfile::TempDir, Authd) {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gen_cert(&certs, &[]);
    let extra = json!({"ldap_auth": slapd.ldap_auth(tls, ca)});
    let authd = Authd::start_merged(dir.path(), &certs, ldap_spec(), &extra).await;
    (dir, authd)
}

async fn status(authd: &Authd, user: &str, password: &str) -> u16 {
    authd
        .request_token(Some((user, password)), &[DEV_APP])
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn tls_always_and_starttls_trust_the_gen_cert_ca_and_no_other() {
    let slapd = Slapd::start(&people());
    for tls in ["always", "starttls"] {
        let (_dir, authd) = authd_over(&slapd, tls, &slapd.ca()).await;
        assert_eq!(status(&authd, "dave", "dave-pass").await, 200, "tls: {tls}");
        assert_eq!(status(&authd, "dave", "wrong").await, 401, "tls: {tls}");

        let other = tempfile::tempdir().unwrap();
        gen_cert(other.path(), &[]);
        let (_dir, wrong) = authd_over(&slapd, tls, &other.path().join("ca.crt")).await;
        assert_eq!(
            status(&wrong, "dave", "dave-pass").await,
            503,
            "tls: {tls}, wrong CA"
        );
        let log = wrong.daemon.log_text();
        assert!(log.contains("the LDAP server gave no answer"), "{log}");
    }
    let log = slapd.log_text();
    assert!(
        log.contains(&format!("(IP=127.0.0.1:{})", slapd.tls_port)),
        "no ldaps connection:\n{log}"
    );
    assert!(
        log.contains("EXT oid=1.3.6.1.4.1.1466.20037"),
        "no StartTLS:\n{log}"
    );
}
