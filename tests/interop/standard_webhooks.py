"""Standard Webhooks' own Python library, driven by hookgate's interop tests.

    python standard_webhooks.py sign SECRET MSG_ID UNIX_TS   < body   -> prints webhook-signature
    python standard_webhooks.py verify SECRET                 < {"headers": {...}, "body": "..."}
                                                               -> exit 0 when the library accepts it
"""
import datetime
import json
import sys



def run(webhook) -> int:
    """The commands above with `webhook`, a library's Webhook class (svix_lib.py passes Svix's)."""
    command, secret = sys.argv[1], sys.argv[2]
    hook = webhook(secret)
    if command == "sign":
        msg_id, ts = sys.argv[3], int(sys.argv[4])
        body = sys.stdin.buffer.read().decode()
        when = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
        print(hook.sign(msg_id, when, body))
        return 0
    if command == "verify":
        request = json.load(sys.stdin)
        try:
            hook.verify(request["body"], request["headers"])
        except Exception as error:  # the library raises WebhookVerificationError
            print(f"rejected: {error}", file=sys.stderr)
            return 1
        return 0
    print(f"unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    from standardwebhooks.webhooks import Webhook

    sys.exit(run(Webhook))
