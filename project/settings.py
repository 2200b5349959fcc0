"""Settings of the demo site, read from the environment and from `.env`."""

import base64
import hashlib
import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set SECRET_KEY, or DEBUG=true for the development default."
        )
    SECRET_KEY = "django-insecure-development-only-key"  # noqa: S105

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_tasks_db",
    "webhooks_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db(
        "DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var/db.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers and task workers write at once: WAL lets readers
    # go on beside a writer, IMMEDIATE takes the write lock when a transaction
    # starts (so it waits for it instead of failing half-way) and the timeout
    # says how long it waits.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
            " PRAGMA busy_timeout=20000;"
        ),
    }
    # A file, not memory, so that test servers and task workers started as
    # separate processes see the test database too.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test.sqlite3")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation." + name}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/alerts/"

TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")
    }
}

# The app's own settings; see webhooks_app/conf.py for all of them.
WEBHOOKS_INBOUND_TOKEN = env.str("WEBHOOKS_INBOUND_TOKEN", default="")
WEBHOOKS_SITE_URL = env.str("WEBHOOKS_SITE_URL", default="http://localhost:8000")
WEBHOOKS_ENCRYPTION_KEYS = env.list("WEBHOOKS_ENCRYPTION_KEYS", default=[])
if DEBUG and not WEBHOOKS_ENCRYPTION_KEYS:
    # Development only: a key derived from SECRET_KEY, so that `make run`
    # stores secrets with no setup. Secrets saved with it become unreadable
    # if SECRET_KEY changes; real sites set their own keys.
    WEBHOOKS_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(
            hashlib.sha256(b"webhooks_app encryption:" + SECRET_KEY.encode()).digest()
        ).decode()
    ]
WEBHOOKS_INBOUND_SIGNING_SECRET = env.str("WEBHOOKS_INBOUND_SIGNING_SECRET", default="")
# Delivery timing, when the environment sets it (e.g. WEBHOOKS_RETRY_SCHEDULE=0,5,300).
if "WEBHOOKS_RETRY_SCHEDULE" in os.environ:
    WEBHOOKS_RETRY_SCHEDULE = env.list("WEBHOOKS_RETRY_SCHEDULE", cast=float)
for _name in (
    "RETRY_JITTER",
    "SWEEP_INTERVAL",
    "STALE_AFTER",
    "LEASE_MARGIN",
    "DISABLE_AFTER",
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "DRAIN_SECONDS",
    "DETACH_AFTER",
):
    if f"WEBHOOKS_{_name}" in os.environ:
        globals()[f"WEBHOOKS_{_name}"] = env.float(f"WEBHOOKS_{_name}")
if "WEBHOOKS_RECORD_BATCH" in os.environ:
    WEBHOOKS_RECORD_BATCH = env.int("WEBHOOKS_RECORD_BATCH")
# False behind a pooler that cannot keep prepared statements (PgBouncer before
# 1.21 in transaction mode).
WEBHOOKS_PREPARED_STATEMENTS = env.bool("WEBHOOKS_PREPARED_STATEMENTS", default=True)

if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "webhooks_app": {"level": env.str("WEBHOOKS_LOG_LEVEL", default="INFO")},
    },
}
