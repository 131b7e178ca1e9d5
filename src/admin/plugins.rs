//! `/admin/v1/plugins`: upload (validate, compile, then swap), list, delete.

use super::answers::{Deleted, ErrorAnswer, PluginList};
use super::extract::ApiPath;
use super::views::Plugin;
use super::{Admin, ApiError};
use crate::transform::wasm::registry::{PluginInfo, RegistryError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Routes of the current config that name `plugin`.
pub(super) fn routes_using(state: &Admin, plugin: &str) -> Vec<String> {
    let config = state.config.borrow().clone();
    config
        .routes
        .iter()
        .filter(|r| r.wasm.as_ref().is_some_and(|w| w.plugin == plugin))
        .map(|r| r.name.clone())
        .collect()
}

fn view(state: &Admin, info: PluginInfo) -> Plugin {
    let routes = routes_using(state, &info.name);
    Plugin::new(info, routes)
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NotFound(_) => Self::NotFound,
            RegistryError::Io { .. } => {
                tracing::error!(error = %e, "plugin file");
                Self::Unavailable("cannot store the plugin".into())
            }
            other => Self::BadRequest(other.to_string()),
        }
    }
}

/// The active plugins and the routes of the running config that use each.
#[utoipa::path(get, path = "/admin/v1/plugins", tag = "plugins",
    responses((status = 200, body = PluginList), (status = 401, body = ErrorAnswer)))]
pub(super) async fn list(State(state): State<Admin>) -> Json<PluginList> {
    let data = state
        .plugins
        .list()
        .into_iter()
        .map(|p| view(&state, p))
        .collect();
    Json(PluginList { data })
}

/// Uploads a WebAssembly component under `name`, replacing the one there. Compiled on a blocking
/// thread; nothing changes unless the whole upload is valid.
#[utoipa::path(put, path = "/admin/v1/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Letters, digits, `-` and `_`, at most 64")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "A WebAssembly component of hookgate's plugin world (`.wasm`); any content type is taken"),
    responses((status = 200, body = Plugin),
        (status = 400, description = "Not a valid plugin; nothing changed", body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 503, body = ErrorAnswer)))]
pub(super) async fn upload(
    State(state): State<Admin>,
    ApiPath(name): ApiPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let _changing = state.plugins.changing().await;
    let registry = state.plugins.clone();
    let plugin = name.clone();
    let shared = body.clone(); // a reference count, not a copy
    let installed = tokio::task::spawn_blocking(move || registry.install(&plugin, &body))
        .await
        .map_err(|e| ApiError::Unavailable(format!("upload did not complete: {e}")))?;
    match installed {
        Ok(info) => {
            tracing::info!(plugin = %name, sha256 = %info.sha256, size = info.size, "plugin installed");
            share(&state, &name, Some((shared, info.sha256.clone()))).await?;
            Ok((StatusCode::OK, Json(view(&state, info))).into_response())
        }
        Err(e) => {
            tracing::warn!(plugin = %name, error = %e, "plugin upload refused");
            Err(e.into())
        }
    }
}

/// Shares an upload or a delete with the other instances on the store (a no-op on SQLite). It is
/// applied here already; a failure says so, and repeating the request shares it.
async fn share(state: &Admin, name: &str, upload: Option<(Bytes, String)>) -> Result<(), ApiError> {
    state.store.share_plugin(name, upload).await.map_err(|e| {
        tracing::error!(plugin = %name, error = %e, "plugin change not shared");
        ApiError::Unavailable(format!(
            "plugin `{name}` changed on this instance but could not be shared with the others \
             ({e}); repeat the request"
        ))
    })
}

/// Deletes a plugin; refused while a route of the current config uses it.
#[utoipa::path(delete, path = "/admin/v1/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, description = "The plugin's name")),
    responses((status = 200, body = Deleted), (status = 400, body = ErrorAnswer),
        (status = 401, body = ErrorAnswer), (status = 404, body = ErrorAnswer),
        (status = 409, description = "A route uses the plugin", body = ErrorAnswer),
        (status = 503, body = ErrorAnswer)))]
pub(super) async fn remove(
    State(state): State<Admin>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Deleted>, ApiError> {
    let routes = routes_using(&state, &name);
    if !routes.is_empty() {
        return Err(ApiError::Conflict(format!(
            "plugin `{name}` is used by route(s) {}; change them first",
            routes.join(", ")
        )));
    }
    let _changing = state.plugins.changing().await;
    state.plugins.remove(&name)?;
    tracing::info!(plugin = %name, "plugin deleted");
    share(&state, &name, None).await?;
    Ok(Json(Deleted {
        name,
        deleted: true,
    }))
}
