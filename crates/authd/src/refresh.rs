//! OAuth2 refresh tokens: an opaque, HMAC-authenticated string naming an account and bound to
//! its current password hash, so it stops working when the user is removed or the password
//! changes (or the signing key, which the secret derives from, is replaced).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use crate::authn::{Identity, Users};
use crate::error::Error;
use crate::mac;

const PREFIX: &str = "brt1";

/// A new refresh token for `identity`; `None` for an account without password (anonymous).
pub fn mint(secret: &[u8; 32], identity: &Identity) -> Option<String> {
    let hash = identity.password.as_ref()?;
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mac = mac::tag(
        secret,
        &[
            identity.account.as_bytes(),
            &nonce,
            hash.as_str().as_bytes(),
        ],
    );
    Some(format!(
        "{PREFIX}.{}.{}.{}",
        URL_SAFE_NO_PAD.encode(&identity.account),
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(mac)
    ))
}

/// The identity a refresh token stands for, if it is genuine and its user unchanged.
///
/// # Errors
/// [`Error::InvalidRefreshToken`] for anything else.
pub fn redeem(secret: &[u8; 32], users: &Users, token: &str) -> Result<Identity, Error> {
    let parts: Vec<&str> = token.split('.').collect();
    let [PREFIX, account, nonce, mac] = parts.as_slice() else {
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
    if mac::verify(
        secret,
        &[account.as_bytes(), &nonce, hash.as_str().as_bytes()],
        &mac,
    ) {
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

    #[test]
    fn works_until_the_password_changes_or_user_goes() {
        let secret = [7u8; 32];
        let before = users("one");
        let alice = before
            .current("alice")
            .unwrap_or_else(|| panic!("no alice"));
        let token = mint(&secret, &alice).unwrap_or_default();
        assert_eq!(
            redeem(&secret, &before, &token).map(|i| i.account).ok(),
            Some("alice".into())
        );
        let changed = users("two");
        assert!(matches!(
            redeem(&secret, &changed, &token),
            Err(Error::InvalidRefreshToken)
        ));
        assert!(redeem(&[8u8; 32], &before, &token).is_err());
        let forged = token.replace(
            &URL_SAFE_NO_PAD.encode("alice"),
            &URL_SAFE_NO_PAD.encode("admin"),
        );
        assert!(redeem(&secret, &before, &forged).is_err());
        for junk in ["", "brt1", "brt1.a.b", "x.y.z.w", "brt1.!!.!!.!!"] {
            assert!(redeem(&secret, &before, junk).is_err(), "{junk}");
        }
        let anonymous = Identity {
            account: String::new(),
            labels: BTreeMap::new(),
            password: None,
        };
        assert!(mint(&secret, &anonymous).is_none());
    }
}
