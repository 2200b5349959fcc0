"""Recordings into an SQLite file take turns on a lock file beside it."""

import fcntl
import os
import threading

import pytest
from django.db import connection, transaction

from webhooks_app import delivery, recording, writers
from webhooks_app.models import Notification, Webhook
from webhooks_app.recording import record_notification

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="turns are taken on SQLite only"
    ),
]


class HeldTurn:
    """The lock file, held by a file description of the test's own."""

    def __init__(self):
        self.fd = os.open(writers.lock_path(connection), os.O_RDONLY | os.O_CREAT)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def is_free():
    fd = os.open(writers.lock_path(connection), os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def in_thread(target):
    results = []

    def run():
        try:
            results.append(target())
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, results


def test_a_recording_waits_for_its_turn_and_then_records(seed_payload):
    held = HeldTurn()
    try:
        thread, results = in_thread(lambda: record_notification(seed_payload))
        thread.join(timeout=0.5)
        assert thread.is_alive()
        assert not Notification.objects.exists()
    finally:
        held.release()
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert results[0].created
    assert Notification.objects.count() == 1
    assert is_free()


def test_inside_an_open_transaction_a_recording_takes_no_turn(seed_payload):
    # The transaction may hold the database already; waiting for a turn held
    # by someone who waits for the database would stall both.
    def record_in_transaction():
        with transaction.atomic():
            return record_notification(seed_payload)

    held = HeldTurn()
    try:
        thread, results = in_thread(record_in_transaction)
        thread.join(timeout=10)
        assert not thread.is_alive()
    finally:
        held.release()

    assert results[0].created
    assert Notification.objects.count() == 1


def test_the_turn_is_given_back_when_the_recording_fails(seed_payload, monkeypatch):
    def fail(*args):
        raise RuntimeError("failed while writing")

    monkeypatch.setattr(recording, "_update_model", fail)

    with pytest.raises(RuntimeError):
        record_notification(seed_payload)

    assert is_free()
    assert not Notification.objects.exists()


def test_the_turn_is_given_back_before_work_that_waits_for_the_commit(
    seed_payload, webhook, monkeypatch
):
    Webhook.objects.update(enabled=True)
    free_when_draining = []
    drain = delivery.request_drains

    def request_drains(*args, **kwargs):
        free_when_draining.append(is_free())
        return drain(*args, **kwargs)

    monkeypatch.setattr(delivery, "request_drains", request_drains)

    record_notification(seed_payload)

    assert free_when_draining == [True]
    assert is_free()


def test_threads_of_one_process_take_turns_too(seed_payload):
    # Threads share the process's file description, on which flock would not
    # keep them apart; the lock file's thread lock does.
    holding = writers.turn(connection)
    try:
        thread, results = in_thread(lambda: record_notification(seed_payload))
        thread.join(timeout=0.5)
        assert thread.is_alive()
    finally:
        holding.give_back()
    thread.join(timeout=10)

    assert results[0].created
