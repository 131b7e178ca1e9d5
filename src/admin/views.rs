//! The admin API's JSON: what each delivery-log answer looks like on the wire, mapped from the
//! store's views. The store's types are rows as both backends read them; these are the API, so
//! a change to how something is stored cannot change an answer by accident, nor a new column
//! reach clients unasked. `hookgate`'s own admin client (`cli::client`) and the operators'
//! scripts read these field names: never rename or reshape one without a new API version.
//!
//! Plain data, no logic; a view never carries a secret (bodies and headers are as stored, and
//! credentials were never stored).

use crate::store;
use crate::transform::wasm::registry::PluginInfo;
use serde::Serialize;

/// A delivery in the log (`GET /admin/v1/deliveries`, and the head of one delivery's answer).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Delivery {
    pub(crate) id: String,
    pub(crate) event_id: String,
    pub(crate) route: String,
    pub(crate) target: String,
    pub(crate) status: String,
    pub(crate) attempts: u32,
    pub(crate) next_attempt_at: Option<i64>,
    pub(crate) last_error: Option<String>,
}

/// One delivery with every attempt (`GET /admin/v1/deliveries/{id}`): a [`Delivery`] whose
/// `attempts` lists them instead of counting them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeliveryDetail {
    pub(crate) id: String,
    pub(crate) event_id: String,
    pub(crate) route: String,
    pub(crate) target: String,
    pub(crate) status: String,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) next_attempt_at: Option<i64>,
    pub(crate) last_error: Option<String>,
}

impl DeliveryDetail {
    pub(crate) fn new(d: store::DeliveryView, attempts: Vec<store::AttemptView>) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            route: d.route,
            target: d.target,
            status: d.status,
            attempts: attempts.into_iter().map(Attempt::from).collect(),
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
        }
    }
}

/// One attempt of a delivery (`GET /admin/v1/deliveries/{id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Attempt {
    pub(crate) attempt: u32,
    pub(crate) started_at: i64,
    pub(crate) duration_ms: i64,
    pub(crate) status_code: Option<u16>,
    pub(crate) error: Option<String>,
    #[schema(value_type = Vec<Vec<String>>)]
    pub(crate) response_headers: Vec<(String, String)>,
    /// The first 4 KiB, as text (lossy where it was not UTF-8).
    pub(crate) response_body: String,
}

/// One line of the event list (`GET /admin/v1/events`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EventSummary {
    /// The cursor of this item.
    pub(crate) seq: i64,
    pub(crate) id: String,
    pub(crate) source: String,
    pub(crate) event_type: Option<String>,
    pub(crate) received_at: i64,
    pub(crate) routed: bool,
}

/// One event (`GET /admin/v1/events/{id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) source: String,
    pub(crate) event_type: Option<String>,
    pub(crate) received_at: i64,
    pub(crate) routed: bool,
    #[schema(value_type = Vec<Vec<String>>)]
    pub(crate) headers: Vec<(String, String)>,
    /// The body as text (lossy where it was not UTF-8).
    pub(crate) body: String,
    pub(crate) deliveries: Vec<String>,
    /// What each route made of the event (`waiting` while its plugin is missing).
    pub(crate) routes: Vec<RouteOutcome>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RouteOutcome {
    pub(crate) route: String,
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
}

/// An active plugin and the routes of the running config that use it (`/admin/v1/plugins`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Plugin {
    pub(crate) name: String,
    pub(crate) sha256: String,
    pub(crate) size: usize,
    /// RFC 3339: when the file was written.
    pub(crate) uploaded_at: String,
    pub(crate) routes: Vec<String>,
}

impl Plugin {
    pub(crate) fn new(p: PluginInfo, routes: Vec<String>) -> Self {
        Self {
            name: p.name,
            sha256: p.sha256,
            size: p.size,
            uploaded_at: p.uploaded_at,
            routes,
        }
    }
}

/// A gateway instance on a shared store (`GET /admin/v1/instances`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Instance {
    pub(crate) id: String,
    /// Unix ms, on the database's clock.
    pub(crate) started_at: i64,
    pub(crate) last_beat_ms_ago: i64,
    /// The instance answering.
    pub(crate) this: bool,
}

/// A dry run (`POST /admin/v1/try`): what each route of the source, or the candidate route,
/// made of the event, and the request each target would get.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TryView {
    pub(crate) event_type: Option<String>,
    /// Why ingress would refuse the event (a bad signature…); the routes ran regardless.
    pub(crate) refused: Option<String>,
    pub(crate) routes: Vec<TryRoute>,
    /// The candidate route as TOML, to paste into the config.
    pub(crate) toml: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TryRoute {
    pub(crate) route: String,
    pub(crate) outcome: String,
    pub(crate) detail: Option<String>,
    pub(crate) requests: Vec<TryRequestView>,
}

/// A target's request: the URL as its origin only (its path may be a credential), the headers
/// with configured values masked and signatures shown, and the body as text.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TryRequestView {
    pub(crate) target: String,
    pub(crate) method: String,
    pub(crate) url: String,
    /// Why the target would refuse the message instead of sending it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) problem: Option<String>,
    #[schema(value_type = Vec<Vec<String>>)]
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl From<store::DeliveryView> for Delivery {
    fn from(d: store::DeliveryView) -> Self {
        // `seq` stays behind: it is the cursor, answered as `next_cursor`, not a field.
        Self {
            id: d.id,
            event_id: d.event_id,
            route: d.route,
            target: d.target,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
        }
    }
}

impl From<store::AttemptView> for Attempt {
    fn from(a: store::AttemptView) -> Self {
        Self {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error,
            response_headers: a.response_headers,
            response_body: a.response_body,
        }
    }
}

impl From<store::EventSummary> for EventSummary {
    fn from(e: store::EventSummary) -> Self {
        Self {
            seq: e.seq,
            id: e.id,
            source: e.source,
            event_type: e.event_type,
            received_at: e.received_at,
            routed: e.routed,
        }
    }
}

impl From<store::EventView> for Event {
    fn from(e: store::EventView) -> Self {
        Self {
            id: e.id,
            source: e.source,
            event_type: e.event_type,
            received_at: e.received_at,
            routed: e.routed,
            headers: e.headers,
            body: e.body,
            deliveries: e.deliveries,
            routes: e.routes.into_iter().map(RouteOutcome::from).collect(),
        }
    }
}

impl From<store::RouteOutcomeView> for RouteOutcome {
    fn from(r: store::RouteOutcomeView) -> Self {
        Self {
            route: r.route,
            outcome: r.outcome,
            detail: r.detail,
        }
    }
}

impl From<store::Instance> for Instance {
    fn from(i: store::Instance) -> Self {
        Self {
            id: i.id,
            started_at: i.started_at,
            last_beat_ms_ago: i.last_beat_ms_ago,
            this: i.this,
        }
    }
}

impl From<super::dry_run::Tried> for TryView {
    fn from(t: super::dry_run::Tried) -> Self {
        Self {
            event_type: t.run.event_type,
            refused: t.run.refused,
            routes: t.run.routes.into_iter().map(TryRoute::from).collect(),
            toml: t.toml,
        }
    }
}

impl From<crate::dry_run::RouteRun> for TryRoute {
    fn from(r: crate::dry_run::RouteRun) -> Self {
        Self {
            route: r.route,
            outcome: r.outcome,
            detail: r.detail,
            requests: r
                .requests
                .into_iter()
                .map(|q| TryRequestView {
                    target: q.target.name.clone(),
                    url: super::targets::tried_url(&q),
                    method: q.method,
                    problem: q.problem,
                    headers: q.headers,
                    body: String::from_utf8_lossy(&q.body).into_owned(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire format is the API: field names and order as the admin client and the e2e tests
    /// read them, `seq` of a delivery never among them.
    #[test]
    fn delivery_and_event_views_keep_their_wire_shape() {
        let view = store::DeliveryView {
            seq: 7,
            id: "d".into(),
            event_id: "e".into(),
            route: "r".into(),
            target: "t".into(),
            status: "dead".into(),
            attempts: 3,
            next_attempt_at: None,
            last_error: Some("500".into()),
        };
        let delivery = Delivery::from(view.clone());
        assert_eq!(
            serde_json::to_string(&delivery).ok().as_deref(),
            Some(
                r#"{"id":"d","event_id":"e","route":"r","target":"t","status":"dead","attempts":3,"next_attempt_at":null,"last_error":"500"}"#
            )
        );
        // One delivery's answer: the same fields, the attempts listed where the count stood.
        let detail = DeliveryDetail::new(
            view,
            vec![store::AttemptView {
                attempt: 1,
                started_at: 2,
                duration_ms: 3,
                status_code: Some(500),
                error: None,
                response_headers: Vec::new(),
                response_body: "no".into(),
            }],
        );
        assert_eq!(
            serde_json::to_string(&detail).ok().as_deref(),
            Some(
                r#"{"id":"d","event_id":"e","route":"r","target":"t","status":"dead","attempts":[{"attempt":1,"started_at":2,"duration_ms":3,"status_code":500,"error":null,"response_headers":[],"response_body":"no"}],"next_attempt_at":null,"last_error":"500"}"#
            )
        );
        let event = Event::from(store::EventView {
            id: "e".into(),
            source: "s".into(),
            event_type: None,
            received_at: 1,
            routed: true,
            headers: vec![("x-a".into(), "1".into())],
            body: "{}".into(),
            deliveries: vec!["d".into()],
            routes: vec![store::RouteOutcomeView {
                route: "r".into(),
                outcome: "delivered".into(),
                detail: None,
            }],
        });
        assert_eq!(
            serde_json::to_string(&event).ok().as_deref(),
            Some(
                r#"{"id":"e","source":"s","event_type":null,"received_at":1,"routed":true,"headers":[["x-a","1"]],"body":"{}","deliveries":["d"],"routes":[{"route":"r","outcome":"delivered","detail":null}]}"#
            )
        );
    }
}
