from webhooks_app.admin import inbound, notifications, webhooks  # noqa: F401
