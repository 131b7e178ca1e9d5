#!/usr/bin/env python3
"""Runs the jq corpus (corpus.toml) through the reference jq: libjq 1.8.2, as bundled by the PyPI
package `jq==1.13.0` (see requirements.txt).

    /tmp/jqvenv/bin/python tests/jq/reference.py              # every case
    /tmp/jqvenv/bin/python tests/jq/reference.py --case NAME  # one case (repeatable)

Prints one JSON object per line, in corpus order:

    {"name": N, "outputs": [T, ...]}                               the program ran to its end
    {"name": N, "outputs": [T, ...], "error": M, "stage": "run"}   it raised an uncaught error
    {"name": N, "outputs": [], "error": M, "stage": "compile"}     it does not compile

T is one output exactly as `jq -c` prints it (a string holding jq's own JSON text); on a run
error, "outputs" holds what the program emitted before the error (as `jq -c` prints those values
before it reports the error), usually nothing. M is the message `jq` prints after its
`jq: error (at <stdin>:N): ` prefix: the error value itself when it is a string, otherwise
`(not a string): ` followed by the value's compact JSON (jq's CLI wording). A compile error's M is
libjq's full text, as the CLI prints it (`jq: error: ... \\njq: 1 compile error`).

How outputs are captured exactly as jq prints them
--------------------------------------------------
The module's own conveniences re-serialise through Python: `.text()` is `json.dumps` of values
converted to Python, which loses what jq 1.8 prints (`1.0` stays `1.0`, `100000000000000000001`
keeps every digit, `1E+1000` stays a literal, `-0` prints `-0`, nan becomes `null`, infinite
becomes `1.7976931348623157e+308`), and an error whose value is not a string comes back as
Python's `json.dumps` of it (`error(null)` is not reported at all). So each program is first
compiled as written (to get compile errors, with their line and column, exactly as jq reports
them), then run wrapped so that jq itself writes the text:

    try ((
    PROGRAM
    ) | [tojson]) catch [null, (if type == "string" then . else tojson end), type]

`tojson` is `jv_dump_string(v, 0)` (src/builtin.c), and `jq -c` writing to a pipe dumps each
output with `jv_dumpf(v, 0)` (src/main.c: -c clears the indent flags, colour is only for a tty):
the same serialiser with the same flags (no indent, no colour, no key sorting, non-ASCII kept). So
each `[T]` carries jq's exact text, and Python only moves strings. The wrapper keeps the stream's semantics: `(P) | [tojson]` is applied
output by output, as the CLI prints output by output; `try` ends the run at the first error, as
the CLI stops a program at its first uncaught error for an input, and hands over the error value,
which jq serialises too. The newlines keep a trailing `# comment` in PROGRAM from swallowing the
`)`. This was checked case by case against a jq 1.8.2 CLI built from the same tarball
(`jq -c PROGRAM <<< INPUT`): identical outputs and messages for every case of the corpus.

The run pins TZ=UTC and the C locale for LC_TIME (jq's dates use libc). Each case runs in a
forked child with a time limit, so a program that never ends cannot hang the
run. Exit status: 0 when every case ran (a jq error is a result, not a failure); 2 when the corpus
is malformed: not TOML, a case without `name`/`category`/`program`/`input`, a duplicate or
non-snake_case name, an undeclared category, an input that is not exactly one JSON value to jq,
a program using what hookgate removes (`env`, `$ENV`, `input`, `inputs`, ...), a program that
compiles alone but not wrapped (a module directive), more than 1000 outputs (hookgate's cap), or
a case running past the time limit.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import locale
import multiprocessing
import os
import re
import sys
import time
import tomllib
from pathlib import Path

import jq

# jq's date functions go through libc: strftime("%s") and friends read the time zone, %A/%B the
# LC_TIME locale. Pin both so the reference does not depend on the machine running it.
os.environ["TZ"] = "UTC"
time.tzset()
locale.setlocale(locale.LC_TIME, "C")

REFERENCE_PACKAGE = "1.13.0"  # PyPI `jq` 1.13.0 bundles libjq 1.8.2

CORPUS = Path(__file__).resolve().with_name("corpus.toml")

# hookgate refuses a program yielding more than this many values (MAX_OUTPUTS in
# src/transform/jq.rs); a case past it compares nothing useful.
MAX_OUTPUTS = 1000
TIMEOUT_SECONDS = 10.0

REQUIRED = ("name", "category", "program", "input")
OPTIONAL = ("note", "listed", "sample")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
# What hookgate removes or what depends on the machine running jq rather than on the program.
FORBIDDEN_RE = re.compile(
    r"\$ENV\b|\$__loc__|\$__prog_args"
    r"|(?<![.$\w])(?:env|input|inputs|input_filename|input_line_number|halt|halt_error"
    r"|debug|stderr|get_search_list|localtime|strflocaltime|mktime_local)\b(?!\s*:)"
)

WRAPPER = (
    "try ((\n{program}\n) | [tojson]) "
    'catch [null, (if type == "string" then . else tojson end), type]'
)


class Malformed(Exception):
    """The corpus itself is wrong; the run stops with exit status 2."""


def _strip_strings_and_comments(program: str) -> str:
    """The program without string literals and comments, for the forbidden-name check (a name
    inside `"..."` or after `#` is not a call)."""
    out, i, n = [], 0, len(program)
    while i < n:
        c = program[i]
        if c == "#":
            while i < n and program[i] != "\n":
                i += 1
        elif c == '"':
            i += 1
            depth = 0  # \( ... ) interpolations: keep their code, they may call things
            while i < n:
                if program[i] == "\\" and i + 1 < n and program[i + 1] == "(":
                    j, depth = i + 2, 1
                    while j < n and depth:
                        depth += {"(": 1, ")": -1}.get(program[j], 0)
                        j += 1
                    out.append(" " + program[i + 2 : j - 1] + " ")
                    i = j
                elif program[i] == "\\":
                    i += 2
                elif program[i] == '"':
                    i += 1
                    break
                else:
                    i += 1
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def load_corpus(path: Path = CORPUS) -> list[dict]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise Malformed(f"{path}: {e}") from e
    categories = doc.get("categories")
    if not isinstance(categories, dict) or not categories:
        raise Malformed("corpus.toml needs a [categories] table: name = description")
    cases = doc.get("case")
    if not isinstance(cases, list) or not cases:
        raise Malformed("corpus.toml has no [[case]]")
    seen: set[str] = set()
    for i, case in enumerate(cases):
        where = f"case #{i + 1} ({case.get('name', '?')})"
        for key in REQUIRED:
            if not isinstance(case.get(key), str):
                raise Malformed(f"{where}: `{key}` must be a string")
        unknown = set(case) - set(REQUIRED) - set(OPTIONAL)
        if unknown:
            raise Malformed(f"{where}: unknown keys {sorted(unknown)}")
        if "listed" in case and not isinstance(case["listed"], bool):
            raise Malformed(f"{where}: `listed` must be a boolean")
        name = case["name"]
        if not NAME_RE.match(name):
            raise Malformed(f"{where}: name is not snake_case")
        if name in seen:
            raise Malformed(f"{where}: duplicate name")
        seen.add(name)
        if case["category"] not in categories:
            raise Malformed(f"{where}: category `{case['category']}` is not in [categories]")
        hit = FORBIDDEN_RE.search(_strip_strings_and_comments(case["program"]))
        if hit:
            raise Malformed(f"{where}: uses `{hit.group(0)}`, which the corpus excludes")
    return cases


def run_case(case: dict) -> dict:
    """Runs one case in this process. Raises Malformed for a corpus problem."""
    name, program, text = case["name"], case["program"], case["input"]

    try:
        values = list(jq.compile("tojson").input_text(text))
    except ValueError as e:
        raise Malformed(f"case {name}: input is not JSON to jq: {e}") from e
    if len(values) != 1:
        raise Malformed(f"case {name}: input holds {len(values)} JSON values, not 1")

    try:
        jq.compile(program)
    except ValueError as e:
        return {"name": name, "outputs": [], "error": str(e), "stage": "compile"}

    try:
        wrapped = jq.compile(WRAPPER.format(program=program))
    except ValueError as e:
        raise Malformed(f"case {name}: compiles alone but not wrapped: {e}") from e

    outputs: list[str] = []
    for item in wrapped.input_text(text):
        # Every item is [T] (an output) or [null, M, type] (the error that ended the run); the
        # wrapper catches every error, so iteration itself never raises.
        if len(item) == 1:
            outputs.append(item[0])
            if len(outputs) > MAX_OUTPUTS:
                raise Malformed(f"case {name}: more than {MAX_OUTPUTS} outputs")
        else:
            _, value, kind = item
            message = value if kind == "string" else f"(not a string): {value}"
            return {"name": name, "outputs": outputs, "error": message, "stage": "run"}
    return {"name": name, "outputs": outputs}


def _child(case: dict, conn) -> None:
    try:
        conn.send(("ok", run_case(case)))
    except Malformed as e:
        conn.send(("malformed", str(e)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent as a corpus problem
        conn.send(("malformed", f"case {case['name']}: reference runner failed: {e!r}"))
    finally:
        conn.close()


def run_isolated(case: dict, timeout: float = TIMEOUT_SECONDS) -> dict:
    """Runs one case in a forked child, so a program that never ends is cut off."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(case, child))
    proc.start()
    child.close()
    if not parent.poll(timeout):
        proc.kill()
        proc.join()
        raise Malformed(f"case {case['name']}: still running after {timeout:g} s")
    try:
        status, payload = parent.recv()
    except EOFError as e:
        proc.join()
        raise Malformed(f"case {case['name']}: the jq child died ({proc.exitcode})") from e
    proc.join()
    if status != "ok":
        raise Malformed(payload)
    return payload


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", action="append", metavar="NAME", help="run only this case")
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="corpus file (corpus.toml)")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, help="seconds per case")
    args = ap.parse_args(argv)
    installed = importlib.metadata.version("jq")
    if installed != REFERENCE_PACKAGE:
        print(f"reference.py: warning: jq {installed} is installed, not {REFERENCE_PACKAGE} "
              "(libjq 1.8.2): outputs may not be the reference's", file=sys.stderr)
    try:
        cases = load_corpus(args.corpus)
        if args.case:
            by_name = {c["name"]: c for c in cases}
            missing = [n for n in args.case if n not in by_name]
            if missing:
                print(f"reference.py: no case named {', '.join(missing)}", file=sys.stderr)
                return 2
            cases = [by_name[n] for n in args.case]
        for case in cases:
            result = run_isolated(case, args.timeout)
            print(json.dumps(result, ensure_ascii=False), flush=True)
    except Malformed as e:
        print(f"reference.py: malformed corpus: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
