//! `/admin/v1/plugins`: upload (validate, compile, then swap), list, delete.

use super::{Admin, ApiError};
use crate::transform::wasm::registry::{PluginInfo, RegistryError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
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

fn view(state: &Admin, info: PluginInfo) -> super::views::Plugin {
    let routes = routes_using(state, &info.name);
    super::views::Plugin::new(info, routes)
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

pub(super) async fn list(State(state): State<Admin>) -> Json<serde_json::Value> {
    let data: Vec<_> = state
        .plugins
        .list()
        .into_iter()
        .map(|p| view(&state, p))
        .collect();
    Json(serde_json::json!({ "data": data }))
}

/// Compiles on a blocking thread; nothing changes unless the whole upload is valid.
pub(super) async fn upload(
    State(state): State<Admin>,
    Path(name): Path<String>,
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

/// Refused while a route of the current config uses the plugin.
pub(super) async fn remove(
    State(state): State<Admin>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    Ok(Json(serde_json::json!({ "name": name, "deleted": true })))
}
