from django.contrib import admin
from django.urls import include, path

from project.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("webhooks_app.urls")),
]
