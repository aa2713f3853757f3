"""R-peak detection in a single ECG signal (neurokit2, or sleepecg when installed)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from sleepkd.signal._beats import (
    DEFAULT_MIN_TEMPLATE_CORR,
    check_detection_params,
    detect_beats_rows,
)
from sleepkd.utils._validation import check_signal_array


def detect_rpeaks(
    ecg: ArrayLike,
    fs: float,
    method: str = "neurokit",
    min_template_corr: float | str | None = DEFAULT_MIN_TEMPLATE_CORR,
) -> np.ndarray:
    """Detect R-peaks in a single-lead ECG.

    Peaks are found with the detector named by ``method`` on the signal cleaned as
    ``neurokit2.ecg_clean`` does (0.5-Hz high-pass and a 50-Hz moving average;
    ``"sleepecg"`` uses the moving average only, in one pass with its 5-30 Hz
    band-pass).
    A quality gate then rejects detections that do not look like repeated heartbeats
    (pure noise, where both detectors still find "peaks"): if the detected beats
    correlate on average less than ``min_template_corr`` with their average beat, no
    peaks are returned. The gate judges the whole signal at once; to judge each 30-s
    epoch separately, use :class:`~sleepkd.signal.HeartRateTransformer` or
    :class:`~sleepkd.signal.HRVFeatures` on epoch rows.

    Parameters
    ----------
    ecg : array-like, shape (n_times,)
        The ECG (any unit, any polarity convention of the chosen detector).
    fs : float
        Sampling rate in Hz.
    method : {"neurokit", "sleepecg"}, default "neurokit"
        R-peak detector, both followed by the same quality gate:

        - ``"neurokit"``: ``neurokit2.ecg_findpeaks`` with neurokit2's default
          gradient method (its cleaning is vectorised here). Other neurokit2 methods
          were tried and left out: called as ``ecg_clean`` + ``ecg_findpeaks`` they
          return peaks offset from the R-peak (Pan-Tompkins, Hamilton, Elgendi), or
          are 30-100 times slower (Christov).
        - ``"sleepecg"``: sleepecg's Pan-Tompkins detector (its C extension); on
          30-s epochs its peak finding is about 3 times faster than neurokit2's
          (on an 8-hour night the whole front-end about 2.5-3 times); needs the optional extra
          (``pip install "sleepkd[sleepecg]"``). Without it, ``"neurokit"`` runs
          instead and a warning saying so is logged once per process.

        The two detectors place peaks within a sample or two of each other on clean
        ECG but are not identical, so ``"neurokit"`` stays the default: results of
        existing code do not change, nor depend on what happens to be installed.
    min_template_corr : "auto", float or None, default "auto"
        Minimum mean beat-to-template correlation; None disables the gate. The
        ``"neurokit"`` gate scores the cleaned signal, the ``"sleepecg"`` one the
        signal its detector saw (5-30 Hz band), where noise scores higher; ``"auto"``
        is 0.6 for ``"neurokit"`` and 0.62 for ``"sleepecg"``.

    Returns
    -------
    rpeaks : ndarray of int
        Sorted sample indices of the R-peaks; empty for a flat line, noise, or a
        signal shorter than 2 s.

    Raises
    ------
    ValueError
        If ``ecg`` is not 1-D, is empty or contains NaN/inf, if ``fs`` is not a
        finite number of at least 50 Hz, or if ``method`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from sleepkd.signal import detect_rpeaks
    >>> detect_rpeaks(np.zeros(2560), fs=256.0)
    array([], dtype=int64)
    """
    fs = check_detection_params(fs, method, min_template_corr)
    ecg = check_signal_array(ecg, ndim=(1,), name="ecg", dtype=np.float64)
    beats = detect_beats_rows(ecg[None, :], fs, method=method, min_template_corr=min_template_corr)
    return beats.peaks[0].astype(np.int64)
