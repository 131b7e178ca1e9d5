//! Hostile producers and operators, the smaller items of issue 11, through the real binary: log
//! lines a path cannot forge, `try` contained and quiet about secrets, `/readyz` failing on a full
//! disk.

use crate::utils::binary::{Process, write_serve_config};
use crate::utils::client;
use std::time::Duration;

/// What the forged line would say, were the path printed as it came.
const FORGED: &str = "2026-12-02T00:00:00Z ERROR forged line";

#[tokio::test]
async fn a_newline_in_the_path_cannot_forge_a_line_of_the_text_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("gw.db").display());
    let config = write_serve_config(dir.path(), &db, "http://127.0.0.1:9/", "", "");
    let gw = Process::serve_text(&config);
    let url = format!(
        "{}/hooks/x%0A{}%0D%1B[31m",
        gw.url,
        FORGED.replace(' ', "%20")
    );
    let resp = client().post(&url).body("{}").send().await.expect("send");
    assert_eq!(resp.status().as_u16(), 404);
    // The rejection is logged at info; give the writer a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let logs = loop {
        let logs = gw.logs.lock().expect("logs").clone();
        if logs.iter().any(|l| l.contains("event rejected")) || std::time::Instant::now() > deadline
        {
            break logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let all = logs.join("\n");
    assert!(
        all.contains(&format!("x\\n{FORGED}\\r\\u{{1b}}[31m")),
        "the rejection is logged with its name escaped:\n{all}"
    );
    for line in &logs {
        assert!(!line.starts_with(FORGED), "forged line:\n{all}");
        assert!(!line.contains('\r') && !line.contains('\u{1b}'), "{line:?}");
    }
}
