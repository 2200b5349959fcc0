import base64
import json
import re

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from webhooks_app.crypto import EncryptedTextField
from webhooks_app.models.notifications import RUN_COMPLETED, MonitoredModel
from webhooks_app.signing import generate_secret

# RFC 9110 section 5.6.2: a header name is a "token".
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
NOTIFICATION_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

_SET_BY_CLIENT = _(
    "%(name)s is set by the HTTP client from the address and the body, "
    "so it cannot be configured."
)
_HOP_BY_HOP = _(
    "%(name)s controls the connection, which the HTTP client manages, "
    "so it cannot be configured."
)
_SIGNATURE = _(
    "%(name)s is a signature header that delivery adds when it signs a "
    "notification, so it cannot be configured."
)
RESERVED_HEADERS = {
    "host": _SET_BY_CLIENT,
    "content-length": _SET_BY_CLIENT,
    "transfer-encoding": _SET_BY_CLIENT,
    "content-type": _(
        "%(name)s is always application/json, the format of the body, "
        "so it cannot be configured."
    ),
    "connection": _HOP_BY_HOP,
    "keep-alive": _HOP_BY_HOP,
    "te": _HOP_BY_HOP,
    "trailer": _HOP_BY_HOP,
    "upgrade": _HOP_BY_HOP,
    "webhook-id": _SIGNATURE,
    "webhook-timestamp": _SIGNATURE,
    "webhook-signature": _SIGNATURE,
}


def validate_header_name(name):
    if not HEADER_NAME.match(name):
        raise ValidationError(
            _(
                "%(name)s is not a valid header name: use letters, digits and "
                "- _ . ! # $ %% & ' * + ^ ` | ~, with no spaces or colons."
            ),
            code="invalid_header_name",
            params={"name": name[:100]},
        )
    reason = RESERVED_HEADERS.get(name.lower())
    if reason:
        raise ValidationError(reason, code="reserved_header", params={"name": name})


def validate_header_value(value):
    # A line break would end the header and start another one (header
    # injection); NUL is refused by every HTTP stack anyway.
    if any(char in value for char in "\r\n\x00"):
        raise ValidationError(
            _("A header value cannot contain line breaks (CR or LF) or NUL."),
            code="header_injection",
        )


def validate_notification_types(value):
    if not isinstance(value, list) or not value:
        raise ValidationError(
            _("Choose at least one notification type, such as RUN_COMPLETED."),
            code="no_notification_types",
        )
    for item in value:
        if not isinstance(item, str) or not NOTIFICATION_TYPE.match(item):
            raise ValidationError(
                _(
                    "%(type)s is not a notification type: use capitals, digits "
                    "and underscores, such as RUN_COMPLETED."
                ),
                code="invalid_notification_type",
                params={"type": str(item)[:64]},
            )


def default_notification_types():
    return [RUN_COMPLETED]


class Webhook(models.Model):
    """An address that recorded notifications are forwarded to."""

    class Auth(models.TextChoices):
        NONE = "", _("None")
        BASIC = "basic", _("Basic (user name and password)")
        BEARER = "bearer", _("Bearer token")

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(
        _("address"),
        max_length=2048,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=_("The full http:// or https:// address the server listens on."),
    )
    enabled = models.BooleanField(
        _("enabled"),
        default=False,
        help_text=_("Only a webhook whose configuration validated can be enabled."),
    )
    notification_types = models.JSONField(
        _("notification types"),
        default=default_notification_types,
        validators=[validate_notification_types],
    )
    monitored_models = models.ManyToManyField(
        MonitoredModel,
        verbose_name=_("only these models"),
        blank=True,
        related_name="webhooks",
        help_text=_("Leave empty to receive notifications about every model."),
    )
    only_with_alerts = models.BooleanField(_("only runs with alerts"), default=False)
    auth = models.CharField(
        _("authentication"), max_length=8, choices=Auth, blank=True, default=""
    )
    basic_username = models.CharField(_("user name"), max_length=200, blank=True)
    basic_password = EncryptedTextField(_("password"), blank=True)
    bearer_token = EncryptedTextField(_("bearer token"), blank=True)
    validated_at = models.DateTimeField(
        _("last validated"), null=True, blank=True, editable=False
    )
    validation_status_code = models.PositiveSmallIntegerField(
        _("validation status code"), null=True, blank=True, editable=False
    )
    validation_error = models.TextField(
        _("validation error"), blank=True, editable=False
    )
    # A keyed hash of what was validated (address, headers, credentials), to
    # tell whether the current configuration is the one that validated.
    validated_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(
        _("created"), default=timezone.now, editable=False
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    # Delivery: signing secrets, automatic disabling and the failure streak.
    signing_secret = EncryptedTextField(
        _("signing secret"), blank=True, default=generate_secret, editable=False
    )
    previous_signing_secret = EncryptedTextField(
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
    # When the drain task last queued for this webhook is due to run; while
    # one is queued, recording does not queue another (see delivery.py).
    drain_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def authorization(self):
        """The Authorization header value the authentication choice makes, or ''."""
        if self.auth == self.Auth.BASIC:
            pair = f"{self.basic_username}:{self.basic_password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        if self.auth == self.Auth.BEARER:
            return f"Bearer {self.bearer_token}"
        return ""

    def request_headers(self, headers=None):
        """The header pairs to send, with their real values.

        `headers` are `WebhookHeader` objects, saved or not; by default the
        saved ones.
        """
        headers = self.headers.all() if headers is None else headers
        values = {header.key: header.value for header in headers}
        if authorization := self.authorization():
            values["Authorization"] = authorization
        return values

    def secret_header_names(self, headers=None):
        """Names of the headers whose values are secret, as configured."""
        headers = self.headers.all() if headers is None else headers
        names = {header.key for header in headers if header.is_secret}
        if self.auth:
            names.add("Authorization")
        return names

    def fingerprint(self, headers=None):
        headers = self.request_headers(headers)
        pairs = sorted((key.lower(), value) for key, value in headers.items())
        text = json.dumps([self.url, pairs])
        key_salt = "webhooks_app.Webhook.fingerprint"
        return salted_hmac(key_salt, text, algorithm="sha256").hexdigest()

    def validation_is_current(self, headers=None):
        """Whether the last validation was of the configuration as it is now."""
        return bool(self.validated_fingerprint) and (
            self.validated_fingerprint == self.fingerprint(headers)
        )

    def is_validated(self, headers=None):
        """Whether the configuration as it is now answered 200 when validated."""
        return self.validation_status_code == 200 and self.validation_is_current(
            headers
        )

    def record_validation(self, report, fingerprint):
        """Keep what a validation found; saved by the caller."""
        self.validated_at = report.finished_at
        self.validation_status_code = report.status_code
        self.validation_error = "" if report.valid else report.message
        self.validated_fingerprint = fingerprint

    def save_validation(self):
        Webhook.objects.filter(pk=self.pk).update(
            validated_at=self.validated_at,
            validation_status_code=self.validation_status_code,
            validation_error=self.validation_error,
            validated_fingerprint=self.validated_fingerprint,
        )


class WebhookHeader(models.Model):
    webhook = models.ForeignKey(
        Webhook,
        verbose_name=_("webhook"),
        on_delete=models.CASCADE,
        related_name="headers",
    )
    key = models.CharField(
        _("header"), max_length=200, validators=[validate_header_name]
    )
    value = EncryptedTextField(_("value"), validators=[validate_header_value])
    is_secret = models.BooleanField(
        _("secret"),
        default=True,
        help_text=_("Secret values are shown masked; others are shown in full."),
    )

    class Meta:
        verbose_name = _("header")
        verbose_name_plural = _("headers")
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                Lower("key"),
                "webhook",
                name="webhooks_header_key_once",
                violation_error_code="duplicate_header",
                violation_error_message=_(
                    "This webhook already has this header (names ignore case)."
                ),
            )
        ]

    def __str__(self):
        return self.key
