from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webhooks_app.models import InboundToken


@admin.register(InboundToken)
class InboundTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "hint", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name"]
    readonly_fields = ["hint", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if not change:
            token = obj.set_new_token()
            self.message_user(
                request,
                _(
                    "The token for %(name)s is %(token)s. Copy it now: it is "
                    "not stored and will not be shown again. Send it as the "
                    "header Authorization: Bearer <token>."
                )
                % {"name": obj.name, "token": token},
                messages.WARNING,
            )
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        self.message_user(
            request,
            ngettext("Revoked %d token.", "Revoked %d tokens.", count) % count,
            messages.SUCCESS,
        )
