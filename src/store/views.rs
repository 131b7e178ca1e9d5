//! What the delivery log answers with: the queries admin sends ([`DeliveryQuery`],
//! [`EventQuery`]), the views it shows, and what asking for a retry did. Plain data, filled by
//! both backends; a view never carries a secret (bodies and headers are as stored, credentials
//! were never stored). These are not a wire format: the admin API maps them to its own JSON
//! types (`admin::views`), so nothing here derives `Serialize`.

use super::DeliveryStatus;

/// What asking to retry one delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Due again now.
    Queued,
    /// Nothing to do: it is pending.
    AlreadyPending,
    /// Refused: its route's filter or transform failed, so it has no body of its own and sending
    /// it would send the raw event. The event must be replayed (routed again) instead.
    FailedInRouting { event_id: String },
}

/// Which deliveries a listing wants, newest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeliveryQuery {
    /// Only deliveries in this state. For a bulk retry, `None` means failed and dead ones:
    /// succeeded deliveries are sent again only when asked for by name, pending ones never.
    pub(crate) status: Option<DeliveryStatus>,
    pub(crate) target: Option<String>,
    pub(crate) route: Option<String>,
    pub(crate) limit: usize,
    /// Only deliveries older than this cursor (from a previous page).
    pub(crate) before: Option<i64>,
    /// Only deliveries created at or after this time (Unix ms).
    pub(crate) since: Option<i64>,
    /// Only deliveries of events from this source.
    pub(crate) source: Option<String>,
}

/// A page of events, newest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventQuery {
    pub(crate) source: Option<String>,
    pub(crate) event_type: Option<String>,
    pub(crate) limit: usize,
    /// Only events older than this cursor (from a previous page).
    pub(crate) before: Option<i64>,
    /// Only events received at or after this time (Unix ms).
    pub(crate) since: Option<i64>,
}

/// One line of the event list.
#[derive(Debug, Clone)]
pub(crate) struct EventSummary {
    /// The cursor of this item.
    pub(crate) seq: i64,
    pub(crate) id: String,
    pub(crate) source: String,
    pub(crate) event_type: Option<String>,
    pub(crate) received_at: i64,
    pub(crate) routed: bool,
}

/// An event as the admin API shows it.
#[derive(Debug, Clone)]
pub(crate) struct EventView {
    pub(crate) id: String,
    pub(crate) source: String,
    pub(crate) event_type: Option<String>,
    pub(crate) received_at: i64,
    pub(crate) routed: bool,
    pub(crate) headers: Vec<(String, String)>,
    /// The body as text (lossy where it was not UTF-8).
    pub(crate) body: String,
    pub(crate) deliveries: Vec<String>,
    /// What each route made of the event (`waiting` while its plugin is missing).
    pub(crate) routes: Vec<RouteOutcomeView>,
}

#[derive(Debug, Clone)]
pub(crate) struct RouteOutcomeView {
    pub(crate) route: String,
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone)]
pub(crate) struct AttemptView {
    pub(crate) attempt: u32,
    pub(crate) started_at: i64,
    pub(crate) duration_ms: i64,
    pub(crate) status_code: Option<u16>,
    pub(crate) error: Option<String>,
    pub(crate) response_headers: Vec<(String, String)>,
    /// The first 4 KiB, as text (lossy where it was not UTF-8).
    pub(crate) response_body: String,
}

/// A delivery as the log shows it.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryView {
    /// Position in the log: the pagination cursor.
    pub(crate) seq: i64,
    pub(crate) id: String,
    pub(crate) event_id: String,
    pub(crate) route: String,
    pub(crate) target: String,
    pub(crate) status: String,
    pub(crate) attempts: u32,
    pub(crate) next_attempt_at: Option<i64>,
    pub(crate) last_error: Option<String>,
}
