"""Reader for the MIT-BIH Polysomnographic Database (PhysioNet ``slpdb``).

The package ships the beat and stage annotations of 14 slpdb records (no waveforms);
:func:`load_slpdb` reads them, and the ECG / EEG waveforms as well when the ``.dat``
signal files of the full PhysioNet download sit next to them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from sleepkd.datasets._data import slpdb_path
from sleepkd.datasets._recording import EPOCH_SECONDS, Recording
from sleepkd.stages import to_scheme

logger = logging.getLogger(__name__)

#: Provenance string of every recording read by :func:`load_slpdb`.
SLPDB_SOURCE = "real (PhysioNet slpdb)"

#: Records made by the same person: record -> subject.
_SAME_SUBJECT = {"slp01a": "slp01", "slp01b": "slp01", "slp02a": "slp02", "slp02b": "slp02"}

#: Meaning of the event tokens that follow the stage in the ``st`` aux notes.
SLPDB_EVENTS = {
    "H": "hypopnea",
    "HA": "hypopnea with arousal",
    "OA": "obstructive apnea with arousal",
    "X": "obstructive apnea",
    "CA": "central apnea",
    "CAA": "central apnea with arousal",
    "L": "leg movements",
    "LA": "leg movements with arousal",
    "A": "arousal",
}

#: R&K stage tokens found first in the ``st`` aux notes.
_RK_STAGES = frozenset({"W", "1", "2", "3", "4", "R", "MT", "M"})

#: WFDB beat annotation symbols (everything else in a beat file is a non-beat note).
_BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")

#: Physical units -> factor to volts (lower-case keys; WFDB's default unit is mV).
_VOLTS = {"v": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "nv": 1e-9}

_INSTALL_HINT = 'pip install "sleepkd[wfdb]"'


def load_slpdb(
    path: str | os.PathLike | None = None,
    records: str | Iterable[str] | None = None,
) -> list[Recording]:
    """Read records of the MIT-BIH Polysomnographic Database (PhysioNet slpdb).

    For each record the header (``.hea``), the reviewed beats (``.ecg``, annotator
    ``ecg``) and the sleep stages (``.st``, annotator ``st``) are read. When the signal
    file (``.dat``) is present too, the ECG (in mV) and the EEG channel (in µV) are
    read as well; otherwise ``ecg`` and ``eeg`` are ``None`` (the copy shipped with
    sleepkd has no ``.dat`` files).

    Parameters
    ----------
    path : str or path-like, optional
        Folder with the WFDB files. ``None`` reads the annotations shipped with sleepkd
        (:func:`slpdb_path`).
    records : str or iterable of str, optional
        Record names (e.g. ``["slp01a", "slp04"]``). ``None`` reads every record with a
        ``.hea`` file in ``path``, in sorted order.

    Returns
    -------
    recordings : list of Recording
        One per record, with

        - ``stages``: AASM labels per 30-s epoch (R&K 3 and 4 -> ``N3``; movement time
          ``MT`` / ``M`` -> :data:`sleepkd.stages.UNSCORED`);
        - ``epoch_onsets``: annotation sample / 250 Hz (the first annotation of most
          records sits at sample 1, i.e. 4 ms);
        - ``beat_times``: every annotated beat, in seconds (all beat types are kept;
          ``info["beat_types"]`` counts them);
        - ``subject``: ``"slp01"`` for slp01a/b, ``"slp02"`` for slp02a/b, else the
          record name;
        - ``eeg_channels``: the EEG derivation named in the header (e.g. ``"C4-A1"``),
          also when the waveform is absent;
        - ``info``: header facts (``fs``, ``sig_len``, ``signal_names``, ``units``,
          ``age``, ``sex``, ``weight_kg``, ...), ``rk_stages`` (the raw R&K tokens),
          ``events`` (the event tokens of each epoch, e.g. ``("OA", "X")``),
          ``event_counts``, ``beat_types``, ``n_non_normal_beats``,
          ``scoring_start``, ``epoch_gaps`` and ``has_waveforms``.

    Raises
    ------
    ImportError
        If the optional ``wfdb`` package is missing (``pip install "sleepkd[wfdb]"``).
    FileNotFoundError
        If ``path`` or a record's ``.hea`` / ``.ecg`` / ``.st`` file does not exist.
    ValueError
        If a file cannot be read or holds inconsistent content (the message names the
        file), e.g. an unknown stage token or annotations beyond the record length.

    Notes
    -----
    Data: PhysioNet slpdb 1.0.0, ODC-By 1.0; cite Ichimaru & Moody (1999) and
    Goldberger et al. (2000). Consecutive stage annotations are checked to be 30 s
    (7500 samples) apart, with one sample of tolerance; larger steps are logged and
    listed in ``info["epoch_gaps"]``.

    Examples
    --------
    >>> from sleepkd.datasets import load_slpdb
    >>> rec = load_slpdb(records="slp01a")[0]
    >>> rec.subject, rec.n_epochs, len(rec.beat_times), rec.ecg is None
    ('slp01', 240, 7806, True)
    """
    wfdb = _import_wfdb()
    folder = slpdb_path() if path is None else Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"slpdb folder not found: {folder}")
    if records is None:
        names = sorted(p.stem for p in folder.glob("*.hea"))
        if not names:
            raise FileNotFoundError(f"No WFDB header (.hea) file in {folder}.")
    elif isinstance(records, str):
        names = [records]
    else:
        names = list(records)
        if not names:
            raise ValueError("records is empty; pass None to read every record.")
        if not all(isinstance(name, str) for name in names):
            raise ValueError(f"records must be record names (str), got {names!r}.")

    recordings = [_read_record(wfdb, folder, name) for name in names]
    missing = [rec.name for rec in recordings if not rec.info["has_waveforms"]]
    if missing:
        logger.info(
            "No .dat signal file for %d record(s) (%s): ECG and EEG waveforms are not "
            "available (ecg=None, eeg=None); beats and stages were read. Download the "
            "full database from https://physionet.org/content/slpdb/1.0.0/ for them.",
            len(missing), ", ".join(missing),
        )
    return recordings


# --------------------------------------------------------------------------- helpers
def _import_wfdb():
    try:
        import wfdb
    except ImportError as exc:
        raise ImportError(
            f"Reading WFDB files needs the optional 'wfdb' package: {_INSTALL_HINT}"
        ) from exc
    return wfdb


@dataclass
class _Header:
    """The parts of a WFDB header that the reader needs."""

    record: str
    n_sig: int
    fs: float
    sig_len: int
    base_time: str | None
    base_date: str | None
    file_names: list[str]
    signal_names: list[str]
    units: list[str]
    comments: list[str]


# record line: name n_sig [fs[/counter_freq[(base_counter)]] [sig_len [time [date]]]]
_RECORD_LINE = re.compile(
    r"^(?P<name>[^\s/]+)(?:/(?P<n_seg>\d+))?\s+(?P<n_sig>\d+)"
    r"(?:\s+(?P<fs>[0-9.eE+-]+)(?:/\S+)?"
    r"(?:\s+(?P<sig_len>\d+)(?:\s+(?P<time>\S+)(?:\s+(?P<date>\S+))?)?)?)?\s*$"
)
# gain field: gain[(baseline)][/units]
_GAIN_FIELD = re.compile(r"^[0-9.eE+-]+(?:\([+-]?\d+\))?(?:/(?P<units>\S+))?$")


def _read_header(path: Path) -> _Header:
    """Parse a single-segment WFDB header.

    Written here rather than taken from ``wfdb.rdheader`` because PhysioNet's slpdb
    headers are not all parseable by it (slp32 has a two-digit year, which wfdb 4.x
    rejects); missing units default to WFDB's ``mV``.
    """
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise ValueError(f"Corrupt WFDB header {path}: not a text file ({exc}).") from exc
    lines = [line.strip() for line in text.splitlines()]
    comments = [line.lstrip("#").strip() for line in lines if line.startswith("#")]
    lines = [line for line in lines if line and not line.startswith("#")]
    match = _RECORD_LINE.match(lines[0]) if lines else None
    if match is None:
        raise ValueError(f"Corrupt WFDB header {path}: cannot parse the record line "
                         f"{lines[0] if lines else ''!r}.")
    if match["n_seg"]:
        raise ValueError(f"Multi-segment WFDB records are not supported ({path}).")
    n_sig = int(match["n_sig"])
    try:
        fs = float(match["fs"]) if match["fs"] else 250.0
    except ValueError as exc:
        raise ValueError(f"Corrupt WFDB header {path}: bad sampling rate.") from exc
    if not np.isfinite(fs) or fs <= 0:
        raise ValueError(f"Corrupt WFDB header {path}: sampling rate {fs} is not positive.")
    signal_lines = lines[1:]
    if len(signal_lines) != n_sig:
        raise ValueError(f"Corrupt WFDB header {path}: {n_sig} signals announced, "
                         f"{len(signal_lines)} signal lines found.")
    file_names, names, units = [], [], []
    for i, line in enumerate(signal_lines):
        fields = line.split(maxsplit=8)
        gain = _GAIN_FIELD.match(fields[2]) if len(fields) > 2 else None
        if len(fields) > 2 and gain is None:
            raise ValueError(f"Corrupt WFDB header {path}: bad gain field in signal line "
                             f"{i + 1}: {line!r}.")
        file_names.append(fields[0])
        units.append((gain["units"] if gain and gain["units"] else "mV"))
        names.append(fields[8] if len(fields) > 8 else f"signal {i}")
    return _Header(
        record=match["name"], n_sig=n_sig, fs=fs,
        sig_len=int(match["sig_len"]) if match["sig_len"] else 0,
        base_time=match["time"], base_date=match["date"],
        file_names=file_names, signal_names=names, units=units, comments=comments,
    )


def _parse_subject_comment(comments: list[str]) -> dict:
    """slpdb comment ``'44 M 89 32-01-89'``: age, sex, weight (kg), study id; x = unknown."""
    out = {"age": None, "sex": None, "weight_kg": None, "study_id": None}
    if not comments:
        return out
    tokens = comments[0].split()
    if len(tokens) >= 3:
        def number(token: str) -> float | None:
            try:
                return float(token)
            except ValueError:
                return None

        age, weight = number(tokens[0]), number(tokens[2])
        out["age"] = None if age is None else int(age)
        out["sex"] = tokens[1] if tokens[1].upper() in {"M", "F"} else None
        out["weight_kg"] = weight
        out["study_id"] = tokens[3] if len(tokens) > 3 else None
    return out


def _read_annotations(wfdb, folder: Path, name: str, extension: str):
    file = folder / f"{name}.{extension}"
    if not file.is_file():
        raise FileNotFoundError(f"Missing WFDB annotation file {file}.")
    with open(file, "rb") as handle:
        handle.seek(max(0, file.stat().st_size - 2))
        if handle.read() != b"\x00\x00":  # every WFDB annotation file ends so
            raise ValueError(f"Corrupt WFDB annotation file {file}: no end-of-file "
                             "marker (truncated, or not a WFDB annotation file).")
    try:
        ann = wfdb.rdann(str(folder / name), extension)
    except Exception as exc:  # wfdb raises many kinds on a corrupt file
        raise ValueError(f"Cannot read WFDB annotation file {file}: "
                         f"{type(exc).__name__}: {exc}") from exc
    if len(ann.sample) == 0:
        raise ValueError(f"WFDB annotation file {file} holds no annotations.")
    return file, ann


def _check_samples(samples: np.ndarray, file: Path, sig_len: int) -> None:
    if np.any(np.diff(samples) < 0):
        raise ValueError(f"Annotations in {file} are not in time order (corrupt file?).")
    if samples[0] < 0 or (sig_len and samples[-1] > sig_len):
        raise ValueError(
            f"Annotations in {file} span samples {samples[0]}..{samples[-1]}, outside "
            f"the record length of {sig_len} samples (corrupt file?)."
        )


def _read_record(wfdb, folder: Path, name: str) -> Recording:
    header_file = folder / f"{name}.hea"
    if not header_file.is_file():
        raise FileNotFoundError(f"Missing WFDB header file {header_file} "
                                f"(record {name!r} not found in {folder}).")
    header = _read_header(header_file)
    fs = header.fs

    # beats ---------------------------------------------------------------
    beat_file, beats = _read_annotations(wfdb, folder, name, "ecg")
    beat_samples = np.asarray(beats.sample, dtype=np.int64)
    symbols = np.asarray(beats.symbol, dtype=object)
    is_beat = np.isin(symbols, list(_BEAT_SYMBOLS))
    beat_samples, symbols_kept = beat_samples[is_beat], symbols[is_beat]
    if np.count_nonzero(is_beat) <= len(is_beat) / 2:  # real files: >99 % beats
        raise ValueError(f"{beat_file} holds {np.count_nonzero(is_beat)} beat and "
                         f"{np.count_nonzero(~is_beat)} other annotations: not a beat "
                         "annotation file, or corrupt.")
    _check_samples(beat_samples, beat_file, header.sig_len)
    beat_types = dict(sorted(Counter(symbols_kept.tolist()).items()))

    # stages --------------------------------------------------------------
    stage_file, st = _read_annotations(wfdb, folder, name, "st")
    stage_samples = np.asarray(st.sample, dtype=np.int64)
    _check_samples(stage_samples, stage_file, header.sig_len)
    notes = [(note or "").split() for note in (st.aux_note or [""] * len(stage_samples))]
    empty = [i for i, tokens in enumerate(notes) if not tokens]
    if empty:
        raise ValueError(f"{len(empty)} annotation(s) in {stage_file} carry no stage "
                         f"(empty aux_note, first at index {empty[0]}): not an slpdb "
                         "stage annotation file, or corrupt.")
    rk = np.array([tokens[0] for tokens in notes], dtype=object)
    bad = sorted({s for s in rk.tolist() if s.upper() not in _RK_STAGES})
    if bad:
        raise ValueError(f"Unknown R&K stage token(s) {bad} in {stage_file}; expected "
                         f"one of {sorted(_RK_STAGES)}.")
    stages = to_scheme(rk.astype(str), "5class")
    events = [tuple(tokens[1:]) for tokens in notes]
    event_counts = dict(sorted(Counter(e for ev in events for e in ev).items()))

    # 30-s grid check (the first annotation of most records sits at sample 1) ---
    step = int(round(EPOCH_SECONDS * fs))
    steps = np.diff(stage_samples)
    irregular = np.flatnonzero(np.abs(steps - step) > 1)
    epoch_gaps = [(int(i), float(steps[i] / fs)) for i in irregular]
    if epoch_gaps:
        logger.warning(
            "%s: %d stage annotation(s) are not 30 s after the previous one "
            "(epoch index, seconds since previous): %s", stage_file, len(epoch_gaps),
            epoch_gaps[:10],
        )

    # waveforms -----------------------------------------------------------
    ecg = eeg = None
    fs_ecg = fs_eeg = None
    eeg_index = [i for i, s in enumerate(header.signal_names) if s.upper().startswith("EEG")]
    eeg_channels = [_eeg_derivation(header.signal_names[i]) for i in eeg_index]
    ecg_index = [i for i, s in enumerate(header.signal_names) if s.upper() == "ECG"]
    wanted = ecg_index[:1] + eeg_index
    dat_files = {header.file_names[i] for i in wanted}
    has_waveforms = bool(wanted) and all((folder / f).is_file() for f in dat_files)
    if has_waveforms:
        signals, fs_signal, units = _read_signals(wfdb, folder, name, header, wanted)
        if ecg_index:
            ecg = _to_unit(signals[:, 0], units[0], "mv", folder / header.file_names[wanted[0]],
                           header.signal_names[wanted[0]])
            fs_ecg = fs_signal
        if eeg_index:
            offset = 1 if ecg_index else 0
            eeg = np.stack([
                _to_unit(signals[:, offset + j], units[offset + j], "uv",
                         folder / header.file_names[i], header.signal_names[i])
                for j, i in enumerate(eeg_index)
            ])
            fs_eeg = fs_signal

    info = {
        "fs": fs,
        "sig_len": header.sig_len,
        "duration": header.sig_len / fs,
        "signal_names": header.signal_names,
        "units": header.units,
        "eeg_channel": eeg_channels[0] if eeg_channels else None,
        "base_time": header.base_time,
        "base_date": header.base_date,
        "comments": header.comments,
        **_parse_subject_comment(header.comments),
        "beat_types": beat_types,
        "n_beats": int(len(beat_samples)),
        "n_non_normal_beats": int(len(beat_samples) - beat_types.get("N", 0)),
        "n_non_beat_annotations": int(np.count_nonzero(~is_beat)),
        "rk_stages": rk.astype(str),
        "events": events,
        "event_counts": event_counts,
        "scoring_start": float(stage_samples[0] / fs),
        "scoring_end": float(stage_samples[-1] / fs + EPOCH_SECONDS),
        "epoch_gaps": epoch_gaps,
        "has_waveforms": has_waveforms,
        "files": [str(header_file), str(beat_file), str(stage_file)],
    }
    return Recording(
        name=name,
        subject=_SAME_SUBJECT.get(name, name),
        ecg=ecg, fs_ecg=fs_ecg, eeg=eeg, fs_eeg=fs_eeg,
        eeg_channels=eeg_channels,
        beat_times=beat_samples / fs,
        stages=stages,
        epoch_onsets=stage_samples / fs,
        epoch_length=EPOCH_SECONDS,
        source=SLPDB_SOURCE,
        info=info,
    )


def _eeg_derivation(signal_name: str) -> str:
    """``"EEG (C4-A1)"`` -> ``"C4-A1"``; a bare ``"EEG"`` stays as it is."""
    match = re.search(r"\(([^)]*)\)", signal_name)
    return match.group(1).strip() if match else signal_name


def _read_signals(wfdb, folder: Path, name: str, header: _Header, channels: list[int]):
    """Read physical signals of ``channels``: (n_samples, n_channels) float32, fs, units."""
    dat = folder / header.file_names[channels[0]]
    try:
        try:
            record = wfdb.rdrecord(str(folder / name), channels=channels, return_res=32)
        except ValueError:
            # wfdb rejects some of PhysioNet's own headers (slp32: two-digit year);
            # read through a copy of the header without the date.
            record = _rdrecord_without_date(wfdb, folder, name, header, channels)
    except Exception as exc:
        raise ValueError(f"Cannot read the WFDB signals of record {name!r} from {dat}: "
                         f"{type(exc).__name__}: {exc}") from exc
    signals = np.asarray(record.p_signal, dtype=np.float32)
    n_bad = int(np.size(signals) - np.count_nonzero(np.isfinite(signals)))
    if n_bad:
        logger.warning("%s: %d invalid (NaN) samples in the ECG/EEG signals; "
                       "make_epochs drops the epochs that contain them.", dat, n_bad)
    return signals, float(record.fs), list(record.units)


def _rdrecord_without_date(wfdb, folder: Path, name: str, header: _Header, channels):
    text = (folder / f"{name}.hea").read_text(encoding="ascii").splitlines()
    record_line = next(i for i, line in enumerate(text)
                       if line.strip() and not line.lstrip().startswith("#"))
    fields = text[record_line].split()
    text[record_line] = " ".join(fields[:5])  # drop base_date
    with tempfile.TemporaryDirectory(prefix="sleepkd_wfdb_") as tmp:
        (Path(tmp) / f"{name}.hea").write_text("\n".join(text) + "\n", encoding="ascii")
        for file_name in set(header.file_names):
            source, target = folder / file_name, Path(tmp) / file_name
            if source.is_file():
                try:
                    target.symlink_to(source.resolve())
                except OSError:  # no symlinks (e.g. Windows without privileges)
                    shutil.copyfile(source, target)
        return wfdb.rdrecord(str(Path(tmp) / name), channels=channels, return_res=32)


def _to_unit(signal: np.ndarray, unit: str, target: str, file: Path, channel: str):
    key = (unit or "mV").strip().lower()
    if key not in _VOLTS:
        raise ValueError(f"Signal {channel!r} in {file} has units {unit!r}; expected a "
                         f"voltage ({sorted(_VOLTS)}).")
    return (signal * np.float32(_VOLTS[key] / _VOLTS[target])).astype(np.float32)
