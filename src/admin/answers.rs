//! The admin API's answers around the views: pages, acknowledgements of a change, the targets'
//! state and errors. Typed so the OpenAPI document ([`super::openapi`]) is generated from what
//! the handlers really return; the field names are the wire format the CLI's client and
//! operators' scripts read (never rename one without a new API version).
//!
//! Plain data, no logic, no secret.

use super::views::{Delivery, EventSummary, Instance, Plugin};
use serde::Serialize;
use utoipa::ToSchema;

/// Every error answer: what went wrong, for a person.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorAnswer {
    pub(crate) error: String,
}

/// A candidate route that does not validate (`POST /admin/v1/try`): every problem with its
/// key. An event that cannot be tried at all answers the same, without `problems`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProblemsAnswer {
    pub(crate) error: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) problems: Vec<Problem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Problem {
    /// Where, e.g. `route.jq`.
    pub(crate) key: String,
    pub(crate) message: String,
}

/// A page of deliveries, newest first; `next_cursor` fetches the next (older) page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryPage {
    pub(crate) data: Vec<Delivery>,
    pub(crate) next_cursor: Option<String>,
}

/// A page of events, newest first; `next_cursor` fetches the next (older) page.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventPage {
    pub(crate) data: Vec<EventSummary>,
    pub(crate) next_cursor: Option<String>,
}

/// A delivery queued again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RetryQueued {
    pub(crate) id: String,
    /// Always `pending`.
    pub(crate) status: String,
}

/// What a bulk retry queued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkQueued {
    pub(crate) queued: usize,
    pub(crate) limit: usize,
}

/// What a bulk retry would queue (`dry_run=true`); nothing changed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkCount {
    pub(crate) would_queue: usize,
    pub(crate) matching: usize,
    pub(crate) limit: usize,
}

/// An event marked to be routed again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Replayed {
    pub(crate) id: String,
    pub(crate) replayed: bool,
}

/// The instances alive on the store; a store one process owns (SQLite) is shared by no one.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Instances {
    pub(crate) shared: bool,
    pub(crate) data: Vec<Instance>,
}

/// A reload that took.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReloadAnswer {
    pub(crate) reloaded: bool,
    pub(crate) summary: ReloadSummary,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReloadSummary {
    pub(crate) sources: usize,
    pub(crate) targets: usize,
    pub(crate) routes: usize,
    /// Settings that only a restart applies.
    pub(crate) restart_needed: Vec<String>,
    /// `key: why` of routes the event catalog says cannot match as written (an event the
    /// source's preset does not have, a path no event has); the config loaded all the same.
    pub(crate) warnings: Vec<String>,
}

/// The targets of the running config.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TargetList {
    pub(crate) data: Vec<TargetState>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TargetState {
    pub(crate) name: String,
    /// Scheme and host only: the rest of a target URL may be a credential.
    pub(crate) url: String,
    pub(crate) disabled: bool,
    pub(crate) reason: Option<String>,
    pub(crate) breaker: Breaker,
    pub(crate) rate_limit_per_second: Option<f64>,
}

/// A target's circuit breaker: `off`, `closed` (with its run of failures), `open` (until when)
/// or `half-open`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Breaker {
    pub(crate) state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) consecutive_failures: Option<u32>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) until: Option<String>,
}

/// A target switched off or on.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Switched {
    pub(crate) name: String,
    pub(crate) disabled: bool,
}

/// The active plugins.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PluginList {
    pub(crate) data: Vec<Plugin>,
}

/// A plugin deleted.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deleted {
    pub(crate) name: String,
    pub(crate) deleted: bool,
}
