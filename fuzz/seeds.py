#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/, from the repo's own material: the catalog's
samples with the headers catalog/<preset>/samples/headers.json records for them (so seeds start
out verifying), the other payloads in tests/fixtures/, the published signature test vectors, the
example configs, and a few edge cases each target's checks turn on.

Run from anywhere: `python3 fuzz/seeds.py`. It replaces the corpus folders; commit the result.
Input layout (see fuzz/src/lib.rs): header lines, a blank line, the body.
"""
import json
import pathlib
import shutil
import struct

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
FIXTURES = ROOT / "tests" / "fixtures"
CATALOG = ROOT / "catalog"
SAMPLES_PER_PRESET = 6
CORPUS = FUZZ / "corpus"


def request(headers, body):
    head = "".join(f"{k}: {v}\n" for k, v in headers)
    return head.encode() + b"\n" + body if headers else b"\n\n" + body


def payloads():
    """(name, headers, body, secret) for every fixture payload and signature test vector."""
    for index in sorted(CATALOG.glob("*/catalog.json")):
        cat = json.loads(index.read_text())
        signed = json.loads((index.parent / "samples" / "headers.json").read_text())
        # A few per preset: each adds its shape; GitHub's 75 would only slow every run's start.
        samples = [p for p in sorted((index.parent / "samples").glob("*.json")) if p.name != "headers.json"]
        for path in samples[:SAMPLES_PER_PRESET]:
            headers = list(signed.get(path.name, {}).items())
            yield f"{cat['preset']}_{path.stem}", headers, path.read_bytes(), cat.get("sample_secret")
    for path in sorted(FIXTURES.glob("*.json")):
        if path.name != "signatures.json":
            yield path.stem, [], path.read_bytes(), None
    sigs = json.loads((FIXTURES / "signatures.json").read_text())
    gh = sigs["_test_vectors"]["github"]
    yield (
        "github_vector",
        [("X-Hub-Signature-256", gh["X-Hub-Signature-256"])],
        gh["payload"].encode(),
        gh["secret"],
    )
    sw = sigs["_test_vectors"]["standard_webhooks"]
    yield (
        "standard_webhooks_vector",
        [
            ("webhook-id", sw["msg_id"]),
            ("webhook-timestamp", str(sw["timestamp"])),
            ("webhook-signature", sw["webhook-signature"]),
        ],
        sw["payload"].encode(),
        sw["secret"],
    )


# Bodies at the edges of the JSON check: the depth bound (128) and one past it, brackets inside
# strings, a lone surrogate escape (serde_json and jaq disagree on it), invalid UTF-8, NaN.
EDGES = {
    "depth_128": b"[" * 128 + b"]" * 128,
    "depth_129": b"[" * 129 + b"]" * 129,
    "brackets_in_string": b'{"a":"\\"[[[[","b":[1]}',
    "lone_surrogate": b'{"type":"\\ud800"}',
    "invalid_utf8": b'{"type":"\xff"}',
    "nan": b'{"type":NaN}',
    "big_number": b'{"n":1e400,"m":-0,"k":18446744073709551616}',
}


def put(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def pc_uint(n):
    """postcard's unsigned integer (and lengths, enum variants): LEB128."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pc_int(n):
    return pc_uint((n << 1) ^ (n >> 63))  # zigzag


def pc_bool(b):
    return b"\x01" if b else b"\x00"


def pc_str(s):
    data = s.encode()
    return pc_uint(len(data)) + data


def pc_opt(s):
    return b"\x00" if s is None else b"\x01" + pc_str(s)


def pc_pairs(pairs):
    return pc_uint(len(pairs)) + b"".join(pc_str(k) + pc_str(v) for k, v in pairs)


def frame(*parts):
    return b"".join(struct.pack("<I", len(p)) + p for p in parts)


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    for name, headers, body, secret in payloads():
        put("ingress", name, request(headers, body))
        put(
            "envelope",
            name,
            request(headers + [("?kind", "k"), ("x-github-event", "push")], body),
        )
        fields = [("secret", secret)] if secret else []
        fields += [("id", "msg_2yQm4TqW8pLx3Fz7Kd1Vb6Nc9Hr"), ("now", "1749731402")]
        put("sign", name, request(fields, body))

        # A request of this one event, and a routing of it with a transformed body and the
        # event's body unchanged (the two shapes a delivery takes on the wire). Heads are postcard
        # (src/route/evaluator/messages.rs): fields in declaration order.
        head = pc_str("evt_1") + pc_str(name.split("_")[0]) + pc_int(1749731402000)
        head += pc_pairs([(k.lower(), v) for k, v in headers]) + pc_pairs([("kind", "k")])
        head += pc_uint(0) + pc_opt(None)
        put("frames", f"request_{name}", struct.pack("<I", 1) + frame(head, body))
        result = pc_str("r") + pc_uint(0) + pc_opt(None) + pc_uint(7)  # Delivered, 7 µs
        transformed = pc_str("dlv_1") + pc_str("r") + pc_str("a") + pc_bool(True)
        transformed += pc_pairs([("content-type", "application/json")]) + pc_bool(False) + pc_opt(None)
        unchanged = pc_str("dlv_2") + pc_str("r") + pc_str("b") + pc_bool(False)
        unchanged += pc_pairs([]) + pc_bool(True) + pc_opt("why")
        routing = pc_str("evt_1") + pc_uint(0) + pc_opt("t") + pc_uint(1) + result
        routing += pc_uint(2) + transformed + unchanged + pc_uint(1) + pc_str("w")
        put("frames", f"routing_{name}", frame(routing, body))
    for name, body in EDGES.items():
        put("ingress", name, request([("Content-Type", "application/json")], body))
        put("envelope", name, request([("x-github-event", "push")], body))
    put("ingress", "token", request([("x-token", "t0ken"), ("?", "token=t0ken&a=b")], b"{}"))
    put("sign", "no_fields", b"plain body")

    for path in sorted(ROOT.glob("examples/**/*.toml")):
        put("config", path.parent.name if path.name == "hookgate.toml" else path.stem, path.read_bytes())
    put("config", "interpolation", b'[server]\nlisten = "127.0.0.1:${PORT}"\nsecret = "${TRICKY}"\nx = "${UNSET}"\n')


if __name__ == "__main__":
    main()
