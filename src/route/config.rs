//! The route stage's settings: `[[routes]]`, each with its source, `events`, `filter`, one
//! transform (`jq`, a Port-style `map`, or `wasm`) and targets, validated from the file's raw form
//! against the sources and targets already validated.

use crate::config::raw;
use crate::config::validator::Validator;
use crate::deliver::config::Target;
use crate::ingress::config::Source;
use crate::route::rules::{Route, WasmSpec};
use crate::transform::{JqTransform, Transform};
use std::collections::BTreeMap;
use std::sync::Arc;

impl Validator {
    pub(crate) fn routes_raw(&mut self, value: Option<toml::Value>) -> Vec<Option<raw::Route>> {
        match value {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| self.section::<raw::Route>(&format!("routes[{i}]"), v))
                .collect(),
            Some(_) => {
                self.problem("routes", "must be an array of tables ([[routes]])");
                Vec::new()
            }
        }
    }

    pub(crate) fn route(
        &mut self,
        i: usize,
        r: Option<raw::Route>,
        sources: &BTreeMap<String, Arc<Source>>,
        targets: &BTreeMap<String, Arc<Target>>,
    ) -> Option<Route> {
        let r = r?;
        let key = format!("routes[{i}]");
        if !sources.contains_key(&r.source) {
            self.problem(
                format!("{key}.source"),
                format!("unknown source `{}`", r.source),
            );
        }
        if r.targets.is_empty() {
            self.problem(
                format!("{key}.targets"),
                "a route needs at least one target",
            );
        }
        for t in &r.targets {
            if !targets.contains_key(t) {
                self.problem(format!("{key}.targets"), format!("unknown target `{t}`"));
            }
        }
        let filter = r
            .filter
            .as_deref()
            .and_then(|f| self.jq(&format!("{key}.filter"), f));
        let count = [r.jq.is_some(), r.map.is_some(), r.wasm.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if count > 1 {
            self.problem(
                key.clone(),
                "a route takes at most one of `jq`, `map`, `wasm`",
            );
        }
        let transform: Option<Arc<dyn Transform>> = if let Some(code) = &r.jq {
            self.jq(&format!("{key}.jq"), code)
                .map(|p| Arc::new(JqTransform(p)) as Arc<dyn Transform>)
        } else if let Some(map) = &r.map {
            match crate::transform::map::to_jq(map) {
                Ok(code) => self
                    .jq(&format!("{key}.map"), &code)
                    .map(|p| Arc::new(JqTransform(p)) as Arc<dyn Transform>),
                Err(why) => {
                    self.problem(format!("{key}.map"), why);
                    None
                }
            }
        } else {
            None
        };
        let wasm = r.wasm.and_then(|w| self.wasm(&format!("{key}.wasm"), w));
        if r.events
            .as_ref()
            .is_some_and(|e| e.is_empty() || e.iter().any(String::is_empty))
        {
            self.problem(
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
    pub(crate) fn wasm(&mut self, key: &str, value: toml::Value) -> Option<WasmSpec> {
        let spec: raw::Wasm = match value.try_into() {
            Ok(w) => w,
            Err(e) => {
                self.problem(key, format!("expected {{ plugin, config }}: {e}"));
                return None;
            }
        };
        if !crate::transform::wasm::registry::valid_name(&spec.plugin) {
            self.problem(
                format!("{key}.plugin"),
                format!(
                    "`{}` is not a plugin name (letters, digits, `-` and `_`, at most 64)",
                    spec.plugin
                ),
            );
        }
        let config = match spec.config.map(|v| serde_json::to_string(&v)).transpose() {
            Ok(c) => c.unwrap_or_else(|| "{}".into()),
            Err(e) => {
                self.problem(format!("{key}.config"), format!("cannot be JSON: {e}"));
                return None;
            }
        };
        Some(WasmSpec {
            plugin: spec.plugin,
            config: config.into(),
        })
    }
}
