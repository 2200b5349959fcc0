"""The one write path: every notification, from any source, is recorded here."""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

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
        model = _monitored_model(parsed)
        try:
            with transaction.atomic():
                notification = _create_notification(model, parsed, body or "", source)
        except IntegrityError:
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
            return RecordResult(existing, created=False)
        _create_alerts(notification, parsed)
        _refresh_model_summary(notification)
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


def _monitored_model(parsed):
    model, _ = MonitoredModel.objects.get_or_create(
        nannyml_id=parsed.model_id, defaults={"name": parsed.model_name}
    )
    if parsed.notification_type == WEBHOOK_TEST:
        return model
    # Only a newer run renames the model or moves its last run; a late
    # notification about an old run changes neither.
    MonitoredModel.objects.filter(pk=model.pk).filter(
        Q(last_run_started_at__isnull=True)
        | Q(last_run_started_at__lt=parsed.run_started_at)
    ).update(name=parsed.model_name, last_run_started_at=parsed.run_started_at)
    return model


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


def _refresh_model_summary(notification):
    """Recompute the dashboard summary of the notification's model.

    Computed afresh from the history rather than adjusted, so a late old run
    cannot overwrite newer state. The row lock makes concurrent recordings for
    one model take turns; the later one then reads the earlier one's rows.
    """
    if notification.is_test:
        return
    model = MonitoredModel.objects.select_for_update().get(pk=notification.model_id)
    summary = history.summarize(model)
    MonitoredModel.objects.filter(pk=model.pk).update(**summary)


def _after_recording(notification):
    """Work that belongs in the recording transaction besides the rows above."""
    delivery.create_deliveries(notification)
