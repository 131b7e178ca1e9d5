//! The admin API's OpenAPI 3.1 document, generated from the handlers' own types and
//! annotations (utoipa), served at `/admin/v1/openapi.json` without a token (it describes the
//! API, and holds nothing of this gateway's config), and checked in as `docs/openapi.json`: a
//! test fails when the two differ, so a change to the API shows in review.

use super::{answers, catalog, dry_run, log, plugin_diff, plugins, targets, views};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookgate admin API",
        description = "The delivery log, retries, replays, targets, plugins, reload, dry runs and the event catalog \
                       of a hookgate gateway. Every operation takes `Authorization: Bearer \
                       <admin.token>`.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        log::list_deliveries, log::get_delivery, log::retry_delivery, log::retry_deliveries,
        log::list_events, log::get_event, log::replay_event, log::list_instances, log::reload,
        targets::list, targets::disable, targets::enable,
        plugins::list, plugins::upload, plugins::remove, plugin_diff::diff,
        dry_run::handle,
        catalog::list, catalog::event,
    ),
    components(schemas(
        answers::ErrorAnswer, answers::ProblemsAnswer, views::Delivery, views::DeliveryDetail,
        views::Event, views::TryView,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub(super) struct ApiDoc;

/// Every operation wants the admin token as a bearer token.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = doc.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The document as served and checked in: pretty JSON with a final newline.
pub(super) fn text() -> Result<String, serde_json::Error> {
    ApiDoc::openapi().to_pretty_json().map(|json| json + "\n")
}

/// `GET /admin/v1/openapi.json`.
pub(super) async fn document() -> Response {
    match text() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => super::ApiError::Unavailable(format!("cannot write the OpenAPI document: {e}"))
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    const CHECKED_IN: &str = include_str!("../../docs/openapi.json");

    /// `HOOKGATE_BLESS=1 cargo test --lib openapi` writes the document after an API change.
    #[test]
    fn the_checked_in_document_is_the_generated_one() {
        let generated = super::text().expect("the document serialises");
        if std::env::var_os("HOOKGATE_BLESS").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
            std::fs::write(path, &generated).expect("write docs/openapi.json");
            return;
        }
        assert!(
            generated == CHECKED_IN,
            "docs/openapi.json is not what the handlers describe: run \
             `HOOKGATE_BLESS=1 cargo test --lib openapi` and review the diff"
        );
    }

    #[test]
    fn it_is_openapi_3_1_and_every_operation_is_there() {
        let doc: serde_json::Value =
            serde_json::from_str(&super::text().expect("text")).expect("json");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        let operations: usize = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .map(|p| p.as_object().map_or(0, |o| o.len()))
            .sum();
        assert_eq!(operations, 19);
    }
}
