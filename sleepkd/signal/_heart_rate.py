"""ECG rows -> instantaneous heart rate on a fixed time grid (input for CNN students)."""

from __future__ import annotations

import logging

import numpy as np
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
from sleepkd.utils._validation import check_sampling_rate

logger = logging.getLogger(__name__)


def n_grid_points(n_times: int, fs: float, fs_out: float) -> int:
    """Number of output samples for a row: ``round(n_times / fs * fs_out)``, at least 1."""
    return max(1, int(round(n_times / fs * fs_out)))


def heart_rate_on_grid(
    beat_times: list,
    duration: float,
    fs_out: float,
    min_hr: float = 30.0,
    max_hr: float = 200.0,
) -> tuple[np.ndarray, int, int]:
    """Instantaneous heart rate of each row, sampled on a regular grid.

    Each RR interval gives a heart rate ``60 / RR`` (beats/min) placed at the beat that
    ends the interval; intervals outside ``[min_hr, max_hr]`` are discarded. The rate is
    linearly interpolated at the grid times ``(k + 0.5) / fs_out`` (bin centres), and
    held constant before the first and after the last usable interval.

    Parameters
    ----------
    beat_times : list of 1-D arrays
        Per row, sorted beat times (s) from the row start.
    duration : float
        Row duration in seconds.
    fs_out : float
        Grid rate in Hz.
    min_hr, max_hr : float
        Plausible heart-rate range in beats/min.

    Returns
    -------
    hr : ndarray of shape (n_rows, round(duration * fs_out))
        Heart rate in beats/min; rows without a usable RR interval are all NaN.
    n_rr : int
        Number of RR intervals seen.
    n_discarded : int
        Number of RR intervals discarded as artefacts.

    Examples
    --------
    >>> import numpy as np
    >>> hr, n_rr, n_bad = heart_rate_on_grid([np.arange(0.5, 30, 1.0)], 30.0, 4.0)
    >>> float(hr.min()), float(hr.max()), hr.shape
    (60.0, 60.0, (1, 120))
    """
    n_out = max(1, int(round(duration * fs_out)))
    grid = (np.arange(n_out) + 0.5) / fs_out
    rr, end_times, n_rr, n_discarded = rr_intervals(beat_times, min_hr, max_hr)
    hr = np.full((len(beat_times), n_out), np.nan)
    for i, (rr_row, t_row) in enumerate(zip(rr, end_times)):
        usable = ~np.isnan(rr_row)
        if usable.any():
            hr[i] = np.interp(grid, t_row[usable], 60.0 / rr_row[usable])
    return hr, n_rr, n_discarded


class HeartRateTransformer(TransformerMixin, BaseEstimator):
    """ECG rows -> instantaneous heart rate (beats/min) on a regular grid.

    R-peaks are detected in each row (neurokit2 or sleepecg, see
    :func:`~sleepkd.signal.detect_rpeaks`), each RR interval gives a heart rate
    ``60 / RR`` placed at the beat ending the interval, and the rate is linearly
    interpolated on a grid of ``fs_out`` Hz at bin centres ``(k + 0.5) / fs_out``
    spanning the row, with constant extrapolation at the row edges. The output has
    ``round(n_times / fs * fs_out)`` columns (at least 1) and is always finite.

    Nothing is dropped silently: RR intervals outside ``[min_hr, max_hr]`` are
    discarded and their number is logged (warning, logger
    ``sleepkd.signal._beats``), as are rows rejected by the ECG quality gate and rows
    left with fewer than 2 usable beats, which are filled with ``fill_value_``.

    Parameters
    ----------
    fs : float, default 256.0
        ECG sampling rate in Hz (at least 50 Hz).
    fs_out : float, default 4.0
        Rate of the output heart-rate grid in Hz.
    min_hr, max_hr : float, default 30.0, 200.0
        Plausible heart-rate range in beats/min; RR intervals outside are artefacts.
    fill : "median" or float, default "median"
        Value of rows with fewer than 2 usable beats. ``"median"`` learns the median
        heart rate of the ``fit`` data (raises if that data has no usable beats); a
        number is used as is.
    min_template_corr : "auto", float or None, default "auto"
        ECG quality gate (mean correlation of the beats of a row with their average
        beat); rows below it get no beats. ``"auto"`` is 0.6 for ``"neurokit"`` and
        0.62 for ``"sleepecg"`` (each gate reads a different signal, see
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
    fill_value_ : float
        Heart rate (beats/min) given to rows without usable beats.
    n_features_in_ : int
        Number of ECG samples per row.
    n_out_ : int
        Number of output columns.

    Examples
    --------
    >>> import numpy as np
    >>> from sleepkd.signal import HeartRateTransformer
    >>> X = np.zeros((2, 7680))  # two flat 30-s epochs at 256 Hz: no beats
    >>> HeartRateTransformer(fs=256.0, fill=60.0).fit_transform(X).shape
    (2, 120)
    """

    def __init__(
        self,
        fs: float = 256.0,
        fs_out: float = 4.0,
        min_hr: float = 30.0,
        max_hr: float = 200.0,
        fill: str | float = "median",
        min_template_corr: float | str | None = DEFAULT_MIN_TEMPLATE_CORR,
        method: str = "neurokit",
        epoch_seconds: float | None = 30.0,
        n_jobs: int | None = None,
    ):
        self.fs = fs
        self.fs_out = fs_out
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
        check_sampling_rate(self.fs_out, name="fs_out")
        check_fill(self.fill, allow_none=False)
        return fs

    def _heart_rate(self, X: np.ndarray, fs: float) -> tuple[np.ndarray, dict]:
        beats = detect_beats_rows(
            X, fs, method=self.method, min_template_corr=self.min_template_corr, n_jobs=self.n_jobs
        )
        times = [p / fs for p in beats.peaks]
        hr, n_rr, n_discarded = heart_rate_on_grid(
            times, X.shape[1] / fs, float(self.fs_out), self.min_hr, self.max_hr
        )
        report = dict(beats=beats, n_rr=n_rr, n_discarded=n_discarded)
        return hr, report

    def _fill(self, hr: np.ndarray, report: dict) -> np.ndarray:
        unusable = np.isnan(hr[:, 0])
        log_beat_report(
            type(self).__name__, hr.shape[0], report["beats"], report["n_rr"],
            report["n_discarded"], int(unusable.sum()), self.min_hr, self.max_hr,
            f"filled with {self.fill_value_:.4g} bpm",
        )
        hr[unusable] = self.fill_value_
        return hr

    def _fit(self, X) -> tuple[np.ndarray, np.ndarray | None]:
        fs = self._check_params()
        X = validate_data(self, X, reset=True, dtype=np.float64)
        check_epoch_length(X.shape[1], fs, self.epoch_seconds)
        self.n_out_ = n_grid_points(X.shape[1], fs, float(self.fs_out))
        if self.fill != "median":
            self.fill_value_ = float(self.fill)
            return X, None
        hr, report = self._heart_rate(X, fs)
        usable = hr[~np.isnan(hr[:, 0])]
        if usable.size == 0:
            raise ValueError(
                "fill='median' needs beats to learn the median heart rate, but no row of "
                "the fit data has 2 usable beats (flat line, noise or rows too short?). "
                "Pass a number as fill instead."
            )
        self.fill_value_ = float(np.median(usable))
        return X, (hr, report)

    def fit(self, X, y=None):
        """Check the input; with ``fill="median"``, learn the median heart rate.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times)
            ECG rows.
        y : ignored

        Returns
        -------
        self : HeartRateTransformer

        Raises
        ------
        ValueError
            For invalid parameters, NaN/inf, empty or non-2-D input, rows whose length
            disagrees with ``fs`` and ``epoch_seconds``, or ``fill="median"`` on data
            without usable beats.
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        """Fit and transform, detecting beats once.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times)
            ECG rows.
        y : ignored

        Returns
        -------
        hr : ndarray of shape (n_epochs, n_out)
        """
        X, computed = self._fit(X)
        if computed is None:
            hr, report = self._heart_rate(X, float(self.fs))
        else:
            hr, report = computed
        return self._fill(hr, report)

    def transform(self, X):
        """Heart rate of every row on the ``fs_out`` grid.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times)
            ECG rows with the row length seen at ``fit``.

        Returns
        -------
        hr : ndarray of shape (n_epochs, n_out)
            Heart rate in beats/min, finite.
        """
        check_is_fitted(self, "fill_value_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        hr, report = self._heart_rate(X, check_sampling_rate(self.fs))
        return self._fill(hr, report)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the output columns: ``hr_bpm_t<time in s>``, e.g. ``hr_bpm_t0.125``."""
        check_is_fitted(self, "n_out_")
        times = (np.arange(self.n_out_) + 0.5) / float(self.fs_out)
        return np.asarray([f"hr_bpm_t{t:g}" for t in times], dtype=object)
