"""System checks for the app's settings."""

from django.core import checks

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
