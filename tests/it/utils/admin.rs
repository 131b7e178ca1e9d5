//! Calls to the admin API of a test gateway.

use super::{Gateway, client};

pub const TOKEN: &str = "admin-token-0123456789";
/// The `[admin]` section every config here starts with.
pub const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"admin-token-0123456789\"\n";

pub async fn admin(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let url = format!("{}{path}", gw.admin_url.as_deref().expect("admin listener"));
    let mut req = client().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Runs the `hookgate` binary's admin client against `gw` (on a blocking thread, so the
/// gateway in this runtime keeps serving).
pub async fn cli(gw: &Gateway, token: &str, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend([
        "--url".into(),
        gw.admin_url.clone().expect("admin"),
        "--token".into(),
        token.into(),
    ]);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(super::binary::BIN)
            .args(&all)
            .output()
            .expect("run hookgate")
    })
    .await
    .expect("join");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `PUT /admin/v1/plugins/{name}` with `wasm` as the body.
pub async fn upload_plugin(gw: &Gateway, name: &str, wasm: Vec<u8>) -> (u16, serde_json::Value) {
    with_body(
        gw,
        reqwest::Method::PUT,
        &format!("/admin/v1/plugins/{name}"),
        wasm,
    )
    .await
}

/// An admin request with the token and `body`; the status and the JSON answer.
pub async fn with_body(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let url = format!("{}{path}", gw.admin_url.as_deref().expect("admin"));
    let resp = client()
        .request(method, url)
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .expect("admin request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}
