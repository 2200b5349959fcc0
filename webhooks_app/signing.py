"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A message is signed as `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")),
where the key is the base64 part of a `whsec_…` secret. The headers are
`webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
(space-separated signatures, one per secret that is signing).
"""

import base64
import binascii
import datetime
import hashlib
import hmac
import secrets
import time

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SECRET_PREFIX = "whsec_"  # noqa: S105  (a marker, not a secret)
SECRET_BYTES = 24
ROTATION_OVERLAP = datetime.timedelta(hours=24)
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
HEADERS = (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)


class SignatureError(Exception):
    """A signed request that does not verify; `code` says why."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def generate_secret():
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def is_valid_secret(secret):
    try:
        return bool(_key(secret))
    except ValueError:
        return False


def _key(secret):
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("not a base64 secret") from None


def sign(secret, message_id, timestamp, body):
    """The `v1,…` signature of `body` (bytes) sent as `message_id` at `timestamp`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(message_id, body, signing_secrets, timestamp=None):
    """The three headers for `body`, signed with every secret in `signing_secrets`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(
            sign(secret, message_id, timestamp, body) for secret in signing_secrets
        ),
    }


def webhook_secrets(webhook, now=None):
    """The secrets that sign for `webhook` now: its own, and the previous one
    while its overlap lasts."""
    now = now or timezone.now()
    found = [webhook.signing_secret] if webhook.signing_secret else []
    expires = webhook.previous_secret_expires_at
    if webhook.previous_signing_secret and expires and expires > now:
        found.append(webhook.previous_signing_secret)
    return found


def rotate_secret(webhook, now=None):
    """Give `webhook` a new secret; the old one keeps signing beside it a while."""
    now = now or timezone.now()
    webhook.previous_signing_secret = webhook.signing_secret
    webhook.previous_secret_expires_at = now + ROTATION_OVERLAP
    webhook.signing_secret = generate_secret()
    webhook.save(
        update_fields=[
            "signing_secret",
            "previous_signing_secret",
            "previous_secret_expires_at",
        ]
    )
    return webhook.signing_secret


def verify(signing_secrets, headers, body, tolerance, now=None):
    """Check a signed request; return its message id or raise `SignatureError`.

    `headers` maps lower-case names to values; `body` is the raw bytes.
    """
    message_id = headers.get(ID_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    offered = headers.get(SIGNATURE_HEADER, "")
    if not (message_id and timestamp and offered):
        raise SignatureError(
            _("Send webhook-id, webhook-timestamp and webhook-signature together."),
            "signature_missing",
        )
    _check_timestamp(timestamp, tolerance, now)
    expected = [
        sign(s, message_id, timestamp, body)
        for s in signing_secrets
        if is_valid_secret(s)
    ]
    # Compare every pair, so the time taken says nothing about which one matched.
    matched = False
    for candidate in offered.split():
        for signature in expected:
            matched |= hmac.compare_digest(candidate.encode(), signature.encode())
    if not matched:
        raise SignatureError(_("The signature does not match."), "signature_invalid")
    return message_id


def _check_timestamp(timestamp, tolerance, now):
    now = time.time() if now is None else now
    try:
        sent = int(timestamp)
    except ValueError:
        sent = None
    if sent is None or abs(now - sent) > tolerance:
        raise SignatureError(
            _(
                "webhook-timestamp must be Unix seconds within %(seconds)d "
                "seconds of now."
            )
            % {"seconds": tolerance},
            "timestamp_out_of_range",
        )
