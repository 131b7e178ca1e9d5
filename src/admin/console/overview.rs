//! `/`: the overview. The last hour's activity, what waits (unrouted events, pending deliveries
//! per target), what needs a person (failed and dead deliveries), each target's switch, breaker
//! and rate limit, and the instances on a shared store.

use super::PageError;
use super::layout::{self, Nav};
use super::{SignedIn, chart, manage};
use crate::admin::Admin;
use crate::store::{DeliveryQuery, DeliveryStatus, Scope};
use axum::Extension;
use axum::extract::State;
use axum::response::Html;
use maud::html;

pub(super) async fn page(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
) -> Result<Html<String>, PageError> {
    let depth = state.store.queue_depth().await?;
    let count = |status| DeliveryQuery {
        status: Some(status),
        ..DeliveryQuery::default()
    };
    // Every failed delivery, as the tile's link lists them: those a retry can send again and
    // those whose route failed (their event shows why).
    let failed = state
        .store
        .count_deliveries(count(DeliveryStatus::Failed), Scope::Listed)
        .await?;
    let dead = state
        .store
        .count_deliveries(count(DeliveryStatus::Dead), Scope::Listed)
        .await?;
    let instances = state.store.instances().await?;
    let pending: u64 = depth.pending.iter().map(|(_, n)| n).sum();
    let body = html! {
        (chart::last_hour(&state.metrics.last_hour()))
        p.hint { "Counted by this instance since it started." }
        section.tiles {
            div.tile { span.n { (depth.unrouted) } " events waiting to be routed" }
            div.tile { span.n { (pending) } " deliveries pending" }
            a.tile.warn[failed > 0] href="/deliveries?status=failed" { span.n { (failed) } " failed" }
            a.tile.warn[dead > 0] href="/deliveries?status=dead" { span.n { (dead) } " dead" }
        }
        h2 { "Targets" }
        (manage::target_table(&state, &session, &depth.pending))
        @if state.store.is_shared() {
            h2 { "Instances on this store" }
            table {
                thead { tr { th { "Instance" } th { "Started" } th { "Last heartbeat" } } }
                tbody {
                    @for i in &instances {
                        tr {
                            td { code { (i.id) } @if i.this { " (this one)" } }
                            td { (layout::time(i.started_at)) }
                            td { (i.last_beat_ms_ago) " ms ago" }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Overview", Nav::Overview, &session, body))
}
