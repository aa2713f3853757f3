"""``sleepkd experiment``: the full cross-validated comparison, on synthetic or
semi-real nights."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: Row name of the per-epoch EEG teacher beside the night teacher.
EPOCH_TEACHER_NAME = "EEG teacher (per-epoch)"

_DESCRIPTION = """\
Subject-wise cross-validation of the EEG teacher, the ECG students of every
distillation strategy and reference models, for each label scheme and seed (the same
folds and seeds for every model). --models night (default): the night-level EEG
teacher and heart-rate student (strategies baseline, sd+cl, fd+sd+cl), beside the
per-epoch EEG teacher and the per-epoch ContextNet student; --models epoch: the
per-epoch teacher and students of the paper's strategies (baseline, sd+cl, at+cl,
at+sd+cl) and an HRV + gradient-boosting reference. --data synthetic generates nights
with sleepkd (--physiology shared: EEG and heart driven by one latent state, labels a
noisy scorer's reading of it); --data semireal uses the real beat times and expert
stages of the MIT-BIH Polysomnographic Database (shipped with sleepkd) with
synthesised ECG and EEG waveforms."""


def add_parser(subparsers, parents) -> None:
    """Register the ``experiment`` subcommand."""
    from sleepkd.cli._demo import add_threads_argument

    parser = subparsers.add_parser(
        "experiment", parents=parents, help="cross-validated comparison of all models",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=("synthetic", "semireal"), default="synthetic",
                        help="synthetic nights, or real slpdb beats and stages with "
                             "synthetic waveforms (default: synthetic)")
    parser.add_argument("--models", choices=("night", "epoch"), default="night",
                        help="night-level models (default) or the per-epoch models")
    parser.add_argument("--physiology", choices=("shared", "labels", "independent"),
                        default="shared",
                        help="generator's link between EEG and heart (default: shared)")
    parser.add_argument("--student-input", choices=("heart_rate", "raw"),
                        default="heart_rate",
                        help="--models epoch: the student reads heart rate with context "
                             "(default) or one raw 30-s ECG epoch through a compact U-Time "
                             "(the paper's setting, with a compact U-Time teacher)")
    parser.add_argument("--no-references", action="store_true",
                        help="only the teacher and the distillation strategies (no "
                             "per-epoch or HRV reference models)")
    parser.add_argument("--strategies", nargs="+", metavar="STRATEGY",
                        help="distillation strategies (default: baseline sd+cl fd+sd+cl "
                             "for night models, the paper's four for epoch models)")
    parser.add_argument("--schemes", nargs="+", choices=("5class", "4class", "3class"),
                        default=["4class", "3class"], metavar="SCHEME",
                        help="label schemes: 5class, 4class, 3class (default: 4class 3class)")
    parser.add_argument("--folds", metavar="K", type=int, default=5,
                        help="subject-wise folds (default: 5)")
    parser.add_argument("--seeds", metavar="S", type=int, nargs="+", default=[0],
                        help="seeds; every fold runs once per seed (default: 0)")
    parser.add_argument("--n-subjects", metavar="N", type=int, default=10,
                        help="synthetic subjects (--data synthetic; default: 10)")
    parser.add_argument("--hours", metavar="H", type=float, default=4.0,
                        help="hours per synthetic night (--data synthetic; default: 4)")
    parser.add_argument("--max-epochs", metavar="E", type=int, default=30,
                        help="training epochs per network (default: 30)")
    parser.add_argument("--teacher-epochs", metavar="E", type=int,
                        help="--models night: training epochs of the night teacher "
                             "(default: as --max-epochs)")
    parser.add_argument("--patience", metavar="P", type=int,
                        help="early-stopping patience in epochs of every network; 0: "
                             "none, train every epoch and keep the best checkpoint on "
                             "validation weighted F1, as the paper (default: a third of "
                             "--max-epochs, at least 3)")
    parser.add_argument("--device", metavar="DEVICE", default="cpu",
                        help="torch device of every network, e.g. cuda or cuda:1 "
                             "(default: cpu)")
    parser.add_argument("--jobs", metavar="J", type=int, default=1,
                        help="fold x seed runs in parallel processes, each with "
                             "--threads torch threads; results as with 1 (default: 1)")
    parser.add_argument("--out", metavar="DIR", default="sleepkd-experiment",
                        help="output folder (default: ./sleepkd-experiment)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the results table and the file list")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    add_threads_argument(parser)
    parser.set_defaults(run=run)


def _check_args(args) -> None:
    from sleepkd.cli import UsageError

    if args.folds < 2:
        raise UsageError("--folds must be at least 2")
    if args.data == "synthetic" and args.n_subjects < args.folds:
        raise UsageError(f"--n-subjects ({args.n_subjects}) must be at least --folds "
                         f"({args.folds})")
    if not args.hours > 0:
        raise UsageError("--hours must be positive")
    if args.max_epochs < 1:
        raise UsageError("--max-epochs must be at least 1")
    if args.teacher_epochs is not None and args.teacher_epochs < 1:
        raise UsageError("--teacher-epochs must be at least 1")
    if args.teacher_epochs is not None and args.models != "night":
        raise UsageError("--teacher-epochs sets the night teacher (--models night); the "
                         "per-epoch models train for --max-epochs")
    if args.patience is not None and args.patience < 0:
        raise UsageError("--patience must be 0 (no early stopping) or positive")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if len(set(args.seeds)) != len(args.seeds):
        raise UsageError("--seeds has duplicates")
    _check_device(args.device)


def _check_device(device: str) -> None:
    """Refuse a device torch does not know or this machine lacks, before any data is
    generated (skorch would only fail at the first fit)."""
    import torch

    from sleepkd.cli import UsageError

    try:
        parsed = torch.device(device)
    except RuntimeError as err:
        raise UsageError(f"--device {device!r} is not a torch device ({err})") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: this machine has no CUDA GPU that torch can "
                         "use")


def _on_device(device: str, teacher, student, extra: dict) -> None:
    """Put every network of the experiment (teacher, student, the neural references)
    on ``device``; the gradient-boosting reference has no device and stays as it is."""
    estimators = [teacher, student] + [model for model, _ in extra.values()]
    for estimator in estimators:
        if "device" in estimator.get_params(deep=False):
            estimator.set_params(device=device)


def hrv_reference():
    """The reference row "HRV + gradient boosting": 8 HRV features per epoch
    (R-peaks detected in the ECG) into a histogram gradient-boosting classifier.

    Features undefined on every training row (LF power needs more than 30 s) are
    filled (``fill="median"``, with a logged warning), since the gradient boosting
    cannot bin an all-NaN column."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    from sleepkd.cli._demo import DEMO_FS
    from sleepkd.signal import HRVFeatures

    return Pipeline([
        ("hrv", HRVFeatures(fs=DEMO_FS, fill="median")),
        ("gbm", HistGradientBoostingClassifier(class_weight="balanced", max_iter=200,
                                               random_state=0)),
    ])


def load_data(args, *, return_recordings: bool = False):
    """The experiment's data set at the demo's sampling rate."""
    from sleepkd.cli._demo import DEMO_FS

    common = dict(fs_ecg=DEMO_FS, fs_eeg=DEMO_FS, scheme="5class",
                  physiology=args.physiology, return_recordings=return_recordings,
                  random_state=min(args.seeds))
    if args.data == "semireal":
        from sleepkd.datasets import make_semireal_psg

        if args.n_subjects != 10 or args.hours != 4.0:
            logger.warning("--n-subjects and --hours apply to --data synthetic only; "
                           "semireal uses every slpdb record.")
        return make_semireal_psg(**common)
    from sleepkd.datasets import make_synthetic_psg

    return make_synthetic_psg(n_subjects=args.n_subjects, hours=args.hours, **common)


def _patience(args) -> int | None:
    """Early-stopping patience of the per-epoch networks (None: train every epoch)."""
    from sleepkd.evaluation._recipes import resolve_patience

    return resolve_patience(args.patience, args.max_epochs)


def night_setup(args, recordings=None):
    """Data, teacher, student, strategies and reference models of ``--models night``
    (``recordings``: those of :func:`load_data`, when the caller has them already)."""
    from sleepkd.cli._demo import CONTEXT_NAME, DEMO_FS, DEMO_STRATEGIES, network_config
    from sleepkd.evaluation._recipes import night_config, night_experiment_data

    if recordings is None:
        recordings = load_data(args, return_recordings=True).recordings
    data = night_experiment_data(recordings, fs_eeg=DEMO_FS)
    config = night_config(args.max_epochs, tiny=args.tiny, quiet=args.quiet, fs_eeg=DEMO_FS,
                          teacher_epochs=args.teacher_epochs,
                          patience=args.patience)
    epoch_teacher = network_config(args.max_epochs, tiny=args.tiny, quiet=args.quiet,
                                   patience=_patience(args))["teacher"]
    extra = {} if args.no_references else {
        EPOCH_TEACHER_NAME: (epoch_teacher, "X_eeg"),
        CONTEXT_NAME: (config["context_student"], "X_hr_context")}
    _on_device(args.device, config["teacher"], config["student"], extra)
    return (data, config["teacher"], config["student"],
            tuple(args.strategies or DEMO_STRATEGIES), extra, config["stager_params"])


def epoch_setup(args):
    """Data, teacher, student, strategies and reference models of ``--models epoch``."""
    from sleepkd.cli._demo import heart_rate_inputs, network_config

    config = network_config(args.max_epochs, tiny=args.tiny, quiet=args.quiet,
                            patience=_patience(args))
    if args.student_input == "raw":  # the paper's setting: U-Time on raw epochs, both
        from sleepkd import ECGStudent

        data = load_data(args)
        student = ECGStudent(**config["teacher"].get_params())  # same network, on the ECG
        extra = {} if args.no_references else {
            "HRV + gradient boosting": (hrv_reference(), "X_ecg")}
        _on_device(args.device, config["teacher"], student, extra)
        return (data, config["teacher"], student,
                None if args.strategies is None else tuple(args.strategies), extra,
                config["stager_params"])
    data, _ = heart_rate_inputs(load_data(args), config["context"])
    extra = {} if args.no_references else {
        "HRV + gradient boosting": (hrv_reference(), "X_ecg_raw")}
    _on_device(args.device, config["teacher"], config["student"], extra)
    return (data, config["teacher"], config["student"],
            None if args.strategies is None else tuple(args.strategies), extra,
            config["stager_params"])


def run(args: argparse.Namespace) -> int:
    """Run ``sleepkd experiment``; return the exit code."""
    from sleepkd.cli._demo import set_threads
    from sleepkd.evaluation._runner import PROVENANCE_NOTE, data_provenance, run_experiment

    _check_args(args)
    set_threads(args.threads)
    start = time.perf_counter()
    say = (lambda *a: None) if args.quiet else print
    setup = night_setup if args.models == "night" else epoch_setup
    data, teacher, student, strategies, extra, stager_params = setup(args)
    provenance = data_provenance(data)
    say(f"sleepkd experiment ({args.models}-level models) on {PROVENANCE_NOTE[provenance]}: "
        f"{len(data.y)} epochs of {len(set(data.groups.tolist()))} subjects; {args.folds} "
        f"subject-wise folds x {len(args.seeds)} seed(s) x {len(args.schemes)} scheme(s).")
    result = run_experiment(
        data, teacher=teacher, student=student, schemes=args.schemes,
        strategies=strategies, extra_models=extra, n_splits=args.folds, seeds=args.seeds,
        stager_params=stager_params, n_jobs=args.jobs, verbose=0 if args.quiet else 1)
    paths = result.save(Path(args.out))
    print()
    print(result.to_markdown())
    say(f"Data: {PROVENANCE_NOTE[provenance]}. Finished in "
        f"{time.perf_counter() - start:.0f} s.")
    print("Files:")
    for path in paths.values():
        print(f"  {path}")
    return 0
