"""``sleepkd prepare``: a folder of recordings -> a night store (preprocessed once)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Preprocess every night found in INPUT_DIR (NSRR EDF + XML, EDF + hypnogram EDF or
CSV/TSV, WFDB slpdb-style records) into a night store in OUT_DIR: one folder of
memory-mappable .npy files per night (heart rate, the EEG channel and optionally the
ECG at the given rates, stages with unscored epochs kept as '?', beats) and a QC
table OUT_DIR/qc.csv. Nights run in parallel (--jobs, or a Dask cluster with
--dask-scheduler); a corrupt or truncated night is reported and skipped; running the
command again resumes: finished nights are not prepared again."""


def add_parser(subparsers, parents) -> None:
    """Register the ``prepare`` subcommand."""
    parser = subparsers.add_parser(
        "prepare", parents=parents, help="preprocess a cohort into a night store",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", metavar="INPUT_DIR", help="folder of recordings")
    parser.add_argument("out", metavar="OUT_DIR", help="night store to write or resume")
    parser.add_argument("--fs-hr", metavar="HZ", type=float, default=2.0,
                        help="heart-rate rate (default: 2)")
    parser.add_argument("--fs-eeg", metavar="HZ", type=float, default=100.0,
                        help="EEG rate (default: 100; 0: no EEG stored)")
    parser.add_argument("--fs-ecg", metavar="HZ", type=float, default=None,
                        help="store the ECG waveform at this rate (default: not stored)")
    parser.add_argument("--scheme", choices=("5class", "4class", "3class"),
                        default="5class", help="label scheme (default: 5class)")
    parser.add_argument("--jobs", metavar="N", type=int, default=1,
                        help="nights prepared at once (default: 1; -1: all cores)")
    parser.add_argument("--dask-scheduler", metavar="ADDRESS",
                        help="run on a dask.distributed cluster (e.g. tcp://host:8786; "
                             "needs sleepkd[dask] and the files at the same paths on "
                             "every worker)")
    parser.add_argument("--overwrite", action="store_true",
                        help="rebuild OUT_DIR from scratch instead of resuming")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar, warnings only; the summary is printed")
    parser.set_defaults(run=run)


def summary(qc, run_counts: dict, qc_path: Path) -> str:
    """The one-paragraph summary printed at the end of ``sleepkd prepare``."""
    ok = qc[qc["status"] == "ok"]
    skipped = qc[qc["status"] != "ok"]
    parts = [
        f"{run_counts['prepared']} night(s) prepared, {run_counts['skipped']} skipped, "
        f"{run_counts['already']} already in the store.",
        f"The store holds {len(ok)} night(s) ({ok['duration_h'].sum():.1f} h): "
        f"{int(ok['n_epochs'].sum())} epochs, {int(ok['n_scored'].sum())} scored and "
        f"{int(ok['n_unscored'].sum())} unscored (kept as '?'), "
        f"{int(ok['n_dropped_epochs'].sum())} dropped; {int(ok['n_beats'].sum())} beats, "
        f"{int(ok['n_rejected_beats'].sum())} rejected as ectopic or artefact; "
        f"{int(ok['n_invalid_hr_epochs'].sum())} epochs without enough real heart rate.",
    ]
    if len(skipped):
        shown = "; ".join(f"{n}: {r}" for n, r in zip(skipped["name"][:5],
                                                        skipped["reason"][:5]))
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        parts.append(f"{len(skipped)} night(s) could not be prepared: {shown}{more}.")
    parts.append(f"QC table: {qc_path}")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Run ``sleepkd prepare``; return the exit code."""
    from sleepkd.cli import UsageError
    from sleepkd.io._store import discover_sources, prepare_store

    if args.jobs == 0:
        raise UsageError("--jobs must not be 0")
    sources = discover_sources(args.input)
    settings = dict(fs_hr=args.fs_hr, fs_eeg=args.fs_eeg or None, fs_ecg=args.fs_ecg,
                    scheme=args.scheme, n_jobs=args.jobs, progress=not args.quiet,
                    overwrite=args.overwrite)
    logger.info("%d recording(s) found in %s.", len(sources), args.input)
    if args.dask_scheduler:
        try:
            from distributed import Client
        except ImportError as exc:
            raise ImportError('--dask-scheduler needs dask.distributed: pip install '
                              '"sleepkd[dask]"') from exc
        with Client(args.dask_scheduler) as client:
            logger.info("Running on the Dask cluster at %s (%d workers).",
                        args.dask_scheduler, len(client.scheduler_info()["workers"]))
            qc = prepare_store(sources, args.out, backend="dask", **settings)
    else:
        qc = prepare_store(sources, args.out, **settings)
    print(summary(qc, qc.attrs["run"], Path(args.out) / "qc.csv"))
    return 0 if (qc["status"] == "ok").any() else 1
