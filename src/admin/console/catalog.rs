//! `/catalog`: the event catalog beside the playground. A preset's events with where each is
//! documented; one event's schema and samples, each with a link that opens it in the playground
//! with the sample's headers, so a mapping can be written against the real shape before the
//! platform ever sends one.
//!
//! Read-only, and it shows only what the binary embeds: nothing from the running config.

use super::layout::{self, Nav};
use super::{PageError, SignedIn, segment};
use crate::admin::ApiError;
use crate::admin::catalog::presets;
use crate::catalog::{self, Preset};
use axum::Extension;
use axum::extract::{Path, Query};
use axum::response::Html;
use maud::{Markup, html};

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Pick {
    preset: Option<String>,
}

/// Every preset, or one preset's events (`?preset=`).
pub(super) async fn list(
    Extension(session): Extension<SignedIn>,
    Query(pick): Query<Pick>,
) -> Result<Html<String>, PageError> {
    let presets = presets()?;
    let chosen = pick
        .preset
        .as_deref()
        .and_then(|name| presets.iter().find(|p| p.preset == name));
    let body = html! {
        p { "What each platform with a preset sends, written down from its documentation: pick an event to see its schema and samples, and open a sample in the playground." }
        nav.tabs {
            @for p in presets {
                a href=(format!("/catalog?preset={}", segment(&p.preset)))
                    aria-current=[chosen.is_some_and(|c| c.preset == p.preset).then_some("page")] {
                    (p.title)
                }
            }
        }
        @if let Some(p) = chosen { (events(p)) }
    };
    Ok(layout::page("Event catalog", Nav::Catalog, &session, body))
}

fn events(p: &Preset) -> Markup {
    html! {
        h2 { (p.title) " " small { code { "kind = \"" (p.preset) "\"" } } }
        p { a href=(p.docs) rel="noreferrer" { "The platform's webhook documentation" } }
        @if p.open { p { "Senders name their own event types: these are examples, and any type is accepted." } }
        table.list {
            thead { tr { th { "Event type" } th { "What it is" } th { "Schema" } th { "Samples" } } }
            tbody {
                @for e in &p.events {
                    tr {
                        td { a href=(event_href(&p.preset, &e.event_type)) { code { (e.event_type) } } }
                        td {
                            (e.summary)
                            @if !e.aliases.is_empty() { br; small { "also: " (e.aliases.join(", ")) } }
                        }
                        td { @if e.schema.is_some() { "yes" } @else { "none documented" } }
                        td { (e.samples.len()) }
                    }
                }
            }
        }
    }
}

fn event_href(preset: &str, event: &str) -> String {
    format!("/catalog/{}/{}", segment(preset), segment(event))
}

/// One event: where it is documented, its schema, and its samples with playground links.
pub(super) async fn event(
    Extension(session): Extension<SignedIn>,
    Path((preset, event)): Path<(String, String)>,
) -> Result<Html<String>, PageError> {
    let presets = presets()?;
    let p = presets
        .iter()
        .find(|p| p.preset == preset)
        .ok_or(ApiError::NotFound)?;
    let e = p.events_named(&event).next().ok_or(ApiError::NotFound)?;
    let schema = match catalog::schema_of(p, e).map_err(|e| ApiError::Unavailable(e.to_string()))? {
        Some(s) => serde_json::to_string_pretty(s)
            .map_err(|e| ApiError::Unavailable(format!("cannot show the schema: {e}")))?,
        None => String::new(),
    };
    let body = html! {
        p { a href=(format!("/catalog?preset={}", segment(&p.preset))) { "← " (p.title) } }
        p { (e.summary) " " a href=(e.docs) rel="noreferrer" { "Documentation" } }
        @if !e.aliases.is_empty() { p { "Routes' " code { "events" } " may also name it " (e.aliases.join(", ")) "." } }
        @for (i, path) in e.samples.iter().enumerate() {
            @let text = catalog::file(&p.preset, path).map(String::from_utf8_lossy).unwrap_or_default();
            h2 { "Sample " (i + 1) ": " code { (path.trim_start_matches("samples/")) } }
            p { a.button href=(format!("/playground?catalog={}&sample={}", segment(&format!("{}/{}", p.preset, e.event_type)), i + 1)) { "Try in the playground" } }
            (layout::payload(&text, true, ""))
        }
        h2 { "Schema" }
        @if schema.is_empty() { p.empty { "The platform documents no payload for this event." } }
        @else { (layout::payload(&schema, true, "")) }
    };
    Ok(layout::page(
        &format!("{}: {}", p.preset, e.event_type),
        Nav::Catalog,
        &session,
        body,
    ))
}

/// A catalog sample as the playground loads it: the source kind, the headers its platform sends
/// (signed with the catalog's test secret, so the playground's "verify" will refuse them) and
/// the body.
pub(super) fn sample(catalog: &str, n: usize) -> Option<(&'static str, String, String)> {
    let (preset, event) = catalog.split_once('/')?;
    let p = catalog::preset(preset)?;
    let e = p.events_named(event).next()?;
    let path = e.samples.get(n.checked_sub(1)?)?;
    let body = String::from_utf8_lossy(catalog::file(preset, path)?).into_owned();
    let name = path.trim_start_matches("samples/");
    let headers: serde_json::Value =
        serde_json::from_slice(catalog::file(preset, "samples/headers.json")?).ok()?;
    let headers = headers[name]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some(format!("{k}: {}\n", v.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    Some((p.preset.as_str(), headers, body))
}
