"""Delivery with the real task worker and real HTTP servers on loopback."""

import datetime
import json
import logging
import subprocess
import sys
import threading

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks import Webhook as StandardWebhook

from tests.conftest import load_payload
from tests.servers import HANG, Receiver, Reply
from tests.workers import ROOT, TaskWorker, wait_until, worker_environment
from webhooks_app import delivery as delivering
from webhooks_app.models import Delivery, DeliveryAttempt, MonitoredModel, Webhook
from webhooks_app.recording import record_notification

# Short waits, for the worker processes and for this one alike.
FAST = {
    "RETRY_SCHEDULE": [0, 0.3, 0.3, 0.3, 0.3],
    "RETRY_JITTER": 0.2,
    "SWEEP_INTERVAL": 0.5,
    "STALE_AFTER": 1,
    "LEASE_MARGIN": 0.5,
    "CONNECT_TIMEOUT": 1,
    "READ_TIMEOUT": 1.5,
    "DRAIN_SECONDS": 0.5,
}


@pytest.fixture
def fast(settings):
    for name, value in FAST.items():
        setattr(settings, f"WEBHOOKS_{name}", value)
    cache.clear()
    return dict(FAST)


def make_webhook(url, name="hook", **fields):
    return Webhook.objects.create(name=name, url=url, enabled=True, **fields)


def run_payload(started_at="2024-01-25T14:04:10", model_id=28740, alerts=True):
    payload = load_payload(
        "run_completed_seed" if alerts else "run_completed_no_alerts"
    )
    payload["header"]["model_id"] = model_id
    payload["payload"]["run"]["started_at"] = started_at
    return payload


def status_of(delivery):
    return Delivery.objects.values_list("status", flat=True).get(pk=delivery.pk)


def only_delivery():
    return Delivery.objects.select_related("webhook").get()


# With the real worker


@pytest.mark.django_db(transaction=True)
def test_three_500s_then_200_is_delivered_once_after_four_attempts(fast, receiver):
    receiver.script(Reply(500), Reply(500), Reply(500), Reply(200))
    make_webhook(receiver.url)

    with TaskWorker(fast):
        record_notification(run_payload())
        delivered = wait_until(
            lambda: status_of(only_delivery()) == Delivery.Status.DELIVERED
        )

    delivery = only_delivery()
    assert delivered
    assert delivery.attempt_count == 4
    assert [a.status_code for a in delivery.attempts.order_by("number")] == [
        500,
        500,
        500,
        200,
    ]
    assert len(receiver.requests) == 4
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


@pytest.mark.django_db(transaction=True)
def test_a_deliver_task_still_in_the_queue_has_its_delivery_sent(fast, receiver):
    from django_tasks_db.models import DBTaskResult

    from webhooks_app.tasks import deliver

    webhook = make_webhook(receiver.url)
    record_notification(run_payload())
    # Only the queued deliver task is left to send it.
    DBTaskResult.objects.all().delete()
    deliver.enqueue(only_delivery().pk)

    with TaskWorker(fast):
        delivered = wait_until(
            lambda: status_of(only_delivery()) == Delivery.Status.DELIVERED
        )

    assert delivered
    assert len(receiver.requests) == 1
    assert drain_tasks().get().args_kwargs["args"] == [webhook.pk]


@pytest.mark.django_db(transaction=True)
def test_a_server_down_at_first_gets_the_notification_once_it_is_up(fast):
    with Receiver() as placeholder:
        port, url = placeholder.port, placeholder.url
    make_webhook(url)

    with TaskWorker(fast):
        record_notification(run_payload())
        refused = wait_until(lambda: DeliveryAttempt.objects.count() >= 2)
        with Receiver(port=port) as receiver:
            delivered = wait_until(
                lambda: status_of(only_delivery()) == Delivery.Status.DELIVERED
            )

    assert refused
    assert delivered
    attempts = list(only_delivery().attempts.order_by("number"))
    assert attempts[0].status_code is None
    assert attempts[0].error
    assert attempts[-1].status_code == 200
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_is_completed_after_a_restart(fast, receiver):
    receiver.script(HANG)
    make_webhook(receiver.url)
    worker = TaskWorker(fast).start()
    try:
        record_notification(run_payload())
        assert receiver.wait_for(1)
        worker.kill()
        assert status_of(only_delivery()) == Delivery.Status.PENDING

        worker.start()
        delivered = wait_until(
            lambda: status_of(only_delivery()) == Delivery.Status.DELIVERED
        )
    finally:
        worker.stop()

    assert delivered
    assert len(receiver.requests) == 2
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {f"msg_{only_delivery().message_id.hex}"}


@pytest.mark.django_db(transaction=True)
def test_a_process_dying_between_commit_and_enqueue_loses_nothing(fast, receiver):
    webhook = make_webhook(receiver.url)
    # Another process records a notification and dies right after the commit,
    # before its on-commit work (enqueuing the delivery) runs.
    script = (
        "import os, django; django.setup()\n"
        "from django.db import transaction\n"
        "from webhooks_app.recording import record_notification\n"
        "with transaction.atomic():\n"
        "    transaction.on_commit(lambda: os._exit(9))\n"
        f"    record_notification({run_payload()!r})\n"
    )
    died = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=worker_environment(fast),
        check=False,
        capture_output=True,
    )
    assert died.returncode == 9, died.stderr.decode()[-2000:]
    assert Delivery.objects.get().webhook == webhook

    with TaskWorker(fast):
        delivered = wait_until(
            lambda: status_of(only_delivery()) == Delivery.Status.DELIVERED
        )

    assert delivered
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_410_gone_disables_the_webhook(fast, receiver):
    receiver.script(Reply(410, b"gone"))
    make_webhook(receiver.url)

    with TaskWorker(fast):
        record_notification(run_payload())
        finished = wait_until(
            lambda: status_of(only_delivery()) == Delivery.Status.FAILED
        )

    webhook = Webhook.objects.get()
    assert finished
    assert not webhook.enabled
    assert "410" in webhook.disabled_reason
    assert webhook.disabled_at is not None
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_a_hanging_webhook_does_not_hold_back_the_others(fast):
    # After its first failure the hanging webhook pauses for a minute.
    patient = {**fast, "RETRY_SCHEDULE": [0, 60]}
    with Receiver() as healthy, Receiver(default=HANG) as hanging:
        make_webhook(healthy.url, name="healthy")
        make_webhook(hanging.url, name="hanging")

        with TaskWorker(patient, processes=2):
            for day in range(1, 11):
                record_notification(run_payload(f"2024-02-{day:02d}T10:00:00"))
            done = wait_until(lambda: healthy.wait_for(10, timeout=0.1), timeout=60)
            probes = len(hanging.requests)

    assert done
    assert len(healthy.requests) == 10
    # One attempt at a time, then a pause: not one hung attempt per notification.
    assert probes == 1
    assert (
        Delivery.objects.filter(
            webhook__name="healthy", status=Delivery.Status.DELIVERED
        ).count()
        == 10
    )


# In this process: a webhook's due deliveries, through `drain`


def send_due():
    """Run a drain for the only webhook, in this process."""
    return delivering.drain(Webhook.objects.get().pk)


@pytest.mark.django_db
def test_the_signature_verifies_with_standardwebhooks_across_a_rotation(fast, receiver):
    webhook = make_webhook(receiver.url)
    old_secret = webhook.signing_secret

    record_notification(run_payload("2024-03-01T10:00:00"))
    send_due()
    from webhooks_app.signing import rotate_secret

    new_secret = rotate_secret(webhook)
    record_notification(run_payload("2024-03-02T10:00:00"))
    send_due()

    first_request, rotated_request = receiver.requests
    assert StandardWebhook(old_secret).verify(first_request.body, first_request.headers)
    for secret in (old_secret, new_secret):
        assert StandardWebhook(secret).verify(
            rotated_request.body, rotated_request.headers
        )
    assert old_secret.startswith("whsec_") and new_secret != old_secret


@pytest.mark.django_db
def test_the_previous_secret_stops_signing_after_the_overlap(fast, receiver):
    webhook = make_webhook(receiver.url)
    old_secret = webhook.signing_secret
    from webhooks_app.signing import rotate_secret

    new_secret = rotate_secret(webhook)
    Webhook.objects.filter(pk=webhook.pk).update(
        previous_secret_expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    record_notification(run_payload())
    send_due()

    sent = receiver.requests[0]
    assert StandardWebhook(new_secret).verify(sent.body, sent.headers)
    with pytest.raises(Exception, match="signature"):
        StandardWebhook(old_secret).verify(sent.body, sent.headers)


@pytest.mark.django_db
def test_an_inbound_notification_is_forwarded_as_received(
    fast, receiver, post_notification
):
    make_webhook(receiver.url)
    body = json.dumps(load_payload("run_completed_seed"), indent=3)

    assert post_notification(body).status_code == 200
    send_due()

    sent = receiver.requests[0]
    assert sent.body == body.encode()
    assert sent.headers["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_host_code_notification_links_to_its_dashboard_page(fast, receiver, settings):
    settings.WEBHOOKS_SITE_URL = "https://alerts.example.com"
    make_webhook(receiver.url)
    payload = run_payload()
    payload["payload"].pop("report_link")

    record_notification(payload)
    send_due()

    sent = json.loads(receiver.requests[0].body)
    assert sent["header"] == payload["header"]
    assert (
        sent["payload"]["report_link"]
        == "https://alerts.example.com/alerts/models/28740/"
    )
    assert sent["payload"]["performance_alerts"] == {
        "cbpe": [{"metric_name": "specificity"}]
    }


@pytest.mark.django_db
def test_configured_headers_are_sent_and_masked_in_the_attempt(fast, receiver):
    webhook = make_webhook(receiver.url)
    webhook.headers.create(key="Authorization", value="Bearer very-secret-value")

    record_notification(run_payload())
    send_due()

    assert receiver.requests[0].headers["Authorization"] == "Bearer very-secret-value"
    recorded = DeliveryAttempt.objects.get().request_headers
    assert "very-secret-value" not in json.dumps(recorded)
    assert recorded["webhook-id"].startswith("msg_")


@pytest.mark.django_db
def test_a_404_fails_without_retry_and_signals_once(
    fast, receiver, django_capture_on_commit_callbacks
):
    receiver.script(Reply(404, b"no such hook"))
    make_webhook(receiver.url)
    outcomes = []

    def note(delivery, outcome, **kwargs):
        outcomes.append((delivery.pk, outcome))

    delivering.delivery_finished.connect(note)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            record_notification(run_payload())
            send_due()
    finally:
        delivering.delivery_finished.disconnect(note)

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.next_attempt_at is None
    assert outcomes == [(delivery.pk, Delivery.Status.FAILED)]
    assert DeliveryAttempt.objects.get().response_body == "no such hook"


@pytest.mark.django_db
def test_retries_run_out_and_the_delivery_gives_up(fast, receiver, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [0, 0]
    receiver.default = Reply(503)
    make_webhook(receiver.url)
    record_notification(run_payload())
    delivery = Delivery.objects.get()

    # With no wait between tries, one drain makes both.
    send_due()

    assert status_of(delivery) == Delivery.Status.GAVE_UP
    assert Delivery.objects.get().attempt_count == 2
    assert len(receiver.requests) == 2


@pytest.mark.django_db
def test_retry_after_is_honoured(fast, receiver):
    receiver.script(Reply(429, headers={"Retry-After": "120"}))
    make_webhook(receiver.url)
    record_notification(run_payload())
    before = timezone.now()

    send_due()

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.next_attempt_at >= before + datetime.timedelta(seconds=120)
    assert Webhook.objects.get().paused_until >= before + datetime.timedelta(
        seconds=120
    )


@pytest.mark.django_db
def test_a_webhook_failing_for_days_is_disabled_with_a_warning(fast, receiver, caplog):
    receiver.default = Reply(500)
    webhook = make_webhook(receiver.url)
    Webhook.objects.filter(pk=webhook.pk).update(
        failing_since=timezone.now() - datetime.timedelta(days=6),
        consecutive_failures=40,
    )
    record_notification(run_payload())

    with caplog.at_level(logging.WARNING, logger="webhooks_app.delivery"):
        send_due()

    webhook.refresh_from_db()
    assert not webhook.enabled
    assert "5 days" in webhook.disabled_reason
    assert any("Disabled webhook" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_a_success_ends_the_failure_streak(fast, receiver):
    webhook = make_webhook(receiver.url)
    Webhook.objects.filter(pk=webhook.pk).update(
        failing_since=timezone.now() - datetime.timedelta(days=1),
        consecutive_failures=3,
    )
    record_notification(run_payload())

    send_due()

    webhook.refresh_from_db()
    assert (webhook.failing_since, webhook.consecutive_failures) == (None, 0)
    assert webhook.enabled


@pytest.mark.django_db
def test_a_delivery_not_due_or_already_leased_is_left_alone(fast, receiver):
    make_webhook(receiver.url)
    record_notification(run_payload())
    delivery = Delivery.objects.get()
    Delivery.objects.update(locked_until=timezone.now() + datetime.timedelta(minutes=1))

    assert send_due() == 0
    assert receiver.requests == []
    assert status_of(delivery) == Delivery.Status.PENDING


# Which webhooks a notification goes to


@pytest.mark.django_db
def test_filters_pick_the_webhooks_that_match():
    everything = make_webhook("http://127.0.0.1:9/a", name="everything")
    alerts_only = make_webhook(
        "http://127.0.0.1:9/b", name="alerts", only_with_alerts=True
    )
    other_model = make_webhook("http://127.0.0.1:9/c", name="other model")
    other_model.monitored_models.add(
        MonitoredModel.objects.create(nannyml_id=1, name="x")
    )
    this_model = make_webhook("http://127.0.0.1:9/d", name="this model")
    other_type = make_webhook(
        "http://127.0.0.1:9/e", name="other type", notification_types=["RUN_FAILED"]
    )
    disabled = make_webhook("http://127.0.0.1:9/f", name="off")
    Webhook.objects.filter(pk=disabled.pk).update(enabled=False)

    with_alerts = record_notification(run_payload()).notification
    this_model.monitored_models.add(with_alerts.model)
    without = record_notification(
        run_payload("2024-05-01T00:00:00", alerts=False)
    ).notification

    def names(notification):
        return set(notification.deliveries.values_list("webhook__name", flat=True))

    assert names(with_alerts) == {"everything", "alerts", "this model"}
    assert names(without) == {"everything", "this model"}
    assert everything and alerts_only and other_type


@pytest.mark.django_db
def test_enabling_a_disabled_webhook_again_forgets_its_failures(fast):
    webhook = make_webhook("https://example.com/hook")
    Webhook.objects.filter(pk=webhook.pk).update(
        enabled=False,
        disabled_at=timezone.now(),
        disabled_reason="Every delivery failed for 5 days.",
        failing_since=timezone.now() - datetime.timedelta(days=5),
        consecutive_failures=30,
    )
    webhook.refresh_from_db()

    webhook.enabled = True
    webhook.save()

    webhook.refresh_from_db()
    assert webhook.enabled
    assert (webhook.disabled_at, webhook.disabled_reason) == (None, "")
    assert (webhook.failing_since, webhook.consecutive_failures) == (None, 0)


# Drains: one task sends a webhook's due deliveries one after another


def drain_tasks():
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(task_path="webhooks_app.tasks.drain")


@pytest.mark.django_db(transaction=True)
def test_one_drain_delivers_a_burst_over_one_kept_alive_connection(fast, receiver):
    patient = {**fast, "DRAIN_SECONDS": 60}
    make_webhook(receiver.url)
    for day in range(1, 26):
        record_notification(run_payload(f"2024-02-{day:02d}T10:00:00"))
    queued = drain_tasks().count()

    with TaskWorker(patient):
        delivered = wait_until(
            lambda: (
                Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() == 25
            )
        )

    assert delivered
    assert queued == 1
    assert len(receiver.requests) == 25
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 25
    assert len({r.client for r in receiver.requests}) == 1
    assert DeliveryAttempt.objects.count() == 25


@pytest.mark.django_db
def test_a_drain_writes_its_successes_a_batch_at_a_time(fast, receiver, settings):
    settings.WEBHOOKS_RECORD_BATCH = 10
    settings.WEBHOOKS_DRAIN_SECONDS = 60
    webhook = make_webhook(receiver.url)

    def queries_to_drain(count, month):
        for day in range(1, count + 1):
            record_notification(run_payload(f"2024-{month:02d}-{day:02d}T10:00:00"))
        with CaptureQueriesContext(connection) as queries:
            assert delivering.drain(webhook.pk) == count
        # Savepoints stand for the transactions that the test's own encloses.
        return sum("SAVEPOINT" not in q["sql"] for q in queries)

    ten = queries_to_drain(10, 3)
    thirty = queries_to_drain(30, 4)

    # Twenty more deliveries are two more writes, of three queries each.
    assert thirty - ten <= 2 * 3
    assert Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() == 40
    numbers = DeliveryAttempt.objects.values_list("number", flat=True)
    assert sorted(numbers) == [1] * 40
    assert set(Delivery.objects.values_list("attempt_count", flat=True)) == {1}
    assert not Delivery.objects.filter(finished_at=None).exists()


@pytest.mark.django_db(transaction=True)
def test_successes_not_yet_written_when_a_worker_dies_are_sent_again(fast, receiver):
    # Long enough for the five requests below; the lease lapses 3.5 s later.
    patient = {**fast, "DRAIN_SECONDS": 5}
    make_webhook(receiver.url)
    for day in range(1, 9):
        record_notification(run_payload(f"2024-02-{day:02d}T10:00:00"))
    worker = TaskWorker(patient)
    killed = threading.Event()

    def kill():
        worker.kill()
        killed.set()

    # Four answered, their outcomes not written yet: the worker dies at the fifth.
    receiver.script(*[Reply(200)] * 4, Reply(200, before=kill))
    worker.start()
    try:
        assert killed.wait(30)
        assert DeliveryAttempt.objects.count() == 0
        worker.start()
        delivered = wait_until(
            lambda: (
                Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() == 8
            )
        )
    finally:
        worker.stop()

    assert delivered
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 13
    assert set(ids) == {f"msg_{d.message_id.hex}" for d in Delivery.objects.all()}
    assert all(ids.count(sent) == 2 for sent in ids[:5])
    assert DeliveryAttempt.objects.count() == 8


@pytest.mark.django_db(transaction=True)
def test_a_hanging_webhook_on_a_single_worker_takes_one_timeout_then_pauses(fast):
    patient = {**fast, "RETRY_SCHEDULE": [0, 60]}
    with Receiver() as healthy, Receiver(default=HANG) as hanging:
        make_webhook(hanging.url, name="hanging")
        make_webhook(healthy.url, name="healthy")
        for day in range(1, 11):
            record_notification(run_payload(f"2024-02-{day:02d}T10:00:00"))
        timed_out = DeliveryAttempt.objects.filter(delivery__webhook__name="hanging")

        with TaskWorker(patient, processes=1):
            done = wait_until(
                lambda: healthy.wait_for(10, timeout=0.1) and timed_out.exists(),
                timeout=60,
            )
            probes = len(hanging.requests)

    assert done
    assert probes == 1
    hanging_deliveries = Delivery.objects.filter(webhook__name="hanging")
    assert set(hanging_deliveries.values_list("status", flat=True)) == {"pending"}
    assert hanging_deliveries.filter(attempt_count=1).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_hanging_webhook_frees_its_worker_before_its_timeout(fast):
    # The hanging attempt stays open far longer than the rest takes.
    patient = {**fast, "READ_TIMEOUT": 60, "RETRY_SCHEDULE": [0, 60]}
    with Receiver() as healthy, Receiver(default=HANG) as hanging:
        make_webhook(hanging.url, name="hanging")
        make_webhook(healthy.url, name="healthy")
        for day in range(1, 11):
            record_notification(run_payload(f"2024-02-{day:02d}T10:00:00"))

        with TaskWorker(patient, processes=1):
            delivered = wait_until(
                lambda: (
                    Delivery.objects.filter(
                        webhook__name="healthy", status=Delivery.Status.DELIVERED
                    ).count()
                    == 10
                ),
                timeout=50,
            )
            still_open = not DeliveryAttempt.objects.filter(
                delivery__webhook__name="hanging"
            ).exists()
            probes = len(hanging.requests)

    assert delivered
    # Its drain went first and left the attempt waiting in the background.
    assert hanging.requests[0].received_at < healthy.requests[0].received_at
    assert still_open
    assert probes == 1


@pytest.mark.django_db(transaction=True)
def test_an_answer_after_the_drain_stopped_waiting_is_recorded(fast, receiver):
    # Slower than DETACH_AFTER (1 s), within the read timeout.
    patient = {**fast, "READ_TIMEOUT": 10}
    receiver.script(Reply(200, delay=2))
    make_webhook(receiver.url)
    for day in range(1, 4):
        record_notification(run_payload(f"2024-02-{day:02d}T10:00:00"))

    with TaskWorker(patient):
        delivered = wait_until(
            lambda: (
                Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() == 3
            )
        )

    assert delivered
    assert len(receiver.requests) == 3
    first, *rest = DeliveryAttempt.objects.order_by("started_at")
    assert (first.status_code, first.number) == (200, 1)
    assert first.duration_ms >= 2000
    assert [a.status_code for a in rest] == [200, 200]
    assert Webhook.objects.get().busy_until is None


@pytest.mark.django_db(transaction=True)
def test_a_drain_that_lost_its_lease_keeps_its_attempts_and_stops(
    fast, receiver, settings
):
    settings.WEBHOOKS_RECORD_BATCH = 2
    webhook = make_webhook(receiver.url)
    for day in range(1, 6):
        record_notification(run_payload(f"2024-02-{day:02d}T10:00:00"))
    taken_over = timezone.now() + datetime.timedelta(minutes=5)

    def take_over():
        # What the sweep and a new drain do once a lease has lapsed.
        from django.db import connection

        Webhook.objects.filter(pk=webhook.pk).update(busy_until=taken_over)
        Delivery.objects.update(locked_until=None)
        connection.close()

    receiver.script(Reply(200, before=take_over))

    tried = delivering.drain(webhook.pk)

    # It finds out when it writes its first two outcomes, and writes neither.
    assert tried == 2
    assert len(receiver.requests) == 2
    assert DeliveryAttempt.objects.count() == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}
    assert set(Delivery.objects.values_list("attempt_count", flat=True)) == {0}
    assert Webhook.objects.get().busy_until == taken_over


@pytest.mark.django_db
def test_recording_queues_one_drain_per_webhook_while_one_is_queued(
    receiver, django_capture_on_commit_callbacks
):
    make_webhook(receiver.url, name="one")
    make_webhook(receiver.url, name="two")

    for day in range(1, 6):
        with django_capture_on_commit_callbacks(execute=True):
            record_notification(run_payload(f"2024-02-{day:02d}T10:00:00"))
    # As a drain does when it starts.
    Webhook.objects.update(drain_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        record_notification(run_payload("2024-02-10T10:00:00"))

    args = sorted(t.args_kwargs["args"][0] for t in drain_tasks())
    assert args == sorted(2 * list(Webhook.objects.values_list("pk", flat=True)))


@pytest.mark.django_db
def test_a_drain_sends_every_due_delivery_and_stops_at_a_retryable_failure(
    fast, receiver
):
    receiver.script(Reply(200), Reply(200), Reply(503))
    webhook = make_webhook(receiver.url)
    for day in range(1, 6):
        record_notification(run_payload(f"2024-02-{day:02d}T10:00:00"))

    tried = delivering.drain(webhook.pk)

    statuses = list(Delivery.objects.order_by("pk").values_list("status", flat=True))
    webhook.refresh_from_db()
    assert tried == 3
    assert statuses == ["delivered", "delivered", "pending", "pending", "pending"]
    assert webhook.paused_until > timezone.now()
    assert webhook.busy_until is None
    assert (webhook.consecutive_failures, webhook.failing_since is not None) == (
        1,
        True,
    )
    # Its successor waits for the pause.
    assert drain_tasks().filter(run_after__gte=webhook.paused_until).exists()


@pytest.mark.django_db
def test_the_sweep_leaves_deliveries_waiting_for_a_pause_and_takes_lost_ones(
    fast, receiver, django_capture_on_commit_callbacks
):
    paused = make_webhook(receiver.url, name="paused")
    make_webhook(receiver.url, name="lost")
    record_notification(run_payload())
    Delivery.objects.update(
        next_attempt_at=timezone.now() - datetime.timedelta(minutes=10)
    )
    Webhook.objects.filter(pk=paused.pk).update(
        paused_until=timezone.now() + datetime.timedelta(minutes=10)
    )

    with django_capture_on_commit_callbacks(execute=True):
        swept = delivering.sweep()

    assert swept == 1
    assert drain_tasks().get().args_kwargs["args"] == [
        Webhook.objects.get(name="lost").pk
    ]


@pytest.mark.django_db
def test_a_drain_records_a_request_it_cannot_prepare_and_pauses(fast, receiver):
    from django.db import connection

    webhook = make_webhook(receiver.url)
    webhook.headers.create(key="X-Key", value="secret-value")
    with connection.cursor() as cursor:
        # A value that no configured key decrypts.
        cursor.execute("UPDATE webhooks_app_webhookheader SET value = 'gAAAAAbogus'")
    record_notification(run_payload())

    tried = delivering.drain(webhook.pk)

    attempt = DeliveryAttempt.objects.get()
    assert tried == 1
    assert receiver.requests == []
    assert attempt.status_code is None
    assert status_of(attempt.delivery) == Delivery.Status.PENDING
    assert Webhook.objects.get().paused_until > timezone.now()
