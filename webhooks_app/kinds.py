"""Which kind of alert an estimator or calculator key raises: the one mapping."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Category(models.TextChoices):
    """The group an alert came in, as the payload names it."""

    PERFORMANCE = "performance", _("Performance")
    OTHER = "other", _("Other")


class Kind(models.TextChoices):
    """What the dashboard groups alerts by, in display order."""

    PERFORMANCE = "performance", _("Performance")
    DRIFT = "drift", _("Drift")
    DATA_QUALITY = "data_quality", _("Data quality")
    OTHER = "other", _("Other")


DRIFT_KEYS = frozenset(
    {"univariate_drift", "reconstruction_error", "domain_classifier"}
)
DATA_QUALITY_KEYS = frozenset({"missing_values", "unseen_values"})
DATA_QUALITY_PREFIXES = ("summary_stats_",)

KIND_ORDER = {kind: position for position, kind in enumerate(Kind.values)}


def kind_of(category, key):
    """The kind of an alert in `category` ("performance"/"other") raised by `key`."""
    if category == Category.PERFORMANCE:
        return Kind.PERFORMANCE
    if key in DRIFT_KEYS:
        return Kind.DRIFT
    if key in DATA_QUALITY_KEYS or key.startswith(DATA_QUALITY_PREFIXES):
        return Kind.DATA_QUALITY
    return Kind.OTHER
