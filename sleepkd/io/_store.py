"""A night store: a cohort preprocessed once, one folder of ``.npy`` files per night.

A cohort of hundreds to thousands of nights (30-200 MB of EDF each) does not fit in
memory as arrays, and its preprocessing (reading the EDF, detecting R-peaks,
resampling) should run once, in parallel, and survive an interruption.
:func:`prepare_store` turns recordings into a store; :class:`NightStore` reads it
lazily; :class:`~sleepkd.io.StoreWindows` serves training windows from it.

On-disk format (``FORMAT_VERSION`` 1)
-------------------------------------
::

    OUT_DIR/
        store.json              settings of the store (rates, scheme, format, version)
        qc.csv                  one row per night: counts, status, reason
        nights/<name>/          one folder per prepared night, complete or absent
            meta.json           name, subject, provenance, rates, shapes, QC counts
            hr.npy              float32 (n_epochs, epoch_length * fs_hr), beats/min
            hr_valid.npy        bool (n_epochs,): enough real (not bridged) heart rate
            stages.npy          <U2 (n_epochs,): labels of the scheme, "?" unscored
            onsets.npy          float64 (n_epochs,): epoch onsets in s
            beats.npy           float64 (n_beats,): R-peak times in s
            eeg.npy             float32 (n_epochs, n_channels, epoch_length * fs_eeg)
            ecg.npy             float32 (n_epochs, epoch_length * fs_ecg), optional
        skipped/<name>.json     why a night could not be prepared (latest attempt)

Why ``.npy`` files: every array of a night is one contiguous block behind a
128-byte header, so ``np.load(mmap_mode="r")`` maps it without reading it, and any
window of epochs of any night is one slice of one file (the operating system reads
only those pages). The format is NumPy's own (no extra dependency, readable from any
language with a 20-line parser), and a night is written once and never appended to.
zarr would add chunking and compression, which pay off for arrays appended to or
read across nights in slabs, not for a training loop that reads short windows of
random nights (each read would decompress whole chunks). Parquet is columnar and
row-group based: it suits the QC table and per-epoch scalars, not
``(n_epochs, n_channels, n_times)`` signal blocks, and it cannot be memory-mapped
into arrays without a copy.

Atomicity and resume: a night is written into ``nights/.<name>.tmp/``, its
``meta.json`` last, and renamed to ``nights/<name>/`` in one :func:`os.replace`
when complete. A killed run leaves at most a ``.tmp`` folder (removed by the next
run), never a half-written night; a resumed run skips every night whose folder exists
with a complete ``meta.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import numbers
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sleepkd.stages import SCHEMES, UNSCORED, to_scheme

logger = logging.getLogger(__name__)

#: Version of the on-disk layout written by :func:`prepare_store`.
FORMAT_VERSION = 1

#: Columns of the QC table (``qc.csv`` and :attr:`NightStore.qc`), in order.
QC_COLUMNS = (
    "name", "subject", "status", "reason", "kind", "duration_h", "n_epochs", "n_scored",
    "n_unscored", "n_dropped_epochs", "n_beats", "beats_from", "n_rejected_beats",
    "gap_seconds", "n_invalid_hr_epochs",
)

#: Recording kinds and the reader behind each.
KINDS = ("slpdb", "nsrr", "edf")

_DASK_HINT = 'pip install "sleepkd[dask]"'
_SIGNAL_FILES = {"hr": "hr.npy", "eeg": "eeg.npy", "ecg": "ecg.npy"}


# ------------------------------------------------------------------------ sources
@dataclass(frozen=True)
class RecordingSource:
    """Where one night's files are and how to read them.

    Parameters
    ----------
    kind : {"slpdb", "nsrr", "edf"}
        The reader: :func:`~sleepkd.io.load_slpdb` (``paths``: the record's ``.hea``
        file; its ``.ecg`` beats and ``.st`` stages sit next to it),
        :func:`~sleepkd.io.load_nsrr` (``paths``: the EDF and its NSRR or Profusion
        XML) or :func:`~sleepkd.io.load_edf` (``paths``: the EDF, and optionally its
        hypnogram: an EDF+ annotation file or a CSV/TSV table).
    paths : tuple of str
        The files, in the order above.
    name : str
        Night name, unique in a store (a folder name: no path separator, not starting
        with ``"."``).
    subject : str, optional
        Subject id (the CV group); ``None``: the reader's default (the name, or
        slpdb's ``slp01`` for ``slp01a`` / ``slp01b``).
    ecg_channel, eeg_channel : str, optional
        Channels to read (EDF kinds); ``None``: the usual names (see
        :func:`~sleepkd.io.load_nsrr`).
    """

    kind: str
    paths: tuple
    name: str
    subject: str | None = None
    ecg_channel: str | None = None
    eeg_channel: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}.")
        paths = (self.paths,) if isinstance(self.paths, (str, os.PathLike)) else self.paths
        paths = tuple(str(Path(p)) for p in paths)
        expected = {"slpdb": (1,), "nsrr": (2,), "edf": (1, 2)}[self.kind]
        if len(paths) not in expected:
            raise ValueError(f"A {self.kind!r} source needs {' or '.join(map(str, expected))} "
                             f"path(s), got {paths}.")
        object.__setattr__(self, "paths", paths)
        _check_name(self.name)
        if self.subject is not None:
            object.__setattr__(self, "subject", str(self.subject))

    def load(self):
        """Read the night: a :class:`~sleepkd.datasets.Recording` named ``name``."""
        if self.kind == "slpdb":
            from sleepkd.io._slpdb import load_slpdb

            header = Path(self.paths[0])
            rec = load_slpdb(header.parent, records=header.stem)[0]
            return dataclasses.replace(rec, name=self.name,
                                       subject=self.subject or rec.subject)
        channels = {"ecg_channel": self.ecg_channel, "eeg_channel": self.eeg_channel,
                    "name": self.name, "subject": self.subject}
        if self.kind == "nsrr":
            from sleepkd.io._nsrr import load_nsrr

            return load_nsrr(self.paths[0], self.paths[1], **channels)
        from sleepkd.io._edf import load_edf

        hypnogram = self.paths[1] if len(self.paths) > 1 else None
        return load_edf(self.paths[0], hypnogram, **channels)


def _check_name(name) -> None:
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ValueError(f"A night name must be a non-empty string without surrounding "
                         f"spaces, got {name!r}.")
    if name.startswith(".") or any(sep in name for sep in ("/", "\\", "\0")):
        raise ValueError(f"Night name {name!r} is used as a folder name: it must not "
                         "start with '.' or contain a path separator.")


_PSG_SUFFIX = re.compile(r"[-_ ]?psg$", re.I)
_HYPNOGRAM_EDF = re.compile(r"[-_ ]?(hypnogram|base)$", re.I)
_TABLE_SUFFIX = re.compile(r"[-_. ]?(hypnogram|stages?|scoring)$", re.I)
_XML_SUFFIX = re.compile(r"-(nsrr|profusion)$", re.I)
_EDF_EXT = (".edf", ".bdf")
_TABLE_EXT = (".csv", ".tsv", ".txt")


def discover_sources(
    folder: str | os.PathLike,
    *,
    recursive: bool = True,
    subject: Callable[[str], str | None] | None = None,
) -> list[RecordingSource]:
    """Find the nights in a folder (and, by default, its subfolders).

    Recognised layouts:

    - **NSRR** (SHHS, MESA, ...): ``X.edf`` with ``X-nsrr.xml``, ``X.xml`` or
      ``X-profusion.xml`` (in that order of preference; the XML may sit in another
      folder of the tree, as in NSRR's ``edfs/`` and ``annotations-events-nsrr/``,
      the same folder is preferred) -> kind ``"nsrr"``;
    - **EDF + hypnogram**: ``X[-PSG].edf`` with ``X[-]Hypnogram.edf`` (Sleep-EDF,
      whose hypnogram differs in the last character of ``X``: ``SC4001E0-PSG`` /
      ``SC4001EC-Hypnogram``), ``X Base.edf`` (MASS), or a table ``X.csv`` /
      ``X.tsv`` / ``X-hypnogram.csv`` / ``X_stages.tsv`` in the same folder -> kind
      ``"edf"``; an EDF with none of these is read for its own EDF+ stage
      annotations (a night without any is reported as skipped by
      :func:`prepare_store`);
    - **WFDB, slpdb-style**: ``X.hea`` with ``X.st`` (stages) and ``X.ecg`` (beats)
      -> kind ``"slpdb"``.

    Parameters
    ----------
    folder : str or path-like
        Folder to search.
    recursive : bool, default=True
        Search subfolders too (hidden folders, e.g. a store's ``.tmp``, are skipped).
    subject : callable, optional
        ``subject(name) -> str`` gives the subject of a night (e.g.
        ``lambda n: n.split("-")[1]`` for SHHS1 / SHHS2 visits); ``None`` or a
        ``None`` result: the reader's default.

    Returns
    -------
    sources : list of RecordingSource
        Sorted by name; names are the EDF / record file names without extension.

    Raises
    ------
    FileNotFoundError
        If ``folder`` is not a folder.
    ValueError
        If no recording is found, or two recordings share a name (pass the sources
        yourself then, with names of your choice).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"Recording folder not found: {root}")
    pattern = root.rglob("*") if recursive else root.iterdir()
    files = sorted(p for p in pattern if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(root).parts))
    xml_index: dict[str, list[tuple[int, Path]]] = {}
    for path in files:
        if path.suffix.lower() == ".xml":
            match = _XML_SUFFIX.search(path.stem)
            dialect = 2 if match is None else 0 if match.group(1).lower() == "nsrr" else 1
            key = _XML_SUFFIX.sub("", path.stem).lower()
            xml_index.setdefault(key, []).append((dialect, path))
    sources = []
    used: set[Path] = set()
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".hea":
            stages = path.with_suffix(".st")
            if stages.is_file():
                sources.append(RecordingSource("slpdb", (path,), path.stem))
                used.update({path, stages, path.with_suffix(".ecg")})
        elif suffix in _EDF_EXT and not _HYPNOGRAM_EDF.search(path.stem):
            xml = _pick_xml(path, xml_index.get(path.stem.lower(), []))
            if xml is not None:
                sources.append(RecordingSource("nsrr", (path, xml), path.stem))
                used.update({path, xml})
                continue
            hypnogram = _pick_hypnogram(path, files)
            sources.append(RecordingSource(
                "edf", (path,) if hypnogram is None else (path, hypnogram), path.stem))
            used.update({path} | ({hypnogram} if hypnogram else set()))
    if subject is not None:
        sources = [dataclasses.replace(s, subject=subject(s.name)) for s in sources]
    if not sources:
        raise ValueError(f"No recording found in {root}: looked for EDF files (with an "
                         "NSRR/Profusion XML, a hypnogram EDF or a CSV/TSV table) and "
                         "WFDB records (.hea + .st + .ecg).")
    _check_unique(sources)
    unused = [p for p in files if p.suffix.lower() in (".xml",) + _EDF_EXT and p not in used]
    if unused:
        logger.info("%d annotation file(s) in %s matched no recording: %s", len(unused),
                    root, ", ".join(str(p.relative_to(root)) for p in unused[:10]))
    return sorted(sources, key=lambda s: s.name)


def _pick_xml(edf: Path, candidates: list[tuple[int, Path]]) -> Path | None:
    if not candidates:
        return None
    return sorted(candidates, key=lambda c: (c[1].parent != edf.parent, c[0], str(c[1])))[0][1]


def _pick_hypnogram(edf: Path, files: list[Path]) -> Path | None:
    base = _PSG_SUFFIX.sub("", edf.stem).lower()
    stem = edf.stem.lower()
    edfs, tables = [], []
    for path in files:
        if path.parent != edf.parent or path == edf:
            continue
        suffix = path.suffix.lower()
        if suffix in _EDF_EXT and _HYPNOGRAM_EDF.search(path.stem):
            hyp = _HYPNOGRAM_EDF.sub("", path.stem).lower()
            if hyp == base or (len(hyp) == len(base) > 1 and hyp[:-1] == base[:-1]):
                edfs.append((hyp != base, path))
        elif suffix in _TABLE_EXT:
            table = _TABLE_SUFFIX.sub("", path.stem).lower()
            if table in (base, stem):
                tables.append(path)
    if edfs:
        return sorted(edfs)[0][1]
    return tables[0] if tables else None


def _check_unique(sources: Sequence[RecordingSource]) -> None:
    seen: dict[str, RecordingSource] = {}
    clashes = []
    for source in sources:
        if source.name in seen:
            clashes.append(f"{source.name!r}: {seen[source.name].paths[0]} and "
                           f"{source.paths[0]}")
        seen[source.name] = source
    if clashes:
        raise ValueError("Night names must be unique in a store; clashes: "
                         + "; ".join(clashes[:5]) + ". Pass RecordingSource objects with "
                         "names of your choice.")


# ------------------------------------------------------------------------ prepare
def prepare_store(
    sources: str | os.PathLike | Iterable[RecordingSource],
    out_dir: str | os.PathLike,
    *,
    fs_hr: float = 2.0,
    fs_eeg: float | None = 100.0,
    fs_ecg: float | None = None,
    scheme: str = "5class",
    n_jobs: int = 1,
    backend: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
):
    """Preprocess recordings once into a night store, in parallel and resumably.

    Each night is read (:meth:`RecordingSource.load`), its heart rate computed from its
    annotated beats (``beat_times``) or, without them, from R-peaks detected in its ECG
    (:func:`~sleepkd.signal.detect_rpeaks`), and cut into 30-s epochs with
    :func:`~sleepkd.datasets.make_epochs` (``unscored="keep"``: unscored epochs stay in
    place as ``"?"``). The heart rate (``fs_hr``), the EEG channel (``fs_eeg``), the
    ECG (``fs_ecg``, optional), stages, onsets and beats are written to
    ``out_dir/nights/<name>/`` (format: :mod:`sleepkd.io._store`), atomically. Values
    are stored raw (beats/min, µV, mV): no per-night scaling; the networks normalise.

    Parameters
    ----------
    sources : folder or iterable of RecordingSource
        The nights; a folder is searched with :func:`discover_sources`.
    out_dir : str or path-like
        The store (created if needed).
    fs_hr : float, default=2.0
        Rate of the heart-rate series in Hz.
    fs_eeg : float or None, default=100.0
        Rate of the stored EEG; ``None``: no EEG stored. Nights without an EEG channel
        are stored without ``eeg.npy``.
    fs_ecg : float or None, default=None
        Rate of the stored ECG waveform; ``None``: no ECG waveform stored (only the
        beats and heart rate derived from it).
    scheme : {"5class", "4class", "3class"}, default="5class"
        Label scheme of the stored stages.
    n_jobs : int, default=1
        Nights prepared at once (:class:`joblib.Parallel`; -1: all cores). Each worker
        returns only the night's QC row, never arrays. With ``backend="dask"``, 1 is
        taken as -1 (every worker of the cluster).
    backend : {None, "dask"}, default=None
        ``None``: joblib's default (loky processes). ``"dask"``: run the nights on the
        ``dask.distributed`` cluster of the current :class:`~dask.distributed.Client`
        (``pip install "sleepkd[dask]"``; create the client first). The workers must
        see the recordings and ``out_dir`` at the same paths (a shared file system).
    progress : bool, default=True
        Show a progress bar (tqdm) of the nights.
    overwrite : bool, default=False
        Rebuild the store from scratch (its nights, skipped records and QC table are
        deleted first). Without it, nights already in the store are not prepared
        again, and a store prepared with other settings is an error.

    Returns
    -------
    qc : pandas.DataFrame
        The QC table of the whole store (also written to ``out_dir/qc.csv``), one row
        per night, sorted by name, with the columns of :data:`QC_COLUMNS`:
        ``status`` (``"ok"`` or ``"skipped"``), ``reason`` (why a night was skipped:
        the error, naming the file), ``kind``, ``duration_h`` (hours the epochs span),
        ``n_epochs`` (stored), ``n_scored``, ``n_unscored`` (stored as ``"?"``),
        ``n_dropped_epochs`` (left out: outside the signal or with NaN/inf),
        ``n_beats``, ``beats_from`` (``"annotations"`` or ``"ecg"``),
        ``n_rejected_beats`` (ectopic / artefact beats), ``gap_seconds`` (heart rate
        bridged or filled) and ``n_invalid_hr_epochs`` (``hr_valid`` False). Skipped
        nights have empty counts. ``qc.attrs["run"]`` counts this run's nights:
        ``{"prepared", "skipped", "already"}`` (already in the store, not redone).

    Raises
    ------
    ValueError
        On bad settings, duplicated names, or a store prepared with other settings
        (without ``overwrite``).
    ImportError
        With ``backend="dask"`` when dask is missing.
    RuntimeError
        With ``backend="dask"`` when no Client exists.

    Notes
    -----
    A night that fails (unreadable, corrupt or truncated file, no beats, no scored
    epoch, ...) is logged, recorded in ``out_dir/skipped/<name>.json`` and in the QC
    table with its reason, and never stops the batch; it is tried again by the next
    run. Interrupting a run (Ctrl-C, a killed job) loses only the nights in progress.
    One run at a time per store.
    """
    settings = _check_settings(fs_hr=fs_hr, fs_eeg=fs_eeg, fs_ecg=fs_ecg, scheme=scheme)
    if backend not in (None, "dask"):
        raise ValueError(f"backend must be None or 'dask', got {backend!r}.")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer, got {n_jobs!r}.")
    if backend == "dask":
        _check_dask()
        n_jobs = -1 if n_jobs == 1 else int(n_jobs)
    if isinstance(sources, (str, os.PathLike)):
        sources = discover_sources(sources)
    sources = list(sources)
    bad = [s for s in sources if not isinstance(s, RecordingSource)]
    if bad:
        raise ValueError(f"sources must be a folder or RecordingSource objects, got "
                         f"{bad[0]!r}.")
    _check_unique(sources)

    out = Path(out_dir)
    if overwrite:
        _clear_store(out)
    _open_settings(out, settings)
    nights_dir, skipped_dir = out / "nights", out / "skipped"
    nights_dir.mkdir(parents=True, exist_ok=True)
    skipped_dir.mkdir(exist_ok=True)
    _remove_stale(nights_dir)

    todo = [s for s in sources if _read_complete_meta(nights_dir / s.name) is None]
    n_done = len(sources) - len(todo)
    if n_done:
        logger.info("%d of %d night(s) already in %s: not prepared again.", n_done,
                    len(sources), out)
    rows = _run(todo, nights_dir, skipped_dir, settings, n_jobs, backend, progress)
    for row in rows:
        if row["status"] != "ok":
            logger.warning("Night %s skipped: %s", row["name"], row["reason"])
    qc = _qc_table(out)
    _write_csv_atomic(qc, out / "qc.csv")
    n_ok = int(np.count_nonzero([r["status"] == "ok" for r in rows]))
    qc.attrs["run"] = {"prepared": n_ok, "skipped": len(rows) - n_ok, "already": n_done}
    logger.info("Prepared %d night(s), skipped %d, %d already done; QC table %s.",
                n_ok, len(rows) - n_ok, n_done, out / "qc.csv")
    return qc


def _check_settings(*, fs_hr, fs_eeg, fs_ecg, scheme) -> dict:
    from sleepkd.utils._validation import check_sampling_rate

    if scheme not in SCHEMES:
        raise ValueError(f"Unknown scheme {scheme!r}; expected one of {sorted(SCHEMES)}.")
    return {
        "format": FORMAT_VERSION,
        "fs_hr": check_sampling_rate(fs_hr, "fs_hr"),
        "fs_eeg": None if fs_eeg is None else check_sampling_rate(fs_eeg, "fs_eeg"),
        "fs_ecg": None if fs_ecg is None else check_sampling_rate(fs_ecg, "fs_ecg"),
        "scheme": scheme,
    }


def _check_dask():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("backend='dask' needs dask.distributed: "
                          f"{_DASK_HINT}") from exc
    try:
        return distributed.get_client()
    except ValueError as exc:
        raise RuntimeError(
            "backend='dask' runs on the current dask.distributed Client, and there is "
            "none: create one first, e.g. `from dask.distributed import Client, "
            "LocalCluster; client = Client(LocalCluster())` or "
            "`Client('tcp://scheduler:8786')` (CLI: --dask-scheduler ADDRESS)."
        ) from exc


def _clear_store(out: Path) -> None:
    for sub in ("nights", "skipped"):
        shutil.rmtree(out / sub, ignore_errors=True)
    for file in ("qc.csv", "store.json"):
        (out / file).unlink(missing_ok=True)


def _open_settings(out: Path, settings: dict) -> None:
    """Write ``store.json`` for a new store; check it against ``settings`` otherwise."""
    from sleepkd import __version__

    path = out / "store.json"
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        differ = {k: (stored.get(k), v) for k, v in settings.items() if stored.get(k) != v}
        if differ:
            shown = ", ".join(f"{k}: store {a!r}, asked {b!r}" for k, (a, b) in differ.items())
            raise ValueError(f"The store {out} was prepared with other settings ({shown}). "
                             "Pass overwrite=True (sleepkd prepare --overwrite) to "
                             "rebuild it, or choose another folder.")
        return
    if out.is_dir() and (out / "nights").is_dir():
        raise ValueError(f"{out} has a nights/ folder but no store.json: not a store "
                         "written by prepare_store; choose another folder or pass "
                         "overwrite=True.")
    out.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(path, {**settings, "sleepkd_version": __version__,
                              "layout": "nights/<name>/*.npy + meta.json"})


def _remove_stale(nights_dir: Path) -> None:
    stale = [p for p in nights_dir.iterdir()
             if p.name.startswith(".") and p.name.endswith((".tmp", ".old"))]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    if stale:
        logger.info("Removed %d unfinished night folder(s) of an interrupted run.",
                    len(stale))


def _run(todo, nights_dir, skipped_dir, settings, n_jobs, backend, progress) -> list:
    from joblib import Parallel, delayed, parallel_config
    from tqdm.auto import tqdm

    rows = []
    if not todo:
        return rows
    context = (parallel_config(backend="dask") if backend == "dask"
               else contextlib.nullcontext())
    with tqdm(total=len(todo), unit="night", desc="prepare", disable=not progress) as bar:
        with context:
            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(prepare_night)(source, nights_dir, skipped_dir, settings)
                for source in todo)
            for row in results:
                rows.append(row)
                bar.update()
                if row["status"] != "ok":
                    bar.set_postfix(skipped=sum(r["status"] != "ok" for r in rows))
    return rows


def prepare_night(source: RecordingSource, nights_dir: Path, skipped_dir: Path,
                  settings: dict) -> dict:
    """Prepare one night into ``nights_dir``; return its QC row (never raises on bad
    data: the failure is the row's ``reason``). Runs in the joblib / Dask workers."""
    nights_dir, skipped_dir = Path(nights_dir), Path(skipped_dir)
    skipped = skipped_dir / f"{source.name}.json"
    try:
        rec = source.load()
        arrays, meta = _preprocess(rec, source, settings)
        _write_night(nights_dir, source.name, arrays, meta)
    except Exception as exc:  # a bad night must never stop the batch
        shutil.rmtree(nights_dir / f".{source.name}.tmp", ignore_errors=True)
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        row = _empty_row(source, reason)
        _write_json_atomic(skipped, row)
        return row
    skipped.unlink(missing_ok=True)
    return meta["qc"]


def _empty_row(source: RecordingSource, reason: str) -> dict:
    row = {column: None for column in QC_COLUMNS}
    row.update(name=source.name, subject=source.subject or source.name,
               status="skipped", reason=reason, kind=source.kind)
    return row


def _preprocess(rec, source: RecordingSource, settings: dict) -> tuple[dict, dict]:
    """Arrays and meta of one night (raises ValueError on unusable data)."""
    from sleepkd import __version__
    from sleepkd.datasets._epochs import make_epochs

    beats_from = "annotations"
    beats = rec.beat_times
    info = {}
    if beats is None:
        if rec.ecg is None or rec.fs_ecg is None:
            raise ValueError(f"{source.paths[0]}: no beat annotations and no ECG channel: "
                             "no heart rate can be computed.")
        from sleepkd.signal._rpeaks import detect_rpeaks

        ecg = np.asarray(rec.ecg, dtype=np.float64)
        bad = ~np.isfinite(ecg)
        if bad.any():  # the detector refuses NaN; flat stretches give no beats
            info["n_nonfinite_ecg_samples"] = int(bad.sum())
            ecg = np.where(bad, 0.0, ecg)
        beats = detect_rpeaks(ecg, float(rec.fs_ecg)) / float(rec.fs_ecg)
        beats_from = "ecg"
        if len(beats) < 2:
            raise ValueError(f"{source.paths[0]}: no R-peaks detected in the ECG "
                             f"(flat or noise): no heart rate.")
    beats = np.asarray(beats, dtype=np.float64)
    rec = dataclasses.replace(rec, beat_times=beats)
    signals = ["heart_rate"]
    if settings["fs_eeg"] is not None and rec.eeg is not None:
        signals.append("eeg")
    if settings["fs_ecg"] is not None:
        if rec.ecg is None:
            raise ValueError(f"{source.paths[0]}: no ECG channel, and fs_ecg asks to "
                             "store the ECG waveform.")
        signals.append("ecg")
    data = make_epochs(rec, scheme=settings["scheme"], signals=tuple(signals),
                       fs_hr=settings["fs_hr"], fs_eeg=settings["fs_eeg"],
                       fs_ecg=settings["fs_ecg"], unscored="keep", pad="zeros")
    report = data.hr_report[rec.name]
    stages = np.asarray(data.y, dtype="<U2")
    arrays = {
        "hr": np.ascontiguousarray(data.X_hr, dtype=np.float32),
        "hr_valid": np.asarray(data.hr_valid, dtype=bool),
        "stages": stages,
        "onsets": np.asarray(data.onsets, dtype=np.float64),
        "beats": beats,
    }
    if data.X_eeg is not None:
        arrays["eeg"] = np.ascontiguousarray(data.X_eeg, dtype=np.float32)
    if data.X_ecg is not None:
        arrays["ecg"] = np.ascontiguousarray(data.X_ecg, dtype=np.float32)
    dropped = data.dropped["per_record"][rec.name]
    n_unscored = int(np.count_nonzero(stages == UNSCORED))
    qc = {
        "name": source.name, "subject": str(rec.subject), "status": "ok", "reason": "",
        "kind": source.kind,
        "duration_h": round(float(rec.duration) / 3600.0, 6),
        "n_epochs": int(len(stages)), "n_scored": int(len(stages) - n_unscored),
        "n_unscored": n_unscored,
        "n_dropped_epochs": int(dropped["outside_signal"] + dropped["nonfinite"]),
        "n_beats": int(len(beats)), "beats_from": beats_from,
        "n_rejected_beats": int(report["n_rejected_beats"]),
        "gap_seconds": round(float(report["gap_seconds"]), 3),
        "n_invalid_hr_epochs": int(np.count_nonzero(~arrays["hr_valid"])),
    }
    meta = {
        "format": FORMAT_VERSION, "complete": True,
        "name": source.name, "subject": str(rec.subject), "source": rec.source,
        "kind": source.kind, "files": list(source.paths),
        "scheme": settings["scheme"], "epoch_length": float(data.epoch_length),
        "fs_hr": settings["fs_hr"],
        "fs_eeg": settings["fs_eeg"] if "eeg" in arrays else None,
        "fs_ecg": settings["fs_ecg"] if "ecg" in arrays else None,
        "eeg_channels": list(rec.eeg_channels) if "eeg" in arrays else [],
        "ecg_channel": rec.info.get("ecg_channel"),
        "arrays": {k: {"shape": list(v.shape), "dtype": v.dtype.str}
                   for k, v in arrays.items()},
        "qc": qc, "hr_report": report,
        "dropped": {k: int(v) for k, v in dropped.items()},
        "info": info,
        "sleepkd_version": __version__,
        "prepared_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }
    return arrays, meta


def _save_array(path: Path, array: np.ndarray) -> None:
    """Write one ``.npy`` file and flush it to disk."""
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def _write_night(nights_dir: Path, name: str, arrays: dict, meta: dict) -> None:
    """Write a night into ``.<name>.tmp`` (meta last) and rename it into place."""
    tmp = nights_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for key, value in arrays.items():
        _save_array(tmp / f"{key}.npy", value)
    _write_json(tmp / "meta.json", meta)
    final = nights_dir / name
    if final.exists():  # an incomplete or outdated folder: move it away first
        old = nights_dir / f".{name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _write_json(path: Path, content: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(_jsonable(content), handle, indent=1, sort_keys=False)
        handle.flush()
        os.fsync(handle.fileno())


def _write_json_atomic(path: Path, content: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    _write_json(tmp, content)
    os.replace(tmp, path)


def _write_csv_atomic(table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _read_complete_meta(folder: Path) -> dict | None:
    """The meta of a complete night folder, else ``None``."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not meta.get("complete") or meta.get("format") != FORMAT_VERSION:
        return None
    return meta


def _qc_table(out: Path):
    """QC rows of every night of the store (ok and skipped), sorted by name."""
    import pandas as pd

    rows = {}
    skipped_dir = out / "skipped"
    if skipped_dir.is_dir():
        for path in sorted(skipped_dir.glob("*.json")):
            try:
                row = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            rows[row["name"]] = row
    nights_dir = out / "nights"
    if nights_dir.is_dir():
        for folder in sorted(nights_dir.iterdir()):
            if folder.name.startswith("."):
                continue
            meta = _read_complete_meta(folder)
            if meta is not None:
                rows[meta["name"]] = meta["qc"]  # a later success wins over a skip
    table = pd.DataFrame([rows[k] for k in sorted(rows)], columns=list(QC_COLUMNS))
    for column in ("n_epochs", "n_scored", "n_unscored", "n_dropped_epochs", "n_beats",
                   "n_rejected_beats", "n_invalid_hr_epochs"):
        table[column] = table[column].astype("Int64")
    for column in ("duration_h", "gap_seconds"):
        table[column] = table[column].astype("float64")
    table["reason"] = table["reason"].fillna("").astype(str)
    return table


# ------------------------------------------------------------------------ reading
class NightStore:
    """Read a night store written by :func:`prepare_store`, lazily.

    Nothing but the settings is read when the store is opened; :meth:`load` maps a
    night's arrays (``np.load(mmap_mode="r")``), so any window of epochs of any night
    is read from disk only when sliced.

    Parameters
    ----------
    path : str or path-like
        The store folder (``OUT_DIR`` of :func:`prepare_store`).

    Attributes
    ----------
    path : Path
    settings : dict
        ``store.json``: ``fs_hr``, ``fs_eeg``, ``fs_ecg``, ``scheme``, ``format``,
        ``sleepkd_version``.

    Examples
    --------
    >>> store = NightStore("cohort_store")  # doctest: +SKIP
    >>> night = store.load(store.names[0])  # doctest: +SKIP
    >>> night["hr"][100:356].shape  # epochs 100-355, read from disk now  # doctest: +SKIP
    (256, 60)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        settings = self.path / "store.json"
        if not settings.is_file():
            raise FileNotFoundError(f"{self.path} is not a night store (no store.json); "
                                    "write one with prepare_store or `sleepkd prepare`.")
        self.settings = json.loads(settings.read_text(encoding="utf-8"))
        if self.settings.get("format") != FORMAT_VERSION:
            raise ValueError(f"{self.path}: store format {self.settings.get('format')!r}, "
                             f"this sleepkd reads format {FORMAT_VERSION}.")
        self._meta: dict[str, dict] = {}
        self.refresh()

    def refresh(self) -> None:
        """Scan the store again (after another :func:`prepare_store` run)."""
        nights = self.path / "nights"
        names = []
        if nights.is_dir():
            for folder in sorted(nights.iterdir()):
                if folder.name.startswith(".") or not folder.is_dir():
                    continue
                meta = _read_complete_meta(folder)
                if meta is not None:
                    self._meta[folder.name] = meta
                    names.append(folder.name)
        self._names = names

    @property
    def names(self) -> list[str]:
        """Names of the prepared (complete) nights, sorted."""
        return list(self._names)

    @property
    def scheme(self) -> str:
        """Label scheme of the stored stages."""
        return self.settings["scheme"]

    @property
    def qc(self):
        """The QC table (pandas DataFrame) of every night, prepared or skipped."""
        return _qc_table(self.path)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name) -> bool:
        return name in self._meta

    def __iter__(self):
        return iter(self.names)

    def __repr__(self) -> str:
        return (f"NightStore({str(self.path)!r}, nights={len(self)}, "
                f"scheme={self.scheme!r}, fs_hr={self.settings['fs_hr']:g})")

    def meta(self, name: str) -> dict:
        """The ``meta.json`` of a night."""
        if name not in self._meta:
            raise KeyError(f"No night {name!r} in the store {self.path} "
                           f"({len(self)} nights).")
        return self._meta[name]

    def load(self, name: str, mmap: bool = True) -> dict:
        """The arrays of a night: ``hr``, ``hr_valid``, ``stages``, ``onsets``,
        ``beats`` (and ``eeg`` / ``ecg`` when stored) plus ``meta``.

        Parameters
        ----------
        name : str
            Night name.
        mmap : bool, default=True
            Memory-map the arrays (read-only; nothing is read until sliced);
            ``False`` reads them into memory.
        """
        meta = self.meta(name)
        folder = self.path / "nights" / name
        out = {key: np.load(folder / f"{key}.npy", mmap_mode="r" if mmap else None,
                            allow_pickle=False) for key in meta["arrays"]}
        out["meta"] = meta
        return out

    def signal_path(self, name: str, signal: str) -> Path:
        """Path of a night's ``.npy`` file of ``signal`` (``"hr"``, ``"eeg"``,
        ``"ecg"``); KeyError if the night has none."""
        if signal not in self.meta(name)["arrays"]:
            raise KeyError(f"Night {name!r} has no {signal!r} array (stored: "
                           f"{sorted(self.meta(name)['arrays'])}).")
        return self.path / "nights" / name / f"{signal}.npy"

    def to_arrays(self, names: Sequence[str] | None = None,
                  signals: str | Iterable[str] = ("hr",), scheme: str | None = None):
        """Concatenate nights into in-memory arrays, as :func:`make_epochs` returns.

        For cohorts that fit in memory (or a subset of nights); only the requested
        nights and signals are read.

        Parameters
        ----------
        names : list of str, optional
            Nights, in order; default: all.
        signals : {"hr", "eeg", "ecg"} or iterable of them, default=("hr",)
        scheme : str, optional
            Scheme of ``y``; default: the store's (a coarser scheme is allowed).

        Returns
        -------
        data : sklearn.utils.Bunch
            ``X_hr`` (n, n_times_hr), ``X_eeg`` (n, n_channels, n_times_eeg), ``X_ecg``
            (n, n_times_ecg) (None when not requested), ``hr_valid``, ``y`` (with
            ``"?"`` for unscored epochs), ``scored``, ``groups`` (subjects),
            ``records`` (night names), ``onsets``, ``fs_hr``, ``fs_eeg``, ``fs_ecg``,
            ``scheme``, ``epoch_length``. Rows are grouped by night, in time order.
        """
        from sklearn.utils import Bunch

        names = self.names if names is None else list(names)
        if not names:
            raise ValueError("names is empty.")
        signals = (signals,) if isinstance(signals, str) else tuple(signals)
        unknown = [s for s in signals if s not in _SIGNAL_FILES]
        if unknown:
            raise ValueError(f"Unknown signal(s) {unknown}; expected {sorted(_SIGNAL_FILES)}.")
        scheme = self.scheme if scheme is None else scheme
        metas = [self.meta(n) for n in names]
        for signal in signals:
            lacking = [n for n, m in zip(names, metas) if signal not in m["arrays"]]
            if lacking:
                raise ValueError(f"{len(lacking)} night(s) have no {signal!r} array: "
                                 f"{lacking[:5]}.")
            shapes = {tuple(m["arrays"][signal]["shape"][1:]) for m in metas}
            if len(shapes) > 1:
                raise ValueError(f"The nights' {signal!r} arrays differ in shape per "
                                 f"epoch: {sorted(shapes)}.")
        lengths = [m["arrays"]["stages"]["shape"][0] for m in metas]
        n = int(sum(lengths))
        X = {}
        for signal in signals:
            shape = tuple(metas[0]["arrays"][signal]["shape"][1:])
            X[signal] = np.empty((n,) + shape, dtype=np.float32)
        y, hr_valid, onsets = [], [], []
        row = 0
        for name, length in zip(names, lengths):
            night = self.load(name)
            for signal in signals:
                X[signal][row:row + length] = night[signal]
            y.append(np.asarray(night["stages"]))
            hr_valid.append(np.asarray(night["hr_valid"]))
            onsets.append(np.asarray(night["onsets"]))
            row += length
        y = np.concatenate(y)
        if scheme != self.scheme:
            y = to_scheme(y, scheme)
        return Bunch(
            X_hr=X.get("hr"), X_eeg=X.get("eeg"), X_ecg=X.get("ecg"),
            hr_valid=np.concatenate(hr_valid), y=y, scored=y != UNSCORED,
            groups=np.repeat([m["subject"] for m in metas], lengths).astype(str),
            records=np.repeat(names, lengths).astype(str),
            onsets=np.concatenate(onsets), fs_hr=self.settings["fs_hr"],
            fs_eeg=self.settings["fs_eeg"] if "eeg" in signals else None,
            fs_ecg=self.settings["fs_ecg"] if "ecg" in signals else None,
            scheme=scheme, epoch_length=metas[0]["epoch_length"],
        )
