//! `/deliveries`: the delivery log, newest first, filtered by status, target, route and time; one
//! delivery with every attempt; retry one, or all that match a filter once their count is
//! confirmed.

use super::events::{given, headers};
use super::layout::{self, Nav};
use super::{PageError, SignedIn, see_other, segment};
use crate::admin::{Admin, ApiError, MAX_BULK_RETRY, parse_cursor, parse_since};
use crate::store::{DeliveryQuery, DeliveryStatus, Retry, Scope};
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use maud::html;

/// Deliveries one page lists.
const PAGE: usize = 50;
const STATUSES: [&str; 4] = ["pending", "succeeded", "failed", "dead"];

#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(super) struct Filter {
    status: Option<String>,
    target: Option<String>,
    route: Option<String>,
    since: Option<String>,
    cursor: Option<String>,
    /// After a bulk retry: how many were queued.
    queued: Option<usize>,
}

impl Filter {
    fn query(&self, limit: usize, now: i64) -> Result<DeliveryQuery, ApiError> {
        let status = match given(&self.status) {
            None => None,
            Some(s) => Some(DeliveryStatus::parse(&s).ok_or_else(|| {
                ApiError::BadRequest(format!("status must be one of {}", STATUSES.join(", ")))
            })?),
        };
        Ok(DeliveryQuery {
            status,
            target: given(&self.target),
            route: given(&self.route),
            limit,
            before: parse_cursor(given(&self.cursor).as_deref())?,
            since: parse_since(given(&self.since).as_deref(), now)?,
            source: None,
        })
    }

    /// The filter (not the cursor) as query pairs.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("status", &self.status),
            ("target", &self.target),
            ("route", &self.route),
            ("since", &self.since),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| (k, v)))
        .collect()
    }

    fn href(&self, extra: &[(&'static str, String)]) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs().iter().chain(extra) {
            q.append_pair(k, v);
        }
        format!("/deliveries?{}", q.finish())
    }
}

pub(super) async fn list(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    Query(f): Query<Filter>,
) -> Result<Html<String>, PageError> {
    let page = state
        .store
        .list_deliveries(f.query(PAGE, state.clock.now_ms())?)
        .await?;
    let (targets, routes) = {
        let c = state.config.borrow();
        let targets: Vec<String> = c.targets.keys().cloned().collect();
        let routes: Vec<String> = c.routes.iter().map(|r| r.name.clone()).collect();
        (targets, routes)
    };
    let next = (page.len() == PAGE)
        .then(|| page.last().map(|d| d.seq))
        .flatten();
    let status = given(&f.status);
    let body = html! {
        @if let Some(n) = f.queued {
            (layout::notice(true, &format!("Queued {n} deliveries to be sent again.")))
        }
        form.filters method="get" action="/deliveries" {
            (layout::choice("Status", "status", &STATUSES.map(str::to_owned), status.as_deref()))
            (layout::choice("Target", "target", &targets, given(&f.target).as_deref()))
            (layout::choice("Route", "route", &routes, given(&f.route).as_deref()))
            label { "Within " input type="text" name="since" value=[given(&f.since)] placeholder="e.g. 1h"; }
            button type="submit" { "Filter" }
        }
        @if status.as_deref() != Some("pending") {
            form.bulk method="post" action="/deliveries/retry" {
                (layout::csrf(&session))
                @for (k, v) in f.pairs() { input type="hidden" name=(k) value=(v); }
                button type="submit" {
                    @match status.as_deref() {
                        Some(s) => { "Retry all " (s) " deliveries that match…" }
                        None => { "Retry all failed and dead deliveries that match…" }
                    }
                }
            }
        }
        @if page.is_empty() {
            p.empty { "No deliveries match." }
        } @else {
            table.list {
                thead { tr { th { "Delivery" } th { "Route" } th { "Target" } th { "Status" } th { "Attempts" } th { "Last error" } } }
                tbody {
                    @for d in &page {
                        tr.(d.status) {
                            td { a href=(format!("/deliveries/{}", segment(&d.id))) { code { (d.id) } } }
                            td { (d.route) }
                            td { (d.target) }
                            td { (d.status) }
                            td { (d.attempts) }
                            td { @if let Some(e) = &d.last_error { (layout::clip(e, 200).0) } }
                        }
                    }
                }
            }
        }
        @if let Some(seq) = next {
            p.more { a href=(f.href(&[("cursor", seq.to_string())])) { "Older deliveries →" } }
        }
    };
    Ok(layout::page("Deliveries", Nav::Deliveries, &session, body))
}

pub(super) async fn show(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    Path(id): Path<String>,
    Query(q): Query<layout::Detail>,
) -> Result<Html<String>, PageError> {
    let (d, attempts) = state.store.get_delivery(&id).await?;
    let here = format!("/deliveries/{}", segment(&d.id));
    let body = html! {
        @match q.notice.as_deref() {
            Some("queued") => (layout::notice(true, "Queued: the delivery is sent again now.")),
            Some("pending") => (layout::notice(false, "Not queued: the delivery is pending already.")),
            Some("routing") => (layout::notice(false, "Not queued: this delivery failed in routing (its route's filter or transform failed), so it has no body of its own. Replay its event to route it again.")),
            _ => {}
        }
        dl.facts {
            dt { "Delivery" } dd { code { (d.id) } }
            dt { "Event" } dd { a href=(format!("/events/{}", segment(&d.event_id))) { code { (d.event_id) } } }
            dt { "Route" } dd { (d.route) }
            dt { "Target" } dd { (d.target) }
            dt { "Status" } dd.(d.status) { (d.status) }
            dt { "Next attempt" } dd { @match d.next_attempt_at { Some(t) => (layout::time(t)), None => "—" } }
            dt { "Last error" } dd { @match &d.last_error { Some(e) => pre.detail { (layout::clip(e, 4096).0) }, None => "—" } }
        }
        @if d.status != "pending" {
            (layout::action_button(&session, &format!("{here}/retry"), "Retry"))
        }
        h2 { "Attempts" }
        @if attempts.is_empty() {
            p.empty { "None yet." }
        }
        @for a in &attempts {
            section.attempt {
                h3 {
                    "#" (a.attempt) " · "
                    @match a.status_code { Some(c) => { "HTTP " (c) }, None => "no answer" }
                    " · " (a.duration_ms) " ms · " (layout::time(a.started_at))
                }
                @if let Some(e) = &a.error { p.error { (layout::clip(e, 4096).0) } }
                details {
                    summary { "Response headers" }
                    (headers(&a.response_headers))
                }
                (layout::payload(&a.response_body, q.full, &format!("{here}?full=true")))
            }
        }
    };
    Ok(layout::page("Delivery", Nav::Deliveries, &session, body))
}

pub(super) async fn retry(
    State(state): State<Admin>,
    Extension(_): Extension<SignedIn>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let notice = match state
        .store
        .retry_delivery(&id, state.clock.now_ms())
        .await?
    {
        Retry::Queued => {
            tracing::info!(delivery = %id, "console: delivery queued again");
            "queued"
        }
        Retry::AlreadyPending => "pending",
        Retry::FailedInRouting { .. } => "routing",
    };
    Ok(see_other(&format!(
        "/deliveries/{}?notice={notice}",
        segment(&id)
    )))
}

/// The bulk retry form: the listing's filter and, the second time, the confirmed count. (Not
/// `#[serde(flatten)]`: form values reach a flattened struct as strings, numbers and all.)
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Bulk {
    status: Option<String>,
    target: Option<String>,
    route: Option<String>,
    since: Option<String>,
    /// The count the user saw and confirmed; absent, the answer is that count, to confirm.
    confirm: Option<usize>,
}

/// First post: how many deliveries the filter would queue, and a button to queue that many.
/// Second post (with `confirm`): queues at most the confirmed number.
pub(super) async fn bulk_retry(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    Form(form): Form<Bulk>,
) -> Result<Response, PageError> {
    let filter = Filter {
        status: form.status,
        target: form.target,
        route: form.route,
        since: form.since,
        ..Filter::default()
    };
    if given(&filter.status).as_deref() == Some("pending") {
        return Err(ApiError::BadRequest("pending deliveries are queued already".into()).into());
    }
    let now = state.clock.now_ms();
    if let Some(n) = form.confirm {
        let limit = n.clamp(1, MAX_BULK_RETRY);
        let queued = state
            .store
            .retry_deliveries(filter.query(limit, now)?, now)
            .await?;
        tracing::info!(queued, "console: deliveries queued again in bulk");
        return Ok(see_other(&filter.href(&[("queued", queued.to_string())])));
    }
    let matching = state
        .store
        .count_deliveries(filter.query(MAX_BULK_RETRY, now)?, Scope::Retryable)
        .await?;
    let would = matching.min(MAX_BULK_RETRY);
    let body = html! {
        @if matching == 0 {
            p { "No delivery matches: nothing to retry." }
        } @else {
            p {
                (matching) " deliveries match. "
                @if matching > would { "One retry queues at most " (MAX_BULK_RETRY) ", oldest first. " }
            }
            form method="post" action="/deliveries/retry" {
                (layout::csrf(&session))
                @for (k, v) in filter.pairs() { input type="hidden" name=(k) value=(v); }
                input type="hidden" name="confirm" value=(would);
                button type="submit" { "Queue " (would) " deliveries" }
            }
        }
        p { a href=(filter.href(&[])) { "Back to the deliveries" } }
    };
    Ok(layout::page("Retry deliveries", Nav::Deliveries, &session, body).into_response())
}
