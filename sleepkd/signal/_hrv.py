"""Heart-rate-variability features per row, vectorised across rows."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import scipy.signal
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from sleepkd.signal._beats import (
    check_fill,
    DEFAULT_MIN_TEMPLATE_CORR,
    check_detection_params,
    check_epoch_length,
    detect_beats_rows,
    log_beat_report,
    rr_intervals,
)
from sleepkd.signal._zero_phase import resolve_n_jobs

logger = logging.getLogger(__name__)

#: Output columns of :func:`hrv_from_beats` and :class:`HRVFeatures`, with units.
FEATURE_NAMES = (
    "mean_rr_ms",
    "mean_hr_bpm",
    "sdnn_ms",
    "rmssd_ms",
    "pnn50_pct",
    "lf_power_ms2",
    "hf_power_ms2",
    "lf_hf_ratio",
)

#: Frequency bands in Hz (Task Force of the ESC/NASPE, 1996).
LF_BAND = (0.04, 0.15)
HF_BAND = (0.15, 0.40)

#: Rate (Hz) at which the RR series is resampled for the spectrum.
RR_RESAMPLE_HZ = 4.0

#: A band's power is computed only when the usable beats span this many periods of
#: the band's lowest frequency (LF: 50 s, HF: 13.3 s).
MIN_CYCLES = 2.0

#: Welch segment length in seconds (64 s; shorter rows use one segment of their length).
WELCH_SECONDS = 64.0


def _nan_reduce(func, *args, **kwargs):
    """Apply a nan-aware numpy reduction, silencing the all-NaN-row warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return func(*args, **kwargs)


def _pad_rows(rows: list) -> np.ndarray:
    """Stack 1-D arrays of different lengths into a NaN-padded 2-D array."""
    lengths = np.array([r.size for r in rows], dtype=int)
    out = np.full((len(rows), max(int(lengths.max(initial=0)), 1)), np.nan)
    out[np.arange(out.shape[1])[None, :] < lengths[:, None]] = np.concatenate(rows) if rows else []
    return out


def _band_power(freqs: np.ndarray, psd: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    in_band = (freqs >= band[0]) & (freqs < band[1])
    df = freqs[1] - freqs[0] if freqs.size > 1 else 0.0
    return psd[:, in_band].sum(axis=1) * df


def hrv_from_beats(
    beat_times: list,
    duration: float | ArrayLike,
    min_hr: float = 30.0,
    max_hr: float = 200.0,
) -> np.ndarray:
    """HRV features of each row from its beat times.

    Parameters
    ----------
    beat_times : list of 1-D arrays
        Per row, sorted beat (R-peak) times in seconds from the row start.
    duration : float
        Row duration in seconds (the RR series is resampled on ``[0, duration)``).
    min_hr, max_hr : float, default 30.0, 200.0
        Plausible heart-rate range in beats/min; RR intervals outside it are
        discarded (set to NaN, so that successive differences across them are not
        taken).

    Returns
    -------
    features : ndarray of shape (n_rows, 8)
        Columns :data:`FEATURE_NAMES`:

        - ``mean_rr_ms``: mean RR interval; ``mean_hr_bpm``: mean of ``60000 / RR``.
        - ``sdnn_ms``: standard deviation of RR (``ddof=1``).
        - ``rmssd_ms``: root mean square of successive RR differences.
        - ``pnn50_pct``: 100 x (number of successive differences above 50 ms) / (number
          of RR intervals), the Task Force definition also used by neurokit2.
        - ``lf_power_ms2``, ``hf_power_ms2``: power of the RR series in 0.04-0.15 Hz and
          0.15-0.40 Hz; ``lf_hf_ratio`` their ratio.

    Notes
    -----
    NaN policy: mean RR/HR need 1 usable RR interval (2 beats); SDNN, RMSSD and
    pNN50 need 2 (3 beats); otherwise NaN. For the spectrum, the usable RR values
    (placed at the beat ending each interval) are linearly interpolated at 4 Hz on
    ``[0, duration)`` (constant before the first and after the last), the mean is
    removed and a Welch periodogram (Hann, 64-s segments, 50 % overlap, or one segment
    for shorter rows) is integrated over each band. A band is NaN unless the usable
    beats span at least 2 periods of its lowest frequency: LF needs 50 s, so a single
    30-s epoch has NaN LF power and LF/HF (HF needs 13.3 s); give rows with
    neighbouring epochs as context to get LF. LF/HF is NaN when either is NaN or HF is 0.

    Examples
    --------
    >>> import numpy as np
    >>> feats = hrv_from_beats([np.arange(0.5, 300, 1.0)], duration=300.0)
    >>> [round(float(v), 3) for v in feats[0, :5]]
    [1000.0, 60.0, 0.0, 0.0, 0.0]
    """
    return _hrv_and_counts(beat_times, duration, min_hr, max_hr)[0]


def _hrv_and_counts(beat_times: list, duration, min_hr: float, max_hr: float) -> tuple[np.ndarray, int, int]:
    """:func:`hrv_from_beats`, and the RR intervals seen and discarded (for the report)."""
    beat_times = [np.asarray(t, dtype=np.float64).ravel() for t in beat_times]
    n_rows = len(beat_times)
    durations = np.broadcast_to(np.asarray(duration, dtype=np.float64), (n_rows,))
    rr, end_times, n_rr, n_discarded = rr_intervals(beat_times, min_hr, max_hr)
    rr_ms = _pad_rows([r * 1000.0 for r in rr])
    n_usable = np.sum(~np.isnan(rr_ms), axis=1)
    diffs = np.diff(rr_ms, axis=1)  # NaN next to a discarded interval or padding
    n_diffs = np.sum(~np.isnan(diffs), axis=1)

    features = np.full((n_rows, len(FEATURE_NAMES)), np.nan)
    features[:, 0] = _nan_reduce(np.nanmean, rr_ms, axis=1)
    features[:, 1] = _nan_reduce(np.nanmean, 60000.0 / rr_ms, axis=1)
    has_pairs = (n_usable >= 2) & (n_diffs >= 1)
    features[:, 2] = np.where(has_pairs, _nan_reduce(np.nanstd, rr_ms, axis=1, ddof=1), np.nan)
    features[:, 3] = np.where(has_pairs, np.sqrt(_nan_reduce(np.nanmean, diffs**2, axis=1)), np.nan)
    # The 1e-6 ms margin keeps differences of exactly 50 ms (integer-ms beat times
    # become e.g. 50.000000001 after the s -> ms round trip) out of NN50, as intended.
    nn50 = np.sum(np.abs(np.nan_to_num(diffs, nan=0.0)) > 50.0 + 1e-6, axis=1)
    features[:, 4] = np.where(has_pairs, 100.0 * nn50 / np.maximum(n_usable, 1), np.nan)

    # Frequency domain: one common 4-Hz grid per distinct row duration (usually one).
    for dur in np.unique(durations):
        rows = np.flatnonzero(durations == dur)
        features[rows, 5:] = _frequency_features(
            [rr[i] * 1000.0 for i in rows], [end_times[i] for i in rows], float(dur)
        )
    return features, n_rr, n_discarded


def _frequency_features(rr_ms: list, end_times: list, duration: float) -> np.ndarray:
    """LF, HF and LF/HF of rows sharing one duration (see :func:`hrv_from_beats`)."""
    n_rows = len(rr_ms)
    out = np.full((n_rows, 3), np.nan)
    n_grid = int(np.floor(duration * RR_RESAMPLE_HZ))
    if n_grid < 4:
        return out
    grid = np.arange(n_grid) / RR_RESAMPLE_HZ
    series = np.zeros((n_rows, n_grid))
    span = np.zeros(n_rows)
    for i, (values, times) in enumerate(zip(rr_ms, end_times)):
        usable = ~np.isnan(values)
        if usable.sum() >= 2:
            series[i] = np.interp(grid, times[usable], values[usable])
            # beats spanned: from the start of the first usable interval to the end
            # of the last one
            span[i] = times[usable][-1] - (times[usable][0] - values[usable][0] / 1000.0)
    nperseg = min(n_grid, int(WELCH_SECONDS * RR_RESAMPLE_HZ))
    freqs, psd = scipy.signal.welch(
        series, fs=RR_RESAMPLE_HZ, window="hann", nperseg=nperseg, detrend="constant", axis=-1
    )
    for col, band in enumerate((LF_BAND, HF_BAND)):
        resolved = span >= MIN_CYCLES / band[0]
        out[:, col] = np.where(resolved, _band_power(freqs, psd, band), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, 2] = np.where(out[:, 1] > 0, out[:, 0] / out[:, 1], np.nan)
    return out


def hrv_from_rr(rr_ms: ArrayLike, min_hr: float = 30.0, max_hr: float = 200.0) -> dict:
    """HRV features of one series of RR intervals (e.g. from annotated beat times).

    The beat times are rebuilt as ``[0, cumsum(rr)]`` and the row duration is the
    sum of the intervals; see :func:`hrv_from_beats` for definitions and NaN policy.

    Parameters
    ----------
    rr_ms : array-like of shape (n_intervals,)
        RR intervals in milliseconds, in order.
    min_hr, max_hr : float
        Plausible heart-rate range in beats/min.

    Returns
    -------
    features : dict
        Feature name (:data:`FEATURE_NAMES`) -> value.

    Raises
    ------
    ValueError
        If ``rr_ms`` is not 1-D, or has non-finite or non-positive values.

    Examples
    --------
    >>> round(hrv_from_rr([800.0, 850.0, 800.0])["rmssd_ms"], 6)
    50.0
    """
    rr = np.asarray(rr_ms, dtype=np.float64)
    if rr.ndim != 1:
        raise ValueError(f"rr_ms must be 1-D, got shape {rr.shape}.")
    if not np.all(np.isfinite(rr)) or np.any(rr <= 0):
        raise ValueError("rr_ms must contain positive finite intervals (ms).")
    times = np.concatenate([[0.0], np.cumsum(rr) / 1000.0])
    values = hrv_from_beats([times], duration=max(times[-1], 1e-3), min_hr=min_hr, max_hr=max_hr)[0]
    return {name: float(v) for name, v in zip(FEATURE_NAMES, values)}


class HRVFeatures(TransformerMixin, BaseEstimator):
    """ECG rows -> heart-rate-variability features (one row of 8 features per row).

    R-peaks are detected in each row (see :func:`~sleepkd.signal.detect_rpeaks`) and
    passed to :func:`hrv_from_beats`, which gives mean RR, mean HR, SDNN, RMSSD,
    pNN50, LF and HF power and LF/HF (names with units from
    :meth:`get_feature_names_out`). Time-domain features are computed for all rows
    at once on a NaN-padded RR array, the spectra in one vectorised Welch call.

    Parameters
    ----------
    fs : float, default 256.0
        ECG sampling rate in Hz (at least 50 Hz).
    min_hr, max_hr : float, default 30.0, 200.0
        Plausible heart-rate range in beats/min; RR intervals outside are discarded
        and counted (logged warning).
    fill : None, "median" or float, default None
        What undefined features become (see NaN policy in :func:`hrv_from_beats`:
        rows with too few beats, LF on rows shorter than 50 s). None keeps NaN
        (fine for ``HistGradientBoostingClassifier``); ``"median"`` uses each
        feature's median over the ``fit`` data (0.0 for a feature undefined on all
        fit rows, with a logged warning); a number is used as is.
    min_template_corr : "auto", float or None, default "auto"
        ECG quality gate; rows below it get no beats. ``"auto"`` is 0.6 for
        ``"neurokit"`` and 0.62 for ``"sleepecg"`` (see
        :func:`~sleepkd.signal.detect_rpeaks`); None disables it.
    method : {"neurokit", "sleepecg"}, default "neurokit"
        R-peak detector (see :func:`~sleepkd.signal.detect_rpeaks`). ``"sleepecg"``
        runs about 2.5-3 times faster (the front-end benchmark's 8-hour night) and
        needs the optional extra (``pip install "sleepkd[sleepecg]"``); without it
        ``"neurokit"`` runs and a warning is logged once.
    epoch_seconds : float or None, default 30.0
        Rows must last a whole number of epochs of this length at ``fs``; None skips
        the check.
    n_jobs : int or None, default None
        Threads for the detector's zero-phase filters (None: 1; -1: all cores). The
        beats found do not depend on it.

    Attributes
    ----------
    fill_values_ : ndarray of shape (8,) or None
        Per-feature fill values (None when ``fill=None``).
    n_features_in_ : int
        Number of ECG samples per row.

    Examples
    --------
    >>> import numpy as np
    >>> from sleepkd.signal import HRVFeatures
    >>> HRVFeatures(fs=256.0).fit_transform(np.zeros((2, 7680))).shape
    (2, 8)
    """

    def __init__(
        self,
        fs: float = 256.0,
        min_hr: float = 30.0,
        max_hr: float = 200.0,
        fill: str | float | None = None,
        min_template_corr: float | str | None = DEFAULT_MIN_TEMPLATE_CORR,
        method: str = "neurokit",
        epoch_seconds: float | None = 30.0,
        n_jobs: int | None = None,
    ):
        self.fs = fs
        self.min_hr = min_hr
        self.max_hr = max_hr
        self.fill = fill
        self.min_template_corr = min_template_corr
        self.method = method
        self.epoch_seconds = epoch_seconds
        self.n_jobs = n_jobs

    def _check_params(self) -> float:
        fs = check_detection_params(self.fs, self.method, self.min_template_corr, self.min_hr, self.max_hr)
        resolve_n_jobs(self.n_jobs)
        check_fill(self.fill, allow_none=True)
        return fs

    def _features(self, X: np.ndarray, fs: float) -> np.ndarray:
        beats = detect_beats_rows(
            X, fs, method=self.method, min_template_corr=self.min_template_corr, n_jobs=self.n_jobs
        )
        times = [p / fs for p in beats.peaks]
        features, n_rr, n_discarded = _hrv_and_counts(times, X.shape[1] / fs, self.min_hr, self.max_hr)
        n_unusable = int(np.isnan(features[:, 0]).sum())
        action = "their features are NaN" if self.fill is None else "their features are filled"
        log_beat_report(
            type(self).__name__, X.shape[0], beats, n_rr, n_discarded, n_unusable,
            self.min_hr, self.max_hr, action,
        )
        return features

    def _apply_fill(self, features: np.ndarray) -> np.ndarray:
        if self.fill_values_ is None:
            return features
        missing = np.isnan(features)
        if missing.any():
            logger.info(
                "%s: filled %d undefined feature values (per feature: %s).",
                type(self).__name__, int(missing.sum()),
                dict(zip(FEATURE_NAMES, missing.sum(axis=0).tolist())),
            )
        return np.where(missing, self.fill_values_[None, :], features)

    def _fit(self, X) -> tuple[np.ndarray, np.ndarray | None]:
        fs = self._check_params()
        X = validate_data(self, X, reset=True, dtype=np.float64)
        check_epoch_length(X.shape[1], fs, self.epoch_seconds)
        if self.fill is None:
            self.fill_values_ = None
            return X, None
        if self.fill != "median":
            self.fill_values_ = np.full(len(FEATURE_NAMES), float(self.fill))
            return X, None
        features = self._features(X, fs)
        medians = _nan_reduce(np.nanmedian, features, axis=0)
        undefined = np.isnan(medians)
        if undefined.any():
            logger.warning(
                "%s: features %s are undefined on every fit row (too few beats, or rows "
                "too short for the band); they will be filled with 0.0.",
                type(self).__name__, [n for n, u in zip(FEATURE_NAMES, undefined) if u],
            )
        self.fill_values_ = np.where(undefined, 0.0, medians)
        return X, features

    def fit(self, X, y=None):
        """Check the input; with ``fill="median"``, learn the per-feature medians.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times)
            ECG rows.
        y : ignored

        Returns
        -------
        self : HRVFeatures

        Raises
        ------
        ValueError
            For invalid parameters, NaN/inf, empty or non-2-D input, or rows whose
            length disagrees with ``fs`` and ``epoch_seconds``.
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit and transform, detecting beats once.

        Returns
        -------
        features : ndarray of shape (n_epochs, 8)
        """
        X, features = self._fit(X)
        if features is None:
            features = self._features(X, float(self.fs))
        return self._apply_fill(features)

    def transform(self, X):
        """HRV features of every row.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times)
            ECG rows with the row length seen at ``fit``.

        Returns
        -------
        features : ndarray of shape (n_epochs, 8)
            Columns as :meth:`get_feature_names_out`; NaN only when ``fill=None``.
        """
        check_is_fitted(self, "fill_values_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._apply_fill(self._features(X, float(self.fs)))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Feature names with units, e.g. ``"mean_rr_ms"`` (see :data:`FEATURE_NAMES`)."""
        check_is_fitted(self, "fill_values_")
        return np.asarray(FEATURE_NAMES, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []  # always float64 features
        tags.input_tags.allow_nan = False
        return tags
