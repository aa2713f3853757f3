"""Whole-night instantaneous heart rate on a regular grid, robust to ectopy and gaps."""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.ndimage
from numpy.typing import ArrayLike


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return float(value)


def instantaneous_heart_rate(
    beat_times: ArrayLike,
    *,
    fs: float = 2.0,
    n_epochs: int | None = None,
    epoch_length: float = 30.0,
    start: float = 0.0,
    min_rr: float = 0.3,
    max_rr: float = 2.0,
    max_rel_change: float = 0.2,
    median_window: int = 11,
    max_gap: float = 10.0,
    min_valid_fraction: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Instantaneous heart rate of a whole night on a regular grid, epoch by epoch.

    Each RR interval (the time between successive beats) gives a heart rate
    ``60 / RR`` in beats/min, placed at the interval's midpoint. Intervals are rejected
    as artefacts or ectopy when they fall outside ``[min_rr, max_rr]`` seconds or
    deviate by more than ``max_rel_change`` (relative) from the running median of the
    ``median_window`` surrounding intervals; a premature (ectopic) beat thus loses both
    its short coupling interval and the long compensatory pause after it. The accepted
    rates are linearly interpolated at the sample centres
    ``start + (k + 0.5) / fs``. Where accepted rates are more than ``max_gap`` seconds
    apart (and more than ``max_gap`` seconds before the first or after the last one),
    the grid is filled with the night's median heart rate instead of a long straight
    line; shorter edges are held constant.

    Parameters
    ----------
    beat_times : array-like of shape (n_beats,)
        Sorted (non-decreasing) R-peak times in seconds, finite.
    fs : float, default 2.0
        Grid rate in Hz.
    n_epochs : int or None, default None
        Number of epochs the grid covers from ``start``; ``None`` means up to the last
        beat (``ceil((beat_times[-1] - start) / epoch_length)``, at least 1).
    epoch_length : float, default 30.0
        Epoch duration in seconds. ``epoch_length * fs`` must be a whole number.
    start : float, default 0.0
        Time (s) at which the first epoch begins, on the clock of ``beat_times``.
    min_rr, max_rr : float, default 0.3, 2.0
        Plausible RR interval range in seconds (200 and 30 beats/min).
    max_rel_change : float, default 0.2
        Largest accepted relative deviation ``|RR - median| / median`` from the running
        median of the surrounding intervals.
    median_window : int, default 11
        Number of RR intervals in the running median (odd; made odd if even).
    max_gap : float, default 10.0
        Longest stretch (s) without an accepted rate that is bridged by linear
        interpolation; longer ones are filled with the night median and reported.
    min_valid_fraction : float, default 0.5
        An epoch is valid when at least this fraction of its samples lies inside an
        accepted RR interval (i.e. is real, not interpolated or filled heart rate).

    Returns
    -------
    hr : ndarray of shape (n_epochs, round(epoch_length * fs))
        Heart rate in beats/min, finite everywhere.
    valid : ndarray of bool, shape (n_epochs,)
        Epochs with enough real heart rate (see ``min_valid_fraction``).
    report : dict
        ``n_beats``, ``n_rr`` (intervals), ``n_rejected_range`` and
        ``n_rejected_ectopic`` (intervals rejected by each test), ``n_rejected_rr``
        (both), ``n_rejected_beats`` (beats both of whose intervals were rejected: the
        extra or ectopic beats), ``gap_seconds`` (grid time not inside an accepted
        interval: interpolated or filled), ``long_gap_seconds`` (grid time filled with
        the median), ``fill_value_bpm`` (that median), ``n_invalid_epochs``.

    Raises
    ------
    ValueError
        If ``beat_times`` is not 1-D, holds NaN/inf or is not sorted, if a rate or length
        is not positive, if ``min_rr >= max_rr``, or if fewer than one RR interval is
        accepted (no heart rate to interpolate).

    Examples
    --------
    >>> import numpy as np
    >>> hr, valid, report = instantaneous_heart_rate(np.arange(0.0, 60.5, 0.75), n_epochs=2)
    >>> hr.shape, float(hr.min()), float(hr.max()), valid.tolist()
    ((2, 60), 80.0, 80.0, [True, True])
    """
    times = np.asarray(beat_times, dtype=np.float64)
    if times.ndim != 1:
        raise ValueError(f"beat_times must be 1-D, got an array of shape {times.shape}.")
    if not np.all(np.isfinite(times)):
        raise ValueError("beat_times holds NaN or infinite values.")
    if times.size and np.any(np.diff(times) < 0):
        raise ValueError("beat_times must be sorted in increasing order.")
    fs = _check_positive(fs, "fs")
    epoch_length = _check_positive(epoch_length, "epoch_length")
    min_rr = _check_positive(min_rr, "min_rr")
    max_rr = _check_positive(max_rr, "max_rr")
    max_rel_change = _check_positive(max_rel_change, "max_rel_change")
    max_gap = _check_positive(max_gap, "max_gap")
    if min_rr >= max_rr:
        raise ValueError(f"min_rr ({min_rr}) must be below max_rr ({max_rr}).")
    if not 0.0 <= float(min_valid_fraction) <= 1.0:
        raise ValueError(f"min_valid_fraction must be in [0, 1], got {min_valid_fraction!r}.")
    if isinstance(median_window, bool) or not isinstance(median_window, numbers.Integral) \
            or median_window < 1:
        raise ValueError(f"median_window must be a positive integer, got {median_window!r}.")
    spe_float = epoch_length * fs
    spe = int(round(spe_float))
    if spe < 1 or abs(spe - spe_float) > 1e-6:
        raise ValueError(f"epoch_length * fs must be a positive whole number of samples, "
                         f"got {epoch_length} s * {fs} Hz = {spe_float}.")
    if not math.isfinite(float(start)):
        raise ValueError(f"start must be finite, got {start!r}.")
    if n_epochs is None:
        last = times[-1] if times.size else start
        n_epochs = max(1, int(math.ceil((last - start) / epoch_length)))
    elif isinstance(n_epochs, bool) or not isinstance(n_epochs, numbers.Integral) or n_epochs < 1:
        raise ValueError(f"n_epochs must be a positive integer or None, got {n_epochs!r}.")
    n_epochs = int(n_epochs)

    # --- RR intervals and their rejection
    rr = np.diff(times)
    in_range = (rr >= min_rr) & (rr <= max_rr)
    window = int(median_window) | 1
    local = scipy.ndimage.median_filter(np.clip(rr, min_rr, max_rr), size=window,
                                        mode="nearest") if rr.size else rr
    ectopic = in_range & (np.abs(rr - local) > max_rel_change * local)
    accepted = in_range & ~ectopic
    if not accepted.any():
        raise ValueError(f"No usable RR interval among {rr.size} (need RR in "
                         f"[{min_rr}, {max_rr}] s); cannot compute a heart rate.")
    rejected = ~accepted
    # a beat is rejected when the intervals on both of its sides are
    n_rejected_beats = int(np.sum(rejected[:-1] & rejected[1:])) if rr.size > 1 else 0

    t0, t1 = times[:-1][accepted], times[1:][accepted]
    tv = 0.5 * (t0 + t1)
    hv = 60.0 / rr[accepted]
    fill = float(np.median(hv))

    # --- regular grid
    n_samples = n_epochs * spe
    grid = start + (np.arange(n_samples) + 0.5) / fs
    hr = np.interp(grid, tv, hv)
    # gaps between accepted rates longer than max_gap -> median fill
    j = np.searchsorted(tv, grid, side="right")  # tv[j-1] <= g < tv[j]
    left = np.where(j > 0, tv[np.maximum(j - 1, 0)], -np.inf)
    right = np.where(j < tv.size, tv[np.minimum(j, tv.size - 1)], np.inf)
    inner_gap = (j > 0) & (j < tv.size) & (right - left > max_gap)
    edge_gap = ((j == 0) & (right - grid > max_gap)) | ((j == tv.size) & (grid - left > max_gap))
    long_gap = inner_gap | edge_gap
    hr[long_gap] = fill
    # real samples: inside an accepted interval [t0, t1]
    k = np.searchsorted(t0, grid, side="right") - 1
    real = (k >= 0) & (grid <= t1[np.maximum(k, 0)])
    real_fraction = real.reshape(n_epochs, spe).mean(axis=1)
    valid = real_fraction >= float(min_valid_fraction)

    report = {
        "n_beats": int(times.size),
        "n_rr": int(rr.size),
        "n_rejected_range": int(np.sum(~in_range)),
        "n_rejected_ectopic": int(np.sum(ectopic)),
        "n_rejected_rr": int(np.sum(rejected)),
        "n_rejected_beats": n_rejected_beats,
        "gap_seconds": float(np.sum(~real) / fs),
        "long_gap_seconds": float(np.sum(long_gap) / fs),
        "fill_value_bpm": fill,
        "n_invalid_epochs": int(np.sum(~valid)),
    }
    return hr.reshape(n_epochs, spe), valid, report
