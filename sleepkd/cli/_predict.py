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
probabilities) and a hypnogram figure."""


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
    parser.add_argument("--quiet", action="store_true", help="print only the file list")
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
    print("Wrote: " + ", ".join(str(p) for p in written))
    return 0


def _plot(hypnogram, model, input_path: Path, path: Path) -> None:
    from sleepkd.evaluation._plots import close_figure, draw_hypnograms

    title = (f"{input_path.name}: stages predicted from the ECG by a sleepkd model "
             f"trained on {model.provenance}")
    fig = draw_hypnograms([("predicted", hypnogram["onset_s"].to_numpy(),
                            hypnogram["stage"].to_numpy())], model.scheme, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    close_figure(fig)
