import json
from pathlib import Path

import pytest

PAYLOADS = Path(__file__).parent / "payloads"
PAYLOAD_NAMES = sorted(path.stem for path in PAYLOADS.glob("*.json"))


def load_payload(name):
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@pytest.fixture
def seed_payload():
    return load_payload("run_completed_seed")


@pytest.fixture
def inbound_token(settings):
    return settings.WEBHOOKS_INBOUND_TOKEN


@pytest.fixture
def post_notification(client, inbound_token):
    """POST a body to the inbound endpoint with the site's token."""

    def post(body, token=inbound_token, content_type="application/json", **extra):
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        return client.post(
            "/webhooks/nannyml/", body, content_type=content_type, **headers, **extra
        )

    return post
