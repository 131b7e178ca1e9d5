//! Config: arbitrary TOML text through parsing, `${VAR}` interpolation and validation. Asserts
//! that nothing panics or overflows the stack (libFuzzer reports either as a crash), and that a
//! config that loads also loads from its resolved text, which is what the route-evaluator child
//! process is given (`Config::parse_resolved`): otherwise the gateway starts and cannot route.
#![no_main]

use hookgate::fuzzing::Config;
use libfuzzer_sys::fuzz_target;

/// A small fixed environment: some names set (one to text that itself looks like `${...}`),
/// the rest unset, so both interpolation paths run.
fn lookup(name: &str) -> Option<String> {
    match name {
        "SECRET" | "TOKEN" | "HOOKGATE_SECRET" => Some("s3cret-value".into()),
        "TRICKY" => Some("${SECRET} \"quoted\" \n".into()),
        "PORT" => Some("8080".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(text, "fuzz.toml", &lookup) else {
        return;
    };
    if let Err(e) = Config::parse_resolved(config.resolved.expose()) {
        panic!("a config that loads does not load from its resolved text: {e}");
    }
});
