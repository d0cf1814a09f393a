//! OAuth2 refresh tokens: an opaque, HMAC-authenticated string naming an account and the time
//! it expires (`token.refresh_expiration` after it was issued), bound to the account's current
//! password hash, so it stops working when it expires, when the user is removed or the password
//! changes (or the signing key, which the secret derives from, is replaced).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use crate::authn::{Identity, Users};
use crate::error::Error;
use crate::mac;

/// The format's tag; `brt1` tokens (no expiry) are no longer accepted.
const PREFIX: &str = "brt2";

/// A new refresh token for `identity`, valid until `expires` (Unix seconds); `None` for an
/// account without password (anonymous).
pub fn mint(secret: &[u8; 32], identity: &Identity, expires: u64) -> Option<String> {
    let hash = identity.password.as_ref()?;
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let expires = expires.to_string();
    let mac = mac::tag(
        secret,
        &[
            identity.account.as_bytes(),
            expires.as_bytes(),
            &nonce,
            hash.as_str().as_bytes(),
        ],
    );
    Some(format!(
        "{PREFIX}.{}.{expires}.{}.{}",
        URL_SAFE_NO_PAD.encode(&identity.account),
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(mac)
    ))
}

/// The identity a refresh token stands for, if it is genuine, not expired at `now` (Unix
/// seconds) and its user unchanged.
///
/// # Errors
/// [`Error::InvalidRefreshToken`] for anything else.
pub fn redeem(secret: &[u8; 32], users: &Users, token: &str, now: u64) -> Result<Identity, Error> {
    let parts: Vec<&str> = token.split('.').collect();
    let [PREFIX, account, expires, nonce, mac] = parts.as_slice() else {
        return Err(Error::InvalidRefreshToken);
    };
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| Error::InvalidRefreshToken)
    };
    let account = String::from_utf8(decode(account)?).map_err(|_| Error::InvalidRefreshToken)?;
    let (nonce, mac) = (decode(nonce)?, decode(mac)?);
    let identity = users.current(&account).ok_or(Error::InvalidRefreshToken)?;
    let hash = identity
        .password
        .as_ref()
        .ok_or(Error::InvalidRefreshToken)?;
    // The tag covers the expiry as written, so `+5` or `05` cannot stand for `5`.
    let genuine = mac::verify(
        secret,
        &[
            account.as_bytes(),
            expires.as_bytes(),
            &nonce,
            hash.as_str().as_bytes(),
        ],
        &mac,
    );
    let expires: u64 = expires.parse().map_err(|_| Error::InvalidRefreshToken)?;
    if genuine && now < expires {
        Ok(identity)
    } else {
        Err(Error::InvalidRefreshToken)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::authn::{BcryptHash, User};

    fn users(password: &str) -> Users {
        let hash = BcryptHash::try_from(bcrypt::hash(password, 4).unwrap_or_default()).ok();
        let mut map = BTreeMap::new();
        map.insert(
            "alice".to_owned(),
            User {
                password: hash,
                labels: BTreeMap::new(),
            },
        );
        map.insert(
            String::new(),
            User {
                password: None,
                labels: BTreeMap::new(),
            },
        );
        Users::new(map, vec![]).unwrap_or_else(|e| panic!("{e}"))
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn works_until_it_expires_the_password_changes_or_user_goes() {
        let secret = [7u8; 32];
        let before = users("one");
        let alice = before
            .current("alice")
            .unwrap_or_else(|| panic!("no alice"));
        let token = mint(&secret, &alice, NOW + 60).unwrap_or_default();
        assert_eq!(
            redeem(&secret, &before, &token, NOW)
                .map(|i| i.account)
                .ok(),
            Some("alice".into())
        );
        assert!(redeem(&secret, &before, &token, NOW + 59).is_ok());
        for later in [NOW + 60, NOW + 61, u64::MAX] {
            assert!(
                matches!(
                    redeem(&secret, &before, &token, later),
                    Err(Error::InvalidRefreshToken)
                ),
                "{later}"
            );
        }
        let changed = users("two");
        assert!(matches!(
            redeem(&secret, &changed, &token, NOW),
            Err(Error::InvalidRefreshToken)
        ));
        assert!(redeem(&[8u8; 32], &before, &token, NOW).is_err());
        let forged = token.replace(
            &URL_SAFE_NO_PAD.encode("alice"),
            &URL_SAFE_NO_PAD.encode("admin"),
        );
        assert!(redeem(&secret, &before, &forged, NOW).is_err());
        for junk in ["", "brt2", "brt2.a.b", "x.y.z.w.v", "brt2.!!.1.!!.!!"] {
            assert!(redeem(&secret, &before, junk, NOW).is_err(), "{junk}");
        }
        let anonymous = Identity {
            account: String::new(),
            labels: BTreeMap::new(),
            password: None,
        };
        assert!(mint(&secret, &anonymous, NOW + 60).is_none());
    }

    #[test]
    fn a_token_whose_expiry_was_edited_is_refused() {
        let secret = [7u8; 32];
        let alice = users("one");
        let identity = alice.current("alice").unwrap_or_else(|| panic!("no alice"));
        let expired = mint(&secret, &identity, NOW - 1).unwrap_or_default();
        assert!(redeem(&secret, &alice, &expired, NOW).is_err());
        let stamp = (NOW - 1).to_string();
        assert!(expired.contains(&format!(".{stamp}.")), "{expired}");
        for edited in [
            (NOW + 3600).to_string(),
            u64::MAX.to_string(),
            format!("0{stamp}"),
            format!("+{stamp}"),
            format!("{stamp}0"),
            "99999999999999999999999".to_owned(),
            "-1".to_owned(),
        ] {
            let tampered = expired.replace(&format!(".{stamp}."), &format!(".{edited}."));
            assert!(
                matches!(
                    redeem(&secret, &alice, &tampered, NOW),
                    Err(Error::InvalidRefreshToken)
                ),
                "{edited}"
            );
        }
        // A token of the old format, without an expiry, is refused.
        let parts: Vec<&str> = expired.split('.').collect();
        let old = format!("brt1.{}.{}.{}", parts[1], parts[3], parts[4]);
        assert!(redeem(&secret, &alice, &old, NOW).is_err());
    }
}
