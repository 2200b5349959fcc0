"""The real task worker (`manage.py db_worker`) as a subprocess on the test database.

    with TaskWorker(settings) as worker:
        ... record notifications, wait for outcomes ...
        worker.kill()      # SIGKILL, as a crash would
        worker.start()     # a fresh process

Tests that use it need `@pytest.mark.django_db(transaction=True)`, so that
what they write is committed and the worker sees it.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url():
    """The URL of the database this test runs on (the test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def worker_environment(app_settings):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings_test",
        "DATABASE_URL": database_url(),
        "CONN_MAX_AGE": "0",
    }
    for name, value in app_settings.items():
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        env[f"WEBHOOKS_{name}"] = str(value)
    return env


class TaskWorker:
    def __init__(self, app_settings, processes=1, log_path=None):
        self.env = worker_environment(app_settings)
        self.processes = processes
        self.log_path = log_path or ROOT / "var" / "test-worker.log"
        self.running = []

    def start(self):
        log = open(self.log_path, "ab")  # noqa: SIM115  (kept for the process)
        for _ in range(self.processes):
            self.running.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "manage.py",
                        "db_worker",
                        "--queue-name=*",
                        "--no-reload",
                        "--interval=0.05",
                        "--no-startup-delay",
                        "--verbosity=0",
                    ],
                    cwd=ROOT,
                    env=self.env,
                    stdout=log,
                    stderr=log,
                )
            )
        log.close()
        return self

    def kill(self):
        for process in self.running:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        self.running = []

    def stop(self):
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def wait_until(condition, timeout=30, step=0.05):
    """Poll `condition` until it is true; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
