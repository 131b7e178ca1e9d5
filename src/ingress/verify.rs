//! Inbound signature verification: does this request come from the producer holding the secret?
//!
//! Checks run over the raw bytes received, accept any of a source's secrets (rotation), and
//! compare MACs in constant time through [`crate::signature::constant_time_eq`]. A verifier never
//! logs or returns a secret or an expected MAC; its errors say only what was wrong with the request.

use crate::signature::{self, Encoding, HmacHeader, KeyBytes, Secret};
use axum::http::HeaderMap;
use sha2::Digest as _;

/// How long a Standard Webhooks timestamp stays acceptable, either side of now.
pub(crate) const STANDARD_WEBHOOKS_TOLERANCE_S: i64 = 5 * 60;

/// Why a request failed verification. Every variant answers 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing signature header `{0}`")]
    Missing(String),
    /// Neither of a scheme's two names for its header.
    #[error("missing signature header `{0}` (or `{1}`)")]
    MissingEither(&'static str, &'static str),
    #[error("malformed signature header `{0}`")]
    Malformed(String),
    #[error("signature does not match")]
    Mismatch,
    #[error("timestamp outside the {0}s tolerance")]
    Stale(i64),
}

/// A source's verification rule.
#[derive(Debug, Clone)]
pub enum Verifier {
    /// One header holding `<prefix><mac>` of the body.
    Hmac {
        header: HmacHeader,
        secrets: Vec<Secret>,
    },
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` (space-separated
    /// `v1,<b64>`), or the same three named `svix-…`, as Svix and the senders it powers send them.
    StandardWebhooks { keys: Vec<KeyBytes> },
    /// A shared token rather than a MAC, sent in `header` or, where the preset allows it, in the
    /// query parameter `query`: Nullstone (which does not sign) and GitLab (`X-Gitlab-Token`).
    Token {
        header: String,
        query: Option<String>,
        secrets: Vec<Secret>,
    },
}

impl Verifier {
    pub fn standard_webhooks(secrets: &[Secret]) -> Self {
        Self::StandardWebhooks {
            keys: secrets
                .iter()
                .map(|s| KeyBytes::new(signature::standard_webhooks_key(s.expose())))
                .collect(),
        }
    }

    /// Checks a request: its headers, its query string and its raw body.
    pub fn verify_request(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        body: &[u8],
        now_s: i64,
    ) -> Result<(), VerifyError> {
        match self {
            Self::Token {
                header,
                query: param,
                secrets,
            } => {
                let from_header = headers
                    .get(header.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let from_query = query.zip(param.as_deref()).and_then(|(q, param)| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == param)
                        .map(|(_, v)| v.into_owned())
                });
                let given = from_header
                    .or(from_query)
                    .ok_or_else(|| VerifyError::Missing(header.clone()))?;
                // Digests of equal length, so the time taken says nothing of the token's length.
                let digest = |b: &[u8]| sha2::Sha256::digest(b).to_vec();
                let given = digest(given.as_bytes());
                let ok = secrets
                    .iter()
                    .any(|s| signature::constant_time_eq(&digest(s.expose().as_bytes()), &given));
                if ok {
                    Ok(())
                } else {
                    Err(VerifyError::Mismatch)
                }
            }
            _ => self.verify(headers, body, now_s),
        }
    }

    /// Checks `body` against the request's headers; `now_s` is the Unix time in seconds.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now_s: i64) -> Result<(), VerifyError> {
        match self {
            Self::Token { .. } => self.verify_request(headers, None, body, now_s),
            Self::Hmac { header, secrets } => verify_hmac(header, secrets, headers, body),
            Self::StandardWebhooks { keys } => verify_standard(keys, headers, body, now_s),
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, VerifyError> {
    let value = headers
        .get(name)
        .ok_or_else(|| VerifyError::Missing(name.to_string()))?;
    value
        .to_str()
        .map_err(|_| VerifyError::Malformed(name.to_string()))
}

fn verify_hmac(
    spec: &HmacHeader,
    secrets: &[Secret],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), VerifyError> {
    let raw = header_str(headers, &spec.header)?.trim();
    let malformed = || VerifyError::Malformed(spec.header.clone());
    // Prefixes such as `sha256=` are matched without regard to case, as producers differ.
    let encoded = match raw.get(..spec.prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(&spec.prefix) => &raw[spec.prefix.len()..],
        _ => return Err(malformed()),
    };
    let received = spec.encoding.decode(encoded).ok_or_else(malformed)?;
    let matched = secrets.iter().any(|secret| {
        let expected = signature::hmac(spec.algorithm, secret.expose().as_bytes(), &[body]);
        signature::constant_time_eq(&expected, &received)
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

fn verify_standard(
    keys: &[KeyBytes],
    headers: &HeaderMap,
    body: &[u8],
    now_s: i64,
) -> Result<(), VerifyError> {
    // Both libraries read the `svix-` names when a request has no `webhook-id`.
    let [id_h, ts_h, sig_h] = if headers.contains_key("webhook-id") {
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
    } else if headers.contains_key("svix-id") {
        ["svix-id", "svix-timestamp", "svix-signature"]
    } else {
        return Err(VerifyError::MissingEither("webhook-id", "svix-id"));
    };
    let id = header_str(headers, id_h)?;
    let ts_text = header_str(headers, ts_h)?;
    let sigs = header_str(headers, sig_h)?;
    let ts: i64 = ts_text
        .trim()
        .parse()
        .map_err(|_| VerifyError::Malformed(ts_h.into()))?;
    if now_s.abs_diff(ts) > STANDARD_WEBHOOKS_TOLERANCE_S.unsigned_abs() {
        return Err(VerifyError::Stale(STANDARD_WEBHOOKS_TOLERANCE_S));
    }
    let received: Vec<Vec<u8>> = sigs
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| Encoding::Base64.decode(b64))
        .collect();
    if received.is_empty() {
        return Err(VerifyError::Malformed(sig_h.into()));
    }
    let ts = ts_text.trim();
    let matched = keys.iter().any(|key| {
        let expected = signature::hmac(
            signature::Algorithm::Sha256,
            key.expose(),
            &[id.as_bytes(), b".", ts.as_bytes(), b".", body],
        );
        received
            .iter()
            .any(|r| signature::constant_time_eq(&expected, r))
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn github(secrets: &[&str]) -> Verifier {
        Verifier::Hmac {
            header: HmacHeader::github(),
            secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
        }
    }

    /// Found by the `ingress` fuzz target: `now - ts` overflowed (a panic in debug builds, and a
    /// wrapped, negative "age" that passed the freshness check in release builds).
    #[test]
    fn extreme_standard_webhooks_timestamps_are_stale_not_a_panic() {
        let v =
            Verifier::standard_webhooks(&[Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]);
        let cases = [
            (i64::MIN, 0),
            (i64::MIN, 1_700_000_000),
            (i64::MIN, i64::MAX),
        ]
        .into_iter()
        .chain([
            (i64::MAX, 0),
            (i64::MAX, 1_700_000_000),
            (i64::MAX, i64::MIN),
        ]);
        for (ts, now) in cases {
            let ts = ts.to_string();
            let h = headers(&[
                ("webhook-id", "msg_1"),
                ("webhook-timestamp", &ts),
                ("webhook-signature", "v1,AAAA"),
            ]);
            assert_eq!(
                v.verify(&h, b"{}", now),
                Err(VerifyError::Stale(STANDARD_WEBHOOKS_TOLERANCE_S)),
                "ts {ts}, now {now}"
            );
        }
    }

    #[test]
    fn github_vector_passes_and_tampering_fails() {
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let v = github(&["It's a Secret to Everybody"]);
        let h = headers(&[("x-hub-signature-256", sig)]);
        assert_eq!(v.verify(&h, b"Hello, World!", 0), Ok(()));
        assert_eq!(
            v.verify(&h, b"Hello, World?", 0),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            v.verify(&HeaderMap::new(), b"Hello, World!", 0),
            Err(VerifyError::Missing("X-Hub-Signature-256".into()))
        );
    }

    #[test]
    fn any_rotated_secret_is_accepted() {
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let v = github(&["new-secret", "It's a Secret to Everybody"]);
        assert_eq!(
            v.verify(
                &headers(&[("x-hub-signature-256", sig)]),
                b"Hello, World!",
                0
            ),
            Ok(())
        );
    }

    #[test]
    fn standard_webhooks_vector_and_tolerance() {
        let v =
            Verifier::standard_webhooks(&[Secret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")]);
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let h = headers(&[
            ("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
            ("webhook-timestamp", "1649367553"),
            (
                "webhook-signature",
                "v1,bogus v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
        ]);
        assert_eq!(v.verify(&h, body, 1649367553 + 60), Ok(()));
        assert_eq!(
            v.verify(&h, body, 1649367553 + 301),
            Err(VerifyError::Stale(300))
        );
        assert_eq!(v.verify(&h, b"{}", 1649367553), Err(VerifyError::Mismatch));
    }

    /// What Svix and the senders it powers (Clerk, Resend, …) send: the same scheme under
    /// `svix-` names; and a secret without `whsec_` is the same base64 key, as in the libraries.
    #[test]
    fn svix_names_and_a_secret_without_its_prefix_are_read_as_the_libraries_read_them() {
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let svix = headers(&[
            ("svix-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
            ("svix-timestamp", "1649367553"),
            (
                "svix-signature",
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
        ]);
        for secret in [
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        ] {
            let v = Verifier::standard_webhooks(&[Secret::new(secret)]);
            assert_eq!(v.verify(&svix, body, 1649367553), Ok(()), "{secret}");
        }
        let v =
            Verifier::standard_webhooks(&[Secret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")]);
        let missing = v.verify(&HeaderMap::new(), body, 1649367553);
        assert_eq!(
            missing.map_err(|e| e.to_string()),
            Err("missing signature header `webhook-id` (or `svix-id`)".into())
        );
    }
}
