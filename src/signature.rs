//! HMAC primitives and the encodings signature headers use, shared by [`crate::ingress::verify`] (inbound) and
//! [`crate::deliver::sign`] (outbound) so that both sides of a scheme compute the same bytes.
//!
//! This module is pure: no I/O, no clocks. Comparison of a received signature with an expected one
//! goes through [`constant_time_eq`] and nowhere else.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

/// The digest behind an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

/// How a MAC is written into a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "hex" => Some(Self::Hex),
            "base64" => Some(Self::Base64),
            _ => None,
        }
    }

    pub fn encode(self, bytes: &[u8]) -> String {
        let mut text = String::new();
        self.encode_onto(bytes, &mut text);
        text
    }

    /// [`Encoding::encode`] at the end of `text`, so a header's prefix and MAC share one string.
    pub(crate) fn encode_onto(self, bytes: &[u8], text: &mut String) {
        match self {
            Self::Hex => {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                text.reserve(bytes.len() * 2);
                for b in bytes {
                    text.push(char::from(DIGITS[usize::from(b >> 4)]));
                    text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
                }
            }
            Self::Base64 => base64::engine::general_purpose::STANDARD.encode_string(bytes, text),
        }
    }

    /// Decodes what a producer sent; `None` when it is not valid in this encoding.
    pub fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Self::Hex => {
                // Into a buffer of the exact size: `hex::decode` collects through an iterator
                // that grows its vector from empty (a third of ingress's signature check).
                let text = text.trim();
                let mut out = vec![0; text.len() / 2];
                hex::decode_to_slice(text, &mut out).ok().map(|()| out)
            }
            Self::Base64 => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok(),
        }
    }
}

/// HMAC of `parts` concatenated, keyed with `key`.
pub fn hmac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // `new_from_slice` accepts keys of any length for HMAC, so the error branch is unreachable;
    // an empty MAC would simply never match.
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match <M as hmac::digest::KeyInit>::new_from_slice(key) {
            Ok(mut mac) => {
                for part in parts {
                    mac.update(part);
                }
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
    match algorithm {
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

/// GitLab does not sign: it sends the webhook's secret token as is, in this header.
pub(crate) const GITLAB_TOKEN_HEADER: &str = "X-Gitlab-Token";

/// Compares two MACs in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A Standard Webhooks secret's key bytes: base64, after an optional `whsec_`, as the Standard
/// Webhooks and Svix libraries read it. Config validation refuses a secret that is not base64
/// ([`check_standard_webhooks_secret`]) before it is used; such a secret would be taken as its
/// raw bytes here.
pub fn standard_webhooks_key(secret: &str) -> Vec<u8> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|_| secret.as_bytes().to_vec())
}

/// Whether `secret` is a Standard Webhooks key the libraries can read: base64 (after an optional
/// `whsec_`) of at least one byte.
pub(crate) fn check_standard_webhooks_secret(secret: &str) -> Result<(), &'static str> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(key) if !key.is_empty() => Ok(()),
        _ => Err(
            "a standard-webhooks secret is base64 key bytes, optionally after `whsec_`, as the \
             Standard Webhooks and Svix libraries read it",
        ),
    }
}

/// The `v1,<base64>` signature of Standard Webhooks over `id.timestamp.body`.
pub fn standard_webhooks_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = hmac(
        Algorithm::Sha256,
        key,
        &[id.as_bytes(), b".", ts.as_bytes(), b".", body],
    );
    format!("v1,{}", Encoding::Base64.encode(&mac))
}

/// A secret from the config. Its `Debug` never shows the value, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Key bytes decoded from a secret (a Standard Webhooks `whsec_` key). Like [`Secret`], its
/// `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBytes(Vec<u8>);

impl KeyBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(<redacted>)")
    }
}

/// An HMAC written into one header: `<prefix><encoded mac>`.
#[derive(Debug, Clone)]
pub struct HmacHeader {
    pub(crate) header: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) prefix: String,
    pub(crate) encoding: Encoding,
}

impl HmacHeader {
    pub fn new(header: &str, algorithm: Algorithm, prefix: &str, encoding: Encoding) -> Self {
        Self {
            header: header.to_string(),
            algorithm,
            prefix: prefix.to_string(),
            encoding,
        }
    }

    /// GitHub: `X-Hub-Signature-256: sha256=<hex>`.
    pub fn github() -> Self {
        Self::new(
            "X-Hub-Signature-256",
            Algorithm::Sha256,
            "sha256=",
            Encoding::Hex,
        )
    }
    /// Spacelift: `X-Signature-256: sha256=<hex>`.
    pub fn spacelift() -> Self {
        Self::new(
            "X-Signature-256",
            Algorithm::Sha256,
            "sha256=",
            Encoding::Hex,
        )
    }
    /// Spacelift's legacy `X-Signature: sha1=<hex>`.
    pub fn spacelift_sha1() -> Self {
        Self::new("X-Signature", Algorithm::Sha1, "sha1=", Encoding::Hex)
    }
    /// Pulumi Cloud: lower-case hex HMAC-SHA256, no prefix.
    pub fn pulumi() -> Self {
        Self::new(
            "Pulumi-Webhook-Signature",
            Algorithm::Sha256,
            "",
            Encoding::Hex,
        )
    }
    /// HashiCorp Cloud Platform: lower-case hex HMAC-SHA512 keyed with the token, no prefix.
    pub fn hcp() -> Self {
        Self::new(
            "X-HCP-Webhook-Signature",
            Algorithm::Sha512,
            "",
            Encoding::Hex,
        )
    }
    /// HCP Terraform and Terraform Enterprise notifications: lower-case hex HMAC-SHA512 keyed
    /// with the notification configuration's token, no prefix.
    pub fn tfe() -> Self {
        Self::new(
            "X-TFE-Notification-Signature",
            Algorithm::Sha512,
            "",
            Encoding::Hex,
        )
    }

    /// The header value for `body` signed with `secret`.
    pub(crate) fn value(&self, secret: &Secret, body: &[u8]) -> String {
        let mac = hmac(self.algorithm, secret.expose().as_bytes(), &[body]);
        let mut value = String::with_capacity(self.prefix.len() + mac.len() * 2);
        value.push_str(&self.prefix);
        self.encoding.encode_onto(&mac, &mut value);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_keys_never_show_in_debug() {
        let key = KeyBytes::new(standard_webhooks_key(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ));
        let shown = format!("{key:?} {:?}", Secret::new("sk_live_123"));
        assert!(!shown.contains("sk_live"), "{shown}");
        assert!(!shown.contains(&format!("{:?}", key.expose())), "{shown}");
        assert!(!shown.chars().any(|c| c.is_ascii_digit()), "{shown}");
    }

    #[test]
    fn github_published_vector() {
        let mac = hmac(
            Algorithm::Sha256,
            b"It's a Secret to Everybody",
            &[b"Hello, World!"],
        );
        assert_eq!(
            Encoding::Hex.encode(&mac),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn standard_webhooks_published_vector() {
        let key = standard_webhooks_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        let sig = standard_webhooks_signature(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(sig, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn hex_decodes_either_case_around_spaces_and_refuses_the_rest() {
        let mac = hex::decode("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
        for text in [
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            " 757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17\n",
        ] {
            assert_eq!(Encoding::Hex.decode(text), mac.clone().ok(), "{text}");
        }
        assert_eq!(Encoding::Hex.decode(""), Some(Vec::new()));
        for bad in ["757", "75 71", "zz", "7g"] {
            assert_eq!(Encoding::Hex.decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn constant_time_eq_checks_length_and_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
