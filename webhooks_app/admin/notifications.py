import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from webhooks_app.models import Alert, MonitoredModel, Notification


class AlertInline(admin.TabularInline):
    model = Alert
    fields = ["category", "kind", "key", "metric_name"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


class ReadOnlyAdminMixin:
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "model",
        "notification_type",
        "run_started_at",
        "performance_alert_count",
        "other_alert_count",
        "received_at",
    ]
    list_filter = [
        "notification_type",
        "source",
        "model",
        "run_started_at",
        "received_at",
    ]
    list_select_related = ["model"]
    search_fields = ["model__name", "=model__nannyml_id", "alerts__metric_name"]
    search_help_text = _("Model name, exact NannyML model id, or a metric name.")
    date_hierarchy = "run_started_at"
    show_full_result_count = False
    fields = [
        "model",
        "notification_type",
        "run_started_at",
        "report_link",
        "succeeded",
        "performance_alert_count",
        "other_alert_count",
        "source",
        "received_at",
        "pretty_body",
    ]
    readonly_fields = fields
    inlines = [AlertInline]

    @admin.display(description=_("body as received"))
    def pretty_body(self, obj):
        if not obj.body:
            return "—"
        try:
            text = json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = obj.body
        return format_html("<pre>{}</pre>", text)


@admin.register(MonitoredModel)
class MonitoredModelAdmin(admin.ModelAdmin):
    list_display = ["name", "nannyml_id", "last_run_started_at", "first_seen_at"]
    search_fields = ["name", "=nannyml_id"]
    search_help_text = _("Model name or exact NannyML model id.")
    readonly_fields = ["nannyml_id", "first_seen_at", "last_run_started_at"]
    fields = ["name", *readonly_fields]

    def has_add_permission(self, request):
        return False
