"""slack-notify's Spacelift message (benches/slack.jq) in Python: the plugin benchmark's
like-for-like comparison of a Python plugin with the same message from Rust, JavaScript and jq.
"""

from hookgate_sdk import Event, Message

OUTCOME = {"FINISHED": "succeeded", "FAILED": "failed", "UNCONFIRMED": "needs_approval",
           "PENDING_REVIEW": "needs_approval"}
COLOUR = {"succeeded": "#2eb886", "failed": "#a30200", "needs_approval": "#daa038",
          "started": "#daa038"}
EMOJI = {"succeeded": ":white_check_mark:", "failed": ":x:", "needs_approval": ":raised_hand:",
         "started": ":hourglass_flowing_sand:"}


def mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def transform(event: Event, config: dict) -> list[Message]:
    body = event.body
    run = body.get("run") or {}
    commit = run.get("commit") or {}
    delta = run.get("delta") or {}
    outcome = OUTCOME.get(body.get("state"), "started")
    title = f"Spacelift · {body['stack']['name']} · run {body['state'].lower()}"
    head = f"{EMOJI[outcome]} {title}"
    return [Message.json({
        "text": head,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": head, "emoji": True}},
            {"type": "section", "text": mrkdwn((commit.get("message") or "")[:300])},
        ],
        "attachments": [{
            "color": COLOUR[outcome],
            "fallback": title,
            "blocks": [
                {"type": "section", "fields": [
                    mrkdwn(f"*Triggered by*\n{run.get('triggeredBy') or 'unknown'}"),
                    mrkdwn(f"*Changes*\n+{delta.get('added', 0)} added, ~{delta.get('changed', 0)}"
                           f" changed, -{delta.get('deleted', 0)} deleted"),
                    mrkdwn(f"*Commit*\n{(commit.get('hash') or '')[:7]} on {run.get('branch') or '?'}"
                           f" by {commit.get('authorName') or '?'}"),
                    mrkdwn(f"*Run type*\n{run.get('type')}"),
                ]},
                {"type": "actions", "elements": [{"type": "button", "text": {
                    "type": "plain_text", "text": "View run"}, "url": run.get("url")}]},
                {"type": "context", "elements": [
                    mrkdwn(f"account {body.get('account')} · run {run.get('id')}")]},
            ],
        }],
    })]
