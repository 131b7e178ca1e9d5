//! The web console: HTML pages on the admin listener, for people. `/` is the overview; the pages
//! read and steer the same store and switches as the JSON API beside them (`/admin/v1`).
//!
//! Owns sign-in ([`session`]), the security headers of every console answer, and the pages. It
//! must never put a secret in a page, a URL or a log (the admin token is posted once, in a form
//! body; target URLs show scheme and host only), never run a script it did not serve itself (the
//! Content-Security-Policy allows `'self'` only, no `unsafe-inline`), and never change state on a
//! request without the session's CSRF token. Producer- and target-written text is escaped by the
//! templates and clipped ([`layout::payload`]).

use super::{Admin, ApiError};
use crate::signature::constant_time_eq;
use crate::transform::wasm::registry::MAX_PLUGIN_BYTES;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use session::SignedIn;

mod catalog;
mod chart;
mod deliveries;
mod events;
mod layout;
mod manage;
mod overview;
mod playground;
mod plugins;
pub(crate) mod session;

/// The most a console form post may carry: a playground form holds an event's body and headers,
/// URL-encoded (plugin uploads send their CSRF token in a header and are not read here). Only a
/// signed-in session's posts are read.
pub(super) const FORM_LIMIT: usize = 8 * 1024 * 1024;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   report-uri /console/csp-report";

/// The console's routes, to be merged beside the API's on the admin listener.
pub(crate) fn router(state: Admin) -> Router {
    let signed_in = Router::new()
        .route("/", get(overview::page))
        .route("/events", get(events::list))
        .route("/events/{id}", get(events::show))
        .route("/events/{id}/replay", post(events::replay))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/retry", post(deliveries::bulk_retry))
        .route("/deliveries/{id}", get(deliveries::show))
        .route("/deliveries/{id}/retry", post(deliveries::retry))
        .route(
            "/playground",
            get(playground::page)
                .post(playground::post)
                .layer(DefaultBodyLimit::max(FORM_LIMIT)),
        )
        .route("/catalog", get(catalog::list))
        .route("/catalog/{preset}/{event}", get(catalog::event))
        .route("/targets", get(manage::targets))
        .route("/targets/{name}/enable", post(manage::enable))
        .route("/targets/{name}/disable", post(manage::disable))
        .route("/plugins", get(plugins::page).post(plugins::without_script))
        .route(
            "/plugins/{name}",
            put(plugins::upload).layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES)),
        )
        .route(
            "/plugins/{name}/diff",
            post(plugins::diff).layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES)),
        )
        .route("/plugins/{name}/delete", post(plugins::delete))
        .route("/config", get(manage::config))
        .route("/config/reload", post(manage::reload))
        .route("/logout", post(sign_out))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .merge(signed_in)
        .route("/login", get(sign_in_page).post(sign_in))
        .route("/console/console.css", get(css))
        .route("/console/console.js", get(js))
        .route(
            "/console/csp-report",
            post(csp_report).layer(DefaultBodyLimit::max(16 * 1024)),
        )
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Headers on every console answer: the CSP, no sniffing, no framing, no referrer, no caching
/// (pages show live state and payloads).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Lets a request through only with an open session; a state change also needs the session's
/// CSRF token (form field `csrf`, or header `x-csrf-token`) and must not come from another site.
async fn require_session(State(state): State<Admin>, request: Request, next: Next) -> Response {
    let token = state.token();
    let found =
        session::cookie(request.headers()).and_then(|c| state.sessions.find(c, token.as_ref()));
    let Some(signed) = found else {
        return match *request.method() {
            Method::GET | Method::HEAD => Redirect::to("/login").into_response(),
            _ => refuse(
                StatusCode::FORBIDDEN,
                "not signed in: sign in again and repeat",
            ),
        };
    };
    let mut request = if matches!(*request.method(), Method::GET | Method::HEAD) {
        request
    } else {
        match csrf_checked(&signed, request).await {
            Ok(r) => r,
            Err(refused) => return refused,
        }
    };
    request.extensions_mut().insert(signed);
    next.run(request).await
}

/// The request again, once its CSRF token matched; else the refusal.
async fn csrf_checked(signed: &SignedIn, request: Request) -> Result<Request, Response> {
    if cross_site(request.headers()) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "refused: the request came from another site",
        ));
    }
    let (parts, body) = request.into_parts();
    let in_header = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (given, body) = match in_header {
        Some(t) => (t, body),
        None => {
            let bytes = axum::body::to_bytes(body, FORM_LIMIT)
                .await
                .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "form too large"))?;
            let given = url::form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            (given, Body::from(bytes))
        }
    };
    if !session::csrf_matches(signed, &given) {
        tracing::warn!("console: a state change without its session's CSRF token was refused");
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "refused: this form is stale or came from elsewhere; reload the page and try again",
        ));
    }
    Ok(Request::from_parts(parts, body))
}

/// Browsers say where a request comes from (`Sec-Fetch-Site`); anything but this origin, or a
/// person typing the address, is refused for state changes.
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get(HeaderName::from_static("sec-fetch-site"))
        .is_some_and(|v| v != "same-origin" && v != "none")
}

/// A page that could not be made, answered as a page (the API's [`ApiError`] answers JSON).
/// The message is the API's: internal causes are logged, not shown.
pub(super) struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let message = self.0.to_string();
        let status = self.0.into_response().status();
        (status, layout::error(status, &message)).into_response()
    }
}

/// `303 See Other` to `location` (a path this module built).
pub(super) fn see_other(location: &str) -> Response {
    match HeaderValue::try_from(location) {
        Ok(to) => (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response(),
        Err(_) => refuse(
            StatusCode::BAD_REQUEST,
            "that name cannot be part of an address",
        ),
    }
}

/// `name` made safe as one path segment of a console address. Form encoding writes a space as
/// `+`, which a path keeps as `+`: spaces become `%20` (a `+` of the name is `%2B` already).
pub(super) fn segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

async fn sign_in_page(State(state): State<Admin>, headers: HeaderMap) -> Response {
    let token = state.token();
    let signed = session::cookie(&headers).and_then(|c| state.sessions.find(c, token.as_ref()));
    match signed {
        Some(_) => Redirect::to("/").into_response(),
        None => layout::sign_in(None).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct SignInForm {
    token: String,
}

/// Checks the token (constant time) and opens a session. A wrong token costs the sender a
/// second, so guessing through this form is slower than through the API's bearer check.
async fn sign_in(
    State(state): State<Admin>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if cross_site(&headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "refused: the request came from another site",
        );
    }
    let token = state.token();
    let right = token
        .as_ref()
        .is_some_and(|t| constant_time_eq(form.token.as_bytes(), t.expose().as_bytes()));
    let Some(token) = token.filter(|_| right) else {
        tracing::warn!("console: sign-in with a wrong admin token refused");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        return (
            StatusCode::UNAUTHORIZED,
            layout::sign_in(Some("That is not the admin token.")),
        )
            .into_response();
    };
    let cookie = state.sessions.open(&token);
    match session::set_cookie(&cookie) {
        Ok(set) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, HeaderValue::from_static("/")),
                (header::SET_COOKIE, set),
            ],
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: cannot build the session cookie");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "cannot open a session")
        }
    }
}

async fn sign_out(
    State(state): State<Admin>,
    headers: HeaderMap,
    Extension(_): Extension<SignedIn>,
) -> Response {
    if let Some(c) = session::cookie(&headers) {
        state.sessions.close(c);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static("/login")),
            (header::SET_COOKIE, session::clear_cookie()),
        ],
    )
        .into_response()
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/console.js"),
    )
        .into_response()
}

/// Browsers report what the CSP blocked here: logged (clipped), so an injection attempt that a
/// page let through to the browser is seen, though the browser refused to run it.
async fn csp_report(body: axum::body::Bytes) -> StatusCode {
    let text = String::from_utf8_lossy(&body);
    let (head, _) = layout::clip(&text, 1024);
    // Anyone may post here (browsers send reports without the session): escaped, so a report
    // cannot forge a log line.
    tracing::warn!(report = %crate::log_safe::Escaped(head),
        "console: the content security policy blocked something");
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_segment_keeps_spaces_and_pluses_apart() {
        assert_eq!(super::segment("my target"), "my%20target");
        assert_eq!(super::segment("a+b/c"), "a%2Bb%2Fc");
    }
}
