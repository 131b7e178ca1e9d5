"""Svix's own Python library (the `svix` package's webhooks module), driven by hookgate's interop
tests: what Svix, and every sender built on it (Clerk, Resend, …), signs and verifies. The same
commands as standard_webhooks.py:

    python svix_lib.py sign SECRET MSG_ID UNIX_TS   < body   -> prints the signature value
    python svix_lib.py verify SECRET                 < {"headers": {...}, "body": "..."}
                                                      -> exit 0 when the library accepts it
"""
import sys

from standard_webhooks import run
from svix.webhooks import Webhook

if __name__ == "__main__":
    sys.exit(run(Webhook))
