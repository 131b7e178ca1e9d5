//! The event catalog: for each preset, the event types its platform sends, with a JSON Schema and
//! real-shaped samples of each (`catalog/` in the repository, embedded at build time).
//!
//! This module owns reading that data and answering questions about it: which events a preset
//! has ([`preset`]), the names closest to a misspelled one ([`closest`]), whether a payload
//! matches its event's schema ([`schema`]), and which routes name events or paths no event has
//! ([`lint`]). It is a leaf: it imports no stage, performs no I/O at run time, and never refuses
//! anything itself; the stages decide what a mismatch means.

pub(crate) mod lint;
pub(crate) mod schema;

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

/// Every catalog file, by its path under `catalog/` (written by `build.rs`).
static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/catalog_files.rs"));

/// A preset's `catalog.json`, as the file writes it, less `sample_secret` (which only
/// `catalog/sign.py` and the tests read: hookgate never signs with it).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Preset {
    /// The source `kind` this describes.
    pub(crate) preset: String,
    pub(crate) title: String,
    /// The platform's webhook documentation.
    pub(crate) docs: String,
    /// Senders name their own event types (Standard Webhooks): any type is accepted.
    pub(crate) open: bool,
    pub(crate) events: Vec<Event>,
}

/// One event type of a preset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Event {
    /// Exactly the event type hookgate gives such an event.
    #[serde(rename = "type")]
    pub(crate) event_type: String,
    /// Other names routes' `events` may use for it (Pulumi's filter names).
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    pub(crate) summary: String,
    /// The page that documents this event.
    pub(crate) docs: String,
    /// The schema's path under the preset's folder; `None` when the platform documents no payload.
    pub(crate) schema: Option<String>,
    /// The samples' paths under the preset's folder.
    #[serde(default)]
    pub(crate) samples: Vec<String>,
}

impl Event {
    /// Whether `name` is this event's type or one of its aliases.
    pub(crate) fn answers_to(&self, name: &str) -> bool {
        self.event_type == name || self.aliases.iter().any(|a| a == name)
    }
}

/// What can be wrong with the embedded catalog: a build of hookgate its own unit tests fail, so
/// every use keeps the error and says it rather than acting as if an event had no schema.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CatalogError {
    #[error("the embedded catalog/{path} does not parse: {why}")]
    Unreadable { path: String, why: String },
    #[error("catalog/{preset}/catalog.json names {path}, which is not embedded")]
    Missing { preset: String, path: String },
    #[error("the embedded catalog/{path} is not a schema that compiles: {why}")]
    Uncompilable { path: String, why: String },
}

/// The embedded catalog, parsed once.
static CATALOG: LazyLock<Result<Vec<Preset>, CatalogError>> = LazyLock::new(|| {
    FILES
        .iter()
        .filter(|(path, _)| path.ends_with("/catalog.json"))
        .map(|(path, bytes)| {
            serde_json::from_slice::<Preset>(bytes).map_err(|e| CatalogError::Unreadable {
                path: path.to_string(),
                why: e.to_string(),
            })
        })
        .collect()
});

/// Every preset the catalog describes, or why the embedded catalog is broken.
pub(crate) fn presets() -> Result<&'static [Preset], &'static CatalogError> {
    CATALOG.as_deref()
}

/// A name the catalog does not have, with the closest ones it does.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotInCatalog {
    #[error("no preset `{name}` in the catalog{hint}")]
    Preset { name: String, hint: String },
    #[error("no event `{name}` in the {preset} preset{hint}")]
    Event {
        name: String,
        preset: String,
        hint: String,
    },
}

/// The preset `name` among `presets`, or what was meant.
pub(crate) fn find_preset<'a>(
    presets: &'a [Preset],
    name: &str,
) -> Result<&'a Preset, NotInCatalog> {
    presets
        .iter()
        .find(|p| p.preset == name)
        .ok_or_else(|| NotInCatalog::Preset {
            name: name.to_string(),
            hint: did_you_mean(&closest(name, presets.iter().map(|p| p.preset.as_str()))),
        })
}

/// The preset `name` (a source `kind`), if the catalog describes it.
pub(crate) fn preset(name: &str) -> Option<&'static Preset> {
    presets().ok()?.iter().find(|p| p.preset == name)
}

/// A file of the preset `preset` by its path under the preset's folder (a sample or a schema).
pub(crate) fn file(preset: &str, path: &str) -> Option<&'static [u8]> {
    let full = format!("{preset}/{path}");
    FILES.iter().find(|(p, _)| *p == full).map(|(_, b)| *b)
}

impl Preset {
    /// The events `name` answers to: by type or alias.
    pub(crate) fn events_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Event> {
        self.events.iter().filter(move |e| e.answers_to(name))
    }

    /// The first event `name` answers to (by type or alias), or what was meant.
    pub(crate) fn find_event(&self, name: &str) -> Result<&Event, NotInCatalog> {
        self.events
            .iter()
            .find(|e| e.answers_to(name))
            .ok_or_else(|| NotInCatalog::Event {
                name: name.to_string(),
                preset: self.preset.clone(),
                hint: did_you_mean(&closest(name, self.names())),
            })
    }

    /// The event of type `event_type` (not an alias: what ingress resolved).
    pub(crate) fn event(&self, event_type: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.event_type == event_type)
    }

    /// Every name a route's `events` may use here: types and aliases.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.events.iter().flat_map(|e| {
            std::iter::once(e.event_type.as_str()).chain(e.aliases.iter().map(String::as_str))
        })
    }
}

type Parsed = Result<serde_json::Value, CatalogError>;
/// A schema file's bytes, and what they parse to once asked for.
type LazySchema = (&'static [u8], OnceLock<Parsed>);

/// Every schema file by its path under `catalog/`, each parsed on first use: a gateway reads
/// only the schemas of the events it meets (GitHub's 75 alone are 2.5 MB of JSON).
static SCHEMAS: LazyLock<HashMap<&'static str, LazySchema>> = LazyLock::new(|| {
    FILES
        .iter()
        .filter(|(path, _)| path.contains("/schemas/"))
        .map(|(path, bytes)| (*path, (*bytes, OnceLock::new())))
        .collect()
});

/// The schema of `event` of `preset` as JSON: `None` when the event has none.
pub(crate) fn schema_of(
    preset: &Preset,
    event: &Event,
) -> Result<Option<&'static serde_json::Value>, CatalogError> {
    let Some(path) = event.schema.as_deref() else {
        return Ok(None);
    };
    match SCHEMAS.get(format!("{}/{path}", preset.preset).as_str()) {
        Some((bytes, parsed)) => parsed
            .get_or_init(|| {
                serde_json::from_slice(bytes).map_err(|e| CatalogError::Unreadable {
                    path: format!("{}/{path}", preset.preset),
                    why: e.to_string(),
                })
            })
            .as_ref()
            .map(Some)
            .map_err(Clone::clone),
        None => Err(CatalogError::Missing {
            preset: preset.preset.clone(),
            path: path.to_string(),
        }),
    }
}

/// Up to three of `candidates` closest to `name`, best first; none when nothing is close.
pub(crate) fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|c| {
            (
                strsim::jaro_winkler(&name.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Renders `closest` as a hint: "did you mean `a` or `b`?"; empty when there is none.
pub(crate) fn did_you_mean(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| format!("`{n}`")).collect();
            format!(" (did you mean {} or `{last}`?)", init.join(", "))
        }
    }
}

#[cfg(test)]
mod tests;
