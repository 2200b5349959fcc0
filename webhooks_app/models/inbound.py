import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webhooks_app.crypto import EncryptedTextField
from webhooks_app.signing import SECRET_PREFIX, is_valid_secret

TOKEN_PREFIX = "whin_"  # noqa: S105  (a marker, not a secret)


def validate_signing_secret(value):
    if value and not (value.startswith(SECRET_PREFIX) and is_valid_secret(value)):
        raise ValidationError(
            _("Enter a secret of the form whsec_ followed by base64 text."),
            code="invalid_signing_secret",
        )


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


class InboundTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class InboundToken(models.Model):
    """A credential that a monitoring system presents to the inbound endpoint.

    Only a hash of the token is kept; the token itself is shown once, when the
    row is created.
    """

    name = models.CharField(
        _("name"), max_length=100, help_text=_("Who uses it, for example prod-nannyml.")
    )
    token_hash = models.CharField(
        _("token hash"), max_length=64, unique=True, editable=False
    )
    hint = models.CharField(_("ends with"), max_length=8, editable=False)
    created_at = models.DateTimeField(
        _("created"), default=timezone.now, editable=False
    )
    last_used_at = models.DateTimeField(
        _("last used"), null=True, blank=True, editable=False
    )
    revoked_at = models.DateTimeField(
        _("revoked"), null=True, blank=True, editable=False
    )
    signing_secret = EncryptedTextField(
        _("signing secret"),
        blank=True,
        validators=[validate_signing_secret],
        help_text=_(
            "A whsec_… secret. When set, every request with this token must "
            "also be signed with it (Standard Webhooks headers)."
        ),
    )

    objects = InboundTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("inbound token")
        verbose_name_plural = _("inbound tokens")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} (…{self.hint})"

    @property
    def is_active(self):
        return self.revoked_at is None

    def set_new_token(self):
        """Give the row a fresh token and return it; only its hash is stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.token_hash = hash_token(token)
        self.hint = token[-4:]
        return token

    def revoke(self):
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])


class InboundMessage(models.Model):
    """A webhook-id seen on a signed inbound request, so a repeat is dropped.

    Kept only as long as a signature's timestamp is accepted; older ids could
    not pass the timestamp check anyway.
    """

    message_id = models.CharField(_("message id"), max_length=255, unique=True)
    notification = models.ForeignKey(
        "webhooks_app.Notification",
        verbose_name=_("notification"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    received_at = models.DateTimeField(
        _("received"), default=timezone.now, db_index=True
    )

    class Meta:
        verbose_name = _("signed inbound message")
        verbose_name_plural = _("signed inbound messages")

    def __str__(self):
        return self.message_id
