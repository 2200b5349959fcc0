import json
import logging

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from tests.conftest import HEADER_SECRET, TOKEN
from tests.servers import HANG, Reply
from webhooks_app import envelope
from webhooks_app.models import Alert, Notification, Webhook, WebhookHeader
from webhooks_app.models.notifications import WEBHOOK_TEST
from webhooks_app.validation import validate, validate_and_record

pytestmark = pytest.mark.django_db


def test_a_200_answer_is_valid_and_recorded(webhook, receiver):
    report = validate_and_record(webhook)

    webhook.refresh_from_db()
    assert report.valid and report.status_code == 200
    assert webhook.validation_status_code == 200 and webhook.validated_at
    assert webhook.is_validated()


def test_the_test_request_is_the_envelope_of_a_webhook_test(webhook, receiver):
    validate(webhook)

    request = receiver.requests[0]
    parsed = envelope.parse(json.loads(request.body))
    assert request.method == "POST"
    assert parsed.notification_type == WEBHOOK_TEST
    assert parsed.alerts == []
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-Api-Key"] == HEADER_SECRET
    assert request.headers["X-Route"] == "team-a"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(201, b"created"), "answered 201 Created; only 200 is valid"),
        (Reply(204, b""), "answered 204 No Content; only 200 is valid"),
        (Reply(404, b"no such hook"), "answered 404 Not Found"),
        (Reply(500, b"it broke"), "answered 500 Internal Server Error"),
        (
            Reply(301, b"", headers={"Location": "https://elsewhere.example/x"}),
            "a redirect to https://elsewhere.example/x",
        ),
    ],
    ids=lambda value: getattr(value, "status", None),
)
def test_any_other_answer_is_invalid_and_says_why(webhook, receiver, reply, expected):
    receiver.script(reply)

    report = validate_and_record(webhook)

    webhook.refresh_from_db()
    assert not report.valid
    assert expected in report.message
    assert report.body_preview == reply.body.decode()
    assert webhook.validation_status_code == reply.status
    assert expected in webhook.validation_error
    assert not webhook.is_validated()


def test_no_answer_is_invalid_with_the_reason(webhook, receiver, settings):
    settings.WEBHOOKS_READ_TIMEOUT = 0.3
    receiver.script(HANG)

    report = validate_and_record(webhook)

    assert not report.valid and report.status_code is None
    assert "did not answer in time" in report.message


def test_the_report_masks_secrets_and_shows_plain_values(webhook, receiver, caplog):
    caplog.set_level(logging.DEBUG, logger="webhooks_app")
    receiver.script(Reply(401, f"token {TOKEN} refused".encode()))

    report = validate(webhook)

    shown = json.dumps(
        [report.sent_headers, report.message, report.body_preview, report.sent_url]
    )
    assert TOKEN not in shown and HEADER_SECRET not in shown
    assert TOKEN not in caplog.text and HEADER_SECRET not in caplog.text
    assert report.sent_headers["Authorization"] == "••••" + TOKEN[-4:]
    assert report.sent_headers["X-Api-Key"] == "••••" + HEADER_SECRET[-4:]
    assert report.sent_headers["X-Route"] == "team-a"


def test_a_change_of_address_or_headers_makes_the_validation_stale(webhook):
    validate_and_record(webhook)

    assert webhook.is_validated()
    webhook.headers.filter(key="X-Route").update(is_secret=True)
    assert webhook.is_validated()  # what is sent did not change
    webhook.headers.create(key="X-New", value="1")
    assert not webhook.validation_is_current()
    webhook.headers.filter(key="X-New").delete()
    assert webhook.is_validated()
    webhook.url += "/other"
    assert not webhook.is_validated()


def test_basic_credentials_become_an_authorization_header(receiver):
    webhook = Webhook(
        name="b",
        url=receiver.url,
        auth=Webhook.Auth.BASIC,
        basic_username="robot",
        basic_password="pa55word-long",
    )

    assert webhook.request_headers([]) == {
        "Authorization": "Basic cm9ib3Q6cGE1NXdvcmQtbG9uZw=="
    }
    assert webhook.secret_header_names([]) == {"Authorization"}


@pytest.mark.django_db(transaction=True)
def test_a_webhook_pointing_at_this_sites_own_endpoint_validates(
    live_server, inbound_token
):
    webhook = Webhook.objects.create(
        name="self",
        url=f"{live_server.url}/webhooks/nannyml/",
        auth=Webhook.Auth.BEARER,
        bearer_token=inbound_token,
    )

    report = validate_and_record(webhook)

    assert report.valid, report.message
    notification = Notification.objects.get()
    assert notification.is_test
    assert Alert.objects.count() == 0
    assert json.loads(report.body_preview)["id"] == notification.pk


@pytest.mark.django_db(transaction=True)
def test_this_sites_endpoint_with_a_wrong_token_is_invalid(live_server):
    webhook = Webhook(
        name="self",
        url=f"{live_server.url}/webhooks/nannyml/",
        auth=Webhook.Auth.BEARER,
        bearer_token="wrong-token-value",
    )

    report = validate(webhook, headers=[])

    assert report.status_code == 401
    assert Notification.objects.count() == 0


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("Host", "reserved_header"),
        ("content-length", "reserved_header"),
        ("Content-Type", "reserved_header"),
        ("Transfer-Encoding", "reserved_header"),
        ("webhook-id", "reserved_header"),
        ("Webhook-Timestamp", "reserved_header"),
        ("WEBHOOK-SIGNATURE", "reserved_header"),
        ("X Space", "invalid_header_name"),
        ("X-Colon:", "invalid_header_name"),
        ("", "blank"),
    ],
)
def test_header_names_the_client_owns_or_that_are_invalid_are_refused(key, code):
    header = WebhookHeader(webhook=Webhook(), key=key, value="v")

    with pytest.raises(ValidationError) as caught:
        header.full_clean(exclude=["webhook"])

    assert caught.value.error_dict["key"][0].code == code


def test_the_refusal_of_a_reserved_header_says_why():
    header = WebhookHeader(webhook=Webhook(), key="webhook-signature", value="v")

    with pytest.raises(ValidationError) as caught:
        header.full_clean(exclude=["webhook"])

    assert "signature header that delivery adds" in str(caught.value)


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b"])
def test_header_values_with_line_breaks_are_refused(value):
    header = WebhookHeader(webhook=Webhook(), key="X-A", value=value)

    with pytest.raises(ValidationError) as caught:
        header.full_clean(exclude=["webhook"])

    assert caught.value.error_dict["value"][0].code == "header_injection"


def test_a_header_name_is_unique_per_webhook_whatever_its_case(webhook):
    with pytest.raises(IntegrityError):
        WebhookHeader.objects.create(webhook=webhook, key="x-api-key", value="2")
