"""PagerDuty's Events API v2 alert event, as PagerDuty documents it, written as a check: what the
tests hold every message of the plugin to (`test_app.py`, and the gateway's end-to-end test, which
runs `python check_events_v2.py BODY.json ...` on what its receiver got). Test code: the plugin
never imports it, so a bug in the plugin cannot hide behind the same bug here.

Sources:
- PagerDuty's Events API v2 OpenAPI document (github.com/PagerDuty/api-schema,
  reference/events-v2/openapiv3.json): the fields, `event_action` and `severity` values, what is
  required (`routing_key`, `event_action`; a payload's `summary`, `severity`, `source`), `links`
  items needing `href`, `images` items needing `src`, `timestamp` a date-time;
- PagerDuty's "Send an Event" page (v2.developer.pagerduty.com/docs/send-an-event-events-api-v2):
  its 400 answer, "Length of 'routing_key' is incorrect (should be 32 characters)";
- `dedup_key` at most 255 characters and `summary` at most 1024: PagerDuty's trigger-events page
  (developer.pagerduty.com/docs/events-api-v2/trigger-events/) states them; read here as
  PagerDuty's integrators restate them (InfluxData's `pagerduty.sendEvent()`: "Supports a
  maximum of 255 characters"; Kestra's PagerDuty task: `payloadSummary` max length 1024).

On top of PagerDuty's rules, what this plugin promises: a resolve carries only `routing_key`,
`event_action` and `dedup_key`, and every event has a `dedup_key`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

ROUTING_KEY_LENGTH = 32
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
TOP_LEVEL = {
    "routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links", "images"
}
PAYLOAD = {
    "summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"
}
RESOLVE_ONLY = {"routing_key", "event_action", "dedup_key"}


def problems(event: Any) -> list[str]:
    """Every way `event` breaks the Events API v2 alert event's rules; empty when it keeps them."""
    if not isinstance(event, dict):
        return ["the event is not a JSON object"]
    out = [f"unknown field {k!r}" for k in sorted(set(event) - TOP_LEVEL)]
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != ROUTING_KEY_LENGTH:
        out.append(f"routing_key must be a string of {ROUTING_KEY_LENGTH} characters")
    action = event.get("event_action")
    if action not in EVENT_ACTIONS:
        out.append(f"event_action must be one of {EVENT_ACTIONS}, not {action!r}")
    dedup = event.get("dedup_key")
    if not isinstance(dedup, str) or not 1 <= len(dedup) <= MAX_DEDUP_KEY:
        out.append(f"dedup_key must be a string of 1 to {MAX_DEDUP_KEY} characters")
    if action == "trigger":
        out += payload_problems(event.get("payload"))
    elif action == "resolve" and set(event) != RESOLVE_ONLY:
        out.append(f"a resolve carries exactly {sorted(RESOLVE_ONLY)}, not {sorted(event)}")
    for name in ("client", "client_url"):
        if name in event and not isinstance(event[name], str):
            out.append(f"{name} must be a string")
    if "client_url" in event and not is_url(event["client_url"]):
        out.append("client_url must be an http(s) URL")
    out += items_problems(event, "links", "href", {"href", "text"})
    out += items_problems(event, "images", "src", {"src", "href", "alt"})
    return out


def payload_problems(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["a trigger needs a payload object"]
    out = [f"unknown payload field {k!r}" for k in sorted(set(payload) - PAYLOAD)]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not 1 <= len(summary) <= MAX_SUMMARY:
        out.append(f"payload.summary must be a string of 1 to {MAX_SUMMARY} characters")
    source = payload.get("source")
    if not isinstance(source, str) or not source:
        out.append("payload.source must be a non-empty string")
    if payload.get("severity") not in SEVERITIES:
        out.append(f"payload.severity must be one of {SEVERITIES}")
    if "timestamp" in payload and not is_date_time(payload["timestamp"]):
        out.append(f"payload.timestamp must be ISO 8601, not {payload['timestamp']!r}")
    for name in ("component", "group", "class"):
        if name in payload and not isinstance(payload[name], str):
            out.append(f"payload.{name} must be a string")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        out.append("payload.custom_details must be an object")
    return out


def items_problems(event: dict, name: str, required: str, fields: set[str]) -> list[str]:
    if name not in event:
        return []
    items = event[name]
    if not isinstance(items, list):
        return [f"{name} must be a list"]
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not is_url(item.get(required)):
            out.append(f"{name}[{i}] needs {required}, an http(s) URL")
            continue
        out += [f"{name}[{i}] has unknown field {k!r}" for k in sorted(set(item) - fields)]
        out += [
            f"{name}[{i}].{k} must be a string" for k, v in item.items() if not isinstance(v, str)
        ]
    return out


def is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    url = urlparse(value)
    return url.scheme in ("http", "https") and bool(url.netloc)


def is_date_time(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        # Python 3.11 reads RFC 3339 (`Z` included); a date-time needs its offset.
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def main(paths: list[str]) -> int:
    """Checks each file (one event's JSON); prints what is wrong and exits 1 if anything is."""
    failed = False
    for path in paths:
        with open(path, encoding="utf-8") as f:
            found = problems(json.load(f))
        for p in found:
            print(f"{path}: {p}")
        failed = failed or bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
