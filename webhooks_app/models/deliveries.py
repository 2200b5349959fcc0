import uuid

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
        GAVE_UP = "gave_up", _("Gave up")

    FINAL = (Status.DELIVERED, Status.FAILED, Status.GAVE_UP)

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
    # attempt_count when the delivery was last resent: the retry schedule
    # starts over from there.
    retry_base = models.PositiveIntegerField(default=0, editable=False)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Sent as webhook-id, the same on every attempt, so receivers drop repeats.
    message_id = models.UUIDField(
        _("message id"), default=uuid.uuid4, unique=True, editable=False
    )
    # While an attempt runs; a worker that dies lets it lapse, and the sweep
    # then sends the delivery again.
    locked_until = models.DateTimeField(
        _("in flight until"), null=True, blank=True, editable=False
    )
    last_error = models.CharField(_("last error"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "webhook"], name="webhooks_delivery_once"
            )
        ]
        indexes = [
            models.Index(
                fields=["status", "next_attempt_at"], name="webhooks_delivery_due"
            ),
            models.Index(
                fields=["webhook", "status", "finished_at"],
                name="webhooks_delivery_outcome",
            ),
        ]

    def __str__(self):
        return f"{self.notification} → {self.webhook}"


class DeliveryAttempt(models.Model):
    """One try at a delivery, with what was sent and what came back."""

    delivery = models.ForeignKey(
        Delivery,
        verbose_name=_("delivery"),
        on_delete=models.CASCADE,
        related_name="attempts",
    )
    number = models.PositiveIntegerField(_("attempt"), default=1)
    started_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
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
