import csv
import io
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core import checks
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.dashboard_data import bulk_history, record_runs, run_envelope
from webhooks_app.models import MonitoredModel, Notification
from webhooks_app.recording import record_notification

pytestmark = pytest.mark.django_db

HOSTILE_NAME = '<script>alert("name")</script>'
HOSTILE_METRIC = '<img src=x onerror="alert(1)">'


@pytest.fixture
def viewer(client):
    user = User.objects.create_user("viewer", password="viewer-password-1")
    user.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(user)
    return user


@pytest.fixture
def recorded():
    record_notification(
        run_envelope(performance={"cbpe": ["roc_auc"]}, success=["missing_values"]),
        body=json.dumps({"secret-looking": "raw body"}),
    )
    return Notification.objects.get()


def urls(notification):
    model_id = notification.model.nannyml_id
    return [
        reverse("webhooks_app:dashboard"),
        reverse("webhooks_app:dashboard") + "?format=csv",
        reverse("webhooks_app:dashboard_model", args=[model_id]),
        reverse("webhooks_app:dashboard_model", args=[model_id]) + "?format=json",
        reverse("webhooks_app:dashboard_run", args=[model_id, notification.pk]),
        reverse("webhooks_app:dashboard_run", args=[model_id, notification.pk])
        + "?format=csv",
    ]


def test_anonymous_users_are_sent_to_log_in_on_every_page_and_export(client, recorded):
    for url in urls(recorded):
        response = client.get(url)

        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_users_without_the_view_permission_are_refused_on_every_page(client, recorded):
    client.force_login(User.objects.create_user("nobody"))

    for url in urls(recorded):
        assert client.get(url).status_code == 403, url


def test_a_user_granted_view_notification_sees_every_page(client, viewer, recorded):
    for url in urls(recorded):
        assert client.get(url).status_code == 200, url


def test_staff_see_every_page_without_a_permission(client, recorded):
    client.force_login(User.objects.create_user("staff", is_staff=True))

    for url in urls(recorded):
        assert client.get(url).status_code == 200, url


def test_an_inactive_staff_user_is_refused(client, recorded):
    user = User.objects.create_user("gone", is_staff=True, is_active=False)

    client.force_login(user)

    assert client.get(reverse("webhooks_app:dashboard")).status_code in (302, 403)


def test_the_raw_body_is_shown_to_staff_only(client, viewer, recorded):
    url = urls(recorded)[4]

    as_viewer = client.get(url).content.decode()
    viewer.is_staff = True
    viewer.save()
    as_staff = client.get(url).content.decode()

    assert "raw body" not in as_viewer
    assert "raw body" in as_staff


def test_hostile_names_and_links_are_escaped_everywhere(client, viewer):
    record_notification(
        run_envelope(name=HOSTILE_NAME, other={"univariate_drift": [HOSTILE_METRIC]})
    )
    Notification.objects.update(report_link="javascript:alert(document.cookie)")
    notification = Notification.objects.get()

    for url in urls(notification)[::2]:
        html = client.get(url).content.decode()

        assert HOSTILE_NAME not in html and HOSTILE_METRIC not in html, url
        assert "javascript:" not in html, url
    model_html = client.get(urls(notification)[2]).content.decode()
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in model_html


def test_the_csv_export_defuses_spreadsheet_formulas(client, viewer):
    record_notification(run_envelope(name="=HYPERLINK(1)"))

    response = client.get(reverse("webhooks_app:dashboard"), {"format": "csv"})

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert response["Content-Type"].startswith("text/csv")
    assert rows[0]["name"] == "'=HYPERLINK(1)"


def test_the_models_export_follows_the_filters(client, viewer):
    record_runs("A", model_id=1)
    record_runs(".", model_id=2)

    response = client.get(
        reverse("webhooks_app:dashboard"), {"filter": "alerting", "format": "json"}
    )

    rows = response.json()["rows"]
    assert [(row["nannyml_id"], row["status"]) for row in rows] == [(1, "alerting")]
    assert rows[0]["drift"] == 1


def test_the_model_export_has_one_row_per_metric_with_its_history(client, viewer):
    record_runs("AA.AA")

    response = client.get(
        reverse("webhooks_app:dashboard_model", args=[512]), {"format": "csv"}
    )

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 1
    assert rows[0]["metric_name"] == "country"
    assert (rows[0]["current_streak"], rows[0]["alerting_runs"]) == ("2", "4")
    assert rows[0]["flips"] == "2"


def test_the_models_page_shows_status_in_words(client, viewer):
    record_runs("A", model_id=1)
    record_runs(".", model_id=2)
    record_runs("-", model_id=3)

    html = client.get(reverse("webhooks_app:dashboard")).content.decode()

    assert "1 alert" in html
    assert "all checks passed" in html
    assert "no checks reported" in html


def test_a_stale_model_gets_a_badge(client, viewer):
    record_runs("...")  # runs in 2024, daily

    html = client.get(reverse("webhooks_app:dashboard")).content.decode()

    assert "stale" in html


def test_the_grid_filters_by_kind_and_alerting_now(client, viewer):
    record_notification(
        run_envelope(day=0, performance={"cbpe": ["f1"]}, other={"my_check": ["x"]})
    )
    record_notification(run_envelope(day=1, performance={"cbpe": ["roc_auc"]}))
    url = reverse("webhooks_app:dashboard_model", args=[512])

    def metrics(**params):
        rows = client.get(url, params).context["rows"]
        return [row.metric_name for row in rows]

    assert metrics() == ["roc_auc", "f1", "x"]
    assert metrics(kind="other") == ["x"]
    assert metrics(alerting="1") == ["roc_auc"]
    assert metrics(sort="name") == ["f1", "roc_auc", "x"]


def test_the_run_page_groups_alerts_as_in_the_payload(client, viewer):
    record_notification(
        run_envelope(
            performance={"cbpe": ["roc_auc", "f1"]},
            other={"univariate_drift": ["plan"]},
            success=["missing_values"],
        )
    )
    notification = Notification.objects.get()

    response = client.get(urls(notification)[4])

    groups = response.context["groups"]
    assert [(g["category"], g["keys"]) for g in groups] == [
        ("performance", [("cbpe", "performance", ["roc_auc", "f1"])]),
        ("other", [("univariate_drift", "drift", ["plan"])]),
    ]
    assert "missing_values" in response.content.decode()


def test_a_run_of_another_model_or_a_webhook_test_is_not_found(client, viewer):
    record_runs(".", model_id=1)
    test = run_envelope(model_id=2)
    test["header"]["notification_type"] = "WEBHOOK_TEST"
    record_notification(test)
    run = Notification.objects.get(model__nannyml_id=1)
    webhook_test = Notification.objects.get(model__nannyml_id=2)

    def status(model_id, pk):
        url = reverse("webhooks_app:dashboard_run", args=[model_id, pk])
        return client.get(url).status_code

    assert status(2, run.pk) == 404
    assert status(2, webhook_test.pk) == 404
    assert client.get("/alerts/models/2/").status_code == 404
    assert client.get("/alerts/models/99999999999999999999999/").status_code == 404
    huge_run = "/alerts/models/1/runs/99999999999999999999999/"
    assert client.get(huge_run).status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "nope"},
        {"filter": "'; DROP TABLE"},
        {"page": "-1"},
        {"page": "999999"},
        {"page": "x"},
        {"q": "\x00"},
        {"q": "9" * 40},
        {"q": "%_\\"},
        {"kind": "bogus", "alerting": "yes"},
        {"format": "xml"},
    ],
    ids=repr,
)
def test_bad_query_strings_never_fail(client, viewer, params):
    record_runs("A.")

    for url in ("/alerts/", "/alerts/models/512/"):
        assert client.get(url, params).status_code == 200, url


def query_counts(client, model):
    notification = model.last_run
    counts = []
    for url in urls(notification):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        counts.append(len(queries))
    return counts


def test_the_number_of_queries_does_not_grow_with_the_history(client, viewer):
    few = bulk_history(1, runs=10, alerts_per_run=5)
    many = bulk_history(2, runs=1000, alerts_per_run=5)

    few_counts = query_counts(client, MonitoredModel.objects.get(pk=few.pk))
    many_counts = query_counts(client, MonitoredModel.objects.get(pk=many.pk))

    assert few_counts == many_counts
    assert max(many_counts) <= 10


@pytest.mark.parametrize("value", [0, -1, "30", True, None])
def test_a_dashboard_setting_that_is_not_a_positive_number_is_reported(settings, value):
    settings.WEBHOOKS_DASHBOARD_RUNS = value

    errors = checks.run_checks()

    assert [e.id for e in errors if e.id.startswith("webhooks_app.E03")] == [
        "webhooks_app.E030"
    ]


def test_an_empty_export_still_names_its_columns(client, viewer):
    record_runs(".")

    response = client.get(
        reverse("webhooks_app:dashboard"), {"filter": "alerting", "format": "csv"}
    )

    assert response.content.decode().splitlines() == [
        "nannyml_id,name,last_run_started_at,status,open_alerts,performance,drift,"
        "data_quality,other,longest_streak,stale,report_link"
    ]


def test_the_filter_forms_show_the_choices_made(client, viewer, recorded):
    model_id = recorded.model.nannyml_id
    models = client.get(reverse("webhooks_app:dashboard") + "?filter=never&sort=name")
    model = client.get(
        reverse("webhooks_app:dashboard_model", args=[model_id]) + "?kind=drift"
    )

    models_html = models.content.decode()
    assert '<option value="">All models</option>' in models_html
    assert '<option value="never" selected>' in models_html
    assert '<option value="name" selected>' in models_html
    assert '<option value="last_run">' in models_html
    model_html = model.content.decode()
    assert '<option value="">All kinds</option>' in model_html
    assert '<option value="drift" selected>' in model_html
    assert '<select name="sort">' in model_html
