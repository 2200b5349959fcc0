from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webhooks_app.kinds import Category, Kind

RUN_COMPLETED = "RUN_COMPLETED"
WEBHOOK_TEST = "WEBHOOK_TEST"


class MonitoredModel(models.Model):
    nannyml_id = models.BigIntegerField(_("NannyML model id"), unique=True)
    name = models.CharField(_("name"), max_length=255)
    first_seen_at = models.DateTimeField(_("first seen"), default=timezone.now)
    last_run_started_at = models.DateTimeField(
        _("last run started"), null=True, blank=True, db_index=True
    )
    # A summary of the recent history, kept by recording so that the models
    # page reads one row per model; see webhooks_app.history.summarize.
    last_run = models.ForeignKey(
        "Notification",
        verbose_name=_("last run"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    open_alert_count = models.PositiveIntegerField(_("open alerts"), default=0)
    open_performance_count = models.PositiveIntegerField(
        _("open performance alerts"), default=0
    )
    open_drift_count = models.PositiveIntegerField(_("open drift alerts"), default=0)
    open_data_quality_count = models.PositiveIntegerField(
        _("open data quality alerts"), default=0
    )
    open_other_count = models.PositiveIntegerField(_("open other alerts"), default=0)
    longest_streak = models.PositiveIntegerField(_("longest current streak"), default=0)
    last_alerted_at = models.DateTimeField(
        _("last run with alerts started"), null=True, blank=True
    )
    usual_interval = models.DurationField(
        _("usual interval between runs"), null=True, blank=True
    )
    # What the summary of the next, newer run is computed from, so that
    # recording it need not read the history; see history.summarize_next.
    summary_state = models.JSONField(
        _("summary state"), null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("monitored model")
        verbose_name_plural = _("monitored models")
        ordering = ["name", "nannyml_id"]

    def __str__(self):
        return f"{self.name} (#{self.nannyml_id})"


class NotificationQuerySet(models.QuerySet):
    def runs(self):
        """Notifications about monitoring runs, leaving out webhook tests."""
        return self.exclude(notification_type=WEBHOOK_TEST)


class Notification(models.Model):
    class Source(models.TextChoices):
        INBOUND = "inbound", _("Inbound endpoint")
        HOST = "host", _("Host code")

    # Its own index would repeat the start of the unique constraint's.
    model = models.ForeignKey(
        MonitoredModel,
        verbose_name=_("model"),
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
    )
    notification_type = models.CharField(_("notification type"), max_length=64)
    run_started_at = models.DateTimeField(_("run started"))
    report_link = models.URLField(_("report link"), max_length=2048, blank=True)
    succeeded = models.JSONField(_("checks that passed"), default=list, blank=True)
    performance_alert_count = models.PositiveIntegerField(
        _("performance alerts"), default=0
    )
    other_alert_count = models.PositiveIntegerField(_("other alerts"), default=0)
    body = models.TextField(
        _("body as received"),
        blank=True,
        help_text=_("Empty for notifications recorded by host code."),
    )
    source = models.CharField(
        _("source"), max_length=16, choices=Source, default=Source.INBOUND
    )
    received_at = models.DateTimeField(_("received"), default=timezone.now)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-run_started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "notification_type", "run_started_at"],
                name="webhooks_notification_one_per_run",
            )
        ]
        indexes = [
            models.Index(
                fields=["model", "-run_started_at"], name="webhooks_notif_model_run"
            ),
            models.Index(fields=["-received_at"], name="webhooks_notif_received"),
        ]

    def __str__(self):
        started = f"{self.run_started_at:%Y-%m-%d %H:%M}"
        return f"{self.notification_type} {self.model.name} {started}"

    @property
    def alert_count(self):
        return self.performance_alert_count + self.other_alert_count

    @property
    def is_test(self):
        return self.notification_type == WEBHOOK_TEST


class Alert(models.Model):
    notification = models.ForeignKey(
        Notification,
        verbose_name=_("notification"),
        on_delete=models.CASCADE,
        related_name="alerts",
    )
    # Copied from the notification so that a model's alert history is one index
    # range scan, with no join. The indexes below start with it, so it needs
    # none of its own.
    model = models.ForeignKey(
        MonitoredModel,
        verbose_name=_("model"),
        on_delete=models.CASCADE,
        related_name="alerts",
        db_index=False,
    )
    run_started_at = models.DateTimeField(_("run started"))
    category = models.CharField(_("category"), max_length=16, choices=Category)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    key = models.CharField(
        _("estimator or calculator"),
        max_length=100,
        help_text=_("As the payload names it, for example cbpe or univariate_drift."),
    )
    metric_name = models.CharField(_("metric"), max_length=255)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        # The order they came in, which is the order they are sent on in.
        ordering = ["pk"]
        indexes = [
            models.Index(
                fields=["model", "-run_started_at"], name="webhooks_alert_model_run"
            ),
            models.Index(
                fields=["model", "kind", "key", "metric_name", "-run_started_at"],
                name="webhooks_alert_model_metric",
            ),
        ]

    def __str__(self):
        return f"{self.key}: {self.metric_name}"
