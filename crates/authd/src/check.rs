//! `authd check`: what a configuration would grant an account for some scopes, and which rule
//! decided each — the operator's answer to "why was I denied?". No password is checked, and no
//! external program is run (a scope left to `ext_authz` says so, with the program's input).

use std::fmt::Write;
use std::net::IpAddr;

use token::Scope;

use crate::authn::{Backend, Identity};
use crate::config::Config;
use crate::flow::rule_label;
use crate::issue;

/// A human-readable report, one line per scope.
pub fn report(
    config: &Config,
    account: &str,
    ip: IpAddr,
    service: &str,
    scopes: &[Scope],
) -> String {
    let mut out = String::new();
    for w in &config.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let known = config.authn.users.get(account);
    let who = Identity {
        account: account.to_owned(),
        labels: known.map(|u| u.labels.clone()).unwrap_or_default(),
        password: None,
    };
    let _ = match known {
        Some(_) if account.is_empty() => writeln!(out, "account \"\" (anonymous), ip {ip}, service {service}"),
        Some(u) => writeln!(out, "account {account:?} (labels {:?}), ip {ip}, service {service}", u.labels),
        None if !config.authn.backends.is_empty() => writeln!(out, "account {account:?} is not a static user: another authenticator may accept it, with labels check cannot know; rules evaluated without labels"),
        None => writeln!(out, "account {account:?} is not a configured user (it could not log in); rules evaluated anyway"),
    };
    for backend in config.authn.backends.iter().filter(|_| known.is_none()) {
        let _ = match backend {
            Backend::Ldap(ldap) => writeln!(out, "  it may be an LDAP account of {}: its labels come from the directory at login and are not looked up here", ldap.describe()),
            Backend::Ext(_) => writeln!(out, "  it may be accepted by the ext_auth program, which check does not run"),
        };
    }
    if issue::check_service(config, service).is_err() {
        let _ = writeln!(
            out,
            "service {service:?} is not in token.services: requests for it are refused"
        );
    }
    for grant in issue::decide(config, &who, service, Some(ip), scopes) {
        if grant.rule.is_none() && config.ext_authz.is_some() {
            let input = issue::program_input(&who, service, Some(ip), &grant).to_json();
            let _ = writeln!(
                out,
                "{} -> no rule matched: ext_authz decides (check does not run it; its stdin would be {})",
                grant.requested,
                input.unwrap_or_default()
            );
            continue;
        }
        let _ = writeln!(
            out,
            "{} -> [{}] by {}",
            grant.requested,
            grant.access.actions.join(","),
            rule_label(config, &grant)
        );
    }
    out
}
