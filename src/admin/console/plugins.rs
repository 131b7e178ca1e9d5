//! `/plugins`: the active wasm plugins and the routes using each; upload (file picker or drag and
//! drop, sent by `console.js` with the CSRF token in a header) and delete. Both go through the
//! admin API's own handlers, so the console refuses exactly what the API refuses, with the same
//! reason.

use super::layout::{self, Nav};
use super::{PageError, SignedIn, see_other, segment};
use crate::admin::plugins as api;
use crate::admin::{Admin, ApiError};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::html;

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Notice {
    uploaded: Option<String>,
    deleted: Option<String>,
}

pub(super) async fn page(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    Query(n): Query<Notice>,
) -> Html<String> {
    let notice = match (&n.uploaded, &n.deleted) {
        (Some(p), _) => Some((true, format!("Plugin `{p}` uploaded and active."))),
        (_, Some(p)) => Some((true, format!("Plugin `{p}` deleted."))),
        _ => None,
    };
    render(&state, &session, notice)
}

fn render(state: &Admin, session: &SignedIn, notice: Option<(bool, String)>) -> Html<String> {
    let plugins = state.plugins.list();
    let body = html! {
        @if let Some((ok, text)) = &notice { (layout::notice(*ok, text)) }
        @if plugins.is_empty() {
            p.empty { "No plugin uploaded." }
        } @else {
            table.list {
                thead { tr { th { "Plugin" } th { "SHA-256" } th { "Size" } th { "Uploaded" } th { "Routes" } th {} } }
                tbody {
                    @for p in &plugins {
                        @let routes = api::routes_using(state, &p.name);
                        tr {
                            td { (p.name) }
                            td { code { (p.sha256.get(..12).unwrap_or(&p.sha256)) "…" } }
                            td { (p.size / 1024) " KiB" }
                            td { (p.uploaded_at) }
                            td { @if routes.is_empty() { "none" } @else { (routes.join(", ")) } }
                            td { (layout::action_button(session, &format!("/plugins/{}/delete", segment(&p.name)), "Delete")) }
                        }
                    }
                }
            }
        }
        h2 { "Upload" }
        form #upload.upload method="post" action="/plugins" {
            (layout::csrf(session))
            label { "Name " input #plugin-name type="text" name="name" required pattern="[a-z0-9][a-z0-9-]*" placeholder="slack-notify"; }
            div #drop.drop {
                "Drop a .wasm component here, or "
                input #plugin-file type="file" name="file" accept=".wasm,application/wasm" required;
            }
            button type="submit" { "Upload" }
            " "
            button #compare type="button" { "Compare with stored events" }
            p #upload-result.result role="status" {}
            pre #diff.diff hidden {}
        }
        noscript { p.hint { "Uploading from the console needs JavaScript; " code { "hookgate plugin push" } " works without." } }
        p.hint { "A plugin replaces the one of the same name only once it is validated and compiled; a refused upload changes nothing. "
            "Compare runs the newest stored events of the routes using the name through the active plugin and the chosen file, sending nothing, and shows what would change." }
    };
    layout::page("Plugins", Nav::Plugins, session, body)
}

/// The upload form posted without the script (which sends the file itself): say so.
pub(super) async fn without_script(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
) -> Response {
    let why = "Uploading from the console needs JavaScript; `hookgate plugin push NAME FILE` works without.";
    let page = render(&state, &session, Some((false, why.into())));
    (StatusCode::BAD_REQUEST, page).into_response()
}

/// `PUT /plugins/{name}` from `console.js`: the API's upload, answered as the API answers (JSON),
/// for the script to show.
pub(super) async fn upload(
    State(state): State<Admin>,
    Extension(_): Extension<SignedIn>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    api::upload(State(state), crate::admin::extract::ApiPath(name), body).await
}

/// `POST /plugins/{name}/diff` from `console.js`: the chosen file run beside the active plugin on
/// the newest stored events (the API's diff), answered as the text `hookgate plugin diff` prints,
/// which the script shows as text.
pub(super) async fn diff(
    State(state): State<Admin>,
    Extension(_): Extension<SignedIn>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::admin::plugin_diff::{DEFAULT_LIMIT, compare};
    let diff = compare(&state, name, None, DEFAULT_LIMIT, body).await?;
    let rendered = serde_json::to_value(&diff)
        .map_err(anyhow::Error::from)
        .and_then(|v| crate::cli::plugin_diff::render(&v))
        .map_err(|e| ApiError::Unavailable(format!("cannot show the diff: {e:#}")))?;
    let (text, changed) = rendered;
    Ok(axum::Json(serde_json::json!({ "text": text, "changed": changed })).into_response())
}

pub(super) async fn delete(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    match api::remove(
        State(state.clone()),
        crate::admin::extract::ApiPath(name.clone()),
    )
    .await
    {
        Ok(_) => Ok(see_other(&format!("/plugins?deleted={}", segment(&name)))),
        Err(ApiError::Conflict(why)) => {
            let page = render(&state, &session, Some((false, why)));
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
