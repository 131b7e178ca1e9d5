#!/usr/bin/env python3
"""Port's webhook mapping semantics, written a second time on real jq (libjq 1.8.2 from PyPI's
`jq==1.13.0`, the package tests/jq/requirements.txt pins), as the oracle of tests/it/port_docs.rs.

    /tmp/jqvenv/bin/python tests/port/reference.py tests/port/docs/*.toml

For every `[[case]]` of the given corpus files, prints one JSON line:

    {"name": N, "messages": [M, ...]}   the messages a `port` route makes of the case's request
    {"name": N, "error": E}             the configuration fails (itemsToParse yields no array)

M is a message's JSON text: {"operation", "blueprint", ["deleteDependents"], "entity"}, the
entity's fields in the mapping's order, each value as jq itself prints it. How Port evaluates a
mapping (its webhook docs, "Mapping configuration"), which this follows:

- mappings in order; `itemsToParse` (when present) must yield an array: one entity per item,
  the request with `.item` set to the item; the filter runs per item (or once, without items)
  and passes when its first output is `true`;
- every string leaf of `entity` is jq on its own: its first output, or null when it fails, yields
  nothing or does not compile; `'text'` outside double quotes is a string constant;
- a numeric identifier is written as a string (Port's identifiers are strings).

hookgate's implementation is src/transform/port.rs; this file shares no code with it.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib

import jq

os.environ["TZ"] = "UTC"


def port_quotes(code: str) -> str:
    out, i, in_double = [], 0, False
    while i < len(code):
        c = code[i]
        if c == "\\" and in_double:
            out.append(code[i : i + 2])
            i += 2
            continue
        if c == '"':
            in_double = not in_double
        elif c == "'" and not in_double:
            end = code.find("'", i + 1)
            end = len(code) if end < 0 else end
            out.append(json.dumps(code[i + 1 : end], ensure_ascii=False))
            i = end + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def first(code: str, request: str) -> str | None:
    """The first output's jq text, None when the program fails, yields nothing or does not
    compile."""
    wrapped = f"try [limit(1; (\n{port_quotes(code)}\n) | tojson)] catch []"
    try:
        texts = jq.compile(wrapped).input_text(request).first()
    except Exception:
        return None
    return texts[0] if texts else None


def value(leaf, request: str) -> str:
    if isinstance(leaf, str):
        text = first(leaf, request)
        return "null" if text is None else text
    if isinstance(leaf, dict):
        return table(leaf, request)
    if isinstance(leaf, list):
        return "[" + ",".join(value(x, request) for x in leaf) + "]"
    return json.dumps(leaf)


def key(k: str) -> str:
    return jq.compile("tojson").input_value(k).first()


def table(fields: dict, request: str) -> str:
    return "{" + ",".join(f"{key(k)}:{value(v, request)}" for k, v in fields.items()) + "}"


def entity(fields: dict, request: str) -> str:
    out = []
    for k, leaf in fields.items():
        text = value(leaf, request)
        if k == "identifier" and text[:1] not in ('"', "n", "{", "[", "t", "f"):
            text = json.dumps(text)  # a number, as Port writes it: a string
        out.append(f"{key(k)}:{text}")
    return "{" + ",".join(out) + "}"


def mappings(config):
    if isinstance(config, list):
        return config
    if "mappings" in config:
        return config["mappings"]
    return [config]


def operation(m) -> tuple[str, bool | None]:
    op = m.get("operation", "create")
    if isinstance(op, dict):
        kind = op.get("type")
        return (kind, bool(op.get("deleteDependents", False)) if kind == "delete" else None)
    return (op, False if op == "delete" else None)


def texts(code: str, request: str) -> list[str]:
    return jq.compile(code).input_text(request).all()


def run(case: dict) -> dict:
    config = json.loads(case["config"])
    # Built as text so that the body's numbers reach jq as written.
    request = (
        '{"body":' + case["body"].strip()
        + ',"headers":' + json.dumps(case.get("headers", {}), ensure_ascii=False)
        + ',"queryParams":' + json.dumps(case.get("query", {}), ensure_ascii=False) + "}"
    )
    messages = []
    for i, m in enumerate(mappings(config)):
        inputs = [request]
        if "itemsToParse" in m:
            items = first(m["itemsToParse"], request)
            if items is None or not items.startswith("["):
                return {"name": case["name"], "error": f"mappings[{i}].itemsToParse: no array"}
            inputs = [request[:-1] + ',"item":' + item + "}" for item in texts(".[] | tojson", items)]
        for inp in inputs:
            if "filter" in m and first(m["filter"], inp) != "true":
                continue
            kind, dependents = operation(m)
            head = f'"operation":{json.dumps(kind)},"blueprint":{key(m["blueprint"])}'
            if dependents is not None:
                head += f',"deleteDependents":{json.dumps(dependents)}'
            messages.append("{" + head + f',"entity":{entity(m["entity"], inp)}' + "}")
    return {"name": case["name"], "messages": messages}


def main() -> int:
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            for case in tomllib.load(f)["case"]:
                if "problem" in case:
                    continue  # refused at load: nothing to evaluate
                print(json.dumps(run(case), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
