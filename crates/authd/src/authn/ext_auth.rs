//! `ext_auth`: docker_auth's external authenticator. The program gets `user password` on stdin
//! (one space between, no newline, as docker_auth writes it) and answers by its exit code:
//! 0 accepts (stdout may hold `{"labels": {"name": ["value", …]}}`), 1 refuses the password,
//! 2 does not know the account (the next authenticator is asked); anything else is a failure.

use std::collections::BTreeMap;

use super::{Credentials, Identity, Verdict};
use crate::error::Error;
use crate::program::Program;

/// The configured program.
pub struct ExtAuth {
    program: Program,
}

impl ExtAuth {
    /// Asks `program` about logins.
    pub fn new(program: Program) -> Self {
        ExtAuth { program }
    }

    /// Runs the program for `creds`. Anonymous access is never its business, nor is a name the
    /// program could not tell from the password (empty, or holding white space or control
    /// characters): those are [`Verdict::NoMatch`] without running it.
    ///
    /// # Errors
    /// [`Error::Backend`] when the program fails, exits with another code, or prints what is not
    /// that JSON.
    pub async fn authenticate(&self, creds: &Credentials) -> Result<Verdict, Error> {
        let Credentials::Password { user, password } = creds else {
            return Ok(Verdict::NoMatch);
        };
        if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Ok(Verdict::NoMatch);
        }
        let input = format!("{user} {password}");
        let exit = self.program.run(input.as_bytes()).await?;
        match exit.code {
            0 => {
                let labels = labels(&exit.stdout).map_err(|e| {
                    self.program
                        .failed(format!("exit 0 with bad JSON on stdout: {e}"), b"")
                })?;
                Ok(Verdict::Accepted(Identity {
                    account: user.clone(),
                    labels,
                    password: None,
                }))
            }
            1 => Ok(Verdict::WrongPassword),
            2 => Ok(Verdict::NoMatch),
            code => Err(self
                .program
                .failed(format!("exit code {code}"), &redact(&exit.stderr, password))),
        }
    }
}

/// The labels of an accepting program's stdout; nothing printed means no labels.
fn labels(stdout: &[u8]) -> Result<BTreeMap<String, Vec<String>>, serde_json::Error> {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    // An object; `labels` (Go's JSON also takes `Labels`) as static users have them.
    let mut answer: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(stdout)?;
    match answer.remove("labels").or_else(|| answer.remove("Labels")) {
        None | Some(serde_json::Value::Null) => Ok(BTreeMap::new()),
        Some(labels) => serde_json::from_value(labels),
    }
}

/// `stderr` with every occurrence of the password replaced, so a program that echoes its input
/// does not put it in our log.
fn redact(stderr: &[u8], password: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(stderr);
    if password.is_empty() {
        return text.into_owned().into_bytes();
    }
    text.replace(password, "<password>").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_stdout() {
        let got = labels(br#"{"labels": {"level": ["max"], "groups": ["VIP", "ATeam"]}}"#);
        assert_eq!(
            got.ok().and_then(|l| l.get("groups").cloned()),
            Some(vec!["VIP".to_owned(), "ATeam".to_owned()])
        );
        assert!(labels(b"").is_ok_and(|l| l.is_empty()));
        assert!(labels(b" \n").is_ok_and(|l| l.is_empty()));
        assert!(labels(br#"{"other": 1}"#).is_ok_and(|l| l.is_empty()));
        for bad in [
            &b"ok"[..],
            b"{\"labels\": [1]}",
            b"{\"labels\": {\"a\": \"b\"}}",
            b"[]",
        ] {
            assert!(labels(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn redacts_the_password_from_stderr() {
        let out = redact(b"bad password hunter2 for alice", "hunter2");
        assert_eq!(out, b"bad password <password> for alice");
    }
}
