"""Rewrite every encrypted value with the newest key of WEBHOOKS_ENCRYPTION_KEYS."""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from webhooks_app import crypto

BATCH = 500


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first (newest) key of "
        "WEBHOOKS_ENCRYPTION_KEYS, so that older keys can then be removed."
    )

    def handle(self, *args, **options):
        if not crypto.is_configured():
            raise CommandError(
                "WEBHOOKS_ENCRYPTION_KEYS is empty or holds an invalid key; "
                "run manage.py check for details."
            )
        total = 0
        for model in apps.get_app_config("webhooks_app").get_models():
            if fields := crypto.encrypted_fields(model):
                total += self.reencrypt(model, fields)
        self.stdout.write(f"Re-encrypted {total} rows with the newest key.")

    def reencrypt(self, model, fields):
        names = [field.name for field in fields]
        count = 0
        try:
            with transaction.atomic():
                # Reading decrypts with any key; writing encrypts with the first.
                for batch in self.batches(model, names):
                    model._default_manager.bulk_update(batch, names)
                    count += len(batch)
        except crypto.DecryptionError as error:
            message = f"{model._meta.label}: {error} Nothing changed."
            raise CommandError(message) from None
        self.stdout.write(f"{model._meta.label}: {count} rows.")
        return count

    def batches(self, model, names):
        """Rows in primary key order, BATCH at a time, with no open cursor."""
        rows = model._default_manager.only("pk", *names).order_by("pk")
        batch = list(rows[:BATCH])
        while batch:
            yield batch
            batch = list(rows.filter(pk__gt=batch[-1].pk)[:BATCH])
