"""Delivering recorded notifications to their webhooks.

Recording a notification writes one `Delivery` per matching webhook (the
outbox) and, once committed, enqueues a `drain` task for each of those
webhooks. A drain holds a lease on its webhook and sends its due deliveries
one after another through the outbound client, for DRAIN_SECONDS at most,
then queues its successor; a retry is a delivery due again later, picked up by
a drain queued for that time. Deliveries resent from the admin go by drains
too. A sweep, itself a deferred task that runs while deliveries are pending,
sends again whatever a dead process left behind.

Per webhook, one attempt is in flight at a time, and after a failure the
webhook pauses for as long as the retry schedule says, so a slow or dead
server costs one timeout before its deliveries wait aside; a drain waits
DETACH_AFTER at most for an answer, and lets the rest of that timeout pass
in a thread of its own instead of holding the worker.
"""

import datetime
import email.utils
import functools
import logging
import queue
import random
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import F, Min, Q, prefetch_related_objects
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
    webhook_ids = [delivery.webhook_id for delivery in deliveries]
    # In the transaction, so that a process dying right after the commit,
    # before the drains below are queued, still leaves a sweep behind.
    schedule_sweep()
    transaction.on_commit(lambda: request_drains(webhook_ids))
    return deliveries


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
    """Send the given deliveries again now; return how many were queued.

    They go by their webhooks' drains, like new deliveries: a hanging server
    holds a worker for DETACH_AFTER, not for the whole timeout of each.
    """
    now = timezone.now()
    with transaction.atomic():
        found = list(
            deliveries.filter(
                Q(locked_until__isnull=True) | Q(locked_until__lt=now)
            ).values_list("pk", "webhook_id")
        )
        ids = [pk for pk, _ in found]
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.PENDING,
            next_attempt_at=now,
            finished_at=None,
            locked_until=None,
            retry_base=F("attempt_count"),
        )
        if ids:
            schedule_sweep()
        webhook_ids = sorted({webhook_id for _, webhook_id in found})
        transaction.on_commit(lambda: request_drains(webhook_ids))
    return len(ids)


# The sweep


def sweep():
    """Send again every delivery that a dead process or a lost task left behind."""
    now = timezone.now()
    stale = now - datetime.timedelta(seconds=app_settings.STALE_AFTER)
    with transaction.atomic():
        found = list(
            Delivery.objects.filter(status=Delivery.Status.PENDING)
            .filter(
                Q(locked_until__lt=now)
                | Q(locked_until__isnull=True, next_attempt_at__lte=stale)
            )
            # Behind a pause or a live drain, deliveries wait as they should.
            .exclude(webhook__paused_until__gt=now)
            .exclude(webhook__busy_until__gt=now)
            .values_list("pk", "webhook_id")[:SWEEP_BATCH]
        )
        ids = [pk for pk, _ in found]
        Delivery.objects.filter(pk__in=ids).update(
            next_attempt_at=now, locked_until=None
        )
        webhook_ids = sorted({webhook_id for _, webhook_id in found})
        # Forced: a mark left by a drain that was lost must not hold these back.
        transaction.on_commit(lambda: request_drains(webhook_ids, force=True))
    if ids:
        logger.warning("Sweep sends %d overdue deliveries again", len(ids))
    if Delivery.objects.filter(status=Delivery.Status.PENDING).exists():
        schedule_sweep()
    return len(ids)


# Draining: one task per webhook and burst, rather than one per delivery


@dataclass
class Lease:
    """A drain's hold on a webhook: `token` is both leases' end.

    `left` is set when the drain left an attempt to finish in the background,
    which then lets go of the webhook.
    """

    webhook: Webhook
    token: datetime.datetime
    lost: bool = False
    left: bool = False


def request_drains(webhook_ids, run_after=None, force=False):
    """Queue a drain for each webhook, unless one is queued to run by then.

    The time of a webhook's queued drain is kept on it (`drain_at`). A drain
    clears it before looking for work, so it finds every delivery committed
    before someone saw the mark and queued nothing. A mark older than a
    drain's lease is taken for one whose task was lost, and ignored.
    """
    now = timezone.now()
    run_at = max(run_after or now, now)
    with transaction.atomic():
        webhooks = Webhook.objects.select_for_update().filter(pk__in=webhook_ids)
        if not force:
            webhooks = webhooks.exclude(
                drain_at__lte=run_at, drain_at__gt=now - _drain_lease()
            )
        ids = list(webhooks.values_list("pk", flat=True))
        Webhook.objects.filter(pk__in=ids).update(drain_at=run_at)
        _enqueue_drains(ids, run_at if run_at > now else None)
    return ids


def request_drains_for(delivery_id):
    """Queue a drain for the webhook of a pending delivery.

    Serves `deliver` tasks, one per delivery, that a queue may still hold.
    Forced, as by the sweep: no drain was asked for such a delivery, and a
    mark on its webhook may be one whose task was lost.
    """
    webhook_ids = Delivery.objects.filter(
        pk=delivery_id, status=Delivery.Status.PENDING
    ).values_list("webhook_id", flat=True)
    return request_drains(list(webhook_ids), force=True)


def _enqueue_drains(webhook_ids, run_after):
    from webhooks_app.tasks import drain

    task = drain
    if run_after is not None:
        task = drain.using(run_after=run_after)
        if task.get_backend().supports_priority:
            # Drains put off to a retry or a pause's end yield to fresh work,
            # so a failing webhook's backlog does not come round again and
            # again ahead of the healthy webhooks' work.
            task = task.using(priority=BEHIND_PRIORITY)
    for webhook_id in webhook_ids:
        task.enqueue(webhook_id)


def _drain_lease():
    return datetime.timedelta(seconds=app_settings.DRAIN_SECONDS) + _lease()


def drain(webhook_id):
    """Send a webhook's due deliveries one after another; return how many.

    Holds the webhook's lease while it works, and starts no attempt after
    DRAIN_SECONDS: then it queues its successor, so that one worker goes
    round the webhooks. It waits at most DETACH_AFTER for an answer: an
    attempt still waiting then finishes in the background, so a hanging
    server holds a worker for that long, not for the whole timeout.
    """
    deadline = time.monotonic() + app_settings.DRAIN_SECONDS
    _clear_drain_mark(webhook_id)
    tried = 0
    while True:
        lease = _lease_for_drain(webhook_id)
        if lease is BUSY:
            if _leave_to_holder(webhook_id):
                return tried
            continue
        if lease is not None:
            tried += _drain_leased(lease, deadline)
            if lease.left:
                return tried
            _release(lease)
            if lease.lost:
                return tried
            if time.monotonic() < deadline and _has_due(webhook_id):
                continue
        _schedule_next(webhook_id)
        return tried


BUSY = object()


def _lease_for_drain(webhook_id):
    """A `Lease` on the webhook, BUSY, or None when it is paused or disabled."""
    now = timezone.now()
    token = now + _drain_lease()
    if _lease_webhook(webhook_id, now, token):
        return Lease(Webhook.objects.get(pk=webhook_id), token)
    webhook = Webhook.objects.filter(pk=webhook_id).first()
    if webhook is None or (webhook.paused_until and webhook.paused_until > now):
        return None
    if not webhook.enabled:
        _fail_due_for_disabled(webhook, now)
        return None
    return BUSY


def _leave_to_holder(webhook_id):
    """Mark the drain as queued, for the holder to find; False if it is gone.

    The holder clears the mark once it has let go and then looks for due
    deliveries again, so nothing marked while it held the lease waits.
    """
    now = timezone.now()
    return bool(
        Webhook.objects.filter(pk=webhook_id, busy_until__gt=now).update(drain_at=now)
    )


def _clear_drain_mark(webhook_id):
    Webhook.objects.filter(pk=webhook_id, drain_at__lte=timezone.now()).update(
        drain_at=None
    )


def _release(lease):
    Webhook.objects.filter(pk=lease.webhook.pk, busy_until=lease.token).update(
        busy_until=None
    )
    _clear_drain_mark(lease.webhook.pk)


def _due(webhook_id, now):
    return (
        Delivery.objects.filter(webhook_id=webhook_id, status=Delivery.Status.PENDING)
        .filter(next_attempt_at__isnull=False)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
    )


def _has_due(webhook_id):
    now = timezone.now()
    return _due(webhook_id, now).filter(next_attempt_at__lte=now).exists()


def _schedule_next(webhook_id):
    """Queue a drain for the webhook's next due delivery, or after its pause."""
    now = timezone.now()
    next_at = _due(webhook_id, now).aggregate(at=Min("next_attempt_at"))["at"]
    if next_at is None:
        return
    paused_until = (
        Webhook.objects.filter(pk=webhook_id).values_list("paused_until", flat=True)
    ).first()
    if paused_until and paused_until > next_at:
        # Spread the wake-ups after a pause over a fifth of it (a minute at most).
        pause = (paused_until - now).total_seconds()
        spread = random.uniform(0, min(60, pause * 0.2))  # noqa: S311
        next_at = paused_until + datetime.timedelta(seconds=spread)
    request_drains([webhook_id], run_after=next_at)


def _drain_leased(lease, deadline):
    """Send due deliveries in batches until none is due, time is up, or it stops."""
    parts = _parts_or_none(lease.webhook)
    delivered = _Delivered(lease)
    tried = 0
    # One sender per drain: its connection to the webhook is kept alive.
    sender = _Sender()
    try:
        while time.monotonic() < deadline and not lease.lost:
            batch = _take_batch(lease)
            if not batch:
                break
            for index, delivery in enumerate(batch):
                if time.monotonic() >= deadline or _must_stop(lease):
                    delivered.write()
                    _unlock(batch[index:], lease)
                    return tried
                left = _attempt(delivery, parts, lease, sender, delivered)
                tried += 1
                if left is not None:
                    # All else first: the attempt left may end at any moment.
                    delivered.write()
                    _unlock(batch[index + 1 :], lease)
                    lease.left = True
                    sender.then(left)
                    return tried
            # Before the next batch: one whose lease was taken over would
            # find these deliveries due again.
            delivered.write()
    finally:
        sender.close()
    return tried


def _parts_or_none(webhook):
    try:
        return WebhookParts.of(webhook, timezone.now())
    except Exception:
        # Left to `build_request`, which tries again for each delivery, so
        # that the failure is logged and recorded as an attempt.
        return None


def _must_stop(lease):
    """After a failure worth retrying the webhook pauses; it may be disabled."""
    webhook = lease.webhook
    paused = webhook.paused_until and webhook.paused_until > timezone.now()
    return lease.lost or paused or not webhook.enabled


def _take_batch(lease):
    now = timezone.now()
    webhook = lease.webhook
    batch = list(
        _due(webhook.pk, now)
        .filter(next_attempt_at__lte=now)
        .select_related("notification__model")
        .order_by("next_attempt_at", "pk")[: app_settings.DRAIN_BATCH]
    )
    Delivery.objects.filter(pk__in=[d.pk for d in batch]).update(
        locked_until=lease.token
    )
    for delivery in batch:
        delivery.webhook = webhook
        delivery.locked_until = lease.token
    built = [d.notification for d in batch if not d.notification.body]
    prefetch_related_objects(built, "alerts")
    return batch


def _unlock(deliveries, lease):
    Delivery.objects.filter(
        pk__in=[d.pk for d in deliveries], locked_until=lease.token
    ).update(locked_until=None)


def _attempt(delivery, parts, lease, sender, delivered):
    """Make one attempt and see to its outcome.

    Returns None, or, when the answer takes longer than DETACH_AFTER, the
    job that finishes the attempt once it ends.
    """
    now = timezone.now()
    try:
        request = build_request(delivery, now, parts)
    except Exception:
        logger.exception("Could not prepare delivery %s", delivery.pk)
        request, result = _unprepared(delivery)
    else:
        answer = sender.send(request)
        try:
            result = answer.result(timeout=app_settings.DETACH_AFTER)
        except TimeoutError:
            return lambda: _finish_left(answer, delivery, request, lease)
    if result.ok:
        delivered.add(delivery, request, result)
        return None
    # Outcomes are written in the order of the attempts: the successes first.
    delivered.write()
    if _record(delivery, request, result, lease) is None:
        lease.lost = True
    return None


class _Sender:
    """Sends a drain's requests, one after another, from a thread of its own.

    The drain waits for each answer in its own thread, for a while; an
    attempt it stops waiting for is finished in the sender's thread by the
    job passed to `then`. The thread is a daemon: a worker that exits drops
    such an attempt, as a killed worker does, and the sweep sends it again
    once the lease lapses.
    """

    def __init__(self):
        self.client = outbound.session()
        self._jobs = queue.SimpleQueue()
        threading.Thread(target=self._work, name="webhooks-sender", daemon=True).start()

    def send(self, request):
        """A `Future` of the `OutboundResult`."""
        answer = Future()

        def job():
            try:
                answer.set_result(outbound.send(request, self.client))
            except BaseException as error:
                answer.set_exception(error)

        self._jobs.put(job)
        return answer

    def then(self, job):
        """Run `job` in the sender's thread once the requests before it are done."""
        self._jobs.put(job)

    def close(self):
        """Let the thread end once its jobs are done."""
        self._jobs.put(None)

    def _work(self):
        try:
            while (job := self._jobs.get()) is not None:
                job()
        finally:
            self.client.close()
            # The database connections this thread opened, if any.
            connections.close_all()


def _finish_left(answer, delivery, request, lease):
    """Record an attempt that its drain left, then let go of the webhook.

    Runs in the sender's thread. The successor it queues goes on as the
    drain would have.
    """
    try:
        if _record(delivery, request, answer.result(), lease) is None:
            lease.lost = True
        _release(lease)
        if not lease.lost:
            _schedule_next(lease.webhook.pk)
    except Exception:
        # The lease lapses and the sweep sends the delivery again.
        logger.exception("Could not record the attempt at delivery %s", delivery.pk)


class _Delivered:
    """A drain's successful attempts, written RECORD_BATCH at a time.

    One transaction writes the attempts and outcomes of several deliveries
    instead of one each. A worker that dies before writing them leaves those
    deliveries leased: once the lease lapses the sweep sends them again, so
    they still go out at least once.
    """

    def __init__(self, lease):
        self.lease = lease
        self.waiting = []

    def add(self, delivery, request, result):
        self.waiting.append((delivery, request, result, timezone.now()))
        if len(self.waiting) >= app_settings.RECORD_BATCH:
            self.write()

    def write(self):
        if self.waiting:
            waiting, self.waiting = self.waiting, []
            _record_delivered(waiting, self.lease)


def _fail_due_for_disabled(webhook, now):
    for delivery in _due(webhook.pk, now).filter(next_attempt_at__lte=now):
        delivery.webhook = webhook
        with transaction.atomic():
            _finish_disabled(delivery, now)


def _unprepared(delivery):
    """Our own failure (say, a header that cannot be decrypted): logged with
    its traceback by the caller, and retried like a network error."""
    request = outbound.OutboundRequest(url=delivery.webhook.url, body=b"")
    result = outbound.OutboundResult(
        request=request,
        error_code="internal_error",
        error=gettext("The request could not be prepared; see the site's log."),
    )
    return request, result


def _lease():
    seconds = (
        app_settings.CONNECT_TIMEOUT
        + app_settings.READ_TIMEOUT
        + app_settings.LEASE_MARGIN
    )
    return datetime.timedelta(seconds=seconds)


def _lease_webhook(webhook_id, now, lease_end):
    claimed = (
        Webhook.objects.filter(pk=webhook_id, enabled=True)
        .filter(Q(busy_until__isnull=True) | Q(busy_until__lt=now))
        .filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))
        .update(busy_until=lease_end)
    )
    return claimed == 1


def _finish_disabled(delivery, now):
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.FAILED,
        finished_at=now,
        next_attempt_at=None,
        last_error=gettext("The webhook is disabled."),
    )
    delivery.status = Delivery.Status.FAILED
    transaction.on_commit(lambda: _announce(delivery))


@dataclass
class WebhookParts:
    """What every request to one webhook shares: decrypted once per drain."""

    url: str
    headers: dict
    secret_names: set
    signing_secrets: list

    @classmethod
    def of(cls, webhook, now):
        header_rows = list(webhook.headers.all())
        return cls(
            url=webhook.url,
            headers=webhook.request_headers(header_rows),
            secret_names=webhook.secret_header_names(header_rows),
            signing_secrets=signing.webhook_secrets(webhook, now),
        )


def build_request(delivery, now, parts=None):
    parts = parts or WebhookParts.of(delivery.webhook, now)
    body = delivery_body(delivery.notification)
    headers, secrets = parts.headers, parts.signing_secrets
    if secrets:
        message_id = f"msg_{delivery.message_id.hex}"
        headers = {**headers, **signing.signature_headers(message_id, body, secrets)}
    return outbound.OutboundRequest(
        url=parts.url, body=body, headers=headers, secret_headers=parts.secret_names
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
        path = reverse("webhooks_app:dashboard_model", args=[model_id])
    except NoReverseMatch:
        # The site does not serve the dashboard, so there is no page to link.
        return ""
    return site + path


# Recording the outcome


def _record(delivery, request, result, lease):
    """Write the attempt and its outcome; return the outcome.

    The outcome is written only while the delivery is still leased to the
    drain's `lease`, and None is returned when it is not: whoever took the
    lease over sends the delivery again. The attempt is kept either way.
    """
    now = timezone.now()
    outcome, pause = _outcome(delivery, result, now)
    with transaction.atomic():
        _save_attempt(delivery, request, result, now)
        if not _save_outcome(delivery, outcome, now, lease):
            _warn_lost(delivery)
            return None
        if outcome == Delivery.Status.DELIVERED:
            _webhook_succeeded(delivery.webhook)
        else:
            _webhook_failed(delivery.webhook, result, pause, now)
    _log(delivery, result, outcome)
    return outcome


def _record_delivered(entries, lease):
    """Write successful attempts, as `(delivery, request, result, ended)`.

    As `_record` does for one, each outcome is written only while the
    delivery is still leased to the drain, and the attempts are kept either
    way; `lease.lost` is set when any delivery was taken over.
    """
    now = timezone.now()
    attempts = []
    for delivery, request, result, ended in entries:
        _outcome(delivery, result, now)
        attempts.append(_attempt_row(delivery, request, result, ended))
    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create(attempts)
        held = set(
            Delivery.objects.select_for_update()
            .filter(pk__in=[d.pk for d, *_ in entries], locked_until=lease.token)
            .values_list("pk", flat=True)
        )
        # Each held delivery has made exactly one more attempt, unseen by
        # anyone else: the lease keeps everyone else from it.
        Delivery.objects.filter(pk__in=held).update(
            status=Delivery.Status.DELIVERED,
            attempt_count=F("attempt_count") + 1,
            locked_until=None,
            last_error="",
            next_attempt_at=None,
            finished_at=now,
        )
        if held:
            _webhook_succeeded(lease.webhook)
        for delivery in (d for d, *_ in entries if d.pk in held):
            delivery.status = Delivery.Status.DELIVERED
            delivery.next_attempt_at = None
            delivery.finished_at = now
            transaction.on_commit(functools.partial(_announce, delivery))
    for delivery, _request, result, _ended in entries:
        if delivery.pk in held:
            _log(delivery, result, Delivery.Status.DELIVERED)
        else:
            _warn_lost(delivery)
            lease.lost = True


def classify(result):
    """DELIVERED, PENDING (worth retrying) or FAILED (not worth it)."""
    if result.ok:
        return Delivery.Status.DELIVERED
    code = result.status_code
    if code is None or code in RETRYABLE_STATUS or code >= 500:
        return Delivery.Status.PENDING
    return Delivery.Status.FAILED


def _outcome(delivery, result, now):
    """The outcome and, for a failure worth retrying, the webhook's pause.

    Sets the delivery's fields in memory to match.
    """
    outcome = classify(result)
    delivery.attempt_count += 1
    delivery.locked_until = None
    delivery.last_error = _error_summary(result)
    if outcome != Delivery.Status.PENDING:
        return outcome, None
    # Only a failure worth retrying pauses the webhook: an answer such as 400
    # is about this one notification, not about the server.
    pause = _wait(delivery.webhook.consecutive_failures + 1, result)
    tries = delivery.attempt_count - delivery.retry_base
    if tries >= len(app_settings.RETRY_SCHEDULE):
        return Delivery.Status.GAVE_UP, pause
    delivery.next_attempt_at = now + max(_wait(tries, result), pause)
    return outcome, pause


def _warn_lost(delivery):
    logger.warning(
        "Lost the lease on delivery %s; its outcome is left to the new holder",
        delivery.pk,
    )


def _save_attempt(delivery, request, result, now):
    _attempt_row(delivery, request, result, now).save(force_insert=True)


def _attempt_row(delivery, request, result, now):
    """The attempt that ended at `now`, not saved."""
    return DeliveryAttempt(
        delivery=delivery,
        number=delivery.attempt_count,
        started_at=now - datetime.timedelta(milliseconds=result.elapsed_ms),
        duration_ms=result.elapsed_ms,
        request_headers=request.masked_headers(),
        status_code=result.status_code,
        response_body=result.body_start,
        error=result.error,
    )


def _save_outcome(delivery, outcome, now, lease):
    """Write the delivery's new state; False when `lease` no longer holds it."""
    delivery.status = outcome
    final = outcome != Delivery.Status.PENDING
    delivery.finished_at = now if final else None
    if final:
        delivery.next_attempt_at = None
    rows = Delivery.objects.filter(pk=delivery.pk, locked_until=lease.token)
    saved = rows.update(
        status=outcome,
        attempt_count=delivery.attempt_count,
        locked_until=None,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        finished_at=delivery.finished_at,
    )
    if not saved:
        return False
    if final:
        transaction.on_commit(lambda: _announce(delivery))
    # A retry is left to the drain, which queues its successor for it.
    return True


def _webhook_succeeded(webhook):
    clean = not (webhook.consecutive_failures or webhook.failing_since)
    if clean and webhook.paused_until is None:
        # The drain's copy is current: the streak fields change only under
        # the webhook's lease, and this drain holds it.
        return
    Webhook.objects.filter(pk=webhook.pk).update(
        paused_until=None, consecutive_failures=0, failing_since=None
    )
    webhook.paused_until = webhook.failing_since = None
    webhook.consecutive_failures = 0


def _webhook_failed(webhook, result, pause, now):
    """Note the failure on the webhook: its streak, its pause, maybe disable it."""
    Webhook.objects.filter(pk=webhook.pk).update(
        paused_until=now + pause if pause else F("paused_until"),
        consecutive_failures=F("consecutive_failures") + 1,
        failing_since=Coalesce(F("failing_since"), now),
    )
    webhook.consecutive_failures += 1
    webhook.failing_since = webhook.failing_since or now
    if pause:
        webhook.paused_until = now + pause
    if result.status_code == 410:
        _disable(webhook, gettext("The server answered 410 Gone."), now)
    else:
        _disable_if_failing_too_long(webhook, now)


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
    webhook.enabled = False
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
