//! One ACL rule as written in `auth.yaml` (`match`, `actions`, `comment`), checked at load time,
//! and the test of its `match` against one request.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::matcher::{IpRange, Pattern};
use super::placeholders::{Bindings, Field, Var};
use super::Request;

/// Upper bound on the label-value combinations tried for one rule and one request.
const MAX_LABEL_COMBINATIONS: usize = 4096;

/// The `match` block as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    account: Option<Pattern>,
    #[serde(rename = "type")]
    kind: Option<Pattern>,
    name: Option<Pattern>,
    service: Option<Pattern>,
    ip: Option<IpRange>,
    #[serde(default)]
    labels: BTreeMap<String, Pattern>,
}

/// A checked `match` block: every field is ANDed, a missing field matches anything.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawMatch")]
pub struct Match {
    /// Patterns for account, type, name, service, in [`Field`] order.
    fields: [Option<Pattern>; 4],
    ip: Option<IpRange>,
    labels: BTreeMap<String, Pattern>,
    /// Labels referred to by `${labels:NAME}` anywhere in this match.
    label_refs: Vec<String>,
    /// Fields whose capture groups other fields use.
    capture_sources: Vec<Field>,
    /// Why this match can never hold (a placeholder that cannot be filled), if it cannot.
    never: Option<String>,
}

impl TryFrom<RawMatch> for Match {
    type Error = String;

    fn try_from(raw: RawMatch) -> Result<Self, String> {
        let fields = [raw.account, raw.kind, raw.name, raw.service];
        let all_patterns = || fields.iter().flatten().chain(raw.labels.values());
        let mut never = all_patterns().find_map(|p| p.never()).map(str::to_owned);
        let mut label_refs = Vec::new();
        let mut capture_sources = Vec::new();
        for var in all_patterns().flat_map(|p| p.template().vars()) {
            match var {
                Var::Label(name) if !label_refs.contains(name) => label_refs.push(name.clone()),
                Var::Capture(field, n) => match capture_source(&fields, *field, *n) {
                    Ok(()) if !capture_sources.contains(field) => capture_sources.push(*field),
                    Ok(()) => {}
                    Err(reason) => {
                        never.get_or_insert(reason);
                    }
                },
                _ => {}
            }
        }
        Ok(Match {
            fields,
            ip: raw.ip,
            labels: raw.labels,
            label_refs,
            capture_sources,
            never,
        })
    }
}

/// Whether `${field:n}` can be filled: `field` is a `/regex/` of the same match, without
/// placeholders of its own that refer to captures, with a group `n` (counted from 1, as
/// docker_auth does).
fn capture_source(fields: &[Option<Pattern>; 4], field: Field, n: usize) -> Result<(), String> {
    let source = fields[field as usize]
        .as_ref()
        .filter(|p| p.is_regex() && p.never().is_none())
        .ok_or_else(|| {
            format!("${{{field}:{n}}} needs a /regex/ in `{field}` of the same match")
        })?;
    if n == 0 {
        return Err(format!(
            "${{{field}:0}}: groups count from 1 (use ${{{field}}} for the whole value)"
        ));
    }
    if n >= source.capture_count() {
        return Err(format!(
            "${{{field}:{n}}}: the `{field}` regex has no group {n}"
        ));
    }
    if source
        .template()
        .vars()
        .any(|v| matches!(v, Var::Capture(..)))
    {
        return Err(format!(
            "`{field}` is used for ${{{field}:N}} and may not itself use ${{FIELD:N}}"
        ));
    }
    Ok(())
}

impl Match {
    /// Why this match can never hold, if it cannot.
    pub fn never(&self) -> Option<&str> {
        self.never.as_deref()
    }

    /// Whether every condition holds for `req` (for some choice of the referred labels' values).
    pub fn matches(&self, req: &Request<'_>) -> bool {
        if self.never.is_some() {
            return false;
        }
        if let Some(range) = &self.ip {
            if !req.ip.is_some_and(|ip| range.contains(ip)) {
                return false;
            }
        }
        label_combinations(&self.label_refs, req)
            .take(MAX_LABEL_COMBINATIONS)
            .any(|labels| self.matches_with(req, labels))
    }

    fn matches_with<'a>(&self, req: &Request<'a>, labels: Vec<(&'a str, &'a str)>) -> bool {
        let values = [req.account, req.kind, req.name, req.service];
        let mut bindings = Bindings {
            values,
            labels,
            captures: Vec::new(),
        };
        for field in &self.capture_sources {
            let Some(pattern) = &self.fields[*field as usize] else {
                return false;
            };
            match pattern.captures(values[*field as usize], &bindings) {
                Some(groups) => bindings.captures.push((*field, groups)),
                None => return false,
            }
        }
        let fields_match = self
            .fields
            .iter()
            .zip(values)
            .all(|(p, v)| p.as_ref().is_none_or(|p| p.matches(v, &bindings)));
        fields_match
            && self.labels.iter().all(|(key, pattern)| {
                req.labels
                    .get(key)
                    .is_some_and(|vals| vals.iter().any(|v| pattern.matches(v, &bindings)))
            })
    }
}

/// Every combination of one value per referred label (none when the user lacks one of them).
fn label_combinations<'a>(
    refs: &'a [String],
    req: &Request<'a>,
) -> impl Iterator<Item = Vec<(&'a str, &'a str)>> + 'a {
    let choices: Vec<(&'a str, &'a [String])> = refs
        .iter()
        .map(|r| {
            (
                r.as_str(),
                req.labels.get(r).map_or(&[][..], |v| v.as_slice()),
            )
        })
        .collect();
    let total = choices.iter().map(|(_, v)| v.len()).product::<usize>();
    (0..total).map(move |mut i| {
        choices
            .iter()
            .map(|(name, vals)| {
                let v = vals[i % vals.len()].as_str();
                i /= vals.len();
                (*name, v)
            })
            .collect()
    })
}

/// A rule as written in `auth.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "match")]
    matches: Match,
    actions: Vec<String>,
    comment: Option<String>,
}

/// A checked ACL rule.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct Rule {
    /// The conditions.
    pub matches: Match,
    /// Allowed actions: `[]` denies, `["*"]` allows whatever is asked.
    pub actions: Vec<String>,
    /// The operator's note, shown by `authd check` and in logs.
    pub comment: Option<String>,
}

impl TryFrom<RawRule> for Rule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, String> {
        if let Some(bad) = raw.actions.iter().find(|a| {
            a.is_empty() || !(a.as_str() == "*" || a.chars().all(|c| c.is_ascii_lowercase()))
        }) {
            return Err(format!("invalid action {bad:?} (expected \"*\" or a lowercase word such as pull, push, delete)"));
        }
        Ok(Rule {
            matches: raw.matches,
            actions: raw.actions,
            comment: raw.comment,
        })
    }
}
