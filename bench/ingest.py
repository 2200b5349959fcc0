"""Inbound throughput: the real endpoint against a bare insert, on one server.

Serves the demo site under gunicorn (2 workers) on SQLite and then on
PostgreSQL, posts distinct example notifications from 16 concurrent clients,
and in the same run posts the same bodies to a bare view that inserts the raw
body as one row, alternating the two over several rounds and keeping the best
round of each, as the machine may be busy with other work. Prints
notifications/s, the floor, their ratio, errors, and the workers' memory at
start and end.

The clients write HTTP/1.1 on plain sockets: a full client library costs
about 0.9 ms of CPU a request on this kind of machine, more than the floor's
server does, so with one the floor would measure the clients. The CPU the
clients took per request is printed too.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "tests" / "payloads"
TOKEN = "bench-inbound-token"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_NAME = "webhooks_bench_ingest"
CLIENTS = 16


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bodies(count, offset):
    templates = [json.loads(p.read_text()) for p in sorted(PAYLOADS.glob("*.json"))]
    result = []
    for i in range(count):
        payload = json.loads(json.dumps(templates[i % len(templates)]))
        payload["header"]["model_id"] = 1000 + i % 50
        payload["payload"]["run"]["started_at"] = (
            f"2025-01-01T00:00:00.{offset + i:06d}" if offset + i < 10**6 else "x"
        )
        result.append(json.dumps(payload).encode())
    return result


def environment(database_url):
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "PYTHONPATH": f"{ROOT / 'bench'}:{ROOT}",
        "SECRET_KEY": "bench-only",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOKS_INBOUND_TOKEN": TOKEN,
        "SECURE_SSL_REDIRECT": "false",
    }


def prepare(database_url, env):
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    ddl = "CREATE TABLE bench_floor (id {pk}, body TEXT NOT NULL)"
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            db.execute(ddl.format(pk="INTEGER PRIMARY KEY AUTOINCREMENT"))
    else:
        with psycopg.connect(
            database_url.replace("postgres://", "postgresql://")
        ) as db:
            db.execute(ddl.format(pk="BIGSERIAL PRIMARY KEY"))


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def workers_of(master):
    out = subprocess.run(
        ["pgrep", "-P", str(master)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in out.stdout.split()]


def start_server(env, port):
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "project.wsgi:application",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--no-control-socket",
        ],
        cwd=ROOT / "bench",
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            if len(workers_of(server.pid)) == 2:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def post(port, path, body):
    """One POST on a new connection, as gunicorn's sync workers close each one.

    Returns the status code and the body of the reply.
    """
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        reply = bytearray()
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, content = bytes(reply).partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1] if head.startswith(b"HTTP/") else b"0"
    return int(status), content


def blast(port, path, payloads):
    """POST every body from CLIENTS threads; return (seconds, client CPU, errors)."""
    errors = []

    def send(chunk):
        for body in chunk:
            try:
                status, content = post(port, path, body)
                if status != 200 or json.loads(content).get("duplicate"):
                    errors.append(f"{status} {content[:120]!r}")
            except (OSError, ValueError) as error:
                errors.append(repr(error))

    chunks = [payloads[i::CLIENTS] for i in range(CLIENTS)]
    cpu = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(send, chunks))
    return time.perf_counter() - started, time.process_time() - cpu, errors


def run(label, database_url, count, round_count):
    env = environment(database_url)
    prepare(database_url, env)
    port = free_port()
    server = start_server(env, port)
    try:
        workers = workers_of(server.pid)
        blast(port, "/bench/floor/", bodies(200, 900_000))  # warm-up
        memory_start = rss_kib(workers)
        rounds = []
        client_cpu = 0.0
        for round_number in range(round_count):
            offset = round_number * count
            floor_s, floor_cpu, floor_errors = blast(
                port, "/bench/floor/", bodies(count, offset)
            )
            real_s, real_cpu, real_errors = blast(
                port, "/webhooks/nannyml/", bodies(count, offset)
            )
            client_cpu += floor_cpu + real_cpu
            rounds.append((count / real_s, count / floor_s, real_errors + floor_errors))
        memory_end = rss_kib(workers)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    real = max(r[0] for r in rounds)
    floor = max(r[1] for r in rounds)
    errors = [e for r in rounds for e in r[2]]
    # Each round's own ratio too: how far the machine's load moved the figures.
    each = sorted(r[0] / r[1] for r in rounds)
    print(
        f"{label:<10} notifications/s {real:8.1f}   floor {floor:8.1f}   "
        f"ratio {real / floor:5.2f} (rounds {each[0]:.2f}-{each[-1]:.2f})   "
        f"errors {len(errors)}   "
        f"worker memory {memory_start / 1024:.0f} MiB -> {memory_end / 1024:.0f} MiB   "
        f"client CPU {client_cpu / (2 * count * round_count) * 1000:.2f} ms/request"
    )
    for error in errors[:5]:
        print("   ", error)
    return real / floor, errors


def postgres_url():
    with psycopg.connect(PG_ADMIN, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {PG_NAME}")
    return f"postgres://postgres@127.0.0.1:5432/{PG_NAME}"


def drop_postgres():
    with psycopg.connect(PG_ADMIN, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="posts per round")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds; the best of each is kept"
    )
    args = parser.parse_args()
    print(f"Inbound endpoint vs bare insert; {CLIENTS} clients, gunicorn 2 workers")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(
            run("SQLite", f"sqlite:///{tmp}/bench.sqlite3", args.count, args.rounds)
        )
    try:
        results.append(run("PostgreSQL", postgres_url(), args.count, args.rounds))
    finally:
        drop_postgres()
    failed = any(ratio < 0.6 or errors for ratio, errors in results)
    print("target: ratio >= 0.6 and no errors:", "missed" if failed else "met")


if __name__ == "__main__":
    main()
