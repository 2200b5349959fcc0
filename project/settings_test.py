"""Settings for the test suite: the site's own, with what tests need changed."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-any-real-site")

from project.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WEBHOOKS_INBOUND_TOKEN = "test-inbound-token"  # noqa: S105
# Two keys, as after a rotation: the first encrypts, both decrypt.
WEBHOOKS_ENCRYPTION_KEYS = [
    "nCOwFq-Tvfra2pyR_xgikJPtskZgZ6Q-x050xk7MQYQ=",
    "U6wHjN8RHOKPa0da3txtYB2WHbcdGC-hHNFTqEh-UAA=",
]
