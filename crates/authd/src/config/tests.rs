//! Loading auth.yaml: docker_auth's forms accepted, relative paths, and every refusal naming
//! the file, the line (when the parser knows it) and the reason.

use std::path::Path;
use std::time::Duration;

use super::load;
use crate::certs::{generate, CertRequest};

fn dir_with_certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let req = CertRequest {
        out: dir.path().join("certs"),
        dns: vec![],
        ips: vec![],
        force: false,
        rsa: false,
    };
    generate(&req).unwrap_or_else(|e| panic!("{e}"));
    dir
}

const GOOD: &str = r#"
server:
  addr: ":5001"
token:
  issuer: berth-auth
  expiration: 900
  certificate: certs/token.crt
  key: certs/token.key
users:
  "": {}
acl:
  - match: {account: ""}
    actions: [pull]
    comment: anonymous pulls
"#;

fn load_text(dir: &Path, text: &str) -> Result<super::Config, String> {
    let path = dir.join("auth.yaml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    load(&path).map_err(|e| e.to_string())
}

#[test]
fn reads_a_docker_auth_style_file_with_relative_paths() {
    let dir = dir_with_certs();
    let config = load_text(dir.path(), GOOD).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.addr.to_string(),
        "[::]:5001",
        ":5001 is every interface, IPv6 included"
    );
    assert_eq!(config.token.ttl.as_secs(), 900);
    assert_eq!(
        config.token.refresh_ttl.as_secs(),
        90 * 24 * 3600,
        "refresh tokens last 90 days unless told"
    );
    assert!(config.tls.is_none() && config.real_ip.is_none() && config.token.services.is_none());
    let socket = GOOD.replace(
        "  addr: \":5001\"",
        "  addr: ./run/authd.sock\n  net: unix\n  real_ip_header: X-Real-IP",
    );
    let config = load_text(dir.path(), &socket).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.addr,
        server::ListenOn::Unix(dir.path().join("./run/authd.sock")),
        "a socket path is relative to the file's folder"
    );
    assert_eq!(
        config.files.len(),
        3,
        "auth.yaml, token.crt, token.key are watched"
    );
    assert_eq!(config.throttle, super::raw::RawThrottle::default());
}

#[test]
fn serving_limits_and_the_metrics_address() {
    let dir = dir_with_certs();
    let text = GOOD.replace(
        "  addr: \":5001\"\n",
        "  addr: \":5001\"\n  timeouts: {header: 5s, idle: 1m}\n  max_connections: 10\n  max_header_bytes: 16384\n  debug: {addr: \"127.0.0.1:5003\"}\n",
    );
    let config = load_text(dir.path(), &text).unwrap_or_else(|e| panic!("{e}"));
    let l = config.limits;
    assert_eq!(
        (
            l.timeouts.header,
            l.timeouts.idle,
            l.max_connections,
            l.max_header_bytes
        ),
        (Duration::from_secs(5), Duration::from_secs(60), 10, 16384)
    );
    assert_eq!(l.timeouts.body, server::Timeouts::default().body);
    assert_eq!(config.debug_addr.map(|a| a.port()), Some(5003));
    let plain = load_text(dir.path(), GOOD).unwrap_or_else(|e| panic!("{e}"));
    assert!(plain.debug_addr.is_none());
    assert_eq!(
        plain.limits.max_connections,
        server::limits::DEFAULT_MAX_CONNECTIONS
    );
}

#[test]
fn token_key_falls_back_to_the_server_certificate() {
    let dir = dir_with_certs();
    let text = GOOD
        .replace(
            "  certificate: certs/token.crt\n  key: certs/token.key\n",
            "",
        )
        .replace(
            "  addr: \":5001\"\n",
            "  addr: \"127.0.0.1:5001\"\n  certificate: certs/token.crt\n  key: certs/token.key\n",
        );
    let config = load_text(dir.path(), &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        config.tls.is_some(),
        "the RSA token pair also serves TLS here"
    );
}

#[test]
fn refuses_bad_files_with_file_line_and_reason() {
    let dir = dir_with_certs();
    let table: &[(&str, &str, &[&str])] = &[
        ("  addr: \":5001\"", "  addr: \"nowhere\"", &["server", "not an address:port", "line 3"]),
        ("  expiration: 900", "  expiration: soon", &["token.expiration", "invalid type", "line"]),
        ("  expiration: 900", "  expiration: 0", &["token", "nonzero", "line"]),
        ("  expiration: 900", "  expiration: 900\n  refresh_expiration: 0", &["token.refresh_expiration", "nonzero", "line"]),
        ("  expiration: 900", "  expiration: 900\n  refresh_expiration: 90d", &["token.refresh_expiration", "invalid type", "line"]),
        ("  issuer: berth-auth", "  issuer: \"\"", &["token", "issuer and service names must not be empty", "line"]),
        ("  issuer: berth-auth", "  issuer: berth-auth\n  services: []", &["token", "services: list at least one service", "line"]),
        ("  issuer: berth-auth", "  issuer: berth-auth\n  realm: x", &["unknown field `realm`", "line"]),
        ("users:", "google_oauth: {}\nusers:", &["unknown field `google_oauth`", "line"]),
        ("  \"\": {}", "  \"\": {}\n  eve: {labels: {}}", &["password is required"]),
        ("  \"\": {}", "  \"\": {}\n  eve: {password: \"{SHA}abc\"}", &["users.eve", "not a bcrypt hash", "line 11"]),
        ("  key: certs/token.key", "  key: certs/missing.key", &["certs/missing.key"]),
        ("  key: certs/token.key", "  key: certs/server.key", &["certs/server.key", "private key"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  trusted_proxies: [10.0.0.0/8]", &["needs server.real_ip_header"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  real_ip_header: X-Forwarded-For\n  trusted_proxies: [10.0.0.0/99]", &["not a CIDR", "line"]),
        ("    actions: [pull]", "    actions: [pull]\n  - match: {name: \"/[/\"}\n    actions: []", &["acl[1].match", "invalid regex", "line 14"]),
        ("users:", "htpasswd: {path: nothere}\nusers:", &["nothere"]),
        ("users:", "throttle: {window: 10, burst: 3}\nusers:", &["unknown field `burst`"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  timeouts: {header: 0s}", &["server.timeouts.header", "more than 0s"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  timeouts: {header: soon}", &["not a duration", "line"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  max_connections: 0", &["server", "cap"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  max_header_bytes: 100", &["server", "at least 8192"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  debug: {addr: nowhere}", &["server.debug", "not an address:port", "line"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  letsencrypt:\n    email: a@b.c\n    cache_dir: /x", &["server.letsencrypt", "no outbound network", "certbot", "line 5"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  net: unix", &["server.addr", "give a socket path", ":5001"]),
        ("  addr: \":5001\"", "  addr: ./authd.sock", &["server.addr", "./authd.sock is a socket path", "server.net: unix"]),
        ("  addr: \":5001\"", "  addr: ./authd.sock\n  net: unix", &["server.net: unix needs server.real_ip_header"]),
        ("  addr: \":5001\"", "  addr: ./authd.sock\n  net: unix\n  real_ip_header: X-Real-IP\n  trusted_proxies: [127.0.0.1/32]", &["trusted_proxies", "every peer is the proxy"]),
        ("  addr: \":5001\"", "  addr: authd.sock\n  net: unix", &["not an address:port", "socket path", "line 3"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  debug: {addr: ./metrics.sock}", &["server.debug.addr", "host:port"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  net: udp", &["server.net", "must be tcp or unix", "line"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  path_prefix: auth", &["server.path_prefix", "absolute path", "line"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  path_prefix: \"/a/{x}\"", &["server.path_prefix", "segments", "line"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  tls_min_version: TLS99", &["server.tls_min_version", "not a TLS version", "line"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  tls_cipher_suites:\n    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n    - 0xc014", &["server.tls_cipher_suites", "0xc014", "no CBC", "line"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  tls_cipher_suites: [TLS_RSA_WITH_AES_128_GCM_SHA256]", &["server.tls_cipher_suites", "RSA key exchange", "line"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  tls_curve_preferences: [X25519, P521]", &["server.tls_curve_preferences", "no P521", "line"]),
        ("  addr: \":5001\"", "  addr: \":5001\"\n  tls_curve_preferences: []", &["server.tls_curve_preferences", "at least one curve"]),
    ];
    for (from, to, wants) in table {
        let text = GOOD.replace(from, to);
        assert_ne!(text, GOOD, "{to}");
        match load_text(dir.path(), &text) {
            Ok(_) => panic!("accepted: {to}"),
            Err(e) => {
                assert!(e.contains("auth.yaml") || e.contains("certs/"), "{e}");
                for want in *wants {
                    assert!(e.contains(want), "{to}: {e} lacks {want}");
                }
            }
        }
    }
}

#[test]
fn reads_htpasswd_users_relative_to_the_config() {
    let dir = dir_with_certs();
    let hash = crate::authn::hash_password("pw", 4).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("users.htpasswd"), format!("carol:{hash}\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let text = GOOD.replace("users:", "htpasswd: {path: users.htpasswd}\nusers:");
    let config = load_text(dir.path(), &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.authn.users.get("carol").is_some());
    assert_eq!(config.files.len(), 4);
    std::fs::write(dir.path().join("users.htpasswd"), "carol:$apr1$abc$def\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = load_text(dir.path(), &text).err().unwrap_or_default();
    assert!(
        err.contains("users.htpasswd") && err.contains("line 1") && err.contains("bcrypt"),
        "{err}"
    );
}

#[test]
fn repeated_forwarded_lines_are_one_list_in_order() {
    use axum::http::{HeaderMap, HeaderName, HeaderValue};
    let trusted = crate::acl::matcher::IpRange::try_from("127.0.0.0/8".to_owned());
    let real_ip = |pos| super::RealIp {
        header: HeaderName::from_static("x-forwarded-for"),
        pos,
        trusted: Some(vec![trusted.clone().unwrap_or_else(|e| panic!("{e}"))]),
    };
    let peer = Some(std::net::IpAddr::from([127, 0, 0, 1]));
    let headers = |lines: &[&'static str]| {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append("x-forwarded-for", HeaderValue::from_static(line));
        }
        h
    };
    let table: &[(&[&'static str], i64, &str)] = &[
        (&["10.20.1.1", "192.0.2.7"], -1, "192.0.2.7"),
        (&["10.20.1.1", "192.0.2.7"], 0, "10.20.1.1"),
        (&["10.20.1.1, 10.0.0.2", "192.0.2.7"], -2, "10.0.0.2"),
        (&["10.20.1.1", "192.0.2.7, 198.51.100.1"], 1, "192.0.2.7"),
        (&["10.20.1.1", "192.0.2.7"], -9, "10.20.1.1"),
        (&["::1"], 0, "::1"),
        // docker_auth refuses these rather than judging the proxy's own address.
        (&["10.20.1.1", "192.0.2.7"], 9, "no entry at position 9"),
        (
            &["10.20.1.1", "not an address"],
            -1,
            "\"not an address\" is not an address",
        ),
        (&["10.20.1.1, "], -1, "\"\" is not an address"),
        (&["10.20.1.1:1234"], -1, "10.20.1.1"),
        (&["[fd00::7]:443"], -1, "fd00::7"),
        (&["::ffff:10.1.2.3"], -1, "10.1.2.3"),
        (&["10.20.1.1:http"], -1, "is not an address"),
        (&[], -1, "absent"),
    ];
    for (lines, pos, want) in table {
        let got = match real_ip(*pos).client_ip(peer, &headers(lines)) {
            Ok(ip) => ip.to_string(),
            Err(e) => {
                assert!(e.to_string().contains("must be present"), "{e}");
                assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
                e.to_string()
            }
        };
        assert!(got.contains(want), "{lines:?} at {pos}: {got}");
    }
    let mut opaque = headers(&["10.20.1.1"]);
    opaque.append(
        "x-forwarded-for",
        HeaderValue::from_bytes(b"192.0.2.7\xff").unwrap_or_else(|e| panic!("{e}")),
    );
    let err = real_ip(-1).client_ip(peer, &opaque).err();
    assert!(err.is_some_and(|e| e.to_string().contains("not text")));
    // A peer outside trusted_proxies keeps its own address, header or not.
    let outsider = std::net::IpAddr::from([192, 0, 2, 1]);
    for lines in [&[][..], &["10.1.1.1"], &["junk"]] {
        let got = real_ip(-1).client_ip(Some(outsider), &headers(lines)).ok();
        assert_eq!(got, Some(outsider), "{lines:?}");
    }
    // A Unix socket peer is the proxy: the header decides, and without it the request is refused.
    let through_socket = real_ip(-1).client_ip(None, &headers(&["192.0.2.7"])).ok();
    assert_eq!(through_socket, Some(std::net::IpAddr::from([192, 0, 2, 7])));
    let bare = real_ip(-1).client_ip(None, &headers(&[])).err();
    assert!(bare.is_some_and(|e| e.to_string().contains("must be present")));
}

#[test]
fn reads_docker_auths_remaining_server_keys() {
    let dir = dir_with_certs();
    let text = GOOD.replace(
        "  addr: \":5001\"\n",
        "  addr: \":5001\"\n  net: tcp\n  path_prefix: /registry-auth/\n  hsts: true\n  \
         tls_min_version: TLS13\n  tls_cipher_suites: [TLS_AES_256_GCM_SHA384, 0x1301]\n  \
         tls_curve_preferences: [P384, 29]\n",
    );
    let config = load_text(dir.path(), &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.path_prefix, "/registry-auth");
    assert!(config.hsts);
    assert_eq!(config.tls_policy.versions, [&rustls::version::TLS13]);
    assert_eq!(config.tls_policy.provider.cipher_suites.len(), 2);
    assert_eq!(config.tls_policy.provider.kx_groups.len(), 2);
    let plain = load_text(dir.path(), GOOD).unwrap_or_else(|e| panic!("{e}"));
    assert!(plain.path_prefix.is_empty() && !plain.hsts);
    assert_eq!(plain.tls_policy.versions.len(), 2);
    let floor = GOOD.replace(
        "  addr: \":5001\"\n",
        "  addr: \":5001\"\n  tls_min_version: TLS10\n",
    );
    let config = load_text(dir.path(), &floor).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.tls_policy.versions.len(),
        2,
        "TLS 1.0 asked: 1.2 and 1.3"
    );
}

#[test]
fn docker_auth_sections_authd_lacks_are_refused_with_their_line_and_what_to_use() {
    let dir = dir_with_certs();
    let sections = [
        ("google_auth", "ext_auth"),
        ("github_auth", "ext_auth"),
        ("oidc_auth", "ext_auth"),
        ("gitlab_auth", "ext_auth"),
        ("mongo_auth", "htpasswd"),
        ("xorm_auth", "htpasswd"),
        ("plugin_authn", "ext_auth"),
        ("acl_mongo", "ext_authz"),
        ("acl_xorm", "ext_authz"),
        ("casbin_authz", "ext_authz"),
        ("plugin_authz", "ext_authz"),
    ];
    let lines = GOOD.lines().count();
    for (section, instead) in sections {
        for body in ["\n  some_key: x\n  other: [1, 2]", " {}", " [a]", " text"] {
            let text = format!("{GOOD}{section}:{body}\n");
            let e = load_text(dir.path(), &text).err().unwrap_or_default();
            let first_line = if body.starts_with('\n') {
                lines + 2
            } else {
                lines + 1
            };
            for want in [
                format!("{section} is not supported by authd: "),
                instead.to_owned(),
                format!("line {first_line} "),
            ] {
                assert!(e.contains(&want), "{section}:{body}: {e:?} lacks {want:?}");
            }
        }
        // Empty (null) is no section, as docker_auth reads it.
        let text = format!("{GOOD}{section}:\n");
        assert!(load_text(dir.path(), &text).is_ok(), "{section}: (null)");
    }
}
