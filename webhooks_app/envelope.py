"""The notification envelope of NannyML Cloud's webhooks: parse and build.

{"header": {"model_name", "model_id", "notification_type"},
 "payload": {"run": {"started_at"}, "performance_alerts": {key: [{"metric_name"}]},
             "other_alerts": {...}, "success": [...], "report_link"}}
"""

import datetime
import json
import threading
from dataclasses import dataclass, field

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers, validators

from webhooks_app.conf import app_settings
from webhooks_app.kinds import Category

KEY_MAX_LENGTH = 100
METRIC_MAX_LENGTH = 255
NAME_MAX_LENGTH = 255
TYPE_MAX_LENGTH = 64
LINK_MAX_LENGTH = 2048
BIGINT_MAX = 2**63 - 1


class StrictIntegerField(serializers.IntegerField):
    """An integer that arrived as a JSON number, not a string or a boolean."""

    default_error_messages = {
        "strict": _("Must be a whole number (a JSON integer, not text or true/false)."),
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("strict")
        return super().to_internal_value(data)


class ProhibitSurrogates(validators.ProhibitSurrogateCharactersValidator):
    """DRF's check, after a quick one: text that encodes as UTF-8 has none."""

    def __call__(self, value):
        try:
            value.encode()
        except UnicodeEncodeError:
            super().__call__(value)


def _quick_surrogate_check(field):
    """Swap DRF's surrogate check on a text field for `ProhibitSurrogates`."""
    field.validators = [
        ProhibitSurrogates()
        if isinstance(v, validators.ProhibitSurrogateCharactersValidator)
        else v
        for v in field.validators
    ]


class StrictCharField(serializers.CharField):
    """Text that arrived as a JSON string; numbers are not turned into text."""

    default_error_messages = {"strict": _("Must be text (a JSON string).")}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        _quick_surrogate_check(self)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("strict")
        return super().to_internal_value(data)


class UTCDateTimeField(serializers.Field):
    """An ISO 8601 date and time; one without an offset is read as UTC."""

    default_error_messages = {
        "invalid": _(
            "Must be an ISO 8601 date and time, such as 2024-01-25T14:04:10.157236."
        ),
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            value = parse_datetime(data.strip())
        except ValueError:
            value = None
        if value is None:
            self.fail("invalid")
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value

    def to_representation(self, value):
        return value.astimezone(datetime.UTC).replace(tzinfo=None).isoformat()


class ReportLinkField(serializers.URLField):
    default_error_messages = {
        "invalid": _("Must be an absolute http:// or https:// address."),
    }

    def __init__(self, **kwargs):
        super().__init__(max_length=LINK_MAX_LENGTH, **kwargs)
        _quick_surrogate_check(self)
        for validator in self.validators:
            if hasattr(validator, "schemes"):
                validator.schemes = ["http", "https"]

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class HeaderSerializer(serializers.Serializer):
    model_name = StrictCharField(max_length=NAME_MAX_LENGTH)
    model_id = StrictIntegerField(min_value=-BIGINT_MAX, max_value=BIGINT_MAX)
    notification_type = StrictCharField(max_length=TYPE_MAX_LENGTH)


class RunSerializer(serializers.Serializer):
    started_at = UTCDateTimeField()


class AlertSerializer(serializers.Serializer):
    metric_name = StrictCharField(max_length=METRIC_MAX_LENGTH)


class AlertGroupsField(serializers.DictField):
    """`{estimator or calculator: [{"metric_name": …}, …]}`; any key is accepted."""

    default_error_messages = {
        "key": _("Each estimator or calculator name must be 1 to {max} characters."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", dict)
        super().__init__(child=AlertSerializer(many=True), **kwargs)

    def to_internal_value(self, data):
        if data is None:
            return {}
        value = super().to_internal_value(data)
        for key in value:
            if not key or len(key) > KEY_MAX_LENGTH:
                self.fail("key", max=KEY_MAX_LENGTH)
        return value


class PayloadSerializer(serializers.Serializer):
    run = RunSerializer()
    performance_alerts = AlertGroupsField()
    other_alerts = AlertGroupsField()
    success = serializers.ListField(
        child=StrictCharField(max_length=KEY_MAX_LENGTH, allow_blank=False),
        required=False,
        default=list,
        max_length=500,
    )
    report_link = ReportLinkField(required=False, allow_blank=True, default="")


class EnvelopeSerializer(serializers.Serializer):
    header = HeaderSerializer()
    payload = PayloadSerializer()

    def validate(self, attrs):
        payload = attrs["payload"]
        count = sum(
            len(alerts)
            for group in ("performance_alerts", "other_alerts")
            for alerts in payload[group].values()
        )
        limit = app_settings.MAX_ALERTS
        if count > limit:
            raise serializers.ValidationError(
                {
                    "payload": [
                        _("Carries %(count)d alerts; at most %(limit)d are accepted.")
                        % {"count": count, "limit": limit}
                    ]
                },
                code="too_many_alerts",
            )
        return attrs


@dataclass(frozen=True)
class ParsedAlert:
    category: str
    key: str
    metric_name: str


@dataclass(frozen=True)
class ParsedNotification:
    model_id: int
    model_name: str
    notification_type: str
    run_started_at: datetime.datetime
    report_link: str
    succeeded: list = field(default_factory=list)
    alerts: list = field(default_factory=list)


_local = threading.local()


def _validator():
    """This thread's `EnvelopeSerializer`, built once and used for every parse.

    A new serializer deep-copies every declared field of itself and of its
    nested serializers, which costs more than the validation. Validating
    with `run_validation` keeps nothing on the serializer, so one instance
    can be used again; one per thread keeps threads out of each other's way.
    """
    serializer = getattr(_local, "serializer", None)
    if serializer is None:
        serializer = _local.serializer = EnvelopeSerializer()
    return serializer


def parse(data):
    """Validate a decoded envelope; raise `serializers.ValidationError` if wrong."""
    if not isinstance(data, dict):
        raise serializers.ValidationError(
            {"non_field_errors": [_("The body must be a JSON object.")]},
            code="not_an_object",
        )
    validated = _validator().run_validation(data)
    header = validated["header"]
    payload = validated["payload"]
    alerts = [
        ParsedAlert(category, key, alert["metric_name"])
        for category, group in (
            (Category.PERFORMANCE, payload["performance_alerts"]),
            (Category.OTHER, payload["other_alerts"]),
        )
        for key, group_alerts in group.items()
        for alert in group_alerts
    ]
    return ParsedNotification(
        model_id=header["model_id"],
        model_name=header["model_name"],
        notification_type=header["notification_type"],
        run_started_at=payload["run"]["started_at"],
        report_link=payload["report_link"],
        succeeded=payload["success"],
        alerts=alerts,
    )


def build(notification, alerts, report_link=None):
    """The envelope of a recorded notification, as a dict ready for JSON."""
    groups = {Category.PERFORMANCE: {}, Category.OTHER: {}}
    for alert in alerts:
        groups[alert.category].setdefault(alert.key, []).append(
            {"metric_name": alert.metric_name}
        )
    return {
        "header": {
            "model_name": notification.model.name,
            "model_id": notification.model.nannyml_id,
            "notification_type": notification.notification_type,
        },
        "payload": {
            "run": {
                "started_at": UTCDateTimeField().to_representation(
                    notification.run_started_at
                )
            },
            "performance_alerts": groups[Category.PERFORMANCE],
            "other_alerts": groups[Category.OTHER],
            "success": list(notification.succeeded),
            "report_link": notification.report_link
            if report_link is None
            else report_link,
        },
    }


def dumps(envelope):
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
