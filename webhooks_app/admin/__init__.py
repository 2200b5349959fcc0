from webhooks_app.admin import inbound, notifications  # noqa: F401
