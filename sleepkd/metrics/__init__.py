"""Staging metrics: pooled and per-subject reports that agree with scikit-learn."""

from sleepkd.utils._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {"staging_report": "._report", "StagingReport": "._report",
     "relative_gain": "._report", "staging_scorer": "._scorer",
     "StagingScorer": "._scorer"},
)
