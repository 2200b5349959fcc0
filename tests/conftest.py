import json
import os
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


# Secrets of the `webhook` fixture, to look for where they must not appear.
TOKEN = "bearer-secret-abcdef123456"
HEADER_SECRET = "header-secret-987654321"


@pytest.fixture
def webhook(receiver, db):
    """A webhook to the `receiver`, with a bearer token and two header pairs."""
    from webhooks_app.models import Webhook

    webhook = Webhook.objects.create(
        name="ops", url=receiver.url, auth=Webhook.Auth.BEARER, bearer_token=TOKEN
    )
    webhook.headers.create(key="X-Api-Key", value=HEADER_SECRET, is_secret=True)
    webhook.headers.create(key="X-Route", value="team-a", is_secret=False)
    return webhook


@pytest.fixture
def receiver():
    """A real HTTP server on loopback; see tests/servers.py."""
    from tests.servers import Receiver

    with Receiver() as server:
        yield server


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; skipped, saying why, without it."""
    if not CHROMIUM.exists():
        pytest.skip(
            "No browser at /usr/bin/chromium: install Debian's chromium package "
            "(apt-get install chromium) to run the browser tests."
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # that tests make between page actions are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-results" / "screenshots"


def screenshot(page, name):
    """Save a full-page screenshot under test-results/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
