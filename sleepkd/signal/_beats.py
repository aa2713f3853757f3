"""Per-row R-peak detection shared by the ECG transformers.

Two detectors are offered (``method``):

* ``"neurokit"`` (default): neurokit2's gradient-based detector, described below.
* ``"sleepecg"``: sleepecg's Pan-Tompkins detector with its C extension (optional
  extra ``pip install "sleepkd[sleepecg]"``); its peak finding is about 3 times
  faster than neurokit2's here, and as it needs no separate cleaning pass the
  whole front-end on an 8-hour night (band-pass, detection, quality gate, heart
  rate and HRV) runs about 2.5-3 times faster. Without sleepecg installed it falls back to
  ``"neurokit"`` with one logged warning.

Both share the cleaning, the edge-beat check and the quality gate below.

Design of ``"neurokit"`` (measured on an 8-hour night at 256 Hz, 960 rows of 7680
samples, 2 cores):

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

Design of ``"sleepecg"``: ``sleepecg.detect_heartbeats`` called row by row spends
most of its time in per-call filter set-up (``scipy.signal.sosfiltfilt`` on 30-s
rows), not in its C code. Its documented pre-processing (zero-phase 2nd-order
Butterworth band-pass 5-30 Hz, then the 5-point Pan-Tompkins derivative) is therefore
done here for all rows at once, and only sleepecg's two C routines (squared moving
integration, adaptive thresholding) run per row; :func:`sleepecg_find_rows` gives the
same peaks as ``detect_heartbeats`` row by row, and a test checks it. When those
routines cannot be imported (a sleepecg without its C extension, or a later version
that renames them) the public ``detect_heartbeats`` is called row by row instead.
The rows are not cleaned first: the band-pass and the 50-Hz moving average of the
cleaning run as one cascade of second-order sections in one zero-phase pass (the
0.5-Hz high-pass adds nothing below a 5-Hz band-pass; the moving average is kept, as
without it the detector's positive predictive value drops by up to 0.08 on synthetic
ECG with noise of 0.1-0.2 of the R amplitude). scipy's ``sosfilt`` costs about the
same for 2 or 4 sections (its loop is bound by the recursion's latency), so this pass
costs no more than the band-pass alone; the separate cleaning took as long again.
The detector learns its thresholds from the first 2 s and, when it finds no beat
in the first second, searches back with lowered thresholds, which near a row start
sometimes picks the P wave of a beat just after 1 s and then skips the R-peak. The
first :data:`SLEEPECG_ZONE_SECONDS` of each row are therefore taken from a detection
on the time-reversed row head (as for neurokit2's dead zone, below).

The last result is cached (one entry: a copy of the rows and the parameters) so that
the heart-rate and HRV transformers applied to the same rows detect once.

A signal-quality gate follows detection: both detectors find "peaks" in pure noise, so a
row whose detected beats correlate poorly with the row's average beat (mean Pearson
correlation below ``min_template_corr``, the template-matching index of Orphanidou et
al., 2015, computed over one median RR interval centred on each peak) is treated as
having no detectable beats. With ``"neurokit"`` the gate (and the edge-beat check)
reads the cleaned rows: on synthetic data, white, brown and AR(1) noise score 0.3-0.55
and ECG with noise up to 0.2 of the R amplitude 0.64-1.0, hence 0.6. With
``"sleepecg"`` they read the signal the detector saw (5-30 Hz band and moving
average), which saves the cleaning pass; there noise scores higher (0.5-0.62), so
``min_template_corr="auto"`` (the default) uses 0.62, chosen on 8,640 synthetic ECG
rows (4 rates, noise 0.02-0.3, two baseline wanders) and 3,200 noise rows (8 kinds,
4 rates) against the cleaned-signal gate at 0.6: sensitivity is the same or higher
at every noise level, positive predictive value the same up to noise 0.15 and at
most 0.011 lower at 0.2-0.3, and 4 noise rows in 3,200 pass (none before; 3 of them
band-limited noise near 30 Hz at 500 Hz, which no threshold below 0.66 rejects).
"""

from __future__ import annotations

import hashlib
import logging
import numbers
import threading
from typing import NamedTuple

import numpy as np
import scipy.signal

from sleepkd.signal._zero_phase import default_padlen, sosfiltfilt_rows
from sleepkd.utils._validation import check_sampling_rate

logger = logging.getLogger(__name__)

#: Detection methods supported: neurokit2's default method, or sleepecg's detector.
METHODS = ("neurokit", "sleepecg")

#: How to get the optional sleepecg backend (named in the fallback warning).
SLEEPECG_EXTRA = 'pip install "sleepkd[sleepecg]"'

#: Length (s) of the row head that sleepecg scans time-reversed, and the part of it
#: (from the row start) whose beats come from that backward scan. The backward scan
#: has its own learning phase at its start, i.e. 3-5 s into the row, far from the zone.
SLEEPECG_HEAD_SECONDS = 5.0
SLEEPECG_ZONE_SECONDS = 2.0

#: Whether the missing-sleepecg fallback has been logged (it is logged once per process).
_FALLBACK_LOGGED = False

#: Rows shorter than this (seconds) are too short for any detector (neurokit2's
#: gradient threshold averages over 0.75 s) and get no beats.
MIN_DETECT_SECONDS = 2.0

#: Length (seconds) of the row head searched backwards for the beats of the first 0.3 s.
HEAD_SECONDS = 2.0

#: Two detections closer than this (seconds) are one beat (the same beat found forwards
#: and backwards a sample apart); 0.2 s is a refractory period (300 bpm).
MIN_BEAT_GAP_SECONDS = 0.2

#: One-entry cache of the last detection: HeartRateTransformer and HRVFeatures usually
#: see the same rows (e.g. in a FeatureUnion), and detection is the expensive step. The
#: entry keeps a copy of the rows and a hit needs the same parameters and the same
#: bytes (comparing 60 MB: ~0.006 s; a SHA-256 of them took ~0.035 s per lookup).
#: Rows larger than :data:`CACHE_COPY_MAX_BYTES` are keyed on a SHA-256 instead.
_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()

#: Largest input (bytes) of which the detection cache keeps a copy (256 MiB: 34 hours
#: of one ECG channel at 256 Hz); larger inputs are identified by a SHA-256.
CACHE_COPY_MAX_BYTES = 256 * 2**20

#: Default of ``min_template_corr``: the threshold of :data:`AUTO_MIN_TEMPLATE_CORR`
#: for the detector that runs.
DEFAULT_MIN_TEMPLATE_CORR = "auto"

#: Quality-gate threshold used by ``min_template_corr="auto"``, per detector: each
#: gate scores a different signal (see the module docstring).
AUTO_MIN_TEMPLATE_CORR = {"neurokit": 0.6, "sleepecg": 0.62}


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


def _sleepecg_detect_heartbeats():
    """sleepecg's public detector, or None when sleepecg cannot be imported."""
    try:
        from sleepecg import detect_heartbeats
    except ImportError:
        return None
    return detect_heartbeats


def resolve_method(method: str) -> str:
    """The detector that will actually run for ``method``.

    ``"sleepecg"`` resolves to ``"neurokit"`` when sleepecg is not installed; the
    fallback is logged (warning, naming the extra to install) once per process.
    """
    global _FALLBACK_LOGGED
    check_method(method)
    if method == "sleepecg" and _sleepecg_detect_heartbeats() is None:
        if not _FALLBACK_LOGGED:
            _FALLBACK_LOGGED = True
            logger.warning(
                "method='sleepecg' needs the optional sleepecg package (%s); falling "
                "back to method='neurokit'.", SLEEPECG_EXTRA,
            )
        return "neurokit"
    return method


def check_min_template_corr(value) -> float | str | None:
    """Validate the quality-gate threshold ("auto", a number in [-1, 1], or None: off)."""
    if value is None or (isinstance(value, str) and value == "auto"):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(
            f"min_template_corr must be 'auto', a number in [-1, 1] or None, got {value!r}."
        )
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


def clean_ecg_rows(X: np.ndarray, fs: float, n_jobs: int | None = None) -> np.ndarray:
    """Clean ECG rows as ``nk.ecg_clean(method="neurokit")`` does, all rows at once.

    A zero-phase 5th-order Butterworth high-pass at 0.5 Hz, then a zero-phase moving
    average one 50-Hz period long (power-line suppression; 2 samples below 100 Hz).

    Parameters
    ----------
    X : ndarray, shape (n_rows, n_times)
        ECG rows.
    fs : float
        Sampling rate in Hz.
    n_jobs : int or None
        Threads for the high-pass (see :func:`~sleepkd.signal._zero_phase.sosfiltfilt_rows`).

    Returns
    -------
    cleaned : ndarray of float64, shape (n_rows, n_times)
    """
    X = np.asarray(X, dtype=np.float64)
    sos = scipy.signal.butter(5, 0.5, btype="highpass", fs=fs, output="sos")
    padlen = min(default_padlen(sos), X.shape[-1] - 1)
    cleaned = sosfiltfilt_rows(sos, X, padlen=max(padlen, 0), n_jobs=n_jobs)
    width = int(fs / 50) if fs >= 100 else 2
    kernel = np.ones(width)
    padlen = min(3 * width, X.shape[-1] - 1)
    return scipy.signal.filtfilt(kernel, [width], cleaned, axis=-1, method="pad", padlen=max(padlen, 0))


def _median_of_few(values: np.ndarray) -> float:
    """``np.median`` of a short 1-D array (the same number, without its call overhead)."""
    ordered = np.sort(values)
    return (ordered[(ordered.size - 1) // 2] + ordered[ordered.size // 2]) / 2.0


def template_correlation(cleaned: np.ndarray, peaks: np.ndarray) -> float:
    """Mean correlation between each beat and the average beat (NaN if < 2 usable beats).

    Each beat is the cleaned signal over one median RR interval centred on its R-peak;
    beats too close to the signal edges are left out. ``peaks`` must be sorted (as
    every detector here returns them).
    """
    # Called once per row of a night: written with few numpy calls (about 45 us a
    # row instead of 65 us with sliding_window_view, np.linalg.norm and np.nanmean).
    if peaks.size < 2:
        return np.nan
    half = int(_median_of_few(np.diff(peaks)) // 2)
    if half < 1:
        return np.nan
    n = cleaned.size
    # Peaks are sorted: the beats with a whole window inside the signal are a slice.
    inside = peaks[np.searchsorted(peaks, half):np.searchsorted(peaks, n - half)]
    if inside.size < 2:
        return np.nan
    # Rows of a strided window view: no (n_beats, 2 * half) index array to build.
    width = 2 * half
    step = cleaned.strides[0]
    windows = np.lib.stride_tricks.as_strided(
        cleaned, (n - width + 1, width), (step, step), writeable=False
    )
    beats = windows[inside - half]
    beats -= (beats.sum(axis=1) / width)[:, None]
    template = beats.sum(axis=0) / beats.shape[0]
    norms = np.sqrt(np.einsum("ij,ij->i", beats, beats)) * np.sqrt(template @ template)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (beats @ template) / norms
    if not np.isfinite(corr).any():
        return np.nan
    return float(corr[~np.isnan(corr)].mean())


def detect_beats_rows(
    X: np.ndarray,
    fs: float,
    method: str = "neurokit",
    min_template_corr: float | None = DEFAULT_MIN_TEMPLATE_CORR,
    n_jobs: int | None = None,
) -> RowBeats:
    """Detect R-peaks in every row of ``X`` (validated, finite, 2-D).

    Parameters
    ----------
    X : ndarray, shape (n_rows, n_times)
        ECG rows, already validated (finite).
    fs : float
        Sampling rate in Hz.
    method : str
        One of :data:`METHODS` (``"sleepecg"`` without sleepecg installed runs
        ``"neurokit"``, see :func:`resolve_method`).
    min_template_corr : "auto", float or None
        Quality gate (see the module docstring); ``"auto"`` takes the detector's
        threshold from :data:`AUTO_MIN_TEMPLATE_CORR`; None disables it.
    n_jobs : int or None
        Threads for the zero-phase filters (None: 1, -1: all cores); the peaks do not
        depend on it (and it is not part of the cache key).

    Returns
    -------
    RowBeats
        Per-row peak indices, the rows rejected by the quality gate, and whether the
        rows were too short for detection.
    """
    method = resolve_method(method)
    min_template_corr = resolve_min_template_corr(min_template_corr, method)
    X = np.asarray(X, dtype=np.float64)
    params = (X.shape, float(fs), method, min_template_corr)
    with _CACHE_LOCK:
        entry = _CACHE.get("entry")
    if entry is not None and entry["params"] == params and _same_rows(X, entry):
        return _copy(entry["result"])
    if X.flags.c_contiguous:
        private = None  # the caller's array: the cache needs a copy of its own
    else:  # the copy made here anyway serves the cache as well
        X = private = np.ascontiguousarray(X)
    result = _detect_beats_rows(X, fs, method, min_template_corr, n_jobs)
    entry = {"params": params, "result": _copy(result)}
    if X.nbytes <= CACHE_COPY_MAX_BYTES:
        entry["rows"] = X.copy() if private is None else private
    else:
        entry["digest"] = _digest(X)
    with _CACHE_LOCK:
        _CACHE.clear()
        _CACHE["entry"] = entry
    return result


def resolve_min_template_corr(value, method: str) -> float | None:
    """The quality-gate threshold for the detector ``method`` (resolves ``"auto"``)."""
    value = check_min_template_corr(value)
    if isinstance(value, str):
        return AUTO_MIN_TEMPLATE_CORR[method]
    return None if value is None else float(value)


def _digest(X: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(X)).cast("B")).hexdigest()


def _same_rows(X: np.ndarray, entry: dict) -> bool:
    """Whether float64 ``X`` has the bytes of the cached rows (shape already equal)."""
    if "rows" not in entry:
        return _digest(X) == entry["digest"]
    # Compare bit patterns, not values: -0.0 == 0.0 as numbers, and a miss is only
    # a recomputation while a false hit would be a wrong answer.
    return bool(np.array_equal(X.view(np.uint64), entry["rows"].view(np.uint64)))


def _copy(beats: RowBeats) -> RowBeats:
    return RowBeats([p.copy() for p in beats.peaks], beats.rejected.copy(), beats.too_short)


def _detect_beats_rows(
    X: np.ndarray, fs: float, method: str, min_template_corr, n_jobs: int | None = None
) -> RowBeats:
    n_rows, n_times = X.shape
    empty = np.array([], dtype=np.intp)
    rejected = np.zeros(n_rows, dtype=bool)
    if n_times < MIN_DETECT_SECONDS * fs:
        return RowBeats([empty.copy() for _ in range(n_rows)], rejected, True)

    check_method(method)
    X = np.ascontiguousarray(X, dtype=np.float64)
    flat = X.max(axis=-1) == X.min(axis=-1)  # a flat line has no beats; skip the detector
    head_zone = int(np.ceil(0.35 * fs))  # the edge zone of _drop_weak_edge_beats
    if method == "sleepecg":
        # The edge check and the quality gate judge the signal the detector saw (5-30
        # Hz band, 50-Hz moving average): no separate cleaning pass. That band has no
        # baseline (its mean is ~0), so the row mean stands in for the median.
        signal, found_rows = _sleepecg_peaks(X, fs, flat, n_jobs)
        baselines = signal.mean(axis=-1)
    else:
        signal = clean_ecg_rows(X, fs, n_jobs)
        found_rows = _neurokit_peaks(signal, fs, flat)
        baselines = [None] * n_rows
    peaks = [
        empty.copy() if flat[i] else _drop_weak_edge_beats(row, found, head_zone, baselines[i])
        for i, (row, found) in enumerate(zip(signal, found_rows))
    ]
    if min_template_corr is not None:
        for i, (row, found) in enumerate(zip(signal, peaks)):
            if found.size >= 2 and not template_correlation(row, found) >= min_template_corr:
                rejected[i] = True  # NaN quality fails too
                peaks[i] = empty.copy()
    return RowBeats(peaks, rejected, False)


def _neurokit_peaks(cleaned: np.ndarray, fs: float, flat: np.ndarray) -> list:
    """neurokit2's peaks in each cleaned row (forward pass plus backward head pass)."""
    import neurokit2 as nk  # heavy import, only when beats are detected

    n_times = cleaned.shape[1]
    # neurokit2's detector ignores beats in the first 0.3 s of a signal (it starts
    # from a dummy peak at sample 0). Detection on the time-reversed head of each row
    # finds them: the detector is symmetric in time (|gradient|, centred boxcars), so
    # elsewhere both directions agree. Padding the rows instead was tried and rejected:
    # a flat pad lowers the gradient threshold (noise becomes beats near the edges) and
    # a mirror pad creates a slope cusp at the edge that looks like a QRS.
    head = min(n_times, int(np.ceil(HEAD_SECONDS * fs)))
    head_zone = int(np.ceil(0.35 * fs))  # neurokit2's 0.3 s dead zone, plus a margin
    min_gap = int(round(MIN_BEAT_GAP_SECONDS * fs))
    out = []
    for i, row in enumerate(cleaned):
        if flat[i]:
            out.append(np.array([], dtype=np.intp))
            continue
        forward = nk.ecg_findpeaks(row, sampling_rate=fs, method="neurokit")["ECG_R_Peaks"]
        backward = nk.ecg_findpeaks(row[:head][::-1], sampling_rate=fs, method="neurokit")["ECG_R_Peaks"]
        backward = head - 1 - np.asarray(backward, dtype=np.intp)
        found = np.concatenate([np.asarray(forward, dtype=np.intp), backward[backward <= head_zone]])
        out.append(_drop_close(np.unique(found[(found >= 0) & (found < n_times)]), min_gap))
    return out


def _sleepecg_peaks(
    X: np.ndarray, fs: float, flat: np.ndarray, n_jobs: int | None = None
) -> tuple[np.ndarray, list]:
    """sleepecg's peaks in each row (forward pass plus backward head pass).

    The detector sees the rows through one zero-phase cascade of sleepecg's 5-30 Hz
    band-pass and the 50-Hz moving average of :func:`clean_ecg_rows` (the moving
    average keeps the detector's accuracy on noisy ECG; the 0.5-Hz high-pass of the
    cleaning adds nothing below a 5-Hz band-pass). Returns the filtered rows too.
    """
    n_times = X.shape[1]
    head = min(n_times, int(np.ceil(SLEEPECG_HEAD_SECONDS * fs)))
    zone = int(np.ceil(SLEEPECG_ZONE_SECONDS * fs))
    min_gap = int(round(MIN_BEAT_GAP_SECONDS * fs))
    sos = sleepecg_sos(fs, power_line=True)
    band, first, usable = _sleepecg_filter_rows(X, fs, sos, flat, n_jobs)
    # The reversed heads are filtered on their own, not cut from `band`: cut from the
    # whole-row band they gave a few extra false beats in the first second on
    # synthetic ECG (the backward scan learns its thresholds on the cut end).
    heads = X[:, :head][:, ::-1]
    head_band, head_first, head_usable = _sleepecg_filter_rows(heads, fs, sos, flat, n_jobs)
    if _sleepecg_c_routines() is None:
        forward = _sleepecg_public_rows(X, fs, usable)
        backward = _sleepecg_public_rows(heads, fs, head_usable)
    else:
        forward = _sleepecg_threshold_rows(band, fs, first, usable)
        backward = _sleepecg_threshold_rows(head_band, fs, head_first, head_usable)
    out = []
    for fwd, bwd in zip(forward, backward):
        bwd = head - 1 - bwd
        # Beats of the first `zone` samples come from the backward scan; the forward
        # ones are kept from one refractory period before the zone ends, so a beat on
        # the boundary is found at least once (_drop_close merges the duplicates).
        found = np.concatenate([bwd[bwd < zone], fwd[fwd >= zone - min_gap]])
        out.append(_drop_close(np.unique(found), min_gap))
    return band, out


def _sleepecg_c_routines():
    """sleepecg's C routines ``(_squared_moving_integration, _thresholding)``, or None."""
    try:
        from sleepecg._heartbeat_detection import _squared_moving_integration, _thresholding
    except ImportError:
        return None
    return _squared_moving_integration, _thresholding


def sleepecg_find_rows(rows: np.ndarray, fs: float, skip: np.ndarray | None = None) -> list:
    """Run sleepecg's heartbeat detector on every row of ``rows``.

    Gives the same peaks as ``sleepecg.detect_heartbeats(row, fs)`` row by row, but
    with the band-pass filter and the derivative computed for all rows at once (see
    the module docstring). Rows in ``skip``, rows that are flat, and rows whose
    non-flat part is shorter than sleepecg's 2-s learning phase get no peaks.

    Parameters
    ----------
    rows : ndarray, shape (n_rows, n_times)
        Signals (finite).
    fs : float
        Sampling rate in Hz.
    skip : ndarray of bool, shape (n_rows,), optional
        Rows to leave out.

    Returns
    -------
    list of ndarray of intp
        Per row, the sorted peak indices.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if _sleepecg_c_routines() is None:
        first, usable = _sleepecg_usable(rows, fs, skip)
        return _sleepecg_public_rows(rows, fs, usable)
    band, first, usable = _sleepecg_filter_rows(rows, fs, sleepecg_sos(fs), skip)
    return _sleepecg_threshold_rows(band, fs, first, usable)


def sleepecg_sos(fs: float, power_line: bool = False) -> np.ndarray:
    """sleepecg's band-pass (2nd-order Butterworth, 5-30 Hz) as second-order sections.

    With ``power_line``, the sections of the moving average of :func:`clean_ecg_rows`
    (one 50-Hz period) follow: one zero-phase pass of the cascade is that moving
    average and the band-pass applied one after the other (all filters are linear).
    """
    sos = scipy.signal.butter(2, (5.0, 30.0), btype="bandpass", output="sos", fs=fs)
    if power_line:
        width = _power_line_width(fs)
        sos = np.vstack([sos, scipy.signal.tf2sos(np.ones(width) / width, [1.0])])
    return sos


def _power_line_width(fs: float) -> int:
    """Samples in one 50-Hz period (the moving average of neurokit2's cleaning)."""
    return int(fs / 50) if fs >= 100 else 2


def _sleepecg_usable(rows: np.ndarray, fs: float, skip) -> tuple[np.ndarray, np.ndarray]:
    """First sample differing from the first one, per row, and the rows to detect in."""
    n_rows, n_times = rows.shape
    skip = np.zeros(n_rows, dtype=bool) if skip is None else np.asarray(skip, dtype=bool)
    # sleepecg starts at the first sample that differs from the first one (a flat start
    # would spoil its thresholds); its learning phase then needs 2 s of signal.
    first = np.zeros(n_rows, dtype=np.intp)
    for i in np.flatnonzero(rows[:, 1] == rows[:, 0]).tolist():
        differs = np.flatnonzero(rows[i] != rows[i, 0])
        first[i] = differs[0] if differs.size else n_times
    return first, ~skip & (n_times - first > int(2 * fs))


def _sleepecg_filter_rows(
    rows: np.ndarray, fs: float, sos: np.ndarray, skip, n_jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-phase filter each usable row from its first non-flat sample (else zeros).

    Returns the filtered rows (C-contiguous, float64), the first non-flat sample per
    row and the usable rows (see :func:`_sleepecg_usable`).
    """
    first, usable = _sleepecg_usable(rows, fs, skip)
    # One vectorised filter call for all rows that start non-flat (nearly always all);
    # rows with a flat start are filtered from their first non-flat sample, one by one.
    whole = np.flatnonzero(usable & (first == 0))
    if whole.size == rows.shape[0]:
        return sosfiltfilt_rows(sos, rows, n_jobs=n_jobs), first, usable
    band = np.zeros(rows.shape)
    if whole.size:
        band[whole] = sosfiltfilt_rows(sos, rows[whole], n_jobs=n_jobs)
    for i in np.flatnonzero(usable & (first > 0)).tolist():
        band[i, first[i]:] = scipy.signal.sosfiltfilt(sos, rows[i, first[i]:])
    return band, first, usable


def _sleepecg_threshold_rows(band: np.ndarray, fs: float, first, usable) -> list:
    """sleepecg's derivative and C routines on band-passed rows (from ``first``)."""
    integrate, threshold = _sleepecg_c_routines()
    window = int(0.15 * fs)  # 150-ms integration window
    derivative_kernel = np.array([-1.0, -2.0, 0.0, 2.0, 1.0])  # Pan & Tompkins
    empty = np.array([], dtype=np.intp)
    out = []
    for i, ok in enumerate(usable.tolist()):
        if not ok:
            out.append(empty.copy())
            continue
        row = np.ascontiguousarray(band[i, first[i]:])
        derivative = np.correlate(row, derivative_kernel, mode="same")
        mask = threshold(row, integrate(derivative, window), fs)
        out.append(np.flatnonzero(mask).astype(np.intp) + first[i])
    return out


def _sleepecg_public_rows(rows: np.ndarray, fs: float, usable) -> list:
    """``sleepecg.detect_heartbeats`` row by row (when its C routines are missing)."""
    detect_heartbeats = _sleepecg_detect_heartbeats()
    return [
        np.asarray(detect_heartbeats(np.ascontiguousarray(row), fs), dtype=np.intp)
        if ok else np.array([], dtype=np.intp)
        for row, ok in zip(rows, usable)
    ]


def _drop_close(peaks: np.ndarray, min_gap: int) -> np.ndarray:
    """Keep the first of any detections closer than ``min_gap`` samples (sorted input)."""
    if peaks.size < 2 or np.diff(peaks).min() >= min_gap:  # nothing to drop (usual)
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
    rr_min, rr_max = 60.0 / max_hr, 60.0 / min_hr
    beat_times = [np.asarray(times, dtype=np.float64).ravel() for times in beat_times]
    if not beat_times:
        return [], [], 0, 0
    # All rows at once (one diff over the concatenated beats; the differences across
    # row boundaries are cut out), then split back into rows.
    sizes = np.array([t.size for t in beat_times], dtype=np.intp)
    times = np.concatenate(beat_times)
    rr = np.diff(times)
    bad = (rr < rr_min) | (rr > rr_max)
    rr[bad] = np.nan
    starts = np.cumsum(sizes) - sizes  # index of each row's first beat in `times`
    n_rr_rows = np.maximum(sizes - 1, 0)  # row i: rr[starts[i]:starts[i] + n_rr_rows[i]]
    across = np.zeros(rr.size, dtype=bool)  # differences between two rows' beats
    across[starts[(sizes > 0) & (starts > 0)] - 1] = True
    n_rr = int(n_rr_rows.sum())
    n_discarded = int((bad & ~across).sum())
    rr_list = [rr[a:a + k].copy() for a, k in zip(starts.tolist(), n_rr_rows.tolist())]
    end_list = [t[1:] for t in beat_times]
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


def _drop_weak_edge_beats(
    row: np.ndarray, peaks: np.ndarray, zone: int, baseline: float | None = None
) -> np.ndarray:
    """Drop detections near the row edges whose amplitude is below half the typical beat.

    Near a row edge the detector lacks context: when the row starts just after a beat
    (or ends just before one), the T wave of the cut beat (or the P wave of the next)
    passes the gradient threshold. Real R-peaks near the edges are kept when at least
    half as high above the row baseline (``baseline``, by default the row median) as
    the median interior R-peak.
    """
    n = row.size
    edge = (peaks < zone) | (peaks >= n - zone)
    interior = peaks[~edge]
    if not edge.any() or interior.size < 2:
        return peaks
    if baseline is None:
        baseline = np.median(row)
    typical = _median_of_few(row[interior] - baseline)
    strong = (row[peaks] - baseline) >= 0.5 * typical
    return peaks[~edge | strong]
