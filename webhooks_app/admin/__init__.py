from webhooks_app.admin import (  # noqa: F401
    deliveries,
    inbound,
    notifications,
    webhooks,
)
