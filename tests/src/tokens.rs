//! Tokens authd would never issue, minted with the `token` crate: expired, foreign-signed, forged;
//! and what an issued token grants, read from its payload.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use std::time::Duration;

use token::claims::{Access, Claims};
use token::keys::{KidStyle, SigningKey};

use crate::authd::{ISSUER, SERVICE};

/// `repository:<name>:<actions>` as an access entry.
pub fn repository_access(name: &str, actions: &[&str]) -> Access {
    Access {
        kind: "repository".into(),
        name: name.into(),
        actions: actions.iter().map(|a| (*a).to_string()).collect(),
    }
}

/// Claims as authd issues them (issuer `berth-auth`, audience `registry`, 15 minutes).
pub fn claims(subject: &str, access: Vec<Access>) -> Claims {
    Claims::new(ISSUER, subject, SERVICE, Duration::from_secs(900), access)
}

/// The same claims, expired an hour ago (well past any clock-skew leeway).
pub fn expired(mut claims: Claims) -> Claims {
    claims.iat -= 7200;
    claims.nbf -= 7200;
    claims.exp = claims.iat + 3600;
    claims
}

/// Signs `claims` with `certs/token.key` (+ `token.crt`), as authd would with that key.
pub fn sign(certs: &Path, claims: &Claims) -> String {
    let read = |name: &str| {
        std::fs::read(certs.join(name))
            .unwrap_or_else(|e| panic!("cannot read {name} in {}: {e}", certs.display()))
    };
    let key = SigningKey::from_pem(&read("token.key"), &read("token.crt"), KidStyle::Libtrust)
        .unwrap_or_else(|e| panic!("cannot load the token key in {}: {e}", certs.display()));
    key.sign(claims)
        .unwrap_or_else(|e| panic!("cannot sign claims: {e}"))
}

/// A JWT with `alg: none` and an empty signature (a registry must refuse it).
pub fn unsigned(claims: &Claims) -> String {
    format!("{}.", jwt_body("none", claims))
}

/// A JWT signed with HS256 using `secret` as the HMAC key: the classic confusion attack when
/// `secret` is the registry's public certificate (a registry must refuse it).
pub fn hmac_signed(claims: &Claims, secret: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let body = jwt_body("HS256", claims);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret)
        .unwrap_or_else(|e| panic!("bad HMAC key: {e}"));
    mac.update(body.as_bytes());
    format!("{body}.{}", b64(&mac.finalize().into_bytes()))
}

fn jwt_body(alg: &str, claims: &Claims) -> String {
    let header = serde_json::json!({"alg": alg, "typ": "JWT"});
    let claims =
        serde_json::to_vec(claims).unwrap_or_else(|e| panic!("cannot serialize claims: {e}"));
    format!("{}.{}", b64(header.to_string().as_bytes()), b64(&claims))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The access a token grants, as `type:name:actions`.
pub fn granted(token: &str) -> Vec<String> {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default())
            .unwrap_or_else(|e| panic!("not a token: {e}"));
    claims["access"]
        .as_array()
        .unwrap_or_else(|| panic!("malformed access entry"))
        .iter()
        .map(|a| {
            let actions: Vec<&str> = a["actions"]
                .as_array()
                .unwrap_or_else(|| panic!("malformed access entry"))
                .iter()
                .map(|x| {
                    x.as_str()
                        .unwrap_or_else(|| panic!("malformed access entry"))
                })
                .collect();
            format!(
                "{}:{}:{}",
                a["type"]
                    .as_str()
                    .unwrap_or_else(|| panic!("malformed access entry")),
                a["name"]
                    .as_str()
                    .unwrap_or_else(|| panic!("malformed access entry")),
                actions.join(",")
            )
        })
        .collect()
}
