//! flood: returns more than the host accepts. The config picks the mode:
//! `{"mode": "many", "count": 2000}` returns that many small messages;
//! `{"mode": "big", "mb": 50}` returns one body of that many MiB.

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

struct Flood;

impl Guest for Flood {
    fn transform(_event: String, config: String) -> Result<Vec<Message>, String> {
        let config: serde_json::Value = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        let message = |body: String| Message {
            body,
            headers: Vec::new(),
            target: None,
        };
        match config["mode"].as_str() {
            Some("big") => {
                let mb = config["mb"].as_u64().unwrap_or(50) as usize;
                Ok(vec![message("x".repeat(mb << 20))])
            }
            _ => {
                let count = config["count"].as_u64().unwrap_or(2000);
                Ok((0..count)
                    .map(|i| message(format!("{{\"n\":{i}}}")))
                    .collect())
            }
        }
    }
}

export!(Flood);
