//! `/targets` and `/config`: each target's switch, breaker and rate limit, with enable (after a
//! ping the target must answer) and disable; the running config as a summary that holds no
//! secret, and reload with every problem listed when the file is refused.
//!
//! The config is never shown as written: secrets sit in many keys (source secrets, signing
//! keys, tokens, header values, URL paths), so this page shows only the keys that cannot hold
//! one: names, kinds, jq programs (which may not take `${VAR}`), and targets' scheme and host.

use super::layout::{self, Nav};
use super::{PageError, SignedIn, see_other, segment};
use crate::admin::targets::{public_url, switch_off, switch_on};
use crate::admin::{Admin, ApiError};
use crate::deliver::breaker::BreakerState;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};

/// The targets of the running config with their state and, for a signed-in user, the buttons
/// that switch them. `pending` is the store's count per target.
pub(super) fn target_table(state: &Admin, session: &SignedIn, pending: &[(String, u64)]) -> Markup {
    let config = state.config.borrow().clone();
    html! {
        table.list {
            thead { tr { th { "Target" } th { "Address" } th { "Pending" } th { "Breaker" } th { "Rate limit" } th { "Deliveries" } } }
            tbody {
                @for t in config.targets.values() {
                    @let disabled = state.switch.is_disabled(&t.name);
                    tr.disabled[disabled] {
                        td { (t.name) }
                        td { code { (public_url(&t.url)) } }
                        td { (pending.iter().find(|(n, _)| *n == t.name).map_or(0, |(_, n)| *n)) }
                        td { (breaker(state.gates.state(&t.name))) }
                        td { @match t.rate_limit { Some(r) => { (format!("{:.2}", r.per_second)) "/s" }, None => "none" } }
                        td {
                            @if disabled {
                                "paused"
                                @if let Some(why) = state.switch.reason(&t.name) { " (" (why) ")" }
                                " "
                                (layout::action_button(session, &format!("/targets/{}/enable", segment(&t.name)), "Ping and enable"))
                            } @else {
                                "on "
                                (layout::action_button(session, &format!("/targets/{}/disable", segment(&t.name)), "Disable"))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn breaker(state: Option<BreakerState>) -> String {
    match state {
        None => "off".into(),
        Some(BreakerState::Closed { failures: 0 }) => "closed".into(),
        Some(BreakerState::Closed { failures }) => format!("closed, {failures} failures in a row"),
        Some(BreakerState::Open { until }) => format!("open until {}", crate::rfc3339(until)),
        Some(BreakerState::HalfOpen { .. }) => "half-open (probing)".into(),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Notice {
    enabled: Option<String>,
    disabled: Option<String>,
}

pub(super) async fn targets(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    Query(n): Query<Notice>,
) -> Result<Html<String>, PageError> {
    let depth = state.store.queue_depth().await?;
    Ok(targets_page(&state, &session, &depth.pending, notice(&n)))
}

fn notice(n: &Notice) -> Option<(bool, String)> {
    match (&n.enabled, &n.disabled) {
        (Some(t), _) => Some((true, format!("`{t}` answered the ping and is enabled."))),
        (_, Some(t)) => Some((true, format!("`{t}` is disabled: its deliveries wait."))),
        _ => None,
    }
}

fn targets_page(
    state: &Admin,
    session: &SignedIn,
    pending: &[(String, u64)],
    notice: Option<(bool, String)>,
) -> Html<String> {
    let body = html! {
        @if let Some((ok, text)) = &notice { (layout::notice(*ok, text)) }
        (target_table(state, session, pending))
        p.hint { "Enabling sends a signed ping first; only a 2xx answer enables the target." }
    };
    layout::page("Targets", Nav::Targets, session, body)
}

pub(super) async fn enable(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    match switch_on(&state, &name).await {
        Ok(()) => {
            tracing::info!(target = %name, "console: target enabled");
            Ok(see_other(&format!("/targets?enabled={}", segment(&name))))
        }
        // The ping's answer, shown on the page that was used.
        Err(ApiError::Conflict(why)) => {
            let depth = state.store.queue_depth().await?;
            let page = targets_page(&state, &session, &depth.pending, Some((false, why)));
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn disable(
    State(state): State<Admin>,
    Extension(_): Extension<SignedIn>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    switch_off(&state, &name).await?;
    tracing::info!(target = %name, "console: target disabled");
    Ok(see_other(&format!("/targets?disabled={}", segment(&name))))
}

pub(super) async fn config(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
) -> Html<String> {
    config_page(&state, &session, None)
}

/// The running config (see the module docs for what is left out), under `notice`.
fn config_page(state: &Admin, session: &SignedIn, notice: Option<Markup>) -> Html<String> {
    let c = state.config.borrow().clone();
    let body = html! {
        @if let Some(n) = notice { (n) }
        p {
            "File: " code { (c.path.as_ref().map_or("(none)".into(), |p| p.display().to_string())) }
            " "
            (layout::action_button(session, "/config/reload", "Reload from the file"))
        }
        h2 { "Sources" }
        table.list {
            thead { tr { th { "Source" } th { "Kind" } th { "Signature" } th { "Address" } } }
            tbody {
                @for s in c.sources.values() {
                    tr {
                        td { (s.name) }
                        td { (format!("{:?}", s.kind).to_lowercase()) }
                        td { @if s.verifier.is_some() { "verified" } @else { "none" } }
                        td { code { "/hooks/" (s.name) } }
                    }
                }
            }
        }
        h2 { "Routes" }
        table.list {
            thead { tr { th { "Route" } th { "Source" } th { "Events" } th { "Filter" } th { "Transform" } th { "Evaluated" } th { "Targets" } } }
            tbody {
                @for r in &c.routes {
                    tr {
                        td { (r.name) }
                        td { (r.source) }
                        td { @match &r.events { Some(e) => (e.join(", ")), None => "all" } }
                        td { @if let Some(f) = &r.filter { pre.detail { (f.code()) } } @else { "none" } }
                        td {
                            @if let Some(w) = &r.wasm { "wasm plugin " code { (w.plugin) } }
                            @else if r.transform.is_some() { "jq" }
                            @else { "passthrough" }
                        }
                        td {
                            @match r.needs_child() {
                                Some(what) => { "evaluator child (" (what) ")" }
                                None => "in the gateway",
                            }
                        }
                        td { (r.targets.join(", ")) }
                    }
                }
            }
        }
        h2 { "Targets" }
        table.list {
            thead { tr { th { "Target" } th { "Address" } th { "Timeout" } th { "Attempts" } th { "Queue bound" } } }
            tbody {
                @for t in c.targets.values() {
                    tr {
                        td { (t.name) }
                        td { code { (public_url(&t.url)) } }
                        td { (humantime::format_duration(t.timeout)) }
                        td { (t.retry.max_attempts) }
                        td { (t.max_queue) }
                    }
                }
            }
        }
        p.hint { "Secrets, signing keys, header values and target paths are not shown." }
    };
    layout::page("Config", Nav::Config, session, body)
}

pub(super) async fn reload(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
) -> Response {
    let notice = match state.reloader.reload().await {
        Ok(done) => {
            tracing::info!(
                routes = done.routes,
                targets = done.targets,
                "config reloaded from the console"
            );
            match state.store.share_reload().await {
                Ok(()) => layout::notice(
                    true,
                    &format!(
                        "Reloaded: {} sources, {} routes, {} targets.{}{}",
                        done.sources,
                        done.routes,
                        done.targets,
                        if done.restart_needed.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " A restart is needed to apply: {}.",
                                done.restart_needed.join(", ")
                            )
                        },
                        if done.warnings.is_empty() {
                            String::new()
                        } else {
                            format!(" Warnings: {}", done.warnings.join("; "))
                        }
                    ),
                ),
                Err(e) => layout::notice(
                    false,
                    &format!(
                        "Reloaded here, but the other instances could not be told ({e}); reload again."
                    ),
                ),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "config reload from the console refused");
            html! {
                div.notice.error role="alert" {
                    p { "Reload refused; nothing changed." }
                    pre.problems { (e.to_string()) }
                }
            }
        }
    };
    config_page(&state, &session, Some(notice)).into_response()
}
