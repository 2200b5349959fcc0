from webhooks_app.models.deliveries import Delivery, DeliveryAttempt
from webhooks_app.models.inbound import InboundMessage, InboundToken
from webhooks_app.models.notifications import Alert, MonitoredModel, Notification
from webhooks_app.models.webhooks import Webhook, WebhookHeader

__all__ = [
    "Alert",
    "Delivery",
    "DeliveryAttempt",
    "InboundMessage",
    "InboundToken",
    "MonitoredModel",
    "Notification",
    "Webhook",
    "WebhookHeader",
]
