from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from project.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("", include("webhooks_app.urls")),
]
