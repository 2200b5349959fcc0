import io

import pytest
from django.core.management import CommandError, call_command

from webhooks_app import history
from webhooks_app.models import MonitoredModel, Notification

pytestmark = pytest.mark.django_db


def run_demo(*args):
    out = io.StringIO()
    call_command("webhooks_demo", *args, stdout=out)
    return out.getvalue()


def test_the_demo_records_histories_through_recording_with_progress():
    output = run_demo("--models", "4", "--runs", "20")

    assert MonitoredModel.objects.count() == 4
    assert Notification.objects.runs().count() == 80
    assert "[1/4]" in output and "[4/4]" in output
    assert "Recorded 80 new notifications." in output


def test_the_demo_has_alerts_a_stale_model_and_a_failed_run():
    run_demo("--models", "4", "--runs", "20")

    models = list(MonitoredModel.objects.select_related("last_run"))
    assert sum(history.is_stale(model) for model in models) == 1
    assert any(not m.last_run.succeeded and not m.open_alert_count for m in models), (
        "no model whose last run reported nothing"
    )
    assert any(model.longest_streak >= 2 for model in models)


def test_running_the_demo_twice_records_nothing_new():
    run_demo("--models", "2", "--runs", "5")

    output = run_demo("--models", "2", "--runs", "5")

    assert "Recorded 0 new notifications." in output
    assert Notification.objects.count() == 10


def test_the_demo_refuses_a_count_below_one():
    with pytest.raises(CommandError, match="at least 1"):
        run_demo("--models", "0")
