"""Zero-phase Butterworth band-pass (or low-/high-pass) filter as a transformer."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.signal
import scipy.sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from sleepkd.signal._beats import check_epoch_length
from sleepkd.signal._zero_phase import default_padlen, resolve_n_jobs, sosfiltfilt_rows
from sleepkd.utils._validation import check_sampling_rate, check_signal_array


class BandpassFilter(TransformerMixin, BaseEstimator):
    """Zero-phase Butterworth filter along the time axis of epoch rows.

    The filter is designed as second-order sections (``scipy.signal.butter(...,
    output="sos")``) and applied forwards and backwards (the numbers of
    ``scipy.signal.sosfiltfilt``, computed in cache-sized blocks of rows), so there is
    no phase shift and the magnitude response is ``|H(f)|^2`` of the designed filter
    (an effective order of ``2 * order``).

    Parameters
    ----------
    fs : float, default 100.0
        Sampling rate in Hz.
    low : float or None, default 0.5
        Lower cut-off in Hz; None makes a low-pass filter.
    high : float or None, default 40.0
        Upper cut-off in Hz; None makes a high-pass filter.
    order : int, default 4
        Order of the Butterworth design (before the forward-backward pass).
    epoch_seconds : float or None, default 30.0
        Rows must last a whole number of epochs of this length at ``fs`` (catches a
        wrong sampling rate); None skips the check.
    n_jobs : int or None, default None
        Threads that filter blocks of rows at once (None: 1; -1: all cores). The
        output does not depend on it.

    Attributes
    ----------
    sos_ : ndarray of shape (n_sections, 6)
        The designed second-order sections.
    n_features_in_ : int
        Number of samples per row (2-D input only).
    input_shape_ : tuple of int
        Shape of one row, ``(n_times,)`` or ``(n_channels, n_times)``.

    Notes
    -----
    Output dtype: float32 and float64 inputs keep their dtype; any other numeric input
    is returned as float64. Filtering itself runs in float64.

    Rows too short for ``sosfiltfilt``'s default edge padding (``3 * (2 * n_sections +
    1)`` samples, minus trailing zero coefficients) are filtered with the padding
    reduced to ``n_times - 1``; edge transients are then larger, which only matters
    for rows of a few dozen samples.

    Inputs may be 2-D ``(n_epochs, n_times)`` (validated with scikit-learn's
    ``validate_data``) or 3-D ``(n_epochs, n_channels, n_times)`` (validated with
    sleepkd's own checks; the shape of one row is then fixed at ``fit``).

    Examples
    --------
    >>> import numpy as np
    >>> from sleepkd.signal import BandpassFilter
    >>> X = np.random.default_rng(0).normal(size=(4, 3000))
    >>> BandpassFilter(fs=100.0, low=0.5, high=40.0).fit_transform(X).shape
    (4, 3000)
    """

    def __init__(
        self,
        fs: float = 100.0,
        low: float | None = 0.5,
        high: float | None = 40.0,
        order: int = 4,
        epoch_seconds: float | None = 30.0,
        n_jobs: int | None = None,
    ):
        self.fs = fs
        self.low = low
        self.high = high
        self.order = order
        self.epoch_seconds = epoch_seconds
        self.n_jobs = n_jobs

    def _design(self) -> np.ndarray:
        fs = check_sampling_rate(self.fs)
        nyquist = fs / 2.0
        if self.low is None and self.high is None:
            raise ValueError("At least one of low and high must be set (both are None).")
        cutoffs = {}
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise ValueError(f"{name} must be a positive number in Hz or None, got {value!r}.")
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {name}={value!r} Hz.")
            if value >= nyquist:
                raise ValueError(
                    f"{name}={value:g} Hz is at or above the Nyquist frequency "
                    f"{nyquist:g} Hz (fs={fs:g} Hz); cut-offs must be below fs / 2."
                )
            cutoffs[name] = float(value)
        if len(cutoffs) == 2 and cutoffs["low"] >= cutoffs["high"]:
            raise ValueError(
                f"low must be below high, got low={cutoffs['low']:g} Hz and "
                f"high={cutoffs['high']:g} Hz."
            )
        if isinstance(self.order, bool) or not isinstance(self.order, numbers.Integral) or self.order < 1:
            raise ValueError(f"order must be a positive integer, got {self.order!r}.")
        if len(cutoffs) == 2:
            wn, btype = [cutoffs["low"], cutoffs["high"]], "bandpass"
        elif "low" in cutoffs:
            wn, btype = cutoffs["low"], "highpass"
        else:
            wn, btype = cutoffs["high"], "lowpass"
        return scipy.signal.butter(int(self.order), wn, btype=btype, fs=fs, output="sos")

    def _validate(self, X, reset: bool) -> np.ndarray:
        # np.asarray, not np.ndim: array-likes may only support __array__.
        if not scipy.sparse.issparse(X) and np.asarray(X).ndim == 3:
            if not reset and getattr(self, "input_shape_", None) is not None and len(self.input_shape_) != 2:
                raise ValueError(
                    f"X has 3 dimensions but {type(self).__name__} was fitted on 2-D rows "
                    f"of shape {self.input_shape_}."
                )
            dtype = np.asarray(X).dtype
            out_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
            X = check_signal_array(X, ndim=(3,), dtype=out_dtype)
            if reset:
                if hasattr(self, "n_features_in_"):
                    del self.n_features_in_
            elif X.shape[1:] != self.input_shape_:
                raise ValueError(
                    f"X has rows of shape {X.shape[1:]}, but {type(self).__name__} was "
                    f"fitted on rows of shape {self.input_shape_}."
                )
        else:
            if not reset and len(self.input_shape_) != 1:
                raise ValueError(
                    f"X must have 3 dimensions (rows of shape {self.input_shape_}) as at fit, "
                    f"got {np.asarray(X).ndim} dimensions."
                )
            X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        return X

    def fit(self, X, y=None):
        """Design the filter and check the input.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            Signal rows.
        y : ignored

        Returns
        -------
        self : BandpassFilter

        Raises
        ------
        ValueError
            For invalid cut-offs (non-positive, ``low >= high``, at or above Nyquist),
            NaN/inf or empty input, a wrong number of dimensions, or rows whose length
            disagrees with ``fs`` and ``epoch_seconds``.
        """
        sos = self._design()
        resolve_n_jobs(self.n_jobs)
        X = self._validate(X, reset=True)
        check_epoch_length(X.shape[-1], float(self.fs), self.epoch_seconds)
        self.sos_ = sos
        self.input_shape_ = tuple(X.shape[1:])
        return self

    def transform(self, X):
        """Filter every row along its last (time) axis.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            Signal rows, with the row shape seen at ``fit``.

        Returns
        -------
        X_filtered : ndarray, same shape as ``X``
            float32 for float32 input, float64 otherwise.
        """
        check_is_fitted(self, "sos_")
        X = self._validate(X, reset=False)
        n_times = X.shape[-1]
        padlen = min(default_padlen(np.asarray(self.sos_)), n_times - 1)
        # sosfiltfilt_rows copies the coefficients itself (sos_ may be a read-only
        # memmap after joblib loading).
        rows = X.reshape(-1, n_times)  # channels of 3-D input are rows like any other
        filtered = sosfiltfilt_rows(self.sos_, rows, padlen=padlen, n_jobs=self.n_jobs)
        return filtered.reshape(X.shape).astype(X.dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
