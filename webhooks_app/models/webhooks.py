from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webhooks_app.models.notifications import RUN_COMPLETED, MonitoredModel
from webhooks_app.signing import generate_secret


def default_notification_types():
    return [RUN_COMPLETED]


class Webhook(models.Model):
    """An address that recorded notifications are forwarded to."""

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("address"), max_length=2048)
    enabled = models.BooleanField(_("enabled"), default=False)
    notification_types = models.JSONField(
        _("notification types"), default=default_notification_types
    )
    monitored_models = models.ManyToManyField(
        MonitoredModel,
        verbose_name=_("only these models"),
        blank=True,
        related_name="webhooks",
        help_text=_("Leave empty to receive notifications about every model."),
    )
    only_with_alerts = models.BooleanField(_("only runs with alerts"), default=False)
    created_at = models.DateTimeField(
        _("created"), default=timezone.now, editable=False
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    # Delivery: signing secrets, automatic disabling and the failure streak.
    # TODO: keep the secrets in an encrypted field, like the header values.
    signing_secret = models.TextField(
        _("signing secret"), blank=True, default=generate_secret, editable=False
    )
    previous_signing_secret = models.TextField(
        _("previous signing secret"), blank=True, editable=False
    )
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret signs until"), null=True, blank=True, editable=False
    )
    disabled_reason = models.CharField(
        _("disabled because"), max_length=255, blank=True, editable=False
    )
    disabled_at = models.DateTimeField(
        _("disabled"), null=True, blank=True, editable=False
    )
    failing_since = models.DateTimeField(
        _("failing since"), null=True, blank=True, editable=False
    )
    consecutive_failures = models.PositiveIntegerField(
        _("failed attempts in a row"), default=0, editable=False
    )
    paused_until = models.DateTimeField(
        _("paused until"), null=True, blank=True, editable=False
    )
    busy_until = models.DateTimeField(
        _("attempt in flight until"), null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def request_headers(self):
        """The configured header pairs, with their real values, for sending."""
        return {header.key: header.value for header in self.headers.all()}


class WebhookHeader(models.Model):
    webhook = models.ForeignKey(
        Webhook,
        verbose_name=_("webhook"),
        on_delete=models.CASCADE,
        related_name="headers",
    )
    key = models.CharField(_("header"), max_length=200)
    value = models.TextField(_("value"))
    is_secret = models.BooleanField(_("secret"), default=True)

    class Meta:
        verbose_name = _("header")
        verbose_name_plural = _("headers")
        ordering = ["pk"]

    def __str__(self):
        return self.key
