import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from webhooks_app import checks, crypto
from webhooks_app.models import Webhook, WebhookHeader

pytestmark = pytest.mark.django_db

SECRET = "header-secret-0123456789"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw_value(header):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT value FROM webhooks_app_webhookheader WHERE id = %s", [header.pk]
        )
        return cursor.fetchone()[0]


@pytest.fixture
def header(settings):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [OLD_KEY]
    webhook = Webhook.objects.create(name="w", url="https://example.com/hook")
    return WebhookHeader.objects.create(webhook=webhook, key="X-Key", value=SECRET)


def test_a_secret_is_stored_encrypted_and_read_back_in_plain(header):
    stored = raw_value(header)

    assert SECRET not in stored
    assert Fernet(OLD_KEY).decrypt(stored.encode()).decode() == SECRET
    assert WebhookHeader.objects.get(pk=header.pk).value == SECRET


def test_an_empty_value_is_stored_as_it_is(settings):
    webhook = Webhook.objects.create(name="w", url="https://example.com/hook")

    assert Webhook.objects.get(pk=webhook.pk).bearer_token == ""
    assert crypto.EncryptedTextField().get_prep_value("") == ""


def test_a_new_key_first_still_reads_values_written_with_the_old_one(header, settings):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    assert WebhookHeader.objects.get(pk=header.pk).value == SECRET


def test_reencrypt_rewrites_every_value_with_the_newest_key(header, settings):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    call_command("webhooks_reencrypt")

    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW_KEY]
    assert WebhookHeader.objects.get(pk=header.pk).value == SECRET
    assert Fernet(NEW_KEY).decrypt(raw_value(header).encode()).decode() == SECRET


def test_a_value_no_key_decrypts_stops_reencrypt_and_changes_nothing(header, settings):
    before = raw_value(header)
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW_KEY]

    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("webhooks_reencrypt")

    assert raw_value(header) == before


def test_reencrypt_without_keys_says_what_to_set(settings):
    settings.WEBHOOKS_ENCRYPTION_KEYS = []

    with pytest.raises(CommandError, match="WEBHOOKS_ENCRYPTION_KEYS"):
        call_command("webhooks_reencrypt")


def test_missing_keys_are_reported_by_a_check(settings):
    settings.WEBHOOKS_ENCRYPTION_KEYS = []

    assert [m.id for m in checks.check_encryption_keys()] == ["webhooks_app.W010"]


def test_an_invalid_key_is_reported_without_showing_it(settings):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW_KEY, "not-a-key-but-secret-text"]

    messages = checks.check_encryption_keys()

    assert [m.id for m in messages] == ["webhooks_app.E011"]
    assert "Key 2" in messages[0].msg
    assert "not-a-key-but-secret-text" not in messages[0].msg


def test_keys_of_the_wrong_type_are_reported(settings):
    settings.WEBHOOKS_ENCRYPTION_KEYS = 42

    assert [m.id for m in checks.check_encryption_keys()] == ["webhooks_app.E010"]


def test_good_keys_pass_the_check(settings):
    settings.WEBHOOKS_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    assert checks.check_encryption_keys() == []
