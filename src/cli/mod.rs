//! The `hookgate` command line: its arguments (`args.rs`) and what each subcommand does
//! (`run.rs`, whose `main` is all `src/main.rs` calls); here, the subcommands that run pipeline
//! stages offline: `try` (a dry run of one event) and `sign` (the headers a producer would send).
//! Neither touches the network or a store.
//!
//! `try` routes through the server's contained evaluator (a `hookgate __route-worker` child under
//! `jq.timeout_ms` and `jq.memory_mb`), so a mapping that runs away or overflows its stack fails
//! its route with the cause instead of hanging or aborting the dry run; and it prints no
//! configured secret ([`redact`]).

use crate::config::Config;
use crate::deliver::sign::SignInput;
use crate::dry_run;
use crate::route::evaluator::Pool;
use crate::transform::wasm::registry::Registry;
use axum::http::{HeaderName, HeaderValue};
use bytes::Bytes;
use std::fmt::Write as _;
use std::sync::Arc;

mod args;
mod catalog;
pub(crate) mod client;
mod plugin_build;
pub(crate) mod plugin_diff;
mod plugin_test;
pub(crate) mod redact;
mod run;
mod scaffold;

pub use run::main;

/// Parses `Name: value` as given to `--header`.
pub(crate) fn parse_header(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not `Name: value`"))?;
    let (k, v) = (k.trim(), v.trim());
    HeaderName::try_from(k).map_err(|_| format!("`{k}` is not a header name"))?;
    HeaderValue::try_from(v).map_err(|_| format!("`{v}` is not a header value"))?;
    Ok((k.to_ascii_lowercase(), v.to_string()))
}

/// Runs one event through verification, every route of its source (contained, in `evaluators`),
/// and signing, and describes what would be sent. Errs when ingress would refuse the event or no
/// evaluator could be started.
pub(crate) async fn try_event(
    config: &Arc<Config>,
    plugins: &Registry,
    evaluators: &mut Pool,
    source: &str,
    body: Bytes,
    headers: &[(String, String)],
) -> Result<String, String> {
    let input = dry_run::Input {
        source: source.to_string(),
        body,
        headers: headers.to_vec(),
        verify: true,
    };
    let run = dry_run::run(config, plugins, evaluators, input)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "event {} from source `{source}` (event type: {})",
        run.event.id,
        run.event_type.as_deref().unwrap_or("none")
    );
    if run.routes.is_empty() {
        let _ = writeln!(out, "no route takes events from `{source}`");
    }
    for route in &run.routes {
        let detail = route
            .detail
            .as_ref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let _ = writeln!(out, "\nroute `{}`: {}{detail}", route.route, route.outcome);
        for r in &route.requests {
            let _ = writeln!(
                out,
                "  -> target `{}`: {} {}",
                r.target.name,
                r.method,
                redact::url(&r.url)
            );
            if let Some(why) = &r.problem {
                let _ = writeln!(out, "     would fail: {why}");
            }
            for (k, v) in &r.headers {
                let _ = writeln!(out, "     {k}: {v}");
            }
            if !r.body.is_empty() {
                let _ = writeln!(out, "\n     {}", String::from_utf8_lossy(&r.body));
            }
        }
    }
    Ok(out)
}

/// Options of `hookgate sign`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SignOptions {
    pub(crate) scheme: String,
    pub(crate) secret: String,
    pub(crate) header: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) encoding: Option<String>,
    /// `port` scheme: sha1, sha256 or plain.
    pub(crate) algorithm: Option<String>,
    /// `spacelift` scheme: also send Spacelift's legacy `X-Signature` (HMAC-SHA1).
    pub(crate) sha1: bool,
    pub(crate) id: Option<String>,
    pub(crate) event_type: Option<String>,
}

/// The headers a producer using `scheme` would send with `body`, one `Name: value` per line.
pub(crate) fn sign(opts: &SignOptions, body: &[u8]) -> Result<String, String> {
    let signer = crate::deliver::config::signer_of(crate::deliver::config::raw::Sign {
        scheme: opts.scheme.clone(),
        secret: Some(opts.secret.clone()),
        header: opts.header.clone(),
        prefix: opts.prefix.clone(),
        encoding: opts.encoding.clone(),
        algorithm: opts.algorithm.clone(),
        sha1: opts.sha1,
    })?;
    let id = opts
        .id
        .clone()
        .unwrap_or_else(|| format!("msg_{}", ulid::Ulid::new()));
    let headers = signer.headers(SignInput {
        delivery_id: &id,
        event_type: opts.event_type.as_deref(),
        body,
        now_s: crate::now_ms() / 1000,
    });
    Ok(headers
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect())
}
