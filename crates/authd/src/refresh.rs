//! OAuth2 refresh tokens: an opaque, HMAC-authenticated string naming an account and bound to
//! its current password hash, so it stops working when the user is removed or the password
//! changes (or the signing key, which the secret derives from, is replaced).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::authn::{Identity, Users};
use crate::error::Error;

const PREFIX: &str = "brt1";

/// A new refresh token for `identity`; `None` for an account without password (anonymous).
pub fn mint(secret: &[u8; 32], identity: &Identity) -> Option<String> {
    let hash = identity.password.as_ref()?;
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mac = tag(secret, &identity.account, &nonce, hash.as_str())?;
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
    let mut check = keyed(secret).ok_or(Error::InvalidRefreshToken)?;
    feed(&mut check, &account, &nonce, hash.as_str());
    check
        .verify_slice(&mac)
        .map_err(|_| Error::InvalidRefreshToken)?;
    Ok(identity)
}

fn keyed(secret: &[u8; 32]) -> Option<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(secret).ok()
}

fn feed(mac: &mut Hmac<Sha256>, account: &str, nonce: &[u8], hash: &str) {
    for part in [account.as_bytes(), nonce, hash.as_bytes()] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
}

fn tag(secret: &[u8; 32], account: &str, nonce: &[u8], hash: &str) -> Option<Vec<u8>> {
    let mut mac = keyed(secret)?;
    feed(&mut mac, account, nonce, hash);
    Some(mac.finalize().into_bytes().to_vec())
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
