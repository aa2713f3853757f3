"""``sleepkd predict MODEL INPUT``: stage a recording from its ECG or beats with a saved model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Stage one night with a model written by 'sleepkd train' or 'sleepkd demo' (a safe
.sleepkd file; a .joblib bundle only with --allow-pickle, since loading a pickle can
run code). INPUT is an ECG (.npy with --fs, .npz, .csv, WFDB record .hea/.dat, EDF/BDF)
or, for the night-level models, beat times: a WFDB beat annotation file (.ecg, .atr,
.qrs, or a record whose .ecg annotations lie beside it) or a CSV with a beat-time
column (beat_times, beats, r_peaks; seconds). Writes one row per 30-s epoch (onset,
stage, class probabilities, signal quality) and a hypnogram figure. Epochs without a
usable signal (ECG that fails the quality gate; heart rate bridged over missing or
rejected beats) are flagged in the quality column and shaded on the figure; a
recording where most epochs fail says so."""

#: CSV columns read as beat times (seconds), case-insensitive.
BEAT_COLUMNS = ("beat_times", "beat_time", "beats", "r_peaks", "rpeaks", "r_peak_s")
#: WFDB annotation extensions read as beats.
BEAT_ANNOTATIONS = (".ecg", ".atr", ".qrs")
#: WFDB annotation symbols that mark a heartbeat (PhysioBank's beat annotation codes).
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


def add_parser(subparsers, parents) -> None:
    """Register the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict", parents=parents, help="stage an ECG recording with a saved model",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL", help="model file (.sleepkd, or .joblib "
                                                       "with --allow-pickle)")
    parser.add_argument("input", metavar="INPUT", help="ECG recording or beat times")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load a .joblib model bundle (a pickle: only from a source "
                             "you trust, loading it can run code)")
    parser.add_argument("--out", metavar="CSV",
                        help="hypnogram CSV to write (default: INPUT name + "
                             "'_hypnogram.csv' in the current folder)")
    parser.add_argument("--plot", metavar="PNG",
                        help="hypnogram figure to write (default: the CSV path with .png)")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the figure")
    parser.add_argument("--channel", metavar="NAME",
                        help="channel / column to read (default: the one named ECG/EKG)")
    parser.add_argument("--fs", metavar="HZ", type=float,
                        help="sampling rate of INPUT (required for .npy and CSV without "
                             "a time column)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the file list (and an ECG quality warning)")
    parser.set_defaults(run=run)


def _stage_minutes(hypnogram, classes, epoch_length: float, scheme: str) -> str:
    from sleepkd.stages import SCHEMES

    counts = hypnogram["stage"].value_counts()
    order = SCHEMES.get(scheme, ())
    classes = sorted(classes, key=lambda c: order.index(c) if c in order else len(order))
    return ", ".join(f"{c} {counts.get(c, 0) * epoch_length / 60:.1f} min" for c in classes)


def run(args: argparse.Namespace) -> int:
    """Run ``sleepkd predict``; return the exit code."""
    from sleepkd.cli import UsageError

    if args.plot and args.no_plot:
        raise UsageError("--plot and --no-plot exclude each other")
    model_path, input_path = Path(args.model), Path(args.input)
    model = load_any_model(model_path, allow_pickle=args.allow_pickle)
    beats = _read_beats(input_path) if hasattr(model, "predict_beats") else None
    try:
        if beats is not None:
            beat_times, info = beats
            hypnogram = model.predict_beats(beat_times)
            source = f"{len(beat_times)} beats from {info['source']}"
        else:
            from sleepkd.io import read_ecg

            ecg, fs, info = read_ecg(input_path, channel=args.channel, fs=args.fs)
            hypnogram = model.predict_recording(ecg, fs)
            source = f"channel {info['channel']}, {fs:g} Hz"
    except ValueError as exc:
        raise ValueError(f"{input_path}: {exc}") from exc

    out = Path(args.out) if args.out else Path(f"{input_path.stem}_hypnogram.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    hypnogram.to_csv(out, index=False, float_format="%.4f")
    written = [out]
    if not args.no_plot:
        plot_path = Path(args.plot) if args.plot else out.with_suffix(".png")
        try:
            _plot(hypnogram, model, input_path, plot_path)
            written.append(plot_path)
        except ImportError as exc:
            if args.plot:  # asked for explicitly: an error
                raise
            logger.warning("Hypnogram figure skipped: %s", exc)

    if not args.quiet:
        n = len(hypnogram)
        print(f"Staged {n} epochs ({n * model.epoch_length / 3600:.2f} h) of {input_path} "
              f"({source}) with {model_path}.")
        print(f"Stages: {_stage_minutes(hypnogram, model.classes_, model.epoch_length, model.scheme)}.")
        print(f"Model: {model.describe()}")
    quality = _quality_line(hypnogram)
    if quality and (not args.quiet or quality.startswith("Warning")):
        print(quality)
    print("Wrote: " + ", ".join(str(p) for p in written))
    return 0


def load_any_model(path: Path, *, allow_pickle: bool = False):
    """A safe ``.sleepkd`` model, or a joblib bundle when ``allow_pickle`` is set."""
    from sleepkd.io._model_file import SUFFIX, load_model_file

    if path.suffix == SUFFIX:
        return load_model_file(path)
    if not allow_pickle:
        if not path.exists():
            raise FileNotFoundError(f"No such model file: {path}")
        raise ValueError(
            f"{path} is not a safe {SUFFIX} model file. A joblib model bundle is a pickle, "
            "which can run any code when it is loaded: pass --allow-pickle if it comes "
            f"from a source you trust, or use a {SUFFIX} model ('sleepkd train' writes one).")
    from sleepkd.evaluation._bundle import load_model

    return load_model(path)


def _read_beats(path: Path):
    """``(beat_times, info)`` when ``path`` holds beat times, else ``None`` (an ECG)."""
    import numpy as np

    suffix = path.suffix.lower()
    if suffix == ".csv":
        import pandas as pd

        try:
            header = pd.read_csv(path, nrows=0)
        except Exception:  # noqa: BLE001 - not a CSV with a header: let read_ecg say why
            return None
        columns = {c.strip().lower(): c for c in header.columns}
        name = next((columns[c] for c in BEAT_COLUMNS if c in columns), None)
        if name is None:
            return None
        values = pd.read_csv(path, usecols=[name])[name].to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{path}: column {name!r} holds empty or non-numeric beat times.")
        return values, {"source": f"column {name!r}"}
    record = path.with_suffix("") if suffix in (".hea", ".dat", *BEAT_ANNOTATIONS) else path
    extensions = [suffix] if suffix in BEAT_ANNOTATIONS else list(BEAT_ANNOTATIONS)
    for extension in extensions:
        if record.with_name(record.name + extension).is_file():
            return _wfdb_beats(record, extension[1:])
    return None


def _wfdb_beats(record: Path, extension: str):
    """Beat times (s) of a WFDB beat annotation file; non-beat annotations are skipped."""
    import numpy as np

    from sleepkd.io._slpdb import _import_wfdb

    wfdb = _import_wfdb()
    try:
        ann = wfdb.rdann(str(record), extension)
    except Exception as exc:  # noqa: BLE001 - wfdb raises many types on bad files
        raise ValueError(f"{record}.{extension} is not a readable WFDB annotation file "
                         f"({type(exc).__name__}: {exc}).") from exc
    fs = ann.fs
    if not fs:
        header = record.with_name(record.name + ".hea")
        if not header.is_file():
            raise ValueError(f"{record}.{extension} has no sampling rate and no .hea header "
                             "beside it.")
        fs = wfdb.rdheader(str(record)).fs
    beats = np.array([s in BEAT_SYMBOLS for s in ann.symbol], dtype=bool)
    times = np.asarray(ann.sample, dtype=float)[beats] / float(fs)
    return np.sort(times), {"source": f"{record.name}.{extension} ({int((~beats).sum())} "
                                      "non-beat annotations skipped)"}


def _quality_column(hypnogram) -> str:
    return "ecg_quality" if "ecg_quality" in hypnogram.columns else "hr_quality"


def _failed(quality):
    import numpy as np

    from sleepkd.evaluation._bundle import ECG_FAILED

    return np.isin(quality, (*ECG_FAILED, "gap"))


def _quality_line(hypnogram) -> str:
    """One line on the epochs without a usable signal ('' if none)."""
    column = _quality_column(hypnogram)
    quality = hypnogram[column].to_numpy()
    n, n_failed = len(quality), int(_failed(quality).sum())
    if column == "hr_quality":
        if not n_failed:
            return ""
        line = (f"{n_failed} of {n} epochs ({100.0 * n_failed / n:.0f}%) have heart rate "
                "mostly bridged over missing or rejected beats; they are flagged in the "
                "hr_quality column")
        if n_failed > n / 2:
            return (f"Warning: {line}. Most of this night has no usable heart rate: its "
                    "stages are not backed by heartbeats.")
        return f"Heart-rate quality: {line}."
    if (quality == "unchecked").all():
        return "ECG quality: not checked (R-peak detection needs at least 50 Hz)."
    if not n_failed:
        return ""
    line = (f"{n_failed} of {n} epochs ({100.0 * n_failed / n:.0f}%) failed the ECG "
            f"quality gate (noise: {int((quality == 'noise').sum())}, no beats: "
            f"{int((quality == 'no_beats').sum())}); they are flagged in the "
            "ecg_quality column")
    if n_failed > n / 2:
        return (f"Warning: {line}. Most of this recording is not a usable ECG: its "
                "stages are not backed by heartbeats (check the channel and electrodes).")
    return f"ECG quality: {line}."


def _failed_spans(onsets, quality, epoch_length: float) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of each run of consecutive epochs that failed the gate."""
    spans: list[tuple[float, float]] = []
    for onset, failed in zip(onsets, _failed(quality)):
        if not failed:
            continue
        if spans and abs(spans[-1][1] - onset) < 1e-6:
            spans[-1] = (spans[-1][0], onset + epoch_length)
        else:
            spans.append((onset, onset + epoch_length))
    return spans


def _shade_failed_epochs(ax, onsets, quality, epoch_length: float) -> None:
    """Shade (in red) the epochs whose ECG failed the quality gate, with a legend."""
    spans = _failed_spans(onsets, quality, epoch_length)
    for i, (start, end) in enumerate(spans):
        ax.axvspan(start / 3600.0, end / 3600.0, color="tab:red", alpha=0.25, lw=0,
                   label="no usable ECG / heart rate" if i == 0 else None)
    if spans:
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7,
                  frameon=False)  # above the panel, clear of the hypnogram


def _plot(hypnogram, model, input_path: Path, path: Path) -> None:
    from sleepkd.evaluation._plots import close_figure, draw_hypnograms

    title = (f"{input_path.name}: stages predicted from the heart by a sleepkd model "
             f"trained on {model.provenance}")
    onsets = hypnogram["onset_s"].to_numpy()
    fig = draw_hypnograms([("predicted", onsets, hypnogram["stage"].to_numpy())],
                          model.scheme, title=title)
    _shade_failed_epochs(fig.axes[0], onsets,
                         hypnogram[_quality_column(hypnogram)].to_numpy(), model.epoch_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    close_figure(fig)
