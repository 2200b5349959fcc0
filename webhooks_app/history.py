"""Alert history: what alerted, in which runs, since when and for how long.

A series is one (kind, estimator or calculator, metric) of one model. In each
run a series is in one of three states: it alerted; it was checked and did not
alert (its key is among the run's successes, or the key alerted on other
metrics); or it was not reported (its key is absent, as in a failed run). A
run where a series was not reported neither breaks nor extends its streak and
is no flip, so one failed run does not look like a recovery.

Every function here runs a fixed number of queries, however long the history.
"""

import datetime
import itertools
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db import models
from django.db.models import Max, Min, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webhooks_app.conf import app_settings
from webhooks_app.kinds import KIND_ORDER, Kind
from webhooks_app.models import Alert, MonitoredModel, Notification

BIGINT_MAX = 2**63 - 1
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
MICROSECOND = datetime.timedelta(microseconds=1)
SEARCH_MAX_LENGTH = 255


class State(models.TextChoices):
    ALERT = "alert", _("alert")
    OK = "ok", _("no alert")
    NOT_REPORTED = "not_reported", _("not reported")


class ModelFilter(models.TextChoices):
    ALERTING = "alerting", _("Alerting in the last run")
    EARLIER = "earlier", _("Alerting earlier only")
    NEVER = "never", _("Never alerted")


class ModelSort(models.TextChoices):
    LAST_RUN = "last_run", _("Last run")
    ALERTS = "alerts", _("Alerts")
    NAME = "name", _("Name")


class SeriesSort(models.TextChoices):
    RECENT = "recent", _("Most recent")
    COUNT = "count", _("Alerting runs")
    NAME = "name", _("Name")


MODEL_FILTERS = {
    ModelFilter.ALERTING: Q(open_alert_count__gt=0),
    ModelFilter.EARLIER: Q(open_alert_count=0, last_alerted_at__isnull=False),
    ModelFilter.NEVER: Q(last_alerted_at__isnull=True),
}
MODEL_ORDERINGS = {
    ModelSort.LAST_RUN: ["-last_run_started_at", "name", "pk"],
    ModelSort.ALERTS: ["-open_alert_count", "-last_run_started_at", "pk"],
    ModelSort.NAME: ["name", "nannyml_id"],
}


@dataclass(frozen=True)
class Run:
    """One run notification with the series that alerted in it."""

    pk: int
    started_at: datetime.datetime
    alerted: frozenset
    reported_keys: frozenset

    def state(self, series_key):
        if series_key in self.alerted:
            return State.ALERT
        if series_key[1] in self.reported_keys:
            return State.OK
        return State.NOT_REPORTED


@dataclass
class Series:
    kind: str
    key: str
    metric_name: str
    states: list = field(default_factory=list)  # newest run first
    window: int = 0
    first_seen: datetime.datetime | None = None
    last_seen: datetime.datetime | None = None
    streak: int = 0
    streak_capped: bool = False

    @property
    def kind_label(self):
        return Kind(self.kind).label

    @property
    def alerting_now(self):
        return bool(self.states) and self.states[0] == State.ALERT

    @property
    def recent_states(self):
        return self.states[: self.window]

    @property
    def alerting_runs(self):
        return self.recent_states.count(State.ALERT)

    @property
    def flips(self):
        return count_flips(self.recent_states)


def current_streak(states):
    """Alerting runs from the newest back to the last one that did not alert.

    Returns the count and whether it ran to the oldest state given (so the
    real streak may be longer).
    """
    streak = 0
    for state in states:
        if state == State.OK:
            return streak, False
        streak += state == State.ALERT
    return streak, streak > 0


def count_flips(states):
    """Changes between alerting and not among the runs where it was reported."""
    reported = [state for state in states if state != State.NOT_REPORTED]
    return sum(a != b for a, b in itertools.pairwise(reported))


def load_runs(model, limit):
    """The latest `limit` runs of `model`, newest first, with what alerted."""
    notifications = list(
        Notification.objects.runs()
        .filter(model=model)
        .order_by("-run_started_at", "-pk")
        .values_list("pk", "run_started_at", "succeeded")[:limit]
    )
    if not notifications:
        return []
    alerted = defaultdict(set)
    rows = Alert.objects.filter(
        model=model, run_started_at__gte=notifications[-1][1]
    ).values_list("notification_id", "kind", "key", "metric_name")
    for notification_id, *series_key in rows:
        alerted[notification_id].add(tuple(series_key))
    return [run_of(*row, alerted[row[0]]) for row in notifications]


def run_of(pk, started_at, succeeded, alerted):
    """A `Run` from a notification's fields and its (kind, key, metric) alerts."""
    keys = {key for _kind, key, _metric in alerted}
    keys.update(succeeded or ())  # a list of names, as the envelope checked
    return Run(pk, started_at, frozenset(alerted), frozenset(keys))


def model_history(model, window):
    """The latest runs of `model` and its series, states counted over `window`."""
    limit = max(window, app_settings.DASHBOARD_HISTORY_RUNS)
    runs = load_runs(model, limit)
    return runs, series_of(model, runs, window, limit_reached=len(runs) >= limit)


def series_of(model, runs, window, limit_reached=False):
    """Every series `model` ever alerted on, with its states in `runs`."""
    rows = (
        Alert.objects.filter(model=model)
        .values("kind", "key", "metric_name")
        .annotate(first_seen=Min("run_started_at"), last_seen=Max("run_started_at"))
        .order_by()
    )
    result = []
    for row in rows:
        series = Series(**row, window=window)
        series_key = (series.kind, series.key, series.metric_name)
        series.states = [run.state(series_key) for run in runs]
        series.streak, reached_end = current_streak(series.states)
        series.streak_capped = reached_end and limit_reached
        result.append(series)
    return sort_series(result, SeriesSort.NAME)


def sort_series(series, order):
    """Grouped by kind (performance first), then in `order` within each kind."""
    never = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    keys = {
        SeriesSort.RECENT: lambda s: (-(s.last_seen or never).timestamp(), s.key),
        SeriesSort.COUNT: lambda s: (-s.alerting_runs, -s.streak, s.key),
        SeriesSort.NAME: lambda s: (s.key, s.metric_name),
    }
    by = keys.get(order, keys[SeriesSort.NAME])
    return sorted(series, key=lambda s: (KIND_ORDER.get(s.kind, 99), by(s)))


def changes_since_previous(series):
    """The latest run against the one before: new, still, recovered, unreported."""
    groups = {"new": [], "still": [], "recovered": [], "unreported": []}
    for item in series:
        now = item.states[0] if item.states else State.NOT_REPORTED
        before = item.states[1] if len(item.states) > 1 else State.NOT_REPORTED
        if now == State.ALERT:
            groups["still" if before == State.ALERT else "new"].append(item)
        elif before == State.ALERT:
            groups["recovered" if now == State.OK else "unreported"].append(item)
    return groups


def summarize(model):
    """Values for the summary fields of `model`, from its recorded history."""
    window = app_settings.DASHBOARD_HISTORY_RUNS
    runs = load_runs(model, window)
    streaks = (
        current_streak([run.state(series_key) for run in runs])[0]
        for series_key in set().union(*(run.alerted for run in runs))
    )
    return {
        **open_alerts(runs[0] if runs else None),
        "longest_streak": max(streaks, default=0),
        "last_alerted_at": last_alerted_at(model, runs),
        "usual_interval": usual_interval(runs),
        "summary_state": summary_state(runs, window),
    }


def summarize_next(model, run):
    """The summary once `run` is recorded, from the stored state; None if stale.

    Gives what `summarize` gives, without reading the history, when `run` is
    newer than every run before it and the stored state is that of the
    model's latest run over the current window. Otherwise (a late run, a
    deleted run, a changed window, no state yet) it returns None and the
    caller recomputes.
    """
    state = model.summary_state
    window = app_settings.DASHBOARD_HISTORY_RUNS
    started = microseconds(run.started_at)
    if (
        not state
        or state["run"] != model.last_run_id
        or state["window"] != window
        or started <= state["at"]
    ):
        return None
    streaks = next_streaks(state["streaks"], run, window)
    gaps = [started - state["at"], *state["gaps"]][: window - 1]
    return {
        **open_alerts(run),
        "longest_streak": max((marks.count("A") for *_s, marks in streaks), default=0),
        "last_alerted_at": last_alerted_at(model, [run]),
        "usual_interval": median_interval(gaps),
        "summary_state": _state(run, window, gaps, streaks),
    }


def open_alerts(latest):
    """The latest run and its alerts by kind."""
    alerted = latest.alerted if latest else frozenset()
    by_kind = Counter(kind for kind, _key, _metric in alerted)
    return {
        "last_run_id": latest.pk if latest else None,
        "open_alert_count": len(alerted),
        "open_performance_count": by_kind[Kind.PERFORMANCE],
        "open_drift_count": by_kind[Kind.DRIFT],
        "open_data_quality_count": by_kind[Kind.DATA_QUALITY],
        "open_other_count": by_kind[Kind.OTHER],
    }


def last_alerted_at(model, runs):
    """The latest run with alerts: the stored one or a newer one among `runs`.

    Only ever moves forward, so older runs beyond `runs` need not be read.
    """
    times = [run.started_at for run in runs if run.alerted]
    if model.last_alerted_at:
        times.append(model.last_alerted_at)
    return max(times, default=None)


def usual_interval(runs):
    """The median time between consecutive runs, or None with fewer than two."""
    times = [run.started_at for run in runs]
    gaps = [newer - older for newer, older in itertools.pairwise(times)]
    return statistics.median(gaps) if gaps else None


# The summary state: what the summary of the next, newer run is computed from.
# For each series with a current streak, its marks over the latest runs back
# to its last clear run ("A" alerted, "-" not reported, newest first, within
# the window), and the gaps between the latest runs in microseconds.


def summary_state(runs, window):
    """The state after `runs` (the latest `window` runs, newest first)."""
    if not runs:
        return None
    streaks = []
    for series_key in set().union(*(run.alerted for run in runs)):
        marks = streak_marks([run.state(series_key) for run in runs])
        if marks:
            streaks.append([*series_key, marks])
    times = [microseconds(run.started_at) for run in runs]
    gaps = [newer - older for newer, older in itertools.pairwise(times)]
    return _state(runs[0], window, gaps, streaks)


def _state(latest, window, gaps, streaks):
    return {
        "run": latest.pk,
        "at": microseconds(latest.started_at),
        "window": window,
        "gaps": gaps,
        "streaks": sorted(streaks),
    }


def streak_marks(states):
    """A series' states back to its last clear run, as marks; "" for no streak."""
    marks = []
    for state in states:
        if state == State.OK:
            break
        marks.append("A" if state == State.ALERT else "-")
    return "".join(marks).rstrip("-")


def next_streaks(streaks, run, window):
    """The stored streaks once `run` is the newest of the last `window` runs."""
    result = []
    for *series_key, marks in streaks:
        state = run.state(tuple(series_key))
        if state == State.OK:
            continue
        marks = (("A" if state == State.ALERT else "-") + marks)[:window].rstrip("-")
        if marks:
            result.append([*series_key, marks])
    started = {tuple(series_key) for *series_key, _marks in streaks}
    result.extend([*series_key, "A"] for series_key in run.alerted - started)
    return result


def microseconds(moment):
    return (moment - EPOCH) // MICROSECOND


def median_interval(gaps):
    """`usual_interval` from gaps in microseconds, rounded the same way."""
    if not gaps:
        return None
    # The median of two middle gaps is a half microsecond at most; timedelta
    # rounds it as it rounds the median of timedeltas (half to even).
    return datetime.timedelta(microseconds=statistics.median(gaps))


def is_stale(model, now=None):
    """No run within twice the model's usual interval between runs."""
    if model.usual_interval is None or model.last_run_started_at is None:
        return False
    now = now or timezone.now()
    return now - model.last_run_started_at > 2 * model.usual_interval


def listed_models(search="", model_filter="", sort=""):
    """Monitored models with runs for the models page, searched and sorted."""
    queryset = (
        MonitoredModel.objects.filter(last_run_started_at__isnull=False)
        .select_related("last_run")
        .defer("last_run__body")
    )
    if model_filter in MODEL_FILTERS:
        queryset = queryset.filter(MODEL_FILTERS[model_filter])
    queryset = queryset.filter(search_filter(search))
    return queryset.order_by(*MODEL_ORDERINGS.get(sort, MODEL_ORDERINGS["last_run"]))


def search_filter(search):
    """A name containing `search`, or a NannyML id equal to it."""
    search = clean_search(search)
    if not search:
        return Q()
    condition = Q(name__icontains=search)
    try:
        number = int(search)
    except ValueError:
        return condition
    if abs(number) <= BIGINT_MAX:
        condition |= Q(nannyml_id=number)
    return condition


def clean_search(search):
    # PostgreSQL refuses NUL characters in text parameters.
    return (search or "").replace("\x00", "").strip()[:SEARCH_MAX_LENGTH]


def run_history(model):
    """A model's runs for the paginated history table, newest first."""
    return (
        Notification.objects.runs()
        .filter(model=model)
        .defer("body")
        .order_by("-run_started_at", "-pk")
    )
