from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webhooks_app.models import InboundToken


class InboundTokenForm(forms.ModelForm):
    """The signing secret is write-only: never rendered, kept when left empty."""

    signing_secret = forms.CharField(
        label=_("signing secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=InboundToken._meta.get_field("signing_secret").help_text,
    )
    remove_signing_secret = forms.BooleanField(
        label=_("remove the signing secret"), required=False
    )

    class Meta:
        model = InboundToken
        fields = ["name", "signing_secret"]

    def clean_signing_secret(self):
        # Runs before remove_signing_secret is cleaned; clean() settles that.
        return self.cleaned_data["signing_secret"] or self.instance.signing_secret

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("remove_signing_secret"):
            cleaned["signing_secret"] = ""
        return cleaned


@admin.register(InboundToken)
class InboundTokenAdmin(admin.ModelAdmin):
    form = InboundTokenForm
    fields = [
        "name",
        "signing_secret",
        "remove_signing_secret",
        "has_signing_secret",
        "hint",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_display = ["name", "hint", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name"]
    readonly_fields = [
        "hint",
        "has_signing_secret",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
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

    @admin.display(description=_("signs its requests"), boolean=True)
    def has_signing_secret(self, obj):
        return bool(obj.signing_secret)

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
