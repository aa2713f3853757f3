"""``sleepkd predict MODEL INPUT``: stage a recording from its ECG with a saved model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Stage one ECG recording with a model bundle saved by 'sleepkd demo' or
sleepkd.evaluation.save_model. INPUT is a .npy (needs --fs), .npz, .csv, WFDB record
(.hea) or EDF/BDF file. Writes one row per 30-s epoch (onset, stage, class
probabilities, ECG quality) and a hypnogram figure. Epochs whose ECG fails the
quality gate (noise, no beats) are flagged in the ecg_quality column and shaded on
the figure; a recording where most epochs fail says so."""


def add_parser(subparsers, parents) -> None:
    """Register the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict", parents=parents, help="stage an ECG recording with a saved model",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL", help="model bundle (.joblib)")
    parser.add_argument("input", metavar="INPUT", help="ECG recording")
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
    from sleepkd.datasets import read_ecg
    from sleepkd.evaluation._bundle import load_model

    if args.plot and args.no_plot:
        raise UsageError("--plot and --no-plot exclude each other")
    model_path, input_path = Path(args.model), Path(args.input)
    model = load_model(model_path)
    ecg, fs, info = read_ecg(input_path, channel=args.channel, fs=args.fs)
    try:
        hypnogram = model.predict_recording(ecg, fs)
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
              f"(channel {info['channel']}, {fs:g} Hz) with {model_path}.")
        print(f"Stages: {_stage_minutes(hypnogram, model.classes_, model.epoch_length, model.scheme)}.")
        print(f"Model: {model.describe()}")
    quality = _quality_line(hypnogram)
    if quality and (not args.quiet or quality.startswith("Warning")):
        print(quality)
    print("Wrote: " + ", ".join(str(p) for p in written))
    return 0


def _quality_line(hypnogram) -> str:
    """One line on the epochs whose ECG failed the quality gate ('' if none)."""
    import numpy as np

    from sleepkd.evaluation._bundle import ECG_FAILED

    quality = hypnogram["ecg_quality"].to_numpy()
    n, n_failed = len(quality), int(np.isin(quality, ECG_FAILED).sum())
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
    import numpy as np

    from sleepkd.evaluation._bundle import ECG_FAILED

    spans: list[tuple[float, float]] = []
    for onset, failed in zip(onsets, np.isin(quality, ECG_FAILED)):
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
                   label="ECG failed the quality gate" if i == 0 else None)
    if spans:
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=7,
                  frameon=False)  # above the panel, clear of the hypnogram


def _plot(hypnogram, model, input_path: Path, path: Path) -> None:
    from sleepkd.evaluation._plots import close_figure, draw_hypnograms

    title = (f"{input_path.name}: stages predicted from the ECG by a sleepkd model "
             f"trained on {model.provenance}")
    onsets = hypnogram["onset_s"].to_numpy()
    fig = draw_hypnograms([("predicted", onsets, hypnogram["stage"].to_numpy())],
                          model.scheme, title=title)
    _shade_failed_epochs(fig.axes[0], onsets, hypnogram["ecg_quality"].to_numpy(),
                         model.epoch_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    close_figure(fig)
