//! `GET /admin/v1/catalog` and `GET /admin/v1/catalog/{preset}/events/{event}`: the event catalog
//! the binary embeds, as the console and API clients read it. Read-only, and nothing in it comes
//! from the running config.

use super::ApiError;
use super::extract::ApiPath;
use crate::catalog;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Every preset and its events (`GET /admin/v1/catalog`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CatalogList {
    pub(crate) presets: Vec<PresetView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PresetView {
    /// The source `kind` it describes.
    pub(crate) preset: String,
    pub(crate) title: String,
    /// The platform's webhook documentation.
    pub(crate) docs: String,
    /// Senders name their own event types (any type is accepted).
    pub(crate) open: bool,
    pub(crate) events: Vec<EventView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventView {
    /// The event type hookgate gives such an event.
    #[serde(rename = "type")]
    pub(crate) event_type: String,
    /// Other names a route's `events` may use for it.
    pub(crate) aliases: Vec<String>,
    pub(crate) summary: String,
    /// The page that documents it.
    pub(crate) docs: String,
    pub(crate) has_schema: bool,
    pub(crate) samples: usize,
}

/// One event with its schema and samples.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CatalogEvent {
    pub(crate) preset: String,
    pub(crate) event: EventView,
    /// Its JSON Schema (draft 2020-12); null when the platform documents no payload.
    #[schema(value_type = Object, nullable)]
    pub(crate) schema: Option<serde_json::Value>,
    pub(crate) samples: Vec<SampleView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SampleView {
    /// The file's name under `catalog/<preset>/samples/`.
    pub(crate) name: String,
    /// The payload, byte for byte as the platform sends it.
    pub(crate) body: String,
}

fn event_view(e: &catalog::Event) -> EventView {
    EventView {
        event_type: e.event_type.clone(),
        aliases: e.aliases.clone(),
        summary: e.summary.clone(),
        docs: e.docs.clone(),
        has_schema: e.schema.is_some(),
        samples: e.samples.len(),
    }
}

/// The embedded catalog, or 503 when it does not parse (a broken build, which tests catch).
pub(super) fn presets() -> Result<&'static [catalog::Preset], ApiError> {
    catalog::presets().map_err(|e| ApiError::Unavailable(e.to_string()))
}

#[utoipa::path(get, path = "/admin/v1/catalog", tag = "catalog",
    responses((status = 200, body = CatalogList), (status = 401, body = super::answers::ErrorAnswer),
        (status = 503, body = super::answers::ErrorAnswer)))]
pub(super) async fn list() -> Result<Json<CatalogList>, ApiError> {
    let presets = presets()?
        .iter()
        .map(|p| PresetView {
            preset: p.preset.clone(),
            title: p.title.clone(),
            docs: p.docs.clone(),
            open: p.open,
            events: p.events.iter().map(event_view).collect(),
        })
        .collect();
    Ok(Json(CatalogList { presets }))
}

#[utoipa::path(get, path = "/admin/v1/catalog/{preset}/events/{event}", tag = "catalog",
    params(("preset" = String, Path, description = "A source kind: `tfe`, `gitlab`, …"),
        ("event" = String, Path, description = "An event type or alias: `run:completed`, `Push Hook`, …")),
    responses((status = 200, body = CatalogEvent), (status = 400, body = super::answers::ErrorAnswer),
        (status = 401, body = super::answers::ErrorAnswer),
        (status = 404, description = "No such preset or event; the answer names the closest", body = super::answers::ErrorAnswer),
        (status = 503, body = super::answers::ErrorAnswer)))]
pub(super) async fn event(
    ApiPath((preset, event)): ApiPath<(String, String)>,
) -> Result<Json<CatalogEvent>, ApiError> {
    let all = presets()?;
    let missing = |e: catalog::NotInCatalog| ApiError::Missing(e.to_string());
    let p = catalog::find_preset(all, &preset).map_err(missing)?;
    let e = p.find_event(&event).map_err(missing)?;
    let samples = e
        .samples
        .iter()
        .filter_map(|path| {
            let bytes = catalog::file(&p.preset, path)?;
            Some(SampleView {
                name: path.trim_start_matches("samples/").to_string(),
                body: String::from_utf8_lossy(bytes).into_owned(),
            })
        })
        .collect();
    Ok(Json(CatalogEvent {
        preset: p.preset.clone(),
        event: event_view(e),
        schema: catalog::schema_of(p, e)
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
            .cloned(),
        samples,
    }))
}
