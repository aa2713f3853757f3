"""Helpers shared by the EDF-based readers (:mod:`._nsrr`, :mod:`._edf`).

- the EDF header check (truncated and non-EDF files are caught before MNE sees them),
- the choice of channels by name, with the aliases found across cohorts,
- reading one channel at its own sampling rate with MNE, scaled to mV / µV,
- the expansion of stage annotations (onset, duration, stage) to a 30-s epoch grid.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from sleepkd.stages import UNSCORED

logger = logging.getLogger(__name__)

_INSTALL_HINT = 'pip install "sleepkd[edf]"'

#: Physical units -> factor to volts (lower-case keys).
_VOLTS = {"v": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "nv": 1e-9}

#: Names tried, in order, for the ECG when ``ecg_channel`` is not given (compared
#: after :func:`_key`: upper case, no spaces/brackets, EKG read as ECG). SHHS: "ECG",
#: MESA: "EKG", CFS: "ECG1"/"ECG2", MrOS: "ECG L"/"ECG R", MASS: "ECG ECGI".
ECG_ALIASES = ("ECG", "ECG1", "ECGII", "ECGI", "ECG2", "ECGL", "ECGR", "ECGECGI",
               "ECGECGII", "ECGLEADII", "ECGLEADI")

#: EEG derivations tried, in order, when ``eeg_channel`` is not given (compared after
#: :func:`_eeg_key`: the "EEG" prefix dropped, mastoid M1/M2 read as A1/A2). Then a
#: channel named just "EEG" (SHHS: C4-A1), then the first channel named "EEG ...".
EEG_ALIASES = ("C4-A1", "C3-A2", "EEG", "EEG1")


# --------------------------------------------------------------------------- MNE
def import_mne():
    """``mne``, or an ImportError naming the extra to install."""
    try:
        import mne
    except ImportError as exc:
        raise ImportError(
            f"Reading EDF files needs the optional package mne: {_INSTALL_HINT}"
        ) from exc
    return mne


def as_path(path, what: str) -> Path:
    """A path that exists and is a file, else FileNotFoundError / ValueError."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{what} must be a path (str or path-like), got {path!r}.")
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a file.")
    return path


# ------------------------------------------------------------------- EDF header
@dataclass
class EdfHeader:
    """What the reader checks in an EDF/BDF header (parsed here, before MNE)."""

    labels: list[str]
    fs: dict[str, float]  # label -> native sampling rate (annotation channels: 0)
    n_records: int
    record_duration: float
    duration: float  # seconds of signal in the file


def read_edf_header(path: Path) -> EdfHeader:
    """Parse and check the fixed EDF header; catches non-EDF and truncated files.

    MNE reads a truncated EDF without complaint (it infers the number of records from
    the file size); a night cut short must not pass silently, so the size is checked
    here against what the header announces.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(256)
        if len(head) < 256:
            raise ValueError(f"{path} is not an EDF file: only {size} bytes (an EDF "
                             "header alone is at least 256).")
        bdf = head[:8] == b"\xffBIOSEMI"
        try:
            text = head.decode("ascii")
        except UnicodeDecodeError:
            text = None
        if not bdf and (text is None or text[:8].strip() != "0"):
            raise ValueError(f"{path} is not an EDF file (version field {head[:8]!r}, "
                             "expected '0').")
        try:
            header_bytes = int(head[184:192].decode("ascii").strip())
            n_records = int(head[236:244].decode("ascii").strip())
            record_duration = float(head[244:252].decode("ascii").strip())
            ns = int(head[252:256].decode("ascii").strip())
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"Corrupt EDF header in {path}: cannot read the number of "
                             f"records, record duration or signals ({exc}).") from exc
        if ns < 0 or header_bytes != 256 * (ns + 1):
            raise ValueError(f"Corrupt EDF header in {path}: {ns} signals need a "
                             f"{256 * (ns + 1)}-byte header, the file says {header_bytes}.")
        rest = handle.read(256 * ns)
    if len(rest) < 256 * ns:
        raise ValueError(f"{path} is truncated inside its header ({size} bytes, the "
                         f"header alone is {header_bytes}).")
    try:
        fields = rest.decode("latin-1")
        labels = [fields[16 * i:16 * (i + 1)].strip() for i in range(ns)]
        offset = ns * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)
        spr = [int(fields[offset + 8 * i:offset + 8 * (i + 1)].strip()) for i in range(ns)]
    except ValueError as exc:
        raise ValueError(f"Corrupt EDF header in {path}: bad samples-per-record "
                         f"field ({exc}).") from exc
    record_bytes = (3 if bdf else 2) * sum(spr)
    data_bytes = size - header_bytes
    if n_records == -1:  # recording not closed properly: infer, and say so
        n_records = data_bytes // record_bytes if record_bytes else 0
        logger.warning("%s: the header gives no number of data records (-1); "
                       "%d inferred from the file size.", path, n_records)
    expected = n_records * record_bytes
    if data_bytes < expected:
        complete = data_bytes // record_bytes if record_bytes else 0
        raise ValueError(
            f"{path} is truncated: the header announces {n_records} data records of "
            f"{record_duration:g} s ({expected} bytes of data), the file holds "
            f"{data_bytes} bytes ({complete} complete records, "
            f"{complete * record_duration:g} s)."
        )
    annotation = ("EDF Annotations", "BDF Annotations")
    fs = {label: (0.0 if label in annotation or record_duration <= 0
                  else n / record_duration) for label, n in zip(labels, spr)}
    return EdfHeader(labels=labels, fs=fs, n_records=n_records,
                     record_duration=record_duration,
                     duration=n_records * record_duration)


def open_raw(mne, path: Path, **kwargs):
    """``mne.io.read_raw_edf`` without preloading; errors name the file."""
    try:
        return mne.io.read_raw_edf(path, preload=False, verbose="error", **kwargs)
    except Exception as exc:  # MNE raises ValueError, RuntimeError, ... on bad files
        raise ValueError(f"Could not read EDF file {path}: {type(exc).__name__}: "
                         f"{exc}") from exc


# --------------------------------------------------------------------- channels
def _key(name: str) -> str:
    """Channel name for comparison: upper case, no spaces/brackets/dots, EKG = ECG."""
    return re.sub(r"[\s_().:/]+", "", str(name).upper()).replace("EKG", "ECG")


def _eeg_key(name: str) -> str:
    """EEG derivation for comparison: ``"EEG C4-M1"`` -> ``"C4-A1"``."""
    key = _key(name)
    if key.startswith("EEG") and len(key) > 3 and not key[3:].isdigit():
        key = key[3:].lstrip("-")
    return re.sub(r"(?<=[-])M([12])$", r"A\1", key)


def pick_channel(names: Sequence[str], wanted, kind: str, path: Path) -> str | None:
    """The channel of ``names`` to read as ``kind`` ("ECG" or "EEG").

    ``wanted`` is None (look for the usual names; None when there is none), a name,
    or a sequence of names tried in order. A name matches exactly, then ignoring case
    and spaces, then as an alias (EKG = ECG; "EEG C4-M1" = "C4-M1" = "C4-A1"). A
    requested channel that is not there is an error listing the file's channels.
    """
    names = [str(n) for n in names]
    key = _eeg_key if kind == "EEG" else _key
    if wanted is None:
        keys = [key(n) for n in names]
        for alias in (EEG_ALIASES if kind == "EEG" else ECG_ALIASES):
            if alias in keys:
                return names[keys.index(alias)]
        for name in names:  # first channel whose name says what it is
            upper = _key(name)
            if (upper.startswith("EEG") if kind == "EEG" else "ECG" in upper):
                return name
        return None
    candidates = ([wanted] if isinstance(wanted, str) else
                  list(wanted) if isinstance(wanted, (list, tuple)) else [])
    if not candidates or not all(isinstance(c, str) for c in candidates):
        raise ValueError(f"{kind.lower()}_channel must be a channel name or a list of "
                         f"names, got {wanted!r}.")
    for candidate in candidates:
        if candidate in names:
            return candidate
        for match in (lambda n: n.strip().lower() == candidate.strip().lower(),
                      lambda n: _key(n) == _key(candidate),
                      lambda n: key(n) == key(candidate)):
            found = [n for n in names if match(n)]
            if found:
                return found[0]
    shown = candidates[0] if len(candidates) == 1 else candidates
    raise ValueError(f"No {kind} channel {shown!r} in {path}; the file has the "
                     f"channels {names}.")


def read_channel(mne, path: Path, name: str, target: str, header: EdfHeader):
    """One channel at its native rate, scaled to ``target`` ("mV" or "uV").

    Returns ``(signal float32, fs, units)``: ``units`` is ``target`` after conversion,
    or the stored units (with a warning) when the file does not give a voltage.
    """
    raw = open_raw(mne, path, include=[name])
    if raw.ch_names != [name]:
        raise ValueError(f"Could not select channel {name!r} in {path} (MNE read "
                         f"{raw.ch_names}).")
    fs = float(raw.info["sfreq"])
    native = header.fs.get(name)
    if native and not np.isclose(native, fs):
        raise ValueError(f"Channel {name!r} of {path} is stored at {native:g} Hz but "
                         f"was read at {fs:g} Hz.")
    try:
        data = raw.get_data()[0]
    except Exception as exc:
        raise ValueError(f"Could not read channel {name!r} of {path}: "
                         f"{type(exc).__name__}: {exc}") from exc
    stored = (getattr(raw, "_orig_units", {}) or {}).get(name)
    unit_key = (stored or "").strip().lower()
    if unit_key in _VOLTS:  # MNE returns voltages in volts
        data = data / _VOLTS[target.lower()]
        units = target
    else:
        logger.warning("%s: channel %r is in %r, not a voltage; returned as stored "
                       "(expected %s).", path, name, stored, target)
        units = stored or None
    n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if n_bad:
        logger.warning("%s: %d NaN/infinite samples in channel %r; make_epochs drops "
                       "the epochs that contain them.", path, n_bad, name)
    return data.astype(np.float32), fs, units


def read_signals(mne, path: Path, header: EdfHeader, ecg_channel, eeg_channel):
    """ECG (mV) and one EEG channel (µV) of an EDF file, each at its own rate."""
    names = [n for n, f in header.fs.items() if f > 0]
    ecg_name = pick_channel(names, ecg_channel, "ECG", path)
    eeg_name = pick_channel(names, eeg_channel, "EEG", path)
    if ecg_name is None and eeg_name is None:
        raise ValueError(f"No ECG or EEG channel found in {path} by name; the file has "
                         f"the channels {names}. Pass ecg_channel= / eeg_channel=.")
    out = {"ecg": None, "fs_ecg": None, "eeg": None, "fs_eeg": None,
           "ecg_channel": ecg_name, "eeg_channel": eeg_name, "units": {}}
    if ecg_name is None:
        logger.info("%s: no ECG channel found by name (channels %s); ecg=None.",
                    path, names)
    else:
        out["ecg"], out["fs_ecg"], out["units"][ecg_name] = read_channel(
            mne, path, ecg_name, "mV", header)
    if eeg_name is None:
        logger.info("%s: no EEG channel found by name (channels %s); eeg=None.",
                    path, names)
    else:
        eeg, out["fs_eeg"], out["units"][eeg_name] = read_channel(
            mne, path, eeg_name, "uV", header)
        out["eeg"] = eeg[np.newaxis, :]
    return out


# ----------------------------------------------------------------------- stages
def intervals_to_epochs(onsets, durations, stages, raw_labels, *, epoch_length: float,
                        signal_duration: float, file: Path, signal_file: Path,
                        origin: float | None = None) -> dict:
    """Expand stage annotations ``[onset, onset + duration)`` to one label per epoch.

    Annotations must sit on the grid ``origin + k * epoch_length`` (``origin``: the
    first annotation's onset unless given) and last a whole number of epochs (an
    annotation of duration 0 covers one epoch). Epochs no annotation covers are
    :data:`UNSCORED` (gaps); unscored epochs past the end of the signal are dropped;
    scored ones are an error, as are two different stages for one epoch.

    Returns a dict with ``stages``, ``epoch_onsets``, ``raw`` (the label each epoch
    came from; ``"gap"`` for gaps), ``n_gap_epochs`` and ``n_trimmed_epochs``.
    """
    onsets = np.asarray(onsets, dtype=np.float64)
    durations = np.asarray(durations, dtype=np.float64)
    if onsets.size == 0:
        raise ValueError(f"{file} holds no sleep-stage annotations.")
    if not np.all(np.isfinite(onsets)):
        raise ValueError(f"{file}: {int(np.sum(~np.isfinite(onsets)))} stage "
                         "annotation(s) without a valid onset.")
    order = np.argsort(onsets, kind="stable")
    onsets, durations = onsets[order], durations[order]
    stages = [stages[i] for i in order]
    raw_labels = [raw_labels[i] for i in order]
    tol = min(0.1, 0.01 * epoch_length)
    origin = float(onsets[0]) if origin is None else float(origin)
    start = (onsets - origin) / epoch_length
    first = np.rint(start).astype(np.int64)
    off_grid = np.flatnonzero(np.abs(start - first) * epoch_length > tol)
    if off_grid.size:
        i = off_grid[0]
        raise ValueError(
            f"{file}: {off_grid.size} stage annotation(s) are not on the "
            f"{epoch_length:g}-s epoch grid starting at {origin:g} s (first: "
            f"{raw_labels[i]!r} at {onsets[i]:g} s)."
        )
    durations = np.where(np.isfinite(durations) & (durations > 0), durations,
                         epoch_length)
    count = np.rint(durations / epoch_length).astype(np.int64)
    bad = np.flatnonzero(np.abs(durations - count * epoch_length) > tol)
    if bad.size:
        i = bad[0]
        raise ValueError(
            f"{file}: {bad.size} stage annotation(s) do not last a whole number of "
            f"{epoch_length:g}-s epochs (first: {raw_labels[i]!r} at {onsets[i]:g} s "
            f"lasting {durations[i]:g} s)."
        )
    n_epochs = int(np.max(first + count))
    labels = np.full(n_epochs, UNSCORED, dtype="<U2")
    raw = np.full(n_epochs, "gap", dtype=object)
    filled = np.zeros(n_epochs, dtype=bool)
    for k, n, stage, label, onset in zip(first, count, stages, raw_labels, onsets):
        span = slice(int(k), int(k + n))
        clash = filled[span] & (labels[span] != stage)
        if np.any(clash):
            j = int(k + np.flatnonzero(clash)[0])
            raise ValueError(
                f"{file}: two different stages for the epoch at "
                f"{origin + j * epoch_length:g} s ({raw[j]!r} and {label!r}, the "
                f"latter from the annotation at {onset:g} s)."
            )
        labels[span], raw[span], filled[span] = stage, label, True
    epoch_onsets = origin + np.arange(n_epochs) * epoch_length
    n_gap = int(np.count_nonzero(~filled))
    # epochs past the end of the signal: drop unscored ones, refuse scored ones
    beyond = epoch_onsets + epoch_length > signal_duration + 1e-3
    if np.any(beyond & (labels != UNSCORED)):
        last = int(np.flatnonzero(beyond & (labels != UNSCORED))[-1])
        raise ValueError(
            f"The stages of {file} run to {epoch_onsets[last] + epoch_length:g} s "
            f"({int(np.count_nonzero(beyond & (labels != UNSCORED)))} scored epoch(s) "
            f"past the end), longer than the signal of {signal_file} "
            f"({signal_duration:g} s). Wrong file pair?"
        )
    n_trimmed = int(np.count_nonzero(beyond))
    if n_trimmed:
        logger.info("%s: %d unscored epoch(s) past the end of the signal (%g s) "
                    "dropped.", file, n_trimmed, signal_duration)
    keep = ~beyond
    if not np.any(keep):
        raise ValueError(f"{file}: no epoch of the hypnogram lies within the signal of "
                         f"{signal_file} ({signal_duration:g} s).")
    if n_gap:
        logger.info("%s: %d epoch(s) without a stage annotation (gaps) marked "
                    "unscored.", file, n_gap)
    return {"stages": labels[keep], "epoch_onsets": epoch_onsets[keep],
            "raw": raw[keep], "n_gap_epochs": n_gap, "n_trimmed_epochs": n_trimmed}


def unscored_counts(stages: np.ndarray, raw: np.ndarray) -> dict:
    """How many epochs are unscored, by the raw code or label they came from."""
    mask = np.asarray(stages) == UNSCORED
    return dict(sorted(Counter(str(r) for r in np.asarray(raw)[mask]).items()))
