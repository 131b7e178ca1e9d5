//! A source's `validate = "warn" | "reject"`: each event is checked against the event catalog's
//! schema for its type before it is stored, so a platform that changes its payloads shows up in
//! `/metrics` and the log the day it happens, not as a route that silently stops matching.
//!
//! `warn` counts and logs (once per source and type per [`LOG_EVERY`]) and stores the event;
//! `reject` refuses a mismatch with 400 naming the first rule it breaks (and, like every refused
//! request, ingress logs the refusal). Any mismatch counts, a value outside a documented `enum`
//! too: `reject` is for producers whose every change should stop at the door. An event whose type
//! the catalog does not have is counted and logged in both modes but never refused: platforms add
//! events before their documentation does. What is logged and answered names the path (its keys
//! are the payload's) and the rule, never the value found there.

use crate::catalog::schema::{Verdict, check};
use crate::ingress::config::Source;
use crate::log_safe::Escaped;
use crate::route::envelope::Envelope;
use crate::store::StoredEvent;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often one source and type may log a mismatch.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(60);

/// A source's `validate` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Warn,
    Reject,
}

/// What checking one event found that is worth counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// The payload breaks its event's schema: the type, and `<pointer>: <rule>`.
    Mismatch { event_type: String, why: String },
    /// The preset has no such event (or the event has no type at all).
    Unknown { event_type: Option<String> },
    /// The body passed ingress's JSON check but the catalog's reader refused it.
    Unreadable { why: String },
}

impl Finding {
    /// The `event_type` label on `/metrics`: only catalog types, so the set stays bounded.
    pub(crate) fn label(&self) -> &str {
        match self {
            Self::Mismatch { event_type, .. } => event_type,
            Self::Unknown { .. } => "_unknown",
            Self::Unreadable { .. } => "_unreadable",
        }
    }

    /// The 400 answer's text under `reject`; `None` when the event is taken anyway.
    pub(crate) fn refusal(&self) -> Option<String> {
        match self {
            Self::Mismatch { event_type, why } => Some(format!(
                "body does not match the event catalog's schema for `{event_type}`: {why}"
            )),
            Self::Unreadable { why } => Some(format!(
                "body cannot be checked against the event catalog: {why}"
            )),
            Self::Unknown { .. } => None,
        }
    }
}

/// Checks `event` from `source` against the catalog; `None` when it matches (or its event has
/// no schema, or the source's preset has no catalog).
pub(crate) fn check_event(source: &Source, event: &StoredEvent) -> Option<Finding> {
    let preset = source.catalog_preset()?;
    // The same rule routing applies, so the type checked is the type routes will see.
    let unreadable = |why: String| Some(Finding::Unreadable { why });
    let envelope = match Envelope::build(event, source.format, &source.event_type) {
        Ok(envelope) => envelope,
        Err(e) => return unreadable(e.to_string()),
    };
    let Some(event_type) = envelope.event_type() else {
        return Some(Finding::Unknown { event_type: None });
    };
    let body: serde_json::Value = match serde_json::from_slice(&event.body) {
        Ok(body) => body,
        Err(e) => return unreadable(e.to_string()),
    };
    match check(preset, event_type, &body) {
        Verdict::Matches | Verdict::NoSchema => None,
        Verdict::UnknownType if preset.open => None,
        Verdict::UnknownType => Some(Finding::Unknown {
            event_type: Some(event_type.to_string()),
        }),
        Verdict::Mismatch(why) => Some(Finding::Mismatch {
            event_type: event_type.to_string(),
            why,
        }),
    }
}

/// Remembers when each source and type last logged, so a drifted platform logs once a minute,
/// not once per event.
#[derive(Debug, Default)]
pub(crate) struct Throttle(Mutex<HashMap<(String, String), Instant>>);

impl Throttle {
    /// Logs `finding` unless the same source and label logged within [`LOG_EVERY`].
    pub(crate) fn log(&self, source: &str, mode: Mode, finding: &Finding) {
        let now = Instant::now();
        {
            let mut last = self.0.lock();
            let key = (source.to_string(), finding.label().to_string());
            if last
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < LOG_EVERY)
            {
                return;
            }
            // Bounded like the metric: catalog types and `_unknown` only.
            last.insert(key, now);
        }
        let mode = match mode {
            Mode::Warn => "warn",
            Mode::Reject => "reject",
        };
        match finding {
            Finding::Mismatch { event_type, why } => tracing::warn!(
                source = %Escaped(source), event_type = %Escaped(event_type), mode,
                mismatch = %Escaped(why),
                "event does not match the catalog's schema (logged once a minute per type)"
            ),
            Finding::Unreadable { why } => tracing::warn!(
                source = %Escaped(source), mode, error = %Escaped(why),
                "event cannot be checked against the catalog (logged once a minute per source)"
            ),
            Finding::Unknown { event_type } => tracing::warn!(
                source = %Escaped(source),
                event_type = %Escaped(event_type.as_deref().unwrap_or("(none)")), mode,
                "event type is not in the catalog (logged once a minute per source)"
            ),
        }
    }
}
