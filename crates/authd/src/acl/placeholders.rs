//! Placeholders in ACL patterns (`${account}`, `${labels:NAME}`, `${name:1}` …): parsing a
//! pattern into literal text and variables, and rendering it for one request.

use std::fmt;

/// A match field whose own `/regex/` capture groups other fields may use as `${FIELD:N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `account`
    Account,
    /// `type`
    Type,
    /// `name`
    Name,
    /// `service`
    Service,
}

impl Field {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "account" => Field::Account,
            "type" => Field::Type,
            "name" => Field::Name,
            "service" => Field::Service,
            _ => return None,
        })
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Account => "account",
            Field::Type => "type",
            Field::Name => "name",
            Field::Service => "service",
        })
    }
}

/// One variable a pattern can refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// `${account}`, `${type}`, `${name}`, `${service}`: the request's value.
    Value(Field),
    /// `${labels:NAME}`: one value of the user's label NAME.
    Label(String),
    /// `${FIELD:N}`: capture group N of FIELD's own regex.
    Capture(Field, usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var(Var),
}

/// A pattern split into literal text and placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// The values placeholders stand for while one rule is matched against one request.
#[derive(Debug, Default)]
pub struct Bindings<'a> {
    /// The request's account, type, name and service.
    pub values: [&'a str; 4],
    /// One chosen value per label that the rule refers to.
    pub labels: Vec<(&'a str, &'a str)>,
    /// Capture groups of the fields that other fields refer to (group 0 is the whole match).
    pub captures: Vec<(Field, Vec<Option<String>>)>,
}

impl Bindings<'_> {
    fn lookup(&self, var: &Var) -> Option<&str> {
        match var {
            Var::Value(f) => Some(self.values[*f as usize]),
            Var::Label(name) => self.labels.iter().find(|(n, _)| n == name).map(|(_, v)| *v),
            Var::Capture(field, n) => self
                .captures
                .iter()
                .find(|(f, _)| f == field)
                .and_then(|(_, groups)| groups.get(*n))
                .and_then(|g| g.as_deref()),
        }
    }
}

impl Template {
    /// Splits `text` into literal text and `${…}` placeholders.
    ///
    /// # Errors
    /// An unclosed `${`, or a placeholder that is not one of the supported forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed placeholder in {text:?}"))?;
            segments.push(Segment::Var(parse_var(&after[..end])?));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Template { segments })
    }

    /// The variables this template refers to.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(v) => Some(v),
            Segment::Text(_) => None,
        })
    }

    /// Whether the template has no placeholder at all.
    pub fn is_literal(&self) -> bool {
        self.vars().next().is_none()
    }

    /// The text with every placeholder standing for a plain word, to check a pattern's syntax.
    pub fn probe(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.as_str(),
                Segment::Var(_) => "x",
            })
            .collect()
    }

    /// The text with every placeholder replaced: request values and capture groups by
    /// `escape(value)`, so they match literally, and label values as they are, so a label can
    /// hold a glob or regex (docker_auth's `${labels:NAME}` recipe); `None` when a placeholder
    /// has no value (a label the user lacks, a capture group that did not participate).
    pub fn render(
        &self,
        bindings: &Bindings<'_>,
        escape: impl Fn(&str) -> String,
    ) -> Option<String> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Var(v @ Var::Label(_)) => out.push_str(bindings.lookup(v)?),
                Segment::Var(v) => out.push_str(&escape(bindings.lookup(v)?)),
            }
        }
        Some(out)
    }
}

fn parse_var(inner: &str) -> Result<Var, String> {
    let unknown = || {
        format!(
            "unknown placeholder ${{{inner}}} (expected ${{account}}, ${{type}}, ${{name}}, \
             ${{service}}, ${{labels:NAME}} or ${{FIELD:N}})"
        )
    };
    match inner.split_once(':') {
        None => Field::parse(inner).map(Var::Value).ok_or_else(unknown),
        Some(("labels", name)) if !name.is_empty() => Ok(Var::Label(name.to_owned())),
        Some((field, n)) => {
            let field = Field::parse(field).ok_or_else(unknown)?;
            let n = n.parse().map_err(|_| unknown())?;
            Ok(Var::Capture(field, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings() -> Bindings<'static> {
        Bindings {
            values: ["alice", "repository", "alice/app", "registry"],
            labels: vec![("team", "core")],
            captures: vec![(
                Field::Account,
                vec![Some("alice@corp.com".into()), Some("alice".into()), None],
            )],
        }
    }

    fn render(text: &str) -> Option<String> {
        Template::parse(text)
            .ok()?
            .render(&bindings(), |s| format!("<{s}>"))
    }

    #[test]
    fn renders_every_kind_of_placeholder() {
        let table = [
            ("${account}/*", Some("<alice>/*")),
            (
                "${type}:${name}@${service}",
                Some("<repository>:<alice/app>@<registry>"),
            ),
            ("${labels:team}/x", Some("core/x")),
            ("${account:1}/*", Some("<alice>/*")),
            ("${account:0}", Some("<alice@corp.com>")),
            ("plain", Some("plain")),
            ("${labels:missing}", None),
            ("${account:2}", None),
            ("${name:1}", None),
        ];
        for (text, want) in table {
            assert_eq!(render(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn refuses_unknown_or_unclosed_placeholders() {
        for bad in [
            "${user}",
            "${account",
            "${labels:}",
            "${account:x}",
            "${foo:1}",
            "a${}b",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        assert!(Template::parse("no placeholders").is_ok_and(|t| t.is_literal()));
    }
}
