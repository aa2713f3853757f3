"""Recordings -> per-epoch model inputs (:func:`make_epochs`) and temporal context.

Two ways to give a model more than one 30-s epoch:

- :func:`make_epochs` with ``context=k`` cuts a window of ``2k + 1`` epochs straight
  from the signal around each scored epoch. Neighbours are whatever signal surrounds
  the epoch, including unscored epochs (they are signal, just not a label).
- :func:`add_context` stacks neighbouring rows of any per-epoch array (e.g. heart-rate
  features computed per epoch). It works on rows, so a dropped epoch is not there to
  be stacked; pass ``onsets`` to have such holes padded instead of closed up.
"""

from __future__ import annotations

import logging
import numbers
from collections import Counter
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from sleepkd.datasets._recording import Recording
from sleepkd.stages import SCHEMES, UNSCORED, to_scheme
from sleepkd.utils._validation import check_sampling_rate

logger = logging.getLogger(__name__)

_SIGNALS = ("ecg", "eeg", "heart_rate")
#: Padding of context windows that reach past a record's edge (``None``: drop the row).
_PAD_MODES = ("zeros", "edge", None)
#: Largest denominator of the rational resampling factor up / down.
_MAX_DENOMINATOR = 1000


def make_epochs(
    recordings: Recording | Sequence[Recording],
    *,
    scheme: str = "5class",
    context: int = 0,
    fs_ecg: float | None = None,
    fs_eeg: float | None = None,
    signals: str | Iterable[str] = ("ecg", "eeg"),
    fs_hr: float = 2.0,
    pad: str | None = "zeros",
    unscored: str = "drop",
):
    """Cut recordings into one row per scored 30-s epoch (or per epoch, kept in place).

    Parameters
    ----------
    recordings : list of Recording
        Nights from :func:`~sleepkd.datasets.load_slpdb`, the generators, or your own.
        Record names must be unique.
    scheme : {"5class", "4class", "3class"}, default="5class"
        Label scheme of ``y`` (see :func:`sleepkd.stages.to_scheme`).
    context : int, default=0
        Number of epochs taken before and after each epoch. Each row then holds
        ``2 * context + 1`` epochs of signal in time order (the scored epoch in the
        middle), cut from the continuous signal: unscored neighbours are included.
    fs_ecg, fs_eeg : float, optional
        Sampling rate of the output in Hz; each recording is resampled to it with
        :func:`scipy.signal.resample_poly` (rational factor ``up / down`` with
        ``down <= 1000``). ``None`` keeps the recordings' own rate, which must then be
        the same for all of them.
    signals : {"ecg", "eeg", "heart_rate"} or iterable of them, default=("ecg", "eeg")
        Signals to cut. A signal not listed gives ``None`` in the output; an empty
        tuple gives the labels, groups and onsets only. ``"heart_rate"`` is the
        instantaneous heart rate of each recording's ``beat_times`` (no waveform
        needed: annotated beats, a chest strap's or a Holter's RR series), on a grid of
        ``fs_hr`` Hz, with ectopic and artefact intervals rejected and gaps bridged by
        :func:`sleepkd.signal.instantaneous_heart_rate`.
    fs_hr : float, default=2.0
        Rate of the heart-rate grid in Hz (``signals`` with ``"heart_rate"``).
    pad : {"zeros", "edge"} or None, default="zeros"
        What fills the part of a context window that lies before the start or after
        the end of the signal: ``"zeros"`` (a flat, zero line: the neutral value of a
        band-passed, zero-mean signal, and obviously not real), ``"edge"`` (the first /
        last sample repeated: no step for signals with an offset), or ``None`` (no
        padding: such rows are dropped and counted as ``"outside_signal"``).
        The scored epoch itself must always lie inside the signal.
    unscored : {"drop", "keep"}, default="drop"
        What happens to epochs without a stage (unscored, movement time, artefact):
        ``"drop"`` leaves them out (counted in ``dropped["unscored"]``); ``"keep"``
        keeps them in their place in the night, labelled :data:`UNSCORED` (``"?"``)
        and flagged in ``scored``, so that a night-level model reads the night without
        holes and masks them from its loss and from scoring (counted in
        ``n_unscored_kept``).

    Returns
    -------
    data : sklearn.utils.Bunch
        With attributes

        - ``X_ecg``: float32 array ``(n, (2 * context + 1) * n_times_ecg)`` or None;
        - ``X_eeg``: float32 array ``(n, n_channels, (2 * context + 1) * n_times_eeg)``
          or None;
        - ``X_hr``: float32 array ``(n, (2 * context + 1) * epoch_length * fs_hr)``
          of heart rate in beats/min, or None;
        - ``hr_valid``: True for rows whose epoch has enough real heart rate (not
          interpolated across a gap or rejected beats), or None;
        - ``hr_report``: per record, what :func:`~sleepkd.signal.instantaneous_heart_rate`
          rejected and bridged (beats, seconds), or None;
        - ``y``: labels of ``scheme`` (str), ``(n,)``;
        - ``groups``: subject of each row (str), ``(n,)``, for grouped CV;
        - ``records``: record name of each row, ``(n,)``;
        - ``onsets``: epoch onset in seconds from the start of its record, ``(n,)``;
        - ``scored``: True for rows with a stage, ``(n,)`` (all True with
          ``unscored="drop"``);
        - ``n_unscored_kept``: rows kept with the :data:`UNSCORED` label;
        - ``fs_ecg``, ``fs_eeg``, ``scheme``, ``context``, ``pad``, ``epoch_length``;
        - ``dropped``: counts of epochs left out, ``{"unscored", "outside_signal",
          "nonfinite", "per_record": {name: {...}}}``;
        - ``source``: set of the recordings' provenance strings;
        - ``DESCR``: what the data is and whether it is real, synthetic or semi-real.

        Rows are grouped by recording (in the given order) and in time order within.

    Raises
    ------
    ValueError
        On an empty list, an item that is not a Recording, duplicated record names,
        stages and onsets of different lengths, unsorted or non-finite onsets, a
        requested signal a recording lacks (e.g. slpdb read without ``.dat`` files),
        different sampling rates with ``fs_* = None``, different EEG channel counts,
        a bad ``scheme`` / ``context`` / ``signals`` / ``pad`` / rate, or when no epoch
        is left.

    Notes
    -----
    Epochs are left out and counted when they carry no stage (:data:`UNSCORED`,
    e.g. movement time), when their window lies (partly) outside the signal, or when
    it contains NaN / inf; a logged warning reports the counts. Epoch boundaries are
    ``round(onset * fs)`` and ``round(epoch_length * fs)`` samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sleepkd.datasets import Recording, make_epochs
    >>> rec = Recording("r1", "s1", ecg=np.zeros(4 * 3000), fs_ecg=100.0, eeg=None,
    ...                 fs_eeg=None, eeg_channels=[], beat_times=None,
    ...                 stages=np.array(["W", "N1", "?", "R"]),
    ...                 epoch_onsets=np.arange(4) * 30.0, source="synthetic (example)")
    >>> data = make_epochs([rec], signals="ecg", context=1)
    >>> data.X_ecg.shape, data.y.tolist(), data.dropped["unscored"]
    ((3, 9000), ['W', 'N1', 'R'], 1)
    """
    from sklearn.utils import Bunch

    recordings = _check_recordings(recordings)
    if scheme not in SCHEMES:
        raise ValueError(f"Unknown scheme {scheme!r}; expected one of {sorted(SCHEMES)}.")
    context = _check_context(context)
    signals = _check_signals(signals)
    if pad not in _PAD_MODES:
        raise ValueError(f"pad must be one of {_PAD_MODES}, got {pad!r}.")
    if unscored not in ("drop", "keep"):
        raise ValueError(f"unscored must be 'drop' or 'keep', got {unscored!r}.")
    epoch_length = _common_epoch_length(recordings)
    rates = {
        "ecg": _target_rate(recordings, "ecg", fs_ecg) if "ecg" in signals else None,
        "eeg": _target_rate(recordings, "eeg", fs_eeg) if "eeg" in signals else None,
        "heart_rate": (check_sampling_rate(fs_hr, "fs_hr") if "heart_rate" in signals
                       else None),
    }
    heart_rate = ({rec.name: _heart_rate_of(rec, rates["heart_rate"], epoch_length)
                   for rec in recordings} if "heart_rate" in signals else {})
    n_channels = _common_eeg_channels(recordings) if "eeg" in signals else None
    n_times = {kind: int(round(epoch_length * fs)) for kind, fs in rates.items() if fs}
    width = 2 * context + 1

    # pass 1: labels and which epochs fit inside every requested signal
    plans, dropped = [], {"unscored": 0, "outside_signal": 0, "nonfinite": 0,
                          "per_record": {}}
    for rec in recordings:
        labels = _labels(rec, scheme)
        scored = labels != UNSCORED
        inside = np.ones(len(labels), dtype=bool)
        starts = {}
        for kind in signals:
            fs, n = rates[kind], n_times[kind]
            length = (heart_rate[rec.name][0].size if kind == "heart_rate" else
                      _resampled_length(_n_samples(rec, kind), _fs_of(rec, kind), fs))
            starts[kind] = np.rint(np.asarray(rec.epoch_onsets) * fs).astype(np.int64)
            margin = 0 if pad is not None else context * n
            inside &= (starts[kind] - margin >= 0) & (starts[kind] + n + margin <= length)
        keep = (scored if unscored == "drop" else True) & inside
        counts = {"unscored": int(np.count_nonzero(~scored)) if unscored == "drop" else 0,
                  "outside_signal": int(np.count_nonzero(scored & ~inside)),
                  "nonfinite": 0}
        dropped["per_record"][rec.name] = counts
        plans.append((rec, labels, keep, starts))
    n_rows = sum(int(np.count_nonzero(keep)) for _, _, keep, _ in plans)

    # pass 2: cut the windows straight into the preallocated outputs
    X = {kind: None for kind in _SIGNALS}
    if "ecg" in signals:
        X["ecg"] = np.empty((n_rows, width * n_times["ecg"]), dtype=np.float32)
    if "eeg" in signals:
        X["eeg"] = np.empty((n_rows, n_channels, width * n_times["eeg"]), dtype=np.float32)
    if "heart_rate" in signals:
        X["heart_rate"] = np.empty((n_rows, width * n_times["heart_rate"]), dtype=np.float32)
    finite = np.ones(n_rows, dtype=bool)
    row = 0
    for rec, _, keep, starts in plans:
        m = int(np.count_nonzero(keep))
        if m == 0:
            continue
        for kind in signals:
            signal = (heart_rate[rec.name][0] if kind == "heart_rate" else
                      _resample(_signal_of(rec, kind), _fs_of(rec, kind), rates[kind],
                                rec.name))
            finite[row:row + m] &= _cut_windows(
                np.asarray(signal, dtype=np.float32), starts[kind][keep], n_times[kind],
                context, pad or "zeros", out=X[kind][row:row + m],
            )
        n_bad = int(np.count_nonzero(~finite[row:row + m]))
        if n_bad:
            dropped["per_record"][rec.name]["nonfinite"] = n_bad
            bad_rows = np.flatnonzero(keep)[~finite[row:row + m]]
            keep[bad_rows] = False
        row += m

    for key in ("unscored", "outside_signal", "nonfinite"):
        dropped[key] = sum(c[key] for c in dropped["per_record"].values())
    if not finite.all():
        X = {kind: None if x is None else x[finite] for kind, x in X.items()}
    y = np.concatenate([labels[keep] for _, labels, keep, _ in plans])
    scored_rows = y != UNSCORED
    n_kept = int(np.count_nonzero(~scored_rows))
    if n_kept:
        logger.info("make_epochs kept %d unscored epochs in place (label %r, scored=False).",
                    n_kept, UNSCORED)
    if not scored_rows.any():
        raise ValueError(f"No epoch left after dropping {_describe_dropped(dropped)}.")
    n_dropped = dropped["unscored"] + dropped["outside_signal"] + dropped["nonfinite"]
    if n_dropped:
        worst = sorted(dropped["per_record"].items(), key=lambda kv: -sum(kv[1].values()))
        logger.warning(
            "make_epochs dropped %d of %d epochs: %s. Per record (most first): %s",
            n_dropped, n_dropped + len(y), _describe_dropped(dropped),
            ", ".join(f"{name} {c}" for name, c in worst[:5] if sum(c.values())),
        )

    def per_row(values) -> np.ndarray:
        return np.concatenate([np.repeat(value, np.count_nonzero(keep))
                               for value, (_, _, keep, _) in zip(values, plans)])

    groups = per_row([str(rec.subject) for rec in recordings]).astype(str)
    records = per_row([str(rec.name) for rec in recordings]).astype(str)
    onsets = np.concatenate([np.asarray(rec.epoch_onsets, dtype=float)[keep]
                             for rec, _, keep, _ in plans])
    sources = {rec.source for rec in recordings}
    hr_valid = hr_report = None
    if "heart_rate" in signals:
        hr_valid = np.concatenate([
            _grid_flags(heart_rate[rec.name][1], rec.epoch_onsets, epoch_length)[keep]
            for rec, _, keep, _ in plans])
        hr_report = {name: report for name, (_, _, report) in heart_rate.items()}
        _log_heart_rate(hr_report, hr_valid)
    return Bunch(
        X_ecg=X["ecg"], X_eeg=X["eeg"], X_hr=X["heart_rate"], hr_valid=hr_valid,
        hr_report=hr_report, fs_hr=rates["heart_rate"], y=y, groups=groups, records=records,
        onsets=onsets, scored=scored_rows, n_unscored_kept=n_kept,
        fs_ecg=rates["ecg"], fs_eeg=rates["eeg"], scheme=scheme,
        context=context, pad=pad, epoch_length=epoch_length, dropped=dropped,
        source=sources,
        DESCR=_describe(recordings, y[scored_rows], groups[scored_rows], scheme, rates,
                        n_times, context, pad)
        + (f" {n_kept} unscored epochs are kept in place (label {UNSCORED!r}, "
           "scored=False)." if n_kept else ""),
    )


def add_context(
    X: ArrayLike,
    records: ArrayLike,
    context: int,
    pad: str = "zeros",
    *,
    onsets: ArrayLike | None = None,
    epoch_length: float = 30.0,
) -> np.ndarray:
    """Stack the ``context`` rows before and after each row along the last axis.

    Works on any per-epoch array, e.g. heart-rate series per epoch from a transformer,
    without crossing record boundaries.

    Parameters
    ----------
    X : array-like of shape (n_epochs, ...)
        One row per epoch; a 1-D array is treated as ``(n_epochs, 1)``.
    records : array-like of shape (n_epochs,)
        Record of each row. The rows of one record must be consecutive and in time
        order (as :func:`make_epochs` returns them).
    context : int
        Number of neighbours taken on each side (``0`` returns ``X`` unchanged, as 2-D
        when it was 1-D).
    pad : {"zeros", "edge"}, default="zeros"
        Fill for a neighbour that does not exist: ``"zeros"``, or ``"edge"`` (the
        record's nearest existing row, e.g. its first row repeated before the start).
    onsets : array-like of shape (n_epochs,), optional
        Epoch onsets in seconds. Without them the rows are taken as given: the rows
        next to a dropped (e.g. unscored) epoch become neighbours. With them, a
        neighbour is the row whose onset is ``j * epoch_length`` away, and a missing
        epoch is padded like a record edge.
    epoch_length : float, default=30.0
        Epoch duration in seconds; used with ``onsets`` only.

    Returns
    -------
    X_context : ndarray of shape (n_epochs, ..., (2 * context + 1) * n_last)
        For row ``i`` the last axis holds rows ``i - context, ..., i, ..., i + context``
        one after the other, in time order; other axes (e.g. channels) are kept.

    Raises
    ------
    ValueError
        If the lengths differ, a record's rows are not contiguous, ``onsets`` are not
        increasing within a record (or two fall into one epoch), or ``context`` /
        ``pad`` are invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from sleepkd.datasets import add_context
    >>> add_context(np.array([1.0, 2.0, 3.0, 10.0]), ["a", "a", "a", "b"], 1).tolist()
    [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 0.0], [0.0, 10.0, 0.0]]
    """
    context = _check_context(context)
    if pad not in ("zeros", "edge"):
        raise ValueError(f"pad must be 'zeros' or 'edge', got {pad!r}.")
    X = np.asarray(X)
    if X.ndim == 0 or X.shape[0] == 0:
        raise ValueError(f"X must hold at least one row, got shape {X.shape}.")
    if X.ndim == 1:
        X = X[:, np.newaxis]
    n = X.shape[0]
    records = np.asarray(records)
    if records.shape != (n,):
        raise ValueError(f"records must have shape ({n},) like the rows of X, "
                         f"got {records.shape}.")
    bounds = _record_blocks(records)
    if onsets is None:
        position = np.arange(n, dtype=np.int64)
    else:
        position = _grid_positions(onsets, records, bounds, epoch_length, n)
    if context == 0:
        return X.copy()

    offsets = np.arange(-context, context + 1)
    source = np.empty((n, offsets.size), dtype=np.int64)  # row to copy, -1 = zeros
    for start, stop in bounds:
        pos = position[start:stop]
        target = pos[:, None] + offsets[None, :]
        idx = np.clip(np.searchsorted(pos, target), 0, len(pos) - 1)
        found = pos[idx] == target
        if pad == "edge":  # nearest existing row of the record
            left = np.clip(np.searchsorted(pos, target, side="right") - 1, 0, len(pos) - 1)
            closer_left = np.abs(pos[left] - target) <= np.abs(pos[idx] - target)
            nearest = np.where(closer_left, left, idx)
            source[start:stop] = start + np.where(found, idx, nearest)
        else:
            source[start:stop] = np.where(found, start + idx, -1)
    out = X[np.maximum(source, 0)]  # (n, 2k + 1, ...)
    if pad == "zeros":
        out[source < 0] = 0
    out = np.moveaxis(out, 1, -2)  # (n, ..., 2k + 1, n_last)
    return np.ascontiguousarray(out).reshape(*out.shape[:-2], -1)


# --------------------------------------------------------------------------- helpers
def _check_context(context) -> int:
    if isinstance(context, bool) or not isinstance(context, numbers.Integral) or context < 0:
        raise ValueError(f"context must be an integer >= 0, got {context!r}.")
    return int(context)


def _check_signals(signals) -> tuple[str, ...]:
    if isinstance(signals, str):
        signals = (signals,)
    try:
        signals = tuple(signals)
    except TypeError:
        raise ValueError(f"signals must be 'ecg', 'eeg' or both, got {signals!r}.") from None
    unknown = [s for s in signals if s not in _SIGNALS]
    if unknown or len(set(signals)) != len(signals):
        raise ValueError(f"signals must be a subset of {_SIGNALS} without repeats, "
                         f"got {signals!r}.")
    return tuple(s for s in _SIGNALS if s in signals)


def _check_recordings(recordings) -> list[Recording]:
    if isinstance(recordings, Recording):
        recordings = [recordings]
    if isinstance(recordings, (str, bytes)) or not isinstance(recordings, Iterable):
        raise ValueError(f"recordings must be a list of Recording, got {type(recordings)}.")
    recordings = list(recordings)
    if not recordings:
        raise ValueError("recordings is empty: pass at least one Recording.")
    wrong = [type(r).__name__ for r in recordings if not isinstance(r, Recording)]
    if wrong:
        raise ValueError(f"recordings must all be Recording objects; got {wrong}.")
    names = Counter(r.name for r in recordings)
    duplicated = sorted(str(name) for name, count in names.items() if count > 1)
    if duplicated:
        raise ValueError(f"Record names must be unique; repeated: {duplicated}.")
    for rec in recordings:
        stages, onsets = np.asarray(rec.stages), np.asarray(rec.epoch_onsets)
        if stages.ndim != 1 or onsets.ndim != 1 or len(stages) != len(onsets):
            raise ValueError(
                f"Recording {rec.name!r}: stages {stages.shape} and epoch_onsets "
                f"{onsets.shape} must be 1-D arrays of the same length."
            )
        if onsets.size and (onsets.dtype.kind not in "iuf" or not np.all(np.isfinite(onsets))):
            raise ValueError(f"Recording {rec.name!r}: epoch_onsets must be finite numbers.")
        if np.any(np.diff(onsets) <= 0):
            raise ValueError(f"Recording {rec.name!r}: epoch_onsets must be strictly "
                             "increasing.")
    return recordings


def _common_epoch_length(recordings: list[Recording]) -> float:
    lengths = {float(r.epoch_length) for r in recordings}
    if len(lengths) != 1:
        raise ValueError(f"All recordings must have the same epoch_length, got "
                         f"{ {r.name: r.epoch_length for r in recordings} }.")
    length = lengths.pop()
    if not np.isfinite(length) or length <= 0:
        raise ValueError(f"epoch_length must be positive, got {length}.")
    return length


def _signal_of(rec: Recording, kind: str) -> np.ndarray:
    signal = getattr(rec, kind)
    if signal is None:
        extra = (" (slpdb read without its .dat signal files: download them from "
                 "PhysioNet, or use the beat times)" if "slpdb" in rec.source else "")
        raise ValueError(f"Recording {rec.name!r} has no {kind.upper()} waveform{extra}; "
                         f"leave {kind!r} out of signals.")
    signal = np.asarray(signal)
    if signal.dtype.kind not in "biuf":
        raise ValueError(f"Recording {rec.name!r}: {kind} must be numeric, got "
                         f"{signal.dtype}.")
    if kind == "ecg" and signal.ndim != 1:
        raise ValueError(f"Recording {rec.name!r}: ecg must be 1-D (n_samples,), got "
                         f"shape {signal.shape}.")
    if kind == "eeg":
        if signal.ndim == 1:
            signal = signal[np.newaxis]
        if signal.ndim != 2:
            raise ValueError(f"Recording {rec.name!r}: eeg must be (n_channels, "
                             f"n_samples), got shape {signal.shape}.")
    return signal


def _heart_rate_of(rec: Recording, fs: float, epoch_length: float):
    """Instantaneous heart rate of a recording's beats from t = 0 to past its last
    epoch, flattened: ``(signal, valid per grid epoch, report)``."""
    from sleepkd.signal._ihr import instantaneous_heart_rate

    if rec.beat_times is None:
        raise ValueError(f"Recording {rec.name!r} has no beat_times; detect the beats of its "
                         "ECG first (sleepkd.signal.detect_rpeaks), or leave 'heart_rate' "
                         "out of signals.")
    end = float(np.max(rec.epoch_onsets)) + epoch_length if len(rec.epoch_onsets) else 0.0
    n_grid = max(int(np.ceil(end / epoch_length - 1e-9)), 1)
    try:
        hr, valid, report = instantaneous_heart_rate(rec.beat_times, fs=fs, n_epochs=n_grid,
                                                     epoch_length=epoch_length)
    except ValueError as exc:
        raise ValueError(f"Recording {rec.name!r}: {exc}") from exc
    return hr.ravel(), valid, report


def _grid_flags(flags: np.ndarray, onsets, epoch_length: float) -> np.ndarray:
    """Per-epoch flags of the heart-rate grid, at the epochs starting at ``onsets``."""
    idx = np.clip(np.rint(np.asarray(onsets, dtype=float) / epoch_length).astype(int), 0,
                  len(flags) - 1)
    return flags[idx]


def _log_heart_rate(reports: dict, valid: np.ndarray) -> None:
    rejected = sum(r["n_rejected_beats"] for r in reports.values())
    beats = sum(r["n_beats"] for r in reports.values())
    gaps = sum(r["gap_seconds"] for r in reports.values())
    logger.info("Heart rate from %d beats: %d rejected as ectopic/artefact beats, %.0f s "
                "bridged or filled; %d of %d epochs without enough real heart rate "
                "(hr_valid=False).", beats, rejected, gaps, int((~valid).sum()), len(valid))


def _n_samples(rec: Recording, kind: str) -> int:
    return _signal_of(rec, kind).shape[-1]


def _fs_of(rec: Recording, kind: str) -> float:
    return check_sampling_rate(getattr(rec, f"fs_{kind}"), f"{rec.name}.fs_{kind}")


def _target_rate(recordings: list[Recording], kind: str, fs: float | None) -> float:
    for rec in recordings:
        _signal_of(rec, kind)  # raises if the signal is missing
    own = {rec.name: _fs_of(rec, kind) for rec in recordings}
    if fs is not None:
        return check_sampling_rate(fs, f"fs_{kind}")
    if len(set(own.values())) > 1:
        raise ValueError(f"The recordings have different {kind.upper()} sampling rates "
                         f"{own}; pass fs_{kind}=... to resample them to one rate.")
    return next(iter(own.values()))


def _common_eeg_channels(recordings: list[Recording]) -> int:
    counts = {rec.name: _signal_of(rec, "eeg").shape[0] for rec in recordings}
    if len(set(counts.values())) != 1:
        raise ValueError(f"The recordings have different numbers of EEG channels: {counts}.")
    return next(iter(counts.values()))


def _labels(rec: Recording, scheme: str) -> np.ndarray:
    stages = np.asarray(rec.stages)
    if stages.size == 0:
        return np.empty(0, dtype="<U2")
    try:
        return to_scheme(stages, scheme)
    except ValueError as exc:
        raise ValueError(f"Recording {rec.name!r}: {exc}") from exc


def _rational(fs_from: float, fs_to: float) -> tuple[int, int]:
    ratio = Fraction(fs_to / fs_from).limit_denominator(_MAX_DENOMINATOR)
    return ratio.numerator, ratio.denominator


def _resampled_length(n: int, fs_from: float, fs_to: float) -> int:
    if fs_from == fs_to:
        return n
    up, down = _rational(fs_from, fs_to)
    return -(-n * up // down)  # ceil, as scipy.signal.resample_poly


def _resample(signal: np.ndarray, fs_from: float, fs_to: float, name: str) -> np.ndarray:
    if fs_from == fs_to:
        return signal
    from scipy.signal import resample_poly

    up, down = _rational(fs_from, fs_to)
    error = abs(fs_from * up / down - fs_to) / fs_to
    if error > 1e-6:
        drift = error * signal.shape[-1] / fs_from
        logger.warning("%s: resampling %g Hz -> %g Hz approximated by %d/%d (relative "
                       "error %.1e, %.2f s of drift at the end of the record).",
                       name, fs_from, fs_to, up, down, error, drift)
    return resample_poly(np.asarray(signal, dtype=np.float64), up, down, axis=-1)


def _cut_windows(signal: np.ndarray, starts: np.ndarray, n_times: int, context: int,
                 pad: str, out: np.ndarray) -> np.ndarray:
    """Copy windows ``[start - context * n, start + (context + 1) * n)`` into ``out``.

    ``signal`` is ``(n_samples,)`` or ``(n_channels, n_samples)`` float32; ``out`` is
    ``(n_epochs, width)`` or ``(n_epochs, n_channels, width)``. Samples outside the
    signal are filled per ``pad``. Returns a boolean mask: the window is all finite.
    """
    margin = context * n_times
    width = (2 * context + 1) * n_times
    if margin:
        lo = max(0, margin - int(starts.min()))
        hi = max(0, int(starts.max()) + n_times + margin - signal.shape[-1])
        if lo or hi:
            pad_width = [(0, 0)] * (signal.ndim - 1) + [(lo, hi)]
            signal = np.pad(signal, pad_width, mode="constant" if pad == "zeros" else "edge")
        starts = starts + lo - margin
    # (n_windows, [n_channels,] width) strided view, gathered into out in chunks of
    # about 4 MB so that the temporary copy stays in cache
    view = np.moveaxis(sliding_window_view(signal, width, axis=-1), -2, 0)
    chunk = max(1, (1 << 22) // max(1, out[:1].nbytes))
    for i in range(0, len(starts), chunk):
        out[i:i + chunk] = view[starts[i:i + chunk]]
    bad = ~np.isfinite(signal)
    if signal.ndim == 2:
        bad = bad.any(axis=0)
    if not bad.any():
        return np.ones(len(starts), dtype=bool)
    n_bad = np.concatenate([[0], np.cumsum(bad)])
    return n_bad[starts + width] == n_bad[starts]


def _record_blocks(records: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each record's rows; raise if a record's rows are split."""
    change = np.flatnonzero(records[1:] != records[:-1]) + 1
    starts = np.r_[0, change]
    stops = np.r_[change, len(records)]
    ids = records[starts]
    if len(set(ids.tolist())) != len(ids):
        split = sorted({str(r) for r, c in Counter(ids.tolist()).items() if c > 1})
        raise ValueError(f"The rows of each record must be contiguous (one block per "
                         f"record, in time order); split records: {split}.")
    return list(zip(starts.tolist(), stops.tolist()))


def _grid_positions(onsets, records, bounds, epoch_length, n) -> np.ndarray:
    onsets = np.asarray(onsets, dtype=float)
    if onsets.shape != (n,) or not np.all(np.isfinite(onsets)):
        raise ValueError(f"onsets must be {n} finite numbers (one per row), got shape "
                         f"{onsets.shape}.")
    if not (np.isfinite(epoch_length) and epoch_length > 0):
        raise ValueError(f"epoch_length must be positive, got {epoch_length!r}.")
    position = np.rint(onsets / epoch_length).astype(np.int64)
    for start, stop in bounds:
        if np.any(np.diff(position[start:stop]) <= 0):
            raise ValueError(f"onsets of record {str(records[start])!r} must increase by at "
                             f"least one epoch ({epoch_length} s) from row to row.")
    return position


def _describe_dropped(dropped: dict) -> str:
    return (f"{dropped['unscored']} unscored, {dropped['outside_signal']} outside the "
            f"signal, {dropped['nonfinite']} with NaN/inf")


def _provenance(source: str) -> str:
    text = source.lower()
    if text.startswith("semi"):
        return "semi-real"
    if "synthetic" in text:
        return "synthetic"
    if text.startswith("real"):
        return "real"
    return "unstated"


def _describe(recordings, y, groups, scheme, rates, n_times, context, pad) -> str:
    sources = Counter(rec.source for rec in recordings)
    kinds = sorted({_provenance(s) for s in sources})
    verdict = {
        "real": "REAL recorded data",
        "synthetic": "SYNTHETIC data generated by software, not recorded from people",
        "semi-real": "SEMI-REAL data: real beat times and expert stages with "
                     "synthesised waveforms",
        "unstated": "data of UNSTATED provenance",
    }
    nature = (verdict[kinds[0]] if len(kinds) == 1
              else "a MIX of " + ", ".join(verdict[k] for k in kinds))
    labels = ", ".join(f"{label} {count}" for label, count in
                       sorted(Counter(y.tolist()).items(),
                              key=lambda kv: SCHEMES[scheme].index(kv[0])))
    parts = [f"{len(y)} scored {recordings[0].epoch_length:g}-s epochs from "
             f"{len(recordings)} recording(s) of {len(set(groups.tolist()))} subject(s); "
             f"{scheme} labels ({labels})."]
    for kind, fs in rates.items():
        if fs:
            parts.append(f"{kind.upper()} at {fs:g} Hz, {n_times[kind]} samples per epoch.")
    if context:
        parts.append(f"Each row holds {2 * context + 1} consecutive epochs cut from the "
                     f"signal ({context} before and after the scored one), padded with "
                     f"{pad} at record edges.")
    parts.append(f"This is {nature}. Sources: " + "; ".join(
        f"{s} ({c} recording(s))" for s, c in sorted(sources.items())) + ".")
    return " ".join(parts)


def standardize_per_record(X: ArrayLike, records: ArrayLike, *,
                           fill: float | None = None, scale: str = "std") -> np.ndarray:
    """Centre and scale every record (night) on its own statistics.

    Heart rate differs more between people (resting rates of 50-80 beats/min) than
    between sleep stages of one night, so a model that reads absolute values does not
    carry over to a new subject. Each record's rows are centred on the record's median
    and divided by its standard deviation; no labels are used, so the same is done to
    a new night at prediction time (on the whole night).

    NaN policy: NaN entries (e.g. a night segment without beats in a feature table)
    are left out of the record's median and standard deviation and stay NaN in the
    output (``fill=None``, for models that accept missing values such as
    ``HistGradientBoostingClassifier``), or become ``fill`` after standardisation
    (``fill=0.0``: the record's median). A record with no finite value at all stays
    NaN (or ``fill``), with a logged warning. Infinity is refused.

    Parameters
    ----------
    X : array-like of shape (n_epochs, ...)
        Any per-epoch array, e.g. heart-rate rows before :func:`add_context`; may
        hold NaN.
    records : array-like of shape (n_epochs,)
        Record (night) of each row.
    fill : float or None, default=None
        Value of the NaN entries in the output; ``None`` keeps them NaN.
    scale : {"std", "iqr"}, default="std"
        Divisor: the record's standard deviation, or its interquartile range (robust
        to stretches of artefact; the night-level heart-rate models use it).

    Returns
    -------
    X_std : ndarray of float32, same shape as ``X``

    Raises
    ------
    ValueError
        If ``X`` and ``records`` differ in length, ``X`` holds infinity, or ``fill``
        is not ``None`` or a finite number.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[60.0], [70.0], [80.0], [50.0], [50.0], [56.0]])
    >>> out = standardize_per_record(X, ["a", "a", "a", "b", "b", "b"])
    >>> out.astype(float).ravel().round(2).tolist()
    [-1.22, 0.0, 1.22, 0.0, 0.0, 2.12]
    >>> X = np.array([[60.0], [np.nan], [80.0]])
    >>> standardize_per_record(X, ["a"] * 3).ravel().tolist()
    [-1.0, nan, 1.0]
    >>> standardize_per_record(X, ["a"] * 3, fill=0.0).ravel().tolist()
    [-1.0, 0.0, 1.0]
    """
    if fill is not None and (isinstance(fill, bool) or not isinstance(fill, numbers.Real)
                             or not np.isfinite(fill)):
        raise ValueError(f"fill must be None or a finite number, got {fill!r}.")
    if scale not in ("std", "iqr"):
        raise ValueError(f"scale must be 'std' or 'iqr', got {scale!r}.")
    X = np.asarray(X, dtype=np.float64)
    records = np.asarray(records)
    if X.ndim == 0 or len(X) != len(records):
        raise ValueError(
            f"X has {len(X) if X.ndim else 0} rows but records has {len(records)} entries."
        )
    if np.isinf(X).any():
        raise ValueError("X contains infinity (NaN is allowed: see the NaN policy).")
    out = np.full_like(X, np.nan)
    for record in np.unique(records):
        rows = records == record
        values = X[rows]
        finite = values[~np.isnan(values)]
        if finite.size == 0:
            logger.warning("Record '%s' has no finite value: its rows stay NaN%s.", record,
                           "" if fill is None else f" (filled with {fill:g})")
            continue
        spread = (finite.std() if scale == "std"
                  else np.subtract(*np.percentile(finite, [75, 25])))
        out[rows] = (values - np.median(finite)) / (spread if spread > 0 else 1.0)
    if fill is not None:
        out[np.isnan(out)] = fill
    return out.astype(np.float32)
