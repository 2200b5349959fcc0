"""The one write path: every notification, from any source, is recorded here."""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from webhooks_app import delivery, envelope, history
from webhooks_app.kinds import Category, kind_of
from webhooks_app.models import Alert, MonitoredModel, Notification
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

    with transaction.atomic():
        model = _locked_model(parsed)
        notification = _create_once(model, parsed, body or "", source)
        if notification is None:
            return RecordResult(_log_duplicate(model, parsed), created=False)
        _create_alerts(notification, parsed)
        _update_model(model, notification, parsed)
        _after_recording(notification)

    logger.info(
        "Recorded %s for model %s run %s: %d alerts (notification %s)",
        parsed.notification_type,
        parsed.model_id,
        parsed.run_started_at.isoformat(),
        notification.alert_count,
        notification.pk,
    )
    return RecordResult(notification, created=True)


def _locked_model(parsed):
    """The monitored model, made when new, locked until the transaction ends.

    The lock makes recordings for one model take turns (on SQLite the
    IMMEDIATE transaction does), so each sees every run recorded before it:
    the newest-run check below and the summary built on it stay right when
    runs of one model arrive at once.
    """
    models = MonitoredModel.objects.select_for_update()
    try:
        return models.get(nannyml_id=parsed.model_id)
    except MonitoredModel.DoesNotExist:
        # ON CONFLICT DO NOTHING: a concurrent first run of the same model
        # waits for the other's row instead of failing on the unique id.
        MonitoredModel.objects.bulk_create(
            [MonitoredModel(nannyml_id=parsed.model_id, name=parsed.model_name)],
            ignore_conflicts=True,
        )
    return models.get(nannyml_id=parsed.model_id)


def _is_newest_run(model, parsed):
    """A run newer than any recorded for the model, so it cannot be a repeat."""
    if parsed.notification_type == WEBHOOK_TEST:
        return False
    latest = model.last_run_started_at
    return latest is None or parsed.run_started_at > latest


def _create_notification(model, parsed, body, source):
    is_test = parsed.notification_type == WEBHOOK_TEST
    performance = sum(a.category == Category.PERFORMANCE for a in parsed.alerts)
    return Notification.objects.create(
        model=model,
        notification_type=parsed.notification_type,
        run_started_at=parsed.run_started_at,
        report_link=parsed.report_link,
        succeeded=parsed.succeeded,
        performance_alert_count=0 if is_test else performance,
        other_alert_count=0 if is_test else len(parsed.alerts) - performance,
        body=body,
        source=source,
    )


def _create_once(model, parsed, body, source):
    """The new notification, or None when this run is recorded already.

    A run newer than every recorded one cannot repeat one, so it needs no
    savepoint. A late run or a webhook test may; the savepoint lets the
    unique constraint say so without aborting the transaction.
    """
    if _is_newest_run(model, parsed):
        return _create_notification(model, parsed, body, source)
    try:
        with transaction.atomic():
            return _create_notification(model, parsed, body, source)
    except IntegrityError:
        return None


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


def _create_alerts(notification, parsed):
    if notification.is_test:
        return
    Alert.objects.bulk_create(
        Alert(
            notification=notification,
            model_id=notification.model_id,
            run_started_at=notification.run_started_at,
            category=alert.category,
            kind=kind_of(alert.category, alert.key),
            key=alert.key,
            metric_name=alert.metric_name,
        )
        for alert in parsed.alerts
    )


def _update_model(model, notification, parsed):
    """Move the model's summary on, and its name and last run for a newer run.

    One UPDATE. A run newer than the rest builds on the stored summary state;
    any other run (late, or the first after the state went stale) recomputes
    from the history, so a late old run cannot overwrite newer state.
    """
    if notification.is_test:
        return
    run = history.run_of(
        notification.pk,
        parsed.run_started_at,
        parsed.succeeded,
        {(kind_of(a.category, a.key), a.key, a.metric_name) for a in parsed.alerts},
    )
    newest = _is_newest_run(model, parsed)
    summary = history.summarize_next(model, run) if newest else None
    if summary is None:
        summary = history.summarize(model)
    if newest:
        summary.update(name=parsed.model_name, last_run_started_at=run.started_at)
    MonitoredModel.objects.filter(pk=model.pk).update(**summary)


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
