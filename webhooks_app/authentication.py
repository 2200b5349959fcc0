"""The credential the inbound endpoint asks for: `Authorization: Bearer <token>`."""

import datetime
import hashlib
import hmac
import logging
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions

from webhooks_app.conf import app_settings
from webhooks_app.models import InboundToken
from webhooks_app.models.inbound import hash_token

logger = logging.getLogger("webhooks_app.inbound")

LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class InboundCredential:
    """Who sent a request: the site's setting token, or an `InboundToken` row."""

    token: InboundToken | None = None

    @property
    def signing_secret(self):
        """The whsec_ secret that signs this sender's requests, if it has one."""
        if self.token is None:
            return app_settings.INBOUND_SIGNING_SECRET
        return self.token.signing_secret

    @property
    def label(self):
        return "settings token" if self.token is None else f"token {self.token.pk}"


def _digest(value):
    return hashlib.sha256(value.encode()).digest()


class InboundTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header:
            raise exceptions.NotAuthenticated(
                _("Send the token as an Authorization: Bearer <token> header.")
            )
        if header[0].lower() != self.keyword.lower().encode() or len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("The Authorization header must be Bearer followed by the token.")
            )
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                _("Unknown or revoked token.")
            ) from None
        credential = self.credential_for(token)
        if credential is None:
            raise exceptions.AuthenticationFailed(_("Unknown or revoked token."))
        return (None, credential)

    def credential_for(self, token):
        configured = app_settings.INBOUND_TOKEN
        if configured and hmac.compare_digest(_digest(token), _digest(configured)):
            return InboundCredential()
        # The lookup is by a hash of the token, so its timing says nothing
        # about the token itself.
        row = InboundToken.objects.active().filter(token_hash=hash_token(token)).first()
        if row is None:
            return None
        # Written at most once a minute, so a busy sender adds no write per call.
        now = timezone.now()
        InboundToken.objects.filter(pk=row.pk).filter(
            Q(last_used_at__isnull=True)
            | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        return InboundCredential(token=row)

    def authenticate_header(self, request):
        return self.keyword


class HasInboundCredential(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, InboundCredential)
