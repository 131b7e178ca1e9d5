//! Console sign-in: the admin token is typed once into a form and traded for a session cookie.
//!
//! Owns the sessions (in memory: a restart signs everyone out) and the CSRF token each one
//! carries. It must never keep or compare the token or a session id in a form that leaks it:
//! sessions are found by the SHA-256 of their cookie, remember only the SHA-256 of the admin token
//! they were opened with (so rotating the token by a reload ends them), and every comparison of a
//! secret is constant-time.

use crate::signature::{Secret, constant_time_eq};
use axum::http::header::InvalidHeaderValue;
use axum::http::{HeaderMap, HeaderValue, header};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The cookie's name.
pub(super) const COOKIE: &str = "hookgate_session";
/// How long a session lasts from sign-in, used or not.
pub(super) const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; signing in past it ends the oldest.
const MAX_SESSIONS: usize = 1024;

#[derive(Debug)]
struct Session {
    csrf: String,
    /// SHA-256 of the admin token the session was opened with.
    token: [u8; 32],
    opened: Instant,
}

/// What a signed-in request knows about its session.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    /// The token every state-changing form must send back (`csrf` field or `x-csrf-token`).
    pub(crate) csrf: String,
}

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_cookie: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Opens a session for the holder of `token`; returns the cookie's value.
    pub(super) fn open(&self, token: &Secret) -> String {
        let cookie = random_hex(32);
        let session = Session {
            csrf: random_hex(32),
            token: digest(token.expose().as_bytes()),
            opened: Instant::now(),
        };
        let mut all = self.by_cookie.lock();
        all.retain(|_, s| s.opened.elapsed() < LIFETIME);
        if all.len() >= MAX_SESSIONS
            && let Some(oldest) = all.iter().min_by_key(|(_, s)| s.opened).map(|(k, _)| *k)
        {
            all.remove(&oldest);
        }
        all.insert(digest(cookie.as_bytes()), session);
        cookie
    }

    /// The session `cookie` names, if it is open, younger than [`LIFETIME`] and was opened with
    /// the admin token in force now (`None` when there is none: nobody is signed in).
    pub(super) fn find(&self, cookie: &str, token: Option<&Secret>) -> Option<SignedIn> {
        let token = digest(token?.expose().as_bytes());
        let key = digest(cookie.as_bytes());
        let mut all = self.by_cookie.lock();
        let session = all.get(&key)?;
        if session.opened.elapsed() >= LIFETIME || !constant_time_eq(&session.token, &token) {
            all.remove(&key);
            return None;
        }
        Some(SignedIn {
            csrf: session.csrf.clone(),
        })
    }

    pub(super) fn close(&self, cookie: &str) {
        self.by_cookie.lock().remove(&digest(cookie.as_bytes()));
    }
}

/// The session cookie a request carries, if any.
pub(super) fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session: never readable by scripts, never sent by another site.
pub(super) fn set_cookie(value: &str) -> Result<HeaderValue, InvalidHeaderValue> {
    HeaderValue::try_from(format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        LIFETIME.as_secs()
    ))
}

/// `Set-Cookie` that makes the browser forget the session.
pub(super) fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("hookgate_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// Whether `given` is the session's CSRF token (constant time).
pub(super) fn csrf_matches(session: &SignedIn, given: &str) -> bool {
    constant_time_eq(session.csrf.as_bytes(), given.as_bytes())
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_closed_or_the_token_changes() {
        let sessions = Sessions::default();
        let token = Secret::new("admin-token");
        let cookie = sessions.open(&token);
        assert_eq!(cookie.len(), 64);
        let signed = sessions.find(&cookie, Some(&token)).expect("open");
        assert!(csrf_matches(&signed, &signed.csrf.clone()));
        assert!(!csrf_matches(&signed, "forged"));
        assert!(sessions.find("not-a-session", Some(&token)).is_none());
        assert!(
            sessions.find(&cookie, None).is_none(),
            "no token, no console"
        );
        // A rotated token ends the sessions opened with the old one.
        assert!(
            sessions
                .find(&cookie, Some(&Secret::new("rotated")))
                .is_none()
        );
        assert!(sessions.find(&cookie, Some(&token)).is_none());
        let again = sessions.open(&token);
        sessions.close(&again);
        assert!(sessions.find(&again, Some(&token)).is_none());
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hookgate_session=abc; b=2"),
        );
        assert_eq!(cookie(&h), Some("abc"));
        let flags = set_cookie("abc").expect("valid");
        let flags = flags.to_str().expect("ascii");
        assert!(flags.contains("HttpOnly") && flags.contains("SameSite=Strict"));
    }

    #[test]
    fn sessions_are_bounded() {
        let sessions = Sessions::default();
        let token = Secret::new("t");
        let first = sessions.open(&token);
        for _ in 0..MAX_SESSIONS {
            sessions.open(&token);
        }
        assert!(sessions.find(&first, Some(&token)).is_none());
        assert_eq!(sessions.by_cookie.lock().len(), MAX_SESSIONS);
    }
}
