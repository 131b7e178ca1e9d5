"""hookgate's Python SDK: a plugin is one function in `app.py`,

    def transform(event: Event, config: dict) -> list[Message]

and this package does the rest: it decodes the event envelope and the route's config, turns your
messages into what the host expects, turns an exception into a failed delivery with its text as
the reason (`raise Reject("why")`, or any other exception), and sends `log.info(...)` lines to the
gateway's log. It carries the WIT interface it builds against (`wit/hookgate.wit`, world
`transformer`); `_component.py` is the component's entry point, which `hookgate plugin build`
hands to componentize-py.

Outside a component (`python -m unittest` on your machine) everything works the same, and log
lines go to stderr.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Event", "Message", "Reject", "log"]


class Reject(Exception):
    """Refuses the event: the delivery fails with this text as its reason."""


@dataclass
class Event:
    """One received webhook, as every route sees it."""

    id: str = ""
    #: The name of the source (as configured) that received it.
    source: str = ""
    #: The type the source's preset gave it (`run_state_changed_event`, `stack_update`, ...), or None.
    event_type: str | None = None
    #: When hookgate received it (RFC 3339).
    received_at: str = ""
    #: Request headers, lower-case names. Credentials are never included.
    headers: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)
    #: The producer's body: its JSON (dicts, lists, ...), or a string for `format = "raw"` sources.
    body: Any = None

    @classmethod
    def from_json(cls, text: str) -> "Event":
        try:
            v = json.loads(text)
        except ValueError as e:
            raise Reject(f"invalid event envelope: {e}") from None
        if not isinstance(v, dict):
            raise Reject("invalid event envelope: not an object")
        return cls(
            id=v.get("id") or "",
            source=v.get("source") or "",
            event_type=v.get("event_type"),
            received_at=v.get("received_at") or "",
            headers=v.get("headers") or {},
            query_params=v.get("queryParams") or {},
            body=v.get("body"),
        )

    def at(self, *path: str | int, default: Any = None) -> Any:
        """The value at `path` in the body (`event.at("stack", "id")`), or `default`."""
        v = self.body
        for key in path:
            try:
                v = v[key]
            except (KeyError, IndexError, TypeError):
                return default
        return default if v is None else v


@dataclass
class Message:
    """One request the gateway sends: to every target of the route, or to `target` only."""

    body: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    target: str | None = None

    @classmethod
    def json(cls, value: Any, **kw: Any) -> "Message":
        """A JSON body (sent as application/json)."""
        return cls(body=json.dumps(value, ensure_ascii=False, separators=(",", ":")), **kw)

    @classmethod
    def raw(cls, text: str, content_type: str = "text/plain", **kw: Any) -> "Message":
        """Any text, with its content type."""
        msg = cls(body=text, **kw)
        msg.headers.append(("content-type", content_type))
        return msg

    def header(self, name: str, value: str) -> "Message":
        self.headers.append((name, value))
        return self

    def to_target(self, name: str) -> "Message":
        self.target = name
        return self


class _Log:
    """Lines in the gateway's log, under the plugin's name."""

    #: Set by the component's entry point to the host's `log` import.
    _host: Callable[[str, str], None] | None = None

    def _write(self, level: str, message: str) -> None:
        if self._host is not None:
            self._host(level, message)
        else:
            print(f"[plugin {level}] {message}", file=sys.stderr)

    def trace(self, message: str) -> None:
        self._write("trace", message)

    def debug(self, message: str) -> None:
        self._write("debug", message)

    def info(self, message: str) -> None:
        self._write("info", message)

    def warn(self, message: str) -> None:
        self._write("warn", message)

    def error(self, message: str) -> None:
        self._write("error", message)


log = _Log()


def run(transform: Callable[[Event, dict], list[Message]], event: str, config: str) -> list[Message]:
    """Decodes the host's arguments and calls `transform`; any exception becomes `Reject(why)`."""
    ev = Event.from_json(event)
    try:
        cfg = json.loads(config) if config.strip() not in ("", "null") else {}
    except ValueError as e:
        raise Reject(f"invalid plugin config: {e}") from None
    try:
        out = transform(ev, cfg)
    except Reject:
        raise
    except Exception as e:  # the author's bug or refusal: a reason, not a trap
        raise Reject(f"{type(e).__name__}: {e}") from None
    if not isinstance(out, list) or not all(isinstance(m, Message) for m in out):
        raise Reject("transform must return a list of Message")
    return out
