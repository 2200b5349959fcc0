import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from webhooks_app.conf import app_settings
from webhooks_app.models import DeliveryAttempt, InboundMessage


class Command(BaseCommand):
    help = (
        "Delete delivery attempts older than WEBHOOKS_ATTEMPTS_KEEP_DAYS (or "
        "--days), and the webhook-ids of signed inbound requests too old to be "
        "accepted again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            help="Keep attempts of this many days (default: the setting).",
        )

    def handle(self, *args, days=None, **options):
        days = app_settings.ATTEMPTS_KEEP_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must be zero or more.")
        now = timezone.now()
        attempts, _ = DeliveryAttempt.objects.filter(
            started_at__lt=now - datetime.timedelta(days=days)
        ).delete()
        # A timestamp this old fails the signature check, so its id cannot
        # come back; twice the tolerance leaves room for clock skew.
        tolerance = datetime.timedelta(seconds=2 * app_settings.SIGNATURE_TOLERANCE)
        messages, _ = InboundMessage.objects.filter(
            received_at__lt=now - tolerance
        ).delete()
        self.stdout.write(
            f"Deleted {attempts} delivery attempts older than {days} days and "
            f"{messages} old inbound message ids."
        )
