"""Staging metrics: pooled and per-subject reports that agree with scikit-learn, and
paired statistics (gains, subject-bootstrap intervals, Wilcoxon) over a baseline."""

from sleepkd.utils._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {"staging_report": "._report", "StagingReport": "._report",
     "relative_gain": "._report", "staging_scorer": "._scorer",
     "StagingScorer": "._scorer", "paired_gains": "._paired",
     "bootstrap_ci": "._paired", "paired_test": "._paired",
     "summarize_gains": "._paired", "PairedTest": "._paired"},
)
