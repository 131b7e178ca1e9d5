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
