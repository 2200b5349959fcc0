"""The alert dashboard: monitored models, one model's history, one run.

Filters, sort and page are read from the query string; `?format=csv` or
`?format=json` exports what the page shows (every page of it, up to
WEBHOOKS_DASHBOARD_EXPORT_MAX_ROWS rows).
"""

import csv
import json

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from webhooks_app import envelope, history
from webhooks_app.conf import app_settings
from webhooks_app.history import State
from webhooks_app.kinds import Category, Kind, kind_of
from webhooks_app.models import MonitoredModel, Notification
from webhooks_app.templatetags.webhooks_dashboard import http_url

PERMISSION = "webhooks_app.view_notification"
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def can_view_dashboard(user):
    """Active staff, or an active user granted `PERMISSION` (or a superuser)."""
    return user.is_active and (user.is_staff or user.has_perm(PERMISSION))


class DashboardAccessMixin(AccessMixin):
    """Anonymous users go to the login page; others without access get 403."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not can_view_dashboard(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class ExportMixin:
    """Answer `?format=csv` or `?format=json` with `export_rows()` as a file."""

    export_name = "export"
    export_fields = ()

    def render_to_response(self, context, **response_kwargs):
        rows_format = self.request.GET.get("format")
        if rows_format == "csv":
            rows = self.export_rows(context)
            return csv_response(self.export_name, self.export_fields, rows)
        if rows_format == "json":
            return json_response(self.export_name, self.export_rows(context))
        return super().render_to_response(context, **response_kwargs)

    def export_rows(self, context):
        raise NotImplementedError


def csv_response(name, fields, rows):
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    writer = csv.writer(response)
    writer.writerow(fields)
    for row in rows:
        writer.writerow(_spreadsheet_safe(row[field]) for field in fields)
    return response


def _spreadsheet_safe(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def json_response(name, rows):
    response = JsonResponse(
        {"rows": list(rows)}, json_dumps_params={"ensure_ascii": False}
    )
    response["Content-Disposition"] = f'attachment; filename="{name}.json"'
    return response


def _iso(value):
    return value.isoformat() if value else None


def _choice(value, choices, default):
    return value if value in choices else default


def _page(request, queryset, size=None):
    paginator = Paginator(queryset, size or app_settings.DASHBOARD_PAGE_SIZE)
    return paginator.get_page(request.GET.get("page"))


def model_status(model):
    """The model's status as a code: alerting, passed or unreported."""
    if model.open_alert_count:
        return "alerting"
    if model.last_run and model.last_run.succeeded:
        return "passed"
    return "unreported"


class ModelListView(DashboardAccessMixin, ExportMixin, TemplateView):
    template_name = "webhooks_app/models.html"
    export_name = "models"
    export_fields = (
        "nannyml_id",
        "name",
        "last_run_started_at",
        "status",
        "open_alerts",
        "performance",
        "drift",
        "data_quality",
        "other",
        "longest_streak",
        "stale",
        "report_link",
    )

    def get_context_data(self, **kwargs):
        params = self.request.GET
        search = history.clean_search(params.get("q", ""))
        model_filter = _choice(params.get("filter"), history.ModelFilter.values, "")
        sort = _choice(params.get("sort"), history.ModelSort.values, "last_run")
        queryset = history.listed_models(search, model_filter, sort)
        context = super().get_context_data(**kwargs)
        context.update(
            search=search,
            model_filter=model_filter,
            sort=sort,
            filters=history.ModelFilter.choices,
            sorts=history.ModelSort.choices,
            queryset=queryset,
            history_runs=app_settings.DASHBOARD_HISTORY_RUNS,
        )
        if self.request.GET.get("format") not in ("csv", "json"):
            context["page_obj"] = self._annotated_page(queryset)
        return context

    def _annotated_page(self, queryset):
        page = _page(self.request, queryset)
        page.object_list = list(page.object_list)
        now = timezone.now()
        for model in page.object_list:
            model.stale = history.is_stale(model, now)
            model.status = model_status(model)
        return page

    def export_rows(self, context):
        now = timezone.now()
        limit = app_settings.DASHBOARD_EXPORT_MAX_ROWS
        for model in context["queryset"][:limit]:
            yield {
                "nannyml_id": model.nannyml_id,
                "name": model.name,
                "last_run_started_at": _iso(model.last_run_started_at),
                "status": model_status(model),
                "open_alerts": model.open_alert_count,
                "performance": model.open_performance_count,
                "drift": model.open_drift_count,
                "data_quality": model.open_data_quality_count,
                "other": model.open_other_count,
                "longest_streak": model.longest_streak,
                "stale": history.is_stale(model, now),
                "report_link": _http_link(model.last_run),
            }


def _http_link(notification):
    return http_url(notification.report_link) if notification else ""


def _dashboard_model(model_id):
    if model_id > history.BIGINT_MAX:
        raise Http404
    queryset = (
        MonitoredModel.objects.filter(last_run_started_at__isnull=False)
        .select_related("last_run")
        .defer("last_run__body")
    )
    return get_object_or_404(queryset, nannyml_id=model_id)


class ModelDetailView(DashboardAccessMixin, ExportMixin, TemplateView):
    template_name = "webhooks_app/model.html"
    export_fields = (
        "kind",
        "key",
        "metric_name",
        "alerting_now",
        "first_seen",
        "last_seen",
        "current_streak",
        "streak_at_least",
        "alerting_runs",
        "flips",
        "runs",
    )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        model = _dashboard_model(kwargs["model_id"])
        window = app_settings.DASHBOARD_RUNS
        runs, series = history.model_history(model, window)
        context.update(
            model=model,
            status=model_status(model),
            stale=history.is_stale(model),
            window=window,
            changes=history.changes_since_previous(series),
            kinds=Kind.choices,
            sorts=history.SeriesSort.choices,
            **self._grid(runs, series, model.nannyml_id),
        )
        if self.request.GET.get("format") not in ("csv", "json"):
            context["page_obj"] = _page(
                self.request,
                history.run_history(model),
                app_settings.DASHBOARD_RUN_PAGE_SIZE,
            )
        return context

    def _grid(self, runs, series, model_id):
        params = self.request.GET
        kind = _choice(params.get("kind"), Kind.values, "")
        alerting = params.get("alerting") == "1"
        sort = _choice(params.get("sort"), history.SeriesSort.values, "recent")
        rows = [
            s
            for s in series
            if (not kind or s.kind == kind) and (not alerting or s.alerting_now)
        ]
        run_url = escape(reverse("webhooks_app:dashboard_model", args=[model_id]))
        columns = grid_columns(
            reversed(runs[: app_settings.DASHBOARD_RUNS]), f"{run_url}runs/"
        )
        for row in rows:
            states = reversed(row.recent_states)
            cells = (c["cells"][s] for c, s in zip(columns, states, strict=True))
            # grid_columns builds each cell from escaped pieces.
            row.cells_html = mark_safe("".join(cells))  # noqa: S308
        return {
            "columns": columns,
            "rows": history.sort_series(rows, sort),
            "kind": kind,
            "alerting": alerting,
            "sort": sort,
        }

    @property
    def export_name(self):
        return f"model-{self.kwargs['model_id']}-alerts"

    def export_rows(self, context):
        for row in context["rows"][: app_settings.DASHBOARD_EXPORT_MAX_ROWS]:
            yield {
                "kind": row.kind,
                "key": row.key,
                "metric_name": row.metric_name,
                "alerting_now": row.alerting_now,
                "first_seen": _iso(row.first_seen),
                "last_seen": _iso(row.last_seen),
                "current_streak": row.streak,
                "streak_at_least": row.streak_capped,
                "alerting_runs": row.alerting_runs,
                "flips": row.flips,
                "runs": context["window"],
            }


SYMBOLS = {State.ALERT: "■", State.OK: "□", State.NOT_REPORTED: "·"}


def grid_columns(runs, run_url):
    """A header for each run, and its cell's HTML in each state.

    A grid has up to rows x runs cells; building the 3 per column once, from
    pieces escaped once, keeps the page about as fast as a plain list.
    """
    labels = {state: escape(state.label) for state in State}
    run_label = escape(_("Run"))
    months = {}
    columns = []
    for run in runs:
        local = timezone.localtime(run.started_at)
        when = f"{local:%Y-%m-%d %H:%M}"
        if local.month not in months:
            months[local.month] = escape(date_format(local, "M"))
        day, month = local.day, months[local.month]
        header = (
            f'<th scope="col" class="run"><a href="{run_url}{run.pk}/" title="{when}">'
            f'<span class="visually-hidden">{run_label} {when}</span>'
            f'<span aria-hidden="true">{day}<br>{month}</span></a></th>'
        )
        cells = {
            state: (
                f'<td class="cell cell-{state.value}" title="{when}: {labels[state]}">'
                f'<span aria-hidden="true">{SYMBOLS[state]}</span>'
                f'<span class="visually-hidden">{labels[state]}</span></td>'
            )
            for state in State
        }
        columns.append({"header": mark_safe(header), "cells": cells})  # noqa: S308
    return columns


class RunDetailView(DashboardAccessMixin, ExportMixin, TemplateView):
    template_name = "webhooks_app/run.html"
    export_fields = ("category", "kind", "key", "metric_name")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        notification = get_object_or_404(
            Notification.objects.runs().select_related("model"),
            pk=kwargs["notification_id"],
            model__nannyml_id=kwargs["model_id"],
        )
        payload = envelope.build(notification, notification.alerts.all())["payload"]
        context.update(
            notification=notification,
            model=notification.model,
            groups=[
                _group(Category.PERFORMANCE, payload["performance_alerts"]),
                _group(Category.OTHER, payload["other_alerts"]),
            ],
            body=_pretty(notification.body) if self.request.user.is_staff else "",
        )
        return context

    @property
    def export_name(self):
        return f"run-{self.kwargs['notification_id']}-alerts"

    def export_rows(self, context):
        for group in context["groups"]:
            for key, kind, metrics in group["keys"]:
                for metric_name in metrics:
                    yield {
                        "category": group["category"].value,
                        "kind": kind.value,
                        "key": key,
                        "metric_name": metric_name,
                    }


def _group(category, alerts_by_key):
    keys = [
        (key, kind_of(category, key), [alert["metric_name"] for alert in alerts])
        for key, alerts in alerts_by_key.items()
    ]
    return {"category": category, "label": category.label, "keys": keys}


def _pretty(body):
    if not body:
        return ""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body
