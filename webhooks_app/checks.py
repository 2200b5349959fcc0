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
