//! echo: the well-behaved guest. Returns one message whose body is the event's `body` as JSON,
//! with headers saying how many times this instance ran (always 1: the host makes a fresh
//! instance per call). Logs through `host.log`, stdout and stderr unless the config says
//! `{"quiet": true}`. `{"mode": "trivial"}` skips JSON parsing (the host's per-call floor);
//! `{"mode": "scatter"}` also writes one byte on every other 4 KiB page of a 2 MiB buffer, the
//! scattered writes CPython's reference counts make, for the host's memory reset.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

use hookgate::plugin::host::log;
use hookgate::plugin::types::Level;

/// Counts calls within one instance; a fresh instance per call must always report 1.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// Zero-initialised, so it lies in linear memory outside the data segments, untouched until
/// `scatter` writes to it.
static SCRATCH: [AtomicU8; 2 << 20] = [const { AtomicU8::new(0) }; 2 << 20];

struct Echo;

impl Guest for Echo {
    fn transform(event: String, config: String) -> Result<Vec<Message>, String> {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        if config.contains("\"scatter\"") {
            for byte in SCRATCH.iter().step_by(8 << 10) {
                byte.store(1, Ordering::Relaxed);
            }
        }
        if config.contains("\"trivial\"") || config.contains("\"scatter\"") {
            return Ok(vec![Message {
                body: event,
                headers: Vec::new(),
                target: None,
            }]);
        }
        let config: serde_json::Value = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        let event: serde_json::Value = serde_json::from_str(&event).map_err(|e| e.to_string())?;
        if config["quiet"] != serde_json::Value::Bool(true) {
            log(Level::Info, &format!("echo called {calls} time(s)"));
            println!("echo stdout line");
            eprintln!("echo stderr line");
        }
        let body = serde_json::to_string(&event["body"]).map_err(|e| e.to_string())?;
        Ok(vec![Message {
            body,
            headers: vec![
                ("x-echo".to_string(), "1".to_string()),
                ("x-calls".to_string(), calls.to_string()),
            ],
            target: config["target"].as_str().map(str::to_string),
        }])
    }
}

export!(Echo);
