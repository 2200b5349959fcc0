"""Deliveries and their attempts in the admin, and the webhook's delivery side.

`WebhookDeliveryAdminMixin` goes first in the bases of the webhook admin:
it adds a read-only "Delivery" section (masked signing secret, why and when
the webhook was disabled, its failure streak, a link to its deliveries) and
the "Rotate the signing secret" action, and shows a new webhook's secret once.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webhooks_app import delivery as delivering
from webhooks_app import signing
from webhooks_app.models import Delivery, DeliveryAttempt, Webhook
from webhooks_app.outbound import mask


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = [
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
        "response_start",
        "headers_sent",
    ]
    readonly_fields = fields
    ordering = ["-number"]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("response (start)"))
    def response_start(self, obj):
        return format_html("<pre>{}</pre>", obj.response_body[:2000])

    @admin.display(description=_("request headers (secrets masked)"))
    def headers_sent(self, obj):
        return format_html(
            "<pre>{}</pre>",
            json.dumps(
                obj.request_headers, indent=1, sort_keys=True, ensure_ascii=False
            ),
        )


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "notification",
        "webhook",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_error",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "webhook", "created_at", "finished_at"]
    list_select_related = ["notification__model", "webhook"]
    search_fields = ["=notification__id", "webhook__name"]
    search_help_text = _("Exact notification id, or a webhook name.")
    show_full_result_count = False
    fields = [*list_display, "message_id"]
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]
    actions = ["resend_now"]

    def has_add_permission(self, request):
        return False

    def lookup_allowed(self, lookup, value, request=None):
        # Links from a notification list its deliveries.
        if lookup in ("notification__id__exact", "notification"):
            return True
        return super().lookup_allowed(lookup, value, request)

    @admin.action(description=_("Resend the selected deliveries now"))
    def resend_now(self, request, queryset):
        count = delivering.resend(queryset)
        self.message_user(
            request,
            ngettext(
                "Queued %d delivery to be sent again.",
                "Queued %d deliveries to be sent again.",
                count,
            )
            % count,
            messages.SUCCESS,
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.resend_failed_view)
        return [
            path(
                "resend-failed/",
                view,
                name="webhooks_app_delivery_resend_failed",
            ),
            *super().get_urls(),
        ]

    def resend_failed_view(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        posted = request.POST if request.method == "POST" else None
        form = ResendFailedForm(posted, initial=request.GET.dict())
        if form.is_valid():
            count = delivering.resend(form.failed_deliveries())
            self.message_user(
                request,
                ngettext(
                    "Queued %(count)d failed delivery to %(webhook)s again.",
                    "Queued %(count)d failed deliveries to %(webhook)s again.",
                    count,
                )
                % {"count": count, "webhook": form.cleaned_data["webhook"]},
                messages.SUCCESS,
            )
            return redirect("admin:webhooks_app_delivery_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Resend failed deliveries"),
            "form": form,
        }
        return TemplateResponse(
            request, "admin/webhooks_app/delivery/resend_failed.html", context
        )


class ResendFailedForm(forms.Form):
    webhook = forms.ModelChoiceField(queryset=Webhook.objects.all(), label=_("Webhook"))
    since = forms.DateTimeField(
        label=_("Failed since"),
        help_text=_("Date and time, for example 2024-01-25 14:00."),
    )

    def clean_since(self):
        since = self.cleaned_data["since"]
        if since > timezone.now():
            raise forms.ValidationError(
                _("Choose a time in the past."), code="since_in_future"
            )
        return since

    def failed_deliveries(self):
        return Delivery.objects.filter(
            webhook=self.cleaned_data["webhook"],
            status__in=[Delivery.Status.FAILED, Delivery.Status.GAVE_UP],
            finished_at__gte=self.cleaned_data["since"],
        )


DELIVERY_FIELDS = ["signing_secret_masked", "delivery_state", "deliveries_link"]


class WebhookDeliveryAdminMixin:
    """The delivery side of the webhook admin; see the module's docstring."""

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *DELIVERY_FIELDS]

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (name, {**options, "fields": _without(options["fields"])})
            for name, options in super().get_fieldsets(request, obj)
        ]
        if obj is None:
            return fieldsets
        return [*fieldsets, (_("Delivery"), {"fields": DELIVERY_FIELDS})]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            show_secret(self, request, obj)

    @admin.display(description=_("signing secret"))
    def signing_secret_masked(self, obj):
        return mask(obj.signing_secret) if obj.signing_secret else "—"

    @admin.display(description=_("delivery state"))
    def delivery_state(self, obj):
        if obj.disabled_at:
            return _("Disabled %(when)s: %(reason)s") % {
                "when": obj.disabled_at.strftime("%Y-%m-%d %H:%M"),
                "reason": obj.disabled_reason,
            }
        if obj.failing_since:
            return _("Failing since %(when)s (%(count)d attempts in a row)") % {
                "when": obj.failing_since.strftime("%Y-%m-%d %H:%M"),
                "count": obj.consecutive_failures,
            }
        return _("No failures")

    @admin.display(description=_("deliveries"))
    def deliveries_link(self, obj):
        changelist = reverse("admin:webhooks_app_delivery_changelist")
        resend = reverse("admin:webhooks_app_delivery_resend_failed")
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            f"{changelist}?{urlencode({'webhook__id__exact': obj.pk})}",
            _("List its deliveries"),
            f"{resend}?{urlencode({'webhook': obj.pk})}",
            _("Resend failed deliveries"),
        )

    @admin.action(description=_("Rotate the signing secret"), permissions=["change"])
    def rotate_signing_secret(self, request, queryset):
        for webhook in queryset:
            signing.rotate_secret(webhook)
            show_secret(self, request, webhook, rotated=True)


def _without(fields):
    return [f for f in fields if f not in DELIVERY_FIELDS]


def show_secret(model_admin, request, webhook, rotated=False):
    """Show a webhook's signing secret to the admin who made or rotated it."""
    if rotated:
        text = _(
            "The new signing secret of %(name)s is %(secret)s. Copy it to the "
            "receiver now; it is not shown again. The previous secret keeps "
            "signing beside it for 24 hours."
        )
    else:
        text = _(
            "The signing secret of %(name)s is %(secret)s. Copy it to the "
            "receiver now; it is not shown again (rotate it to get a new one)."
        )
    model_admin.message_user(
        request,
        text % {"name": webhook.name, "secret": webhook.signing_secret},
        messages.WARNING,
    )
