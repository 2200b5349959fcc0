"""Validate a webhook configuration: one test request that must answer 200.

The test request is a POST of the NannyML envelope with the notification type
`WEBHOOK_TEST`, sent by the same client as every delivery. A webhook counts
as valid only when its server answers exactly 200; anything else is reported
with what came back and with the request that was sent (secrets masked).
"""

import logging
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _

from webhooks_app import envelope, outbound
from webhooks_app.conf import app_settings
from webhooks_app.models.notifications import (
    WEBHOOK_TEST,
    MonitoredModel,
    Notification,
)

logger = logging.getLogger("webhooks_app.validation")

# The model the test notification names; no monitored model has this id.
TEST_MODEL_ID = 0
TEST_MODEL_NAME = "webhooks_app test"
BODY_PREVIEW_CHARS = 2000


def build_test_envelope():
    """The body of a test request: the envelope of an empty WEBHOOK_TEST run."""
    notification = Notification(
        model=MonitoredModel(nannyml_id=TEST_MODEL_ID, name=TEST_MODEL_NAME),
        notification_type=WEBHOOK_TEST,
        run_started_at=timezone.now(),
        report_link=app_settings.SITE_URL,
    )
    return envelope.build(notification, alerts=[])


def build_test_request(webhook, headers=None):
    """The test request for `webhook` with `headers` (saved ones by default)."""
    return outbound.OutboundRequest(
        url=webhook.url,
        body=envelope.dumps(build_test_envelope()).encode(),
        headers=webhook.request_headers(headers),
        secret_headers=frozenset(webhook.secret_header_names(headers)),
    )


@dataclass
class ValidationReport:
    result: outbound.OutboundResult
    finished_at: object = field(default_factory=timezone.now)

    @property
    def valid(self):
        return self.result.status_code == 200

    @property
    def status_code(self):
        return self.result.status_code

    @property
    def message(self):
        result = self.result
        if result.status_code is None:
            return result.error
        if self.valid:
            return _("The server answered 200: the webhook is valid.")
        if 300 <= result.status_code < 400:
            return _(
                "The server answered %(status)s, a redirect to %(location)s. "
                "Redirects are not followed: use the address it points to."
            ) % {
                "status": result.status_code,
                "location": outbound.mask_url(result.location) or "?",
            }
        return _("The server answered %(status)s %(reason)s; only 200 is valid.") % {
            "status": result.status_code,
            "reason": result.reason,
        }

    @property
    def body_preview(self):
        return self.result.body_start[:BODY_PREVIEW_CHARS]

    @property
    def sent_headers(self):
        return self.result.request.masked_headers()

    @property
    def sent_body(self):
        return self.result.request.body.decode()

    @property
    def sent_url(self):
        return self.result.request.display_url()


def validate(webhook, headers=None):
    """Send the test request for `webhook`; return a `ValidationReport`."""
    report = ValidationReport(outbound.send(build_test_request(webhook, headers)))
    logger.info(
        "Validated webhook %s (%s): %s",
        webhook.pk or "(unsaved)",
        report.sent_url,
        "valid" if report.valid else report.status_code or report.result.error_code,
    )
    return report


def validate_and_record(webhook, headers=None):
    """Validate, keep the result on `webhook`, and store it if it is saved."""
    report = validate(webhook, headers)
    webhook.record_validation(report, webhook.fingerprint(headers))
    if webhook.pk:
        webhook.save_validation()
    return report
