//! The admin API's command-line client: `deliveries ls|show|retry`, `events replay`,
//! `plugin push|ls`. A bulk `deliveries retry` always asks the gateway for the count first
//! (a dry run) and queues only with `--yes`.
//! Human tables by default, the API's JSON with `--json`; errors are one line each.

use anyhow::{Context as _, bail};

/// Where the admin API is and how to authenticate.
#[derive(Debug, Clone)]
pub(crate) struct AdminClient {
    pub(crate) url: String,
    pub(crate) token: String,
}

impl AdminClient {
    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<serde_json::Value> {
        self.send(method, path, None).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<serde_json::Value> {
        crate::server::install_crypto();
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let mut request = reqwest::Client::new()
            .request(method, &url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/wasm")
                .body(body);
        }
        let resp = request
            .send()
            .await
            .with_context(|| format!("cannot reach the admin API at {}", self.url))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let body: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        if !status.is_success() {
            let why = body["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string());
            bail!(
                "{} {}: {why}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
        }
        Ok(body)
    }

    /// `deliveries ls`: one page (or every page with `all`).
    pub(crate) async fn list(
        &self,
        filters: &[(&str, Option<String>)],
        json: bool,
    ) -> anyhow::Result<String> {
        let mut query = query_pairs(filters);
        query.push("limit=100".into());
        let page = self
            .call(
                reqwest::Method::GET,
                &format!("/admin/v1/deliveries?{}", query.join("&")),
            )
            .await?;
        if json {
            return Ok(format!("{page:#}\n"));
        }
        let rows: Vec<Vec<String>> = page["data"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|d| {
                        vec![
                            text(&d["id"]),
                            text(&d["status"]),
                            text(&d["target"]),
                            text(&d["route"]),
                            text(&d["attempts"]),
                            text(&d["last_error"]),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(table(
            &["ID", "STATUS", "TARGET", "ROUTE", "ATTEMPTS", "LAST ERROR"],
            &rows,
        ))
    }

    /// `deliveries show ID`: the delivery and every attempt.
    pub(crate) async fn show(&self, id: &str, json: bool) -> anyhow::Result<String> {
        let d = self
            .call(reqwest::Method::GET, &format!("/admin/v1/deliveries/{id}"))
            .await?;
        if json {
            return Ok(format!("{d:#}\n"));
        }
        let mut out = format!(
            "delivery {}\n  event   {}\n  route   {}\n  target  {}\n  status  {}\n",
            text(&d["id"]),
            text(&d["event_id"]),
            text(&d["route"]),
            text(&d["target"]),
            text(&d["status"])
        );
        let rows: Vec<Vec<String>> = d["attempts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        vec![
                            text(&x["attempt"]),
                            crate::rfc3339(x["started_at"].as_i64().unwrap_or(0)),
                            format!("{} ms", text(&x["duration_ms"])),
                            text(&x["status_code"]),
                            text(&x["error"]),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push('\n');
        out.push_str(&table(
            &["ATTEMPT", "STARTED", "DURATION", "STATUS", "ERROR"],
            &rows,
        ));
        Ok(out)
    }

    /// `deliveries retry ID`.
    pub(crate) async fn retry(&self, id: &str) -> anyhow::Result<String> {
        self.call(
            reqwest::Method::POST,
            &format!("/admin/v1/deliveries/{id}/retry"),
        )
        .await?;
        Ok(format!("{id}: queued for another attempt\n"))
    }

    /// `deliveries retry --status … [--limit N] [--yes]`: asks for the count first (a dry run);
    /// queues only with `yes`, and then says how many went.
    pub(crate) async fn retry_many(
        &self,
        filters: &[(&str, Option<String>)],
        yes: bool,
        json: bool,
    ) -> anyhow::Result<String> {
        let query = query_pairs(filters).join("&");
        let path = format!("/admin/v1/deliveries/retry?{query}");
        let dry = self
            .call(reqwest::Method::POST, &format!("{path}&dry_run=true"))
            .await?;
        let mut out = if json {
            format!("{dry:#}\n")
        } else {
            format!(
                "{} deliveries would be queued ({} match, limit {})\n",
                text(&dry["would_queue"]),
                text(&dry["matching"]),
                text(&dry["limit"])
            )
        };
        if !yes {
            if !json {
                out.push_str("nothing queued: run again with --yes to queue them\n");
            }
            return Ok(out);
        }
        let done = self.call(reqwest::Method::POST, &path).await?;
        if json {
            out.push_str(&format!("{done:#}\n"));
        } else {
            out.push_str(&format!("queued {}\n", text(&done["queued"])));
        }
        Ok(out)
    }

    /// `events replay ID`.
    /// `plugin push NAME FILE`: upload; the gateway validates and compiles before switching.
    pub(crate) async fn push_plugin(
        &self,
        name: &str,
        wasm: Vec<u8>,
        json: bool,
    ) -> anyhow::Result<String> {
        let path = format!("/admin/v1/plugins/{name}");
        let p = self.send(reqwest::Method::PUT, &path, Some(wasm)).await?;
        if json {
            return Ok(format!("{p:#}\n"));
        }
        Ok(format!(
            "{name}: active, sha256 {}, {} bytes, used by {}\n",
            text(&p["sha256"]),
            text(&p["size"]),
            routes_text(&p["routes"])
        ))
    }

    /// `plugin diff NAME FILE`: the gateway's comparison of the candidate with the active
    /// version, as the API answers it.
    pub(crate) async fn diff_plugin(
        &self,
        name: &str,
        wasm: Vec<u8>,
        since: Option<String>,
        limit: Option<usize>,
    ) -> anyhow::Result<serde_json::Value> {
        let query = query_pairs(&[("since", since), ("limit", limit.map(|n| n.to_string()))]);
        let path = match query.is_empty() {
            true => format!("/admin/v1/plugins/{name}/diff"),
            false => format!("/admin/v1/plugins/{name}/diff?{}", query.join("&")),
        };
        self.send(reqwest::Method::POST, &path, Some(wasm)).await
    }

    /// `plugin ls`.
    pub(crate) async fn list_plugins(&self, json: bool) -> anyhow::Result<String> {
        let page = self.call(reqwest::Method::GET, "/admin/v1/plugins").await?;
        if json {
            return Ok(format!("{page:#}\n"));
        }
        let rows: Vec<Vec<String>> = page["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                vec![
                    text(&p["name"]),
                    text(&p["sha256"]).chars().take(12).collect(),
                    text(&p["size"]),
                    text(&p["uploaded_at"]),
                    routes_text(&p["routes"]),
                ]
            })
            .collect();
        Ok(table(
            &["NAME", "SHA256", "SIZE", "UPLOADED", "ROUTES"],
            &rows,
        ))
    }

    pub(crate) async fn replay(&self, id: &str) -> anyhow::Result<String> {
        self.call(
            reqwest::Method::POST,
            &format!("/admin/v1/events/{id}/replay"),
        )
        .await?;
        Ok(format!("{id}: replaying through the current config\n"))
    }
}

/// `key=value` pairs (URL-encoded) of the filters that are set.
fn query_pairs(filters: &[(&str, Option<String>)]) -> Vec<String> {
    filters
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref().map(|v| {
                format!(
                    "{k}={}",
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
        })
        .collect()
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    out
}

fn routes_text(routes: &serde_json::Value) -> String {
    let names: Vec<String> = routes.as_array().into_iter().flatten().map(text).collect();
    if names.is_empty() {
        "no route".into()
    } else {
        names.join(", ")
    }
}
