"""Per-row R-peak detection shared by the ECG transformers.

Design (measured on an 8-hour night at 256 Hz, 960 rows of 7680 samples, 2 cores):

* ``nk.ecg_clean`` + ``nk.ecg_findpeaks`` called row by row costs about 1.6 s, a
  third of it in neurokit2's per-call overhead (filter design, sanitising), and
  ``nk.ecg_peaks`` more still.
* The cleaning step of neurokit2's default method is two linear filters (a 5th-order
  Butterworth high-pass at 0.5 Hz and a moving-average power-line filter, both
  zero-phase), so it is done here once for all rows with ``axis=-1`` (about 0.2 s).
  :func:`clean_ecg_rows` reproduces ``nk.ecg_clean(method="neurokit")``; a test checks it.
* Peak finding then runs ``nk.ecg_findpeaks`` row by row on the cleaned rows (about
  0.45 s; the time is neurokit2's own per-QRS loop, not call overhead). Rows are not
  concatenated into one long signal: that saves little and row boundaries (rows need
  not be consecutive) create steps that the gradient-based detector takes for QRS
  complexes.

The last result is cached (one entry, keyed on a hash of the rows and the parameters)
so that the heart-rate and HRV transformers applied to the same rows detect once.

A signal-quality gate follows detection: neurokit2 finds "peaks" in pure noise, so a
row whose detected beats correlate poorly with the row's average beat (mean Pearson
correlation below ``min_template_corr``, the template-matching index of Orphanidou et
al., 2015, computed over one median RR interval centred on each peak) is treated as
having no detectable beats. On synthetic data, white, brown and AR(1) noise score
0.3-0.6 and ECG with noise up to 0.2 of the R amplitude 0.64-1.0, hence the default 0.6.
"""

from __future__ import annotations

import hashlib
import logging
import numbers
import threading
from typing import NamedTuple

import numpy as np
import scipy.signal

from sleepkd.utils._validation import check_sampling_rate

logger = logging.getLogger(__name__)

#: Detection methods supported (neurokit2 method names).
METHODS = ("neurokit",)

#: Rows shorter than this (seconds) are too short for any detector (neurokit2's
#: gradient threshold averages over 0.75 s) and get no beats.
MIN_DETECT_SECONDS = 2.0

#: Length (seconds) of the row head searched backwards for the beats of the first 0.3 s.
HEAD_SECONDS = 2.0

#: Two detections closer than this (seconds) are one beat (the same beat found forwards
#: and backwards a sample apart); 0.2 s is a refractory period (300 bpm).
MIN_BEAT_GAP_SECONDS = 0.2

#: One-entry cache of the last detection, keyed on a SHA-256 of the data and the
#: parameters: HeartRateTransformer and HRVFeatures usually see the same rows (e.g. in
#: a FeatureUnion), and detection is the expensive step (hashing 60 MB: ~0.05 s).
_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()

#: Default of ``min_template_corr`` (see the module docstring).
DEFAULT_MIN_TEMPLATE_CORR = 0.6


class RowBeats(NamedTuple):
    """Result of :func:`detect_beats_rows`.

    Attributes
    ----------
    peaks : list of ndarray of int
        Per row, the R-peak sample indices (relative to the row start), sorted.
    rejected : ndarray of bool, shape (n_rows,)
        Rows whose detections failed the quality gate (their ``peaks`` are empty).
    too_short : bool
        Whether the rows are shorter than :data:`MIN_DETECT_SECONDS` (no detection ran).
    """

    peaks: list
    rejected: np.ndarray
    too_short: bool


def check_method(method: str) -> str:
    """Return ``method`` if it is a supported detector name, else raise ``ValueError``."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    return method


def check_min_template_corr(value) -> float | None:
    """Validate the quality-gate threshold (None disables the gate)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"min_template_corr must be a number in [-1, 1] or None, got {value!r}.")
    if not -1.0 <= float(value) <= 1.0:
        raise ValueError(f"min_template_corr must be in [-1, 1], got {value!r}.")
    return float(value)


def check_epoch_length(n_times: int, fs: float, epoch_seconds: float | None) -> None:
    """Check that rows of ``n_times`` samples at ``fs`` Hz span whole epochs.

    A row is one epoch or an epoch with neighbouring epochs as context, so its duration
    must be a positive multiple of ``epoch_seconds`` to within one sample. A mismatch
    almost always means a wrong sampling rate.

    Raises
    ------
    ValueError
        If the row length is not a whole number of epochs at ``fs``.
    """
    if epoch_seconds is None:
        return
    if isinstance(epoch_seconds, bool) or not isinstance(epoch_seconds, (int, float, np.number)):
        raise ValueError(f"epoch_seconds must be a positive number or None, got {epoch_seconds!r}.")
    epoch_seconds = float(epoch_seconds)
    if not np.isfinite(epoch_seconds) or epoch_seconds <= 0:
        raise ValueError(f"epoch_seconds must be a positive number or None, got {epoch_seconds!r}.")
    samples_per_epoch = epoch_seconds * fs
    n_epochs = round(n_times / samples_per_epoch)
    if n_epochs < 1 or abs(n_times - n_epochs * samples_per_epoch) >= 1.0:
        raise ValueError(
            f"fs and the row length disagree: rows of {n_times} samples at fs={fs:g} Hz "
            f"last {n_times / fs:g} s, which is not a whole number of "
            f"{epoch_seconds:g}-s epochs (expected a multiple of {samples_per_epoch:g} "
            "samples). Check fs, or pass epoch_seconds=None to skip this check."
        )


def clean_ecg_rows(X: np.ndarray, fs: float) -> np.ndarray:
    """Clean ECG rows as ``nk.ecg_clean(method="neurokit")`` does, all rows at once.

    A zero-phase 5th-order Butterworth high-pass at 0.5 Hz, then a zero-phase moving
    average one 50-Hz period long (power-line suppression; 2 samples below 100 Hz).

    Parameters
    ----------
    X : ndarray, shape (n_rows, n_times)
        ECG rows.
    fs : float
        Sampling rate in Hz.

    Returns
    -------
    cleaned : ndarray of float64, shape (n_rows, n_times)
    """
    X = np.asarray(X, dtype=np.float64)
    sos = scipy.signal.butter(5, 0.5, btype="highpass", fs=fs, output="sos")
    padlen = min(default_sosfiltfilt_padlen(sos), X.shape[-1] - 1)
    cleaned = scipy.signal.sosfiltfilt(sos, X, axis=-1, padlen=max(padlen, 0))
    width = int(fs / 50) if fs >= 100 else 2
    kernel = np.ones(width)
    padlen = min(3 * width, X.shape[-1] - 1)
    return scipy.signal.filtfilt(kernel, [width], cleaned, axis=-1, method="pad", padlen=max(padlen, 0))


def default_sosfiltfilt_padlen(sos: np.ndarray) -> int:
    """The ``padlen`` that ``scipy.signal.sosfiltfilt`` uses by default for ``sos``."""
    n_zeros = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * (2 * len(sos) + 1 - n_zeros)


def template_correlation(cleaned: np.ndarray, peaks: np.ndarray) -> float:
    """Mean correlation between each beat and the average beat (NaN if < 2 usable beats).

    Each beat is the cleaned signal over one median RR interval centred on its R-peak;
    beats too close to the signal edges are left out.
    """
    if peaks.size < 2:
        return np.nan
    half = int(np.median(np.diff(peaks)) // 2)
    if half < 1:
        return np.nan
    inside = peaks[(peaks >= half) & (peaks + half < cleaned.size)]
    if inside.size < 2:
        return np.nan
    beats = cleaned[inside[:, None] + np.arange(-half, half)[None, :]]
    beats = beats - beats.mean(axis=1, keepdims=True)
    template = beats.mean(axis=0)
    norms = np.linalg.norm(beats, axis=1) * np.linalg.norm(template)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (beats @ template) / norms
    return float(np.nanmean(corr)) if np.any(np.isfinite(corr)) else np.nan


def detect_beats_rows(
    X: np.ndarray,
    fs: float,
    method: str = "neurokit",
    min_template_corr: float | None = DEFAULT_MIN_TEMPLATE_CORR,
) -> RowBeats:
    """Detect R-peaks in every row of ``X`` (validated, finite, 2-D).

    Parameters
    ----------
    X : ndarray, shape (n_rows, n_times)
        ECG rows, already validated (finite).
    fs : float
        Sampling rate in Hz.
    method : str
        One of :data:`METHODS`.
    min_template_corr : float or None
        Quality gate (see the module docstring); None disables it.

    Returns
    -------
    RowBeats
        Per-row peak indices, the rows rejected by the quality gate, and whether the
        rows were too short for detection.
    """
    key = _cache_key(X, fs, method, min_template_corr)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return _copy(cached)
    result = _detect_beats_rows(X, fs, method, min_template_corr)
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE[key] = _copy(result)
    return result


def _cache_key(X: np.ndarray, fs: float, method: str, min_template_corr) -> tuple:
    digest = hashlib.sha256(memoryview(np.ascontiguousarray(X)).cast("B")).hexdigest()
    return (digest, X.shape, X.dtype.str, float(fs), method, min_template_corr)


def _copy(beats: RowBeats) -> RowBeats:
    return RowBeats([p.copy() for p in beats.peaks], beats.rejected.copy(), beats.too_short)


def _detect_beats_rows(X: np.ndarray, fs: float, method: str, min_template_corr) -> RowBeats:
    n_rows, n_times = X.shape
    empty = np.array([], dtype=np.intp)
    rejected = np.zeros(n_rows, dtype=bool)
    if n_times < MIN_DETECT_SECONDS * fs:
        return RowBeats([empty.copy() for _ in range(n_rows)], rejected, True)

    import neurokit2 as nk  # heavy import, only when beats are detected

    check_method(method)
    cleaned = clean_ecg_rows(X, fs)
    # neurokit2's detector ignores beats in the first 0.3 s of a signal (it starts
    # from a dummy peak at sample 0). Detection on the time-reversed head of each row
    # finds them: the detector is symmetric in time (|gradient|, centred boxcars), so
    # elsewhere both directions agree. Padding the rows instead was tried and rejected:
    # a flat pad lowers the gradient threshold (noise becomes beats near the edges) and
    # a mirror pad creates a slope cusp at the edge that looks like a QRS.
    head = min(n_times, int(np.ceil(HEAD_SECONDS * fs)))
    head_zone = int(np.ceil(0.35 * fs))  # neurokit2's 0.3 s dead zone, plus a margin
    min_gap = int(round(MIN_BEAT_GAP_SECONDS * fs))
    flat = np.ptp(X, axis=-1) == 0
    peaks = []
    for i, row in enumerate(cleaned):
        if flat[i]:  # a flat line has no beats; skip the detector
            peaks.append(empty.copy())
            continue
        forward = nk.ecg_findpeaks(row, sampling_rate=fs, method=method)["ECG_R_Peaks"]
        backward = nk.ecg_findpeaks(row[:head][::-1], sampling_rate=fs, method=method)["ECG_R_Peaks"]
        backward = head - 1 - np.asarray(backward, dtype=np.intp)
        found = np.concatenate([np.asarray(forward, dtype=np.intp), backward[backward <= head_zone]])
        found = _drop_close(np.unique(found[(found >= 0) & (found < n_times)]), min_gap)
        found = _drop_weak_edge_beats(row, found, head_zone)
        if min_template_corr is not None and found.size >= 2:
            quality = template_correlation(row, found)
            if not quality >= min_template_corr:  # NaN quality fails too
                rejected[i] = True
                found = empty.copy()
        peaks.append(found)
    return RowBeats(peaks, rejected, False)


def _drop_close(peaks: np.ndarray, min_gap: int) -> np.ndarray:
    """Keep the first of any detections closer than ``min_gap`` samples (sorted input)."""
    if peaks.size < 2:
        return peaks
    keep = [0]
    for j in range(1, peaks.size):
        if peaks[j] - peaks[keep[-1]] >= min_gap:
            keep.append(j)
    return peaks[keep]


#: Lowest sampling rate accepted for R-peak detection (a QRS lasts about 100 ms).
MIN_DETECT_FS = 50.0


def check_fill(fill, *, allow_none: bool) -> None:
    """Validate a transformer's ``fill``: ``"median"``, a finite number (or ``None``)."""
    allowed = "None, 'median' or a finite number" if allow_none else "'median' or a finite number"
    if fill is None and allow_none or fill == "median":
        return
    if isinstance(fill, (str, bool)) or not isinstance(fill, numbers.Real) or not np.isfinite(fill):
        raise ValueError(f"fill must be {allowed}, got {fill!r}.")


def check_detection_params(fs, method, min_template_corr, min_hr=30.0, max_hr=200.0) -> float:
    """Validate the parameters shared by the beat-based transformers; return ``fs``."""
    fs = check_sampling_rate(fs)
    if fs < MIN_DETECT_FS:
        raise ValueError(
            f"fs={fs:g} Hz is too low for R-peak detection; at least {MIN_DETECT_FS:g} Hz is needed."
        )
    check_method(method)
    check_min_template_corr(min_template_corr)
    for name, value in (("min_hr", min_hr), ("max_hr", max_hr)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value > 0:
            raise ValueError(f"{name} must be a positive number of beats per minute, got {value!r}.")
    if not min_hr < max_hr:
        raise ValueError(f"min_hr must be below max_hr, got min_hr={min_hr!r} and max_hr={max_hr!r}.")
    return fs


def rr_intervals(
    beat_times: list, min_hr: float, max_hr: float
) -> tuple[list, list, int, int]:
    """RR intervals per row, with artefact intervals set to NaN (kept in place).

    Parameters
    ----------
    beat_times : list of 1-D arrays
        Per row, sorted beat times in seconds.
    min_hr, max_hr : float
        Plausible heart-rate range (beats/min); an RR interval whose heart rate
        ``60 / RR`` falls outside it is an artefact (missed or false beat).

    Returns
    -------
    rr : list of ndarray
        Per row, the RR intervals in seconds, NaN where discarded.
    rr_end_times : list of ndarray
        Per row, the time (s) of the beat ending each interval.
    n_rr : int
        Total number of RR intervals.
    n_discarded : int
        Number of intervals set to NaN.
    """
    rr_list, end_list = [], []
    n_rr = n_discarded = 0
    rr_min, rr_max = 60.0 / max_hr, 60.0 / min_hr
    for times in beat_times:
        times = np.asarray(times, dtype=np.float64)
        rr = np.diff(times)
        bad = (rr < rr_min) | (rr > rr_max)
        n_rr += rr.size
        n_discarded += int(bad.sum())
        rr_list.append(np.where(bad, np.nan, rr))
        end_list.append(times[1:])
    return rr_list, end_list, n_rr, n_discarded


def log_beat_report(
    owner: str,
    n_rows: int,
    beats: RowBeats | None,
    n_rr: int,
    n_discarded: int,
    n_unusable_rows: int,
    min_hr: float,
    max_hr: float,
    unusable_action: str,
) -> None:
    """Log (warning level) everything dropped while turning beats into features."""
    if beats is not None and beats.too_short:
        logger.warning(
            "%s: rows of this length are shorter than %g s, too short for R-peak "
            "detection; all %d rows have no beats.", owner, MIN_DETECT_SECONDS, n_rows,
        )
    elif beats is not None and beats.rejected.any():
        logger.warning(
            "%s: %d of %d rows failed the ECG quality gate (beats do not match their "
            "average beat: noise?); their beats were discarded.",
            owner, int(beats.rejected.sum()), n_rows,
        )
    if n_discarded:
        logger.warning(
            "%s: discarded %d of %d RR intervals with a heart rate outside "
            "[%g, %g] bpm (missed or false beats).", owner, n_discarded, n_rr, min_hr, max_hr,
        )
    if n_unusable_rows:
        logger.warning(
            "%s: %d of %d rows have fewer than 2 usable beats; %s.",
            owner, n_unusable_rows, n_rows, unusable_action,
        )


def _drop_weak_edge_beats(row: np.ndarray, peaks: np.ndarray, zone: int) -> np.ndarray:
    """Drop detections near the row edges whose amplitude is below half the typical beat.

    Near a row edge the detector lacks context: when the row starts just after a beat
    (or ends just before one), the T wave of the cut beat (or the P wave of the next)
    passes the gradient threshold. Real R-peaks near the edges are kept when at least
    half as high above the row median as the median interior R-peak.
    """
    n = row.size
    edge = (peaks < zone) | (peaks >= n - zone)
    interior = peaks[~edge]
    if not edge.any() or interior.size < 2:
        return peaks
    baseline = np.median(row)
    typical = np.median(row[interior] - baseline)
    strong = (row[peaks] - baseline) >= 0.5 * typical
    return peaks[~edge | strong]
