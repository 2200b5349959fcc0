"""System checks for the app's settings."""

from django.core import checks

from webhooks_app import crypto, signing
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


@checks.register()
def check_encryption_keys(app_configs=None, **kwargs):
    keys = app_settings.ENCRYPTION_KEYS
    if not isinstance(keys, list | tuple | str):
        return [
            checks.Error(
                "WEBHOOKS_ENCRYPTION_KEYS must be a list of Fernet keys, newest first.",
                hint=crypto.KEY_HINT,
                id="webhooks_app.E010",
            )
        ]
    if not crypto.configured_keys():
        # A warning, not an error: a site can run, and commands such as
        # migrate work, before any secret is stored.
        return [
            checks.Warning(
                "WEBHOOKS_ENCRYPTION_KEYS is empty, so webhook header values "
                "and credentials cannot be saved.",
                hint=crypto.KEY_HINT,
                id="webhooks_app.W010",
            )
        ]
    return [
        checks.Error(
            f"Key {position} of WEBHOOKS_ENCRYPTION_KEYS is not a Fernet key "
            f"(32 bytes in URL-safe base64): {problem}",
            hint=crypto.KEY_HINT,
            id="webhooks_app.E011",
        )
        for position, problem in crypto.key_problems()
    ]


@checks.register()
def check_outbound_settings(app_configs=None, **kwargs):
    errors = []
    if not isinstance(app_settings.ALLOW_PRIVATE_ADDRESSES, bool):
        errors.append(
            checks.Error(
                "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES must be True or False.",
                hint="Leave it unset for the default, True.",
                id="webhooks_app.E012",
            )
        )
    for name in ("CONNECT_TIMEOUT", "READ_TIMEOUT", "TOTAL_TIMEOUT"):
        value = getattr(app_settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors.append(
                checks.Error(
                    f"WEBHOOKS_{name} must be a positive number of seconds.",
                    hint="Leave it unset for the default.",
                    id="webhooks_app.E013",
                )
            )
    return errors


DASHBOARD_NUMBERS = {
    "DASHBOARD_RUNS": ("webhooks_app.E030", 30),
    "DASHBOARD_HISTORY_RUNS": ("webhooks_app.E031", 100),
    "DASHBOARD_PAGE_SIZE": ("webhooks_app.E032", 50),
    "DASHBOARD_RUN_PAGE_SIZE": ("webhooks_app.E033", 20),
    "DASHBOARD_EXPORT_MAX_ROWS": ("webhooks_app.E034", 10000),
}


@checks.register()
def check_dashboard_settings(app_configs=None, **kwargs):
    errors = []
    for name, (check_id, default) in DASHBOARD_NUMBERS.items():
        value = getattr(app_settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            errors.append(
                checks.Error(
                    f"WEBHOOKS_{name} must be a positive whole number.",
                    hint=f"Leave it unset for the default of {default}.",
                    id=check_id,
                )
            )
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
    timings = ("SWEEP_INTERVAL", "STALE_AFTER", "DISABLE_AFTER", "RETRY_AFTER_MAX")
    for name in (*timings, "DRAIN_SECONDS"):
        value = getattr(app_settings, name)
        if not _numbers([value]) or value <= 0:
            errors.append(
                checks.Error(
                    f"WEBHOOKS_{name} must be a positive number of seconds.",
                    hint="Leave it unset for the default.",
                    id="webhooks_app.E022",
                )
            )
    batch = app_settings.DRAIN_BATCH
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        errors.append(
            checks.Error(
                "WEBHOOKS_DRAIN_BATCH must be a whole number of 1 or more.",
                hint="Leave it unset for the default of 100.",
                id="webhooks_app.E024",
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
