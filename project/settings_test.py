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
