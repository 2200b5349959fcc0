"""The one outbound HTTP client: webhook validation and delivery both use it.

Every call has connect and read timeouts and an overall deadline, follows no
redirect, reads at most `WEBHOOKS_RESPONSE_MAX_BYTES` of the answer, checks
each address it connects to (see `refusal_reason`), and masks secret header
values in what it reports.
"""

import base64
import contextlib
import heapq
import http.cookiejar
import ipaddress
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import _set_socket_options
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from webhooks_app import __version__
from webhooks_app.conf import app_settings

logger = logging.getLogger("webhooks_app.outbound")

USER_AGENT = f"webhooks_app/{__version__}"
MASK_VISIBLE = 4
READ_CHUNK = 8192

# Instance metadata services hand out cloud credentials to whoever asks from
# inside the machine: AWS, GCP, Azure, OpenStack and others (169.254.169.254,
# inside link-local anyway), AWS over IPv6, Alibaba, Azure's wire server.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
    )
)


def mask(value):
    """A secret as it may be shown: at most its last four characters."""
    value = str(value)
    if len(value) <= MASK_VISIBLE * 2:
        return "••••"
    return "••••" + value[-MASK_VISIBLE:]


def mask_url(url):
    """`url` with the password of any `user:password@` part masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username}:{mask(unquote(parts.password))}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def redact(text, secrets):
    """`text` with every secret value in it masked (servers may echo them)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MASK_VISIBLE:
            text = text.replace(secret, mask(secret))
    return text


def refusal_reason(address):
    """Why connecting to `address` (an `ipaddress` address) is refused, or ''."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return _("it is a cloud metadata service address")
    if address.is_link_local:
        return _("it is a link-local address (169.254.0.0/16 or fe80::/10)")
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return _("it is not an address of a single host")
    if app_settings.ALLOW_PRIVATE_ADDRESSES:
        return ""
    if address.is_loopback:
        return _("it is a loopback address and WEBHOOKS_ALLOW_PRIVATE_ADDRESSES is off")
    if address.is_private or not address.is_global:
        return _("it is a private address and WEBHOOKS_ALLOW_PRIVATE_ADDRESSES is off")
    return ""


class AddressRefused(NewConnectionError):
    """The address guard refused every address the host name resolved to."""

    def __init__(self, conn, address, reason):
        self.address = str(address)
        self.reason = reason
        super().__init__(conn, self.describe())

    def describe(self):
        return _("Refused to connect to %(address)s: %(reason)s.") % {
            "address": self.address,
            "reason": self.reason,
        }


class _Refused(Exception):
    def __init__(self, address, reason):
        super().__init__(address, reason)
        self.address, self.reason = address, reason


def _guarded_socket(host, port, timeout, source_address, socket_options):
    """Connect to the first allowed address of `host`; check it before connecting.

    The address checked is the address connected to: nothing is resolved
    twice, so a name that resolves differently the second time (DNS
    rebinding) gains nothing.
    """
    refused = error = None
    for family, kind, proto, _name, sockaddr in socket.getaddrinfo(
        host.strip("[]"), port, 0, socket.SOCK_STREAM
    ):
        address = ipaddress.ip_address(sockaddr[0].partition("%")[0])
        reason = refusal_reason(address)
        if reason:
            refused = _Refused(address, reason)
            continue
        sock = socket.socket(family, kind, proto)
        try:
            _set_socket_options(sock, socket_options)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as failure:
            error = failure
            sock.close()
    raise refused or error or OSError("getaddrinfo returned no address")


class _GuardMixin:
    def _new_conn(self):
        try:
            sock = _guarded_socket(
                self._dns_host,
                self.port,
                self.timeout,
                self.source_address,
                self.socket_options,
            )
        except _Refused as refused:
            raise AddressRefused(self, refused.address, refused.reason) from None
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except UnicodeError as error:
            message = f"{self.host!r} is not a valid host name."
            raise NewConnectionError(self, message) from error
        except TimeoutError as error:
            message = f"Connection to {self.host} timed out."
            raise ConnectTimeoutError(self, message) from error
        except OSError as error:
            raise NewConnectionError(self, f"Failed to connect: {error}") from error
        return sock


class _GuardedHTTPConnection(_GuardMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardMixin, HTTPSConnection):
    pass


class _WatchedPoolMixin:
    def _get_conn(self, timeout=None):
        # Every call's deadline covers the connection it uses, whether new or
        # kept alive from an earlier call of the same `Session`.
        connection = super()._get_conn(timeout)
        _Deadline.watch(connection)
        return connection


class _GuardedHTTPPool(_WatchedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(_WatchedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


class _Deadline:
    """Closes the connections of one call when its overall time is up.

    The read timeout applies to each read from the socket, so a server that
    drips a byte at a time would otherwise never time out.
    """

    _current = threading.local()

    def __init__(self, seconds):
        self.connections = []
        self.expired = False
        self.seconds = seconds
        self.at = None
        self.done = False

    def __enter__(self):
        _Deadline._current.deadline = self
        self.at = time.monotonic() + self.seconds
        _watchdog.watch(self)
        return self

    def __exit__(self, *exc_info):
        self.done = True
        _Deadline._current.deadline = None

    def __lt__(self, other):
        return self.at < other.at

    @classmethod
    def watch(cls, connection):
        deadline = getattr(cls._current, "deadline", None)
        if deadline is not None:
            deadline.connections.append(connection)

    def _expire(self):
        self.expired = True
        for connection in self.connections:
            # The socket may be gone already, or not connected yet.
            with contextlib.suppress(AttributeError, OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One thread per process that expires the deadlines of calls still running.

    Cheaper than a timer thread per call, which costs about as much to start
    as a call to a nearby server takes. Calls that end mark their deadline
    done, and the thread drops it when it comes round.
    """

    def __init__(self):
        self._changed = threading.Condition()
        self._deadlines = []
        self._pid = None

    def watch(self, deadline):
        with self._changed:
            if self._pid != os.getpid():
                # First use in this process (a forked one starts without the thread).
                self._pid = os.getpid()
                self._deadlines = []
                threading.Thread(
                    target=self._run, name="webhooks-deadlines", daemon=True
                ).start()
            heapq.heappush(self._deadlines, deadline)
            if self._deadlines[0] is deadline:
                self._changed.notify()

    def _run(self):
        while True:
            with self._changed:
                due = self._next_due()
            try:
                due._expire()
            except Exception:
                logger.exception("Could not end a call past its deadline")

    def _next_due(self):
        """Wait for the first deadline that passes while its call still runs."""
        deadlines = self._deadlines
        while True:
            while deadlines and deadlines[0].done:
                heapq.heappop(deadlines)
            if not deadlines:
                self._changed.wait()
                continue
            left = deadlines[0].at - time.monotonic()
            if left <= 0:
                return heapq.heappop(deadlines)
            self._changed.wait(left)


_watchdog = _Watchdog()


@dataclass
class OutboundRequest:
    url: str
    body: bytes
    headers: dict = field(default_factory=dict)
    # Names (any case) of the headers whose values are secret.
    secret_headers: frozenset = frozenset()
    method: str = "POST"

    def masked_headers(self):
        secret = self.secret_names()
        return {
            name: mask(value) if name.lower() in secret else value
            for name, value in self.all_headers().items()
        }

    def all_headers(self):
        headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            **self.headers,
        }
        # Credentials in the address go as a header we can mask, not as
        # requests' own, which would be sent but never shown.
        parts = urlsplit(self.url)
        if parts.password is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password)}"
            token = base64.b64encode(credentials.encode()).decode()
            headers.setdefault("Authorization", f"Basic {token}")
        return headers

    def secret_names(self):
        names = {name.lower() for name in self.secret_headers}
        if urlsplit(self.url).password is not None:
            names.add("authorization")
        return names

    def secret_values(self):
        secret = self.secret_names()
        values = [v for k, v in self.all_headers().items() if k.lower() in secret]
        for value in list(values):
            # An Authorization value is also a scheme and a credential.
            values.extend(value.split(" ", 1)[1:])
        return values

    def target_url(self):
        """The address without its credentials, which go as a header instead."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    def display_url(self):
        return mask_url(self.url)


@dataclass
class OutboundResult:
    request: OutboundRequest
    status_code: int | None = None
    reason: str = ""
    # The start of the response body, decoded leniently, secrets masked.
    body_start: str = ""
    response_headers: dict = field(default_factory=dict)
    # A short machine-readable reason when no usable answer came, and a sentence.
    error_code: str = ""
    error: str = ""
    elapsed_ms: int = 0
    # Whether the whole answer was read (False when cut at the cap or deadline).
    complete: bool = True

    @property
    def ok(self):
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def location(self):
        return self.response_headers.get("Location", "")


def session():
    """A requests session configured as every outbound call needs it.

    Calls that pass the same session to `send` keep connections alive between
    them. Each connection was checked by the address guard when it was made,
    so a kept one still goes to the address that was checked.
    """
    client = requests.Session()
    # Proxies and .netrc from the environment would change both where the
    # request goes and what it carries.
    client.trust_env = False
    # TLS is always verified; a site with its own CA names its bundle the way
    # requests users expect.
    client.verify = os.environ.get("REQUESTS_CA_BUNDLE") or True
    # Nothing a server sets is sent back to it, or to anyone.
    client.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    adapter = _GuardedAdapter(max_retries=0)
    client.mount("http://", adapter)
    client.mount("https://", adapter)
    return client


def send(request, client=None):
    """Send `request`; return an `OutboundResult`, never raising for network trouble.

    `client` is a `session()` to send through; by default a fresh one.
    """
    result = OutboundResult(request=request)
    started = time.monotonic()
    with _Deadline(app_settings.TOTAL_TIMEOUT) as deadline:
        try:
            if client is None:
                with session() as client:
                    _exchange(client, request, result, deadline)
            else:
                _exchange(client, request, result, deadline)
        except requests.RequestException as error:
            _describe_failure(result, error, deadline)
    result.elapsed_ms = round((time.monotonic() - started) * 1000)
    secrets = request.secret_values()
    result.body_start = redact(result.body_start, secrets)
    result.error = redact(result.error, secrets)
    # Callers log the outcome that matters to them; this is for tracing.
    logger.debug(
        "%s %s: %s in %d ms",
        request.method,
        request.display_url(),
        result.status_code or result.error_code,
        result.elapsed_ms,
    )
    return result


def _exchange(client, request, result, deadline):
    with client.request(
        request.method,
        request.target_url(),
        data=request.body,
        headers=request.all_headers(),
        timeout=(app_settings.CONNECT_TIMEOUT, app_settings.READ_TIMEOUT),
        allow_redirects=False,
        stream=True,
    ) as response:
        if deadline.expired:
            # The headers ended because the deadline closed the socket.
            raise requests.Timeout()
        result.status_code = response.status_code
        result.reason = response.reason or ""
        result.response_headers = dict(response.headers)
        result.body_start, result.complete = _read_capped(response, deadline)


def _read_capped(response, deadline):
    """The start of the body: at most the cap, and only until the deadline."""
    cap = app_settings.RESPONSE_MAX_BYTES
    received = bytearray()
    complete = False
    try:
        while len(received) < cap and not deadline.expired:
            # read1 returns what one read from the socket gave, so the
            # deadline is looked at between reads of a slow answer.
            chunk = response.raw.read1(min(READ_CHUNK, cap - len(received)))
            if not chunk:
                complete = not deadline.expired
                break
            received += chunk
    except (OSError, HTTPError):
        # An answer cut short is still an answer: its start is reported.
        logger.info("Reading the answer of %s stopped early", response.url)
    text = bytes(received).decode(response.encoding or "utf-8", errors="replace")
    return text, complete


def _describe_failure(result, error, deadline):
    refused = _find_cause(error, AddressRefused)
    if refused is not None:
        result.error_code = "address_refused"
        result.error = refused.describe()
    elif deadline.expired:
        result.error_code = "timeout"
        result.error = _("The exchange took longer than %(seconds)s seconds.") % {
            "seconds": app_settings.TOTAL_TIMEOUT
        }
    elif isinstance(error, requests.Timeout):
        result.error_code = "timeout"
        result.error = _("The server did not answer in time.")
    elif isinstance(error, requests.ConnectionError):
        result.error_code = "connection_error"
        result.error = _("Could not connect: %(reason)s") % {"reason": _reason(error)}
    else:
        result.error_code = "request_error"
        result.error = _("The request failed: %(reason)s") % {"reason": _reason(error)}


def _find_cause(error, kind):
    """The exception of type `kind` among the causes of `error`, or None."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        nested = [*current.args, getattr(current, "reason", None)]
        nested += [current.__cause__, current.__context__]
        pending += [
            cause
            for cause in nested
            if isinstance(cause, BaseException) and id(cause) not in seen
        ]
    return None


def _reason(error):
    # The innermost cause reads best ("Connection refused", "Name or service
    # not known") and never carries request headers.
    cause = error
    while cause.__context__ is not None and cause.__context__ is not cause:
        cause = cause.__context__
    return str(cause) or error.__class__.__name__
