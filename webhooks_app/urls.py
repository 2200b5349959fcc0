from django.urls import path

from webhooks_app.views import dashboard
from webhooks_app.views.inbound import InboundNotificationView

app_name = "webhooks_app"

urlpatterns = [
    path(
        "webhooks/nannyml/",
        InboundNotificationView.as_view(),
        name="inbound",
    ),
    path("alerts/", dashboard.ModelListView.as_view(), name="dashboard"),
    path(
        "alerts/models/<int:model_id>/",
        dashboard.ModelDetailView.as_view(),
        name="dashboard_model",
    ),
    path(
        "alerts/models/<int:model_id>/runs/<int:notification_id>/",
        dashboard.RunDetailView.as_view(),
        name="dashboard_run",
    ),
]
