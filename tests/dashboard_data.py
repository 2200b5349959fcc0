"""Building monitoring histories for the dashboard tests and benchmark."""

import datetime

from webhooks_app import history
from webhooks_app.kinds import Category, kind_of
from webhooks_app.models import Alert, MonitoredModel, Notification
from webhooks_app.recording import record_notification

START = datetime.datetime(2024, 3, 1, 6, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def run_envelope(
    model_id=512,
    day=0,
    performance=None,
    other=None,
    success=None,
    name="churn classifier",
    link="https://app.nannyml.com/model/512",
):
    """A RUN_COMPLETED envelope for the run `day` days after START."""
    started = START + day * DAY
    return {
        "header": {
            "model_name": name,
            "model_id": model_id,
            "notification_type": "RUN_COMPLETED",
        },
        "payload": {
            "run": {"started_at": started.isoformat()},
            "performance_alerts": _groups(performance),
            "other_alerts": _groups(other),
            "success": list(success or []),
            "report_link": link,
        },
    }


def _groups(alerts):
    return {
        key: [{"metric_name": metric} for metric in metrics]
        for key, metrics in (alerts or {}).items()
    }


def record_runs(states, model_id=512, key="univariate_drift", metric="country"):
    """Record one run per character of `states`, oldest first.

    "A" alerts on `metric`, "." checks `key` without an alert, "-" is a run
    that reported nothing (a failed run).
    """
    for day, state in enumerate(states):
        other = {key: [metric]} if state == "A" else None
        success = [key] if state == "." else None
        record_notification(run_envelope(model_id, day, other=other, success=success))
    return MonitoredModel.objects.get(nannyml_id=model_id)


def bulk_history(model_id, runs, alerts_per_run, name=None, using="default"):
    """`runs` daily runs with alerts, through bulk inserts; returns the model.

    Metric i alerts in run r when (r + i) % 3 != 0, so there are streaks,
    recoveries and flips. The summary is refreshed as recording would.
    """
    model = MonitoredModel.objects.using(using).create(
        nannyml_id=model_id, name=name or f"model {model_id}"
    )
    notifications = Notification.objects.using(using).bulk_create(
        _notification(model, run, alerts_per_run) for run in range(runs)
    )
    Alert.objects.using(using).bulk_create(
        (
            alert
            for notification in notifications
            for alert in _alerts(notification, alerts_per_run)
        ),
        batch_size=2000,
    )
    refresh_summary(model, using)
    return model


def refresh_summary(model, using="default"):
    model.refresh_from_db(using=using)
    MonitoredModel.objects.using(using).filter(pk=model.pk).update(
        last_run_started_at=Notification.objects.using(using)
        .filter(model=model)
        .latest("run_started_at")
        .run_started_at,
        **history.summarize(model),
    )


def _metrics(count):
    keys = ["cbpe", "univariate_drift", "missing_values", "summary_stats_avg"]
    return [
        (Category.PERFORMANCE if i % 4 == 0 else Category.OTHER, keys[i % 4], f"m{i}")
        for i in range(count)
    ]


def _notification(model, run, alerts_per_run):
    alerting = [m for i, m in enumerate(_metrics(alerts_per_run)) if (run + i) % 3]
    performance = sum(category == Category.PERFORMANCE for category, _k, _m in alerting)
    return Notification(
        model=model,
        notification_type="RUN_COMPLETED",
        run_started_at=START + run * DAY,
        report_link=f"https://app.nannyml.com/model/{model.nannyml_id}",
        succeeded=sorted({key for _c, key, _m in _metrics(alerts_per_run)}),
        performance_alert_count=performance,
        other_alert_count=len(alerting) - performance,
    )


def _alerts(notification, alerts_per_run):
    run = (notification.run_started_at - START) // DAY
    for i, (category, key, metric) in enumerate(_metrics(alerts_per_run)):
        if (run + i) % 3:
            yield Alert(
                notification=notification,
                model_id=notification.model_id,
                run_started_at=notification.run_started_at,
                category=category,
                kind=kind_of(category, key),
                key=key,
                metric_name=metric,
            )
