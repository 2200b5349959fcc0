from webhooks_app.admin import deliveries, inbound, notifications  # noqa: F401
