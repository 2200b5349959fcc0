"""Delivering recorded notifications to their webhooks.

Recording a notification writes one `Delivery` per matching webhook (the
outbox) and, once committed, enqueues a `deliver` task for each. A task makes
one attempt through the outbound client and, when it should be retried,
enqueues the next attempt as a deferred task. A sweep, itself a deferred task
that runs while deliveries are pending, sends again whatever a dead process
left behind.

Per webhook, one attempt is in flight at a time, and after a failure the
webhook pauses for as long as the retry schedule says, so a slow or dead
server occupies at most one worker for one timeout before its deliveries
wait aside.
"""

import datetime
import email.utils
import logging
import random

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.db.models.signals import pre_save
from django.dispatch import Signal, receiver
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext

from webhooks_app import envelope, outbound, signing
from webhooks_app.conf import app_settings
from webhooks_app.models import Delivery, DeliveryAttempt, Webhook

logger = logging.getLogger("webhooks_app.delivery")

# Sent once a delivery reaches a final status, after it is committed, with
# `delivery` and `outcome` (a `Delivery.Status`: delivered, failed, gave_up).
delivery_finished = Signal()

RETRYABLE_STATUS = frozenset({408, 425, 429})
# A delivery that waits for a busy webhook looks again after at least this
# long, and at most as long again as the attempt in flight has taken so far.
BUSY_RECHECK = datetime.timedelta(seconds=0.2)
SWEEP_KEY = "webhooks_app:delivery-sweep"
SWEEP_BATCH = 500
BEHIND_PRIORITY = -10


@receiver(pre_save, sender=Webhook)
def forget_failures_when_enabled(sender, instance, raw=False, **kwargs):
    """A webhook enabled again starts with a clean record."""
    if raw or not instance.enabled or instance.disabled_at is None:
        return
    instance.disabled_at = None
    instance.disabled_reason = ""
    instance.failing_since = None
    instance.consecutive_failures = 0
    instance.paused_until = None


# Creating and enqueuing


def matching_webhooks(notification):
    webhooks = Webhook.objects.filter(enabled=True).filter(
        Q(monitored_models__isnull=True) | Q(monitored_models=notification.model_id)
    )
    if not notification.alert_count:
        webhooks = webhooks.filter(only_with_alerts=False)
    return [
        webhook
        for webhook in webhooks.distinct()
        if notification.notification_type in (webhook.notification_types or [])
    ]


def create_deliveries(notification):
    """Write the outbox rows for `notification`; enqueue them once committed.

    Runs inside the recording transaction.
    """
    # Most notifications find no webhook at all; this look costs a fraction
    # of the subscription query below.
    if not Webhook.objects.filter(enabled=True).exists():
        return []
    now = timezone.now()
    deliveries = Delivery.objects.bulk_create(
        Delivery(notification=notification, webhook=webhook, next_attempt_at=now)
        for webhook in matching_webhooks(notification)
    )
    if not deliveries:
        return []
    ids = [delivery.pk for delivery in deliveries]
    # In the transaction, so that a process dying right after the commit,
    # before the tasks below are enqueued, still leaves a sweep behind.
    schedule_sweep()
    transaction.on_commit(lambda: enqueue(ids))
    return deliveries


def enqueue(delivery_ids, run_after=None, behind=False):
    """Enqueue a `deliver` task per id; `behind` ones wait behind first tries."""
    from webhooks_app.tasks import deliver

    task = deliver.using(run_after=run_after) if run_after else deliver
    if behind and task.get_backend().supports_priority:
        # Retries and deliveries put off for a busy or paused webhook yield to
        # first attempts, so a failing webhook's backlog does not come round
        # again and again ahead of the healthy webhooks' work.
        task = task.using(priority=BEHIND_PRIORITY)
    for delivery_id in delivery_ids:
        task.enqueue(delivery_id)


def schedule_sweep():
    """Have a sweep run within SWEEP_INTERVAL; a no-op when one is due already.

    The key lives a little shorter than the interval: while it is there, the
    sweep that set it has a successor still waiting. With a per-process cache
    each process keeps its own chain of sweeps, which does no harm.
    """
    from webhooks_app.tasks import sweep

    interval = app_settings.SWEEP_INTERVAL
    if not cache.add(SWEEP_KEY, True, timeout=interval * 0.9):
        return
    run_after = timezone.now() + datetime.timedelta(seconds=interval)
    sweep.using(run_after=run_after).enqueue()


def resend(deliveries):
    """Send the given deliveries again now; return how many were queued."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            deliveries.filter(
                Q(locked_until__isnull=True) | Q(locked_until__lt=now)
            ).values_list("pk", flat=True)
        )
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.PENDING,
            next_attempt_at=now,
            finished_at=None,
            locked_until=None,
            retry_base=F("attempt_count"),
        )
        if ids:
            schedule_sweep()
        transaction.on_commit(lambda: enqueue(ids))
    return len(ids)


# The sweep


def sweep():
    """Send again every delivery that a dead process or a lost task left behind."""
    now = timezone.now()
    stale = now - datetime.timedelta(seconds=app_settings.STALE_AFTER)
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(status=Delivery.Status.PENDING)
            .filter(
                Q(locked_until__lt=now)
                | Q(locked_until__isnull=True, next_attempt_at__lte=stale)
            )
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        Delivery.objects.filter(pk__in=ids).update(
            next_attempt_at=now, locked_until=None
        )
        transaction.on_commit(lambda: enqueue(ids))
    if ids:
        logger.warning("Sweep sends %d overdue deliveries again", len(ids))
    if Delivery.objects.filter(status=Delivery.Status.PENDING).exists():
        schedule_sweep()
    return len(ids)


# One attempt


def deliver(delivery_id):
    """Make the attempt that `delivery_id` is due for, if it still is."""
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    try:
        request = build_request(delivery, now)
    except Exception:
        # Our own failure (say, a header that cannot be decrypted): logged
        # with its traceback, and retried like a network error.
        logger.exception("Could not prepare delivery %s", delivery.pk)
        request = outbound.OutboundRequest(url=delivery.webhook.url, body=b"")
        result = outbound.OutboundResult(
            request=request,
            error_code="internal_error",
            error=gettext("The request could not be prepared; see the site's log."),
        )
    else:
        result = outbound.send(request)
    return _record(delivery, request, result)


def _claim(delivery_id, now):
    """Lease the delivery and its webhook for one attempt, or put it off."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_related("webhook", "notification__model")
            .filter(pk=delivery_id, status=Delivery.Status.PENDING)
            .filter(next_attempt_at__lte=now)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .first()
        )
        if delivery is None:
            # Finished, leased, or not due yet: another task has it.
            return None
        webhook = delivery.webhook
        if not webhook.enabled:
            _finish_disabled(delivery, now)
            return None
        lease_end = now + _lease()
        if not _lease_webhook(webhook, now, lease_end):
            _put_off(delivery, webhook, now)
            return None
        Delivery.objects.filter(pk=delivery.pk).update(locked_until=lease_end)
    return delivery


def _lease():
    seconds = (
        app_settings.CONNECT_TIMEOUT
        + app_settings.READ_TIMEOUT
        + app_settings.LEASE_MARGIN
    )
    return datetime.timedelta(seconds=seconds)


def _lease_webhook(webhook, now, lease_end):
    claimed = (
        Webhook.objects.filter(pk=webhook.pk, enabled=True)
        .filter(Q(busy_until__isnull=True) | Q(busy_until__lt=now))
        .filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))
        .update(busy_until=lease_end)
    )
    return claimed == 1


def _put_off(delivery, webhook, now):
    """Wait for a paused webhook's pause to end, or a busy one's attempt.

    `webhook` is as read with the delivery, a moment ago: close enough.
    """
    if webhook.paused_until and webhook.paused_until > now:
        # Spread the wake-ups, so a backlog does not all come due at once.
        pause = (webhook.paused_until - now).total_seconds()
        run_at = webhook.paused_until + datetime.timedelta(
            seconds=random.uniform(0, min(60, pause * 0.2))  # noqa: S311
        )
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=run_at)
    else:
        busy_until = webhook.busy_until or now
        running_for = now - (busy_until - _lease())
        wait = min(max(BUSY_RECHECK, running_for), busy_until - now)
        run_at = now + max(wait, BUSY_RECHECK)
    ids = [delivery.pk]
    transaction.on_commit(lambda: enqueue(ids, run_after=run_at, behind=True))


def _finish_disabled(delivery, now):
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.FAILED,
        finished_at=now,
        next_attempt_at=None,
        last_error=gettext("The webhook is disabled."),
    )
    delivery.status = Delivery.Status.FAILED
    transaction.on_commit(lambda: _announce(delivery))


def build_request(delivery, now):
    webhook = delivery.webhook
    body = delivery_body(delivery.notification)
    header_rows = list(webhook.headers.all())
    headers = webhook.request_headers(header_rows)
    secret = webhook.secret_header_names(header_rows)
    secrets = signing.webhook_secrets(webhook, now)
    if secrets:
        message_id = f"msg_{delivery.message_id.hex}"
        headers = {**headers, **signing.signature_headers(message_id, body, secrets)}
    return outbound.OutboundRequest(
        url=webhook.url, body=body, headers=headers, secret_headers=secret
    )


def delivery_body(notification):
    """The body as received, or, for host code's notifications, built from rows."""
    if notification.body:
        return notification.body.encode()
    link = notification.report_link or dashboard_link(notification)
    built = envelope.build(notification, notification.alerts.all(), report_link=link)
    return envelope.dumps(built).encode()


def dashboard_link(notification):
    site = app_settings.SITE_URL.rstrip("/")
    if not site:
        return ""
    model_id = notification.model.nannyml_id
    try:
        path = reverse("webhooks_app:model", kwargs={"model_id": model_id})
    except NoReverseMatch:
        path = f"/alerts/models/{model_id}/"
    return site + path


# Recording the outcome


def _record(delivery, request, result):
    now = timezone.now()
    outcome = classify(result)
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempt_count + 1,
            started_at=now - datetime.timedelta(milliseconds=result.elapsed_ms),
            duration_ms=result.elapsed_ms,
            request_headers=request.masked_headers(),
            status_code=result.status_code,
            response_body=result.body_start,
            error=result.error,
        )
        delivery.attempt_count += 1
        delivery.locked_until = None
        delivery.last_error = _error_summary(result)
        if outcome == Delivery.Status.DELIVERED:
            _webhook_succeeded(delivery.webhook)
        else:
            outcome = _webhook_failed(delivery, result, outcome, now)
        _finish(delivery, outcome, now)
    _log(delivery, result, outcome)
    return outcome


def classify(result):
    """DELIVERED, PENDING (worth retrying) or FAILED (not worth it)."""
    if result.ok:
        return Delivery.Status.DELIVERED
    code = result.status_code
    if code is None or code in RETRYABLE_STATUS or code >= 500:
        return Delivery.Status.PENDING
    return Delivery.Status.FAILED


def _finish(delivery, outcome, now):
    delivery.status = outcome
    if outcome == Delivery.Status.PENDING:
        delivery.finished_at = None
        ids = [delivery.pk]
        run_at = delivery.next_attempt_at
        transaction.on_commit(lambda: enqueue(ids, run_after=run_at, behind=True))
    else:
        delivery.finished_at = now
        delivery.next_attempt_at = None
        transaction.on_commit(lambda: _announce(delivery))
    delivery.save(
        update_fields=[
            "status",
            "attempt_count",
            "locked_until",
            "last_error",
            "next_attempt_at",
            "finished_at",
        ]
    )


def _webhook_succeeded(webhook):
    Webhook.objects.filter(pk=webhook.pk).update(
        busy_until=None, paused_until=None, consecutive_failures=0, failing_since=None
    )


def _webhook_failed(delivery, result, outcome, now):
    """Note the failure on the webhook; return the delivery's outcome."""
    webhook = delivery.webhook
    # Only a failure worth retrying pauses the webhook: an answer such as 400
    # is about this one notification, not about the server.
    retrying = outcome == Delivery.Status.PENDING
    pause = _wait(webhook.consecutive_failures + 1, result)
    Webhook.objects.filter(pk=webhook.pk).update(
        busy_until=None,
        paused_until=now + pause if retrying else F("paused_until"),
        consecutive_failures=F("consecutive_failures") + 1,
        failing_since=Coalesce(F("failing_since"), now),
    )
    if result.status_code == 410:
        _disable(webhook, gettext("The server answered 410 Gone."), now)
    else:
        _disable_if_failing_too_long(webhook, now)
    if not retrying:
        return outcome
    tries = delivery.attempt_count - delivery.retry_base
    if tries >= len(app_settings.RETRY_SCHEDULE):
        return Delivery.Status.GAVE_UP
    delivery.next_attempt_at = now + max(_wait(tries, result), pause)
    return outcome


def _wait(tries, result):
    """How long to wait after `tries` failed attempts, Retry-After included."""
    schedule = app_settings.RETRY_SCHEDULE
    seconds = schedule[min(tries, len(schedule) - 1)]
    jitter = app_settings.RETRY_JITTER
    seconds *= random.uniform(1 - jitter, 1 + jitter)  # noqa: S311
    asked = retry_after(result.response_headers)
    if asked is not None:
        seconds = max(seconds, min(asked, app_settings.RETRY_AFTER_MAX))
    return datetime.timedelta(seconds=seconds)


def retry_after(headers):
    """Seconds from a Retry-After header (seconds or an HTTP date), or None."""
    value = next(
        (v for k, v in headers.items() if k.lower() == "retry-after"), ""
    ).strip()
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0, (when - timezone.now()).total_seconds())


def _disable_if_failing_too_long(webhook, now):
    since = now - datetime.timedelta(seconds=app_settings.DISABLE_AFTER)
    if Webhook.objects.filter(pk=webhook.pk, failing_since__lte=since).exists():
        days = app_settings.DISABLE_AFTER / 86400
        _disable(
            webhook,
            gettext("Every delivery failed for %(days)g days.") % {"days": days},
            now,
        )


def _disable(webhook, reason, now):
    disabled = Webhook.objects.filter(pk=webhook.pk, enabled=True).update(
        enabled=False, disabled_reason=reason, disabled_at=now
    )
    if disabled:
        logger.warning("Disabled webhook %s (%s): %s", webhook.pk, webhook.name, reason)


def _error_summary(result):
    if result.ok:
        return ""
    if result.status_code is not None:
        return gettext("HTTP %(code)d") % {"code": result.status_code}
    return result.error[:500]


def _announce(delivery):
    delivery_finished.send(
        sender=Delivery, delivery=delivery, outcome=Delivery.Status(delivery.status)
    )


def _log(delivery, result, outcome):
    args = (delivery.pk, delivery.webhook_id, delivery.attempt_count)
    if outcome == Delivery.Status.DELIVERED:
        logger.info("Delivered %s to webhook %s at attempt %d", *args)
    elif outcome == Delivery.Status.PENDING:
        logger.info(
            "Attempt at delivery %s to webhook %s failed (%s); retry %d at %s",
            delivery.pk,
            delivery.webhook_id,
            delivery.last_error,
            delivery.attempt_count,
            delivery.next_attempt_at.isoformat(),
        )
    else:
        logger.warning(
            "Delivery %s to webhook %s %s after %d attempts: %s",
            delivery.pk,
            delivery.webhook_id,
            outcome,
            delivery.attempt_count,
            delivery.last_error,
        )
