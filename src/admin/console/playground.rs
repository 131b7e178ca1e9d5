//! `/playground`: try a mapping on an event before it goes in the config. The user picks a stored
//! event (or pastes a body and headers) and a source, writes a filter and a `jq`, `map` or
//! `wasm` route, and sees the verdict, the exact jq error, and the request each target would
//! get; "Copy as TOML" gives the route for the config.
//!
//! The form posts to this page, which answers the whole page with the result; `console.js`
//! posts it as the user types and swaps in `#result`. The run is [`crate::admin::dry_run`]'s:
//! contained, under the real limits, and it never stores or sends anything.

use super::layout::{self, Nav};
use super::{PageError, SignedIn};
use crate::admin::dry_run::{Tried, TryError, TryRequest, try_it};
use crate::admin::{Admin, ApiError};
use crate::store::EventQuery;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Html;
use maud::{Markup, html};

/// How many recent events the picker offers.
const RECENT: usize = 20;

/// The form as the user left it.
#[derive(Debug, Default, Clone)]
pub(super) struct Form {
    /// The stored event it was loaded from, if any (only for the picker).
    event: String,
    source: String,
    headers: String,
    body: String,
    verify: bool,
    /// `configured` (the source's routes as they are), `none`, `jq`, `map` or `wasm`.
    kind: String,
    filter: String,
    code: String,
    targets: Vec<String>,
}

const KINDS: [(&str, &str); 5] = [
    ("jq", "jq"),
    ("map", "map (Port-style, JSON)"),
    ("wasm", "wasm plugin (JSON)"),
    ("none", "no transform"),
    ("configured", "the configured routes"),
];

impl Form {
    fn parse(bytes: &[u8]) -> Self {
        let mut f = Self::default();
        for (k, v) in url::form_urlencoded::parse(bytes) {
            let v = v.into_owned();
            match &*k {
                "source" => f.source = v,
                "headers" => f.headers = v,
                "body" => f.body = v,
                "verify" => f.verify = true,
                "kind" => f.kind = v,
                "filter" => f.filter = v,
                "code" => f.code = v,
                "targets" => f.targets.push(v),
                _ => {}
            }
        }
        f
    }

    /// The dry run this form asks for, or the problems with the form itself.
    fn request(&self) -> Result<TryRequest, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut headers = Vec::new();
        for line in self.headers.lines().filter(|l| !l.trim().is_empty()) {
            match crate::cli::parse_header(line) {
                Ok(pair) => headers.push(pair),
                Err(why) => problems.push(("headers".to_string(), why)),
            }
        }
        let mut route = serde_json::Map::new();
        if !self.filter.trim().is_empty() {
            route.insert("filter".into(), self.filter.clone().into());
        }
        match self.kind.as_str() {
            "jq" => {
                route.insert("jq".into(), self.code.clone().into());
            }
            kind @ ("map" | "wasm") => {
                match serde_json::from_str::<serde_json::Value>(&self.code) {
                    Ok(v) => {
                        route.insert(kind.into(), v);
                    }
                    Err(e) => problems.push((format!("route.{kind}"), format!("not JSON: {e}"))),
                }
            }
            _ => {}
        }
        route.insert("targets".into(), self.targets.clone().into());
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(TryRequest {
            source: Some(self.source.clone()),
            body: Some(self.body.clone()),
            headers,
            verify: self.verify,
            route: (self.kind != "configured").then_some(serde_json::Value::Object(route)),
            ..TryRequest::default()
        })
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct Pick {
    event: Option<String>,
    /// A catalog event, `<preset>/<type>`, and which of its samples (from 1).
    catalog: Option<String>,
    sample: Option<usize>,
}

/// The empty form, or one filled from a stored event (`?event=`), run at once.
pub(super) async fn page(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    Query(pick): Query<Pick>,
) -> Result<Html<String>, PageError> {
    let config = state.config.borrow().clone();
    let mut form = Form {
        source: config.sources.keys().next().cloned().unwrap_or_default(),
        kind: "jq".into(),
        code: ".body".into(),
        targets: config.targets.keys().take(1).cloned().collect(),
        ..Form::default()
    };
    let mut result = None;
    if let Some(id) = pick.event.filter(|id| !id.is_empty()) {
        let event = state.store.get_event(&id).await?;
        form.event = event.id;
        form.source = event.source;
        form.body = event.body;
        form.headers = event
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        form.kind = "configured".into();
        result = Some(run(&state, &form).await);
    } else if let Some(wanted) = pick.catalog.as_deref() {
        let (kind, headers, body) =
            super::catalog::sample(wanted, pick.sample.unwrap_or(1)).ok_or(ApiError::NotFound)?;
        form.headers = headers;
        form.body = body;
        // The first source of that kind; without one, the sample is shown with the reason.
        match config.sources.values().find(|s| s.kind.name() == kind) {
            Some(source) => {
                form.source = source.name.clone();
                form.kind = "configured".into();
                result = Some(run(&state, &form).await);
            }
            None => {
                result = Some(Err(TryError::Invalid(vec![(
                    "source".into(),
                    format!("no source of kind `{kind}` is configured: add one to try this sample"),
                )])))
            }
        }
    }
    render(&state, &session, &form, result.as_ref()).await
}

/// The form posted: run it and show the page with the result.
pub(super) async fn post(
    State(state): State<Admin>,
    Extension(session): Extension<SignedIn>,
    body: Bytes,
) -> Result<Html<String>, PageError> {
    let form = Form::parse(&body);
    let result = run(&state, &form).await;
    render(&state, &session, &form, Some(&result)).await
}

async fn run(state: &Admin, form: &Form) -> Result<Tried, TryError> {
    let req = form.request().map_err(TryError::Invalid)?;
    try_it(state, req).await
}

async fn render(
    state: &Admin,
    session: &SignedIn,
    form: &Form,
    result: Option<&Result<Tried, TryError>>,
) -> Result<Html<String>, PageError> {
    let config = state.config.borrow().clone();
    let sources: Vec<String> = config.sources.keys().cloned().collect();
    let targets: Vec<String> = config.targets.keys().cloned().collect();
    let recent = state
        .store
        .list_events(EventQuery {
            limit: RECENT,
            ..EventQuery::default()
        })
        .await?;
    let body = html! {
        p.hint {
            "Runs in the gateway's contained evaluator with the real limits. Nothing is stored or sent."
        }
        form #pick method="get" action="/playground" {
            label { "Stored event "
                select name="event" {
                    option value="" { "paste below" }
                    @for e in &recent {
                        option value=(e.id) selected[e.id == form.event] {
                            (e.source) " · " (e.event_type.as_deref().unwrap_or("no type")) " · " (crate::rfc3339(e.received_at))
                        }
                    }
                }
            }
            button type="submit" { "Load" }
        }
        form #playground method="post" action="/playground" {
            (layout::csrf(session))
            fieldset {
                legend { "Event" }
                label { "Source " select name="source" {
                    @for s in &sources { option value=(s) selected[*s == form.source] { (s) } }
                } }
                label.wide { span { "Headers (one " code { "Name: value" } " per line)" }
                    textarea name="headers" rows="3" spellcheck="false" { (form.headers) } }
                label.wide { span { "Body" } textarea name="body" rows="8" spellcheck="false" { (form.body) } }
                label { input type="checkbox" name="verify" checked[form.verify]; " refuse when the signature does not check out" }
            }
            fieldset {
                legend { "Route" }
                label { "Transform " select name="kind" {
                    @for (k, label) in KINDS { option value=(k) selected[k == form.kind] { (label) } }
                } }
                label.wide { span { "Filter (jq, optional)" } input type="text" name="filter" value=(form.filter) spellcheck="false"; }
                label.wide { span { "Mapping" } textarea name="code" rows="6" spellcheck="false" { (form.code) } }
                span.label { "Targets" }
                @for t in &targets {
                    label.check { input type="checkbox" name="targets" value=(t) checked[form.targets.contains(t)]; " " (t) }
                }
            }
            button type="submit" { "Try" }
        }
        section #result aria-live="polite" {
            @if let Some(r) = result { (outcome(r)) }
        }
    };
    Ok(layout::page("Playground", Nav::Playground, session, body))
}

fn outcome(result: &Result<Tried, TryError>) -> Markup {
    match result {
        Err(TryError::Invalid(problems)) => html! {
            p.notice.error role="alert" { "The route is not valid:" }
            ul.problems { @for (k, why) in problems { li { code { (k) } ": " pre.inline { (why) } } } }
        },
        Err(TryError::Api(e)) => layout::notice(false, &api_message(e)),
        Ok(tried) => tried_markup(tried),
    }
}

fn api_message(e: &ApiError) -> String {
    match e {
        ApiError::NotFound => "That stored event is gone (retention may have removed it).".into(),
        other => other.to_string(),
    }
}

fn tried_markup(tried: &Tried) -> Markup {
    let run = &tried.run;
    html! {
        @if let Some(why) = &run.refused {
            p.notice.error { "Ingress would refuse this event: " (why) ". The routes ran anyway." }
        }
        p { "Event type: " code { (run.event_type.as_deref().unwrap_or("none")) } }
        @if run.routes.is_empty() { p.empty { "No route takes events from this source." } }
        @for r in &run.routes {
            article.route {
                h3 { (r.route) ": " span.(r.outcome) { (r.outcome) } }
                @if let Some(d) = &r.detail { pre.detail { (d) } }
                @for q in &r.requests {
                    h4 { (q.method) " " code { (crate::admin::targets::tried_url(q)) } " (target " (q.target.name) ")" }
                    @if let Some(why) = &q.problem { p.notice.error { "Would fail: " (why) } }
                    (super::events::headers(&q.headers))
                    (layout::payload(&String::from_utf8_lossy(&q.body), true, ""))
                }
            }
        }
        @if let Some(toml) = &tried.toml {
            h3 { "As TOML" }
            pre #toml { (toml) }
            button #copy-toml type="button" hidden { "Copy as TOML" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_candidate_route() {
        let f = Form::parse(
            b"source=gh&headers=X-GitHub-Event%3A+push&body=%7B%7D&kind=jq&code=.body&filter=&targets=a&targets=b",
        );
        let req = f.request().expect("valid");
        assert_eq!(req.headers, vec![("x-github-event".into(), "push".into())]);
        assert_eq!(
            req.route,
            Some(serde_json::json!({"jq": ".body", "targets": ["a", "b"]}))
        );
        let configured = Form::parse(b"source=gh&body=1&kind=configured")
            .request()
            .expect("ok");
        assert_eq!(configured.route, None);
    }

    #[test]
    fn a_map_that_is_not_json_and_a_bad_header_are_problems() {
        let f = Form::parse(b"source=gh&headers=nocolon&kind=map&code=%7Bx");
        let problems = f.request().expect_err("invalid");
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["headers", "route.map"]);
    }
}
