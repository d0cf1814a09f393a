//! Authorization with docker_auth's semantics: ordered rules, the first whose `match` holds
//! decides, and the grant is the requested actions allowed by that rule (possibly none).
//!
//! - [`placeholders`]: `${…}` variables in patterns.
//! - [`matcher`]: globs, `/regex/` and IP ranges.
//! - [`rule`]: one rule as written and its `match` test.

pub mod matcher;
pub mod placeholders;
pub mod rule;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use rule::Rule;

/// What one requested scope is checked with.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The authenticated account (`""` for anonymous).
    pub account: &'a str,
    /// The account's labels.
    pub labels: &'a BTreeMap<String, Vec<String>>,
    /// The resource type, without a class: `repository(plugin)` is matched as `repository`, as
    /// docker_auth does.
    pub kind: &'a str,
    /// The resource name.
    pub name: &'a str,
    /// The `service` parameter.
    pub service: &'a str,
    /// The client's address, when known.
    pub ip: Option<IpAddr>,
}

/// The outcome for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Index (0-based) of the deciding rule; `None` when no rule matched.
    pub rule: Option<usize>,
    /// Granted actions, sorted, without duplicates; may be empty.
    pub actions: Vec<String>,
}

/// The ordered rule list.
#[derive(Debug, Default)]
pub struct Acl {
    rules: Vec<Rule>,
}

impl Acl {
    /// An ACL of these rules, in order.
    pub fn new(rules: Vec<Rule>) -> Self {
        Acl { rules }
    }

    /// The rule at `index`.
    pub fn rule(&self, index: usize) -> Option<&Rule> {
        self.rules.get(index)
    }

    /// Each rule that can never match, with its index and why (warned about at load).
    pub fn never_matching(&self) -> impl Iterator<Item = (usize, &str)> {
        self.rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, r.matches.never()?)))
    }

    /// The first matching rule decides; no match grants nothing.
    pub fn decide(&self, req: &Request<'_>, requested: &[String]) -> Decision {
        match self.rules.iter().position(|r| r.matches.matches(req)) {
            Some(i) => Decision {
                rule: Some(i),
                actions: allowed(&self.rules[i].actions, requested),
            },
            None => Decision {
                rule: None,
                actions: Vec::new(),
            },
        }
    }
}

/// A rule whose only action is `*` grants what is asked; otherwise each asked action the rule
/// lists is granted (docker_auth's intersection, so `[pull, "*"]` grants `*` only when `*` is
/// asked). Our addition: a request for the literal `*` that the rule does not list gets the
/// rule's whole list (docker_auth would grant nothing).
fn allowed(rule: &[String], requested: &[String]) -> Vec<String> {
    let mut out: Vec<String> = if rule == ["*"] {
        requested.to_vec()
    } else {
        requested
            .iter()
            .flat_map(|a| {
                if rule.contains(a) {
                    std::slice::from_ref(a)
                } else if a == "*" {
                    rule
                } else {
                    &[]
                }
            })
            .cloned()
            .collect()
    };
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod docker_auth_cases;
