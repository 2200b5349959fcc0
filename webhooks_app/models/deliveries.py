from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webhooks_app.models.notifications import Notification
from webhooks_app.models.webhooks import Webhook


class Delivery(models.Model):
    """One notification on its way to one webhook: the outbox row."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    notification = models.ForeignKey(
        Notification,
        verbose_name=_("notification"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    webhook = models.ForeignKey(
        Webhook,
        verbose_name=_("webhook"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status, default=Status.PENDING
    )
    attempt_count = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "webhook"], name="webhooks_delivery_once"
            )
        ]

    def __str__(self):
        return f"{self.notification} → {self.webhook}"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(
        Delivery,
        verbose_name=_("delivery"),
        on_delete=models.CASCADE,
        related_name="attempts",
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    request_headers = models.JSONField(_("request headers"), default=dict)
    status_code = models.PositiveSmallIntegerField(
        _("status code"), null=True, blank=True
    )
    response_body = models.TextField(_("response body (start)"), blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["-started_at", "-pk"]

    def __str__(self):
        return f"{self.delivery} at {self.started_at:%Y-%m-%d %H:%M:%S}"
