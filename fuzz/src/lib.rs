//! What the fuzz targets share: one input layout for "a request", so every target's seed corpus
//! is the same readable shape (built from tests/fixtures by `fuzz/seeds.py`).
//!
//! An input is a header block, a blank line, and the body:
//!
//! ```text
//! x-hub-signature-256: sha256=...
//! content-type: application/json
//!
//! {"the": "body"}
//! ```
//!
//! Without a blank line the whole input is the body. Header lines split at their first `:`, and
//! both sides are trimmed of spaces. The bytes are kept as they are (no UTF-8 required), so the
//! targets see header names and values that HTTP would refuse as well as ones it accepts.

/// The header lines and the body of `data`.
pub fn split_request(data: &[u8]) -> (Vec<(&[u8], &[u8])>, &[u8]) {
    let Some(at) = data.windows(2).position(|w| w == b"\n\n") else {
        return (Vec::new(), data);
    };
    let (block, body) = (&data[..at], &data[at + 2..]);
    let headers = block
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            Some((trim(&line[..colon]), trim(&line[colon + 1..])))
        })
        .collect();
    (headers, body)
}

/// The headers as text (lossy), names lower-cased, as the store keeps them.
pub fn text_headers(headers: &[(&[u8], &[u8])]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).to_ascii_lowercase(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// The value of the first header named `name` (exact bytes), as text.
pub fn field<'a>(headers: &[(&'a [u8], &'a [u8])], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}
