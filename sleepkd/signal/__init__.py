"""Signal front-end: scikit-learn transformers for ECG (and EEG) epochs.

Every transformer maps one row to one row: ``(n_epochs, n_times)`` or
``(n_epochs, n_channels, n_times)`` in, ``n_epochs`` rows out.
"""

from sleepkd.utils._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "BandpassFilter": "._filter",
        "detect_rpeaks": "._rpeaks",
        "HeartRateTransformer": "._heart_rate",
        "HRVFeatures": "._hrv",
        "instantaneous_heart_rate": "._ihr",
    },
)
