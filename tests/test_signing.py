import datetime
import json
import time

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook as StandardWebhook

from tests.conftest import load_payload
from webhooks_app import delivery as delivering
from webhooks_app import signing
from webhooks_app.checks import check_settings
from webhooks_app.models import (
    Delivery,
    DeliveryAttempt,
    InboundMessage,
    InboundToken,
    Notification,
    Webhook,
)
from webhooks_app.recording import record_notification

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def standard_headers(body, secret=SECRET, message_id="msg_1", when=None):
    when = when or datetime.datetime.now(tz=datetime.UTC)
    signature = StandardWebhook(secret).sign(message_id, when, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }


def relative_to_now(change):
    """Whole numbers become timestamps that many seconds from now.

    Taken when the test runs, not when it is collected: a long suite would
    otherwise bring a timestamp meant to be in the future back into range.
    """
    return {
        name: str(int(time.time()) + value) if isinstance(value, int) else value
        for name, value in change.items()
    }


# The signing module against the reference implementation


def test_a_signature_verifies_with_standardwebhooks():
    body = b'{"a": "\xc3\xa9"}'

    headers = signing.signature_headers("msg_x", body, [SECRET])

    assert StandardWebhook(SECRET).verify(body, headers) == {"a": "é"}


def test_a_generated_secret_is_whsec_and_usable_by_standardwebhooks():
    secret = signing.generate_secret()
    headers = signing.signature_headers("msg_y", b"{}", [secret])

    assert secret.startswith("whsec_") and signing.is_valid_secret(secret)
    assert StandardWebhook(secret).verify(b"{}", headers) == {}


def test_our_verify_accepts_what_standardwebhooks_signs():
    body = '{"x": 1}'

    message_id = signing.verify(
        [SECRET], standard_headers(body), body.encode(), tolerance=300
    )

    assert message_id == "msg_1"


@pytest.mark.parametrize(
    "change, code",
    [
        ({"webhook-signature": "v1,AAAA"}, "signature_invalid"),
        ({"webhook-signature": ""}, "signature_missing"),
        ({"webhook-timestamp": "yesterday"}, "timestamp_out_of_range"),
        ({"webhook-timestamp": -301}, "timestamp_out_of_range"),
        ({"webhook-timestamp": +400}, "timestamp_out_of_range"),
    ],
)
def test_verify_refuses_bad_signatures(change, code):
    body = '{"x": 1}'
    headers = {**standard_headers(body), **relative_to_now(change)}

    with pytest.raises(signing.SignatureError) as refused:
        signing.verify([SECRET], headers, body.encode(), tolerance=300)

    assert refused.value.code == code
    assert SECRET not in str(refused.value)


def test_a_changed_body_does_not_verify():
    headers = standard_headers('{"x": 1}')

    with pytest.raises(signing.SignatureError):
        signing.verify([SECRET], headers, b'{"x": 2}', tolerance=300)


# The inbound endpoint, for a sender with a signing secret


@pytest.fixture
def signing_token(db):
    token = InboundToken(name="upstream site", signing_secret=SECRET)
    plain = token.set_new_token()
    token.save()
    return plain


def signed_post(post_notification, token, body=None, **header_changes):
    body = body or json.dumps(load_payload("run_completed_seed"))
    headers = {**standard_headers(body), **header_changes}
    return post_notification(body, token=token, headers=headers)


@pytest.mark.django_db
def test_a_signed_request_is_recorded(post_notification, signing_token):
    response = signed_post(post_notification, signing_token)

    assert response.status_code == 200
    assert response.json()["duplicate"] is False
    assert InboundMessage.objects.get().message_id == "msg_1"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, code",
    [
        ({"webhook-signature": "v1,bm90IGl0"}, "signature_invalid"),
        ({"webhook-id": ""}, "signature_missing"),
        (
            {"webhook-timestamp": str(int(time.time()) - 6 * 60)},
            "timestamp_out_of_range",
        ),
    ],
)
def test_a_badly_signed_request_is_refused_and_records_nothing(
    post_notification, signing_token, change, code
):
    response = signed_post(post_notification, signing_token, **change)

    assert response.status_code == 401
    assert response.json()["code"] == code
    assert SECRET not in response.content.decode()
    assert not Notification.objects.exists()
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db
def test_an_unsigned_request_is_refused_when_the_token_signs(
    post_notification, signing_token
):
    response = post_notification(
        load_payload("run_completed_seed"), token=signing_token
    )

    assert response.status_code == 401
    assert response.json()["code"] == "signature_missing"


@pytest.mark.django_db
def test_a_repeated_webhook_id_is_dropped(post_notification, signing_token):
    first = signed_post(post_notification, signing_token)
    other_run = load_payload("run_completed_seed")
    other_run["payload"]["run"]["started_at"] = "2024-06-01T00:00:00"

    again = signed_post(post_notification, signing_token, body=json.dumps(other_run))

    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_a_rejected_body_does_not_use_up_its_webhook_id(
    post_notification, signing_token
):
    bad = signed_post(post_notification, signing_token, body='{"header": {}}')
    good = signed_post(post_notification, signing_token)

    assert bad.status_code == 400
    assert good.status_code == 200
    assert good.json()["duplicate"] is False


@pytest.mark.django_db
def test_the_settings_token_can_require_signatures(post_notification, settings):
    settings.WEBHOOKS_INBOUND_SIGNING_SECRET = SECRET
    body = json.dumps(load_payload("run_completed_seed"))

    unsigned = post_notification(body)
    signed = post_notification(body, headers=standard_headers(body))

    assert unsigned.status_code == 401
    assert signed.status_code == 200


@pytest.mark.django_db
def test_a_token_without_a_secret_still_needs_no_signature(post_notification):
    assert post_notification(load_payload("run_completed_seed")).status_code == 200


@pytest.mark.django_db
def test_an_invalid_secret_cannot_be_saved_on_a_token():
    from django.core.exceptions import ValidationError

    token = InboundToken(name="x", signing_secret="whsec_not base64!")
    token.set_new_token()

    with pytest.raises(ValidationError) as refused:
        token.full_clean()

    assert refused.value.error_dict["signing_secret"][0].code == (
        "invalid_signing_secret"
    )


# Two sites chained: one's delivery is the other's inbound notification


@pytest.mark.django_db(transaction=True)
def test_a_delivery_to_another_site_of_this_app_is_accepted_once(live_server):
    webhook = Webhook.objects.create(
        name="downstream", url=f"{live_server.url}/webhooks/nannyml/", enabled=True
    )
    token = InboundToken(name="upstream", signing_secret=webhook.signing_secret)
    webhook.headers.create(key="Authorization", value=f"Bearer {token.set_new_token()}")
    token.save()
    record_notification(load_payload("run_completed_seed"))
    delivery = Delivery.objects.get()

    delivering.drain(webhook.pk)
    delivering.resend(Delivery.objects.filter(pk=delivery.pk))
    delivering.drain(webhook.pk)

    answers = [
        (a.status_code, json.loads(a.response_body)["duplicate"])
        for a in DeliveryAttempt.objects.order_by("number")
    ]
    # Both sites share this test's database, so the first is a duplicate run
    # already, and the second a repeated webhook-id.
    assert answers == [(200, True), (200, True)]
    assert InboundMessage.objects.get().message_id == f"msg_{delivery.message_id.hex}"


# Settings and housekeeping


@pytest.mark.django_db
def test_prune_deletes_old_attempts_only(settings):
    settings.WEBHOOKS_ATTEMPTS_KEEP_DAYS = 7
    webhook = Webhook.objects.create(name="w", url="https://w.example.com/")
    notification = record_notification(load_payload("run_completed_seed")).notification
    delivery = Delivery.objects.create(notification=notification, webhook=webhook)
    now = timezone.now()
    for age in (1, 6, 8, 30):
        DeliveryAttempt.objects.create(
            delivery=delivery, started_at=now - datetime.timedelta(days=age)
        )
    InboundMessage.objects.create(
        message_id="old", received_at=now - datetime.timedelta(hours=1)
    )
    InboundMessage.objects.create(message_id="new")

    call_command("webhooks_prune_attempts")

    assert DeliveryAttempt.objects.count() == 2
    assert list(InboundMessage.objects.values_list("message_id", flat=True)) == ["new"]


@pytest.mark.parametrize(
    "name, value, check_id",
    [
        ("RETRY_SCHEDULE", [], "webhooks_app.E020"),
        ("RETRY_SCHEDULE", [0, -5], "webhooks_app.E020"),
        ("RETRY_SCHEDULE", "0,5", "webhooks_app.E020"),
        ("RETRY_JITTER", 1.5, "webhooks_app.E021"),
        ("STALE_AFTER", 0, "webhooks_app.E022"),
        ("INBOUND_SIGNING_SECRET", "plain-text", "webhooks_app.E023"),
        ("SITE_URL", "", "webhooks_app.W020"),
    ],
)
def test_checks_report_bad_delivery_settings(settings, name, value, check_id):
    setattr(settings, f"WEBHOOKS_{name}", value)

    found = [message.id for message in check_settings()]

    assert check_id in found


# The inbound token's signing secret in the admin


@pytest.fixture
def token_with_secret(db):
    token = InboundToken(name="upstream", signing_secret=SECRET)
    token.set_new_token()
    token.save()
    return token


def change_token(admin_client, token, **data):
    return admin_client.post(
        reverse("admin:webhooks_app_inboundtoken_change", args=[token.pk]),
        {"name": token.name, "signing_secret": "", **data},
    )


@pytest.mark.django_db
def test_the_token_page_never_shows_the_signing_secret(admin_client, token_with_secret):
    page = admin_client.get(
        reverse("admin:webhooks_app_inboundtoken_change", args=[token_with_secret.pk])
    )

    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    assert SECRET.removeprefix("whsec_") not in page.content.decode()


@pytest.mark.django_db
def test_saving_a_token_without_a_secret_keeps_the_one_it_has(
    admin_client, token_with_secret
):
    response = change_token(admin_client, token_with_secret, name="renamed")

    token_with_secret.refresh_from_db()
    assert response.status_code == 302
    assert (token_with_secret.name, token_with_secret.signing_secret) == (
        "renamed",
        SECRET,
    )


@pytest.mark.django_db
def test_a_token_secret_can_be_removed_or_replaced_but_not_with_nonsense(
    admin_client, token_with_secret
):
    other = signing.generate_secret()

    nonsense = change_token(admin_client, token_with_secret, signing_secret="x" * 10)
    replaced = change_token(admin_client, token_with_secret, signing_secret=other)
    token_with_secret.refresh_from_db()
    kept = token_with_secret.signing_secret
    removed = change_token(admin_client, token_with_secret, remove_signing_secret="on")
    token_with_secret.refresh_from_db()

    assert nonsense.status_code == 200
    assert "whsec_" in nonsense.context["adminform"].form.errors["signing_secret"][0]
    assert replaced.status_code == removed.status_code == 302
    assert kept == other
    assert token_with_secret.signing_secret == ""
