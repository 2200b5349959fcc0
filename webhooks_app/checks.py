"""System checks for the app's settings."""

from django.core import checks

from webhooks_app import signing
from webhooks_app.conf import app_settings


@checks.register()
def check_settings(app_configs=None, **kwargs):
    errors = []
    max_body = app_settings.MAX_BODY_BYTES
    if not isinstance(max_body, int) or max_body <= 0:
        errors.append(
            checks.Error(
                "WEBHOOKS_MAX_BODY_BYTES must be a positive whole number of bytes.",
                hint="Leave it unset for the default of 1 MiB.",
                id="webhooks_app.E001",
            )
        )
    max_alerts = app_settings.MAX_ALERTS
    if not isinstance(max_alerts, int) or max_alerts <= 0:
        errors.append(
            checks.Error(
                "WEBHOOKS_MAX_ALERTS must be a positive whole number.",
                hint="Leave it unset for the default of 1000.",
                id="webhooks_app.E002",
            )
        )
    errors.extend(check_delivery_settings())
    return errors


def check_delivery_settings():
    errors = []
    schedule = app_settings.RETRY_SCHEDULE
    if not _numbers(schedule) or not schedule:
        errors.append(
            checks.Error(
                "WEBHOOKS_RETRY_SCHEDULE must be a non-empty list of seconds "
                "(numbers of zero or more), one per attempt.",
                hint="For example [0, 5, 300, 1800]; leave it unset for the default.",
                id="webhooks_app.E020",
            )
        )
    jitter = app_settings.RETRY_JITTER
    if not _numbers([jitter]) or jitter >= 1:
        errors.append(
            checks.Error(
                "WEBHOOKS_RETRY_JITTER must be a fraction from 0 up to (not "
                "including) 1.",
                hint="Leave it unset for the default of 0.2 (±20 %).",
                id="webhooks_app.E021",
            )
        )
    for name in ("SWEEP_INTERVAL", "STALE_AFTER", "DISABLE_AFTER", "RETRY_AFTER_MAX"):
        value = getattr(app_settings, name)
        if not _numbers([value]) or value <= 0:
            errors.append(
                checks.Error(
                    f"WEBHOOKS_{name} must be a positive number of seconds.",
                    hint="Leave it unset for the default.",
                    id="webhooks_app.E022",
                )
            )
    secret = app_settings.INBOUND_SIGNING_SECRET
    if secret and not (
        secret.startswith(signing.SECRET_PREFIX) and signing.is_valid_secret(secret)
    ):
        errors.append(
            checks.Error(
                "WEBHOOKS_INBOUND_SIGNING_SECRET is not a whsec_ secret.",
                hint="Use whsec_ followed by base64 text, as the sender shows it.",
                id="webhooks_app.E023",
            )
        )
    if not app_settings.SITE_URL:
        errors.append(
            checks.Warning(
                "WEBHOOKS_SITE_URL is not set, so notifications recorded by host "
                "code are forwarded without a link to their dashboard page.",
                hint="Set it to the site's absolute address, e.g. https://alerts.example.com.",
                id="webhooks_app.W020",
            )
        )
    return errors


def _numbers(values):
    try:
        return all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
            for v in values
        )
    except TypeError:
        return False
