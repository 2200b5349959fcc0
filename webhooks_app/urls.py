from django.urls import path

from webhooks_app.views.inbound import InboundNotificationView

app_name = "webhooks_app"

urlpatterns = [
    path(
        "webhooks/nannyml/",
        InboundNotificationView.as_view(),
        name="inbound",
    ),
]
