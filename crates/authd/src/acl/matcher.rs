//! One ACL match value: a glob (`*`/`?` stay within a `/` segment, `**` crosses) or an
//! unanchored `/regex/`, either possibly with placeholders; and address/CIDR ranges. As in
//! docker_auth, an invalid regex refuses the file, while a pattern that can never match (an
//! unknown or unclosed placeholder, an invalid glob) is loaded with a warning and never matches.

use std::net::IpAddr;

use globset::{GlobBuilder, GlobMatcher};
use ipnet::IpNet;
use regex::Regex;
use regex_syntax::ast::{self, Ast, RepetitionKind, RepetitionRange};
use serde::Deserialize;

use super::placeholders::{Bindings, Template};

/// How a pattern's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Glob,
    Regex,
}

#[derive(Debug, Clone)]
enum Compiled {
    Glob(GlobMatcher),
    Regex(Regex),
}

impl Compiled {
    fn new(syntax: Syntax, text: &str) -> Result<Self, String> {
        match syntax {
            Syntax::Glob => GlobBuilder::new(text)
                .literal_separator(true)
                .build()
                .map(|g| Compiled::Glob(g.compile_matcher()))
                .map_err(|e| format!("invalid glob {text:?}: {e}")),
            Syntax::Regex => Regex::new(text)
                .map(Compiled::Regex)
                .map_err(|e| format!("invalid regex /{text}/: {e}")),
        }
    }

    fn is_match(&self, value: &str) -> bool {
        match self {
            Compiled::Glob(g) => g.is_match(value),
            Compiled::Regex(r) => r.is_match(value),
        }
    }
}

/// A match value from `auth.yaml`, checked at load time.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Pattern {
    syntax: Syntax,
    template: Template,
    /// Compiled once when the pattern has no placeholder.
    fixed: Option<Compiled>,
    /// Why this pattern can never match, when it cannot.
    never: Option<String>,
}

impl TryFrom<String> for Pattern {
    type Error = String;

    fn try_from(source: String) -> Result<Self, String> {
        let (syntax, body) = match source.strip_prefix('/').and_then(|s| s.strip_suffix('/')) {
            Some(inner) if source.len() > 2 => (Syntax::Regex, inner),
            _ => (Syntax::Glob, source.as_str()),
        };
        let never = |reason: String| Pattern {
            syntax,
            template: Template::default(),
            fixed: None,
            never: Some(reason),
        };
        let template = match Template::parse(body) {
            Ok(t) => t,
            Err(reason) => return Ok(never(reason)),
        };
        // Check the syntax with every placeholder standing for a plain word.
        let probe = template.probe();
        if syntax == Syntax::Regex {
            go_regex_rules(&probe).map_err(|e| format!("invalid regex /{probe}/: {e}"))?;
        }
        let compiled = match (Compiled::new(syntax, &probe), syntax) {
            (Ok(c), _) => c,
            (Err(e), Syntax::Regex) => return Err(e),
            (Err(e), Syntax::Glob) => return Ok(never(e)),
        };
        let fixed = template.is_literal().then_some(compiled);
        Ok(Pattern {
            syntax,
            template,
            fixed,
            never: None,
        })
    }
}

/// What Go's regexp (so docker_auth) refuses and Rust's accepts: a repetition of a repetition
/// (`a?*`, `a**`; `(a?)*` is fine) and a repeat count above 1000.
fn go_regex_rules(text: &str) -> Result<(), String> {
    struct GoRules;
    impl ast::Visitor for GoRules {
        type Output = ();
        type Err = String;
        fn finish(self) -> Result<(), String> {
            Ok(())
        }
        fn visit_pre(&mut self, node: &Ast) -> Result<(), String> {
            let Ast::Repetition(rep) = node else {
                return Ok(());
            };
            if matches!(*rep.ast, Ast::Repetition(_)) {
                return Err(format!(
                    "nested repetition operator at offset {} (docker_auth's Go regexp refuses it; \
                     group the inner one: (a?)*)",
                    rep.op.span.start.offset
                ));
            }
            let count = match &rep.op.kind {
                RepetitionKind::Range(
                    RepetitionRange::Exactly(n)
                    | RepetitionRange::AtLeast(n)
                    | RepetitionRange::Bounded(_, n),
                ) => *n,
                _ => 0,
            };
            if count > 1000 {
                return Err(format!("repeat count {count} above 1000"));
            }
            Ok(())
        }
    }
    let parsed = ast::parse::Parser::new()
        .parse(text)
        .map_err(|e| e.to_string())?;
    ast::visit(&parsed, GoRules)
}

impl Pattern {
    /// The placeholders-and-text form of this pattern.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// Why this pattern can never match (shown as a warning at load), if it cannot.
    pub fn never(&self) -> Option<&str> {
        self.never.as_deref()
    }

    /// Whether this is a `/regex/` pattern.
    pub fn is_regex(&self) -> bool {
        self.syntax == Syntax::Regex
    }

    /// Number of capture groups (including group 0) of a regex pattern, 0 for a glob.
    pub fn capture_count(&self) -> usize {
        match Compiled::new(self.syntax, &self.template.probe()) {
            Ok(Compiled::Regex(r)) => r.captures_len(),
            _ => 0,
        }
    }

    fn compile(&self, bindings: &Bindings<'_>) -> Option<Compiled> {
        if self.never.is_some() {
            return None;
        }
        if let Some(fixed) = &self.fixed {
            return Some(fixed.clone());
        }
        let text = match self.syntax {
            Syntax::Glob => self.template.render(bindings, globset::escape)?,
            Syntax::Regex => self.template.render(bindings, regex::escape)?,
        };
        Compiled::new(self.syntax, &text).ok()
    }

    /// Whether `value` matches, with placeholders replaced from `bindings` (see
    /// [`Template::render`]: request values literally, label values as patterns).
    pub fn matches(&self, value: &str, bindings: &Bindings<'_>) -> bool {
        match &self.fixed {
            Some(fixed) => fixed.is_match(value),
            None => self.compile(bindings).is_some_and(|c| c.is_match(value)),
        }
    }

    /// The capture groups of a regex pattern against `value`; `None` when it does not match.
    pub fn captures(&self, value: &str, bindings: &Bindings<'_>) -> Option<Vec<Option<String>>> {
        match self.compile(bindings)? {
            Compiled::Regex(r) => {
                let caps = r.captures(value)?;
                Some(
                    caps.iter()
                        .map(|m| m.map(|m| m.as_str().to_owned()))
                        .collect(),
                )
            }
            Compiled::Glob(g) => g.is_match(value).then(Vec::new),
        }
    }
}

/// An IP address or CIDR range (IPv4 or IPv6), as in `ip:` and `trusted_proxies:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IpRange(IpNet);

impl TryFrom<String> for IpRange {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let s = s.trim();
        if s.contains('/') {
            s.parse::<IpNet>()
                .map(|n| IpRange(n.trunc()))
                .map_err(|_| format!("{s:?} is not a CIDR range (e.g. 10.0.0.0/8 or fd00::/8)"))
        } else {
            s.parse::<IpAddr>()
                .map(|a| IpRange(IpNet::from(a.to_canonical())))
                .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))
        }
    }
}

impl IpRange {
    /// Whether `addr` (an IPv4-mapped IPv6 address counts as IPv4) lies in this range.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.0.contains(&addr.to_canonical())
    }
}
