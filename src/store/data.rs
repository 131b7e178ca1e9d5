//! The plain data the stages and the store hand each other: an event as stored, a routing and
//! its deliveries, an attempt, a claimed delivery. No behaviour beyond small conversions. Only the
//! two enums serialise (as lowercase words); the evaluator's wire types are in
//! `route::evaluator::messages`, the delivery log's views in `views`.

use bytes::Bytes;

/// An event as ingress accepted it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub source: String,
    /// Unix milliseconds.
    pub received_at: i64,
    /// Lower-cased names, in the order received.
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    /// How many times an operator replayed it (0 as ingress stores it): its deliveries' ids
    /// derive from it, so each replay gets new ones.
    pub replays: u32,
}

#[cfg(test)]
impl NewDelivery {
    /// A pending delivery `id` of route `r` to target `t`, for tests.
    pub(crate) fn pending(id: &str) -> Self {
        Self {
            id: id.into(),
            route: "r".into(),
            target: "t".into(),
            body: None,
            headers: Vec::new(),
            status: DeliveryStatus::Pending,
            error: None,
        }
    }
}

#[cfg(test)]
impl StoredEvent {
    /// An event of source `s` whose body is `size` blanks, for tests.
    pub(crate) fn blank(id: &str, size: usize) -> Self {
        Self {
            id: id.into(),
            source: "s".into(),
            received_at: 0,
            headers: Vec::new(),
            query: Vec::new(),
            body: vec![b' '; size].into(),
            replays: 0,
        }
    }
}

/// Status of a delivery, as the delivery log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    /// Final without retries: a 4xx answer, or the route's transform failed.
    Failed,
    /// Every allowed attempt was used.
    Dead,
}

impl DeliveryStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

/// A delivery the pipeline creates.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub(crate) id: String,
    pub(crate) route: String,
    pub(crate) target: String,
    /// `None`: the event's body, unchanged.
    pub(crate) body: Option<Bytes>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) status: DeliveryStatus,
    pub(crate) error: Option<String>,
}

/// What one route made of one event.
#[derive(Debug, Clone)]
pub struct RouteResult {
    pub(crate) route: String,
    /// `delivered`, `filtered` or `failed`.
    pub(crate) outcome: Outcome,
    pub(crate) detail: Option<String>,
    /// Time the route's filter and transform took (for `/metrics`; not stored).
    pub(crate) elapsed_us: u64,
}

/// An event's route outcomes (`?1`/`$1`: its id), by route: the rows of `route_results`, and
/// `delivered` for each route with deliveries and no row ([`Routing::implies`]). The same text
/// for both stores but for the placeholder.
pub(crate) const ROUTES_SQL: &str = "SELECT route, outcome, detail FROM route_results WHERE event_id = ?1 \
     UNION ALL SELECT DISTINCT d.route, 'delivered', NULL FROM deliveries d WHERE d.event_id = ?1 \
     AND NOT EXISTS (SELECT 1 FROM route_results r WHERE r.event_id = ?1 AND r.route = d.route) \
     ORDER BY route";

/// What a route did with an event, as `route_results` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Delivered,
    Filtered,
    Failed,
    /// The route's wasm plugin is not uploaded yet; the route runs when it is.
    Waiting,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Filtered => "filtered",
            Self::Failed => "failed",
            Self::Waiting => "waiting",
        }
    }
}

impl Routing {
    /// Whether `result` need not be written when this routing is the event's first: a route
    /// that delivered is implied by its deliveries (the views read it from them, [`ROUTES_SQL`]).
    /// One row less per event for the commonest outcome. A replay's routing writes every result,
    /// since it replaces those of the routing before.
    pub(crate) fn implies(&self, result: &RouteResult) -> bool {
        self.replays == 0
            && result.outcome == Outcome::Delivered
            && self.deliveries.iter().any(|d| d.route == result.route)
    }

    /// Nothing learned yet about `event`.
    pub(crate) fn new(event: &StoredEvent) -> Self {
        Self {
            event_id: event.id.clone(),
            replays: event.replays,
            event_type: None,
            results: Vec::new(),
            deliveries: Vec::new(),
            plugin_calls: Vec::new(),
        }
    }
}

/// Everything the route stage learned about one event, committed in one transaction.
#[derive(Debug, Clone)]
pub struct Routing {
    pub(crate) event_id: String,
    /// The event's [`StoredEvent::replays`], from which its deliveries' ids derive.
    pub(crate) replays: u32,
    pub(crate) event_type: Option<String>,
    pub(crate) results: Vec<RouteResult>,
    pub(crate) deliveries: Vec<NewDelivery>,
    /// Routes whose filter passed and whose wasm plugin is still to run (in the gateway process,
    /// after contained evaluation). Empty by the time the routing is recorded.
    pub(crate) plugin_calls: Vec<String>,
}

/// Routings to record in one transaction, and which of their deliveries the route loop hands
/// straight to the delivery worker in memory: those are written leased to this process until the
/// given time (Unix ms, scheduling clock), so that no claim, here or on another instance, takes
/// them meanwhile. The others are written claimable, unless an attempt of theirs comes along.
#[derive(Debug, Clone, Default)]
pub struct RoutingBatch {
    pub routings: Vec<Routing>,
    /// Delivery id → lease end.
    pub leases: std::collections::HashMap<String, i64>,
    /// First attempts made before their routing was recorded (the route loop handed the
    /// deliveries over unrecorded, `crate::deliver::unrecorded`): each such delivery is written
    /// in the state its attempt left it, beside the attempt. Attempts of deliveries the fence
    /// does not take are dropped (the routing that was taken sends its own).
    pub attempts: Vec<Attempt>,
}

impl RoutingBatch {
    /// Recorded after its deliveries' first attempts (the late path): their targets have them
    /// already, so no delivery waits on this commit.
    pub(crate) fn after_attempts(&self) -> bool {
        !self.attempts.is_empty()
    }
}

/// A route that waits for its plugin, with its event.
#[derive(Debug, Clone)]
pub(crate) struct WaitingRoute {
    pub(crate) event: StoredEvent,
    pub(crate) event_type: Option<String>,
    pub(crate) route: String,
}

/// A delivery claimed for an attempt.
#[derive(Debug, Clone)]
pub(crate) struct DueDelivery {
    pub(crate) id: String,
    pub(crate) event_id: String,
    pub(crate) event_type: Option<String>,
    pub(crate) body: Bytes,
    pub(crate) headers: Vec<(String, String)>,
    /// Attempts made before this one.
    pub(crate) attempts: u32,
    /// Unix ms when the delivery was created (routed).
    pub(crate) created_at: i64,
}

/// A stretch of the events' commit order (`seq`), for reading unrouted events in pages: those
/// after `after`, up to and including `upto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) after: i64,
    pub(crate) upto: i64,
}

impl Span {
    /// Every event.
    pub(crate) const ALL: Span = Span {
        after: i64::MIN,
        upto: i64::MAX,
    };

    /// Every event up to `upto`, from the first.
    pub(crate) fn upto(upto: i64) -> Span {
        Span {
            after: i64::MIN,
            upto,
        }
    }
}

/// Work waiting in the store.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueueDepth {
    pub(crate) unrouted: u64,
    pub(crate) pending: Vec<(String, u64)>,
}

/// What the worker decided after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterAttempt {
    Succeeded,
    RetryAt(i64),
    Failed,
    Dead,
}

impl AfterAttempt {
    /// The delivery's status after the attempt, and when it is due again (while pending).
    pub(crate) fn state(self) -> (DeliveryStatus, Option<i64>) {
        match self {
            Self::Succeeded => (DeliveryStatus::Succeeded, None),
            Self::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
            Self::Failed => (DeliveryStatus::Failed, None),
            Self::Dead => (DeliveryStatus::Dead, None),
        }
    }
}

/// One attempt, as the delivery log keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) delivery_id: String,
    pub(crate) attempt: u32,
    pub(crate) started_at: i64,
    pub(crate) duration_ms: i64,
    pub(crate) status_code: Option<u16>,
    pub(crate) error: Option<String>,
    pub(crate) response_headers: Vec<(String, String)>,
    pub(crate) response_body: Bytes,
    pub(crate) after: AfterAttempt,
    /// The scheduling clock when the attempt ended.
    pub(crate) finished_at: i64,
}

/// A gateway instance beating on a shared store.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub(crate) id: String,
    /// Unix ms, on the database's clock.
    pub(crate) started_at: i64,
    pub(crate) last_beat_ms_ago: i64,
    /// The instance answering.
    pub(crate) this: bool,
}

/// A plugin as a shared store holds it for every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedPlugin {
    pub(crate) name: String,
    pub(crate) sha256: String,
    /// Deleted: instances unload it (kept so an instance that was away learns of the delete).
    pub(crate) deleted: bool,
}
