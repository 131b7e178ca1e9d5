//! The evaluator's frames (gateway ↔ route-evaluator child): `decode_request` and
//! `decode_routing` on arbitrary bytes never panic (nor allocate by a length they were told), and
//! whatever decodes re-encodes to a frame that decodes to the same thing.
#![no_main]

use hookgate::fuzzing::{decode_request, decode_routing, encode_request, encode_routing};
use libfuzzer_sys::fuzz_target;

/// The event id the seed frames answer for (decode_routing refuses any other).
const EXPECTED: &str = "evt_1";

fuzz_target!(|data: &[u8]| {
    if let Ok(requests) = decode_request(data) {
        for (event, only) in &requests {
            let frame = encode_request(std::slice::from_ref(event), only.as_deref());
            let back = decode_request(&frame).expect("a re-encoded request decodes");
            assert_eq!(back.len(), 1);
            assert_eq!(format!("{:?}", back[0]), format!("{:?}", (event, only)));
        }
    }
    if let Ok(routing) = decode_routing(data, EXPECTED) {
        let frame = encode_routing(&routing);
        let back = decode_routing(&frame, EXPECTED).expect("a re-encoded routing decodes");
        assert_eq!(format!("{back:?}"), format!("{routing:?}"));
    }
});
