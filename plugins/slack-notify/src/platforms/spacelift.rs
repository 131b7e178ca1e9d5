//! Spacelift: run-state webhooks, internal-error events, and notification-policy inputs
//! (`run_updated`, which a notification policy sends as-is when it sets no custom payload).

use crate::outcome::Outcome;
use crate::summary::{Summary, humanize, short_sha, str_at, text_at};
use serde_json::Value;

/// Summarises a Spacelift body.
pub fn summarize(body: &Value) -> Summary {
    if let Some(input) = body.get("run_updated") {
        return run_summary(&RunView::from_policy_input(body, input));
    }
    if body.get("run").is_some() {
        return run_summary(&RunView::from_webhook(body));
    }
    if body.get("error").is_some() {
        return internal_error(body);
    }
    let mut s = Summary::new("Spacelift", "event", "received", Outcome::Info);
    s.context
        .extend(str_at(body, "/account").map(|a| format!("account {a}")));
    s
}

/// The facts of a run, read from either of Spacelift's two shapes.
#[derive(Debug, Default)]
struct RunView {
    account: Option<String>,
    state: String,
    stack: String,
    run_id: Option<String>,
    run_type: Option<String>,
    branch: Option<String>,
    commit: Option<String>,
    commit_message: Option<String>,
    commit_author: Option<String>,
    triggered_by: Option<String>,
    delta: Option<Delta>,
    drift_detection: bool,
    url: Option<String>,
    stack_url: Option<String>,
}

/// Resources the run added, changed and deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Delta {
    added: u64,
    changed: u64,
    deleted: u64,
}

impl Delta {
    fn any(self) -> bool {
        self.added + self.changed + self.deleted > 0
    }
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

impl RunView {
    /// The webhook body: `{account, state, run{…, delta, url}, stack{…}}`.
    fn from_webhook(body: &Value) -> Self {
        let count = |k: &str| {
            body.pointer(&format!("/run/delta/{k}"))
                .and_then(Value::as_u64)
        };
        let delta = body.pointer("/run/delta").map(|_| Delta {
            added: count("added").unwrap_or(0),
            changed: count("changed").unwrap_or(0),
            deleted: count("deleted").unwrap_or(0),
        });
        Self {
            account: owned(str_at(body, "/account")),
            state: owned(str_at(body, "/state")).unwrap_or_else(|| "UNKNOWN".into()),
            stack: stack_name(body, "/stack"),
            run_id: owned(str_at(body, "/run/id")),
            run_type: owned(str_at(body, "/run/type")),
            branch: owned(str_at(body, "/run/branch")),
            commit: str_at(body, "/run/commit/hash").map(short_sha),
            commit_message: owned(str_at(body, "/run/commit/message")),
            commit_author: owned(
                str_at(body, "/run/commit/authorName").or(str_at(body, "/run/commit/authorLogin")),
            ),
            triggered_by: str_at(body, "/run/triggeredBy").map(trigger),
            delta,
            drift_detection: body.pointer("/run/driftDetection") == Some(&Value::Bool(true)),
            url: owned(str_at(body, "/run/url")),
            stack_url: owned(str_at(body, "/stack/url")),
        }
    }

    /// The notification-policy input: `{account{name}, run_updated{state, run{changes…}, stack, urls}}`.
    fn from_policy_input(body: &Value, input: &Value) -> Self {
        let changes = input.pointer("/run/changes").and_then(Value::as_array);
        let delta = changes.map(|list| {
            let count = |action: &str| {
                let n = list
                    .iter()
                    .filter(|c| str_at(c, "/action") == Some(action))
                    .count();
                u64::try_from(n).unwrap_or(u64::MAX)
            };
            Delta {
                added: count("added"),
                changed: count("changed"),
                deleted: count("deleted"),
            }
        });
        Self {
            account: owned(str_at(body, "/account/name")),
            state: owned(str_at(input, "/state").or(str_at(input, "/run/state")))
                .unwrap_or_else(|| "UNKNOWN".into()),
            stack: stack_name(input, "/stack"),
            run_id: owned(str_at(input, "/run/id")),
            run_type: owned(str_at(input, "/run/type")),
            branch: owned(str_at(input, "/run/branch")),
            commit: str_at(input, "/run/commit/hash").map(short_sha),
            commit_message: owned(str_at(input, "/run/commit/message")),
            commit_author: owned(
                str_at(input, "/run/creator_session/name").or(str_at(input, "/run/commit/author")),
            ),
            triggered_by: str_at(input, "/run/triggered_by")
                .or(str_at(input, "/username"))
                .map(trigger),
            delta,
            drift_detection: input.pointer("/run/drift_detection") == Some(&Value::Bool(true)),
            url: owned(str_at(input, "/urls/run")),
            stack_url: None,
        }
    }
}

fn stack_name(v: &Value, stack: &str) -> String {
    str_at(v, &format!("{stack}/name"))
        .or(str_at(v, &format!("{stack}/id")))
        .unwrap_or("unknown stack")
        .to_string()
}

/// `api::<key id>` is how Spacelift names runs triggered with an API key.
fn trigger(who: &str) -> String {
    match who.strip_prefix("api::") {
        Some(key) => format!("API key {key}"),
        None => who.to_string(),
    }
}

/// Spacelift run states, normalised. A drift-detection run that finds changes is drift.
fn run_outcome(run: &RunView) -> Outcome {
    let outcome = match run.state.as_str() {
        "FINISHED" => Outcome::Succeeded,
        "FAILED" => Outcome::Failed,
        "UNCONFIRMED" | "PENDING_REVIEW" => Outcome::NeedsApproval,
        "QUEUED" | "READY" | "PENDING" | "PREPARING" | "PREPARING_APPLY" | "PREPARING_REPLAN"
        | "INITIALIZING" | "PLANNING" | "CONFIRMED" | "APPLYING" | "PERFORMING" | "DESTROYING"
        | "REPLAN_REQUESTED" => Outcome::Started,
        // CANCELED, DISCARDED, STOPPED, SKIPPED...: someone chose this; not a failure.
        _ => Outcome::Info,
    };
    let drifted = run.drift_detection && run.delta.is_some_and(Delta::any);
    if drifted && outcome == Outcome::Succeeded {
        Outcome::Drift
    } else {
        outcome
    }
}

fn run_summary(run: &RunView) -> Summary {
    let outcome = run_outcome(run);
    let what = if run.drift_detection {
        "drift detection run"
    } else {
        "run"
    };
    let status = match outcome {
        Outcome::Drift => "drift detected".to_string(),
        _ => format!("{what} {}", humanize(&run.state)),
    };
    let mut s = Summary::new("Spacelift", &run.stack, &status, outcome);
    s.description = run.commit_message.clone();
    s.field("Triggered by", run.triggered_by.clone());
    s.field("Changes", run.delta.map(describe_delta));
    s.field("Commit", commit_line(run));
    s.field("Run type", run.run_type.clone());
    s.link("View run", run.url.as_deref());
    if s.link.is_none() {
        s.link("View stack", run.stack_url.as_deref());
    }
    s.context
        .extend(run.account.as_ref().map(|a| format!("account {a}")));
    s.context
        .extend(run.run_id.as_ref().map(|id| format!("run {id}")));
    s
}

fn describe_delta(d: Delta) -> String {
    format!(
        "+{} added, ~{} changed, -{} deleted",
        d.added, d.changed, d.deleted
    )
}

/// `3f9c2a7 on main by Avery Quill`, with whatever parts are known.
fn commit_line(run: &RunView) -> Option<String> {
    let mut line = run.commit.clone()?;
    if let Some(branch) = &run.branch {
        line.push_str(&format!(" on {branch}"));
    }
    if let Some(author) = &run.commit_author {
        line.push_str(&format!(" by {author}"));
    }
    Some(line)
}

/// `{title, body, error, severity, account}`: Spacelift's own errors, e.g. a policy that
/// triggered a stack that doesn't exist.
fn internal_error(body: &Value) -> Summary {
    let subject = str_at(body, "/title").unwrap_or("Spacelift error");
    let mut s = Summary::new("Spacelift", subject, "internal error", Outcome::Failed);
    s.description = str_at(body, "/body").map(str::to_string);
    s.field("Error", text_at(body, "/error"));
    s.field("Severity", text_at(body, "/severity"));
    s.context
        .extend(str_at(body, "/account").map(|a| format!("account {a}")));
    s
}
