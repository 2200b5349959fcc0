import json

import pytest
from django.urls import reverse

from tests.conftest import load_payload, screenshot
from webhooks_app.models import InboundToken, Notification
from webhooks_app.recording import record_notification

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def recorded(seed_payload):
    seed_payload["header"]["model_name"] = HOSTILE
    body = json.dumps(seed_payload)
    record_notification(seed_payload, body=body, source=Notification.Source.INBOUND)
    record_notification(load_payload("run_completed_regression"))
    return Notification.objects.get(model__nannyml_id=28740)


@pytest.mark.parametrize(
    "query",
    ["", "country", "28740", "not-a-number", "%", "'", "\\", "a" * 500, "__", "\x00"],
    ids=repr,
)
def test_notification_search_never_errors(admin_client, recorded, query):
    response = admin_client.get(
        reverse("admin:webhooks_app_notification_changelist"), {"q": query}
    )

    assert response.status_code == 200


def test_notification_search_finds_by_metric_and_model(admin_client, recorded):
    url = reverse("admin:webhooks_app_notification_changelist")

    by_metric = admin_client.get(url, {"q": "km_driven"})
    by_id = admin_client.get(url, {"q": "28740"})

    assert by_metric.context["cl"].result_count == 1
    assert by_id.context["cl"].result_count == 1


def test_notification_detail_shows_alerts_and_escaped_body(admin_client, recorded):
    response = admin_client.get(
        reverse("admin:webhooks_app_notification_change", args=[recorded.pk])
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "specificity" in html and "univariate_drift" in html
    assert "&quot;model_id&quot;: 28740" in html  # pretty-printed, escaped
    assert HOSTILE not in html


def test_the_model_filter_and_type_filter_work(admin_client, recorded):
    url = reverse("admin:webhooks_app_notification_changelist")

    response = admin_client.get(url, {"notification_type": "RUN_COMPLETED"})

    assert response.context["cl"].result_count == 2


def test_notifications_cannot_be_added_or_changed(admin_client, recorded):
    add = admin_client.get(reverse("admin:webhooks_app_notification_add"))
    change = admin_client.post(
        reverse("admin:webhooks_app_notification_change", args=[recorded.pk]),
        {"notification_type": "X"},
    )

    assert add.status_code == 403
    assert change.status_code == 403
    recorded.refresh_from_db()
    assert recorded.notification_type == "RUN_COMPLETED"


def test_a_new_inbound_token_is_shown_once_and_stored_as_a_hash(admin_client):
    response = admin_client.post(
        reverse("admin:webhooks_app_inboundtoken_add"), {"name": "prod"}, follow=True
    )

    message = str(next(iter(response.context["messages"])))
    token = message.split(" is ", 1)[1].split(".", 1)[0]
    row = InboundToken.objects.get()
    assert token.startswith("whin_")
    assert token not in row.token_hash
    assert row.hint == token[-4:]
    listing = admin_client.get(reverse("admin:webhooks_app_inboundtoken_changelist"))
    assert token not in listing.content.decode()


def test_revoking_tokens_reports_the_count(admin_client):
    for name in ("a", "b"):
        row = InboundToken(name=name)
        row.set_new_token()
        row.save()

    response = admin_client.post(
        reverse("admin:webhooks_app_inboundtoken_changelist"),
        {
            "action": "revoke",
            "_selected_action": [t.pk for t in InboundToken.objects.all()],
        },
        follow=True,
    )

    assert "Revoked 2 tokens." in response.content.decode()
    assert InboundToken.objects.active().count() == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_reads_a_notification_in_the_browser(
    live_server, page, admin_user, seed_payload
):
    record_notification(seed_payload, body=json.dumps(seed_payload))

    page.goto(f"{live_server.url}/admin/login/?next=/admin/webhooks_app/notification/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.click("#result_list tbody a")

    assert page.locator("pre").inner_text().startswith("{")
    assert "specificity" in page.content()
    screenshot(page, "admin-notification")
