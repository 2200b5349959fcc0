"""The cost of the outbound client's guards, against a bare requests.post.

Both send the same test request to the same loopback server, one after
another. The floor is requests.post with a fresh session each time (as
send() uses); the figure is outbound.send(), which adds the address guard,
the overall deadline, the capped read and masking.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings_test")

import django

django.setup()

import requests  # noqa: E402

from tests.servers import Receiver  # noqa: E402
from webhooks_app import envelope, outbound  # noqa: E402
from webhooks_app.validation import build_test_envelope  # noqa: E402

ROUNDS = 5
REQUESTS = 200


def floor(url, body):
    with requests.Session() as session:
        session.post(url, data=body, timeout=(5, 10)).content  # noqa: B018


def guarded(url, body):
    outbound.send(outbound.OutboundRequest(url, body, {"X-Key": "secret-value"}))


def per_request_ms(function, url, body):
    started = time.perf_counter()
    for _ in range(REQUESTS):
        function(url, body)
    return (time.perf_counter() - started) * 1000 / REQUESTS


def main():
    body = envelope.dumps(build_test_envelope()).encode()
    with Receiver() as receiver:
        floors, figures = [], []
        for _ in range(ROUNDS):
            floors.append(per_request_ms(floor, receiver.url, body))
            figures.append(per_request_ms(guarded, receiver.url, body))
    low, high = statistics.median(floors), statistics.median(figures)
    print(
        f"outbound.send to loopback: {high:.2f} ms per request; "
        f"floor (requests.post): {low:.2f} ms; ratio {high / low:.2f}"
    )


if __name__ == "__main__":
    main()
