"""Standard Webhooks' own Python library, driven by hookgate's interop tests.

    python standard_webhooks.py sign SECRET MSG_ID UNIX_TS   < body   -> prints webhook-signature
    python standard_webhooks.py verify SECRET                 < {"headers": {...}, "body": "..."}
                                                               -> exit 0 when the library accepts it
"""
import datetime
import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    command, secret = sys.argv[1], sys.argv[2]
    hook = Webhook(secret)
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
    sys.exit(main())
