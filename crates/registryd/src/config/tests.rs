//! Tests of `registry.yaml` parsing: registry:2's keys, defaults, durations, and refusals.

use super::*;

const FULL: &str = r#"
http:
  addr: "127.0.0.1:5000"
  tls: {certificate: certs/server.crt, key: /abs/server.key}
storage:
  filesystem: {rootdirectory: ./data}
  delete: {enabled: true}
auth:
  token:
    realm: http://127.0.0.1:5001/auth
    service: registry
    issuer: berth-auth
    rootcertbundle: certs/token.crt
"#;

#[test]
fn parses_registry2_keys_and_resolves_relative_paths() {
    let cfg = Config::parse(FULL, Path::new("/etc/berth")).unwrap();
    assert_eq!(
        cfg.listen_on().unwrap(),
        server::ListenOn::Tcp("127.0.0.1:5000".parse().unwrap())
    );
    assert_eq!(
        cfg.storage.filesystem.unwrap().rootdirectory,
        Path::new("/etc/berth/./data")
    );
    assert!(cfg.storage.delete.enabled);
    let tls = cfg.http.tls.unwrap();
    assert_eq!(tls.certificate, Path::new("/etc/berth/certs/server.crt"));
    assert_eq!(tls.key, Path::new("/abs/server.key"));
    match cfg.auth {
        Some(Auth::Token(t)) => {
            assert_eq!(t.service, "registry");
            assert_eq!(t.rootcertbundle, Path::new("/etc/berth/certs/token.crt"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn minimal_config_is_open_with_deletes_off() {
    let cfg = Config::parse(
        "http: {addr: \":5000\"}\nstorage: {filesystem: {rootdirectory: /d}}\n",
        Path::new("/"),
    )
    .unwrap();
    assert!(cfg.auth.is_none());
    assert!(!cfg.storage.delete.enabled);
    assert!(
        matches!(cfg.listen_on().unwrap(), server::ListenOn::Tcp(a) if a.ip().is_unspecified())
    );
}

#[test]
fn a_unix_socket_is_a_path_relative_to_the_file() {
    let storage = "storage: {filesystem: {rootdirectory: /d}}\n";
    let cfg = Config::parse(
        &format!("http: {{addr: run/registryd.sock, net: unix}}\n{storage}"),
        Path::new("/etc/berth"),
    )
    .unwrap();
    assert_eq!(
        cfg.listen_on().unwrap(),
        server::ListenOn::Unix("/etc/berth/run/registryd.sock".into())
    );
    for (http, want) in [
        (
            "{addr: run/registryd.sock}",
            "or a socket path with http.net: unix",
        ),
        ("{addr: \":5000\", net: udp}", "unknown variant `udp`"),
        ("{addr: run/, net: unix}", "is a folder"),
    ] {
        let err = Config::parse(&format!("http: {http}\n{storage}"), Path::new("/etc"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{http}: {err}");
    }
}

#[test]
fn registry2_version_key_is_accepted_only_as_0_1() {
    let body = "http: {addr: \":5000\"}\nstorage: {filesystem: {rootdirectory: /d}}\n";
    for ok in ["version: 0.1\n", "version: \"0.1\"\n"] {
        assert!(
            Config::parse(&format!("{ok}{body}"), Path::new("/")).is_ok(),
            "{ok}"
        );
    }
    let bad = Config::parse(&format!("version: 0.2\n{body}"), Path::new("/"));
    assert!(matches!(bad, Err(Error::Config(m)) if m.contains("version")));
}

#[test]
fn htpasswd_section_parses() {
    let text = "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}}\nauth: {htpasswd: {realm: r, path: h}}\n";
    let cfg = Config::parse(text, Path::new("/c")).unwrap();
    assert!(matches!(cfg.auth, Some(Auth::Htpasswd(h)) if h.path == Path::new("/c/h")));
}

#[test]
fn upload_purging_defaults_and_go_durations() {
    let cfg = Config::parse(
        "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}}\n",
        Path::new("/"),
    )
    .unwrap();
    let p = cfg.storage.maintenance.uploadpurging;
    assert!(p.enabled && !p.dryrun);
    assert_eq!(p.age, Duration::from_secs(2 * 3600));
    let limits = &cfg.storage.uploadlimits;
    assert_eq!((limits.perrepository, limits.persubject), (256, 1024));
    let text = "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}, maintenance: {uploadpurging: {age: 2h, interval: 10m, dryrun: true}}}\n";
    let p = Config::parse(text, Path::new("/"))
        .unwrap()
        .storage
        .maintenance
        .uploadpurging;
    assert_eq!(
        (p.age, p.interval, p.dryrun),
        (Duration::from_secs(7200), Duration::from_secs(600), true)
    );
    let text = "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}, uploadlimits: {perrepository: 3}}\n";
    let limits = Config::parse(text, Path::new("/"))
        .unwrap()
        .storage
        .uploadlimits;
    assert_eq!((limits.perrepository, limits.persubject), (3, 1024));
    let bad = "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}, maintenance: {uploadpurging: {age: forever}}}\n";
    assert!(Config::parse(bad, Path::new("/")).is_err());
}

#[test]
fn gc_keys_default_to_a_day_of_grace_and_parse_durations() {
    let base = "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}";
    let gc = Config::parse(&format!("{base}}}\n"), Path::new("/"))
        .unwrap()
        .storage
        .maintenance
        .gc;
    assert!(gc.enabled && !gc.delete_untagged);
    assert_eq!(gc.grace, Duration::from_secs(24 * 3600));
    let text = format!("{base}, maintenance: {{gc: {{grace: 90s, delete_untagged: true}}}}}}\n");
    let gc = Config::parse(&text, Path::new("/"))
        .unwrap()
        .storage
        .maintenance
        .gc;
    assert_eq!(
        (gc.grace, gc.delete_untagged),
        (Duration::from_secs(90), true)
    );
    let bad = format!("{base}, maintenance: {{gc: {{grace: soon}}}}}}\n");
    assert!(Config::parse(&bad, Path::new("/")).is_err());
}

#[test]
fn serving_limits_and_the_debug_address() {
    let with = |http: &str| {
        Config::parse(
                &format!("http: {{addr: \":5000\", {http}}}\nstorage: {{filesystem: {{rootdirectory: d}}}}\n"),
                Path::new("/"),
            )
    };
    let cfg = with("timeouts: {header: 5s, body: 1m}, maxconnections: 10, maxheaderbytes: 16384, debug: {addr: \"127.0.0.1:5001\"}").unwrap();
    let l = cfg.limits().unwrap();
    assert_eq!(
        (
            l.timeouts.header,
            l.timeouts.body,
            l.max_connections,
            l.max_header_bytes
        ),
        (Duration::from_secs(5), Duration::from_secs(60), 10, 16384)
    );
    assert_eq!(l.timeouts.idle, server::Timeouts::default().idle);
    assert_eq!(cfg.debug_addr().unwrap().map(|a| a.port()), Some(5001));
    let plain = with("tls: null").unwrap();
    assert!(plain.debug_addr().unwrap().is_none());
    assert_eq!(
        plain.limits().unwrap().max_connections,
        server::limits::DEFAULT_MAX_CONNECTIONS
    );
    for bad in [
        "timeouts: {header: 0s}",
        "timeouts: {hedaer: 1s}",
        "timeouts: {body: forever}",
        "maxconnections: 0",
        "maxheaderbytes: 100",
        "debug: {addr: nope}",
    ] {
        assert!(matches!(with(bad), Err(Error::Config(_))), "{bad}");
    }
}

#[test]
fn bad_configs_are_refused() {
    for bad in [
            "http: {addr: nope}\nstorage: {filesystem: {rootdirectory: d}}\n",
            "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}}\ntypo: 1\n",
            "http: {addr: \"127.0.0.1:1\"}\n",
            "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}}\nauth: {silly: {}}\n",
            "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}}\nauth: {}\n",
        ] {
            assert!(matches!(Config::parse(bad, Path::new("/")), Err(Error::Config(_))), "{bad}");
        }
}

/// The example file's commented-out `proxy` section, uncommented.
fn example_proxy_section() -> String {
    let example = include_str!("../../../../registry.yaml");
    let start = example
        .find("# proxy:")
        .expect("the example documents proxy");
    example[start..]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_proxy_section_parses() {
    let text = format!(
        "http: {{addr: \"127.0.0.1:1\"}}\nstorage: {{filesystem: {{rootdirectory: d}}}}\n{}",
        example_proxy_section()
    );
    let cfg = Config::parse(&text, Path::new("/etc/berth")).unwrap();
    let p = &cfg.proxy;
    assert_eq!(p.maxsize, Some(20 << 30));
    assert!(!p.allowpush);
    assert_eq!(p.upstreams.len(), 2);
    let hub = &p.upstreams[0];
    assert_eq!(hub.name, "docker.io");
    assert!(hub.default && !p.upstreams[1].default);
    assert_eq!(hub.ttl, Duration::from_secs(600));
    assert_eq!(hub.passwordenv.as_deref(), Some("DOCKERHUB_TOKEN"));
    for bad in [
        "maxsize: lots",
        "maxsize: -5",
        "upstreams: [{name: a}]",
        "upstreams: [{name: a, remoteurl: 'http://x', ttl: soon}]",
        "upstreams: [{name: a, remoteurl: 'http://x', colour: red}]",
    ] {
        let text = format!(
            "http: {{addr: \"127.0.0.1:1\"}}\nstorage: {{filesystem: {{rootdirectory: d}}}}\nproxy: {{{bad}}}\n"
        );
        assert!(
            matches!(Config::parse(&text, Path::new("/")), Err(Error::Config(_))),
            "{bad}"
        );
    }
}

#[test]
fn the_ui_section_has_defaults_and_refuses_unknown_keys() {
    let base = "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}}\n";
    let cfg = Config::parse(base, Path::new("/")).unwrap();
    assert!(cfg.ui.enabled);
    assert_eq!(cfg.ui.sessionlifetime, Duration::from_secs(12 * 3600));
    let cfg = Config::parse(
        &format!("{base}ui: {{enabled: false, sessionlifetime: 30m, tokenurl: 'http://authd:5001/auth'}}\n"),
        Path::new("/"),
    )
    .unwrap();
    assert!(!cfg.ui.enabled);
    assert_eq!(cfg.ui.sessionlifetime, Duration::from_secs(1800));
    assert_eq!(cfg.ui.tokenurl.as_deref(), Some("http://authd:5001/auth"));
    for bad in ["ui: {colour: red}", "ui: {sessionlifetime: soon}"] {
        assert!(
            matches!(
                Config::parse(&format!("{base}{bad}\n"), Path::new("/")),
                Err(Error::Config(_))
            ),
            "{bad}"
        );
    }
}

/// The example's commented `database` section, uncommented.
fn example_database_section() -> String {
    let example = include_str!("../../../../registry.yaml");
    let start = example
        .find("# database:")
        .expect("the example documents database");
    example[start..]
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_database_section_parses_and_the_password_comes_from_the_environment() {
    let base = "http: {addr: \"127.0.0.1:1\"}\nstorage: {filesystem: {rootdirectory: d}}\n";
    let cfg = Config::parse(base, Path::new("/")).unwrap();
    assert!(cfg.database.is_none(), "SQLite unless configured");
    let text = format!("{base}{}", example_database_section());
    let cfg = Config::parse(&text, Path::new("/")).unwrap();
    let db = cfg.database.unwrap();
    assert!(db.enabled);
    assert_eq!(db.server(), "db.example.internal:5432");
    assert_eq!(
        (db.user.as_str(), db.dbname.as_str()),
        ("registry", "registry")
    );
    assert_eq!(db.sslmode, database::SslMode::Prefer);
    assert_eq!(db.password.as_deref(), Some("secret"));
    assert!(!format!("{db:?}").contains("secret"), "never printed");
    std::env::set_var(database::PASSWORD_ENV, "from-env");
    let cfg = Config::parse(&text, Path::new("/")).unwrap();
    std::env::remove_var(database::PASSWORD_ENV);
    assert_eq!(cfg.database.unwrap().password.as_deref(), Some("from-env"));
    let defaults = Config::parse(
        &format!("{base}database: {{enabled: true}}"),
        Path::new("/"),
    )
    .unwrap()
    .database
    .unwrap();
    assert_eq!(defaults.server(), "localhost:5432");
    for bad in [
        "database: {enabled: true, hostname: x}",
        "database: {port: 99999}",
        "database: {sslmode: sometimes}",
        "database: {enabled: maybe}",
    ] {
        assert!(
            matches!(
                Config::parse(&format!("{base}{bad}"), Path::new("/")),
                Err(Error::Config(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn inline_bound_defaults_reads_sizes_and_refuses_more_than_a_mebibyte() {
    let parse = |inline: &str| {
        Config::parse(
            &format!("http: {{addr: \":5000\"}}\nstorage: {{filesystem: {{rootdirectory: /d}}{inline}}}\n"),
            Path::new("/"),
        )
    };
    assert_eq!(parse("").unwrap().storage.inline.max(), 16 * 1024);
    assert_eq!(
        parse(", inline: {maxsize: 64KiB}")
            .unwrap()
            .storage
            .inline
            .max(),
        64 * 1024
    );
    assert_eq!(
        parse(", inline: {maxsize: 0}")
            .unwrap()
            .storage
            .inline
            .max(),
        0
    );
    assert_eq!(
        parse(", inline: {maxsize: 1MiB}")
            .unwrap()
            .storage
            .inline
            .max(),
        1024 * 1024
    );
    for too_big in ["1048577", "2MiB", "18446744073709551615"] {
        let err = parse(&format!(", inline: {{maxsize: {too_big}}}")).unwrap_err();
        assert!(
            err.to_string().contains("storage.inline.maxsize"),
            "{too_big}: {err}"
        );
    }
    assert!(parse(", inline: {maxsize: lots}").is_err());
}

#[test]
fn the_data_directory_may_be_left_out_only_on_s3_and_postgresql() {
    let s3 = "s3: {bucket: b, region: r}";
    let db = "database: {enabled: true}\n";
    let parse = |storage: &str, database: &str| {
        Config::parse(
            &format!("http: {{addr: \"127.0.0.1:1\"}}\nstorage: {{{storage}}}\n{database}"),
            Path::new("/etc/berth"),
        )
    };
    let cfg = parse(s3, db).unwrap();
    assert!(cfg.storage.filesystem.is_none());
    for (storage, database) in [
        ("", ""),
        (s3, ""),
        ("delete: {enabled: true}", db),
        (s3, "database: {enabled: false}\n"),
    ] {
        let err = parse(storage, database).unwrap_err().to_string();
        assert!(
            err.contains("storage.filesystem.rootdirectory is required"),
            "{storage:?} {database:?}: {err}"
        );
    }
}

#[test]
fn the_scaled_deployments_file_parses_with_no_data_directory() {
    let cfg = Config::parse(
        include_str!("../../../../scaled/registry.yaml"),
        Path::new("/etc/berth"),
    )
    .unwrap();
    assert!(cfg.storage.filesystem.is_none());
    assert!(cfg.storage.s3.is_some() && cfg.storage.redirect.disable);
    assert!(cfg.database.is_some_and(|d| d.enabled));
}
