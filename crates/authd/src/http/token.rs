//! `GET /auth` (Docker's token protocol, Basic credentials) and `POST /auth` (OAuth2 password
//! and refresh-token grants): parse parameters into a [`TokenRequest`] and hand it to [`flow`].

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::app::App;
use crate::authn::Credentials;
use crate::error::Error;
use crate::flow::{self, Proof, TokenRequest};
use crate::issue::{requested_scopes, TokenResponse};

/// Longest accepted query string or form body for a token request.
pub const MAX_PARAMS: usize = 8 * 1024;

/// `GET /auth?service=…&scope=…[&account=…][&offline_token=true]` with optional Basic auth.
pub async fn get(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<server::Peer>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<TokenResponse>, Error> {
    let params = Params::parse(query.as_deref().unwrap_or(""))?;
    let proof = Proof::Credentials(basic_credentials(&headers)?);
    let offline = params.first("offline_token") == Some("true");
    let req = params.into_request(proof, offline, client_ip(&app, peer, &headers)?)?;
    Ok(Json(flow::handle(&app, req).await?))
}

/// `POST /auth` with a form body: `grant_type=password|refresh_token`, `service`, `scope`, …
pub async fn post(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<server::Peer>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenResponse>, Error> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::BodyTooLarge(MAX_PARAMS),
        _ => Error::BadRequest(e.body_text()),
    })?;
    let body = std::str::from_utf8(&body)
        .map_err(|_| Error::BadRequest("form body is not UTF-8".into()))?;
    let params = Params::parse(body)?;
    let proof = match params.first("grant_type") {
        Some("password") => Proof::Credentials(Credentials::Password {
            user: params
                .first("username")
                .ok_or(Error::MissingParameter("username"))?
                .to_owned(),
            password: params
                .first("password")
                .ok_or(Error::MissingParameter("password"))?
                .to_owned(),
        }),
        Some("refresh_token") => Proof::RefreshToken(
            params
                .first("refresh_token")
                .ok_or(Error::MissingParameter("refresh_token"))?
                .to_owned(),
        ),
        Some(other) => return Err(Error::UnsupportedGrant(other.to_owned())),
        None => return Err(Error::MissingParameter("grant_type")),
    };
    let offline = params.first("access_type") == Some("offline");
    let req = params.into_request(proof, offline, client_ip(&app, peer, &headers)?)?;
    Ok(Json(flow::handle(&app, req).await?))
}

/// Decoded `key=value` pairs of a query string or form body.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: &str) -> Result<Self, Error> {
        if raw.len() > MAX_PARAMS {
            return Err(Error::QueryTooLong(MAX_PARAMS));
        }
        Ok(Params(
            url::form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        ))
    }

    fn first(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn into_request(self, proof: Proof, offline: bool, ip: IpAddr) -> Result<TokenRequest, Error> {
        let mut scopes = Vec::new();
        for (_, value) in self.0.iter().filter(|(k, _)| k == "scope") {
            scopes.extend(requested_scopes(value)?);
        }
        Ok(TokenRequest {
            proof,
            account: self.first("account").map(str::to_owned),
            service: self.first("service").map(str::to_owned),
            scopes,
            offline,
            ip,
        })
    }
}

fn client_ip(app: &App, peer: server::Peer, headers: &HeaderMap) -> Result<IpAddr, Error> {
    match (&app.config.load().real_ip, peer.ip()) {
        (Some(real_ip), ip) => real_ip.client_ip(ip, headers),
        (None, Some(ip)) => Ok(ip),
        // Loading refuses `net: unix` without `real_ip_header`; a reload to tcp without it
        // leaves the socket's connections here.
        (None, None) => Err(Error::BadRequest(
            "the connection has no client address: set server.real_ip_header".to_owned(),
        )),
    }
}

/// No header is anonymous; otherwise it must be well-formed `Basic base64(user:password)`.
fn basic_credentials(headers: &HeaderMap) -> Result<Credentials, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Credentials::Anonymous);
    };
    let value = value
        .to_str()
        .map_err(|_| Error::BadAuthorization("not ASCII"))?;
    let (scheme, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or(Error::BadAuthorization("expected `Basic <base64>`"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::BadAuthorization(
            "only Basic credentials are accepted here",
        ));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| Error::BadAuthorization("invalid base64"))?;
    let text = String::from_utf8(decoded)
        .map_err(|_| Error::BadAuthorization("credentials are not UTF-8"))?;
    let (user, password) = text
        .split_once(':')
        .ok_or(Error::BadAuthorization("no ':' between user and password"))?;
    Ok(Credentials::Password {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_basic_credentials_or_says_what_is_wrong() {
        let table = [
            ("Basic YWxpY2U6cHc6eA==", Ok("alice/pw:x")),
            ("basic YWxpY2U6", Ok("alice/")),
            ("Bearer abc", Err("only Basic")),
            ("Basic", Err("expected `Basic <base64>`")),
            ("Basic !!!", Err("invalid base64")),
            ("Basic YWxpY2U=", Err("no ':'")),
            ("Basic /w==", Err("not UTF-8")),
        ];
        for (value, want) in table {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            let got = match basic_credentials(&h) {
                Ok(Credentials::Password { user, password }) => Ok(format!("{user}/{password}")),
                Ok(Credentials::Anonymous) => Ok("anonymous".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w),
                (Err(g), Err(w)) => assert!(g.contains(w), "{value}: {g}"),
                (g, w) => panic!("{value}: {g:?} vs {w:?}"),
            }
        }
        assert!(matches!(
            basic_credentials(&HeaderMap::new()),
            Ok(Credentials::Anonymous)
        ));
    }

    #[test]
    fn collects_scopes_from_every_parameter_and_refuses_long_queries() {
        let p = Params::parse(
            "service=registry&scope=repository:a:pull%20repository:b:push&scope=registry:catalog:*",
        );
        let req = p.and_then(|p| {
            p.into_request(
                Proof::RefreshToken(String::new()),
                false,
                [127, 0, 0, 1].into(),
            )
        });
        assert_eq!(req.map(|r| r.scopes.len()).ok(), Some(3));
        let bad = Params::parse("scope=repository:a").and_then(|p| {
            p.into_request(
                Proof::RefreshToken(String::new()),
                false,
                [127, 0, 0, 1].into(),
            )
        });
        assert!(matches!(bad, Err(Error::Scope(_))));
        for name in [
            "alice/../secret/db",
            "alice/",
            "/alice",
            "Alice/App",
            "a//b",
        ] {
            let bad = Params::parse(&format!("scope=repository:{name}:pull")).and_then(|p| {
                p.into_request(
                    Proof::RefreshToken(String::new()),
                    false,
                    [127, 0, 0, 1].into(),
                )
            });
            assert!(matches!(bad, Err(Error::Name(_))), "{name}");
        }
        let plugin = Params::parse("scope=repository(plugin):Vieux/SSHFS:pull").and_then(|p| {
            p.into_request(
                Proof::RefreshToken(String::new()),
                false,
                [127, 0, 0, 1].into(),
            )
        });
        assert!(plugin.is_ok());
        assert!(matches!(
            Params::parse(&"a".repeat(MAX_PARAMS + 1)),
            Err(Error::QueryTooLong(_))
        ));
    }
}
