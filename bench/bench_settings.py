"""The demo site's settings, routed through bench_urls for the floor view."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "bench_urls"
SECURE_SSL_REDIRECT = False
LOGGING["loggers"]["webhooks_app"]["level"] = "WARNING"  # noqa: F405
