"""The one write path: every notification, from any source, is recorded here."""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, connections, router, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from webhooks_app import delivery, envelope, history, statements, writers
from webhooks_app.kinds import Category, kind_of
from webhooks_app.models import MonitoredModel, Notification
from webhooks_app.models.notifications import WEBHOOK_TEST

logger = logging.getLogger("webhooks_app.recording")


@dataclass(frozen=True)
class RecordResult:
    notification: Notification
    created: bool

    @property
    def duplicate(self):
        return not self.created


def record_notification(data, *, body=None, source=Notification.Source.HOST):
    """Record one notification in NannyML's envelope and return a `RecordResult`.

    `data` is the decoded envelope (a dict, as from `json.loads`). The same
    model, notification type and run start time recorded again returns the
    first record with `created=False`. Invalid data raises
    `rest_framework.serializers.ValidationError` and records nothing.

    `body` is the raw body as received, kept for forwarding and for staff to
    read; the inbound endpoint passes it, host code usually does not.
    """
    if isinstance(body, bytes):
        body = body.decode()
    parsed = envelope.parse(data)
    # Rows are made before the transaction, so that it holds its locks (on
    # SQLite, the whole database) only while the statements run.
    notification = _new_notification(parsed, body or "", source)
    alerts = _new_alerts(notification, parsed)
    connection = connections[router.db_for_write(Notification)]

    if not _record_in_one_statement(connection, parsed, notification, alerts):
        result = _record_locked(connection, parsed, notification, alerts)
        if result is not None:
            return result

    logger.info(
        "Recorded %s for model %s run %s: %d alerts (notification %s)",
        parsed.notification_type,
        parsed.model_id,
        parsed.run_started_at.isoformat(),
        notification.alert_count,
        notification.pk,
    )
    return RecordResult(notification, created=True)


def _record_in_one_statement(connection, parsed, notification, alerts):
    """The usual case on PostgreSQL: a newer run of a known model, unlocked.

    One statement reads the model and one writes everything, if nothing was
    recorded for the model in between (see `statements`); False when this
    notification needs the locked way: a new model, a late run or a webhook
    test, a summary to recompute, an enabled webhook (its deliveries are
    written under the lock), or a recording that came in between.
    """
    if connection.vendor != "postgresql":
        return False
    found = statements.read_versioned_model(connection, parsed.model_id)
    if found is None:
        return False
    model, version, any_webhook, next_id = found
    if any_webhook or not _is_newest_run(model, parsed):
        return False
    notification.model = model
    notification.pk = next_id
    summary = _next_summary(model, notification, parsed)
    if summary is None:
        return False
    return statements.record_newest(
        connection, model, version, summary, notification, alerts
    )


def _record_locked(connection, parsed, notification, alerts):
    """Record under the model's lock; a `RecordResult` for a duplicate, else None."""
    notification.pk = None
    # On SQLite, recordings take turns before the transaction (see `writers`).
    with (
        writers.turn(connection) as turn,
        transaction.atomic(using=connection.alias),
    ):
        turn.give_back_on_commit(connection.alias)
        model, any_webhook = _locked_model(connection, parsed)
        notification.model = model
        if not _insert_once(connection, notification, _is_newest_run(model, parsed)):
            return RecordResult(_log_duplicate(model, parsed), created=False)
        statements.insert_alerts(connection, notification, alerts)
        _update_model(connection, model, notification, parsed)
        if any_webhook:
            _after_recording(notification)
    return None


def _locked_model(connection, parsed):
    """The monitored model, made when new, locked until the transaction ends.

    Also says whether any webhook is enabled, which most often none is.

    The lock makes recordings for one model take turns (on SQLite the
    IMMEDIATE transaction does), so each sees every run recorded before it:
    the newest-run check below and the summary built on it stay right when
    runs of one model arrive at once.
    """
    found = statements.read_model(connection, parsed.model_id, lock=True)
    if found[0] is not None:
        return found
    # ON CONFLICT DO NOTHING: a concurrent first run of the same model
    # waits for the other's row instead of failing on the unique id.
    MonitoredModel.objects.using(connection.alias).bulk_create(
        [MonitoredModel(nannyml_id=parsed.model_id, name=parsed.model_name)],
        ignore_conflicts=True,
    )
    return statements.read_model(connection, parsed.model_id, lock=True)


def _is_newest_run(model, parsed):
    """A run newer than any recorded for the model, so it cannot be a repeat."""
    if parsed.notification_type == WEBHOOK_TEST:
        return False
    latest = model.last_run_started_at
    return latest is None or parsed.run_started_at > latest


def _new_notification(parsed, body, source):
    is_test = parsed.notification_type == WEBHOOK_TEST
    performance = sum(a.category == Category.PERFORMANCE for a in parsed.alerts)
    return Notification(
        notification_type=parsed.notification_type,
        run_started_at=parsed.run_started_at,
        report_link=parsed.report_link,
        succeeded=parsed.succeeded,
        performance_alert_count=0 if is_test else performance,
        other_alert_count=0 if is_test else len(parsed.alerts) - performance,
        body=body,
        source=source,
    )


def _new_alerts(notification, parsed):
    """The alerts as rows of `statements.ALERT_COLUMNS`."""
    if notification.is_test:
        return []
    return [
        (
            alert.category,
            kind_of(alert.category, alert.key),
            alert.key,
            alert.metric_name,
        )
        for alert in parsed.alerts
    ]


def _insert_once(connection, notification, newest):
    """Insert the notification; False when its run is recorded already.

    A run newer than every recorded one cannot repeat one, so it needs no
    savepoint. A late run or a webhook test may; the savepoint lets the
    unique constraint say so without aborting the transaction.
    """
    if newest:
        statements.insert(connection, notification)
        return True
    try:
        with transaction.atomic(using=connection.alias):
            statements.insert(connection, notification)
    except IntegrityError:
        return False
    return True


def _log_duplicate(model, parsed):
    existing = Notification.objects.select_related("model").get(
        model=model,
        notification_type=parsed.notification_type,
        run_started_at=parsed.run_started_at,
    )
    logger.info(
        "Duplicate %s for model %s run %s ignored (notification %s)",
        parsed.notification_type,
        parsed.model_id,
        parsed.run_started_at.isoformat(),
        existing.pk,
    )
    return existing


def _next_summary(model, notification, parsed):
    """The model's fields once this newest run is recorded, from its stored state.

    None when the state cannot be built on (see `history.summarize_next`).
    """
    run = history.run_of(
        notification.pk,
        parsed.run_started_at,
        parsed.succeeded,
        {(kind_of(a.category, a.key), a.key, a.metric_name) for a in parsed.alerts},
    )
    summary = history.summarize_next(model, run)
    if summary is not None:
        summary.update(_newest_run_fields(parsed))
    return summary


def _newest_run_fields(parsed):
    return {"name": parsed.model_name, "last_run_started_at": parsed.run_started_at}


def _update_model(connection, model, notification, parsed):
    """Move the model's summary on, and its name and last run for a newer run.

    One UPDATE. A run newer than the rest builds on the stored summary state;
    any other run (late, or the first after the state went stale) recomputes
    from the history, so a late old run cannot overwrite newer state.
    """
    if notification.is_test:
        return
    newest = _is_newest_run(model, parsed)
    summary = _next_summary(model, notification, parsed) if newest else None
    if summary is None:
        summary = history.summarize(model)
        if newest:
            summary.update(_newest_run_fields(parsed))
    statements.update(connection, MonitoredModel, model.pk, summary)


@receiver(post_delete, sender=Notification)
def forget_summary_state(sender, instance, origin=None, **kwargs):
    """A deleted run would live on in the stored summary state; drop the state.

    The model's next run then recomputes its summary from the history. When
    the model itself is deleted, its state goes with it.
    """
    if isinstance(origin, MonitoredModel):
        return
    MonitoredModel.objects.filter(pk=instance.model_id).update(summary_state=None)


def _after_recording(notification):
    """Work that belongs in the recording transaction besides the rows above."""
    delivery.create_deliveries(notification)
