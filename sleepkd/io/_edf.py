"""Reader for EDF / EDF+ recordings with a hypnogram: Sleep-EDF, MASS, or a CSV/TSV.

The hypnogram can be

- the EDF+ annotations of the recording itself,
- a separate EDF+ annotation file: Sleep-EDF's ``*-Hypnogram.edf`` ("Sleep stage W",
  "Sleep stage 1" .. "4", "Sleep stage R", "Sleep stage ?", "Movement time", each
  with an onset and a duration that may span several epochs) or MASS's
  ``* Base.edf`` (the same labels, 20-s or 30-s epochs, first onset not at 0),
- a CSV/TSV table: columns ``onset``, ``duration`` (optional), ``stage``; or one stage
  per line at ``epoch_length`` seconds from the start of the EDF.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sleepkd.datasets._recording import EPOCH_SECONDS, Recording
from sleepkd.io import _common
from sleepkd.stages import UNSCORED

logger = logging.getLogger(__name__)

#: Stage labels of hypnograms (lower case, after dropping a "sleep stage " prefix)
#: -> AASM label; R&K 3 and 4 are N3, movement time and "?" are unscored.
EDF_STAGES = {
    "w": "W", "wake": "W", "0": None,
    "1": "N1", "n1": "N1", "s1": "N1",
    "2": "N2", "n2": "N2", "s2": "N2",
    "3": "N3", "n3": "N3", "s3": "N3",
    "4": "N3", "n4": "N3", "s4": "N3",
    "r": "R", "rem": "R",
    "?": UNSCORED, "u": UNSCORED, "unscored": UNSCORED, "unknown": UNSCORED,
    "mt": UNSCORED, "m": UNSCORED, "movement": UNSCORED, "movement time": UNSCORED,
    "artifact": UNSCORED, "artefact": UNSCORED,
}
# "0" is listed as None: integer codes differ between tools (YASA 4 = REM,
# Compumedics 4 = N3, 5 = REM); map them with stage_map= instead of guessing.

_ONSET = ("onset", "start", "onset_s", "start_s", "begin", "time")
_DURATION = ("duration", "duration_s", "dur")
_STAGE = ("stage", "stages", "sleep_stage", "label", "description", "annotation",
          "hypnogram", "score")


def load_edf(
    edf: str | os.PathLike,
    hypnogram: str | os.PathLike | None = None,
    *,
    ecg_channel: str | Sequence[str] | None = None,
    eeg_channel: str | Sequence[str] | None = None,
    epoch_length: float | None = None,
    stage_map: Mapping[str, str] | None = None,
    name: str | None = None,
    subject: str | None = None,
) -> Recording:
    """Read an EDF / EDF+ night and its hypnogram (Sleep-EDF, MASS, CSV/TSV).

    Parameters
    ----------
    edf : str or path-like
        The EDF (or EDF+) file with the signals.
    hypnogram : str or path-like, optional
        The stages: an EDF+ annotation file (``.edf``; Sleep-EDF ``*-Hypnogram.edf``,
        MASS ``* Base.edf``) or a table (``.csv``, ``.tsv``, ``.txt``). ``None``
        reads the EDF+ annotations of ``edf`` itself.

        - EDF+ annotations: ``"Sleep stage W"``, ``"Sleep stage 1"`` .. ``"4"``,
          ``"Sleep stage R"``, ``"Sleep stage N1"`` .. ``"N3"``, ``"Sleep stage ?"``
          and ``"Movement time"``; other annotations (arousals, lights off, ...) are
          ignored and counted in ``info["other_annotations"]``. Onsets count from
          the start of the hypnogram file; when its header start time differs from
          the EDF's, the onsets are shifted to the EDF's clock.
        - Tables: columns ``onset`` (or ``start``, seconds from the start of the EDF),
          ``duration`` (optional; one epoch when absent) and ``stage`` (or
          ``label`` / ``description``); or a single column (with or without
          header) of one stage per epoch from time 0. Tab, comma or semicolon
          separated.

        An annotation lasting several epochs covers each of them; epochs that no
        annotation covers (gaps) are unscored. Stage labels: AASM (``W N1 N2 N3 R``),
        R&K (``W 1 2 3 4 R MT``), ``"Sleep stage X"`` and ``"?"`` / ``MT``
        (unscored). Integer codes such as ``0`` are ambiguous between tools: pass
        ``stage_map``.
    ecg_channel, eeg_channel : str or list of str, optional
        Channel to read as the ECG (stored in mV) / EEG (µV); see
        :func:`~sleepkd.io.load_nsrr` for the matching rules and the default names.
        Sleep-EDF has no ECG: ``ecg=None`` then, and ``EEG Fpz-Cz`` is the EEG.
    epoch_length : float, optional
        Epoch duration in seconds. ``None``: 30 s when every stage annotation is a
        multiple of 30 s on a 30-s grid, else 20 s when they fit a 20-s grid (MASS
        SS1 and SS3), else an error; 30 s for one-stage-per-line tables.
    stage_map : dict, optional
        Hypnogram label -> stage label (e.g. ``{"0": "W", "1": "N1", "2": "N2",
        "3": "N3", "4": "R"}`` for YASA's integer codes), applied before the
        default mapping; map to ``"?"`` for unscored.
    name : str, optional
        Record name; default: the EDF file name without extension.
    subject : str, optional
        Subject identifier (the CV group); default: ``name``.

    Returns
    -------
    recording : Recording
        ``stages`` per epoch, ``epoch_onsets`` (from the first stage annotation, on
        its grid), ``ecg`` / ``eeg`` at their own sampling rates, ``beat_times=None``,
        ``source="real (EDF + hypnogram)"``, and ``info`` with ``hypnogram_format``
        (``"edf+"`` or ``"table"``), ``stage_labels`` (the raw label of each epoch,
        ``"gap"`` for gaps), ``n_unscored``, ``unscored_labels`` (count per raw
        label), ``n_gap_epochs``, ``n_trimmed_epochs`` (unscored epochs past the end
        of the signal, dropped), ``other_annotations``, ``channels``,
        ``ecg_channel``, ``eeg_channel``, ``units``, ``duration`` and ``files``.

    Raises
    ------
    ImportError
        If MNE is missing (``pip install "sleepkd[edf]"``).
    FileNotFoundError
        If a file does not exist.
    ValueError
        With the file named: a requested channel missing (the message lists the
        channels), a truncated or corrupt EDF, no stage annotations, unknown stage
        labels, annotations off the epoch grid or not a whole number of epochs,
        conflicting stages for one epoch, stages longer than the signal.

    Examples
    --------
    >>> from sleepkd.io import load_edf
    >>> rec = load_edf("SC4001E0-PSG.edf",
    ...                "SC4001EC-Hypnogram.edf")  # doctest: +SKIP
    >>> rec.ecg is None, rec.eeg_channels  # doctest: +SKIP
    (True, ['EEG Fpz-Cz'])
    """
    mne = _common.import_mne()
    edf = _common.as_path(edf, "EDF file")
    if epoch_length is not None:
        if (isinstance(epoch_length, bool) or not isinstance(epoch_length, (int, float))
                or not np.isfinite(epoch_length) or epoch_length <= 0):
            raise ValueError(f"epoch_length must be a positive number of seconds, got "
                             f"{epoch_length!r}.")
        epoch_length = float(epoch_length)
    if stage_map is not None and not isinstance(stage_map, Mapping):
        raise ValueError(f"stage_map must be a dict (label -> stage), got {stage_map!r}.")
    stage_map = {str(k).strip(): str(v) for k, v in (stage_map or {}).items()}
    header = _common.read_edf_header(edf)
    other: dict[str, int] = {}
    if hypnogram is None:
        stage_file, fmt = edf, "edf+"
        raw = _common.open_raw(mne, edf)
        onsets, durations, labels, other = _stage_annotations(raw.annotations, edf,
                                                              stage_map)
        origin = None
    else:
        stage_file = _common.as_path(hypnogram, "Hypnogram file")
        if stage_file.suffix.lower() in (".edf", ".edf+", ".bdf"):
            fmt = "edf+"
            _common.read_edf_header(stage_file)
            try:
                annotations = mne.read_annotations(stage_file)
            except Exception as exc:
                raise ValueError(f"Could not read the annotations of {stage_file}: "
                                 f"{type(exc).__name__}: {exc}") from exc
            onsets, durations, labels, other = _stage_annotations(
                annotations, stage_file, stage_map)
            shift = _start_offset(stage_file, edf)
            if shift:
                logger.info("%s starts %g s after %s; onsets shifted to the EDF's "
                            "clock.", stage_file, shift, edf)
                onsets = onsets + shift
            origin = None
        else:
            fmt = "table"
            onsets, durations, labels, per_line = _read_table(stage_file, stage_map)
            origin = 0.0 if per_line else None
            if per_line:
                length = EPOCH_SECONDS if epoch_length is None else epoch_length
                onsets = np.arange(len(labels)) * length
                durations = np.full(len(labels), length)
    stages = [label[1] for label in labels]
    raw_labels = [label[0] for label in labels]
    if epoch_length is None:
        epoch_length = _infer_epoch_length(onsets, durations, stage_file)
    grid = _common.intervals_to_epochs(
        onsets, durations, stages, raw_labels, epoch_length=epoch_length,
        signal_duration=header.duration, file=stage_file, signal_file=edf,
        origin=origin)
    signals = _common.read_signals(mne, edf, header, ecg_channel, eeg_channel)
    unscored = _common.unscored_counts(grid["stages"], grid["raw"])
    name = edf.stem if name is None else str(name)
    files = [str(edf)] if stage_file == edf else [str(edf), str(stage_file)]
    info = {
        "hypnogram_format": fmt,
        "stage_labels": grid["raw"].astype(str),
        "n_unscored": int(sum(unscored.values())),
        "unscored_labels": unscored,
        "n_gap_epochs": grid["n_gap_epochs"],
        "n_trimmed_epochs": grid["n_trimmed_epochs"],
        "other_annotations": other,
        "channels": {k: v for k, v in header.fs.items() if v > 0},
        "ecg_channel": signals["ecg_channel"],
        "eeg_channel": signals["eeg_channel"],
        "units": signals["units"],
        "duration": header.duration,
        "files": files,
    }
    logger.info("Read %s: %d epochs of %g s (%d unscored), ECG %s, EEG %s.", edf,
                len(grid["stages"]), epoch_length, info["n_unscored"],
                signals["ecg_channel"], signals["eeg_channel"])
    return Recording(
        name=name, subject=name if subject is None else str(subject),
        ecg=signals["ecg"], fs_ecg=signals["fs_ecg"],
        eeg=signals["eeg"], fs_eeg=signals["fs_eeg"],
        eeg_channels=[] if signals["eeg_channel"] is None else [signals["eeg_channel"]],
        beat_times=None, stages=grid["stages"], epoch_onsets=grid["epoch_onsets"],
        epoch_length=epoch_length, source="real (EDF + hypnogram)", info=info,
    )


# ------------------------------------------------------------------------ labels
def _map_label(label: str, stage_map: dict, *, annotation: bool):
    """``(raw, stage)``; ``None`` for a non-stage EDF annotation; KeyError if unknown."""
    text = str(label).strip()
    if text in stage_map:
        target = stage_map[text].strip()
        mapped = _map_label(target, {}, annotation=False)
        return text, mapped[1]
    key = re.sub(r"\s+", " ", text.lower())
    is_stage = key.startswith("sleep stage") or key == "movement time"
    if annotation and not is_stage:
        return None
    key = re.sub(r"^sleep stage\s*", "", key)
    stage = EDF_STAGES.get(key)
    if stage is None:
        raise KeyError(text)
    return text, stage


def _stage_annotations(annotations, file: Path, stage_map: dict):
    onsets, durations, labels, other, unknown = [], [], [], {}, set()
    for onset, duration, description in zip(annotations.onset, annotations.duration,
                                             annotations.description):
        try:
            mapped = _map_label(description, stage_map, annotation=True)
        except KeyError:
            unknown.add(str(description))
            continue
        if mapped is None:
            other[str(description)] = other.get(str(description), 0) + 1
            continue
        onsets.append(float(onset))
        durations.append(float(duration))
        labels.append(mapped)
    if unknown:
        raise ValueError(f"Unknown sleep-stage annotation(s) {sorted(unknown)} in "
                         f"{file}; known: 'Sleep stage W/1/2/3/4/R/N1/N2/N3/?', "
                         "'Movement time' (or pass stage_map=).")
    if not labels:
        raise ValueError(f"No sleep-stage annotation in {file} (no 'Sleep stage ...' "
                         f"annotation; found {sorted(other) or 'none'}).")
    return np.asarray(onsets), np.asarray(durations), labels, dict(sorted(other.items()))


def _read_table(path: Path, stage_map: dict):
    """``(onsets, durations, [(raw, stage)], per_line)`` of a CSV/TSV hypnogram."""
    import pandas as pd

    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"Hypnogram {path} is not a text file ({exc}).") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"Hypnogram {path} is empty.")
    first = lines[0]
    sep = ("\t" if "\t" in first or path.suffix.lower() == ".tsv" else
           "," if "," in first else ";" if ";" in first else "\t")
    columns = [c.strip().lower() for c in first.split(sep)]
    has_header = any(c in _ONSET + _DURATION + _STAGE for c in columns)
    if not has_header and len(columns) > 1:
        raise ValueError(
            f"Hypnogram {path} has columns {columns}; expected 'onset', 'duration', "
            "'stage', or a single column of stages.")
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, header=0 if has_header else None,
                            skip_blank_lines=True, encoding="utf-8-sig")
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"Could not read hypnogram {path}: {exc}") from exc
    table.columns = [str(c).strip().lower() for c in table.columns]
    onset = next((c for c in _ONSET if c in table.columns), None)
    duration = next((c for c in _DURATION if c in table.columns), None)
    stage = next((c for c in _STAGE if c in table.columns), None)
    per_line = onset is None
    if per_line:
        if stage is None:
            if table.shape[1] != 1:
                raise ValueError(
                    f"Hypnogram {path} has columns {list(table.columns)}; expected "
                    "'onset', 'duration', 'stage', or a single column of stages.")
            stage = table.columns[0]
        if duration is not None:
            raise ValueError(f"Hypnogram {path} has a 'duration' column but no "
                             "'onset' column.")
    elif stage is None:
        raise ValueError(f"Hypnogram {path} has an onset column but no stage column "
                         f"(one of {list(_STAGE)}); columns: {list(table.columns)}.")
    values = table[stage].fillna("").astype(str).str.strip().tolist()
    labels, unknown = [], []
    for value in values:
        try:
            labels.append(_map_label(value, stage_map, annotation=False))
        except KeyError:
            unknown.append(value)
    if unknown:
        raise ValueError(
            f"Unknown sleep-stage label(s) {sorted(set(unknown))} in {path}; known: "
            "W N1 N2 N3 R, R&K 1 2 3 4 MT, '?', 'Sleep stage X'. Integer codes are "
            "ambiguous between tools: pass stage_map= (e.g. {'0': 'W', ...}).")
    if not labels:
        raise ValueError(f"Hypnogram {path} holds no stages.")
    if per_line:
        return None, None, labels, True

    def numbers(column: str) -> np.ndarray:
        parsed = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64)
        bad = np.flatnonzero(~np.isfinite(parsed))
        if bad.size:
            raise ValueError(f"Column {column!r} of hypnogram {path} has "
                             f"{bad.size} value(s) that are not numbers of seconds "
                             f"(first in data row {bad[0] + 1}: "
                             f"{table[column].iloc[bad[0]]!r}).")
        return parsed

    onsets = numbers(onset)
    durations = numbers(duration) if duration else np.zeros(len(onsets))
    return onsets, durations, labels, False


def _infer_epoch_length(onsets, durations, file: Path) -> float:
    """30 s if the stages fit a 30-s grid, else 20 s (MASS), else an error."""
    onsets = np.asarray(onsets, dtype=np.float64)
    durations = np.asarray(durations, dtype=np.float64)
    spans = np.concatenate([durations[durations > 0], np.diff(np.sort(onsets))])
    spans = spans[spans > 0]
    for length in (EPOCH_SECONDS, 20.0):
        tol = min(0.1, 0.01 * length)
        if np.all(np.abs(spans - np.rint(spans / length) * length) <= tol):
            return length
    raise ValueError(f"The stage annotations of {file} fit neither a 30-s nor a 20-s "
                     "epoch grid; pass epoch_length=.")


def _start_offset(hypnogram: Path, edf: Path) -> float:
    """Seconds from the EDF's start to the hypnogram file's start (header clock)."""
    starts = [_start_time(p) for p in (hypnogram, edf)]
    if None in starts:
        return 0.0
    return (starts[0] - starts[1]).total_seconds()


def _start_time(path: Path) -> datetime.datetime | None:
    with open(path, "rb") as handle:
        head = handle.read(184)
    try:
        day, month, year = (int(x) for x in head[168:176].decode("ascii").split("."))
        hour, minute, second = (int(x) for x in head[176:184].decode("ascii").split("."))
        year += 1900 if year >= 85 else 2000  # the EDF clipping date
        return datetime.datetime(year, month, day, hour, minute, second)
    except (UnicodeDecodeError, ValueError):
        return None
