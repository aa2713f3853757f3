"""``sleepkd train INPUT``: fit a night-level stager on a folder of recordings."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

logger = logging.getLogger(__name__)

_DESCRIPTION = """\
Fit a night-level ECG stager on a folder of recordings with expert stages and write
it as a safe .sleepkd model file for 'sleepkd predict'. The student reads the heart
rate of the whole night (from annotated beats, or R-peaks detected in the ECG). When
every recording also has an EEG, an EEG teacher is fitted first and the student learns
from it too (soft-label distillation); otherwise the student learns from the stages
alone. By default the model is a seed ensemble: it is fitted 3 times (--members)
and the probabilities averaged, which is steadier on a few dozen nights. INPUT is a
folder of WFDB records with beat and stage annotations (slpdb style:
NAME.hea, NAME.ecg beats, NAME.st stages). With --store DIR instead, the student is
trained from a night store written by 'sleepkd prepare' (any cohort it reads: NSRR,
EDF+, WFDB), one batch of windows at a time: memory stays bounded by the batch, not
the cohort (heart rate only; the cascade needs the arrays in memory; one fit unless
--members says more)."""


def add_parser(subparsers, parents) -> None:
    """Register the ``train`` subcommand."""
    from sleepkd.cli._demo import add_threads_argument

    parser = subparsers.add_parser(
        "train", parents=parents, help="fit a stager on a folder of recordings",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", metavar="INPUT", nargs="?", help="folder of recordings")
    parser.add_argument("--store", metavar="DIR",
                        help="train from a night store ('sleepkd prepare') instead of INPUT")
    parser.add_argument("--out", metavar="MODEL", default="sleepkd-model.sleepkd",
                        help="model file to write (default: ./sleepkd-model.sleepkd)")
    parser.add_argument("--scheme", choices=("4class", "3class", "5class"), default="4class",
                        help="label scheme (default: 4class)")
    parser.add_argument("--records", metavar="NAME", nargs="+",
                        help="only these records (default: every record in INPUT)")
    parser.add_argument("--ecg-only", action="store_true",
                        help="train the ECG student alone even when there is EEG")
    parser.add_argument("--max-epochs", metavar="E", type=int, default=60,
                        help="training epochs of the student, and of the EEG teacher "
                             "when there is one (each stops early once its validation "
                             "nights stop improving; default: 60)")
    parser.add_argument("--seed", metavar="S", type=int, default=0, help="random seed")
    parser.add_argument("--members", metavar="N", type=int, default=None,
                        help="fit the model N times with seeds S, S+1, ... and average "
                             "their probabilities (a seed ensemble: steadier on few "
                             "nights; training takes N times as long; default: 3, and "
                             "1 with --store, whose cohorts are large)")
    parser.add_argument("--quiet", action="store_true", help="print only the file written")
    add_threads_argument(parser)
    parser.set_defaults(run=run)


def _read_recordings(folder: Path, records):
    """Recordings of a folder (WFDB records with slpdb-style annotations)."""
    from sleepkd.io import load_slpdb

    if not folder.is_dir():
        raise FileNotFoundError(f"No such folder: {folder}")
    if not any(folder.glob("*.hea")):
        raise ValueError(f"{folder} holds no WFDB record (.hea): sleepkd train reads folders "
                         "of WFDB records with beat (.ecg) and stage (.st) annotations.")
    return load_slpdb(folder, records=records)


def run(args: argparse.Namespace) -> int:
    """Run ``sleepkd train``; return the exit code."""
    from sleepkd import DistilledECGStager
    from sleepkd.cli import UsageError
    from sleepkd.cli._demo import set_threads
    from sleepkd.evaluation._night_bundle import NightStagingModel
    from sleepkd.evaluation._provenance import data_provenance
    from sleepkd.evaluation._recipes import (FS_HR, HR_SCALE, night_inputs, night_student,
                                             night_teacher)
    from sleepkd.io._model_file import save_model_file

    if args.max_epochs < 1:
        raise UsageError("--max-epochs must be at least 1")
    if args.members is None:
        args.members = 1 if args.store is not None else 3
    if args.members < 1:
        raise UsageError("--members must be at least 1")
    if (args.input is None) == (args.store is None):
        raise UsageError("give either INPUT (a folder of recordings) or --store DIR")
    set_threads(args.threads)
    say = (lambda *a: None) if args.quiet else print
    start = time.perf_counter()
    if args.store is not None:
        return _train_from_store(args, say, start)
    recordings = _read_recordings(Path(args.input), args.records)
    data = night_inputs(recordings, scheme=args.scheme,
                        eeg=False if args.ecg_only else None)
    n_nights, n_subjects = len(set(data.nights)), len(set(data.groups))
    if n_subjects < 2:
        raise ValueError(f"{args.input} holds {n_subjects} subject(s): training needs at "
                         "least 2, one of them to select the checkpoint on.")
    verbose = 0 if args.quiet else 1
    student = night_student(max_epochs=args.max_epochs, random_state=args.seed,
                            verbose=verbose)
    say(f"sleepkd train: {n_nights} nights of {n_subjects} subjects, "
        f"{int(data.scored.sum())} scored epochs ({data.n_unscored_kept} unscored kept in "
        f"place). {data.DESCR}")
    if data.X_eeg is not None:
        say("Every recording has an EEG: fitting the EEG night teacher, then the ECG "
            "student with soft-label distillation.")
        estimator = _ensemble(DistilledECGStager(
            teacher=night_teacher(max_epochs=args.max_epochs, random_state=args.seed,
                                  verbose=verbose),
            student=student, strategy="sd+cl", random_state=args.seed), args)
        estimator.fit(data.X, data.y, X_eeg=data.X_eeg, groups=data.groups,
                      nights=data.nights)
        strategy = "sd+cl"
    else:
        say("No EEG (or --ecg-only): fitting the ECG night student on the stages alone.")
        estimator = _ensemble(student, args)
        estimator.fit(data.X, data.y, nights=data.nights, groups=data.groups)
        strategy = "baseline"
    valid_f1 = _valid_f1(estimator)
    model = NightStagingModel(
        estimator, fs_hr=FS_HR, scheme=args.scheme, standardize=HR_SCALE,
        provenance=f"{data_provenance(data)} ({n_nights} nights from {args.input})",
        info={"strategy": strategy, "records": sorted(set(data.nights.tolist())),
              "valid_weighted_f1": None if valid_f1 is None else float(valid_f1),
              "seed": args.seed, "members": args.members})
    path = save_model_file(model, args.out)
    say(f"Trained in {time.perf_counter() - start:.0f} s; validation weighted F1 "
        f"{'n/a' if valid_f1 is None else f'{valid_f1:.3f}'} (held-out nights of the "
        "training subjects, used to pick the checkpoint: not a test score"
        + ("" if args.members == 1 else "; mean over the members") + ").")
    say(f"Model: {model.describe()}")
    print(f"Wrote: {path}")
    return 0


def _train_from_store(args, say, start: float) -> int:
    """``sleepkd train --store DIR``: the heart-rate night student from a night store."""
    import numpy as np
    from sklearn.model_selection import GroupShuffleSplit

    from sleepkd.evaluation._night_bundle import NightStagingModel
    from sleepkd.evaluation._recipes import FS_HR, HR_SCALE, night_student
    from sleepkd.io import NightStore, StoreWindows
    from sleepkd.io._model_file import save_model_file

    store = NightStore(args.store)
    fs_hr = float(store.settings.get("fs_hr", FS_HR))
    if abs(fs_hr - FS_HR) > 1e-9:
        raise ValueError(f"{args.store} holds heart rate at {fs_hr:g} Hz; the night student "
                         f"reads {FS_HR:g} Hz: prepare the store with --fs-hr {FS_HR:g}.")
    names = list(args.records) if args.records else store.names
    subjects = np.array([store.meta(name)["subject"] for name in names])
    if len(set(subjects)) < 2:
        raise ValueError(f"{args.store} holds {len(set(subjects))} subject(s): training needs "
                         "at least 2, one of them to select the checkpoint on.")
    student = night_student(max_epochs=args.max_epochs, random_state=args.seed,
                            verbose=0 if args.quiet else 1)
    split = GroupShuffleSplit(n_splits=1, test_size=student.validation_fraction,
                              random_state=args.seed)
    train_idx, valid_idx = next(split.split(names, groups=subjects))
    common = dict(signal="hr", scheme=args.scheme, standardize=HR_SCALE)
    train = StoreWindows(store, [names[i] for i in train_idx], window=student.window,
                         seed=args.seed, **common)
    present = sorted({int(c) for y in train.y for c in np.unique(y) if c >= 0})
    if len(present) < len(train.classes):  # only the stages the training nights have
        classes = [train.classes[i] for i in present]
        train = StoreWindows(store, train.names, window=student.window, seed=args.seed,
                             classes=classes, **common)
    valid = StoreWindows(store, [names[i] for i in valid_idx], window=None,
                         classes=list(train.classes), **common)
    say(f"sleepkd train --store: {len(train.names)} training and {len(valid.names)} "
        f"validation nights of {len(set(subjects))} subjects, read from {args.store} in "
        f"windows of {student.window} epochs.")
    estimator = _ensemble(student, args).fit_windows(train, valid)
    valid_f1 = _valid_f1(estimator)
    model = NightStagingModel(
        estimator, fs_hr=FS_HR, scheme=args.scheme, standardize=HR_SCALE,
        provenance=f"{len(names)} nights of the night store {args.store}",
        info={"strategy": "baseline", "records": sorted(names), "seed": args.seed,
              "members": args.members,
              "valid_weighted_f1": None if valid_f1 is None else float(valid_f1)})
    path = save_model_file(model, args.out)
    say(f"Trained in {time.perf_counter() - start:.0f} s; validation weighted F1 "
        f"{'n/a' if valid_f1 is None else f'{valid_f1:.3f}'}.")
    print(f"Wrote: {path}")
    return 0


def _ensemble(estimator, args):
    """The estimator itself (``--members 1``) or a seed ensemble of it."""
    if args.members == 1:
        return estimator
    from sleepkd import SeedEnsemble

    return SeedEnsemble(estimator, n_members=args.members, random_state=args.seed)


def _valid_f1(estimator) -> float | None:
    """Validation weighted F1 of the kept checkpoint (the members' mean)."""
    import numpy as np

    scores = []
    for member in getattr(estimator, "estimators_", [estimator]):
        history = getattr(member, "student_", member).history_
        best = [row for row in history if row.get("best")]
        if best and best[-1].get("valid_f1") is not None:
            scores.append(float(best[-1]["valid_f1"]))
    return float(np.mean(scores)) if scores else None
