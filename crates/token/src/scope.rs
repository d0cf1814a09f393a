//! Parsing and printing of scopes (`repository:team/app:pull,push`), as in Docker's token spec.
//!
//! The resource type runs up to the first `:` and the actions follow the last `:`, so that a
//! name may itself contain `:` (e.g. `registry:catalog:*` or a name with a port in it).

use std::fmt;
use std::str::FromStr;

/// One requested (or granted) resource: a type, an optional class, a name and actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Resource type, e.g. `repository` or `registry`.
    pub kind: String,
    /// Resource class from `type(class)`, e.g. `plugin` in `repository(plugin)`.
    pub class: Option<String>,
    /// Resource name; may contain `/` and `:`.
    pub name: String,
    /// Requested actions, in the order given, without empty entries or duplicates.
    pub actions: Vec<String>,
}

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// Fewer than three `:`-separated parts.
    #[error("scope {0:?} is not of the form type:name:actions")]
    Shape(String),
    /// The type is empty or has characters outside `[a-z0-9]`, or a malformed `(class)`.
    #[error("scope {0:?} has an invalid resource type")]
    Type(String),
    /// The name is empty or contains whitespace or control characters.
    #[error("scope {0:?} has an invalid resource name")]
    Name(String),
    /// An action has characters outside `[a-z*]`.
    #[error("scope {0:?} has an invalid action")]
    Action(String),
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shape = || ScopeError::Shape(s.to_owned());
        let (kind, rest) = s.split_once(':').ok_or_else(shape)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(shape)?;
        let (kind, class) = parse_type(kind).ok_or_else(|| ScopeError::Type(s.to_owned()))?;
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ScopeError::Name(s.to_owned()));
        }
        let mut list: Vec<String> = Vec::new();
        for action in actions.split(',').filter(|a| !a.is_empty()) {
            if !action.chars().all(|c| c.is_ascii_lowercase() || c == '*') {
                return Err(ScopeError::Action(s.to_owned()));
            }
            if !list.iter().any(|a| a == action) {
                list.push(action.to_owned());
            }
        }
        Ok(Scope {
            kind,
            class,
            name: name.to_owned(),
            actions: list,
        })
    }
}

/// Splits `repository(plugin)` into its type and class; `None` when malformed.
fn parse_type(raw: &str) -> Option<(String, Option<String>)> {
    let word = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    match raw.split_once('(') {
        None => word(raw).then(|| (raw.to_owned(), None)),
        Some((kind, class)) => {
            let class = class.strip_suffix(')')?;
            (word(kind) && word(class)).then(|| (kind.to_owned(), Some(class.to_owned())))
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if let Some(class) = &self.class {
            write!(f, "({class})")?;
        }
        write!(f, ":{}:{}", self.name, self.actions.join(","))
    }
}

/// Parses one `scope` query value: one or more scopes separated by spaces.
///
/// # Errors
/// The first malformed scope.
pub fn parse_scopes(param: &str) -> Result<Vec<Scope>, ScopeError> {
    param.split_whitespace().map(Scope::from_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Scope {
        match s.parse() {
            Ok(scope) => scope,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    /// (input, type, class, name, actions)
    type Case = (
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static [&'static str],
    );

    #[test]
    fn parses_the_spec_examples() {
        let table: &[Case] = &[
            (
                "repository:samalba/my-app:pull,push",
                "repository",
                None,
                "samalba/my-app",
                &["pull", "push"],
            ),
            ("repository:foo:pull", "repository", None, "foo", &["pull"]),
            ("registry:catalog:*", "registry", None, "catalog", &["*"]),
            (
                "repository(plugin):vieux/sshfs:pull",
                "repository",
                Some("plugin"),
                "vieux/sshfs",
                &["pull"],
            ),
            (
                "repository:host:5000/team/app:push",
                "repository",
                None,
                "host:5000/team/app",
                &["push"],
            ),
            (
                "repository:a/b:pull,pull,push",
                "repository",
                None,
                "a/b",
                &["pull", "push"],
            ),
            ("repository:a/b:", "repository", None, "a/b", &[]),
        ];
        for (raw, kind, class, name, actions) in table {
            let scope = ok(raw);
            assert_eq!(scope.kind, *kind, "{raw}");
            assert_eq!(scope.class.as_deref(), *class, "{raw}");
            assert_eq!(scope.name, *name, "{raw}");
            assert_eq!(scope.actions, *actions, "{raw}");
        }
    }

    #[test]
    fn round_trips_through_display() {
        for raw in [
            "repository:a/b:pull,push",
            "repository(plugin):x:pull",
            "registry:catalog:*",
        ] {
            assert_eq!(ok(raw).to_string(), raw);
        }
    }

    #[test]
    fn refuses_malformed_scopes() {
        type Check = fn(&ScopeError) -> bool;
        let table: &[(&str, Check)] = &[
            ("repository", |e| matches!(e, ScopeError::Shape(_))),
            ("repository:foo", |e| matches!(e, ScopeError::Shape(_))),
            (":foo:pull", |e| matches!(e, ScopeError::Type(_))),
            ("Repo:foo:pull", |e| matches!(e, ScopeError::Type(_))),
            ("repository(plugin:foo:pull", |e| {
                matches!(e, ScopeError::Type(_))
            }),
            ("repository():foo:pull", |e| {
                matches!(e, ScopeError::Type(_))
            }),
            ("repository::pull", |e| matches!(e, ScopeError::Name(_))),
            ("repository:fo\u{7}o:pull", |e| {
                matches!(e, ScopeError::Name(_))
            }),
            ("repository:foo:pull;rm", |e| {
                matches!(e, ScopeError::Action(_))
            }),
            ("repository:foo:PULL", |e| {
                matches!(e, ScopeError::Action(_))
            }),
        ];
        for (raw, check) in table {
            match raw.parse::<Scope>() {
                Ok(s) => panic!("{raw} parsed as {s:?}"),
                Err(e) => assert!(check(&e), "{raw}: {e:?}"),
            }
        }
    }

    #[test]
    fn splits_a_parameter_on_spaces() {
        let scopes = parse_scopes("repository:a:pull  repository:b:push registry:catalog:*");
        assert_eq!(scopes.map(|s| s.len()), Ok(3));
        assert!(parse_scopes("repository:a:pull nonsense").is_err());
        assert_eq!(parse_scopes(""), Ok(vec![]));
    }
}
