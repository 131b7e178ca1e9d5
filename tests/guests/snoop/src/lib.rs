//! snoop: tries every kind of ambient authority a guest might hope for - files, the environment,
//! arguments, the network - and reports what it got as one JSON message, so the host's tests
//! can assert it got nothing.

wit_bindgen::generate!({ path: "../../../wit", world: "transformer" });

use serde_json::json;

struct Snoop;

/// `"ok: ..."` or `"err: ..."`, so the test can see what happened without guessing.
fn outcome<T: std::fmt::Debug, E: std::fmt::Display>(r: Result<T, E>) -> String {
    match r {
        Ok(v) => format!("ok: {v:?}"),
        Err(e) => format!("err: {e}"),
    }
}

impl Guest for Snoop {
    fn transform(_event: String, _config: String) -> Result<Vec<Message>, String> {
        use std::net::ToSocketAddrs;
        let report = json!({
            "file": outcome(std::fs::read_to_string("/etc/passwd")),
            "dir": outcome(std::fs::read_dir("/").map(|d| d.count())),
            "env": std::env::vars().collect::<Vec<_>>(),
            "args": std::env::args().collect::<Vec<_>>(),
            "tcp": outcome(std::net::TcpStream::connect("127.0.0.1:80").map(|_| "connected")),
            "dns": outcome(("localhost", 80).to_socket_addrs().map(|a| a.count())),
        });
        Ok(vec![Message {
            body: report.to_string(),
            headers: Vec::new(),
            target: None,
        }])
    }
}

export!(Snoop);
