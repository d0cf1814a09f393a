//! `ext_authz`: docker_auth's external authorizer, asked for a scope no ACL rule matched. The
//! program gets docker_auth's `AuthRequestInfo` as JSON on stdin
//! (`{"Account","Type","Name","Service","IP","Actions","Labels"}`) and answers by its exit
//! code: 0 grants every requested action, 1 grants none; anything else is a failure. Its
//! output is not read (docker_auth ignores it too), only bounded.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::acl::Request;
use crate::error::Error;
use crate::program::Program;

/// The configured program.
pub struct ExtAuthz {
    program: Program,
}

/// docker_auth's `api.AuthRequestInfo` as Go's `encoding/json` writes it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestInfo<'a> {
    account: &'a str,
    #[serde(rename = "Type")]
    kind: &'a str,
    name: &'a str,
    service: &'a str,
    /// `""` when unknown, as Go writes a nil `net.IP`.
    #[serde(rename = "IP", serialize_with = "ip_text")]
    ip: Option<IpAddr>,
    /// Sorted, as docker_auth sorts a scope's actions.
    actions: Vec<String>,
    labels: &'a BTreeMap<String, Vec<String>>,
}

impl<'a> RequestInfo<'a> {
    /// What the program is told about `req` asking for `actions`.
    pub fn new(req: &Request<'a>, actions: &[String]) -> Self {
        let mut actions = actions.to_vec();
        actions.sort();
        actions.dedup();
        RequestInfo {
            account: req.account,
            kind: req.kind,
            name: req.name,
            service: req.service,
            ip: req.ip,
            actions,
            labels: req.labels,
        }
    }

    /// The JSON the program reads.
    ///
    /// # Errors
    /// [`Error::Internal`] if it cannot be written (strings and string maps always can).
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(|e| Error::Internal(format!("ext_authz input: {e}")))
    }
}

fn ip_text<S: serde::Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
    match ip {
        Some(ip) => s.collect_str(ip),
        None => s.serialize_str(""),
    }
}

impl ExtAuthz {
    /// Asks `program` about scopes no ACL rule decided.
    pub fn new(program: Program) -> Self {
        ExtAuthz { program }
    }

    /// The actions granted for `info`: all it asks for, or none.
    ///
    /// # Errors
    /// [`Error::Backend`] when the program fails or exits with a code other than 0 or 1.
    pub async fn authorize(&self, info: &RequestInfo<'_>) -> Result<Vec<String>, Error> {
        let exit = self.program.run(info.to_json()?.as_bytes()).await?;
        match exit.code {
            0 => Ok(info.actions.clone()),
            1 => Ok(Vec::new()),
            code => Err(self
                .program
                .failed(format!("exit code {code}"), &exit.stderr)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_info_is_docker_auths_json() {
        let labels = BTreeMap::from([("group".to_owned(), vec!["ops".to_owned()])]);
        let req = Request {
            account: "alice",
            labels: &labels,
            kind: "repository",
            name: "team/app",
            service: "registry",
            ip: "127.0.0.1".parse().ok(),
        };
        let push_pull = ["push".to_owned(), "pull".to_owned(), "pull".to_owned()];
        let info = RequestInfo::new(&req, &push_pull);
        let json: serde_json::Value = serde_json::from_str(&info.to_json().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json,
            serde_json::json!({
                "Account": "alice", "Type": "repository", "Name": "team/app",
                "Service": "registry", "IP": "127.0.0.1", "Actions": ["pull", "push"],
                "Labels": {"group": ["ops"]}
            })
        );
        let nowhere = Request { ip: None, ..req };
        assert!(RequestInfo::new(&nowhere, &push_pull)
            .to_json()
            .is_ok_and(|j| j.contains(r#""IP":"""#)));
    }
}
