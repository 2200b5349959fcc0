"""System checks for the app's settings."""

from django.core import checks

from webhooks_app import crypto
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
