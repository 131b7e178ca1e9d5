//! Signatures: every outbound signer's headers, fed to the inbound verifier of the same scheme,
//! must verify (sign then verify round-trips) and must not verify a changed body; the header
//! encodings round-trip, and decoding or parsing any text never panics.
//!
//! Input: the request layout of `hookgate_fuzz` with optional fields `secret`, `id` (delivery
//! id), `type` (event type) and `now` (Unix seconds) in the header block; the body is signed.
#![no_main]

use hookgate::fuzzing::{
    Algorithm, Encoding, HeaderMap, HeaderName, HeaderValue, HmacHeader, KeyBytes, Secret,
    SignInput, Signer, Verifier, standard_webhooks_key,
};
use hookgate_fuzz::{field, split_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (lines, body) = split_request(data);
    let secret = field(&lines, "secret").unwrap_or_else(|| "It's a Secret to Everybody".into());
    let id = field(&lines, "id").unwrap_or_else(|| "dlv_1".into());
    let event_type = field(&lines, "type");
    let now_s = field(&lines, "now")
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or(1_749_731_402);

    // Parsing and decoding what a config or a producer sent: any text.
    for text in [&secret, &id] {
        let _ = Algorithm::parse(text);
        let _ = Encoding::parse(text);
        for encoding in [Encoding::Hex, Encoding::Base64] {
            if let Some(bytes) = encoding.decode(text) {
                assert_eq!(encoding.decode(&encoding.encode(&bytes)), Some(bytes));
            }
        }
    }
    for encoding in [Encoding::Hex, Encoding::Base64] {
        assert_eq!(
            encoding.decode(&encoding.encode(body)).as_deref(),
            Some(body)
        );
    }

    let s = || Secret::new(secret.clone());
    let hmac = |header: HmacHeader| {
        (
            Signer::Hmac {
                header: header.clone(),
                secret: s(),
            },
            Verifier::Hmac {
                header,
                secrets: vec![s()],
            },
        )
    };
    let pairs = [
        hmac(HmacHeader::github()),
        hmac(HmacHeader::hcp()),
        hmac(HmacHeader::new(
            "x-sig",
            Algorithm::Sha512,
            "v1=",
            Encoding::Base64,
        )),
        hmac(HmacHeader::new("x-sig", Algorithm::Sha1, "", Encoding::Hex)),
        (
            Signer::Spacelift {
                secret: s(),
                sha1: true,
            },
            Verifier::Hmac {
                header: HmacHeader::spacelift(),
                secrets: vec![s()],
            },
        ),
        (
            Signer::Spacelift {
                secret: s(),
                sha1: true,
            },
            Verifier::Hmac {
                header: HmacHeader::spacelift_sha1(),
                secrets: vec![s()],
            },
        ),
        (
            Signer::Pulumi { secret: s() },
            Verifier::Hmac {
                header: HmacHeader::pulumi(),
                secrets: vec![s()],
            },
        ),
        (
            Signer::StandardWebhooks {
                key: KeyBytes::new(standard_webhooks_key(&secret)),
            },
            Verifier::standard_webhooks(&[s()]),
        ),
        (
            Signer::Plain {
                header: "x-token".into(),
                prefix: String::new(),
                secret: s(),
            },
            Verifier::Token {
                header: "x-token".into(),
                query: Some("token".into()),
                secrets: vec![s()],
            },
        ),
    ];

    for (signer, verifier) in &pairs {
        let input = SignInput {
            delivery_id: &id,
            event_type: event_type.as_deref(),
            body,
            now_s,
        };
        let mut headers = HeaderMap::new();
        let mut sendable = true;
        for (name, value) in signer.headers(input) {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                // Verifiers read header values as visible ASCII (`HeaderValue::to_str`).
                (Ok(n), Ok(v)) if v.to_str().is_ok() => {
                    headers.append(n, v);
                }
                // A delivery id, event type or plain secret that is no (ASCII) header value: the
                // HTTP client refuses it or the receiver cannot read it, so there is nothing to
                // verify. MACs are always hex or base64, so only those fields can be the cause.
                _ => sendable = false,
            }
        }
        if !sendable {
            continue;
        }
        if let Err(e) = verifier.verify(&headers, body, now_s) {
            panic!("{signer:?} signed what {verifier:?} refuses: {e}");
        }
        if !matches!(signer, Signer::Plain { .. }) {
            let mut changed = body.to_vec();
            changed.push(b'!');
            assert!(
                verifier.verify(&headers, &changed, now_s).is_err(),
                "a changed body verified"
            );
        }
    }
});
