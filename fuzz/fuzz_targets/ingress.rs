//! Ingress: the JSON check (nesting scan, UTF-8, serde_json, surrogate escapes) and every inbound verifier,
//! on arbitrary headers and body. Asserts that nothing panics, and that a body the check accepts
//! is one routing can read (the check exists so that an acknowledged event is never stuck).
#![no_main]

use hookgate::fuzzing::{
    Algorithm, BodyFormat, Bytes, Encoding, Envelope, EventTypeRule, HeaderMap, HeaderName,
    HeaderValue, HmacHeader, MAX_DEPTH, Secret, StoredEvent, Verifier, check_json,
    nests_deeper_than,
};
use hookgate_fuzz::{field, split_request};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The catalog samples' secrets (catalog/<preset>/catalog.json) and the published test vectors'
/// (tests/fixtures/signatures.json), so seeds start out verifying.
static VERIFIERS: LazyLock<Vec<Verifier>> = LazyLock::new(|| {
    let hmac = |header: HmacHeader, secret: &str| Verifier::Hmac {
        header,
        secrets: vec![Secret::new("other-secret"), Secret::new(secret)],
    };
    vec![
        hmac(HmacHeader::github(), "It's a Secret to Everybody"),
        hmac(HmacHeader::spacelift(), "spacelift-fixture-secret"),
        hmac(HmacHeader::spacelift_sha1(), "spacelift-fixture-secret"),
        hmac(HmacHeader::pulumi(), "pulumi-fixture-secret"),
        hmac(HmacHeader::hcp(), "hcp-fixture-token"),
        hmac(HmacHeader::tfe(), "tfe-sample-token"),
        hmac(
            HmacHeader::new("x-sig", Algorithm::Sha512, "v1=", Encoding::Base64),
            "s",
        ),
        Verifier::standard_webhooks(&[
            Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Secret::new("not-base64-so-raw-bytes"),
        ]),
        Verifier::Token {
            header: "x-token".into(),
            query: Some("token".into()),
            secrets: vec![Secret::new("t0ken")],
        },
        Verifier::Token {
            header: "X-Gitlab-Token".into(),
            query: None,
            secrets: vec![Secret::new("gitlab-sample-token")],
        },
    ]
});

/// The timestamp catalog/sign.py signs the Standard Webhooks samples with.
const NOW_S: i64 = 1_749_731_402;

fuzz_target!(|data: &[u8]| {
    let (lines, body) = split_request(data);

    if check_json(body).is_ok() {
        assert!(!nests_deeper_than(body, MAX_DEPTH));
        let event = StoredEvent {
            id: "evt_1".into(),
            source: "s".into(),
            received_at: 0,
            headers: Vec::new(),
            query: Vec::new(),
            body: Bytes::copy_from_slice(body),
            replays: 0,
        };
        if let Err(e) = Envelope::build(&event, BodyFormat::Json, &EventTypeRule::None) {
            panic!("ingress accepted a body that routing cannot read: {e}");
        }
    }

    let mut headers = HeaderMap::new();
    for (name, value) in &lines {
        // What hyper would refuse never reaches a verifier; the rest (obs-text too) can.
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    // A pseudo-header `?` carries the query string (the token verifier reads it).
    let query = field(&lines, "?");
    for verifier in VERIFIERS.iter() {
        let _ = verifier.verify_request(&headers, query.as_deref(), body, NOW_S);
    }
});
