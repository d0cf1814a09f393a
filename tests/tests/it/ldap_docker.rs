//! The real Docker client as users of an LDAP directory (`ldap_auth` against slapd): a
//! developer logs in, pushes and pulls; a reader logs in and pulls but may not push; a user of
//! no group pulls nothing; a wrong password fails the login; and the many token requests of a
//! push and a pull cost one bind as the user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::docker::Docker;
use berth_tests::docker_flows::{assert_denied, assert_login_refused, forget, import_tiny};
use berth_tests::slapd::{people, Slapd};
use serde_json::json;

use crate::ldap_tokens::ldap_env;

#[tokio::test]
async fn docker_login_push_pull_as_ldap_users_decided_by_their_groups() {
    let docker = Docker::connect();
    let slapd = Slapd::start(&people());
    let env = ldap_env(&slapd, "none", json!({})).await;
    let host = env.registry_host();
    let image = format!("{host}/dev/app:1");

    assert_login_refused(&docker, &host, "dave", "erin-pass");

    let out = docker.login(&host, "dave", "dave-pass");
    assert!(
        out.success && out.all().contains("Login Succeeded"),
        "{}",
        out.all()
    );
    let dave = people()[0].dn();
    let dave_binds = |s: &Slapd| s.binds_as(&dave);
    let before = dave_binds(&slapd);
    import_tiny(&docker, &image);
    docker.ok(&["push", &image]);
    forget(&docker, &image);
    docker.ok(&["pull", &image]);
    assert_eq!(
        dave_binds(&slapd),
        before,
        "the push and pull were answered from the bind cache"
    );

    docker.ok(&["logout", &host]);
    let out = docker.login(&host, "erin", "erin-pass");
    assert!(out.success, "{}", out.all());
    forget(&docker, &image);
    docker.ok(&["pull", &image]);
    assert_denied(&docker.run(&["push", &image]), "a reader's push");

    docker.ok(&["logout", &host]);
    let out = docker.login(&host, "frank", "frank-pass");
    assert!(out.success, "{}", out.all());
    forget(&docker, &image);
    assert_denied(
        &docker.run(&["pull", &image]),
        "a pull by a user of no group",
    );
}
