//! docker_auth's own ACL tests (`auth_server/authz/acl_test.go`: `TestValidation` and
//! `TestMatching`), case by case in its order, with docker_auth's expected answers. Where authd
//! answers differently on purpose, the case says so and the README lists it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::rule::Match;
use super::Request;

fn parse(yaml: &str) -> Result<Match, String> {
    serde_yaml::from_str::<Match>(yaml).map_err(|e| e.to_string())
}

#[test]
fn validation() {
    let cases = [
        // Valid stuff
        ("{}", true),
        ("{account: 'foo'}", true),
        ("{account: 'foo?*'}", true),
        ("{account: '/foo.*/'}", true),
        ("{type: 'foo'}", true),
        ("{type: 'foo?*'}", true),
        ("{type: '/foo.*/'}", true),
        ("{name: 'foo'}", true),
        ("{name: 'foo?*'}", true),
        ("{name: '/foo.*/'}", true),
        ("{service: 'foo'}", true),
        ("{service: 'foo?*'}", true),
        ("{service: '/foo.*/'}", true),
        ("{ip: '192.168.0.1'}", true),
        ("{ip: '192.168.0.0/16'}", true),
        ("{ip: '2001:db8::1'}", true),
        ("{ip: '2001:db8::/48'}", true),
        ("{labels: {foo: 'bar'}}", true),
        // Invalid stuff
        ("{account: '/foo?*/'}", false),
        ("{type: '/foo?*/'}", false),
        ("{name: '/foo?*/'}", false),
        ("{service: '/foo?*/'}", false),
        ("{ip: '192.168.0.1/100'}", false),
        ("{ip: '192.168.0.*'}", false),
        ("{ip: 'foo'}", false),
        ("{ip: '2001:db8::/222'}", false),
        ("{labels: {foo: '/bar?*/'}}", false),
    ];
    for (i, (yaml, ok)) in cases.into_iter().enumerate() {
        let got = parse(yaml);
        assert_eq!(got.is_ok(), ok, "{i}: {yaml}: {got:?}");
    }
}

/// `api.AuthRequestInfo`: account, type, name, service, IP, labels.
struct Info {
    account: &'static str,
    kind: &'static str,
    name: &'static str,
    service: &'static str,
    ip: Option<&'static str>,
    labels: &'static [(&'static str, &'static [&'static str])],
}

const NONE: Info = Info {
    account: "",
    kind: "",
    name: "",
    service: "",
    ip: None,
    labels: &[],
};
const GROUPS: &[(&str, &[&str])] = &[("group", &["admins", "VIP"])];
const GROUPS_PROJECTS: &[(&str, &[&str])] = &[
    ("group", &["admins", "VIP"]),
    ("project", &["api", "frontend"]),
];
const AI1: Info = Info {
    account: "foo",
    kind: "bar",
    name: "baz",
    service: "notary",
    ..NONE
};
const AI2: Info = Info {
    labels: GROUPS,
    ..AI1
};
const AI3: Info = Info {
    name: "admins/foo",
    ..AI2
};
const AI4: Info = Info {
    name: "VIP/api",
    labels: GROUPS_PROJECTS,
    ..AI1
};
const AI5: Info = Info {
    name: "devs/api",
    ..AI4
};

fn matches(yaml: &str, info: &Info) -> bool {
    let m = parse(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    let labels: BTreeMap<String, Vec<String>> = info
        .labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
        .collect();
    m.matches(&Request {
        account: info.account,
        labels: &labels,
        kind: info.kind,
        name: info.name,
        service: info.service,
        ip: info
            .ip
            .map(|ip| ip.parse::<IpAddr>().unwrap_or_else(|e| panic!("{ip}: {e}"))),
    })
}

#[test]
fn matching() {
    let ip = |ip| Info {
        ip: Some(ip),
        ..NONE
    };
    let who = |account, name| Info {
        account,
        name,
        ..NONE
    };
    let cases = [
        ("{}", AI1, true),
        ("{account: 'foo'}", AI1, true),
        ("{account: 'foo', type: 'bar'}", AI1, true),
        ("{account: 'foo', type: 'baz'}", AI1, false),
        ("{account: 'fo?', type: 'b*', name: '/z$/'}", AI1, true),
        ("{account: 'fo?', type: 'b*', name: '/^z/'}", AI1, false),
        ("{name: '${account}'}", who("foo", "foo"), true), // Var subst
        ("{name: '/${account}_.*/'}", who("foo", "foo_x"), true),
        ("{name: '/${account}_.*/'}", who(".*", "foo_x"), false), // Quoting
        (
            r"{account: '/^(.+)@test\.com$/', name: '${account:1}/*'}",
            who("john.smith@test.com", "john.smith/test"),
            true,
        ),
        (
            r"{account: '/^(.+)@test\.com$/', name: '${account:3}/*'}",
            who("john.smith@test.com", "john.smith/test"),
            false,
        ),
        (
            r"{account: '/^(.+)@(.+?).test\.com$/', name: '${account:1}-${account:2}/*'}",
            who("john.smith@it.test.com", "john.smith-it/test"),
            true,
        ),
        ("{service: 'notary', type: 'bar'}", AI1, true),
        ("{service: 'notary', type: 'baz'}", AI1, false),
        ("{service: 'notary1', type: 'bar'}", AI1, false),
        // IP matching
        ("{ip: '127.0.0.1'}", NONE, false),
        ("{ip: '127.0.0.1'}", ip("127.0.0.1"), true),
        ("{ip: '127.0.0.1'}", ip("127.0.0.2"), false),
        ("{ip: '127.0.0.2'}", ip("127.0.0.1"), false),
        ("{ip: '127.0.0.0/8'}", ip("127.0.0.1"), true),
        ("{ip: '127.0.0.0/8'}", ip("127.0.0.2"), true),
        ("{ip: '2001:db8::1'}", NONE, false),
        ("{ip: '2001:db8::1'}", ip("2001:db8::1"), true),
        ("{ip: '2001:db8::1'}", ip("2001:db8::2"), false),
        ("{ip: '2001:db8::2'}", ip("2001:db8::1"), false),
        ("{ip: '2001:db8::/48'}", ip("2001:db8::1"), true),
        ("{ip: '2001:db8::/48'}", ip("2001:db8::2"), true),
        // Label matching
        ("{labels: {foo: 'bar'}}", AI1, false),
        ("{labels: {foo: 'bar'}}", AI2, false),
        ("{labels: {group: 'admins'}}", AI2, true),
        ("{labels: {foo: 'bar', group: 'admins'}}", AI2, false), // "and" logic
        ("{labels: {group: 'VIP'}}", AI2, true),
        ("{labels: {group: 'a*'}}", AI2, true),
        ("{labels: {group: '/(admins|VIP)/'}}", AI2, true),
        // Label placeholder matching
        ("{name: '${labels:group}/*'}", AI1, false), // no labels
        ("{name: '${labels:noexist}/*'}", AI2, false), // wrong labels
        ("{name: '${labels:group}/*'}", AI3, true),  // match label
        ("{name: '${labels:noexist}/*'}", AI3, false), // missing label
        ("{name: '${labels:group}/${labels:project}'}", AI4, true), // multiple label match success
        ("{name: '${labels:group}/${labels:noexist}'}", AI4, false), // multiple label match fail
        ("{name: '${labels:group}/${labels:project}'}", AI4, true), // multiple label match success
        ("{name: '${labels:group}/${labels:noexist}'}", AI4, false), // fail wrong label
        ("{name: '${labels:group}/${labels:project}'}", AI5, false), // right label, wrong value
    ];
    for (i, (yaml, info, want)) in cases.into_iter().enumerate() {
        assert_eq!(matches(yaml, &info), want, "{i}: {yaml}");
    }
}
