//! Issuing: the ACL decision for each requested scope, the claims, the signed token and the
//! response body (docker_auth's fields plus `expires_in`, `issued_at`, `refresh_token`).

use std::net::IpAddr;

use serde::Serialize;
use token::{parse_scopes, Access, Claims, RepoName, Scope};

use crate::acl::Request;
use crate::authn::Identity;
use crate::config::Config;
use crate::error::Error;
use crate::ext_authz::RequestInfo;
use crate::metrics::SIGN_SECONDS;

/// The scopes of one `scope` parameter, refusing repository names no registry could serve: a
/// grant for `a/../b` could only mislead. (`repository(plugin)` names keep their own rules.)
///
/// # Errors
/// A malformed scope, or `NAME_INVALID` for such a name.
pub fn requested_scopes(value: &str) -> Result<Vec<Scope>, Error> {
    let scopes = parse_scopes(value)?;
    for scope in &scopes {
        if scope.kind == "repository" && scope.class.is_none() {
            RepoName::parse(&scope.name)?;
        }
    }
    Ok(scopes)
}

/// One requested scope and what was decided for it.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The scope as asked.
    pub requested: Scope,
    /// What goes into the token.
    pub access: Access,
    /// The deciding rule (0-based), if any matched.
    pub rule: Option<usize>,
}

/// The JSON answer to a token request.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The JWT (docker_auth's name).
    pub token: String,
    /// The JWT again (OAuth2's name).
    pub access_token: String,
    /// Seconds the token is valid for.
    pub expires_in: u64,
    /// RFC 3339 time of issue.
    pub issued_at: String,
    /// Present when offline access was asked for and the account has a password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Checks `service` against `token.services`.
///
/// # Errors
/// [`Error::UnknownService`] when a list is configured and does not name it.
pub fn check_service(config: &Config, service: &str) -> Result<(), Error> {
    match &config.token.services {
        Some(list) if !list.iter().any(|s| s == service) => {
            Err(Error::UnknownService(service.to_owned()))
        }
        _ => Ok(()),
    }
}

/// The ACL decision for every scope.
pub fn decide(
    config: &Config,
    who: &Identity,
    service: &str,
    ip: Option<IpAddr>,
    scopes: &[Scope],
) -> Vec<Grant> {
    scopes
        .iter()
        .map(|scope| {
            // docker_auth matches and grants `repository(plugin)` as `repository`.
            let kind = scope.kind.clone();
            let req = Request {
                account: &who.account,
                labels: &who.labels,
                kind: &kind,
                name: &scope.name,
                service,
                ip,
            };
            let d = config.acl.decide(&req, &scope.actions);
            Grant {
                requested: scope.clone(),
                access: Access {
                    kind,
                    name: scope.name.clone(),
                    actions: d.actions,
                },
                rule: d.rule,
            }
        })
        .collect()
}

/// [`decide`], then the `ext_authz` program (when configured) for each scope no rule matched,
/// as docker_auth asks its authorizers in turn.
///
/// # Errors
/// [`Error::Backend`] when the program fails: no token is issued.
pub async fn authorize(
    config: &Config,
    who: &Identity,
    service: &str,
    ip: Option<IpAddr>,
    scopes: &[Scope],
) -> Result<Vec<Grant>, Error> {
    let mut grants = decide(config, who, service, ip, scopes);
    let Some(ext) = &config.ext_authz else {
        return Ok(grants);
    };
    for grant in grants.iter_mut().filter(|g| g.rule.is_none()) {
        let actions = ext
            .authorize(&program_input(who, service, ip, grant))
            .await?;
        grant.access.actions = actions;
    }
    Ok(grants)
}

/// What the `ext_authz` program is told about a scope no rule matched.
pub fn program_input<'a>(
    who: &'a Identity,
    service: &'a str,
    ip: Option<IpAddr>,
    grant: &'a Grant,
) -> RequestInfo<'a> {
    let req = Request {
        account: &who.account,
        labels: &who.labels,
        kind: &grant.access.kind,
        name: &grant.access.name,
        service,
        ip,
    };
    RequestInfo::new(&req, &grant.requested.actions)
}

/// Signs a token carrying `grants` for `who`.
///
/// # Errors
/// [`Error::Internal`] when signing fails.
pub fn sign(
    config: &Config,
    who: &Identity,
    service: &str,
    grants: &[Grant],
) -> Result<TokenResponse, Error> {
    let access = grants.iter().map(|g| g.access.clone()).collect();
    let claims = Claims::new(
        &config.token.issuer,
        &who.account,
        service,
        config.token.ttl,
        access,
    );
    let start = std::time::Instant::now();
    let jwt = config
        .token
        .key
        .sign(&claims)
        .map_err(|e| Error::Internal(format!("signing: {e}")))?;
    metrics::histogram!(SIGN_SECONDS).record(start.elapsed().as_secs_f64());
    let issued_at =
        time::OffsetDateTime::from_unix_timestamp(i64::try_from(claims.iat).unwrap_or(0))
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
    Ok(TokenResponse {
        token: jwt.clone(),
        access_token: jwt,
        expires_in: config.token.ttl.as_secs(),
        issued_at,
        refresh_token: None,
    })
}
