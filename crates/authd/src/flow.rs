//! One token request from start to end, whatever its form (GET with Basic credentials, OAuth2
//! POST with a password or refresh token): check parameters, reserve a throttle slot,
//! authenticate and settle the slot, decide, sign, and log one structured line. HTTP handlers
//! only translate to and from this.

use std::net::IpAddr;

use token::Scope;

use crate::app::App;
use crate::authn::{Credentials, Identity};
use crate::config::Config;
use crate::error::Error;
use crate::issue::{self, Grant, TokenResponse};
use crate::metrics::TOKEN_REQUESTS;
use crate::refresh;
use crate::throttle::Attempt;

/// How the client proves who it is.
pub enum Proof {
    /// Basic credentials (GET) or `grant_type=password` (POST), or nothing (anonymous).
    Credentials(Credentials),
    /// `grant_type=refresh_token`.
    RefreshToken(String),
}

/// Never shows a password or refresh token.
impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proof::Credentials(c) => c.fmt(f),
            Proof::RefreshToken(_) => f.write_str("RefreshToken(..)"),
        }
    }
}

/// A token request, already parsed from HTTP.
#[derive(Debug)]
pub struct TokenRequest {
    /// Credentials or refresh token.
    pub proof: Proof,
    /// The `account` parameter, if sent.
    pub account: Option<String>,
    /// The `service` parameter.
    pub service: Option<String>,
    /// Every scope, from every `scope` parameter.
    pub scopes: Vec<Scope>,
    /// `offline_token=true` / `access_type=offline`: the client wants a refresh token.
    pub offline: bool,
    /// The client's address (after `real_ip_header` handling).
    pub ip: IpAddr,
}

impl Proof {
    fn grant_label(&self) -> &'static str {
        match self {
            Proof::Credentials(Credentials::Anonymous) => "anonymous",
            Proof::Credentials(Credentials::Password { .. }) => "password",
            Proof::RefreshToken(_) => "refresh_token",
        }
    }

    fn claimed_account(&self) -> Option<&str> {
        match self {
            Proof::Credentials(Credentials::Password { user, .. }) => Some(user),
            _ => None,
        }
    }
}

/// Answers a token request.
///
/// # Errors
/// Any client error of [`Error`], or [`Error::Internal`].
pub async fn handle(app: &App, req: TokenRequest) -> Result<TokenResponse, Error> {
    let config = app.config.load_full();
    let grant = req.proof.grant_label();
    let result = run(app, &config, &req).await;
    let outcome = match &result {
        Ok(_) => "issued",
        Err(e) => e.code(),
    };
    metrics::counter!(TOKEN_REQUESTS, "grant" => grant, "outcome" => outcome).increment(1);
    let requested: Vec<String> = req.scopes.iter().map(ToString::to_string).collect();
    match &result {
        Ok((who, grants, _)) => {
            let granted: Vec<String> = grants
                .iter()
                .map(|g| {
                    format!(
                        "{}:{}:{}",
                        g.access.kind,
                        g.access.name,
                        g.access.actions.join(",")
                    )
                })
                .collect();
            let rules: Vec<String> = grants.iter().map(|g| rule_label(&config, g)).collect();
            tracing::info!(
                account = %who.account, ip = %req.ip, service = req.service.as_deref().unwrap_or(""), grant,
                ?requested, ?granted, ?rules, outcome, "token request"
            );
        }
        Err(e) => tracing::info!(
            account = req.proof.claimed_account().unwrap_or(""), ip = %req.ip,
            service = req.service.as_deref().unwrap_or(""), grant, ?requested, outcome, reason = %e, "token request"
        ),
    }
    result.map(|(_, _, response)| response)
}

/// Settles a reserved attempt by what checking the secret gave.
fn settle(attempt: Attempt<'_>, who: Result<Identity, Error>) -> Result<Identity, Error> {
    match &who {
        Ok(_) => attempt.succeeded(),
        Err(Error::Unauthorized | Error::InvalidRefreshToken) => attempt.failed(),
        Err(_) => attempt.abandoned(),
    }
    who
}

/// Describes the rule that decided a grant, for logs and `authd check`.
pub fn rule_label(config: &Config, grant: &Grant) -> String {
    match grant.rule.and_then(|i| Some((i, config.acl.rule(i)?))) {
        Some((i, rule)) => match &rule.comment {
            Some(c) => format!("acl[{i}] ({c})"),
            None => format!("acl[{i}]"),
        },
        None if config.ext_authz.is_some() => "ext_authz".to_owned(),
        None => "no rule matched".to_owned(),
    }
}

async fn run(
    app: &App,
    config: &Config,
    req: &TokenRequest,
) -> Result<(Identity, Vec<Grant>, TokenResponse), Error> {
    let service = req
        .service
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(Error::MissingParameter("service"))?;
    issue::check_service(config, service)?;
    let claimed = req.proof.claimed_account();
    let who = match &req.proof {
        // Presenting no secret is no guess: only a lockout in force refuses it.
        Proof::Credentials(creds @ Credentials::Anonymous) => {
            app.throttle.check(None, req.ip)?;
            config.authn.authenticate(creds).await?
        }
        Proof::Credentials(creds) => {
            let attempt = app
                .throttle
                .reserve(&config.throttle, claimed, req.ip)
                .await?;
            settle(attempt, config.authn.authenticate(creds).await)?
        }
        Proof::RefreshToken(token) => {
            let attempt = app
                .throttle
                .reserve(&config.throttle, claimed, req.ip)
                .await?;
            let who = refresh::redeem(
                &config.token.refresh_secret,
                &config.authn.users,
                token,
                token::unix_now(),
            );
            settle(attempt, who)?
        }
    };
    if let Some(account) = req
        .account
        .as_deref()
        .filter(|a| !a.is_empty() && *a != who.account)
    {
        return Err(Error::AccountMismatch(account.to_owned()));
    }
    let grants = issue::authorize(config, &who, service, Some(req.ip), &req.scopes).await?;
    let mut response = issue::sign(config, &who, service, &grants)?;
    if req.offline && matches!(req.proof, Proof::Credentials(_)) {
        let expires = token::unix_now().saturating_add(config.token.refresh_ttl.as_secs());
        response.refresh_token = refresh::mint(&config.token.refresh_secret, &who, expires);
    }
    Ok((who, grants, response))
}
