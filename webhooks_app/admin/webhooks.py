"""Webhooks in the admin: address, header pairs, credentials, validation.

Stored secrets never go to the browser: their inputs start empty, show the
last four characters as a hint, and an input left empty keeps the stored
value. What an admin typed into a form that is shown again (after a failed
save or a validation) comes back sealed, so that nothing typed is lost.
"""

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit, urlunsplit

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webhooks_app import crypto
from webhooks_app.admin.deliveries import WebhookDeliveryAdminMixin
from webhooks_app.models import Webhook, WebhookHeader
from webhooks_app.models.webhooks import default_notification_types
from webhooks_app.outbound import mask, mask_url
from webhooks_app.validation import validate, validate_and_record

# The name of the "Validate webhook" submit button.
VALIDATE = "_validate"
# Webhooks one action validates at once, and how many at the same time.
MAX_ACTION_VALIDATIONS = 20
PARALLEL_VALIDATIONS = 5


# Characters each credential cannot hold, and why.
CREDENTIAL_RULES = [
    ("basic_username", ":\r\n", _("A user name cannot contain : or a line break.")),
    ("basic_password", "\r\n", _("A password cannot contain a line break.")),
    ("bearer_token", " \t\r\n", _("A token cannot contain spaces or line breaks.")),
]


# What was typed into a secret input goes back to the browser sealed
# (encrypted with the site's keys), so that a form shown again after a failed
# save or a validation keeps it without showing it.
SEALED = "sealed:"
SEAL_TTL = 24 * 60 * 60


class SecretInput(forms.PasswordInput):
    def __init__(self, stored=""):
        hint = _("unchanged (%(hint)s)") % {"hint": mask(stored)} if stored else ""
        attrs = {"autocomplete": "new-password", "placeholder": hint}
        super().__init__(attrs=attrs, render_value=True)

    def format_value(self, value):
        if not value or not crypto.is_configured():
            return None
        if str(value).startswith(SEALED):
            return value
        return SEALED + crypto.encrypt(str(value))


class SecretField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if not value.startswith(SEALED):
            return value
        try:
            return crypto.decrypt(value.removeprefix(SEALED), ttl=SEAL_TTL)
        except crypto.DecryptionError:
            raise ValidationError(
                _("Type this value again."), code="sealed_value_expired"
            ) from None


def hide_stored_secrets(form, names):
    """Start secret inputs empty; the stored value is only a placeholder hint."""
    for name in names:
        stored = getattr(form.instance, name) if form.instance.pk else ""
        form.fields[name].widget = SecretInput(stored)
        form.initial[name] = ""


def typed_or_stored(form, name):
    return form.cleaned_data.get(name) or (
        getattr(form.instance, name) if form.instance.pk else ""
    )


class WebhookHeaderForm(forms.ModelForm):
    value = SecretField(
        label=_("Value"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = WebhookHeader
        fields = ["key", "value", "is_secret"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound:
            secret = self.add_prefix("is_secret") in self.data
        else:
            secret = self.instance.is_secret
        # A stored secret never becomes the initial value, not even while
        # its row is being made not secret.
        if secret or self.instance.is_secret:
            hide_stored_secrets(self, ["value"])
        if not secret:
            self.fields["value"].widget = forms.TextInput(attrs={"autocomplete": "off"})

    def clean_value(self):
        value = typed_or_stored(self, "value")
        if not value:
            raise ValidationError(_("Enter a value."), code="required")
        return value

    def validate_constraints(self):
        # A name may pass from one row to another in one save, so the
        # formset checks the names as they will be after it (see
        # WebhookHeaderFormSet.clean), not each row against the stored rows.
        exclude = self._get_validation_exclusions() | {"key"}
        try:
            self.instance.validate_constraints(exclude=exclude)
        except ValidationError as error:
            self._update_errors(error)


class WebhookHeaderFormSet(BaseInlineFormSet):
    # Set for a "Validate webhook" submission: everything is checked and the
    # validation runs, but the formset reports itself not valid so that the
    # admin renders the form again instead of saving it.
    hold = False

    def is_valid(self):
        return self.rows_valid() and not self.hold

    def rows_valid(self):
        return super().is_valid()

    def kept_rows(self):
        """The header pairs as they would be saved, as unsaved objects."""
        return [
            form.instance
            for form in self.forms
            if (form.instance.pk or form.has_changed())
            and not self._should_delete_form(form)
        ]

    def clean(self):
        super().clean()
        seen = set()
        for name in [*self._names_elsewhere(), *(h.key for h in self.kept_rows())]:
            if name.lower() in seen:
                raise ValidationError(
                    _("The header %(name)s appears twice; names ignore case."),
                    code="duplicate_header",
                    params={"name": name},
                )
            seen.add(name.lower())

    def _names_elsewhere(self):
        """Names of the webhook's stored headers that this form does not show
        (added since it was opened, say)."""
        if self.instance.pk is None:
            return []
        shown = [form.instance.pk for form in self.initial_forms]
        return self.instance.headers.exclude(pk__in=shown).values_list("key", flat=True)

    def save_existing_objects(self, commit=True):
        if commit:
            self._free_names()
        return super().save_existing_objects(commit)

    def _free_names(self):
        """Rows to be deleted or renamed give up their names before any row
        is saved, so that names can be swapped, or a deleted one used again."""
        deleted = self.deleted_forms
        for form in self.initial_forms:
            if form in deleted or "key" in form.changed_data:
                pk = form.instance.pk
                # A space is never in a header name, so no row has this one.
                WebhookHeader.objects.filter(pk=pk).update(key=f" {pk}")


class WebhookHeaderInline(admin.TabularInline):
    model = WebhookHeader
    form = WebhookHeaderForm
    formset = WebhookHeaderFormSet
    extra = 1
    verbose_name = _("header")
    verbose_name_plural = _("additional headers")


class NotificationTypesField(forms.CharField):
    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value)
        return [item.strip().upper() for item in text.split(",") if item.strip()]


class WebhookForm(forms.ModelForm):
    notification_types = NotificationTypesField(
        label=_("Notification types"),
        initial=default_notification_types,
        help_text=_("Comma-separated, such as RUN_COMPLETED."),
    )
    basic_password = SecretField(label=_("Password"), required=False)
    bearer_token = SecretField(label=_("Bearer token"), required=False)
    # Bound to the request by WebhookAdmin.get_form.
    request = None

    class Meta:
        model = Webhook
        fields = [
            "name",
            "url",
            "enabled",
            "auth",
            "basic_username",
            "basic_password",
            "bearer_token",
            "notification_types",
            "monitored_models",
            "only_with_alerts",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hide_stored_secrets(self, ["basic_password", "bearer_token"])
        self.validation_report = None

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            self._move_url_credentials()
            self._clean_credentials()
        return cleaned

    def _post_clean(self):
        # After the model's own validation, so that nothing is sent for a
        # configuration that could not be saved anyway.
        super()._post_clean()
        if self.errors:
            return
        headers = self._header_rows()
        if headers is None or self._refuse(headers):
            return
        if VALIDATE in self.data:
            self.validation_report = validate_and_record(self.instance, headers)
        elif self.instance.enabled and not self.instance.is_validated(headers):
            self._validate_before_enabling(headers)

    def _move_url_credentials(self):
        """user:password@ in the address becomes basic authentication."""
        parts = urlsplit(self.cleaned_data["url"])
        if parts.username is None and parts.password is None:
            return
        if self.cleaned_data["auth"] == Webhook.Auth.BEARER:
            self.add_error(
                "url",
                ValidationError(
                    _("Put credentials either in the address or as a bearer token."),
                    code="two_credentials",
                ),
            )
            return
        self.cleaned_data["auth"] = Webhook.Auth.BASIC
        self.cleaned_data["basic_username"] = unquote(parts.username or "")
        self.cleaned_data["basic_password"] = unquote(parts.password or "")
        netloc = parts.netloc.rpartition("@")[2]
        self.cleaned_data["url"] = urlunsplit(parts._replace(netloc=netloc))

    def _clean_credentials(self):
        data = self.cleaned_data
        auth = data["auth"]
        keep = {
            "basic_username": auth == Webhook.Auth.BASIC,
            "basic_password": auth == Webhook.Auth.BASIC,
            "bearer_token": auth == Webhook.Auth.BEARER,
        }
        for name, kept in keep.items():
            data[name] = typed_or_stored(self, name) if kept else ""
            if kept and not data[name]:
                self.add_error(
                    name,
                    ValidationError(
                        _("Required for this kind of authentication."), code="required"
                    ),
                )
        for name, forbidden, message in CREDENTIAL_RULES:
            if any(char in data[name] for char in forbidden):
                self.add_error(name, ValidationError(message, code="invalid"))

    def _header_rows(self):
        """The header pairs in the submission, or None when they are not valid."""
        formset = getattr(self.request, "webhook_header_formset", None)
        if formset is None:
            return list(self.instance.headers.all()) if self.instance.pk else []
        return formset.kept_rows() if formset.rows_valid() else None

    def _refuse(self, headers):
        """Add an error, and return True, for headers that cannot be saved."""
        if self.instance.auth and any(
            header.key.lower() == "authorization" for header in headers
        ):
            self.add_error(
                "auth",
                ValidationError(
                    _(
                        "The Authorization header is made from the authentication "
                        "chosen here; remove the Authorization header row, or set "
                        "authentication to None."
                    ),
                    code="two_authorizations",
                ),
            )
        elif (headers or self.instance.auth) and not crypto.is_configured():
            self.add_error(
                None,
                ValidationError(
                    _(
                        "Secrets cannot be stored: WEBHOOKS_ENCRYPTION_KEYS is not "
                        "set or not valid. Run manage.py check for details."
                    ),
                    code="no_encryption_keys",
                ),
            )
        return bool(self.errors)

    def _validate_before_enabling(self, headers):
        report = validate_and_record(self.instance, headers)
        self.validation_report = report
        if not report.valid:
            self.add_error(
                "enabled",
                ValidationError(
                    _(
                        "Not enabled: the configuration did not validate. "
                        "%(message)s See the validation report below."
                    ),
                    code="not_validated",
                    params={"message": report.message},
                ),
            )


@admin.register(Webhook)
class WebhookAdmin(WebhookDeliveryAdminMixin, admin.ModelAdmin):
    form = WebhookForm
    change_form_template = "admin/webhooks_app/webhook/change_form.html"
    inlines = [WebhookHeaderInline]
    list_display = [
        "name",
        "masked_url",
        "enabled",
        "last_validation",
        "validated_at",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "url"]
    autocomplete_fields = ["monitored_models"]
    actions = ["validate_selected", "rotate_signing_secret"]
    readonly_fields = ["validated_at", "validation_status_code", "validation_summary"]
    fieldsets = [
        (None, {"fields": ["name", "url", "enabled"]}),
        (
            _("Authentication"),
            {
                "fields": ["auth", "basic_username", "basic_password", "bearer_token"],
                "description": _(
                    "Sent as the Authorization header. Stored encrypted; "
                    "leave a secret empty to keep the stored one."
                ),
            },
        ),
        (
            _("What it receives"),
            {"fields": ["notification_types", "monitored_models", "only_with_alerts"]},
        ),
        (
            _("Last validation"),
            {
                "fields": [
                    "validated_at",
                    "validation_status_code",
                    "validation_summary",
                ]
            },
        ),
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        # A webhook being added has not been validated yet.
        return fieldsets if obj is not None else fieldsets[:-1]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def _create_formsets(self, request, obj, change):
        formsets, inlines = super()._create_formsets(request, obj, change)
        for formset in formsets:
            if isinstance(formset, WebhookHeaderFormSet):
                formset.hold = request.method == "POST" and VALIDATE in request.POST
                request.webhook_header_formset = formset
        return formsets, inlines

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("headers")

    @admin.display(description=_("address"), ordering="url")
    def masked_url(self, obj):
        return mask_url(obj.url)

    @admin.display(description=_("last validation"))
    def last_validation(self, obj):
        if obj.validated_at is None:
            return _("never")
        if not obj.validation_is_current():
            return _("%(status)s, before the last change") % {
                "status": obj.validation_status_code or _("no answer")
            }
        if obj.validation_status_code == 200:
            return _("valid (200)")
        return _("invalid (%(status)s)") % {
            "status": obj.validation_status_code or _("no answer")
        }

    @admin.display(description=_("result"))
    def validation_summary(self, obj):
        if obj.validated_at is None:
            return _("Not validated yet.")
        status = obj.validation_error or _("Valid.")
        if obj.validation_is_current():
            return status
        return _("%(status)s The configuration has changed since.") % {"status": status}

    @admin.action(description=_("Validate the selected webhooks"))
    def validate_selected(self, request, queryset):
        webhooks = list(queryset[: MAX_ACTION_VALIDATIONS + 1])
        if len(webhooks) > MAX_ACTION_VALIDATIONS:
            self.message_user(
                request,
                _("Select at most %(count)d webhooks to validate at once.")
                % {"count": MAX_ACTION_VALIDATIONS},
                messages.ERROR,
            )
            return
        # The requests go out side by side; the database is only used here.
        with ThreadPoolExecutor(PARALLEL_VALIDATIONS) as pool:
            reports = list(pool.map(validate, webhooks))
        for webhook, report in zip(webhooks, reports, strict=True):
            webhook.record_validation(report, webhook.fingerprint())
            webhook.save_validation()
            self.message_user(
                request,
                _("%(name)s: %(message)s (%(ms)d ms)")
                % {
                    "name": webhook.name,
                    "message": report.message,
                    "ms": report.result.elapsed_ms,
                },
                messages.SUCCESS if report.valid else messages.ERROR,
            )
        valid = sum(report.valid for report in reports)
        self.message_user(
            request,
            ngettext(
                "%(valid)d of %(total)d webhook is valid.",
                "%(valid)d of %(total)d webhooks are valid.",
                len(reports),
            )
            % {"valid": valid, "total": len(reports)},
            messages.INFO,
        )
