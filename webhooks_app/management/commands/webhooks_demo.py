"""Fill the database with realistic monitoring histories for the dashboard."""

import datetime
import random

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from webhooks_app.recording import record_notification

NAMES = [
    ("churn classifier", "classification"),
    ("credit default", "classification"),
    ("demand forecast", "regression"),
    ("fraud detector", "classification"),
    ("house prices", "regression"),
    ("loan approval", "classification"),
    ("delivery eta", "regression"),
    ("ad click-through", "classification"),
]
PERFORMANCE = {
    "classification": ("cbpe", ["roc_auc", "f1", "recall"]),
    "regression": ("dle", ["mae", "rmse"]),
}
OTHER = [
    ("univariate_drift", "tenure_months"),
    ("univariate_drift", "plan"),
    ("univariate_drift", "country"),
    ("reconstruction_error", "reconstruction_error"),
    ("domain_classifier", "domain_classifier_auroc"),
    ("missing_values", "last_login_days"),
    ("unseen_values", "plan"),
    ("summary_stats_avg", "monthly_charges"),
    ("custom_threshold", "latency_p95"),
]
PATTERNS = ["quiet"] * 4 + ["streak", "recovered", "flapping", "once"]
INTERVAL = datetime.timedelta(days=1)
REPORT_BASE = "https://demo.app.nannyml.com/model/"
STALE_MODEL = 2  # its runs stopped a while ago
FAILED_MODEL = 1  # its latest run reported nothing


class Command(BaseCommand):
    help = (
        "Record demo notifications through record_notification: models with "
        "streaks, recoveries, flapping metrics, a stale model and a failed run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--models", type=int, default=8)
        parser.add_argument("--runs", type=int, default=45)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, models, runs, seed, **options):
        if models < 1 or runs < 1:
            raise CommandError("--models and --runs must be at least 1.")
        # Runs fall at midnight UTC, so running the command again the same day
        # makes the same runs, which are recorded once.
        now = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        created = 0
        for index in range(models):
            rng = random.Random(seed * 1000 + index)  # noqa: S311 (demo data)
            demo = DemoModel(index, rng, runs)
            for envelope in demo.envelopes(now):
                created += record_notification(envelope).created
            self.stdout.write(f"[{index + 1}/{models}] {demo.name}: {runs} runs")
        self.stdout.write(self.style.SUCCESS(f"Recorded {created} new notifications."))


class DemoModel:
    def __init__(self, index, rng, runs):
        name, task = NAMES[index % len(NAMES)]
        if index >= len(NAMES):
            name = f"{name} v{index // len(NAMES) + 1}"
        self.index, self.rng, self.runs, self.name = index, rng, runs, name
        key, metrics = PERFORMANCE[task]
        series = [("performance", key, metric) for metric in metrics]
        series += [("other", key, metric) for key, metric in OTHER]
        self.patterns = {s: self._pattern() for s in series}

    def _pattern(self):
        pattern = self.rng.choice(PATTERNS)
        start = self.rng.randrange(self.runs)
        length = self.rng.randrange(1, max(2, self.runs // 3))
        return pattern, start, length

    def envelopes(self, now):
        end = now - (6 * INTERVAL if self.index == STALE_MODEL else INTERVAL * 0)
        for run in range(self.runs):
            started = end - (self.runs - 1 - run) * INTERVAL
            failed = self.index == FAILED_MODEL and run == self.runs - 1
            yield self._envelope(run, started, failed)

    def _envelope(self, run, started, failed):
        alerted = [] if failed else [s for s in self.patterns if self._alerts(s, run)]
        groups = {"performance": {}, "other": {}}
        for category, key, metric in alerted:
            groups[category].setdefault(key, []).append({"metric_name": metric})
        keys = {key for _category, key, _metric in self.patterns}
        passed = keys - {key for _category, key, _metric in alerted}
        return {
            "header": {
                "model_name": self.name,
                "model_id": 1000 + self.index,
                "notification_type": "RUN_COMPLETED",
            },
            "payload": {
                "run": {"started_at": started.isoformat()},
                "performance_alerts": groups["performance"],
                "other_alerts": groups["other"],
                "success": [] if failed else sorted(passed),
                "report_link": f"{REPORT_BASE}{1000 + self.index}",
            },
        }

    def _alerts(self, series, run):
        pattern, start, length = self.patterns[series]
        if pattern == "streak":
            return run >= self.runs - length
        if pattern == "recovered":
            return start <= run < start + length and start + length < self.runs
        if pattern == "flapping":
            return run >= self.runs // 2 and (run * 7 + start) % 3 == 0
        if pattern == "once":
            return run == start
        return False
