import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.django_db

ASK_HEALTHZ = """
import django, json
django.setup()
from django.test import Client
response = Client().get("/healthz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def test_healthz_answers_200_when_the_database_answers(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True}


def test_healthz_answers_503_when_the_database_cannot_be_reached(tmp_path):
    # A separate process whose database is a PostgreSQL port nobody listens on.
    env = {
        "DJANGO_SETTINGS_MODULE": "project.settings_test",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:9/unreachable",
        "PATH": "/usr/bin:/bin",
        "ALLOWED_HOSTS": "testserver",
        "WEBHOOKS_LOG_LEVEL": "CRITICAL",
    }
    done = subprocess.run(
        [sys.executable, "-c", ASK_HEALTHZ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {
        "status": 503,
        "body": {"status": "unavailable", "database": False},
    }
