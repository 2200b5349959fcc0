import base64
import datetime
import ipaddress
import logging
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import HANG, Receiver, Reply
from webhooks_app import outbound
from webhooks_app.outbound import OutboundRequest, send

SECRET = "s3cr3t-value-that-must-stay-hidden"


def post(url, headers=None, secret=()):
    return send(OutboundRequest(url, b'{"a":1}', headers or {}, frozenset(secret)))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def drip_server():
    """A server that sends `prefix`, then one byte at a time, forever."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(prefix):
        connection, _ = listener.accept()
        connection.recv(65536)
        with connection:
            connection.sendall(prefix)
            while not stop.wait(0.02):
                try:
                    connection.sendall(b"x")
                except OSError:
                    return

    def start(prefix):
        threading.Thread(target=serve, args=(prefix,), daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/"

    yield start
    stop.set()
    listener.close()


@pytest.fixture
def self_signed_server(tmp_path):
    """An HTTPS server on loopback whose certificate no CA signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "server.pem"
    pem.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with Receiver() as receiver:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem)
        server = receiver._server
        server.socket = context.wrap_socket(server.socket, server_side=True)
        yield receiver


def test_tls_certificates_are_verified(self_signed_server):
    result = post(f"https://127.0.0.1:{self_signed_server.port}/hook")

    assert result.error_code == "connection_error"
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert self_signed_server.requests == []


def test_a_post_carries_the_body_json_type_and_a_user_agent(receiver):
    result = post(receiver.url, {"X-Route": "team-a"})

    request = receiver.requests[0]
    assert result.status_code == 200 and result.body_start == "ok"
    assert request.method == "POST" and request.body == b'{"a":1}'
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("webhooks_app/")
    assert request.headers["X-Route"] == "team-a"


@pytest.mark.parametrize("status", [201, 204, 404, 500])
def test_any_status_is_reported_with_the_start_of_the_body(receiver, status):
    body = b"" if status == 204 else b"the server says why"
    receiver.script(Reply(status, body))

    result = post(receiver.url)

    assert result.status_code == status
    assert result.body_start == body.decode()
    assert result.error_code == ""


def test_a_redirect_is_not_followed_and_its_location_kept(receiver):
    receiver.script(Reply(301, b"", headers={"Location": receiver.url + "/moved"}))

    result = post(receiver.url)

    assert result.status_code == 301
    assert result.location == receiver.url + "/moved"
    assert len(receiver.requests) == 1


def test_a_server_that_never_answers_times_out(receiver, settings):
    settings.WEBHOOKS_READ_TIMEOUT = 0.3
    receiver.script(HANG)

    result = post(receiver.url)

    assert result.status_code is None
    assert result.error_code == "timeout"
    assert "did not answer in time" in result.error


def test_a_refused_connection_is_reported():
    result = post(f"http://127.0.0.1:{free_port()}/hook")

    assert result.error_code == "connection_error"
    assert "refused" in result.error.lower()


def test_a_name_that_does_not_resolve_is_reported():
    result = post("http://no-such-host.invalid/hook")

    assert result.error_code == "connection_error"
    assert result.status_code is None


def test_an_invalid_host_name_is_reported_not_raised():
    result = post(f"http://{'a' * 70}.example/hook")

    assert result.error_code == "connection_error"
    assert "too long" in result.error


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("http://169.254.10.20/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://100.100.100.200/", "cloud metadata"),
        ("http://0.0.0.0/", "not an address of a single host"),
    ],
)
def test_link_local_and_metadata_addresses_are_always_refused(url, why):
    result = post(url)

    assert result.error_code == "address_refused"
    assert why in result.error
    assert "Refused to connect to" in result.error


def test_loopback_is_allowed_by_default(receiver):
    assert post(receiver.url).status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_addresses_are_refused_when_the_setting_says_so(
    receiver, settings, host
):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False

    result = post(f"http://{host}:{receiver.port}/hook")

    # A name is checked by the address it resolved to, the one connected to.
    assert result.error_code == "address_refused"
    assert "loopback" in result.error
    assert receiver.requests == []


def test_a_huge_answer_is_read_no_further_than_the_cap(receiver):
    receiver.script(Reply(200, b"start", stream_bytes=50 * 1024 * 1024))

    result = post(receiver.url)

    assert result.status_code == 200
    assert len(result.body_start) == 64 * 1024
    assert result.body_start.startswith("start")
    assert not result.complete


def test_a_body_that_drips_forever_stops_at_the_overall_deadline(drip_server, settings):
    settings.WEBHOOKS_TOTAL_TIMEOUT = 0.5
    url = drip_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")

    result = post(url)

    assert result.status_code == 200
    assert not result.complete
    assert 0 < len(result.body_start) < 65536


def test_headers_that_drip_forever_time_out_at_the_overall_deadline(
    drip_server, settings
):
    settings.WEBHOOKS_TOTAL_TIMEOUT = 0.5
    url = drip_server(b"HTTP/1.1 200 OK\r\nX-Slow: ")

    result = post(url)

    assert result.status_code is None
    assert result.error_code == "timeout"


def test_a_header_value_with_a_line_break_is_never_sent(receiver):
    result = post(receiver.url, {"X-Evil": "a\r\nX-Injected: yes"})

    assert result.error_code == "request_error"
    assert receiver.requests == []


def test_secret_values_are_masked_in_the_report_and_redacted_from_the_answer(
    receiver, caplog
):
    caplog.set_level(logging.DEBUG)
    receiver.script(Reply(500, f"bad token {SECRET}".encode()))

    result = post(receiver.url, {"X-Api-Key": SECRET}, secret={"x-api-key"})

    assert receiver.requests[0].headers["X-Api-Key"] == SECRET
    assert result.request.masked_headers()["X-Api-Key"] == "••••" + SECRET[-4:]
    assert SECRET not in result.body_start
    assert SECRET not in caplog.text


def test_credentials_in_the_address_go_as_a_masked_basic_header(receiver):
    url = f"http://robot:{SECRET}@127.0.0.1:{receiver.port}/hook"

    result = post(url)

    sent = receiver.requests[0].headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(f"robot:{SECRET}".encode()).decode()
    assert SECRET not in result.request.display_url()
    assert SECRET not in str(result.request.masked_headers())


def test_mask_shows_at_most_the_last_four_characters():
    assert outbound.mask("abcdefghijkl") == "••••ijkl"
    assert outbound.mask("short") == "••••"


@pytest.fixture
def keep_alive_server():
    """One connection: answers its first request, then drips the second's headers."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen = {"connections": 0, "requests": 0}
    stop = threading.Event()

    def serve():
        connection, _ = listener.accept()
        seen["connections"] += 1
        with connection:
            connection.recv(65536)
            seen["requests"] += 1
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            connection.recv(65536)
            seen["requests"] += 1
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not stop.wait(0.02):
                try:
                    connection.sendall(b"x")
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/", seen
    stop.set()
    listener.close()


def test_a_kept_alive_connection_still_has_the_overall_deadline(
    keep_alive_server, settings
):
    settings.WEBHOOKS_TOTAL_TIMEOUT = 0.5
    url, seen = keep_alive_server
    request = OutboundRequest(url, b"{}")

    with outbound.session() as client:
        first = send(request, client)
        second = send(request, client)

    assert first.status_code == 200
    assert (second.status_code, second.error_code) == (None, "timeout")
    assert seen == {"connections": 1, "requests": 2}


def test_a_session_sends_no_cookie_back(receiver):
    receiver.script(Reply(200, headers={"Set-Cookie": "session=abc; Path=/"}))
    request = OutboundRequest(receiver.url, b"{}")

    with outbound.session() as client:
        send(request, client)
        send(request, client)

    assert "Cookie" not in receiver.requests[1].headers
