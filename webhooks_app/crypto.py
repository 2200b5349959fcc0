"""Encryption at rest for secrets: header values, passwords, tokens.

Keys come from `WEBHOOKS_ENCRYPTION_KEYS`, a list of Fernet keys, newest
first. The newest encrypts; every key in the list decrypts, so a new key can
be put first while values written with the old one are still read. The
`webhooks_reencrypt` command then rewrites every value with the newest key,
after which the old key can be dropped.

`KEY_HINT` says how to make a key.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from webhooks_app.conf import app_settings

KEY_HINT = (
    'Make a key with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


class DecryptionError(ImproperlyConfigured):
    """A stored value that none of the configured keys decrypts."""


def configured_keys():
    """The configured keys as a list (a single string counts as one key)."""
    keys = app_settings.ENCRYPTION_KEYS
    if isinstance(keys, str | bytes):
        keys = [keys]
    return list(keys or [])


def key_problems():
    """(position, problem) for each configured key that is not a Fernet key."""
    problems = []
    for position, key in enumerate(configured_keys(), start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError) as error:
            problems.append((position, str(error)))
    return problems


def _fernet():
    keys = configured_keys()
    if not keys:
        raise ImproperlyConfigured(
            "Set WEBHOOKS_ENCRYPTION_KEYS to store or read secrets. " + KEY_HINT
        )
    return MultiFernet([Fernet(key) for key in keys])


def is_configured():
    return bool(configured_keys()) and not key_problems()


def encrypt(text):
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token, ttl=None):
    """The plain text of `token`; `ttl` refuses tokens older than that (seconds)."""
    try:
        return _fernet().decrypt(token.encode(), ttl=ttl).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret cannot be decrypted with WEBHOOKS_ENCRYPTION_KEYS; "
            "put the key it was written with back in the list."
        ) from None


class EncryptedTextField(models.TextField):
    """Text stored encrypted; code and forms see the plain text.

    The empty string is stored as it is. Values cannot be searched or
    compared in the database, since each encryption differs.
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)


def encrypted_fields(model):
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
