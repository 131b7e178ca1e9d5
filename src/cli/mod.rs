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
use crate::deliver::config::Target;
use crate::deliver::sign::SignInput;
use crate::ingress;
use crate::route;
use crate::route::evaluator::Pool;
use crate::store::{DeliveryStatus, DueDelivery, StoredEvent};
use crate::transform::wasm::registry::Registry;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use std::fmt::Write as _;
use std::sync::Arc;

mod args;
pub(crate) mod client;
pub(crate) mod redact;
mod run;

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
    let mut out = String::new();
    let src = config
        .sources
        .get(source)
        .ok_or_else(|| format!("unknown source `{source}`"))?;
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            map.append(k, v);
        }
    }
    if body.len() > config.server.max_body_bytes {
        return Err(format!(
            "ingress would answer 413: body exceeds {} bytes",
            config.server.max_body_bytes
        ));
    }
    if let Err(e) = ingress::check(src, &map, None, &body) {
        return Err(format!("ingress would refuse the event: {e}"));
    }
    let event = StoredEvent {
        id: route::new_event_id(),
        source: source.to_string(),
        received_at: crate::now_ms(),
        headers: headers.to_vec(),
        query: Vec::new(),
        body: body.clone(),
    };
    let mut routing = route::route_contained(evaluators, config, &event)
        .await
        .map_err(|e| format!("cannot evaluate the routes: {e}"))?;
    route::run_plugins(config, plugins, &event, &mut routing);
    let _ = writeln!(
        out,
        "event {} from source `{source}` (event type: {})",
        event.id,
        routing.event_type.as_deref().unwrap_or("none")
    );
    let routes: Vec<_> = config
        .routes
        .iter()
        .filter(|r| r.source == source)
        .collect();
    if routes.is_empty() {
        let _ = writeln!(out, "no route takes events from `{source}`");
    }
    for route in routes {
        let result = routing.results.iter().find(|r| r.route == route.name);
        let outcome = result.map_or("unknown", |r| r.outcome.as_str());
        let detail = result
            .and_then(|r| r.detail.clone())
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let _ = writeln!(out, "\nroute `{}`: {outcome}{detail}", route.name);
        for d in routing
            .deliveries
            .iter()
            .filter(|d| d.route == route.name && d.status == DeliveryStatus::Pending)
        {
            let Some(target) = config.targets.get(&d.target) else {
                continue;
            };
            describe_request(&mut out, target, d, &event, routing.event_type.as_deref());
        }
    }
    Ok(out)
}

fn describe_request(
    out: &mut String,
    target: &Target,
    d: &crate::store::NewDelivery,
    event: &StoredEvent,
    event_type: Option<&str>,
) {
    let due = DueDelivery {
        id: d.id.clone(),
        event_id: event.id.clone(),
        event_type: event_type.map(str::to_string),
        body: d.body.clone().unwrap_or_else(|| event.body.clone()),
        headers: d.headers.clone(),
        attempts: 0,
        created_at: 0,
    };
    let _ = writeln!(
        out,
        "  -> target `{}`: POST {}",
        target.name,
        redact::url(&target.url)
    );
    for (k, v) in crate::deliver::client::request_headers(target, &due, 1, crate::now_ms() / 1000) {
        let _ = writeln!(out, "     {k}: {}", redact::header(&target.headers, &k, &v));
    }
    let _ = writeln!(out, "\n     {}", String::from_utf8_lossy(&due.body));
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
