//! Envelopes: `Envelope::build` on arbitrary bodies and headers, with each body format and each
//! event-type rule, and `nests_deeper_than` on any bytes and bound. Asserts no panic, and:
//! a raw body always builds; a JSON body deeper than the bound never reaches the (recursive)
//! parser; a body ingress accepts always builds; a built envelope's JSON is JSON; the resolved
//! event type is one the envelope answers to.
#![no_main]

use hookgate::fuzzing::{
    BodyFormat, Bytes, Envelope, EventTypeRule, JqProgram, MAX_DEPTH, StoredEvent, check_json,
    nests_deeper_than,
};

use hookgate_fuzz::{split_request, text_headers};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static RULES: LazyLock<Vec<EventTypeRule>> = LazyLock::new(|| {
    vec![
        EventTypeRule::None,
        EventTypeRule::Header("x-github-event".into()),
        EventTypeRule::BodyFields(vec!["type".into(), "event_type".into(), "kind".into()]),
        EventTypeRule::Spacelift,
        EventTypeRule::Hcp,
        EventTypeRule::Pulumi,
        EventTypeRule::Jq(
            JqProgram::compile(r#".body.type // .headers["x-event"] // .queryParams.kind"#)
                .expect("the rule compiles"),
        ),
    ]
});

fuzz_target!(|data: &[u8]| {
    let (lines, body) = split_request(data);

    // The scan: any bound, any bytes; a document deeper than `max` is deeper than `max - 1`.
    let max = data.first().map_or(0, |&b| b as usize);
    if max > 0 && nests_deeper_than(body, max) {
        assert!(nests_deeper_than(body, max - 1));
    }

    // Header lines named `?name` are query parameters.
    let (query, headers): (Vec<_>, Vec<_>) = text_headers(&lines)
        .into_iter()
        .partition(|(k, _)| k.starts_with('?'));
    let query = query
        .into_iter()
        .map(|(k, v)| (k[1..].to_string(), v))
        .collect();
    let event = StoredEvent {
        id: "evt_1".into(),
        source: "s".into(),
        received_at: i64::from_le_bytes(*data.first_chunk().unwrap_or(&[0; 8])),
        headers,
        query,
        body: Bytes::copy_from_slice(body),
        replays: 0,
    };
    let too_deep = nests_deeper_than(body, MAX_DEPTH);
    let accepted = check_json(body).is_ok();

    for rule in RULES.iter() {
        for format in [BodyFormat::Json, BodyFormat::Raw] {
            let built = Envelope::build(&event, format, rule);
            let envelope = match (format, built) {
                (_, Ok(envelope)) => envelope,
                (BodyFormat::Raw, Err(e)) => panic!("a raw body did not build: {e}"),
                (BodyFormat::Json, Err(e)) if accepted => {
                    panic!("a body ingress accepts did not build: {e}")
                }
                (BodyFormat::Json, Err(_)) => continue,
            };
            assert!(
                !(format == BodyFormat::Json && too_deep),
                "a body deeper than {MAX_DEPTH} levels was parsed"
            );
            if let Some(t) = envelope.event_type() {
                assert!(envelope.is_named(t));
            }
            // jaq is lenient (NaN, invalid UTF-8, non-string keys), so only bodies that ingress
            // accepts must come out as JSON; a few levels of headroom for the envelope itself
            // under serde_json's recursion limit of 128. JSON syntax, as ingress checks it
            // (RawValue): numbers past f64, such as 1e400, are valid JSON and pass through as
            // written, though serde_json::Value refuses them.
            if format == BodyFormat::Raw || (accepted && !nests_deeper_than(body, 120)) {
                let json = match envelope.to_json() {
                    Ok(json) => json,
                    Err(e) => panic!("an accepted body's envelope cannot be written: {e}"),
                };
                if let Err(e) = serde_json::from_str::<&serde_json::value::RawValue>(&json) {
                    panic!("envelope JSON does not parse ({e}): {json}");
                }
            }
        }
    }
});
