//! A dry run of one event through the pipeline: ingress's checks, every route of its source
//! (contained in an evaluator child, under the real `jq.timeout_ms` and `jq.memory_mb`), the
//! routes' plugins, and the request each target would get, signed. `hookgate try` prints it; the
//! admin API's `POST /admin/v1/try` (the console's playground) answers it as JSON, optionally for
//! a candidate route instead of the configured ones ([`with_candidate`]).
//!
//! It never writes to a store and never sends anything. Configured header values, and the header
//! of a `plain` signing scheme (the secret itself), are masked here; computed signatures are
//! shown; how much of a target URL shows is the caller's choice (both mask its secrets).

use crate::cli::redact;
use crate::config::{Config, ConfigError};
use crate::deliver::config::Target;
use crate::ingress;
use crate::route;
use crate::route::evaluator::{EvalError, Pool};
use crate::store::{DeliveryStatus, DueDelivery, NewDelivery, StoredEvent};
use crate::transform::wasm::registry::Registry;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use std::sync::Arc;

/// The name a candidate route gets when it is given none.
pub(crate) const CANDIDATE: &str = "playground";

/// The event to try.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub(crate) source: String,
    pub(crate) body: Bytes,
    pub(crate) headers: Vec<(String, String)>,
    /// Refuse the event when ingress would (a bad signature, say) instead of only reporting it.
    pub(crate) verify: bool,
}

/// What the pipeline would make of the event.
#[derive(Debug, Clone)]
pub(crate) struct DryRun {
    pub(crate) event: StoredEvent,
    pub(crate) event_type: Option<String>,
    /// Why ingress would refuse the event (only when not [`Input::verify`]).
    pub(crate) refused: Option<String>,
    /// Each route of the source, in config order.
    pub(crate) routes: Vec<RouteRun>,
}

#[derive(Debug, Clone)]
pub(crate) struct RouteRun {
    pub(crate) route: String,
    /// `delivered`, `filtered`, `failed`, `waiting` (its plugin is not uploaded), or `unknown`.
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
    pub(crate) requests: Vec<Request>,
}

/// The request a target would get: its first attempt's method, URL, headers (configured values
/// masked) and body. For a Port API target, Port's own call (`deliver::port`).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) target: Arc<Target>,
    pub(crate) method: String,
    /// As sent, secrets and all: whoever shows it masks it.
    pub(crate) url: String,
    /// Why the target would refuse the message instead of sending it.
    pub(crate) problem: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DryRunError {
    #[error("unknown source `{0}`")]
    UnknownSource(String),
    #[error("ingress would answer 413: body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("ingress would refuse the event: {0}")]
    Refused(String),
    #[error("cannot evaluate the routes: {0}")]
    Eval(#[source] EvalError),
}

/// Runs `input` through `config`'s routes. Blocks on plugins: call it where blocking is allowed
/// (the admin API does so on a blocking thread).
pub(crate) async fn run(
    config: &Arc<Config>,
    plugins: &Registry,
    evaluators: &mut Pool,
    input: Input,
) -> Result<DryRun, DryRunError> {
    let source = config
        .sources
        .get(&input.source)
        .ok_or_else(|| DryRunError::UnknownSource(input.source.clone()))?;
    if input.body.len() > config.server.max_body_bytes {
        return Err(DryRunError::TooLarge(config.server.max_body_bytes));
    }
    let refused = ingress::check(source, &header_map(&input.headers), None, &input.body)
        .err()
        .map(|e| e.to_string());
    if let (true, Some(why)) = (input.verify, &refused) {
        return Err(DryRunError::Refused(why.clone()));
    }
    let event = StoredEvent {
        id: route::new_event_id(),
        source: input.source,
        received_at: crate::now_ms(),
        headers: input.headers,
        query: Vec::new(),
        body: input.body,
        replays: 0,
    };
    let mut routing = route::route_contained(evaluators, config, &event)
        .await
        .map_err(DryRunError::Eval)?;
    route::run_plugins(config, plugins, &event, &mut routing);
    let routes = config
        .routes
        .iter()
        .filter(|r| r.source == event.source)
        .map(|r| {
            let result = routing.results.iter().find(|x| x.route == r.name);
            RouteRun {
                route: r.name.clone(),
                outcome: result.map_or("unknown".into(), |x| x.outcome.as_str().to_string()),
                detail: result.and_then(|x| x.detail.as_deref().map(|d| config.mask(d))),
                requests: routing
                    .deliveries
                    .iter()
                    .filter(|d| d.route == r.name && d.status == DeliveryStatus::Pending)
                    .filter_map(|d| {
                        let target = config.targets.get(&d.target)?;
                        let shown = request(target, d, &event, routing.event_type.as_deref());
                        Some(masked(config, shown))
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(DryRun {
        event_type: routing.event_type,
        event,
        refused,
        routes,
    })
}

/// Headers as a producer sent them; a pair that is not a valid header is left out, as the HTTP
/// layer would not have let it through.
fn header_map(headers: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            map.append(k, v);
        }
    }
    map
}

fn request(
    target: &Arc<Target>,
    d: &NewDelivery,
    event: &StoredEvent,
    event_type: Option<&str>,
) -> Request {
    let due = DueDelivery {
        id: d.id.clone(),
        event_id: event.id.clone(),
        event_type: event_type.map(str::to_string),
        body: d.body.clone().unwrap_or_else(|| event.body.clone()),
        headers: d.headers.clone(),
        attempts: 0,
        created_at: 0,
    };
    let headers = crate::deliver::client::request_headers(target, &due, 1, crate::now_ms() / 1000)
        .into_iter()
        .map(|(k, v)| {
            let carries_secret = target
                .signer
                .secret_header()
                .is_some_and(|h| h.eq_ignore_ascii_case(&k));
            let shown = match carries_secret {
                true => redact::MASK.to_string(),
                false => redact::header(&target.headers, &k, &v),
            };
            (k, shown)
        })
        .collect();
    let request = Request {
        target: Arc::clone(target),
        method: "POST".into(),
        url: target.url.clone(),
        problem: None,
        headers,
        body: due.body,
    };
    match target.port {
        Some(_) => port_request(request),
        None => request,
    }
}

/// `request` with the config's interpolated values masked wherever a transform copied them (a
/// plugin's routing key in its body, say).
fn masked(config: &Config, request: Request) -> Request {
    Request {
        headers: request
            .headers
            .into_iter()
            .map(|(k, v)| (k, config.mask(&v)))
            .collect(),
        body: config.mask_bytes(&request.body),
        problem: request.problem.map(|p| config.mask(&p)),
        ..request
    }
}

/// `request` as Port's API would get it: the entity upserted or deleted, with an access token.
fn port_request(mut request: Request) -> Request {
    let port = match crate::deliver::port::request(&request.target.url, &request.body) {
        Ok(port) => port,
        Err(why) => {
            request.problem = Some(why);
            return request;
        }
    };
    let base = std::mem::take(&mut request.headers);
    request.headers = crate::deliver::port::call_headers(base, &port, redact::MASK);
    Request {
        method: port.method.to_string(),
        url: port.url.to_string(),
        body: Bytes::from(port.body.unwrap_or_default()),
        ..request
    }
}

/// Each problem with its key.
pub(crate) type Problems = Vec<(String, String)>;

/// `config` with `candidate` (a route as `[[routes]]` would hold it, as JSON) as its only route,
/// validated as a config load would; `source` and a name are filled in when missing. Also the
/// route as TOML, to paste into the config. The problems are keyed `route.<field>`.
pub(crate) fn with_candidate(
    config: &Config,
    source: &str,
    candidate: &serde_json::Value,
) -> Result<(Arc<Config>, String), Problems> {
    let one = |key: &str, why: String| vec![(key.to_string(), why)];
    let serde_json::Value::Object(fields) = candidate else {
        return Err(one("route", "must be an object".into()));
    };
    // Name and source first, as a person writes a route; TOML has no null, so a field set to
    // null is a field left out.
    let head = [
        (
            "name",
            fields.get("name").cloned().unwrap_or(CANDIDATE.into()),
        ),
        (
            "source",
            fields.get("source").cloned().unwrap_or(source.into()),
        ),
    ];
    let fields: serde_json::Map<_, _> = head
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(
            fields
                .iter()
                .filter(|(k, _)| *k != "name" && *k != "source")
                .map(|(k, v)| (k.clone(), v.clone())),
        )
        .filter(|(_, v)| !v.is_null())
        .collect();
    let route = toml::Value::try_from(&fields).map_err(|e| one("route", e.to_string()))?;
    let mut doc: toml::Table = toml::from_str(config.resolved.expose())
        .map_err(|e| one("", format!("the running config cannot be read back: {e}")))?;
    doc.insert("routes".into(), toml::Value::Array(vec![route.clone()]));
    let text = toml::to_string(&doc).map_err(|e| one("route", e.to_string()))?;
    let parsed = Config::parse_resolved(&text).map_err(|e: ConfigError| {
        e.problems
            .into_iter()
            .map(|(k, why)| (rekey(&k), why))
            .collect::<Vec<_>>()
    })?;
    let mut snippet = toml::Table::new();
    snippet.insert("routes".into(), toml::Value::Array(vec![route]));
    let snippet = toml::to_string(&snippet).map_err(|e| one("route", e.to_string()))?;
    Ok((
        Arc::new(Config {
            path: config.path.clone(),
            interpolated: Arc::clone(&config.interpolated),
            ..parsed
        }),
        snippet,
    ))
}

/// `routes[0].jq` → `route.jq`: the candidate is the only route.
fn rekey(key: &str) -> String {
    match key.strip_prefix("routes[0]") {
        Some(rest) => format!("route{rest}"),
        None => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[sources.gh]
kind = "github"
secret = "s3cret"

[targets.t]
url = "http://127.0.0.1:9/hook"
headers = { "X-Api-Key" = "k3y" }

[[routes]]
name = "configured"
source = "gh"
targets = ["t"]
"#;

    fn config() -> Config {
        Config::parse(CONFIG, "test.toml", &|_| None).expect("config")
    }

    #[test]
    fn a_candidate_replaces_the_routes_and_comes_back_as_toml() {
        let candidate = serde_json::json!({"jq": ".body", "targets": ["t"], "filter": null});
        let (cfg, toml) = with_candidate(&config(), "gh", &candidate).expect("valid");
        assert_eq!(cfg.routes.len(), 1);
        assert_eq!(cfg.routes[0].name, CANDIDATE);
        assert!(
            toml.starts_with("[[routes]]\nname = \"playground\"\nsource = \"gh\""),
            "{toml}"
        );
        assert!(toml.contains("jq = \".body\""), "{toml}");
        assert!(toml.contains("source = \"gh\""), "{toml}");
        assert!(!toml.contains("s3cret"));
    }

    #[test]
    fn a_broken_candidate_lists_its_problems_under_route() {
        let candidate = serde_json::json!({"jq": ".body |", "targets": ["nowhere"]});
        let problems = with_candidate(&config(), "gh", &candidate).expect_err("invalid");
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"route.jq"), "{problems:?}");
        assert!(keys.contains(&"route.targets"), "{problems:?}");
        assert_eq!(
            with_candidate(&config(), "gh", &serde_json::json!([1])).expect_err("array")[0].0,
            "route"
        );
    }
}
