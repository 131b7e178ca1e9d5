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
    cli_at(gw.admin_url.as_deref().expect("admin"), token, args).await
}

/// [`cli`] against the admin API at `admin_url` (a gateway of this process or a child's).
pub async fn cli_at(admin_url: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend([
        "--url".into(),
        admin_url.into(),
        "--token".into(),
        token.into(),
    ]);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        super::binary::run(&args, &[])
    })
    .await
    .expect("join")
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
