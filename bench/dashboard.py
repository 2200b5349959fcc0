"""Dashboard pages at 1,000 models x 200 runs x about 5 alerts, beside a floor.

Fills PostgreSQL and then SQLite (a temporary file) through bulk inserts and
times each dashboard page against the floor: a plain page listing 50 models
from one query, behind the same login, middleware and base template. Prints
p50 and p95 per page and the ratio of the p95s.

    .venv/bin/python bench/dashboard.py [--models 1000] [--runs 200]
"""

import argparse
import datetime
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
PG_NAME = "webhooks_bench_dashboard"
METRICS = [
    ("performance", "cbpe", "roc_auc"),
    ("performance", "cbpe", "f1"),
    ("other", "univariate_drift", "country"),
    ("other", "univariate_drift", "plan"),
    ("other", "univariate_drift", "tenure"),
    ("other", "missing_values", "age"),
    ("other", "summary_stats_avg", "income"),
    ("other", "my_custom_check", "latency"),
]
REQUESTS = 40
WARMUP = 3


def main():
    args = parse_args()
    if args.child:
        return child(args)
    print(f"Dashboard: {args.models} models x {args.runs} runs x ~5 alerts")
    databases = []
    if pg_available():
        databases.append(("PostgreSQL", f"{PG_SERVER}/{PG_NAME}"))
    else:
        print("PostgreSQL is not reachable on 127.0.0.1:5432; measuring SQLite only.")
    with tempfile.TemporaryDirectory() as tmp:
        databases.append(("SQLite", f"sqlite:///{tmp}/bench.sqlite3"))
        for label, url in databases:
            run_child(label, url, args)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


def pg_available():
    return (
        subprocess.run(
            ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False
        ).returncode
        == 0
    )


def psql(command):
    subprocess.run(
        ["psql", PG_SERVER + "/postgres", "-q", "-c", command],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def run_child(label, url, args):
    if label == "PostgreSQL":
        psql(f"DROP DATABASE IF EXISTS {PG_NAME}")
        psql(f"CREATE DATABASE {PG_NAME}")
    env = dict(
        os.environ,
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="project.settings_test",
        WEBHOOKS_LOG_LEVEL="WARNING",
        CONN_MAX_AGE="600",
    )
    env.pop("DEBUG", None)
    command = [sys.executable, __file__, "--child", label]
    command += ["--models", str(args.models), "--runs", str(args.runs)]
    try:
        subprocess.run(command, env=env, check=True, cwd=ROOT)
    finally:
        if label == "PostgreSQL":
            psql(f"DROP DATABASE IF EXISTS {PG_NAME}")


def child(args):
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    alerts = fill(args.models, args.runs)
    print(
        f"\n{args.child}: filled {args.models * args.runs:,} runs and"
        f" {alerts:,} alerts in {time.perf_counter() - started:.0f} s"
    )
    report(measure(args.models))


def fill(model_count, run_count):
    """Bulk-insert the history, then compute each model's summary once."""
    from django.db import transaction

    from webhooks_app import history
    from webhooks_app.models import MonitoredModel

    rng = random.Random(5)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    models = MonitoredModel.objects.bulk_create(
        MonitoredModel(
            nannyml_id=10_000 + i,
            name=f"model {i:04d}",
            last_run_started_at=now - datetime.timedelta(hours=i % 48),
        )
        for i in range(model_count)
    )
    total = 0
    for start in range(0, model_count, 50):
        batch = models[start : start + 50]
        with transaction.atomic():
            total += insert_runs(batch, run_count, now, rng)
            for model in batch:
                summary = history.summarize(model)
                MonitoredModel.objects.filter(pk=model.pk).update(**summary)
    return total


def insert_runs(models, run_count, now, rng):
    """Notifications through the ORM, alerts through COPY or executemany."""
    from webhooks_app.models import Notification

    notifications = Notification.objects.bulk_create(
        notification
        for model in models
        for notification in runs_of(model, run_count, now, rng)
    )
    rows = [
        (n.pk, n.model_id, n.run_started_at, category, kind, key, metric)
        for n in notifications
        for category, kind, key, metric in n.bench_alerts
    ]
    copy_alerts(rows)
    return len(rows)


def runs_of(model, run_count, now, rng):
    from webhooks_app.kinds import kind_of
    from webhooks_app.models import Notification

    last = model.last_run_started_at
    for run in range(run_count):
        started = last - datetime.timedelta(hours=6 * run)
        chosen = rng.sample(METRICS, rng.choice((3, 4, 5, 6, 7)))
        alerts = [(c, kind_of(c, k), k, m) for c, k, m in chosen]
        performance = sum(c == "performance" for c, *_ in alerts)
        notification = Notification(
            model=model,
            notification_type="RUN_COMPLETED",
            run_started_at=started,
            report_link=f"https://app.nannyml.com/model/{model.nannyml_id}",
            succeeded=["reconstruction_error", "unseen_values"],
            performance_alert_count=performance,
            other_alert_count=len(alerts) - performance,
            received_at=now,
        )
        notification.bench_alerts = alerts
        yield notification


def copy_alerts(rows):
    from django.db import connection

    columns = (
        "notification_id, model_id, run_started_at, category, kind, key, metric_name"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"COPY webhooks_app_alert ({columns}) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * 7)
            sql = f"INSERT INTO webhooks_app_alert ({columns}) VALUES ({marks})"  # noqa: S608
            cursor.executemany(sql, rows)


def measure(model_count):
    """p50 and p95 in milliseconds per page, the floor first."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from webhooks_app.models import MonitoredModel

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    user = User.objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    models = list(
        MonitoredModel.objects.select_related("last_run")[
            : model_count : max(1, model_count // 20)
        ]
    )
    pages = {
        "floor (50 models, one query)": lambda i: "/bench/floor/",
        "models page": lambda i: "/alerts/",
        "models page, alerts, filtered": lambda i: (
            "/alerts/?sort=alerts&filter=alerting&page=2"
        ),
        "models page, search": lambda i: f"/alerts/?q=model+0{i % 10}",
        "model page": lambda i: f"/alerts/models/{models[i % len(models)].nannyml_id}/",
        "model page, grid CSV": lambda i: (
            f"/alerts/models/{models[i % len(models)].nannyml_id}/?format=csv"
        ),
        "run page": lambda i: run_url(models[i % len(models)]),
    }
    global urlpatterns  # this module serves as the URLconf while measuring
    urlpatterns = bench_urlpatterns()
    results = {}
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"]):
        for name, url in pages.items():
            results[name] = time_page(client, url)
    return results


def run_url(model):
    return f"/alerts/models/{model.nannyml_id}/runs/{model.last_run_id}/"


def time_page(client, url):
    timings = []
    for i in range(WARMUP + REQUESTS):
        started = time.perf_counter()
        response = client.get(url(i))
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (url(i), response.status_code)
        if i >= WARMUP:
            timings.append(elapsed)
    percentiles = statistics.quantiles(timings, n=20)
    return statistics.median(timings), percentiles[18]


def report(results):
    _floor_p50, floor_p95 = next(iter(results.values()))
    print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'p95/floor':>10}")
    for name, (p50, p95) in results.items():
        print(f"{name:34} {p50:8.1f} {p95:8.1f} {p95 / floor_p95:9.1f}x")


FLOOR_TEMPLATE = """{% extends "webhooks_app/base.html" %}{% block content %}
<table><thead><tr><th>Model</th><th>Id</th><th>Last run</th></tr></thead><tbody>
{% for model in models %}<tr><th><a href="/alerts/models/{{ model.nannyml_id }}/">\
{{ model.name }}</a></th><td>{{ model.nannyml_id }}</td>\
<td>{{ model.last_run_started_at|date:"Y-m-d H:i" }}</td></tr>{% endfor %}
</tbody></table>{% endblock %}"""


def floor_view(request):
    """The floor: one query for 50 models, rendered in the same base template."""
    from django.http import HttpResponse
    from django.template import engines

    from webhooks_app.models import MonitoredModel

    models = list(MonitoredModel.objects.order_by("name")[:50])
    template = engines["django"].from_string(FLOOR_TEMPLATE)
    return HttpResponse(template.render({"models": models}, request))


def bench_urlpatterns():
    from django.contrib.auth.decorators import login_required
    from django.urls import include, path

    return [
        path("bench/floor/", login_required(floor_view)),
        path("", include("project.urls")),
    ]


if __name__ == "__main__":
    main()
