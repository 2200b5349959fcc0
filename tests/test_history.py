import datetime
import random
import statistics
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.dashboard_data import DAY, START, record_runs, run_envelope
from webhooks_app import history
from webhooks_app.history import State
from webhooks_app.kinds import Kind
from webhooks_app.models import MonitoredModel
from webhooks_app.recording import record_notification

pytestmark = pytest.mark.django_db

A, OK, NR = State.ALERT, State.OK, State.NOT_REPORTED


def only_series(model, window=30):
    _runs, series = history.model_history(model, window)
    assert len(series) == 1
    return series[0]


def test_the_current_streak_counts_alerting_runs_back_to_the_last_clear_one():
    model = record_runs("AA.AAA")

    series = only_series(model)

    assert series.states == [A, A, A, OK, A, A]
    assert series.streak == 3
    assert series.alerting_now


def test_a_run_that_did_not_report_the_metric_neither_breaks_nor_extends_a_streak():
    model = record_runs(".AA-A")

    series = only_series(model)

    assert series.states == [A, NR, A, A, OK]
    assert series.streak == 3
    assert series.flips == 1


def test_a_metric_that_stopped_alerting_has_no_current_streak():
    model = record_runs("AAA.")

    series = only_series(model)

    assert series.streak == 0
    assert not series.alerting_now


def test_first_and_last_seen_are_the_first_and_last_alerting_runs():
    model = record_runs(".A..A.")

    series = only_series(model)

    assert series.first_seen == START + 1 * DAY
    assert series.last_seen == START + 4 * DAY


def test_flips_and_alerting_runs_count_only_the_last_n_runs(settings):
    settings.WEBHOOKS_DASHBOARD_RUNS = 4
    model = record_runs("A.A.A..A")

    series = only_series(model, window=4)

    assert series.recent_states == [A, OK, OK, A]
    assert series.alerting_runs == 2
    assert series.flips == 2


def test_flips_skip_runs_where_the_metric_was_not_reported():
    assert history.count_flips([A, NR, A, OK, NR, OK, A]) == 2
    assert history.count_flips([NR, NR]) == 0


def test_a_streak_longer_than_the_history_read_is_marked_as_at_least(settings):
    settings.WEBHOOKS_DASHBOARD_HISTORY_RUNS = 3
    model = record_runs("AAAAA")

    series = only_series(model, window=2)

    assert series.streak == 3
    assert series.streak_capped


def test_changes_since_the_previous_run_are_new_still_recovered_and_unreported():
    record_notification(
        run_envelope(
            day=0,
            performance={"cbpe": ["roc_auc", "f1"]},
            other={"univariate_drift": ["plan"], "missing_values": ["age"]},
        )
    )
    record_notification(
        run_envelope(
            day=1,
            performance={"cbpe": ["roc_auc", "recall"]},
            success=["univariate_drift"],
        )
    )
    model = MonitoredModel.objects.get()
    _runs, series = history.model_history(model, 30)

    changes = history.changes_since_previous(series)

    names = {group: {s.metric_name for s in items} for group, items in changes.items()}
    assert names == {
        "new": {"recall"},
        "still": {"roc_auc"},
        "recovered": {"f1", "plan"},
        "unreported": {"age"},
    }


def test_series_are_grouped_by_kind_with_performance_first():
    record_notification(
        run_envelope(
            performance={"cbpe": ["roc_auc"]},
            other={
                "my_check": ["z"],
                "summary_stats_avg": ["income"],
                "domain_classifier": ["auroc"],
            },
        )
    )
    model = MonitoredModel.objects.get()
    _runs, series = history.model_history(model, 30)

    kinds = [s.kind for s in history.sort_series(series, "count")]

    assert kinds == [Kind.PERFORMANCE, Kind.DRIFT, Kind.DATA_QUALITY, Kind.OTHER]


def test_the_model_summary_is_kept_by_recording():
    record_runs("A.A", model_id=1)
    record_notification(
        run_envelope(
            model_id=1,
            day=3,
            performance={"cbpe": ["f1"]},
            other={"univariate_drift": ["country", "plan"], "unseen_values": ["x"]},
        )
    )

    model = MonitoredModel.objects.select_related("last_run").get()

    assert model.last_run.run_started_at == START + 3 * DAY
    assert model.open_alert_count == 4
    assert (
        model.open_performance_count,
        model.open_drift_count,
        model.open_data_quality_count,
        model.open_other_count,
    ) == (1, 2, 1, 0)
    assert model.longest_streak == 2
    assert model.last_alerted_at == START + 3 * DAY
    assert model.usual_interval == DAY


def test_a_late_old_run_does_not_overwrite_the_newer_summary():
    record_notification(run_envelope(day=5, other={"univariate_drift": ["plan"]}))
    record_notification(run_envelope(day=4, other={"univariate_drift": ["plan"]}))
    record_notification(run_envelope(day=1, success=["univariate_drift"]))

    model = MonitoredModel.objects.get()

    assert model.last_run.run_started_at == START + 5 * DAY
    assert model.open_alert_count == 1
    assert model.longest_streak == 2
    assert model.last_alerted_at == START + 5 * DAY


def test_a_model_is_stale_after_twice_its_usual_interval():
    model = record_runs("...")

    assert not history.is_stale(model, now=START + 2 * DAY + 2 * DAY)
    assert history.is_stale(
        model, now=START + 2 * DAY + 2 * DAY + datetime.timedelta(seconds=1)
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_of_one_model_leave_a_correct_summary():
    barrier = threading.Barrier(6)

    def record(day):
        try:
            barrier.wait()
            other = {"univariate_drift": ["plan"]} if day >= 2 else None
            record_notification(run_envelope(day=day, other=other, success=["cbpe"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(day,)) for day in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    model = MonitoredModel.objects.get()
    assert model.last_run.run_started_at == START + 5 * DAY
    assert model.longest_streak == 4
    assert model.usual_interval == DAY


@pytest.fixture
def three_models():
    record_runs("AA", model_id=1)  # alerting in the last run
    record_notification(run_envelope(model_id=1, day=2, name="fraud", success=[]))
    record_runs(".A", model_id=2)
    record_runs("..", model_id=3)
    MonitoredModel.objects.filter(nannyml_id=1).update(name="fraud")
    MonitoredModel.objects.filter(nannyml_id=2).update(name="churn")
    MonitoredModel.objects.filter(nannyml_id=3).update(name="prices")


@pytest.mark.parametrize(
    ("model_filter", "expected"),
    [("alerting", {"churn"}), ("earlier", {"fraud"}), ("never", {"prices"})],
)
def test_models_are_filtered_by_when_they_alerted(three_models, model_filter, expected):
    names = {m.name for m in history.listed_models(model_filter=model_filter)}

    assert names == expected


@pytest.mark.parametrize(
    ("search", "expected"),
    [("FRA", {"fraud"}), ("2", {"churn"}), ("", {"fraud", "churn", "prices"})],
)
def test_models_are_found_by_name_or_exact_id(three_models, search, expected):
    assert {m.name for m in history.listed_models(search=search)} == expected


def test_models_sort_by_alerts_then_last_run(three_models):
    names = [m.name for m in history.listed_models(sort="alerts")]

    assert names == ["churn", "fraud", "prices"]


def test_a_model_with_only_webhook_tests_is_not_listed():
    envelope = run_envelope(model_id=9)
    envelope["header"]["notification_type"] = "WEBHOOK_TEST"
    record_notification(envelope)

    assert not history.listed_models().exists()


# The summary built on the stored state against a recomputation

SUMMARY_FIELDS = [*history.open_alerts(None), "longest_streak", "last_alerted_at"]
SUMMARY_FIELDS += ["usual_interval", "summary_state"]
SERIES = {
    "cbpe": ["roc_auc", "f1"],
    "univariate_drift": ["plan", "country"],
    "missing_values": ["age"],
}


def random_runs(seed, count):
    """Envelopes of `count` runs where each key alerts, passes or is absent."""
    rng = random.Random(seed)
    runs, started = [], START
    for _number in range(count):
        alerts, success = {}, []
        for key, metrics in SERIES.items():
            state = rng.choice(["alert", "alert", "ok", "absent"])
            if state == "alert":
                alerts[key] = rng.sample(metrics, rng.randint(1, len(metrics)))
            elif state == "ok":
                success.append(key)
        performance = {"cbpe": alerts.pop("cbpe")} if "cbpe" in alerts else None
        envelope = run_envelope(performance=performance, other=alerts, success=success)
        envelope["payload"]["run"]["started_at"] = started.isoformat()
        runs.append(envelope)
        started += datetime.timedelta(hours=rng.choice([1, 2, 24, 25]))
    return runs


def assert_summary_is_recomputed_one():
    model = MonitoredModel.objects.get()
    stored = {name: getattr(model, name) for name in SUMMARY_FIELDS}
    assert stored == history.summarize(model)


@pytest.mark.parametrize("seed", range(3))
def test_a_newer_run_builds_on_the_state_and_matches_a_recomputation(settings, seed):
    settings.WEBHOOKS_DASHBOARD_HISTORY_RUNS = 6
    for number, envelope in enumerate(random_runs(seed, 30)):
        with CaptureQueriesContext(connection) as queries:
            record_notification(envelope)

        assert_summary_is_recomputed_one()
        reads_history = any(
            "webhooks_app_alert" in q["sql"]
            for q in queries
            if q["sql"].startswith("SELECT")
        )
        assert reads_history == (number == 0)


@pytest.mark.parametrize("seed", range(3))
def test_runs_in_any_order_leave_the_summary_of_a_recomputation(settings, seed):
    settings.WEBHOOKS_DASHBOARD_HISTORY_RUNS = 6
    runs = random_runs(seed, 30)
    random.Random(seed).shuffle(runs)

    for envelope in runs:
        record_notification(envelope)

        assert_summary_is_recomputed_one()


def test_a_streak_longer_than_the_window_stays_capped(settings):
    settings.WEBHOOKS_DASHBOARD_HISTORY_RUNS = 3
    model = record_runs("AA-AAA-A")

    assert model.longest_streak == 2
    assert_summary_is_recomputed_one()


def test_a_changed_window_recomputes_the_summary(settings):
    record_runs("AAAA")
    settings.WEBHOOKS_DASHBOARD_HISTORY_RUNS = 2

    record_notification(run_envelope(day=4, other={"univariate_drift": ["country"]}))

    assert MonitoredModel.objects.get().longest_streak == 2
    assert_summary_is_recomputed_one()


def test_a_deleted_run_is_not_carried_on_in_the_summary():
    model = record_runs("AA.A")
    model.notifications.get(run_started_at=START + 2 * DAY).delete()

    record_notification(run_envelope(day=4, other={"univariate_drift": ["country"]}))

    assert MonitoredModel.objects.get().longest_streak == 4
    assert_summary_is_recomputed_one()


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_in_any_order_leave_the_summary_of_a_recomputation(settings):
    settings.WEBHOOKS_DASHBOARD_HISTORY_RUNS = 6
    runs = random_runs(7, 16)
    random.Random(7).shuffle(runs)
    barrier = threading.Barrier(4)

    def record(envelopes):
        try:
            barrier.wait()
            for envelope in envelopes:
                record_notification(envelope)
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(runs[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert MonitoredModel.objects.get().last_run.run_started_at == max(
        datetime.datetime.fromisoformat(r["payload"]["run"]["started_at"]) for r in runs
    )
    assert_summary_is_recomputed_one()


@pytest.mark.parametrize("gaps", [[1, 2], [2, 3], [7, 1, 4, 10], [5]])
def test_the_median_of_gaps_rounds_as_the_median_of_intervals(gaps):
    intervals = [datetime.timedelta(microseconds=gap) for gap in gaps]

    assert history.median_interval(gaps) == statistics.median(intervals)
