//! Hot reload: an edit to the running authd's auth.yaml changes the next grant without a
//! restart; a broken edit keeps the last good configuration and shows in /metrics.

use crate::harness::{granted, respond, yaml, Authd, SERVICE};
use crate::process::{sample, serve};

const READ_ONLY: &str = "  - match: {account: bob}\n    actions: [pull]\n";
const READ_WRITE: &str = "  - match: {account: bob}\n    actions: [pull, push]\n";
const RELOADED: &str = "authd_config_reloads_total{result=\"ok\"}";
const REFUSED: &str = "authd_config_reloads_total{result=\"error\"}";

async fn bob_push(url: &str) -> Vec<String> {
    let req = reqwest::Client::new()
        .get(format!("{url}/auth"))
        .basic_auth("bob", Some("bob-pass"))
        .query(&[("service", SERVICE), ("scope", "repository:x:push")]);
    let (status, body, _) = respond(req).await;
    assert_eq!(status, 200, "{body}");
    granted(&body)
}

/// Runs the binary: its `/metrics` count only this test's reloads.
#[tokio::test]
async fn an_acl_edit_applies_and_a_broken_edit_is_refused() {
    let authd = serve(&yaml(READ_ONLY, ""));
    let url = authd.url.as_str();
    assert_eq!(bob_push(url).await, ["repository:x:"]);

    std::fs::write(&authd.config, yaml(READ_WRITE, "")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        crate::harness::eventually(|| async { bob_push(url).await == ["repository:x:push"] }).await,
        "edit not applied"
    );
    assert_eq!(
        (sample(url, RELOADED).await, sample(url, REFUSED).await),
        (Some(1.0), None)
    );
    assert_eq!(sample(url, "authd_config_last_reload_ok").await, Some(1.0));

    let broken =
        yaml(READ_ONLY, "").replace("acl:", "acl:\n  - match: {acount: bob}\n    actions: []");
    std::fs::write(&authd.config, broken).unwrap_or_else(|e| panic!("{e}"));
    let refused =
        crate::harness::eventually(|| async { sample(url, REFUSED).await == Some(1.0) }).await;
    assert!(refused, "broken edit not seen in /metrics");
    assert_eq!(sample(url, "authd_config_last_reload_ok").await, Some(0.0));
    assert_eq!(
        bob_push(url).await,
        ["repository:x:push"],
        "last good config must keep serving"
    );
    let error = authd::config::load(&authd.config)
        .map(drop)
        .map_err(|e| e.to_string());
    assert!(
        error
            .as_ref()
            .is_err_and(|e| e.contains("unknown field `acount`") && e.contains("line")),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_htpasswd_edit_applies_without_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("users.htpasswd");
    std::fs::write(&file, format!("carol:{}\n", crate::harness::hash("one")))
        .unwrap_or_else(|e| panic!("{e}"));
    // No lockout: the polling below fails with the new password until the reload.
    let extra = format!(
        "htpasswd: {{path: {}}}\nthrottle: {{account_failures: 0, ip_failures: 0}}",
        file.display()
    );
    let authd = Authd::start(&yaml(READ_ONLY, &extra)).await;
    let status = |password: &'static str| {
        let authd = &authd;
        async move {
            authd
                .get(Some(("carol", password)), &[("service", SERVICE)])
                .await
                .0
        }
    };
    assert_eq!((status("one").await, status("two").await), (200, 401));
    std::fs::write(&file, format!("carol:{}\n", crate::harness::hash("two")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        crate::harness::eventually(|| async { status("two").await == 200 }).await,
        "new password never accepted"
    );
    assert_eq!(
        status("one").await,
        401,
        "the old password (cached before) must stop working"
    );
}

/// The `kid` in a JWT's header.
fn kid(jwt: &str) -> String {
    use base64::Engine;
    let head = jwt.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .unwrap_or_default();
    let header: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    header["kid"].as_str().unwrap_or_default().to_owned()
}

/// A verifier as registryd builds one from `auth.token.rootcertbundle` (read at its start).
fn verifier(bundle: &[u8]) -> token::Verifier {
    token::Verifier::from_bundle_pem(bundle, crate::harness::ISSUER, SERVICE)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_replaced_signing_key_signs_the_next_tokens_and_a_broken_one_is_refused() {
    let keys = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for f in ["token.crt", "token.key"] {
        std::fs::copy(crate::harness::certs().join(f), keys.path().join(f))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let dir = keys.path().display().to_string();
    let old_dir = crate::harness::certs().display().to_string();
    let config = yaml(crate::harness::STANDARD_ACL, "")
        .replace(&format!("{old_dir}/token."), &format!("{dir}/token."));
    let authd = Authd::start(&config).await;
    let alice_token = || async {
        let (status, body, _) = authd
            .get(
                Some(("alice", "alice-pass")),
                &[("service", SERVICE), ("scope", "repository:alice/app:pull")],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap_or_default().to_owned()
    };
    let old_cert = std::fs::read(keys.path().join("token.crt")).unwrap_or_default();
    let first = alice_token().await;
    let old_kid = kid(&first);
    assert!(verifier(&old_cert).verify(&first).is_ok());

    // A new key pair (RSA this time) written over the files while authd runs.
    let fresh = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    authd::certs::generate(&authd::certs::CertRequest {
        out: fresh.path().to_path_buf(),
        dns: vec![],
        ips: vec![],
        force: false,
        rsa: true,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let new_cert = std::fs::read(fresh.path().join("token.crt")).unwrap_or_default();
    for f in ["token.key", "token.crt"] {
        std::fs::copy(fresh.path().join(f), keys.path().join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    let switched =
        crate::harness::eventually(|| async { kid(&alice_token().await) != old_kid }).await;
    assert!(switched, "the new signing key was never used");
    let second = alice_token().await;
    let new_kid = kid(&second);
    // A registry trusting only the old certificate refuses the new tokens (registryd reads its
    // rootcertbundle at start: a rotation puts both certificates in the bundle first).
    assert!(verifier(&old_cert).verify(&second).is_err());
    assert!(verifier(&new_cert).verify(&second).is_ok());
    let both = [old_cert.clone(), new_cert.clone()].concat();
    assert!(verifier(&both).verify(&first).is_ok() && verifier(&both).verify(&second).is_ok());

    // A broken key file: the reload is refused and the last good key keeps signing.
    std::fs::write(
        keys.path().join("token.key"),
        "-----BEGIN PRIVATE KEY-----\nnope\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let refused = authd::reload::reload(&authd.app).map_err(|e| e.to_string());
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("token.key")),
        "{refused:?}"
    );
    let third = alice_token().await;
    assert_eq!(kid(&third), new_kid);
    assert!(verifier(&new_cert).verify(&third).is_ok());
}
