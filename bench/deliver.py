"""Delivery throughput: 1,000 notifications fanned out to 3 webhooks.

Two `db_worker` processes deliver to a local receiver. The floor is the same
number of plain `requests.post` calls made from 2 processes to the same
receiver. Then the same again with a fourth webhook that never answers: the
three healthy webhooks should finish within 1.5x of their time without it.

    .venv/bin/python bench/deliver.py            # SQLite under var/
    DATABASE_URL=postgres://... .venv/bin/python bench/deliver.py
"""

import datetime
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_FILE = ROOT / "var" / "bench-deliver.sqlite3"
os.environ.setdefault("DATABASE_URL", f"sqlite:///{DB_FILE}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DEBUG", "true")
os.environ["WEBHOOKS_LOG_LEVEL"] = "WARNING"

NOTIFICATIONS = 1000
HEALTHY = 3
WORKERS = 2
TARGET_RATIO = 0.5
SLOWDOWN_LIMIT = 1.5


def post_many(url, count):
    import requests

    for _ in range(count):
        requests.post(url, data=b'{"x": 1}', timeout=10).raise_for_status()


def floor(url, total):
    """Plain requests.post calls from WORKERS processes: calls per second."""
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        pool.starmap(post_many, [(url, total // WORKERS)] * WORKERS)
    return total / (time.perf_counter() - started)


def reset_database():
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "sqlite":
        connection.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{DB_FILE}{suffix}").unlink(missing_ok=True)
    else:
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)


def record(count):
    from tests.conftest import load_payload
    from webhooks_app.recording import record_notification

    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    payload = load_payload("run_completed_seed")
    for n in range(count):
        when = start + datetime.timedelta(hours=n)
        payload["payload"]["run"]["started_at"] = when.isoformat()
        record_notification(payload)


def start_workers():
    env = {**os.environ, "WEBHOOKS_LOG_LEVEL": "ERROR"}
    command = [
        sys.executable,
        "manage.py",
        "db_worker",
        "--queue-name=*",
        "--no-reload",
        "--no-startup-delay",
        "--verbosity=0",
    ]
    return [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        for _ in range(WORKERS)
    ]


def stop(workers):
    for worker in workers:
        worker.kill()
    for worker in workers:
        worker.wait()


def run_round(receivers, hanging=None):
    """Record, deliver, and return the healthy webhooks' deliveries per second."""
    from django.db.models import Max, Min

    from webhooks_app.models import Delivery, DeliveryAttempt, Webhook

    reset_database()
    for n, receiver in enumerate(receivers):
        Webhook.objects.create(name=f"healthy {n}", url=receiver.url, enabled=True)
    if hanging:
        Webhook.objects.create(name="hanging", url=hanging.url, enabled=True)
    record(NOTIFICATIONS)
    healthy = Delivery.objects.filter(webhook__name__startswith="healthy")
    expected = NOTIFICATIONS * len(receivers)

    workers = start_workers()
    try:
        while healthy.filter(status=Delivery.Status.DELIVERED).count() < expected:
            time.sleep(0.2)
    finally:
        stop(workers)

    span = DeliveryAttempt.objects.filter(delivery__in=healthy).aggregate(
        first=Min("started_at"), last=Max("started_at")
    )
    seconds = (span["last"] - span["first"]).total_seconds()
    return expected / seconds, seconds


def main():
    import django

    django.setup()
    from tests.servers import HANG, Receiver

    receivers = [Receiver() for _ in range(HEALTHY)]
    total = NOTIFICATIONS * HEALTHY
    try:
        plain = floor(receivers[0].url, total)
        rate, seconds = run_round(receivers)
        with Receiver(default=HANG) as hanging:
            _, with_hanging = run_round(receivers, hanging)
    finally:
        for receiver in receivers:
            receiver.close()

    print(f"deliver: {total} deliveries ({NOTIFICATIONS} notifications x {HEALTHY})")
    print(f"  delivered        {rate:8.0f} deliveries/s ({seconds:.1f} s)")
    print(f"  floor            {plain:8.0f} requests.post/s from {WORKERS} processes")
    print(f"  ratio            {rate / plain:8.2f}  (target >= {TARGET_RATIO})")
    slowdown = with_hanging / seconds
    print(f"  + hanging hook   {with_hanging:8.1f} s for the healthy three")
    print(f"  slowdown         {slowdown:8.2f}x (limit {SLOWDOWN_LIMIT}x)")


if __name__ == "__main__":
    main()
