//! The route stage's settings: `[[routes]]` as the file writes them ([`raw`]), each with its
//! source, `events`, `filter`, one transform (`jq`, a Port-style `map`, Port's own configuration
//! `port`, or `wasm`) and targets,
//! validated against the names of the sources and targets that validated. It never imports
//! `config`, which assembles what this returns, nor the stages whose names it checks.

use crate::route::rules::{Route, WasmSpec};
use crate::transform::Transform;
use crate::transform::predicate::Filter;
use crate::validate::Validator;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `[[routes]]` as written: serde types that mirror the TOML, and nothing more. Every struct
/// denies unknown keys so a typo is an error, not a silently ignored setting.
pub(crate) mod raw {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Route {
        pub(crate) name: String,
        pub(crate) source: String,
        pub(crate) filter: Option<String>,
        /// Event types (or Pulumi filter names) the route takes; ANDed with `filter`.
        pub(crate) events: Option<Vec<String>>,
        pub(crate) jq: Option<String>,
        pub(crate) map: Option<toml::Value>,
        /// Port's webhook configuration as Port exports it (JSON text), or the same as a table.
        pub(crate) port: Option<toml::Value>,
        pub(crate) wasm: Option<toml::Value>,
        pub(crate) targets: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Wasm {
        pub(crate) plugin: String,
        /// Handed to the plugin as JSON text.
        pub(crate) config: Option<toml::Value>,
    }
}

/// `routes`: every `[[routes]]` table as written, `None` for one that does not deserialise (its
/// problem recorded), so later problems keep their index.
pub(crate) fn routes_raw(v: &mut Validator, value: Option<toml::Value>) -> Vec<Option<raw::Route>> {
    match value {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| v.section::<raw::Route>(&format!("routes[{i}]"), item))
            .collect(),
        Some(_) => {
            v.problem("routes", "must be an array of tables ([[routes]])");
            Vec::new()
        }
    }
}

/// `routes[i]`, validated. Only the names of `sources` and `targets` matter here, so they come
/// as maps of whatever the stages validated them into; `preset` is the catalog's description of
/// the route's source, against which its events and paths are checked (as warnings).
pub(crate) fn route<S, T>(
    v: &mut Validator,
    i: usize,
    r: Option<raw::Route>,
    sources: &BTreeMap<String, S>,
    targets: &BTreeMap<String, T>,
    preset: Option<&crate::catalog::Preset>,
) -> Option<Route> {
    let r = r?;
    let key = format!("routes[{i}]");
    if !sources.contains_key(&r.source) {
        v.problem(
            format!("{key}.source"),
            format!("unknown source `{}`", r.source),
        );
    }
    if r.targets.is_empty() {
        v.problem(
            format!("{key}.targets"),
            "a route needs at least one target",
        );
    }
    for t in &r.targets {
        if !targets.contains_key(t) {
            v.problem(format!("{key}.targets"), format!("unknown target `{t}`"));
        }
    }
    let filter = r
        .filter
        .as_deref()
        .and_then(|f| v.jq(&format!("{key}.filter"), f))
        .map(Filter::new);
    let count = [
        r.jq.is_some(),
        r.map.is_some(),
        r.port.is_some(),
        r.wasm.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if count > 1 {
        v.problem(
            key.clone(),
            "a route takes at most one of `jq`, `map`, `port`, `wasm`",
        );
    }
    let map_code = r
        .map
        .as_ref()
        .and_then(|m| crate::transform::map::to_jq(m).ok());
    if let Some(preset) = preset {
        let code = [("filter", &r.filter), ("jq", &r.jq), ("map", &map_code)]
            .into_iter()
            .filter_map(|(k, c)| Some((format!("{key}.{k}"), c.as_deref()?)))
            .collect();
        let text = crate::catalog::lint::RouteText {
            key: &key,
            events: r.events.as_deref(),
            code,
        };
        for (k, why) in crate::catalog::lint::route(preset, &text) {
            v.warning(k, why);
        }
    }
    let transform: Option<Arc<dyn Transform>> = if let Some(code) = &r.jq {
        v.jq(&format!("{key}.jq"), code)
            .map(crate::transform::jq_transform)
    } else if let Some(map) = &r.map {
        match crate::transform::map::to_jq(map) {
            Ok(code) => v
                .jq(&format!("{key}.map"), &code)
                .map(crate::transform::jq_transform),
            Err(why) => {
                v.problem(format!("{key}.map"), why);
                None
            }
        }
    } else if let Some(port) = &r.port {
        crate::transform::port::compile(v, &format!("{key}.port"), port)
            .map(|p| Arc::new(p) as Arc<dyn Transform>)
    } else {
        None
    };
    let wasm = r.wasm.and_then(|w| wasm(v, &format!("{key}.wasm"), w));
    if r.events
        .as_ref()
        .is_some_and(|e| e.is_empty() || e.iter().any(String::is_empty))
    {
        v.problem(
            format!("{key}.events"),
            "list event types, none of them empty",
        );
    }
    Some(Route {
        name: r.name,
        source: r.source,
        filter,
        events: r.events,
        transform,
        wasm,
        targets: r.targets,
    })
}

/// `wasm = { plugin = "name", config = { ... } }`. The plugin need not exist yet.
fn wasm(v: &mut Validator, key: &str, value: toml::Value) -> Option<WasmSpec> {
    let spec: raw::Wasm = match value.try_into() {
        Ok(w) => w,
        Err(e) => {
            v.problem(key, format!("expected {{ plugin, config }}: {e}"));
            return None;
        }
    };
    if !crate::transform::wasm::registry::valid_name(&spec.plugin) {
        v.problem(
            format!("{key}.plugin"),
            format!(
                "`{}` is not a plugin name (letters, digits, `-` and `_`, at most 64)",
                spec.plugin
            ),
        );
    }
    let config = match spec.config.map(|c| serde_json::to_string(&c)).transpose() {
        Ok(c) => c.unwrap_or_else(|| "{}".into()),
        Err(e) => {
            v.problem(format!("{key}.config"), format!("cannot be JSON: {e}"));
            return None;
        }
    };
    Some(WasmSpec {
        plugin: spec.plugin,
        config: config.into(),
    })
}
