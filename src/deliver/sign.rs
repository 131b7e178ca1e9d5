//! Outbound signing: the headers a target's scheme adds so receivers can trust hookgate as the sender.
//!
//! Pure: given a delivery and its body, produce headers. The HMAC itself comes from
//! [`crate::signature`], the same code that verifies inbound requests.

use crate::signature::{self, GITLAB_TOKEN_HEADER, HmacHeader, Secret};

/// A target's `sign` setting, validated.
#[derive(Debug, Clone, Default)]
pub enum Signer {
    #[default]
    None,
    /// One `<prefix><mac>` header (hcp, hmac-sha256/512).
    Hmac { header: HmacHeader, secret: Secret },
    /// As GitHub sends a webhook, so that receivers written for GitHub (octokit's middleware
    /// requires the first three) accept it: `X-Hub-Signature-256`, `X-GitHub-Event` (the event
    /// type), `X-GitHub-Delivery` (a GUID made from the delivery id, so the same across retries)
    /// and a `GitHub-Hookshot/` user agent.
    Github { secret: Secret },
    /// `X-Signature-256`, plus the legacy `X-Signature` sha1 header when `sha1` is set.
    Spacelift { secret: Secret, sha1: bool },
    /// `Pulumi-Webhook-Signature`, `Pulumi-Webhook-ID` (the delivery id), `Pulumi-Webhook-Kind` (the event type).
    Pulumi { secret: Secret },
    /// `webhook-id` (the delivery id), `webhook-timestamp`, `webhook-signature`.
    StandardWebhooks { key: signature::KeyBytes },
    /// As GitLab sends a webhook: `X-Gitlab-Token` (the secret itself: GitLab does not sign),
    /// `X-Gitlab-Event` (the event type), `X-Gitlab-Event-UUID` and `Idempotency-Key` (a GUID
    /// made from the delivery id, the same across retries) and a `GitLab/` user agent.
    Gitlab { secret: Secret },
    /// `<header>: <prefix><secret>`: Port's `plain` security, a shared secret rather than a MAC.
    Plain {
        header: String,
        prefix: String,
        secret: Secret,
    },
}

/// What a signature may cover besides the body.
#[derive(Debug, Clone, Copy)]
pub struct SignInput<'a> {
    pub delivery_id: &'a str,
    pub event_type: Option<&'a str>,
    pub body: &'a [u8],
    pub now_s: i64,
}

impl Signer {
    /// The header that carries the secret itself (Port's `plain`), which a dry run must mask;
    /// every other scheme sends a MAC or an id, never the secret.
    pub fn secret_header(&self) -> Option<&str> {
        match self {
            Self::Plain { header, .. } => Some(header),
            Self::Gitlab { .. } => Some(GITLAB_TOKEN_HEADER),
            _ => None,
        }
    }

    pub fn headers(&self, input: SignInput<'_>) -> Vec<(String, String)> {
        match self {
            Self::None => Vec::new(),
            Self::Plain {
                header,
                prefix,
                secret,
            } => vec![(header.clone(), format!("{prefix}{}", secret.expose()))],
            Self::Hmac { header, secret } => {
                vec![(header.header.clone(), header.value(secret, input.body))]
            }
            Self::Github { secret } => vec![
                one(HmacHeader::github(), secret, input.body),
                (
                    "X-GitHub-Event".into(),
                    input.event_type.unwrap_or(UNKNOWN_EVENT).into(),
                ),
                ("X-GitHub-Delivery".into(), guid(input.delivery_id)),
                ("User-Agent".into(), GITHUB_USER_AGENT.into()),
            ],
            Self::Gitlab { secret } => vec![
                (GITLAB_TOKEN_HEADER.into(), secret.expose().into()),
                (
                    "X-Gitlab-Event".into(),
                    input.event_type.unwrap_or(UNKNOWN_EVENT).into(),
                ),
                ("X-Gitlab-Event-UUID".into(), guid(input.delivery_id)),
                ("Idempotency-Key".into(), guid(input.delivery_id)),
                ("User-Agent".into(), GITLAB_USER_AGENT.into()),
            ],
            Self::Spacelift { secret, sha1 } => {
                let mut h = vec![one(HmacHeader::spacelift(), secret, input.body)];
                if *sha1 {
                    h.push(one(HmacHeader::spacelift_sha1(), secret, input.body));
                }
                h
            }
            Self::Pulumi { secret } => vec![
                one(HmacHeader::pulumi(), secret, input.body),
                ("Pulumi-Webhook-ID".into(), input.delivery_id.into()),
                (
                    "Pulumi-Webhook-Kind".into(),
                    input.event_type.unwrap_or(UNKNOWN_EVENT).into(),
                ),
            ],
            Self::StandardWebhooks { key } => vec![
                ("webhook-id".into(), input.delivery_id.into()),
                ("webhook-timestamp".into(), input.now_s.to_string()),
                (
                    "webhook-signature".into(),
                    signature::standard_webhooks_signature(
                        key.expose(),
                        input.delivery_id,
                        input.now_s,
                        input.body,
                    ),
                ),
            ],
        }
    }
}

/// The event type a scheme names when the event has none.
const UNKNOWN_EVENT: &str = "unknown";

/// GitHub's own is `GitHub-Hookshot/<hash>`; receivers match the prefix.
const GITHUB_USER_AGENT: &str = concat!("GitHub-Hookshot/hookgate-", env!("CARGO_PKG_VERSION"));

/// GitLab's is `GitLab/<version>`.
const GITLAB_USER_AGENT: &str = concat!("GitLab/hookgate-", env!("CARGO_PKG_VERSION"));

/// A GUID (RFC 9562 version 8: made by a rule of our own) from the first 16 bytes of the SHA-256
/// of `id`: the same for every attempt of one delivery, unlike a random one.
fn guid(id: &str) -> String {
    use sha2::Digest as _;
    let mut b = [0u8; 16];
    b.copy_from_slice(&sha2::Sha256::digest(id.as_bytes())[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut guid = String::with_capacity(36);
    for (i, group) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]]
        .iter()
        .enumerate()
    {
        if i > 0 {
            guid.push('-');
        }
        crate::signature::Encoding::Hex.encode_onto(group, &mut guid);
    }
    guid
}

fn one(spec: HmacHeader, secret: &Secret, body: &[u8]) -> (String, String) {
    let value = spec.value(secret, body);
    (spec.header, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::verify::Verifier;
    use axum::http::{HeaderMap, HeaderName, HeaderValue};

    fn to_map(pairs: Vec<(String, String)>) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::try_from(k).unwrap(),
                HeaderValue::try_from(v).unwrap(),
            );
        }
        h
    }

    fn input(body: &[u8]) -> SignInput<'_> {
        SignInput {
            delivery_id: "dlv_1",
            event_type: Some("stack_update"),
            body,
            now_s: 1_700_000_000,
        }
    }

    #[test]
    fn what_we_sign_our_verifier_accepts() {
        let secret = Secret::new("s3cret");
        let cases = [
            (
                Signer::Github {
                    secret: secret.clone(),
                },
                HmacHeader::github(),
            ),
            (
                Signer::Spacelift {
                    secret: secret.clone(),
                    sha1: true,
                },
                HmacHeader::spacelift(),
            ),
            (
                Signer::Spacelift {
                    secret: secret.clone(),
                    sha1: true,
                },
                HmacHeader::spacelift_sha1(),
            ),
            (
                Signer::Pulumi {
                    secret: secret.clone(),
                },
                HmacHeader::pulumi(),
            ),
            (
                Signer::Hmac {
                    header: HmacHeader::hcp(),
                    secret: secret.clone(),
                },
                HmacHeader::hcp(),
            ),
            (
                Signer::Hmac {
                    header: HmacHeader::tfe(),
                    secret: secret.clone(),
                },
                HmacHeader::tfe(),
            ),
        ];
        for (signer, header) in cases {
            let h = to_map(signer.headers(input(b"{}")));
            let v = Verifier::Hmac {
                header: header.clone(),
                secrets: vec![secret.clone()],
            };
            assert_eq!(v.verify(&h, b"{}", 0), Ok(()), "{signer:?} / {header:?}");
        }
        let key = signature::KeyBytes::new(signature::standard_webhooks_key(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ));
        let h = to_map(Signer::StandardWebhooks { key }.headers(input(b"{}")));
        let v =
            Verifier::standard_webhooks(&[Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]);
        assert_eq!(v.verify(&h, b"{}", 1_700_000_000), Ok(()));
        assert_eq!(h.get("webhook-id").unwrap(), "dlv_1");
    }

    #[test]
    fn github_sends_what_octokit_requires_with_a_delivery_guid_stable_across_attempts() {
        let signer = Signer::Github {
            secret: Secret::new("k"),
        };
        let h = to_map(signer.headers(input(b"x")));
        assert_eq!(h.get("x-github-event").unwrap(), "stack_update");
        assert!(
            h.get("user-agent")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("GitHub-Hookshot/")
        );
        let guid = h.get("x-github-delivery").unwrap().to_str().unwrap();
        assert_eq!(guid.len(), 36);
        assert_eq!(&guid[14..15], "8", "version 8: {guid}");
        let later = SignInput {
            now_s: 1_800_000_000,
            ..input(b"y")
        };
        assert_eq!(
            to_map(signer.headers(later))
                .get("x-github-delivery")
                .unwrap(),
            guid
        );
        assert_ne!(super::guid("dlv_2"), guid);
    }

    #[test]
    fn a_guid_groups_the_hashs_hex_digits_8_4_4_4_12() {
        use sha2::Digest as _;
        let mut b = sha2::Sha256::digest(b"dlv_1")[..16].to_vec();
        b[6] = (b[6] & 0x0f) | 0x80;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        let expected = [&h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]].join("-");
        assert_eq!(super::guid("dlv_1"), expected);
    }

    #[test]
    fn pulumi_sends_its_three_headers() {
        let h = Signer::Pulumi {
            secret: Secret::new("k"),
        }
        .headers(input(b"x"));
        let names: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Pulumi-Webhook-Signature",
                "Pulumi-Webhook-ID",
                "Pulumi-Webhook-Kind"
            ]
        );
    }

    #[test]
    fn gitlab_sends_its_token_event_and_a_stable_event_uuid_that_our_gitlab_source_accepts() {
        let signer = Signer::Gitlab {
            secret: Secret::new("glpat-like"),
        };
        let h = to_map(signer.headers(input(b"x")));
        assert_eq!(h.get("x-gitlab-event").unwrap(), "stack_update");
        assert_eq!(
            h.get("x-gitlab-event-uuid"),
            h.get("idempotency-key"),
            "one id for both"
        );
        assert_eq!(signer.secret_header(), Some("X-Gitlab-Token"));
        let v = Verifier::Token {
            header: GITLAB_TOKEN_HEADER.into(),
            query: None,
            secrets: vec![Secret::new("glpat-like")],
        };
        assert_eq!(v.verify(&h, b"x", 0), Ok(()));
    }
}
