//! Logins kept in memory: an opaque random id (the cookie's value) names a [`Session`] holding
//! the account, how to get tokens for it, and its CSRF token. Nothing secret leaves registryd;
//! a forged id finds nothing, and an expired one is forgotten when next seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;

use super::tokens::Credential;

/// The cookie holding the session id.
pub const COOKIE: &str = "berth_session";

/// Most sessions kept at once; past it a login is refused until some expire.
const MAX_SESSIONS: usize = 100_000;

/// One login.
#[derive(Debug)]
pub struct Session {
    /// The cookie's value.
    pub id: String,
    /// The account, as shown on the pages.
    pub user: String,
    /// What gets tokens for it (nothing for htpasswd users, who may do everything).
    pub credential: Credential,
    /// Sent back by every form that changes something.
    pub csrf: String,
    /// When the login ends.
    expires: Instant,
}

/// Every live session, by id.
#[derive(Debug)]
pub struct Sessions {
    /// A std mutex: never held across an `.await`.
    map: Mutex<HashMap<String, Arc<Session>>>,
    /// `ui.sessionlifetime`.
    lifetime: Duration,
}

/// 32 random bytes, URL-safe base64.
#[must_use]
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares secrets in time independent of where they differ.
#[must_use]
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    #[must_use]
    pub fn new(lifetime: Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            lifetime,
        }
    }

    /// Starts a session for `user`; `None` when [`MAX_SESSIONS`] live ones exist.
    pub fn create(&self, user: &str, credential: Credential) -> Option<Arc<Session>> {
        let now = Instant::now();
        let session = Arc::new(Session {
            id: random_token(),
            user: user.to_owned(),
            credential,
            csrf: random_token(),
            expires: now + self.lifetime,
        });
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
            if map.len() >= MAX_SESSIONS {
                return None;
            }
        }
        map.insert(session.id.clone(), session.clone());
        Some(session)
    }

    /// The live session of `id`; an expired one is removed.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = map.get(id)?.clone();
        if session.expires > Instant::now() {
            Some(session)
        } else {
            map.remove(id);
            None
        }
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

/// The value of cookie `name` in a `Cookie` header.
#[must_use]
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// `Set-Cookie` for a new session (`Secure` when served over HTTPS). It has no `Max-Age`: the
/// browser keeps sending it until it closes, and registryd, which knows the session's end,
/// answers an ended one with the login page (instead of the browser silently dropping it).
#[must_use]
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/ui/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the session cookie.
#[must_use]
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/ui/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_ids_are_unguessable() {
        let s = Sessions::new(Duration::from_millis(50));
        let a = s.create("alice", Credential::Anonymous).unwrap();
        assert_eq!(a.id.len(), 43);
        assert_ne!(a.id, a.csrf);
        assert_eq!(
            s.get(&a.id).map(|x| x.user.clone()).as_deref(),
            Some("alice")
        );
        assert!(s.get("forged").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.get(&a.id).is_none());
        let b = s.create("bob", Credential::Anonymous).unwrap();
        s.remove(&b.id);
        assert!(s.get(&b.id).is_none());
    }

    #[test]
    fn cookies_are_found_and_set_strictly() {
        assert_eq!(
            cookie_value("a=1; berth_session=xyz; b=2", COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie_value("xberth_session=1", COOKIE), None);
        let c = set_cookie("id", true);
        assert!(!c.contains("Max-Age"), "{c}");
        for part in ["Path=/ui/", "HttpOnly", "SameSite=Strict", "Secure"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!clear_cookie(false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}
