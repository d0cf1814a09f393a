//! Table tests of ACL matching: every field, globs, regex, placeholders, captures, first match,
//! IP ranges (v4 and v6) and labels.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{Acl, Request, Rule};

fn acl(yaml: &str) -> Acl {
    match serde_yaml::from_str::<Vec<Rule>>(yaml) {
        Ok(rules) => Acl::new(rules),
        Err(e) => panic!("{yaml}: {e}"),
    }
}

struct Case<'a> {
    account: &'a str,
    labels: &'a [(&'a str, &'a [&'a str])],
    scope: &'a str,
    service: &'a str,
    ip: &'a str,
}

fn case(account: &'static str, scope: &'static str) -> Case<'static> {
    Case {
        account,
        labels: &[],
        scope,
        service: "registry",
        ip: "127.0.0.1",
    }
}

fn decide(acl: &Acl, c: &Case<'_>) -> (Option<usize>, String) {
    let labels: BTreeMap<String, Vec<String>> = c
        .labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
        .collect();
    let (kind, rest) = c.scope.split_once(':').unwrap_or_default();
    let (name, actions) = rest.rsplit_once(':').unwrap_or_default();
    let requested: Vec<String> = actions.split(',').map(str::to_owned).collect();
    let req = Request {
        account: c.account,
        labels: &labels,
        kind,
        name,
        service: c.service,
        ip: c.ip.parse::<IpAddr>().ok(),
    };
    let d = acl.decide(&req, &requested);
    (d.rule, d.actions.join(","))
}

#[test]
fn first_matching_rule_decides_and_intersects() {
    let acl = acl(r#"
- match: {account: admin}
  actions: ["*"]
- match: {account: alice, name: "alice/*"}
  actions: [pull, push]
- match: {account: alice, name: "secret/*"}
  actions: []
- match: {account: "/.+/"}
  actions: [pull]
"#);
    let table = [
        (
            case("admin", "repository:any/thing:pull,push,delete"),
            Some(0),
            "delete,pull,push",
        ),
        (
            case("alice", "repository:alice/app:pull,push,delete"),
            Some(1),
            "pull,push",
        ),
        (case("alice", "repository:alice/app/deep:push"), Some(3), ""),
        (case("alice", "repository:secret/x:pull"), Some(2), ""),
        (case("alice", "repository:other:pull,push"), Some(3), "pull"),
        (case("", "repository:other:pull"), None, ""),
        (
            case("alice", "repository:alice/app:*"),
            Some(1),
            "pull,push",
        ),
        (case("admin", "registry:catalog:*"), Some(0), "*"),
    ];
    for (c, rule, actions) in table {
        assert_eq!(
            decide(&acl, &c),
            (rule, actions.to_owned()),
            "{} {}",
            c.account,
            c.scope
        );
    }
}

#[test]
fn globs_stay_within_a_segment_and_double_star_crosses() {
    let acl = acl(r#"
- match: {name: "one/*"}
  actions: [a]
- match: {name: "two/**"}
  actions: [b]
- match: {name: "t?ree"}
  actions: [c]
- match: {name: ""}
  actions: [d]
"#);
    let table = [
        ("repository:one/x:a,b", Some(0), "a"),
        ("repository:one/x/y:a,b", None, ""),
        ("repository:two/x/y/z:a,b", Some(1), "b"),
        ("repository:three:c", Some(2), "c"),
        ("repository:th/ree:c", None, ""),
    ];
    for (scope, rule, actions) in table {
        assert_eq!(
            decide(&acl, &case("u", scope)),
            (rule, actions.to_owned()),
            "{scope}"
        );
    }
}

#[test]
fn every_field_is_anded_type_service_and_ip() {
    let acl = acl(r#"
- match: {type: registry, name: catalog, account: ops}
  actions: ["*"]
- match: {service: "internal", ip: "10.0.0.0/8"}
  actions: [pull]
- match: {ip: "fd00::/8"}
  actions: [push]
- match: {ip: "192.168.1.7"}
  actions: [delete]
"#);
    let mut c = case("ops", "registry:catalog:*");
    assert_eq!(decide(&acl, &c), (Some(0), "*".into()));
    c.account = "dev";
    assert_eq!(decide(&acl, &c), (None, String::new()));
    let table = [
        ("internal", "10.1.2.3", Some(1), "pull"),
        ("registry", "10.1.2.3", None, ""),
        ("internal", "::ffff:10.9.9.9", Some(1), "pull"),
        ("internal", "11.0.0.1", None, ""),
        ("registry", "fd12::1", Some(2), "push"),
        ("registry", "fe80::1", None, ""),
        ("registry", "192.168.1.7", Some(3), "delete"),
        ("registry", "192.168.1.8", None, ""),
    ];
    for (service, ip, rule, actions) in table {
        let c = Case {
            service,
            ip,
            ..case("dev", "repository:x:pull,push,delete")
        };
        assert_eq!(
            decide(&acl, &c),
            (rule, actions.to_owned()),
            "{service} {ip}"
        );
    }
}

#[test]
fn regexes_are_unanchored_and_placeholders_literal() {
    let acl = acl(r#"
- match: {name: "/^lib/"}
  actions: [a]
- match: {account: "/.+/", name: "${account}/*"}
  actions: [b]
- match: {name: "/^${account}-[0-9]+$/"}
  actions: [c]
- match: {name: "/mid/"}
  actions: [d]
"#);
    let table = [
        ("alice", "repository:library/x:a", Some(0), "a"),
        ("alice", "repository:alice/app:b", Some(1), "b"),
        ("a.c", "repository:a.c/app:b", Some(1), "b"),
        ("a.c", "repository:abc/app:b", None, ""),
        ("a*", "repository:a*/x:b", Some(1), "b"),
        ("a*", "repository:ab/x:b", None, ""),
        ("a.b", "repository:a.b-42:c", Some(2), "c"),
        ("a.b", "repository:axb-42:c", None, ""),
        ("u", "repository:x/middle/y:d", Some(3), "d"),
        ("", "repository:/app:b", None, ""),
    ];
    for (account, scope, rule, actions) in table {
        assert_eq!(
            decide(&acl, &case(account, scope)),
            (rule, actions.to_owned()),
            "{account} {scope}"
        );
    }
}

#[test]
fn capture_groups_of_a_fields_own_regex() {
    let acl = acl(r#"
- match: {account: "/^(.+)@corp\\.com$/", name: "${account:1}/*"}
  actions: [pull, push]
- match: {name: "/^team-([a-z]+)/.*$/", account: "${name:1}-bot"}
  actions: [pull]
"#);
    let table = [
        ("jo@corp.com", "repository:jo/app:push", Some(0), "push"),
        ("jo@corp.com", "repository:al/app:push", None, ""),
        ("jo@other.com", "repository:jo/app:push", None, ""),
        ("web-bot", "repository:team-web/app:pull", Some(1), "pull"),
        ("db-bot", "repository:team-web/app:pull", None, ""),
    ];
    for (account, scope, rule, actions) in table {
        assert_eq!(
            decide(&acl, &case(account, scope)),
            (rule, actions.to_owned()),
            "{account} {scope}"
        );
    }
}

#[test]
fn labels_match_some_value_and_placeholders_try_every_combination() {
    let acl = acl(r#"
- match: {labels: {group: "readers"}}
  actions: [pull]
- match: {name: "${labels:project}/${labels:env}/*"}
  actions: [push]
- match: {labels: {group: "/^admin/"}}
  actions: ["*"]
"#);
    let reader: &[(&str, &[&str])] = &[("group", &["staff", "readers"])];
    let dev: &[(&str, &[&str])] = &[("project", &["web", "api"]), ("env", &["dev", "test"])];
    let admin: &[(&str, &[&str])] = &[("group", &["administrators"])];
    let table = [
        (reader, "repository:x:pull,push", Some(0), "pull"),
        (dev, "repository:api/test/x:push", Some(1), "push"),
        (dev, "repository:web/dev/x:push", Some(1), "push"),
        (dev, "repository:web/prod/x:push", None, ""),
        (admin, "repository:x:delete", Some(2), "delete"),
        (&[][..], "repository:x:pull", None, ""),
    ];
    for (labels, scope, rule, actions) in table {
        let c = Case {
            labels,
            ..case("u", scope)
        };
        assert_eq!(
            decide(&acl, &c),
            (rule, actions.to_owned()),
            "{labels:?} {scope}"
        );
    }
}

#[test]
fn refuses_bad_rules_with_the_location() {
    let table = [
        ("- match: {nme: x}\n  actions: []\n", "unknown field `nme`"),
        ("- match: {name: \"/(/\"}\n  actions: []\n", "invalid regex"),
        ("- match: {ip: 10.0.0.0/33}\n  actions: []\n", "not a CIDR"),
        (
            "- match: {ip: nowhere}\n  actions: []\n",
            "not an IP address",
        ),
        (
            "- match: {name: \"/a?*/\"}\n  actions: []\n",
            "nested repetition",
        ),
        (
            "- match: {name: \"/a{1001}/\"}\n  actions: []\n",
            "above 1000",
        ),
        ("- match: {}\n  actions: [Pull]\n", "invalid action"),
        ("- match: {}\n", "missing field `actions`"),
    ];
    for (yaml, want) in table {
        match serde_yaml::from_str::<Vec<Rule>>(yaml) {
            Ok(_) => panic!("accepted {yaml}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(want), "{yaml}: {msg}");
                assert!(e.location().is_some(), "{yaml}: no location in {msg}");
            }
        }
    }
}

#[test]
fn rules_that_can_never_match_load_and_never_match() {
    let table = [
        ("{name: \"${user}/*\"}", "unknown placeholder ${user}"),
        ("{name: \"${account\"}", "unclosed placeholder"),
        ("{name: \"${labels:}\"}", "unknown placeholder"),
        ("{name: \"${account:1}/*\"}", "needs a /regex/ in `account`"),
        (
            "{account: \"/(.+)/\", name: \"${account:2}/*\"}",
            "has no group 2",
        ),
        (
            "{account: \"/(.+)/\", name: \"${account:0}\"}",
            "groups count from 1",
        ),
        (
            "{account: \"/(${name:1})/\", name: \"/(.+)/\", service: \"${account:1}\"}",
            "may not itself use",
        ),
        (
            "{account: \"/(.+)/\", name: \"${account:1}\", service: \"a[\"}",
            "invalid glob",
        ),
    ];
    for (m, reason) in table {
        let acl = acl(&format!(
            "- match: {m}\n  actions: [\"*\"]\n- match: {{}}\n  actions: [pull]\n"
        ));
        let never: Vec<(usize, &str)> = acl.never_matching().collect();
        assert!(
            matches!(never.as_slice(), [(0, r)] if r.contains(reason)),
            "{m}: {never:?}"
        );
        for account in ["", "x", "${user}", "alice"] {
            for name in ["x", "${user}/x", "alice/x", "${account"] {
                let c = case(account, "");
                let scope = format!("repository:{name}:push,pull");
                let c = Case { scope: &scope, ..c };
                assert_eq!(
                    decide(&acl, &c),
                    (Some(1), "pull".to_owned()),
                    "{m} {account} {name}"
                );
            }
        }
    }
}

#[test]
fn star_is_special_only_as_the_rules_only_action() {
    let acl = acl(r#"
- match: {account: a}
  actions: [pull, "*"]
- match: {account: b}
  actions: [pull, push]
- match: {account: c}
  actions: ["*"]
"#);
    let table = [
        ("a", "push", ""),
        ("a", "pull,push,delete", "pull"),
        ("a", "*", "*"),
        ("b", "*", "pull,push"),
        ("b", "delete,*", "pull,push"),
        ("c", "pull,delete", "delete,pull"),
        ("c", "*", "*"),
    ];
    for (account, actions, want) in table {
        let scope = format!("repository:x/y:{actions}");
        let c = Case {
            scope: &scope,
            ..case(account, "")
        };
        assert_eq!(decide(&acl, &c).1, want, "{account} asks {actions}");
    }
}

#[test]
fn label_values_are_patterns_request_values_stay_literal() {
    let acl = acl(r#"
- match: {name: "${labels:full-access}"}
  actions: ["*"]
- match: {name: "/^${labels:read}$/"}
  actions: [pull]
- match: {account: "/(.+)/", name: "${account:1}/*"}
  actions: [push]
"#);
    let labels: &[(&str, &[&str])] = &[
        ("full-access", &["test/*", "ops/**"]),
        ("read", &["lib-[0-9]+"]),
    ];
    let table = [
        ("u", labels, "repository:test/app:push", Some(0), "push"),
        ("u", labels, "repository:ops/a/b:delete", Some(0), "delete"),
        ("u", labels, "repository:test/a/b:push", None, ""),
        ("u", labels, "repository:lib-42:pull,push", Some(1), "pull"),
        ("u", labels, "repository:lib-x:pull", None, ""),
        ("a*", &[], "repository:a*/x:push", Some(2), "push"),
        ("a*", &[], "repository:ab/x:push", None, ""),
    ];
    for (account, labels, scope, rule, actions) in table {
        let c = Case {
            labels,
            ..case(account, scope)
        };
        assert_eq!(
            decide(&acl, &c),
            (rule, actions.to_owned()),
            "{account} {scope}"
        );
    }
}
