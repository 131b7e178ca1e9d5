#!/usr/bin/env python3
"""Writes catalog/<preset>/samples/headers.json: for every sample a preset's catalog.json lists,
the headers its platform would send, signed over the sample file's exact bytes with the preset's
`sample_secret`.

Python's standard library only, and no code shared with hookgate, so that a test which feeds
these headers to the gateway checks hookgate against an independent reading of each scheme.
Run it after adding or editing a sample: `python3 catalog/sign.py`.
"""
import base64
import hashlib
import hmac
import json
import pathlib
import uuid

ROOT = pathlib.Path(__file__).resolve().parent
# A fixed time for the schemes that sign one (Standard Webhooks); tests re-sign with the clock.
TIMESTAMP = 1749731402


def hexmac(key, body, algo):
    return hmac.new(key.encode(), body, algo).hexdigest()


def stable_uuid(preset, name):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hookgate-catalog:{preset}/{name}"))


def headers(preset, secret, event_type, name, body):
    h = {"Content-Type": "application/json"}
    if preset == "spacelift":
        h["User-Agent"] = "Go-http-client/2.0"
        h["X-Signature"] = "sha1=" + hexmac(secret, body, hashlib.sha1)
        h["X-Signature-256"] = "sha256=" + hexmac(secret, body, hashlib.sha256)
    elif preset == "pulumi":
        h["Pulumi-Webhook-ID"] = stable_uuid(preset, name)
        h["Pulumi-Webhook-Kind"] = event_type
        h["Pulumi-Webhook-Signature"] = hexmac(secret, body, hashlib.sha256)
    elif preset == "hcp":
        h["X-HCP-Webhook-Signature"] = hexmac(secret, body, hashlib.sha512)
    elif preset == "tfe":
        h["User-Agent"] = "TFE"
        h["X-TFE-Notification-Signature"] = hexmac(secret, body, hashlib.sha512)
    elif preset == "github":
        h["User-Agent"] = "GitHub-Hookshot/5c4b3a2"
        h["X-GitHub-Event"] = event_type
        h["X-GitHub-Delivery"] = stable_uuid(preset, name)
        h["X-GitHub-Hook-ID"] = "461250127"
        h["X-GitHub-Hook-Installation-Target-Type"] = "repository"
        h["X-GitHub-Hook-Installation-Target-ID"] = "702451938"
        h["X-Hub-Signature"] = "sha1=" + hexmac(secret, body, hashlib.sha1)
        h["X-Hub-Signature-256"] = "sha256=" + hexmac(secret, body, hashlib.sha256)
    elif preset == "gitlab":
        h["User-Agent"] = "GitLab/17.6.0"
        h["X-Gitlab-Event"] = event_type
        h["X-Gitlab-Instance"] = "https://gitlab.example.com"
        h["X-Gitlab-Webhook-UUID"] = stable_uuid(preset, "webhook")
        h["X-Gitlab-Event-UUID"] = stable_uuid(preset, name)
        h["X-Gitlab-Token"] = secret
    elif preset == "standard-webhooks":
        key = base64.b64decode(secret.removeprefix("whsec_"))
        msg_id = "msg_" + stable_uuid(preset, name).replace("-", "")[:27]
        mac = hmac.new(key, f"{msg_id}.{TIMESTAMP}.".encode() + body, hashlib.sha256).digest()
        h["webhook-id"] = msg_id
        h["webhook-timestamp"] = str(TIMESTAMP)
        h["webhook-signature"] = "v1," + base64.b64encode(mac).decode()
    elif preset == "nullstone":
        pass  # Nullstone does not sign; a source may expect a shared token instead.
    else:
        raise SystemExit(f"{preset}: no signing rule in catalog/sign.py")
    return h


def main():
    for index in sorted(ROOT.glob("*/catalog.json")):
        preset_dir = index.parent
        cat = json.loads(index.read_text())
        out = {}
        for event in cat["events"]:
            for sample in event.get("samples", []):
                body = (preset_dir / sample).read_bytes()
                json.loads(body)  # a sample must be JSON
                name = pathlib.PurePosixPath(sample).name
                out[name] = headers(cat["preset"], cat.get("sample_secret"), event["type"], name, body)
        target = preset_dir / "samples" / "headers.json"
        target.parent.mkdir(exist_ok=True)
        target.write_text(json.dumps(out, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        print(f"{target.relative_to(ROOT)}: {len(out)} samples")


if __name__ == "__main__":
    main()
