"""`python -m unittest` in this folder: the transform on every fixture (producers' bodies, from
hookgate's event catalog), each message held to PagerDuty's Events API v2 rules
(`check_events_v2.py`), and the trigger/resolve pairing that makes the plugin stateless."""

from __future__ import annotations

import json
import unittest
from pathlib import Path
from typing import Any

import check_events_v2
from app import transform
from hookgate_sdk import Event, Message, Reject, log, run

FIXTURES = Path(__file__).with_name("fixtures")
KEY = "0123456789abcdef0123456789abcdef"
CONFIG = {"routing_key": KEY}
RECEIVED_AT = "2025-06-12T14:03:23.000Z"

#: The event type each preset gives a fixture, as the gateway would (the plugin reads the body).
EVENT_TYPES = {
    "spacelift": "run_state_changed_event",
    "pulumi_stack": "stack_update",
    "pulumi_deployment": "deployment",
    "tfe": None,
    "hcp": "hashicorp.packer.version.complete",
    "nullstone": None,
}

#: Every fixture and what it gives: an action and the alert it names, or nothing (None).
EXPECTED: dict[str, tuple[str, str] | None] = {
    "spacelift_run_failed.json": ("trigger", "spacelift/acme-infra/payments-prod"),
    "spacelift_run_finished.json": ("resolve", "spacelift/acme-infra/payments-prod"),
    "spacelift_run_unconfirmed.json": None,
    "pulumi_stack_update_failed.json": ("trigger", "pulumi/northwind-robotics/fleet-api/prod"),
    "pulumi_stack_update.json": ("resolve", "pulumi/northwind-robotics/fleet-api/prod"),
    "pulumi_stack_update_failed_destroy.json": (
        "trigger",
        "pulumi/northwind-robotics/fleet-api/pr-412",
    ),
    "pulumi_stack_preview.json": None,
    "pulumi_deployment.json": None,
    "tfe_run_errored.json": ("trigger", "hcp-terraform/acme-org/network-core"),
    "tfe_run_completed_network_core.json": ("resolve", "hcp-terraform/acme-org/network-core"),
    "tfe_run_completed.json": ("resolve", "hcp-terraform/acme-org/billing-api-prod"),
    "tfe_run_errored_canceled.json": None,
    "tfe_run_planning.json": None,
    "hcp_packer_version_completed.json": None,
    "nullstone_deploy_failed.json": ("trigger", "nullstone/acme-labs/storefront/prod/checkout-web"),
    "nullstone_deployed.json": ("resolve", "nullstone/acme-labs/storefront/prod/checkout-web"),
    "nullstone_block_update_failed.json": (
        "trigger",
        "nullstone/acme-labs/storefront/prod/orders-db",
    ),
    "nullstone_block_needs_approval.json": None,
}

#: (failed, finished) on the same stack, project, workspace or block, per platform.
PAIRS = [
    ("spacelift_run_failed.json", "spacelift_run_finished.json"),
    ("pulumi_stack_update_failed.json", "pulumi_stack_update.json"),
    ("tfe_run_errored.json", "tfe_run_completed_network_core.json"),
    ("nullstone_deploy_failed.json", "nullstone_deployed.json"),
]


#: The plugin's log lines, kept here rather than printed (the component sends them to the host).
LOGS: list[tuple[str, str]] = []
log._host = lambda level, message: LOGS.append((level, message))

_FIXTURE = object()


def event(name: str, body: Any = _FIXTURE) -> Event:
    """The fixture as the gateway hands it to the plugin (with `body` instead, when given)."""
    prefix = name.split("_")[0]
    kind = "pulumi_deployment" if name == "pulumi_deployment.json" else prefix
    kind = "pulumi_stack" if kind == "pulumi" else kind
    if body is _FIXTURE:
        body = json.loads(FIXTURES.joinpath(name).read_text(encoding="utf-8"))
    return Event(
        id="evt_1",
        source=prefix,
        event_type=EVENT_TYPES[kind],
        received_at=RECEIVED_AT,
        body=body,
    )


def bodies(messages: list[Message]) -> list[dict[str, Any]]:
    return [json.loads(m.body) for m in messages]


class EveryFixture(unittest.TestCase):
    def test_the_fixtures_are_the_ones_listed(self):
        self.assertEqual(sorted(p.name for p in FIXTURES.glob("*.json")), sorted(EXPECTED))

    def test_each_gives_its_action_and_a_valid_events_v2_body(self):
        for name, expected in EXPECTED.items():
            with self.subTest(name):
                out = bodies(transform(event(name), CONFIG))
                if expected is None:
                    self.assertEqual(out, [])
                    continue
                self.assertEqual(len(out), 1)
                self.assertEqual(check_events_v2.problems(out[0]), [])
                self.assertEqual((out[0]["event_action"], out[0]["dedup_key"]), expected)
                self.assertEqual(out[0]["routing_key"], KEY)
                self.assertEqual(LOGS[-1], ("info", f"{expected[0]} {expected[1]}"))

    def test_through_the_sdk_as_the_component_calls_it(self):
        envelope = json.dumps(
            {
                "id": "evt_1",
                "source": "spacelift",
                "event_type": "run_state_changed_event",
                "received_at": RECEIVED_AT,
                "headers": {"content-type": "application/json"},
                "queryParams": {},
                "body": event("spacelift_run_failed.json").body,
            }
        )
        (message,) = run(transform, envelope, json.dumps(CONFIG))
        self.assertEqual(check_events_v2.problems(json.loads(message.body)), [])
        self.assertEqual(message.target, None)


class TriggerThenResolve(unittest.TestCase):
    def test_a_success_resolves_what_the_failure_opened(self):
        for failed, finished in PAIRS:
            with self.subTest(failed):
                (trigger,) = bodies(transform(event(failed), CONFIG))
                (resolve,) = bodies(transform(event(finished), CONFIG))
                self.assertEqual(trigger["event_action"], "trigger")
                self.assertEqual(resolve["event_action"], "resolve")
                self.assertEqual(trigger["dedup_key"], resolve["dedup_key"])
                key = trigger["dedup_key"]
                only = {"routing_key": KEY, "event_action": "resolve", "dedup_key": key}
                self.assertEqual(resolve, only)

    def test_a_trigger_describes_the_run_and_links_to_it(self):
        (body,) = bodies(transform(event("spacelift_run_failed.json"), CONFIG))
        payload = body["payload"]
        self.assertEqual(
            payload["summary"],
            "Spacelift run failed on stack payments-prod: Bump RDS instance class for payments-db",
        )
        self.assertEqual(payload["source"], "acme-infra/payments-prod")
        self.assertEqual(payload["severity"], "error")
        self.assertEqual(payload["timestamp"], "2025-06-12T12:28:22+00:00")
        self.assertEqual(
            (payload["component"], payload["group"], payload["class"]),
            ("payments-prod", "acme-infra", "spacelift run"),
        )
        self.assertEqual(payload["custom_details"]["run_id"], "01JXK4R7D5F3H1K9M7P5S3V1X9")
        run_url = (
            "https://acme-infra.app.spacelift.io/stack/payments-prod/run/01JXK4R7D5F3H1K9M7P5S3V1X9"
        )
        self.assertEqual(body["links"][0], {"href": run_url, "text": "Run in Spacelift"})
        self.assertEqual((body["client"], body["client_url"]), ("hookgate", run_url))

    def test_each_platform_gives_its_timestamp_or_the_time_received(self):
        cases = {
            "tfe_run_errored.json": "2025-06-12T16:22:05.000Z",
            "nullstone_deploy_failed.json": "2025-06-12T14:03:22.481Z",
            # Pulumi's body has no time of its own.
            "pulumi_stack_update_failed.json": RECEIVED_AT,
        }
        for name, timestamp in cases.items():
            with self.subTest(name):
                (body,) = bodies(transform(event(name), CONFIG))
                self.assertEqual(body["payload"]["timestamp"], timestamp)


class Config(unittest.TestCase):
    def test_severity_is_configurable(self):
        for severity in check_events_v2.SEVERITIES:
            with self.subTest(severity):
                config = {**CONFIG, "severity": severity}
                (body,) = bodies(transform(event("tfe_run_errored.json"), config))
                self.assertEqual(body["payload"]["severity"], severity)

    def test_bad_config_is_refused_without_quoting_the_key(self):
        cases = [
            ({}, "routing_key is missing"),
            ({"routing_key": ""}, "routing_key is missing"),
            ({"routing_key": 12345}, "routing_key is missing"),
            ({"routing_key": "secret-but-short"}, "has 16 characters"),
            ({**CONFIG, "severity": "page-everyone"}, "critical, error, warning, info"),
        ]
        for config, why in cases:
            with self.subTest(config=config):
                with self.assertRaisesRegex(Reject, why) as refused:
                    transform(event("spacelift_run_failed.json"), config)
                self.assertNotIn("secret-but-short", str(refused.exception))

    def test_a_missing_key_is_refused_even_for_an_event_that_sends_nothing(self):
        with self.assertRaisesRegex(Reject, "routing_key"):
            transform(event("spacelift_run_unconfirmed.json"), {})


class Limits(unittest.TestCase):
    def test_over_long_values_are_cut_to_pagerdutys_limits(self):
        body = event("spacelift_run_failed.json").body
        body["stack"]["id"] = "s" * 400
        body["stack"]["name"] = "n" * 400
        body["run"]["commit"]["message"] = "m" * 5000
        (out,) = bodies(transform(event("spacelift_run_failed.json", body), CONFIG))
        self.assertEqual(check_events_v2.problems(out), [])
        self.assertEqual(len(out["dedup_key"]), check_events_v2.MAX_DEDUP_KEY)
        self.assertEqual(len(out["payload"]["summary"]), check_events_v2.MAX_SUMMARY)
        self.assertTrue(out["payload"]["summary"].endswith("…"))
        # Cut the same way every time, so the resolve still finds the alert.
        body["state"] = "FINISHED"
        (resolve,) = bodies(transform(event("spacelift_run_finished.json", body), CONFIG))
        self.assertEqual(resolve["dedup_key"], out["dedup_key"])

    def test_odd_bodies_give_nothing_rather_than_fail(self):
        odd = [None, "text", [], {}, {"hello": "w"}, {"notifications": None, "workspace_name": ""}]
        for body in odd:
            with self.subTest(body=body):
                self.assertEqual(transform(event("tfe_run_errored.json", body), CONFIG), [])

    def test_a_run_without_links_or_times_still_makes_a_valid_trigger(self):
        body = {"state": "FAILED", "run": {}, "stack": {"id": "st"}, "account": "acct"}
        (out,) = bodies(transform(event("spacelift_run_failed.json", body), CONFIG))
        self.assertEqual(check_events_v2.problems(out), [])
        self.assertNotIn("links", out)
        self.assertEqual(out["payload"]["timestamp"], RECEIVED_AT)


class TheCheckItself(unittest.TestCase):
    """The check must be able to fail: each broken event is named for the rule it breaks."""

    def valid(self) -> dict[str, Any]:
        (body,) = bodies(transform(event("spacelift_run_failed.json"), CONFIG))
        return body

    def test_it_catches_each_broken_rule(self):
        def broken(change) -> dict[str, Any]:
            body = self.valid()
            change(body)
            return body

        cases = [
            (lambda b: b.update(routing_key="short"), "routing_key"),
            (lambda b: b.update(event_action="page"), "event_action"),
            (lambda b: b.update(dedup_key="k" * 256), "dedup_key"),
            (lambda b: b.pop("payload"), "payload object"),
            (lambda b: b["payload"].update(summary="s" * 1025), "summary"),
            (lambda b: b["payload"].pop("source"), "source"),
            (lambda b: b["payload"].update(severity="fatal"), "severity"),
            (lambda b: b["payload"].update(timestamp="yesterday"), "timestamp"),
            (lambda b: b["payload"].update(custom_details="x"), "custom_details"),
            (lambda b: b["payload"].update(colour="red"), "unknown payload field"),
            (lambda b: b.update(links=[{"text": "no href"}]), "links[0]"),
            (lambda b: b.update(client_url="not a url"), "client_url"),
            (lambda b: b.update(extra=1), "unknown field"),
            (
                lambda b: b.update(event_action="resolve"),
                "a resolve carries exactly",
            ),
        ]
        for change, rule in cases:
            with self.subTest(rule):
                found = check_events_v2.problems(broken(change))
                self.assertTrue(any(rule in p for p in found), found)


if __name__ == "__main__":
    unittest.main()
