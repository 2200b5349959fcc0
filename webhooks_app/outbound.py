"""The one outbound HTTP client: webhook validation and delivery both use it.

Every call has connect and read timeouts, follows no redirect, reads at most
`WEBHOOKS_RESPONSE_MAX_BYTES` of the answer, and masks secret header values in
what it reports.
"""

import logging
import time
from dataclasses import dataclass, field

import requests

from webhooks_app import __version__
from webhooks_app.conf import app_settings

logger = logging.getLogger("webhooks_app.outbound")

USER_AGENT = f"webhooks_app/{__version__}"
MASK_VISIBLE = 4


def mask(value):
    """A secret as it may be shown: at most its last four characters."""
    value = str(value)
    if len(value) <= MASK_VISIBLE * 2:
        return "••••"
    return "••••" + value[-MASK_VISIBLE:]


@dataclass
class OutboundRequest:
    url: str
    body: bytes
    headers: dict = field(default_factory=dict)
    # Names (any case) of the headers whose values are secret.
    secret_headers: frozenset = frozenset()
    method: str = "POST"

    def masked_headers(self):
        secret = {name.lower() for name in self.secret_headers}
        return {
            name: mask(value) if name.lower() in secret else value
            for name, value in self.all_headers().items()
        }

    def all_headers(self):
        return {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            **self.headers,
        }


@dataclass
class OutboundResult:
    request: OutboundRequest
    status_code: int | None = None
    # The start of the response body, decoded leniently.
    body_start: str = ""
    response_headers: dict = field(default_factory=dict)
    # A short machine-readable reason when no usable answer came, and a sentence.
    error_code: str = ""
    error: str = ""
    elapsed_ms: int = 0

    @property
    def ok(self):
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def location(self):
        return self.response_headers.get("Location", "")


def send(request):
    """Send `request`; return an `OutboundResult`, never raising for network trouble."""
    result = OutboundResult(request=request)
    started = time.monotonic()
    try:
        with requests.request(
            request.method,
            request.url,
            data=request.body,
            headers=request.all_headers(),
            timeout=(app_settings.CONNECT_TIMEOUT, app_settings.READ_TIMEOUT),
            allow_redirects=False,
            stream=True,
        ) as response:
            result.status_code = response.status_code
            result.response_headers = dict(response.headers)
            result.body_start = _read_capped(response)
    except requests.Timeout:
        result.error_code = "timeout"
        result.error = "The server did not answer in time."
    except requests.ConnectionError as error:
        result.error_code = "connection_error"
        result.error = f"Could not connect: {_reason(error)}"
    except requests.RequestException as error:
        result.error_code = "request_error"
        result.error = f"The request failed: {_reason(error)}"
    result.elapsed_ms = round((time.monotonic() - started) * 1000)
    return result


def _read_capped(response):
    cap = app_settings.RESPONSE_MAX_BYTES
    received = bytearray()
    for chunk in response.iter_content(chunk_size=8192):
        received += chunk
        if len(received) >= cap:
            break
    return bytes(received[:cap]).decode(response.encoding or "utf-8", errors="replace")


def _reason(error):
    # The innermost cause reads best ("Connection refused", "Name or service
    # not known") and never carries request headers.
    cause = error
    while cause.__context__ is not None and cause.__context__ is not cause:
        cause = cause.__context__
    return str(cause) or error.__class__.__name__
