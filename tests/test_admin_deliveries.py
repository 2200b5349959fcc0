import datetime

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.conftest import load_payload, screenshot
from webhooks_app.models import Delivery, DeliveryAttempt, Webhook
from webhooks_app.recording import record_notification

pytestmark = pytest.mark.django_db

SECRET_HEADER = "Bearer do-not-show-this-value"


@pytest.fixture
def webhooks():
    return [
        Webhook.objects.create(name=name, url=f"https://{name}.example.com/hook")
        for name in ("alpha", "beta")
    ]


def record_day(day):
    payload = load_payload("run_completed_seed")
    payload["payload"]["run"]["started_at"] = f"2024-01-{day:02d}T10:00:00"
    return record_notification(payload).notification


@pytest.fixture
def deliveries(webhooks):
    Webhook.objects.update(enabled=True)
    for day in range(1, 4):
        record_day(day)
    Webhook.objects.update(enabled=False)
    failed = Delivery.objects.filter(webhook__name="alpha").order_by("pk").first()
    Delivery.objects.filter(pk=failed.pk).update(
        status=Delivery.Status.FAILED,
        finished_at=timezone.now() - datetime.timedelta(hours=1),
        attempt_count=1,
    )
    DeliveryAttempt.objects.create(
        delivery=failed,
        request_headers={"Authorization": "••••alue", "webhook-id": "msg_1"},
        status_code=404,
        response_body="<b>not here</b>",
    )
    return Delivery.objects.order_by("pk")


def changelist(client, **query):
    return client.get(reverse("admin:webhooks_app_delivery_changelist"), query)


def test_deliveries_are_listed_per_webhook_per_notification_and_status(
    admin_client, deliveries, webhooks
):
    alpha = webhooks[0]
    notification = deliveries.first().notification

    per_webhook = changelist(admin_client, webhook__id__exact=alpha.pk)
    per_notification = changelist(admin_client, notification__id__exact=notification.pk)
    failed = changelist(admin_client, status__exact="failed")

    assert per_webhook.context["cl"].result_count == 3
    assert per_notification.context["cl"].result_count == 2
    assert failed.context["cl"].result_count == 1
    assert "Next attempt" in per_webhook.content.decode()


def test_the_delivery_list_takes_the_same_queries_for_more_rows(
    admin_client, deliveries, webhooks
):
    with CaptureQueriesContext(connection) as few:
        changelist(admin_client)
    Webhook.objects.update(enabled=True)
    for day in range(10, 25):
        record_day(day)

    with CaptureQueriesContext(connection) as many:
        changelist(admin_client)

    assert len(many) == len(few)


@pytest.mark.parametrize("query", ["abc", "1", "'", "%", "a" * 300, "\x00"], ids=repr)
def test_delivery_search_never_errors(admin_client, deliveries, query):
    assert changelist(admin_client, q=query).status_code == 200


def test_a_delivery_page_shows_its_attempts_escaped_and_masked(
    admin_client, deliveries
):
    failed = deliveries.get(status="failed")

    response = admin_client.get(
        reverse("admin:webhooks_app_delivery_change", args=[failed.pk])
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "404" in html and "&lt;b&gt;not here&lt;/b&gt;" in html
    assert "••••alue" in html
    assert SECRET_HEADER not in html


def test_resend_now_queues_the_selected_deliveries(admin_client, deliveries):
    failed = deliveries.get(status="failed")

    response = admin_client.post(
        reverse("admin:webhooks_app_delivery_changelist"),
        {"action": "resend_now", "_selected_action": [failed.pk]},
        follow=True,
    )

    failed.refresh_from_db()
    assert response.status_code == 200
    assert failed.status == Delivery.Status.PENDING
    assert failed.finished_at is None
    assert failed.retry_base == failed.attempt_count == 1
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Queued 1 delivery to be sent again."]


def test_resend_failed_since_a_time_queues_only_those(
    admin_client, deliveries, webhooks, django_capture_on_commit_callbacks
):
    alpha, beta = webhooks
    old = deliveries.filter(webhook=beta).first()
    Delivery.objects.filter(pk=old.pk).update(
        status=Delivery.Status.GAVE_UP,
        finished_at=timezone.now() - datetime.timedelta(days=3),
    )
    url = reverse("admin:webhooks_app_delivery_resend_failed")
    since = (timezone.now() - datetime.timedelta(days=1)).strftime("%Y-%m-%d %H:%M")

    form = admin_client.get(url, {"webhook": alpha.pk})
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(url, {"webhook": alpha.pk, "since": since})
        too_late = admin_client.post(url, {"webhook": beta.pk, "since": since})

    assert form.status_code == 200
    assert done.status_code == too_late.status_code == 302
    assert set(deliveries.values_list("status", flat=True)) == {"pending", "gave_up"}
    queued = DBTaskResult.objects.filter(
        task_path__in=["webhooks_app.tasks.deliver", "webhooks_app.tasks.drain"]
    )
    assert [(t.task_path, t.args_kwargs["args"]) for t in queued] == [
        ("webhooks_app.tasks.drain", [alpha.pk])
    ]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"webhook": "999999", "since": "2024-01-01 00:00"},
        {"webhook": "x", "since": "yesterday"},
        {"since": "2999-01-01 00:00"},
    ],
    ids=["empty", "unknown webhook", "nonsense", "future"],
)
def test_resend_failed_refuses_bad_input_and_changes_nothing(
    admin_client, deliveries, webhooks, data
):
    if "since" in data and "webhook" not in data:
        data = {**data, "webhook": webhooks[0].pk}
    before = list(deliveries.values_list("status", "finished_at"))

    response = admin_client.post(
        reverse("admin:webhooks_app_delivery_resend_failed"), data
    )

    assert response.status_code == 200
    assert response.context["form"].errors
    assert list(deliveries.values_list("status", "finished_at")) == before


# The webhook admin's delivery side, on a webhook admin built like the real one


def admin_request(user, method="get"):
    request = getattr(RequestFactory(), method)("/admin/")
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one_a_day(
    admin_user, webhooks
):
    model_admin = admin.site.get_model_admin(Webhook)
    request = admin_request(admin_user, "post")
    old = webhooks[0].signing_secret

    model_admin.get_actions(request)["rotate_signing_secret"].func(
        model_admin, request, Webhook.objects.filter(pk=webhooks[0].pk)
    )

    webhook = Webhook.objects.get(pk=webhooks[0].pk)
    shown = [str(m) for m in get_messages(request)]
    assert webhook.signing_secret != old
    assert webhook.previous_signing_secret == old
    assert webhook.previous_secret_expires_at > timezone.now() + datetime.timedelta(
        hours=23
    )
    assert len(shown) == 1 and webhook.signing_secret in shown[0]


def test_the_webhook_page_has_a_delivery_section_without_the_secret(
    admin_user, webhooks
):
    model_admin = admin.site.get_model_admin(Webhook)
    webhook = webhooks[0]
    Webhook.objects.filter(pk=webhook.pk).update(
        disabled_at=timezone.now(), disabled_reason="The server answered 410 Gone."
    )
    webhook.refresh_from_db()
    request = admin_request(admin_user)

    fieldsets = model_admin.get_fieldsets(request, webhook)
    shown = [
        str(getattr(model_admin, name)(webhook)) for name in fieldsets[-1][1]["fields"]
    ]

    assert [name for name, _ in fieldsets][-1] == "Delivery"
    assert not any(webhook.signing_secret in text for text in shown)
    assert webhook.signing_secret[-4:] in shown[0]
    assert "410 Gone" in shown[1]
    assert f"webhook__id__exact={webhook.pk}" in shown[2]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_resends_failed_deliveries_in_the_browser(
    live_server, page, admin_user, webhooks
):
    Webhook.objects.update(enabled=True)
    record_day(1)
    Delivery.objects.update(
        status=Delivery.Status.GAVE_UP,
        finished_at=timezone.now(),
        next_attempt_at=None,
        attempt_count=8,
    )

    page.goto(f"{live_server.url}/admin/login/?next=/admin/webhooks_app/delivery/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.click("text=Resend failed deliveries")
    page.select_option("#id_webhook", label="alpha")
    page.fill("#id_since", "2000-01-01 00:00")
    screenshot(page, "admin-resend-failed")
    page.click("input[type=submit]")
    message = page.locator(".messagelist li").inner_text()

    assert message == "Queued 1 failed delivery to alpha again."
    statuses = dict(Delivery.objects.values_list("webhook__name", "status"))
    assert statuses == {"alpha": "pending", "beta": "gave_up"}
    screenshot(page, "admin-deliveries")
