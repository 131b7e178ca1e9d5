//! Outbound signing: the headers a target's scheme adds so receivers can trust hookgate as the sender.
//!
//! Pure: given a delivery and its body, produce headers. The HMAC itself comes from
//! [`crate::signature`], the same code that verifies inbound requests.

use crate::signature::{self, HmacHeader, Secret};

/// A target's `sign` setting, validated.
#[derive(Debug, Clone, Default)]
pub enum Signer {
    #[default]
    None,
    /// One `<prefix><mac>` header (github, hcp, hmac-sha256/512).
    Hmac { header: HmacHeader, secret: Secret },
    /// `X-Signature-256`, plus the legacy `X-Signature` sha1 header when `sha1` is set.
    Spacelift { secret: Secret, sha1: bool },
    /// `Pulumi-Webhook-Signature`, `Pulumi-Webhook-ID` (the delivery id), `Pulumi-Webhook-Kind` (the event type).
    Pulumi { secret: Secret },
    /// `webhook-id` (the delivery id), `webhook-timestamp`, `webhook-signature`.
    StandardWebhooks { key: signature::KeyBytes },
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
                    input.event_type.unwrap_or("unknown").into(),
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
                Signer::Hmac {
                    header: HmacHeader::github(),
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
}
