from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksAppConfig(AppConfig):
    name = "webhooks_app"
    verbose_name = _("Webhooks and model alerts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from webhooks_app import (
            checks,  # noqa: F401  (registers the checks)
            delivery,  # noqa: F401  (connects its receivers)
            recording,  # noqa: F401  (connects its receivers)
        )
