"""A real HTTP server on loopback, for tests of outbound calls.

    with Receiver() as receiver:
        receiver.script(Reply(500), Reply(500), Reply(200, b"ok"))
        ... code under test posts to receiver.url ...
        assert [r.body for r in receiver.requests] == [...]

Each request takes the next scripted reply; once the script is used up, the
default reply (200 "ok") answers. A reply can hang (never answer until the
server closes), wait before answering, redirect, or stream a body of any size.
"""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict = field(default_factory=dict)
    # Seconds to wait before answering; None means never answer.
    delay: float | None = 0
    # Stream this many bytes of filler after `body` (for huge answers).
    stream_bytes: int = 0
    # Called (in the server's thread) once the request is in, before answering.
    before: object = None


HANG = Reply(delay=None)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict
    body: bytes
    received_at: float
    # The client's (address, port): the same for requests on one connection.
    client: tuple = ()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes; with Nagle's algorithm the
    # body would wait for the client's delayed ACK (40 ms) on a kept-alive
    # connection, which web servers avoid the same way.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def _handle(self):
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = receiver._take(
            RecordedRequest(
                self.command,
                self.path,
                dict(self.headers.items()),
                body,
                time.time(),
                self.client_address,
            )
        )
        if reply.before is not None:
            reply.before()
        if reply.delay is None:
            receiver._closed.wait()
            return
        if reply.delay:
            receiver._closed.wait(reply.delay)
        self.send_response(reply.status)
        headers = {"Content-Type": "text/plain", **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body) + reply.stream_bytes))
        self.end_headers()
        try:
            self.wfile.write(reply.body)
            chunk = b"x" * 65536
            left = reply.stream_bytes
            while left > 0 and not receiver._closed.is_set():
                self.wfile.write(chunk[:left])
                left -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _handle


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records what it receives."""

    def __init__(self, port=0, default=None):
        self.default = default or Reply()
        self.requests = []
        self._script = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._arrived = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._server.receiver = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def script(self, *replies):
        with self._lock:
            self._script.extend(replies)

    def _take(self, request):
        with self._lock:
            self.requests.append(request)
            self._arrived.notify_all()
            return self._script.pop(0) if self._script else self.default

    def wait_for(self, count, timeout=30):
        """Wait until `count` requests have arrived; return whether they did."""
        with self._lock:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    def close(self):
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
