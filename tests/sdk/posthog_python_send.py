"""Sends a known set of events with the real posthog-python SDK, then prints what it sent as one JSON line.

Usage: posthog_python_send.py <host> <token> <capture_mode v0|v1> <run id>
Every error the SDK reports (on_error, its own log) ends up in the output, so the test can require none.
"""
import json
import logging
import sys

from posthog import Posthog

host, token, mode, run = sys.argv[1:5]
errors = []
logged = []


class Collect(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            logged.append(record.getMessage())


logging.getLogger("posthog").addHandler(Collect())

client = Posthog(
    token,
    host=host,
    capture_mode=mode,
    on_error=lambda err, batch: errors.append(repr(err)),
    flush_at=4,
    flush_interval=0.1,
)
sent = []
for i in range(5):
    sent.append(client.capture("python_event", distinct_id=f"{run}-user", properties={"i": i, "mode": mode}))
sent.append(client.set(distinct_id=f"{run}-user", properties={"email": f"{run}@example.com"}))
sent.append(client.capture("python_purchase", distinct_id=f"{run}-user", properties={"amount": 42.5, "$set_once": {"first": True}}))
client.flush()
client.shutdown()
print(json.dumps({"uuids": [str(u) for u in sent], "errors": errors, "logged": logged}))
