//! `/events`: stored events, newest first, filtered by source, type and time; one event with its
//! headers, body and what every route made of it; replay.

use super::layout::{self, Nav};
use super::{PageError, SignedIn};
use crate::admin::{Admin, MAX_PAGE, parse_cursor, parse_since};
use crate::store::EventQuery;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use maud::{Markup, html};

/// Events one page lists.
const PAGE: usize = 50;
/// Deliveries of one event shown with their state (the rest by id).
const SHOWN_DELIVERIES: usize = 50;

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Filter {
    source: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    since: Option<String>,
    cursor: Option<String>,
}

/// A form's empty field means "any".
pub(super) fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub(super) async fn list(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    Query(f): Query<Filter>,
) -> Result<Html<String>, PageError> {
    let query = EventQuery {
        source: given(&f.source),
        event_type: given(&f.event_type),
        limit: PAGE.min(MAX_PAGE),
        before: parse_cursor(given(&f.cursor).as_deref())?,
        since: parse_since(given(&f.since).as_deref(), state.clock.now_ms())?,
    };
    let page = state.store.list_events(query).await?;
    let sources: Vec<String> = state.config.borrow().sources.keys().cloned().collect();
    let next = (page.len() == PAGE)
        .then(|| page.last().map(|e| e.seq))
        .flatten();
    let body = html! {
        form.filters method="get" action="/events" {
            (layout::choice("Source", "source", &sources, given(&f.source).as_deref()))
            label { "Type " input type="text" name="type" value=[given(&f.event_type)] placeholder="any"; }
            label { "Within " input type="text" name="since" value=[given(&f.since)] placeholder="e.g. 1h"; }
            button type="submit" { "Filter" }
        }
        @if page.is_empty() {
            p.empty { "No events match." }
        } @else {
            table.list {
                thead { tr { th { "Received" } th { "Source" } th { "Type" } th { "Routed" } th { "Event" } } }
                tbody {
                    @for e in &page {
                        tr {
                            td { (layout::time(e.received_at)) }
                            td { (e.source) }
                            td { (e.event_type.as_deref().unwrap_or("—")) }
                            td { @if e.routed { "yes" } @else { "not yet" } }
                            td { a href=(format!("/events/{}", e.id)) { code { (e.id) } } }
                        }
                    }
                }
            }
        }
        @if let Some(seq) = next {
            p.more { a href=(more_href(&f, seq)) { "Older events →" } }
        }
    };
    Ok(layout::page("Events", Nav::Events, &session, body))
}

fn more_href(f: &Filter, cursor: i64) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("source", &f.source),
        ("type", &f.event_type),
        ("since", &f.since),
    ] {
        if let Some(v) = given(v) {
            q.append_pair(k, &v);
        }
    }
    q.append_pair("cursor", &cursor.to_string());
    format!("/events?{}", q.finish())
}

pub(super) async fn show(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    Path(id): Path<String>,
    Query(q): Query<layout::Detail>,
) -> Result<Html<String>, PageError> {
    let event = state.store.get_event(&id).await?;
    let mut deliveries = Vec::new();
    for d in event.deliveries.iter().take(SHOWN_DELIVERIES) {
        deliveries.push(state.store.get_delivery(d).await?.0);
    }
    let body = html! {
        @if q.notice.as_deref() == Some("replayed") {
            (layout::notice(true, "Replayed: the event is routed again with the current config."))
        }
        dl.facts {
            dt { "Event" } dd { code { (event.id) } }
            dt { "Source" } dd { (event.source) }
            dt { "Type" } dd { (event.event_type.as_deref().unwrap_or("—")) }
            dt { "Received" } dd { (layout::time(event.received_at)) }
            dt { "Routed" } dd { @if event.routed { "yes" } @else { "not yet" } }
        }
        div.actions {
            (layout::action_button(&session, &format!("/events/{}/replay", event.id), "Replay"))
            a.button href=(format!("/playground?event={}", super::segment(&event.id))) { "Try in the playground" }
        }
        h2 { "Routes" }
        @if event.routes.is_empty() {
            p.empty { "No route has recorded an outcome for this event yet." }
        } @else {
            table.list {
                thead { tr { th { "Route" } th { "Outcome" } th { "Detail" } } }
                tbody {
                    @for r in &event.routes {
                        tr.(r.outcome) {
                            td { (r.route) }
                            td { (r.outcome) }
                            td { @if let Some(d) = &r.detail { pre.detail { (d) } } }
                        }
                    }
                }
            }
        }
        h2 { "Deliveries" }
        (delivery_rows(&deliveries, event.deliveries.len()))
        h2 { "Headers" }
        (headers(&event.headers))
        h2 { "Body" }
        (layout::payload(&event.body, q.full, &format!("/events/{}?full=true", event.id)))
    };
    Ok(layout::page("Event", Nav::Events, &session, body))
}

fn delivery_rows(shown: &[crate::store::DeliveryView], all: usize) -> Markup {
    html! {
        @if shown.is_empty() {
            p.empty { "None." }
        } @else {
            table.list {
                thead { tr { th { "Delivery" } th { "Route" } th { "Target" } th { "Status" } th { "Attempts" } } }
                tbody {
                    @for d in shown {
                        tr.(d.status) {
                            td { a href=(format!("/deliveries/{}", d.id)) { code { (d.id) } } }
                            td { (d.route) }
                            td { (d.target) }
                            td { (d.status) }
                            td { (d.attempts) }
                        }
                    }
                }
            }
            @if all > shown.len() {
                p.hint { "and " (all - shown.len()) " more" }
            }
        }
    }
}

/// Header pairs as a table (values clipped: a producer chooses them).
pub(super) fn headers(pairs: &[(String, String)]) -> Markup {
    html! {
        @if pairs.is_empty() {
            p.empty { "None." }
        } @else {
            table.headers {
                tbody {
                    @for (k, v) in pairs {
                        tr { th { (k) } td { (layout::clip(v, 1024).0) } }
                    }
                }
            }
        }
    }
}

pub(super) async fn replay(
    State(state): State<Admin>,
    Extension(_): Extension<SignedIn>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    state.store.replay_event(&id).await?;
    tracing::info!(event = %id, "console: event replayed");
    Ok(super::see_other(&format!(
        "/events/{}?notice=replayed",
        super::segment(&id)
    )))
}
