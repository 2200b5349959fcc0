"""The demo site plus one bare view, the floor the benchmarks compare against."""

from django.db import connection
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from project.urls import urlpatterns as site_urlpatterns


@csrf_exempt
def floor(request):
    """Store the raw body as one row: the least any inbound endpoint must do."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_floor (body) VALUES (%s)", [request.body.decode()]
        )
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/floor/", floor), *site_urlpatterns]
