import logging
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.conftest import HEADER_SECRET, TOKEN, screenshot
from tests.servers import Receiver, Reply
from webhooks_app.models import Webhook

pytestmark = pytest.mark.django_db

PASSWORD = "basic-password-555666777"
ADD_URL = reverse("admin:webhooks_app_webhook_add")
LIST_URL = reverse("admin:webhooks_app_webhook_changelist")


def change_url(webhook):
    return reverse("admin:webhooks_app_webhook_change", args=[webhook.pk])


def form_data(url, *, headers=(), enabled=False, existing=0, **fields):
    """The POST of the webhook form: fields, then header rows as dicts."""
    data = {
        "name": "ops",
        "url": url,
        "auth": "",
        "basic_username": "",
        "basic_password": "",
        "bearer_token": "",
        "notification_types": "RUN_COMPLETED",
        "headers-TOTAL_FORMS": str(len(headers)),
        "headers-INITIAL_FORMS": str(existing),
        "headers-MIN_NUM_FORMS": "0",
        "headers-MAX_NUM_FORMS": "1000",
        **fields,
    }
    if enabled:
        data["enabled"] = "on"
    for index, row in enumerate(headers):
        data.update({f"headers-{index}-{name}": v for name, v in row.items()})
    return data


def two_headers():
    return [
        {"key": "X-Api-Key", "value": HEADER_SECRET, "is_secret": "on"},
        {"key": "X-Route", "value": "team-a"},
    ]


def saved_rows(webhook):
    """Header rows of a saved webhook as the change form posts them back."""
    return [
        {
            "id": h.pk,
            "webhook": webhook.pk,
            "key": h.key,
            "value": "",
            "is_secret": "on",
        }
        if h.is_secret
        else {"id": h.pk, "webhook": webhook.pk, "key": h.key, "value": h.value}
        for h in webhook.headers.all()
    ]


def test_a_webhook_with_header_rows_is_added_without_a_request(admin_client, receiver):
    data = form_data(receiver.url, headers=two_headers(), auth="bearer")
    data["bearer_token"] = TOKEN

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 302
    webhook = Webhook.objects.get()
    assert webhook.request_headers() == {
        "X-Api-Key": HEADER_SECRET,
        "X-Route": "team-a",
        "Authorization": f"Bearer {TOKEN}",
    }
    assert webhook.secret_header_names() == {"X-Api-Key", "Authorization"}
    assert receiver.requests == []


def test_stored_secrets_never_reach_the_pages(admin_client, webhook, caplog):
    caplog.set_level(logging.DEBUG)
    validate = form_data(webhook.url, headers=saved_rows(webhook), auth="bearer")
    validate.update({"headers-INITIAL_FORMS": "2", "_validate": "1"})

    pages = [
        admin_client.get(change_url(webhook)),
        admin_client.get(LIST_URL),
        admin_client.post(change_url(webhook), validate),
    ]

    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert TOKEN not in html and HEADER_SECRET not in html
    assert "••••" + TOKEN[-4:] in pages[0].content.decode()  # a hint, no more
    assert 'value="team-a"' in pages[0].content.decode()  # not secret: in full
    assert pages[2].context["adminform"].form.validation_report.valid
    assert TOKEN not in caplog.text and HEADER_SECRET not in caplog.text


def test_validate_checks_the_unsaved_form_and_keeps_every_row(admin_client, receiver):
    receiver.script(Reply(500, b"it broke"))
    data = form_data(receiver.url, headers=two_headers(), _validate="1")

    response = admin_client.post(ADD_URL, data)

    html = response.content.decode()
    assert response.status_code == 200
    assert Webhook.objects.count() == 0
    assert receiver.requests[0].headers["X-Api-Key"] == HEADER_SECRET
    report = response.context["adminform"].form.validation_report
    assert not report.valid and report.status_code == 500
    assert "it broke" in html and "only 200 is valid" in html
    assert "X-Route: team-a" in html and "X-Api-Key: ••••4321" in html
    assert 'value="X-Api-Key"' in html and 'value="team-a"' in html
    assert HEADER_SECRET not in html  # typed, so kept, but sealed


def test_a_sealed_secret_survives_a_second_submission(admin_client, receiver):
    first = admin_client.post(
        ADD_URL, form_data(receiver.url, headers=two_headers(), _validate="1")
    )
    html = first.content.decode()
    sealed = re.search(r'name="headers-0-value" value="(sealed:[^"]+)"', html)
    rows = two_headers()
    rows[0]["value"] = sealed.group(1)

    admin_client.post(ADD_URL, form_data(receiver.url, headers=rows))

    assert Webhook.objects.get().request_headers()["X-Api-Key"] == HEADER_SECRET


def test_enabling_runs_the_validation_and_refuses_a_non_200(admin_client, receiver):
    receiver.script(Reply(503, b"maintenance"))

    response = admin_client.post(
        ADD_URL, form_data(receiver.url, headers=two_headers(), enabled=True)
    )

    assert response.status_code == 200
    assert Webhook.objects.count() == 0
    errors = response.context["adminform"].form.errors["enabled"]
    assert "Not enabled" in errors[0] and "503" in errors[0]
    assert "maintenance" in response.content.decode()


def test_enabling_with_a_200_saves_and_records_the_validation(admin_client, receiver):
    response = admin_client.post(
        ADD_URL, form_data(receiver.url, headers=two_headers(), enabled=True)
    )

    assert response.status_code == 302
    webhook = Webhook.objects.get()
    assert webhook.enabled and webhook.is_validated()
    assert len(receiver.requests) == 1


def test_a_validated_configuration_is_enabled_without_another_request(
    admin_client, webhook, receiver
):
    data = form_data(webhook.url, headers=saved_rows(webhook), auth="bearer")
    data["headers-INITIAL_FORMS"] = "2"
    admin_client.post(change_url(webhook), {**data, "_validate": "1"})

    response = admin_client.post(change_url(webhook), {**data, "enabled": "on"})

    assert response.status_code == 302
    webhook.refresh_from_db()
    assert webhook.enabled
    assert len(receiver.requests) == 1


def test_editing_the_headers_of_an_enabled_webhook_validates_again(
    admin_client, webhook, receiver
):
    Webhook.objects.filter(pk=webhook.pk).update(enabled=True)
    receiver.script(Reply(401, b"unknown key"))
    rows = saved_rows(webhook)
    rows[1]["value"] = "team-b"
    data = form_data(webhook.url, headers=rows, auth="bearer", enabled=True)
    data["headers-INITIAL_FORMS"] = "2"

    response = admin_client.post(change_url(webhook), data)

    assert response.status_code == 200
    assert "Not enabled" in response.context["adminform"].form.errors["enabled"][0]
    assert webhook.headers.get(key="X-Route").value == "team-a"
    webhook.refresh_from_db()
    assert webhook.validation_status_code == 401


def test_an_unchanged_enabled_webhook_saves_without_a_request(
    admin_client, webhook, receiver
):
    from webhooks_app.validation import validate_and_record

    validate_and_record(webhook)
    Webhook.objects.filter(pk=webhook.pk).update(enabled=True)
    data = form_data(webhook.url, headers=saved_rows(webhook), auth="bearer")
    data.update({"headers-INITIAL_FORMS": "2", "enabled": "on", "name": "renamed"})

    response = admin_client.post(change_url(webhook), data)

    assert response.status_code == 302
    assert Webhook.objects.get().name == "renamed"
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"key": "Content-Type", "value": "text/xml"}, "always application/json"),
        ({"key": "webhook-signature", "value": "v1,x"}, "signature header"),
        ({"key": "Bad Name", "value": "x"}, "not a valid header name"),
        ({"key": "X-Evil", "value": "a\r\nX-Injected: 1"}, "line breaks"),
    ],
)
def test_bad_header_rows_are_refused_and_nothing_is_saved(
    admin_client, receiver, row, message
):
    response = admin_client.post(
        ADD_URL, form_data(receiver.url, headers=[row], _validate="1")
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert Webhook.objects.count() == 0
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://127.0.0.1/hook"}, "Enter a valid URL"),
        ({"notification_types": "RUN COMPLETED"}, "is not a notification type"),
        ({"notification_types": " , "}, "This field is required"),
    ],
)
def test_a_form_that_cannot_be_saved_sends_no_test_request(
    admin_client, receiver, fields, message
):
    data = {**form_data(receiver.url, _validate="1", enabled=True), **fields}

    response = admin_client.post(ADD_URL, data)

    assert message in response.content.decode()
    assert receiver.requests == []
    assert Webhook.objects.count() == 0


def test_two_rows_with_the_same_name_in_any_case_are_refused(admin_client, receiver):
    rows = [{"key": "X-Key", "value": "1"}, {"key": "x-key", "value": "2"}]

    response = admin_client.post(ADD_URL, form_data(receiver.url, headers=rows))

    assert response.status_code == 200
    assert "appears twice" in response.content.decode()
    assert Webhook.objects.count() == 0


def test_an_authorization_row_beside_an_authentication_choice_is_refused(
    admin_client, receiver
):
    rows = [{"key": "Authorization", "value": "Bearer other"}]
    data = form_data(receiver.url, headers=rows, auth="bearer", bearer_token=TOKEN)

    response = admin_client.post(ADD_URL, data)

    assert "Authorization header is made from" in response.content.decode()
    assert Webhook.objects.count() == 0


def test_credentials_in_the_address_become_basic_authentication(admin_client, receiver):
    url = f"http://robot:{PASSWORD}@127.0.0.1:{receiver.port}/hook"

    admin_client.post(ADD_URL, form_data(url))

    webhook = Webhook.objects.get()
    assert webhook.url == receiver.url
    assert webhook.auth == Webhook.Auth.BASIC
    assert (webhook.basic_username, webhook.basic_password) == ("robot", PASSWORD)
    assert PASSWORD not in admin_client.get(change_url(webhook)).content.decode()


def test_a_stored_secret_left_empty_is_kept_and_can_be_replaced(admin_client, webhook):
    data = form_data(webhook.url, headers=saved_rows(webhook), auth="bearer")
    data["headers-INITIAL_FORMS"] = "2"
    admin_client.post(change_url(webhook), data)
    assert Webhook.objects.get().bearer_token == TOKEN

    admin_client.post(change_url(webhook), {**data, "bearer_token": "new-token-1"})

    assert Webhook.objects.get().bearer_token == "new-token-1"


def test_removing_a_row_removes_the_header(admin_client, webhook):
    rows = saved_rows(webhook)
    rows[1]["DELETE"] = "on"
    data = form_data(webhook.url, headers=rows, auth="bearer")
    data["headers-INITIAL_FORMS"] = "2"

    response = admin_client.post(change_url(webhook), data)

    assert response.status_code == 302
    assert list(webhook.headers.values_list("key", flat=True)) == ["X-Api-Key"]


def _swap_names(rows):
    rows[0]["key"], rows[1]["key"] = rows[1]["key"], rows[0]["key"]


def _delete_and_add_in_another_case(rows):
    rows[1]["DELETE"] = "on"
    rows.append({"key": "x-route", "value": "team-b"})


def _delete_and_rename_to_it(rows):
    rows[0]["key"] = "X-Route"
    rows[1]["DELETE"] = "on"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # Each row keeps its value and secrecy under its new name.
        (
            _swap_names,
            {"X-Route": (HEADER_SECRET, True), "X-Api-Key": ("team-a", False)},
        ),
        (
            _delete_and_add_in_another_case,
            {"X-Api-Key": (HEADER_SECRET, True), "x-route": ("team-b", False)},
        ),
        (_delete_and_rename_to_it, {"X-Route": (HEADER_SECRET, True)}),
    ],
    ids=["swap", "delete and add again", "delete and rename another to it"],
)
def test_names_can_move_between_rows_in_one_save(admin_client, webhook, edit, expected):
    rows = saved_rows(webhook)
    edit(rows)
    data = form_data(webhook.url, headers=rows, auth="bearer")
    data["headers-INITIAL_FORMS"] = "2"

    response = admin_client.post(change_url(webhook), data)

    assert response.status_code == 302
    assert {h.key: (h.value, h.is_secret) for h in webhook.headers.all()} == expected


def test_a_name_taken_since_the_form_was_opened_is_refused(admin_client, webhook):
    rows = saved_rows(webhook)
    rows.append({"key": "X-Team", "value": "b"})
    data = form_data(webhook.url, headers=rows, auth="bearer")
    data["headers-INITIAL_FORMS"] = "2"
    webhook.headers.create(key="x-team", value="a", is_secret=False)

    response = admin_client.post(change_url(webhook), data)

    assert response.status_code == 200
    assert "appears twice" in response.content.decode()
    assert sorted(webhook.headers.values_list("key", flat=True)) == [
        "X-Api-Key",
        "X-Route",
        "x-team",
    ]


def test_the_list_masks_credentials_and_shows_the_last_validation(
    admin_client, receiver
):
    Webhook.objects.create(
        name="legacy", url=f"https://robot:{PASSWORD}@hooks.example.com/x"
    )

    html = admin_client.get(LIST_URL).content.decode()

    assert PASSWORD not in html
    assert "robot:••••" in html
    assert "never" in html


def test_the_list_runs_as_many_queries_for_many_webhooks_as_for_one(admin_client):
    def queries_for_list():
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(LIST_URL).status_code == 200
        return len(queries)

    Webhook.objects.create(name="w0", url="https://example.com/0")
    one = queries_for_list()
    for index in range(1, 6):
        webhook = Webhook.objects.create(name=f"w{index}", url="https://e.com/x")
        webhook.headers.create(key="X-Key", value="value")

    assert queries_for_list() == one


def test_the_action_validates_each_selected_webhook(admin_client, receiver):
    with Receiver(default=Reply(500, b"nope")) as failing:
        good = Webhook.objects.create(name="good", url=receiver.url)
        bad = Webhook.objects.create(name="bad", url=failing.url)
        guarded = Webhook.objects.create(name="meta", url="http://169.254.169.254/")
        selected = [good.pk, bad.pk, guarded.pk]

        response = admin_client.post(
            LIST_URL,
            {"action": "validate_selected", "_selected_action": selected},
            follow=True,
        )

    texts = sorted(str(m) for m in response.context["messages"])
    assert texts[0] == "1 of 3 webhooks are valid."
    assert texts[1].startswith("bad: The server answered 500")
    assert texts[2].startswith("good: The server answered 200")
    assert texts[3].startswith("meta: Refused to connect to 169.254.169.254")
    statuses = dict(Webhook.objects.values_list("name", "validation_status_code"))
    assert statuses == {"good": 200, "bad": 500, "meta": None}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_configures_validates_and_enables_a_webhook(
    page, live_server, django_user_model, receiver
):
    django_user_model.objects.create_superuser("admin", "a@example.com", "pw-4-tests")
    with Receiver(default=Reply(500, b"receiver is down")) as failing:
        page.goto(f"{live_server.url}/admin/login/?next={ADD_URL}")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "pw-4-tests")
        page.click("input[type=submit]")

        page.fill("#id_name", "Ops alerts")
        page.fill("#id_url", failing.url)
        page.fill("#id_headers-0-key", "X-Api-Key")
        page.fill("#id_headers-0-value", HEADER_SECRET)
        page.click(".add-row a")
        page.fill("#id_headers-1-key", "X-Route")
        page.uncheck("#id_headers-1-is_secret")
        page.fill("#id_headers-1-value", "team-a")
        page.click("input[name=_validate]")

        report = page.locator("#validation-report")
        assert "Invalid" in report.inner_text()
        assert "receiver is down" in report.inner_text()
        assert "500" in report.locator(".validation-status").inner_text()
        screenshot(page, "webhook_validation_failed")

    assert page.input_value("#id_headers-0-key") == "X-Api-Key"
    assert page.input_value("#id_headers-1-value") == "team-a"
    assert HEADER_SECRET not in page.content()
    page.fill("#id_url", receiver.url)
    page.click("input[name=_validate]")
    assert "Valid" in page.locator("#validation-report h2").inner_text()
    assert "Invalid" not in page.locator("#validation-report h2").inner_text()

    page.check("#id_enabled")
    page.click("input[name=_save]")

    assert "was added successfully" in page.locator(".messagelist").inner_text()
    assert "valid (200)" in page.locator("#result_list").inner_text()
    screenshot(page, "webhook_enabled")
    webhook = Webhook.objects.get()
    assert webhook.enabled and webhook.is_validated()
    assert webhook.request_headers() == {
        "X-Api-Key": HEADER_SECRET,
        "X-Route": "team-a",
    }
    assert receiver.requests[-1].headers["X-Api-Key"] == HEADER_SECRET
