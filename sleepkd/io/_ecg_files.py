"""Read a user's single-lead ECG from a file: NumPy, CSV, WFDB, EDF or BDF.

The readers for WFDB (``wfdb``) and EDF/BDF (``mne``) are optional extras, imported
only when such a file is read.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from sleepkd.utils._validation import check_sampling_rate

logger = logging.getLogger(__name__)

#: Extensions understood by :func:`read_ecg` (a WFDB record may also be given
#: without extension).
SUPPORTED_FORMATS = {
    ".npy": "NumPy array (pass fs=)",
    ".npz": "NumPy archive with arrays 'ecg' and 'fs'",
    ".csv": "CSV with an ECG column and optionally a 'time' column in seconds",
    ".hea": "WFDB record (header + .dat); needs sleepkd[wfdb]",
    ".edf": "European Data Format; needs sleepkd[edf]",
    ".bdf": "BioSemi Data Format; needs sleepkd[edf]",
}

# Physical units -> factor to millivolts.
_TO_MILLIVOLT = {"v": 1e3, "mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "nv": 1e-6}
# Channel names taken as ECG when no channel is given.
_ECG_NAME = re.compile(r"ECG|EKG", re.IGNORECASE)
# CSV column names taken as time in seconds.
_TIME_COLUMNS = ("time", "time_s", "t")
# Relative tolerance on the spacing of a CSV time column (covers rounded times).
_TIME_STEP_RTOL = 0.01


def read_ecg(
    path: str | os.PathLike,
    *,
    channel: str | None = None,
    fs: float | None = None,
) -> tuple[np.ndarray, float, dict]:
    """Read one ECG lead and its sampling rate from a file.

    The format follows the extension:

    - ``.npy``: a 1-D array; ``fs`` is required (the file stores no rate).
    - ``.npz``: arrays ``ecg`` (or the array named ``channel``, or the only array
      besides ``fs``) and ``fs`` (a scalar); an optional string array ``units``.
    - ``.csv``: the column named ``channel``, else a column named ``ecg``
      (case-insensitive), else the only data column, else the first column whose
      name contains ECG/EKG. A ``time`` column (seconds, uniform steps) gives the
      sampling rate; without it ``fs`` is required. A header row is optional.
    - WFDB (``.hea`` or ``.dat`` path, or the record path without extension): read with
      ``wfdb`` (``pip install "sleepkd[wfdb]"``).
    - ``.edf`` / ``.bdf``: read with MNE (``pip install "sleepkd[edf]"``); only the
      chosen channel is loaded.

    For WFDB, EDF and BDF the channel is chosen by name; the default is the first
    channel whose name contains "ECG" or "EKG" (case-insensitive).

    Parameters
    ----------
    path : str or path-like
        The file (or WFDB record) to read.
    channel : str, optional
        Name of the channel (WFDB, EDF, BDF, CSV column, NPZ array) to read.
    fs : float, optional
        Sampling rate in Hz. Required for ``.npy`` and for CSV files without a time
        column; elsewhere it must agree with the rate stored in the file.

    Returns
    -------
    ecg : ndarray of float64, shape (n_samples,)
        The signal, in millivolts when the file states voltage units (V, mV, uV);
        otherwise as stored (``info["units"]`` says which).
    fs : float
        Sampling rate in Hz.
    info : dict
        ``channel`` (name or None), ``units`` (``"mV"`` after conversion, the stored
        units when they are not a voltage, or None when the file states none),
        ``original_units``, ``source`` (the path as a string), ``format``,
        ``n_samples`` and ``duration`` (seconds).

    Raises
    ------
    FileNotFoundError
        If the file, or the ``.dat`` signal file of a WFDB record, does not exist.
    ValueError
        If the extension is not supported (the message lists the formats), the file
        cannot be parsed, the channel is missing (the message lists the channels),
        the signal is not 1-D, is empty or contains NaN / infinity (with the count),
        ``fs`` is missing, not positive, or disagrees with the file.
    ImportError
        If ``wfdb`` or ``mne`` is needed and not installed (the message names the
        ``sleepkd`` extra to install).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sleepkd.datasets import read_ecg
    >>> path = os.path.join(tempfile.mkdtemp(), "night.npz")
    >>> np.savez(path, ecg=np.zeros(5000), fs=250.0)
    >>> ecg, fs, info = read_ecg(path)
    >>> ecg.shape, fs, info["duration"]
    ((5000,), 250.0, 20.0)
    """
    if fs is not None:
        fs = check_sampling_rate(fs)
    if channel is not None and not isinstance(channel, str):
        raise ValueError(f"channel must be a channel name (str), got {channel!r}.")
    path = Path(os.fspath(path))
    kind, path = _resolve_format(path)
    reader: Callable = _READERS[kind]
    signal, file_fs, channel_name, units, original_units = reader(
        path, channel=channel, fs=fs)
    signal = _check_signal(signal, path)
    file_fs = _check_file_fs(file_fs, fs, path)
    signal, units = _to_millivolts(signal, units, path)
    info = {
        "channel": channel_name,
        "units": units,
        "original_units": original_units,
        "source": str(path),
        "format": kind,
        "n_samples": int(signal.size),
        "duration": signal.size / file_fs,
    }
    logger.info("Read %d samples at %g Hz from %s (channel %s).",
                signal.size, file_fs, path, channel_name)
    return signal, file_fs, info


# --------------------------------------------------------------------------- helpers
def _resolve_format(path: Path) -> tuple[str, Path]:
    """Return the format key and the path to hand to its reader."""
    header = Path(str(path) + ".hea")
    if path.suffix.lower() not in SUPPORTED_FORMATS and header.is_file():
        return "wfdb", path  # record path without extension (names may contain dots)
    suffix = path.suffix.lower()
    if suffix == ".dat" and path.with_suffix(".hea").is_file():
        return "wfdb", path.with_suffix("")  # the signal file of a WFDB record
    if not path.exists():
        hint = "" if suffix else f" (nor a WFDB header {header})"
        raise FileNotFoundError(f"ECG file not found: {path}{hint}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not an ECG file.")
    if suffix not in SUPPORTED_FORMATS:
        formats = "; ".join(f"{ext} ({what})"
                            for ext, what in SUPPORTED_FORMATS.items())
        raise ValueError(
            f"Unsupported ECG file format {suffix or '(no extension)'!r} for {path}. "
            f"Supported: {formats}; or a WFDB record path without extension."
        )
    if suffix == ".hea":
        return "wfdb", path.with_suffix("")
    return suffix[1:], path


def _check_signal(signal, path: Path) -> np.ndarray:
    signal = np.asarray(signal)
    if signal.dtype.kind not in "biuf":
        raise ValueError(f"The ECG in {path} is not numeric (dtype {signal.dtype}).")
    if signal.ndim != 1:
        raise ValueError(
            f"The ECG in {path} must be 1-D (one lead), got an array of shape "
            f"{signal.shape}; select one lead and save it as a 1-D array."
        )
    if signal.size == 0:
        raise ValueError(f"The ECG in {path} is empty (0 samples).")
    signal = np.asarray(signal, dtype=np.float64)
    n_bad = int(signal.size - np.count_nonzero(np.isfinite(signal)))
    if n_bad:
        raise ValueError(
            f"The ECG in {path} contains {n_bad} NaN or infinite sample(s) out of "
            f"{signal.size}; fill or cut the gaps before staging."
        )
    return signal


def _check_file_fs(file_fs, fs: float | None, path: Path) -> float:
    """Combine the rate stored in the file with the ``fs`` argument."""
    if file_fs is None:
        if fs is None:
            raise ValueError(f"{path} stores no sampling rate; pass fs= (in Hz).")
        return fs
    file_fs = check_sampling_rate(file_fs, name=f"the sampling rate stored in {path}")
    if fs is not None and not np.isclose(fs, file_fs, rtol=1e-6, atol=0.0):
        raise ValueError(
            f"fs={fs:g} Hz disagrees with the sampling rate {file_fs:g} Hz stored in "
            f"{path}; omit fs or pass the file's rate."
        )
    return file_fs


def _to_millivolts(signal, units: str | None, path: Path):
    """Scale a voltage to mV; leave other or unknown units as stored."""
    if units is None or not str(units).strip():
        logger.info("%s states no units; the ECG is returned as stored.", path)
        return signal, None
    factor = _TO_MILLIVOLT.get(str(units).strip().lower())
    if factor is None:
        logger.warning("%s gives the ECG in %r, not a voltage; returned as stored.",
                       path, units)
        return signal, str(units)
    return np.asarray(signal, dtype=np.float64) * factor, "mV"


def _pick_channel(names: list[str], channel: str | None, path: Path, what="channel"):
    """Index of the requested channel, or of the first ECG/EKG channel."""
    if channel is not None:
        if channel in names:
            return names.index(channel)
        raise ValueError(f"No {what} {channel!r} in {path}; available: {names}.")
    for i, name in enumerate(names):
        if _ECG_NAME.search(str(name)):
            return i
    raise ValueError(
        f"No ECG {what} in {path} (none named like ECG/EKG); available: {names}. "
        "Pass channel= to choose one."
    )


def _corrupt(path: Path, exc: Exception) -> ValueError:
    return ValueError(f"Could not read {path}: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- readers
# Each reader returns (signal, fs stored in the file or None, channel name, units of
# the returned values, units stated in the file); units are None when unknown.
def _read_npy(path: Path, *, channel, fs):
    if channel is not None:
        raise ValueError(f"A .npy file has no channel names; got channel={channel!r}.")
    if fs is None:
        raise ValueError(f"A .npy file stores no sampling rate; pass fs= ({path}).")
    try:
        signal = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _corrupt(path, exc) from exc
    return signal, None, None, None, None


def _read_npz(path: Path, *, channel, fs):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _corrupt(path, exc) from exc
    candidates = [name for name in arrays if name not in ("fs", "units")]
    if channel is not None:
        key = channel
    elif "ecg" in arrays:
        key = "ecg"
    elif len(candidates) == 1:
        key = candidates[0]
    else:
        raise ValueError(
            f"{path} holds no array named 'ecg' and {len(candidates)} candidate arrays "
            f"{candidates}; pass channel= to choose one."
        )
    if key not in arrays:
        raise ValueError(f"No array {key!r} in {path}; available: {candidates}.")
    file_fs = None
    if "fs" in arrays:
        stored = arrays["fs"]
        if stored.size != 1 or stored.dtype.kind not in "biuf":
            raise ValueError(
                f"'fs' in {path} must be one number in Hz, got {stored!r}.")
        file_fs = float(stored.reshape(()))
    units = str(arrays["units"].reshape(())) if "units" in arrays else None
    return arrays[key], file_fs, key, units, units


def _read_csv(path: Path, *, channel, fs):
    import pandas as pd

    try:
        table = pd.read_csv(path)
        if all(_is_number(name) for name in table.columns):
            table = pd.read_csv(path, header=None)  # headerless numbers
            table.columns = [str(c) for c in table.columns]
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise _corrupt(path, exc) from exc
    names = [str(c) for c in table.columns]
    time_col = next((c for c in names if c.strip().lower() in _TIME_COLUMNS), None)
    data_cols = [c for c in names if c != time_col]
    if channel is not None:
        column = names[_pick_channel(names, channel, path, what="column")]
    else:
        by_name = [c for c in data_cols if c.strip().lower() == "ecg"]
        if by_name:
            column = by_name[0]
        elif len(data_cols) == 1:
            column = data_cols[0]
        elif not data_cols:
            raise ValueError(f"{path} has no data column besides {time_col!r}.")
        else:
            column = data_cols[_pick_channel(data_cols, None, path, what="column")]
    values = pd.to_numeric(table[column], errors="coerce")
    n_text = int(values.isna().sum() - table[column].isna().sum())
    if n_text:
        raise ValueError(
            f"Column {column!r} of {path} has {n_text} non-numeric value(s).")
    file_fs = _fs_from_time(table[time_col], path) if time_col is not None else None
    return values.to_numpy(dtype=np.float64), file_fs, column, None, None


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _fs_from_time(time, path: Path) -> float:
    """Sampling rate from a time column in seconds; the steps must be uniform."""
    import pandas as pd

    t = pd.to_numeric(time, errors="coerce").to_numpy(dtype=np.float64)
    if t.size < 2 or not np.all(np.isfinite(t)):
        raise ValueError(
            f"The time column of {path} needs at least 2 numeric values in seconds.")
    steps = np.diff(t)
    median = float(np.median(steps))
    if median <= 0 or np.max(np.abs(steps - median)) > _TIME_STEP_RTOL * median:
        raise ValueError(
            f"The time column of {path} is not uniformly sampled: steps range from "
            f"{steps.min():.6g} to {steps.max():.6g} s (median {median:.6g} s)."
        )
    # The whole span averages out rounding of the printed times; for uniform steps
    # it equals 1 / median step.
    return (t.size - 1) / float(t[-1] - t[0])


def _read_wfdb(record: Path, *, channel, fs):
    try:
        import wfdb
    except ImportError as exc:
        raise ImportError(
            'Reading WFDB records needs the optional package wfdb: '
            'pip install "sleepkd[wfdb]"'
        ) from exc
    try:
        header = wfdb.rdheader(str(record))
    except FileNotFoundError:
        raise
    except Exception as exc:  # wfdb raises its own syntax errors, ValueError, ...
        raise _corrupt(Path(str(record) + ".hea"), exc) from exc
    if getattr(header, "n_seg", None):
        raise ValueError(f"{record} is a multi-segment WFDB record; not supported.")
    names = list(header.sig_name or [])
    index = _pick_channel(names, channel, Path(str(record) + ".hea"))
    data_file = record.parent / header.file_name[index]
    if not data_file.is_file():
        raise FileNotFoundError(
            f"The WFDB signal file {data_file} of record {record} does not exist "
            "(the header alone holds no waveform)."
        )
    frames = int(header.samps_per_frame[index] or 1)
    try:
        rec = wfdb.rdrecord(str(record), channels=[index], physical=True,
                            smooth_frames=frames == 1)
    except Exception as exc:
        raise _corrupt(data_file, exc) from exc
    # Channels with several samples per frame run at fs * frames; keep every sample.
    signal = rec.p_signal[:, 0] if frames == 1 else rec.e_p_signal[0]
    units = header.units[index]
    return signal, float(header.fs) * frames, names[index], units, units


def _read_edf(path: Path, *, channel, fs):
    try:
        import mne
    except ImportError as exc:
        raise ImportError(
            'Reading EDF/BDF files needs the optional package mne: '
            'pip install "sleepkd[edf]"'
        ) from exc
    read = mne.io.read_raw_bdf if path.suffix.lower() == ".bdf" else mne.io.read_raw_edf
    try:
        raw = read(path, preload=False, verbose="error")
    except Exception as exc:  # MNE raises ValueError, RuntimeError, ... on bad headers
        raise _corrupt(path, exc) from exc
    names = list(raw.ch_names)
    name = names[_pick_channel(names, channel, path)]
    _warn_if_resampled(raw, names.index(name), path)
    try:
        signal = raw.get_data(picks=[name])[0]  # only this channel is read
    except Exception as exc:
        raise _corrupt(path, exc) from exc
    # MNE scales voltage channels to volts and leaves other units as stored.
    original = getattr(raw, "_orig_units", {}).get(name)
    if original is not None and original.strip().lower() in ("", "n/a"):
        original = None
    units = original
    if original is not None and original.strip().lower() in _TO_MILLIVOLT:
        units = "V"
    return signal, float(raw.info["sfreq"]), name, units, original


def _warn_if_resampled(raw, index: int, path: Path) -> None:
    """MNE upsamples channels stored at a lower rate than the fastest one: say so."""
    try:  # private MNE bookkeeping; a missing key only skips the warning
        extras = raw._raw_extras[0]
        native = extras["n_samps"][index] / extras["record_length"][0]
    except (AttributeError, IndexError, KeyError, TypeError):
        return
    if not np.isclose(native, raw.info["sfreq"]):
        logger.warning(
            "%s stores this channel at %g Hz; MNE interpolated it to %g Hz.",
            path, native, raw.info["sfreq"],
        )


_READERS: dict[str, Callable] = {
    "npy": _read_npy,
    "npz": _read_npz,
    "csv": _read_csv,
    "wfdb": _read_wfdb,
    "edf": _read_edf,
    "bdf": _read_edf,
}
