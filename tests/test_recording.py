import datetime
import json
import random
import threading

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test.utils import CaptureQueriesContext
from rest_framework.serializers import ValidationError

from tests.conftest import PAYLOAD_NAMES, load_payload
from webhooks_app import envelope, statements
from webhooks_app.kinds import Kind
from webhooks_app.models import Alert, MonitoredModel, Notification
from webhooks_app.recording import record_notification

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_each_example_payload_round_trips(name):
    payload = load_payload(name)

    result = record_notification(payload)

    notification = result.notification
    assert result.created
    rebuilt = envelope.build(notification, notification.alerts.all())
    assert rebuilt == payload


def test_seed_payload_is_recorded_as_rows(seed_payload):
    notification = record_notification(seed_payload).notification

    assert notification.model.nannyml_id == 28740
    assert notification.model.name == "test"
    assert notification.notification_type == "RUN_COMPLETED"
    assert notification.run_started_at == datetime.datetime(
        2024, 1, 25, 14, 4, 10, 157236, tzinfo=datetime.UTC
    )
    assert notification.succeeded == ["unseen_values", "missing_values"]
    assert notification.report_link == "https://test.app.nannyml.com/model/1"
    alerts = {(a.category, a.kind, a.key, a.metric_name) for a in Alert.objects.all()}
    assert alerts == {
        ("performance", Kind.PERFORMANCE, "cbpe", "specificity"),
        ("other", Kind.DRIFT, "univariate_drift", "country"),
    }


def test_the_same_run_twice_is_one_record(seed_payload):
    first = record_notification(seed_payload)
    second = record_notification(seed_payload)

    assert second.duplicate
    assert second.notification.pk == first.notification.pk
    assert Notification.objects.count() == 1
    assert Alert.objects.count() == 2


def test_an_offset_in_started_at_is_respected(seed_payload):
    seed_payload["payload"]["run"]["started_at"] = "2024-01-25T16:04:10+02:00"

    notification = record_notification(seed_payload).notification

    assert notification.run_started_at == datetime.datetime(
        2024, 1, 25, 14, 4, 10, tzinfo=datetime.UTC
    )


def test_unknown_keys_and_types_are_recorded(seed_payload):
    seed_payload["header"]["notification_type"] = "RUN_FAILED_SOMEHOW"
    seed_payload["payload"]["other_alerts"]["brand_new_calculator"] = [
        {"metric_name": "thing"}
    ]
    seed_payload["payload"]["extra_key"] = {"kept": True}

    notification = record_notification(seed_payload).notification

    assert notification.notification_type == "RUN_FAILED_SOMEHOW"
    assert notification.alerts.get(key="brand_new_calculator").kind == Kind.OTHER


def test_missing_alert_groups_and_success_are_valid(seed_payload):
    for key in ("performance_alerts", "other_alerts", "success", "report_link"):
        del seed_payload["payload"][key]

    notification = record_notification(seed_payload).notification

    assert notification.alert_count == 0
    assert notification.succeeded == []


def test_a_newer_run_renames_the_model_and_an_older_one_does_not(seed_payload):
    record_notification(seed_payload)
    newer = json.loads(json.dumps(seed_payload))
    newer["header"]["model_name"] = "renamed"
    newer["payload"]["run"]["started_at"] = "2024-02-01T00:00:00"
    older = json.loads(json.dumps(seed_payload))
    older["header"]["model_name"] = "old name"
    older["payload"]["run"]["started_at"] = "2023-01-01T00:00:00"

    record_notification(newer)
    record_notification(older)

    model = MonitoredModel.objects.get()
    assert model.name == "renamed"
    assert model.last_run_started_at == datetime.datetime(
        2024, 2, 1, tzinfo=datetime.UTC
    )


def test_invalid_data_raises_and_records_nothing(seed_payload):
    seed_payload["header"]["model_id"] = "28740"

    with pytest.raises(ValidationError) as error:
        record_notification(seed_payload)

    assert "model_id" in error.value.detail["header"]
    assert Notification.objects.count() == 0
    assert MonitoredModel.objects.count() == 0


def test_the_body_given_is_kept(seed_payload):
    text = json.dumps(seed_payload, indent=2)

    notification = record_notification(seed_payload, body=text).notification

    assert notification.body == text


def test_a_webhook_test_is_recorded_without_alerts(seed_payload):
    seed_payload["header"]["notification_type"] = "WEBHOOK_TEST"

    notification = record_notification(seed_payload).notification

    assert notification.is_test
    assert notification.alerts.count() == 0
    assert notification.model.last_run_started_at is None


def _payload_with_alerts(count, started_at):
    payload = load_payload("run_completed_seed")
    payload["payload"]["run"]["started_at"] = started_at
    payload["payload"]["other_alerts"] = {
        "univariate_drift": [{"metric_name": f"column_{i}"} for i in range(count)]
    }
    return payload


def test_query_count_does_not_grow_with_the_number_of_alerts():
    record_notification(_payload_with_alerts(1, "2024-01-01T00:00:00"))

    with CaptureQueriesContext(connection) as few:
        record_notification(_payload_with_alerts(1, "2024-01-02T00:00:00"))
    with CaptureQueriesContext(connection) as many:
        record_notification(_payload_with_alerts(900, "2024-01-03T00:00:00"))

    assert len(many) == len(few)
    # PostgreSQL reads the model and writes the rest in one statement; SQLite
    # reads, inserts the notification, then its alerts, and updates the model
    # (in a transaction, here a savepoint in the test's transaction).
    run = [q["sql"] for q in few.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(run) == (2 if connection.vendor == "postgresql" else 4)
    assert Alert.objects.filter(run_started_at__day=3).count() == 901


@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_one_run_make_one_record(seed_payload):
    barrier = threading.Barrier(8)
    results = []

    def record():
        try:
            barrier.wait()
            results.append(record_notification(seed_payload))
        finally:
            connection.close()

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 8
    assert sum(result.created for result in results) == 1
    assert len({result.notification.pk for result in results}) == 1
    assert Notification.objects.count() == 1
    assert Alert.objects.count() == 2
    assert MonitoredModel.objects.count() == 1


@pytest.fixture
def read_after_one_run():
    """PostgreSQL's first read of a newer run, after one run of the seed model."""
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement write is PostgreSQL's")
    record_notification(_payload_with_alerts(1, "2024-01-01T00:00:00"))
    model, version, _any_webhook, next_id = statements.read_versioned_model(
        connection, 28740
    )
    return model, version, next_id


def test_a_run_recorded_in_between_makes_the_one_statement_write_nothing(
    read_after_one_run,
):
    model, version, next_id = read_after_one_run
    record_notification(_payload_with_alerts(2, "2024-01-02T00:00:00"))
    alerts = Alert.objects.count()
    stale = Notification(
        pk=next_id,
        model=model,
        notification_type="RUN_COMPLETED",
        run_started_at=datetime.datetime(2024, 1, 3, tzinfo=datetime.UTC),
    )

    written = statements.record_newest(
        connection,
        model,
        version,
        {"name": "stale"},
        stale,
        [("other", Kind.DRIFT, "univariate_drift", "column_0")],
    )

    assert not written
    assert not Notification.objects.filter(pk=next_id).exists()
    assert MonitoredModel.objects.get().name == "test"
    assert Alert.objects.count() == alerts


def test_the_one_statement_write_records_a_newer_run_as_the_locked_way_does(
    read_after_one_run,
):
    model, version, next_id = read_after_one_run
    newer = Notification(
        pk=next_id,
        model=model,
        notification_type="RUN_COMPLETED",
        run_started_at=datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
        succeeded=["cbpe"],
        report_link="https://example.com/report",
        other_alert_count=1,
    )

    written = statements.record_newest(
        connection,
        model,
        version,
        {"name": "renamed", "last_run_id": next_id},
        newer,
        [("other", Kind.DRIFT, "univariate_drift", "column_0")],
    )

    assert written
    stored = Notification.objects.get(pk=next_id)
    assert stored.succeeded == ["cbpe"]
    assert stored.report_link == "https://example.com/report"
    assert stored.run_started_at == newer.run_started_at
    alert = stored.alerts.get()
    assert (alert.model_id, alert.run_started_at, alert.kind, alert.metric_name) == (
        model.pk,
        newer.run_started_at,
        Kind.DRIFT,
        "column_0",
    )
    model.refresh_from_db()
    assert (model.name, model.last_run_id) == ("renamed", next_id)


def test_names_with_quotes_commas_and_braces_are_stored_as_sent():
    record_notification(_payload_with_alerts(1, "2024-01-01T00:00:00"))
    names = ["a,\"b'", "}{\\", "NULL", "é 🙂"]
    payload = _payload_with_alerts(0, "2024-01-02T00:00:00")
    payload["payload"]["other_alerts"] = {
        "univariate_drift": [{"metric_name": name} for name in names]
    }

    notification = record_notification(payload).notification

    stored = list(
        notification.alerts.filter(category="other").values_list(
            "metric_name", flat=True
        )
    )
    assert stored == names


def _prepared_statements():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize("prepared", [True, False])
def test_postgresql_prepares_the_statements_of_a_newer_run(settings, prepared):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    settings.WEBHOOKS_PREPARED_STATEMENTS = prepared
    for day in range(1, 5):
        record_notification(_payload_with_alerts(day, f"2024-01-0{day}T00:00:00"))

    statements_prepared = _prepared_statements()

    reads = [s for s in statements_prepared if "xmin::text, nextval" in s]
    writes = [s for s in statements_prepared if s.startswith("WITH m AS (UPDATE")]
    assert (len(reads), len(writes)) == ((1, 1) if prepared else (0, 0))
    assert Notification.objects.count() == 4


@pytest.fixture
def reused_connection():
    """A connection kept from an earlier request, as a new request finds it."""
    if connection.vendor != "postgresql":
        pytest.skip("the health check folded into the read is PostgreSQL's")
    record_notification(_payload_with_alerts(1, "2024-01-01T00:00:00"))
    # What Django does when a request starts: the kept connection is checked
    # again before the request's first query.
    connection.close_if_unusable_or_obsolete()
    assert connection.connection is not None
    assert connection.health_check_enabled and not connection.health_check_done
    return connection.connection.info.backend_pid


def _terminate(pid):
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        while other.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone():
            pass


@pytest.mark.django_db(transaction=True)
def test_the_read_of_a_newer_run_is_the_connection_health_check(
    reused_connection, monkeypatch
):
    checks = []
    wrapper = connections[DEFAULT_DB_ALIAS]
    is_usable = wrapper.is_usable
    monkeypatch.setattr(
        wrapper, "is_usable", lambda: checks.append("SELECT 1") or is_usable()
    )

    result = record_notification(_payload_with_alerts(1, "2024-01-02T00:00:00"))

    assert result.created
    assert checks == []
    assert connection.connection.info.backend_pid == reused_connection
    assert connection.health_check_done


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_died_while_idle_is_replaced_and_nothing_lost(
    reused_connection,
):
    _terminate(reused_connection)

    result = record_notification(_payload_with_alerts(2, "2024-01-02T00:00:00"))

    assert result.created
    assert connection.connection.info.backend_pid != reused_connection
    assert Notification.objects.count() == 2
    assert Alert.objects.filter(notification=result.notification).count() == 3


@pytest.mark.parametrize("runs", [1, 2])
def test_alerts_keep_the_order_they_were_sent_in(runs):
    # The first run of a model is recorded under its lock; a newer one, on
    # PostgreSQL, in one statement.
    names = [f"metric_{i}" for i in random.Random(runs).sample(range(200), 60)]
    for day in range(1, runs + 1):
        payload = _payload_with_alerts(0, f"2024-01-0{day}T00:00:00")
        payload["payload"]["other_alerts"] = {
            "univariate_drift": [{"metric_name": name} for name in names]
        }
        notification = record_notification(payload).notification

    stored = notification.alerts.filter(category="other").order_by("pk")
    assert [alert.metric_name for alert in stored] == names


def test_rows_inserted_for_other_databases_keep_their_values_and_order():
    notification = record_notification(
        _payload_with_alerts(0, "2024-01-01")
    ).notification
    rows = [("other", Kind.DRIFT, "k", f"m{i}") for i in (3, 1, 2)]

    statements.insert_rows(
        connection,
        Alert,
        ["notification", "model", "run_started_at", *statements.ALERT_COLUMNS],
        [
            (notification.pk, notification.model_id, notification.run_started_at, *row)
            for row in rows
        ],
    )

    stored = notification.alerts.filter(key="k").order_by("pk")
    assert [(a.category, a.kind, a.key, a.metric_name) for a in stored] == rows
    assert {a.run_started_at for a in stored} == {notification.run_started_at}
