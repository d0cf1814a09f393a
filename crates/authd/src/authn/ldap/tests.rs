//! `ldap_auth` in auth.yaml: docker_auth's example section loads (with the password file
//! watched), and every refusal names the key, the reason and, where the parser knows it, the
//! line. Talking to a real server is tested end to end with slapd (berth-tests `ldap_*`).

use std::path::Path;

use crate::authn::Backend;
use crate::certs::{generate, CertRequest};
use crate::config::{load, Config};

const BASE: &str = r#"
server:
  addr: ":5001"
token:
  issuer: berth-auth
  expiration: 900
  certificate: certs/token.crt
  key: certs/token.key
"#;

fn load_with(dir: &Path, ldap: &str) -> Result<Config, String> {
    if !dir.join("certs/ca.crt").exists() {
        let req = CertRequest {
            out: dir.join("certs"),
            dns: vec![],
            ips: vec![],
            force: false,
            rsa: false,
        };
        generate(&req).unwrap_or_else(|e| panic!("{e}"));
    }
    let path = dir.join("auth.yaml");
    std::fs::write(&path, format!("{BASE}{ldap}")).unwrap_or_else(|e| panic!("{e}"));
    load(&path).map_err(|e| e.to_string())
}

fn described(config: &Config) -> Vec<String> {
    config
        .authn
        .backends
        .iter()
        .filter_map(|b| match b {
            Backend::Ldap(l) => Some(l.describe()),
            Backend::Ext(_) => None,
        })
        .collect()
}

/// docker_auth's `examples/reference.yml` section, with the password file filled in.
const REFERENCE: &str = r#"ldap_auth:
  addr: ldap.example.com:636
  insecure_tls_skip_verify: false
  ca_certificate: certs/ca.crt
  bind_dn: cn=reader,dc=example,dc=com
  bind_password_file: reader.pw
  base: o=example.com
  filter: (&(uid=${account})(objectClass=person))
  labels:
    title:
      attribute: title
    groups:
      attribute: memberOf
      parse_cn: true
      lower_case: true
"#;

#[test]
fn reads_docker_auths_reference_section_and_watches_its_files() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("reader.pw"), "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
    let config = load_with(dir.path(), REFERENCE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        described(&config),
        [
            r#"ldaps://ldap.example.com:636 (base "o=example.com", filter "(&(uid=${account})(objectClass=person))")"#
        ],
        "port 636 without tls: means always, as in docker_auth"
    );
    for watched in ["reader.pw", "ca.crt"] {
        assert!(
            config.files.iter().any(|f| f.ends_with(watched)),
            "{watched} in {:?}",
            config.files
        );
    }
    let starttls = REFERENCE
        .replace("636", "389")
        .replace("  insecure", "  tls: starttls\n  insecure");
    let config = load_with(dir.path(), &starttls).unwrap_or_else(|e| panic!("{e}"));
    assert!(described(&config)[0].starts_with("ldap://ldap.example.com:389 "));
    let as_user = "ldap_auth:\n  addr: \"[::1]:389\"\n  tls: \"\"\n  initial_bind_as_user: true\n  bind_dn: uid=${account},ou=people,dc=x\n  filter: (uid=${account})\n";
    let config = load_with(dir.path(), as_user).unwrap_or_else(|e| panic!("{e}"));
    assert!(described(&config)[0].starts_with("ldap://[::1]:389 "));
}

#[test]
fn refuses_what_cannot_work_naming_key_and_reason() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("reader.pw"), "s3cret").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("empty.pw"), " \n").unwrap_or_else(|e| panic!("{e}"));
    let table: &[(&str, &str, &[&str])] = &[
        (
            "  insecure_tls_skip_verify: false",
            "  tls: ldaps",
            &["not one of none, starttls, always", "line"],
        ),
        (
            "ldap.example.com:636",
            "ldap.example.com",
            &["not host:port", "line"],
        ),
        (
            "ldap.example.com:636",
            "ldap.example.com:0",
            &["not host:port", "line"],
        ),
        (
            "(&(uid=${account})(objectClass=person))",
            "(objectClass=person)",
            &["does not use ${account}", "line"],
        ),
        (
            "(&(uid=${account})(objectClass=person))",
            "(&(uid=${account})",
            &["not an LDAP filter", "line"],
        ),
        (
            "attribute: title",
            "attribute: \"ti(tle\"",
            &["not an LDAP attribute name", "line"],
        ),
        (
            "      attribute: title",
            "      parse_cn: true",
            &["missing field `attribute`", "line"],
        ),
        (
            "  base: o=example.com",
            "  base: o=example.com\n  bind_password: x",
            &["unknown field `bind_password`", "line"],
        ),
        (
            "reader.pw",
            "missing.pw",
            &["ldap_auth.bind_password_file", "missing.pw"],
        ),
        (
            "reader.pw",
            "empty.pw",
            &["ldap_auth.bind_password_file", "empty"],
        ),
        (
            "  bind_password_file: reader.pw\n",
            "",
            &["ldap_auth.bind_dn", "needs bind_password_file"],
        ),
        (
            "  bind_dn: cn=reader,dc=example,dc=com\n",
            "",
            &["ldap_auth.bind_password_file", "needs bind_dn"],
        ),
        (
            "  base:",
            "  initial_bind_as_user: true\n  base:",
            &["ldap_auth.bind_dn", "must use ${account}"],
        ),
        (
            "certs/ca.crt",
            "reader.pw",
            &["ldap_auth.ca_certificate", "no certificate"],
        ),
    ];
    for (from, to, wants) in table {
        assert!(REFERENCE.contains(from), "{from}");
        let text = REFERENCE.replace(from, to);
        let err = match load_with(dir.path(), &text) {
            Ok(_) => panic!("loaded with {to:?}"),
            Err(e) => e,
        };
        for want in *wants {
            assert!(err.contains(want), "{to:?}: {err:?} lacks {want:?}");
        }
    }
}
