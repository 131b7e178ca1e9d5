"""pagerduty: infrastructure runs -> PagerDuty Events API v2 alert events.

A failed run triggers an alert, the next successful run of the same stack (project, workspace,
block) resolves it: both carry the same `dedup_key`, derived from where the run happened, so the
plugin keeps no state. PagerDuty ignores a resolve for which no alert is open, so every success may
send one. Anything that is not a run's end (queued, planning, previews, pings) gives no message,
which the gateway records as `filtered`.

Platforms are told apart by the body's shape, not by the source's name, so a route may call its
source anything: Spacelift run state changes, Pulumi Cloud stack updates and deployments, HCP
Terraform (Terraform Enterprise) run notifications and Nullstone activity. HCP (Packer) registry
events carry no run outcome and are filtered.

The route's `wasm.config`:

    routing_key  the Events API v2 integration key (32 characters), required
    severity     critical | error | warning | info, default "error"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from hookgate_sdk import Event, Message, Reject, log

#: PagerDuty's documented limits (Events API v2, "Send an Alert Event").
ROUTING_KEY_LENGTH = 32
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
SEVERITIES = ("critical", "error", "warning", "info")
DEFAULT_SEVERITY = "error"
#: PagerDuty documents no limit for the other text fields; this bound keeps one long commit message
#: from making every alert about it large.
MAX_FIELD = 1024
CLIENT = "hookgate"

TRIGGER = "trigger"
RESOLVE = "resolve"


@dataclass
class Outcome:
    """How a run ended, in PagerDuty's terms, before the limits are applied."""

    failed: bool
    dedup_key: str
    summary: str
    #: The affected system: the stack, project/stack, workspace or block, named by its platform.
    source: str
    #: The platform's name for where it happened (PagerDuty's `component`, `group`, `class`).
    component: str
    group: str
    kind: str
    timestamp: str | None = None
    links: list[dict[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def transform(event: Event, config: dict) -> list[Message]:
    routing_key, severity = settings(config)
    outcome = run_outcome(event)
    if outcome is None:
        return []
    action = TRIGGER if outcome.failed else RESOLVE
    log.info(f"{action} {clip(outcome.dedup_key, MAX_DEDUP_KEY)}")
    return [Message.json(pagerduty_event(outcome, routing_key, severity, event.received_at))]


def settings(config: dict) -> tuple[str, str]:
    """The routing key and severity; a refusal never quotes the key, which is a secret."""
    key = config.get("routing_key")
    if not isinstance(key, str) or not key:
        raise Reject("config.routing_key is missing: set it to the Events API v2 integration key")
    if len(key) != ROUTING_KEY_LENGTH:
        raise Reject(
            f"config.routing_key has {len(key)} characters; an Events API v2 integration key has "
            f"{ROUTING_KEY_LENGTH}"
        )
    severity = config.get("severity", DEFAULT_SEVERITY)
    if severity not in SEVERITIES:
        raise Reject(f"config.severity must be one of {', '.join(SEVERITIES)}")
    return key, severity


def pagerduty_event(
    outcome: Outcome, routing_key: str, severity: str, received_at: str
) -> dict[str, Any]:
    """The Events API v2 body: a resolve names only the alert, a trigger describes it."""
    dedup_key = clip(outcome.dedup_key, MAX_DEDUP_KEY)
    if not outcome.failed:
        return {"routing_key": routing_key, "event_action": RESOLVE, "dedup_key": dedup_key}
    payload: dict[str, Any] = {
        "summary": clip(outcome.summary, MAX_SUMMARY),
        "source": clip(outcome.source, MAX_FIELD),
        "severity": severity,
        "timestamp": outcome.timestamp or received_at or now(),
        "component": clip(outcome.component, MAX_FIELD),
        "group": clip(outcome.group, MAX_FIELD),
        "class": clip(outcome.kind, MAX_FIELD),
        "custom_details": {k: v for k, v in outcome.details.items() if v not in (None, "", [], {})},
    }
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": TRIGGER,
        "dedup_key": dedup_key,
        "payload": payload,
        "client": CLIENT,
    }
    links = [
        {"href": link["href"], "text": clip(link["text"], MAX_FIELD)}
        for link in outcome.links
        if link.get("href")
    ]
    if links:
        body["links"] = links
        body["client_url"] = links[0]["href"]
    return body


def run_outcome(event: Event) -> Outcome | None:
    """The run's end, or None when the event is not one (or its platform is unknown)."""
    body = event.body
    if not isinstance(body, dict):
        return None
    for looks_like, read in PLATFORMS:
        if looks_like(body):
            return read(event)
    log.debug(f"not a run event of a known platform (source {event.source})")
    return None


def spacelift(event: Event) -> Outcome | None:
    state = event.at("state")
    # A proposed run previews a pull request: its failure is the author's, not the stack's.
    if state not in ("FAILED", "FINISHED") or event.at("run", "type") == "PROPOSED":
        return None
    account = text(event.at("account"))
    stack_id = text(event.at("stack", "id"))
    stack = text(event.at("stack", "name")) or stack_id
    commit = text(event.at("run", "commit", "message"))
    return Outcome(
        failed=state == "FAILED",
        dedup_key=f"spacelift/{account}/{stack_id}",
        summary=f"Spacelift run failed on stack {stack}" + (f": {commit}" if commit else ""),
        source=f"{account}/{stack_id}",
        component=stack,
        group=account,
        kind="spacelift run",
        timestamp=unix_time(event.at("timestamp")),
        links=[
            {"href": text(event.at("run", "url")), "text": "Run in Spacelift"},
            {"href": text(event.at("stack", "url")), "text": f"Stack {stack}"},
        ],
        details={
            "state": state,
            "run_id": event.at("run", "id"),
            "run_type": event.at("run", "type"),
            "branch": event.at("run", "branch"),
            "commit": clip(commit, MAX_FIELD),
            "commit_sha": event.at("run", "commit", "hash"),
            "triggered_by": event.at("run", "triggeredBy"),
            "drift_detection": event.at("run", "driftDetection"),
            "labels": event.at("stack", "labels"),
        },
    )


def pulumi(event: Event) -> Outcome | None:
    org = text(event.at("organization", "githubLogin")) or text(event.at("organization", "name"))
    project = text(event.at("projectName"))
    stack = text(event.at("stackName"))
    if event.at("updateUrl"):
        # A preview changes nothing; its failure opens no incident on the stack.
        if event.at("isPreview") is True:
            return None
        result, url, what = event.at("result"), text(event.at("updateUrl")), "update"
        operation = text(event.at("kind")) or "update"
    elif event.at("deploymentUrl"):
        result, url, what = event.at("status"), text(event.at("deploymentUrl")), "deployment"
        operation = text(event.at("operation")) or "update"
    else:
        return None  # drift runs, policy violations, stack and environment changes
    if result not in ("failed", "succeeded"):
        return None
    return Outcome(
        failed=result == "failed",
        dedup_key=f"pulumi/{org}/{project}/{stack}",
        summary=f"Pulumi {operation} failed on stack {project}/{stack}",
        source=f"{org}/{project}/{stack}",
        component=f"{project}/{stack}",
        group=org,
        kind=f"pulumi {what}",
        links=[{"href": url, "text": f"Pulumi {what}"}],
        details={
            "result": result,
            "operation": operation,
            "version": event.at("version"),
            "user": event.at("user", "githubLogin") or event.at("user", "name"),
            "resource_changes": event.at("resourceChanges"),
        },
    )


def hcp_terraform(event: Event) -> Outcome | None:
    note = event.at("notifications", 0, default={})
    if not isinstance(note, dict):
        return None
    trigger, status = note.get("trigger"), note.get("run_status")
    # `run:errored` also reports a canceled run, which is someone's choice, not a failure.
    if trigger == "run:errored" and status == "errored":
        failed = True
    elif trigger == "run:completed":
        failed = False
    else:
        return None
    org = text(event.at("organization_name"))
    workspace = text(event.at("workspace_name"))
    message = text(event.at("run_message"))
    return Outcome(
        failed=failed,
        dedup_key=f"hcp-terraform/{org}/{workspace}",
        summary=f"HCP Terraform run errored in workspace {workspace}"
        + (f": {message}" if message else ""),
        source=f"{org}/{workspace}",
        component=workspace,
        group=org,
        kind="terraform run",
        timestamp=text(note.get("run_updated_at")) or None,
        links=[{"href": text(event.at("run_url")), "text": "Run in HCP Terraform"}],
        details={
            "run_id": event.at("run_id"),
            "run_status": status,
            "run_message": clip(message, MAX_FIELD),
            "run_created_by": event.at("run_created_by"),
            "workspace_id": event.at("workspace_id"),
        },
    )


def nullstone(event: Event) -> Outcome | None:
    status = event.at("eventStatus")
    if status not in ("failed", "completed"):
        return None
    org = text(event.at("workspace", "orgName")) or text(event.at("stack", "orgName"))
    stack = text(event.at("stack", "name"))
    env = text(event.at("environment", "name"))
    action = text(event.at("eventAction"))
    # An environment's launch or destroy concerns the whole environment; the rest one block in it.
    block = "" if action.startswith("env-") else text(event.at("block", "name"))
    where = "/".join(p for p in (org, stack, env, block) if p)
    message = text(event.at("message"))
    return Outcome(
        failed=status == "failed",
        dedup_key=f"nullstone/{where}",
        summary=f"Nullstone: {message}" if message else f"Nullstone {action} failed in {where}",
        source=where,
        component=block or env,
        group=f"{stack}/{env}",
        kind=f"nullstone {action}".strip(),
        timestamp=text(event.at("workspace", "statusAt")) or None,
        links=[{"href": text(event.at("targetUrl")), "text": "Activity in Nullstone"}],
        details={
            "action": event.at("action"),
            "event_action": action,
            "app_version": event.at("appVersion"),
            "module": event.at("module"),
            "module_version": event.at("moduleVersion"),
            "commit_sha": event.at("initiator", "commitInfo", "commitSha"),
        },
    )


def hcp_packer(event: Event) -> Outcome | None:
    log.debug(f"{event.at('event_source')} events carry no run outcome")
    return None


#: (recognises the body, reads it), in order; the first match wins.
PLATFORMS: list[tuple[Callable[[dict], bool], Callable[[Event], Outcome | None]]] = [
    (lambda b: "notifications" in b and "workspace_name" in b, hcp_terraform),
    (lambda b: str(b.get("event_source", "")).startswith("hashicorp."), hcp_packer),
    (lambda b: "run" in b and "stack" in b and "state" in b, spacelift),
    (lambda b: "projectName" in b and "stackName" in b, pulumi),
    (lambda b: "eventStatus" in b or "eventAction" in b, nullstone),
]


def text(value: Any) -> str:
    """A body value as text: absent and null are empty."""
    return "" if value is None else str(value)


def clip(value: str, limit: int) -> str:
    """At most `limit` characters, marking a cut with an ellipsis."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def unix_time(seconds: Any) -> str | None:
    """ISO 8601 (UTC) of a Unix time in seconds, or None when it is not one."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def now() -> str:
    return datetime.now(timezone.utc).isoformat()
