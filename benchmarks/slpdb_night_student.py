"""The package's night student on real beats and stages: slpdb, leave one subject out.

What a user gets from ``sleepkd train``: ``ECGNightStudent`` with the recipe of
``sleepkd.evaluation.night_student`` (HeartRateTCN on the instantaneous heart rate of
the whole night at 2 Hz, standardised per night), fitted through the sklearn API on 11
of the 12 slpdb subjects (one night held out of those for checkpoint selection) and
scored on the 12th, for each subject in turn. Beside it, on the same folds, the
previous per-epoch student (ContextNet on the heart rate of the epoch and 4 epochs on
each side). Both are 4-class models; the 3-class scores merge Light and Deep
probabilities into NREM. Scores are pooled over every scored test epoch of the 12
folds; the per-fold spread is the mean +- std of the test subjects' kappas.

And HRV features + gradient boosting, epoch by epoch, on the same folds (the
features of ``benchmarks/night_slpdb.py``).

The night student is a :class:`~sleepkd.SeedEnsemble` (what ``sleepkd train`` writes:
seeds 0, 1, 2, ... with probabilities averaged); the table has a row for each ensemble
size of ``--members`` (default 1, 3 and 5), read from the first members of one fit of
the largest ensemble (the mean of its first k members is exactly
``SeedEnsemble(n_members=k, random_state=0)``). ContextNet is fitted with one seed (it
takes about 25 min a seed here).

Run: ``OMP_NUM_THREADS=1 python benchmarks/slpdb_night_student.py`` (about 55 min at
one thread; ``--quick`` for 3 folds). Writes ``benchmarks/results/slpdb_night_student.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np


def _scores(y_true, proba, classes, scheme):
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    classes = list(classes)
    if scheme == "3class":
        merged = {"W": proba[:, classes.index("W")], "R": proba[:, classes.index("R")],
                  "N": proba[:, classes.index("L")] + proba[:, classes.index("D")]}
        names = list(merged)
        proba = np.stack([merged[n] for n in names], axis=1)
        classes = names
        y_true = np.where(np.isin(y_true, ["L", "D"]), "N", y_true)
    y_pred = np.asarray(classes)[proba.argmax(axis=1)]
    return y_true, y_pred, (cohen_kappa_score(y_true, y_pred),
                            f1_score(y_true, y_pred, average="weighted"),
                            accuracy_score(y_true, y_pred))


def _hrv_features(nights) -> np.ndarray:
    """Per-epoch HRV features of the rows of ``night_inputs`` (the architecture search's
    features: 30, 90 and 270-s windows, raw and standardised per night, relative time)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    import night_slpdb

    import warnings

    rows, names = [], []
    with warnings.catch_warnings():  # windows without beats: NaN, filled by the helper
        warnings.simplefilter("ignore", RuntimeWarning)
        for night in night_slpdb.prepare_nights():
            rows.append(night_slpdb.hrv_features(night))
            names += [night["name"]] * night["n_epochs"]
    if list(map(str, names)) != list(map(str, nights)):
        raise RuntimeError("the HRV feature rows do not line up with the heart-rate rows")
    return np.concatenate(rows)


def _gradient_boosting():
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_depth=4,
                                          l2_regularization=1.0, class_weight="balanced",
                                          random_state=0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[1, 3, 5],
                        help="ensemble sizes to report (seeds 0, 1, ...; default: 1 3 5)")
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--models", nargs="+", choices=("night", "context", "gb"),
                        default=["night", "context", "gb"],
                        help="models to run (default: all three)")
    parser.add_argument("--quick", action="store_true", help="3 folds, few epochs")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "slpdb_night_student.md"))
    args = parser.parse_args(argv)

    import torch
    from sklearn.metrics import cohen_kappa_score
    from sklearn.model_selection import GroupKFold

    from sleepkd.datasets import add_context
    from sleepkd.evaluation._recipes import (CONTEXT_EPOCHS, context_student, night_inputs,
                                             night_student)
    from sleepkd.io import load_slpdb

    torch.set_num_threads(1)
    data = night_inputs(load_slpdb(), scheme="4class", eeg=False)
    X_ctx = add_context(data.X, data.records, CONTEXT_EPOCHS, onsets=data.onsets)
    y, nights, groups = data.y, data.nights, data.groups
    n_subjects = len(set(groups))
    folds = list(GroupKFold(n_splits=3 if args.quick else n_subjects).split(y, groups=groups))
    max_epochs = 3 if args.quick else args.max_epochs
    names = {"night": "ECGNightStudent (HeartRateTCN, whole night)",
             "context": f"ContextNet (per-epoch, +-{CONTEXT_EPOCHS} epochs)",
             "gb": "HRV features + HistGradientBoosting (per epoch)"}
    if "gb" in args.models:
        hrv = _hrv_features(data.nights)
    models = {names[kind]: kind for kind in args.models}

    from sleepkd import SeedEnsemble

    results = {}
    for name, kind in models.items():
        classes, start = None, time.perf_counter()
        sizes = sorted(set(args.members)) if kind == "night" else [1]
        n_fit = max(sizes)
        proba = np.zeros((n_fit, len(y), 4))
        for train, test in folds:
            if kind == "night":
                ensemble = SeedEnsemble(night_student(max_epochs=max_epochs),
                                        n_members=n_fit, random_state=0)
                ensemble.fit(data.X[train], y[train], nights=nights[train],
                             groups=groups[train])
                members = [m.predict_proba(data.X[test], nights=nights[test])
                           for m in ensemble.estimators_]
            elif kind == "context":
                scored = train[y[train] != "?"]
                ensemble = context_student(max_epochs=max(max_epochs // 2, 1), random_state=0)
                ensemble.fit(X_ctx[scored], y[scored], groups=groups[scored])
                members = [ensemble.predict_proba(X_ctx[test])]
            else:
                scored = train[y[train] != "?"]
                ensemble = _gradient_boosting().fit(hrv[scored], y[scored])
                members = [ensemble.predict_proba(hrv[test])]
            if classes is None:
                classes = list(ensemble.classes_)
            if list(ensemble.classes_) != classes:
                raise RuntimeError("a fold lacks a class")
            proba[:, test] = members
        elapsed = time.perf_counter() - start
        scored = y != "?"
        for k in sizes:
            row = {"time": elapsed * k / n_fit}
            mean = proba[:k].mean(axis=0)
            for scheme in ("4class", "3class"):
                y_true, y_pred, pooled = _scores(y[scored], mean[scored], classes, scheme)
                per_subject = []
                for subject in sorted(set(groups)):
                    rows = groups[scored] == subject
                    if len(set(y_true[rows]) | set(y_pred[rows])) > 1:
                        per_subject.append(cohen_kappa_score(y_true[rows], y_pred[rows]))
                row[scheme] = (*pooled, np.mean(per_subject), np.std(per_subject, ddof=1))
            label = name if kind == "gb" else f"{name}, {k} seed{'s' if k > 1 else ''}"
            results[label] = row
            print(label, row, flush=True)

    options = [("--quick", args.quick),
               ("--members " + " ".join(map(str, args.members)), args.members != [1, 3, 5]),
               ("--models " + " ".join(args.models), args.models != ["night", "context", "gb"]),
               (f"--max-epochs {args.max_epochs}", args.max_epochs != 60)]
    command = " ".join(["python benchmarks/slpdb_night_student.py"]
                       + [text for text, given in options if given])
    lines = [
        "# slpdb, leave one subject out: the package's night student",
        "",
        f"`{command}`: "
        f"{len(folds)} folds (GroupKFold by subject, {n_subjects} subjects, 14 real slpdb "
        f"records: real beats and expert stages), {int((y != '?').sum())} scored epochs, "
        "the night student a SeedEnsemble of seeds 0, 1, ... (probabilities averaged; a "
        "row per ensemble size, time = its share of the fit), ContextNet one seed, HRV + "
        "boosting on the features of benchmarks/night_slpdb.py; 1 torch thread, "
        f"{platform.machine()}. Scores pooled over all scored test epochs; fold = mean +- "
        "std of the test subjects' kappas. 3-class scores merge the 4-class model's Light "
        "and Deep probabilities.",
        "",
        "| model | kappa 4-class | kappa 3-class | F1w 4 / 3 | accuracy 4 / 3 | fold kappa 4 | "
        "fold kappa 3 | time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        k4, f4, a4, m4, s4 = r["4class"]
        k3, f3, a3, m3, s3 = r["3class"]
        lines.append(f"| {name} | {k4:.3f} | {k3:.3f} | {f4:.3f} / {f3:.3f} | {a4:.3f} / "
                     f"{a3:.3f} | {m4:.3f} +- {s4:.3f} | {m3:.3f} +- {s3:.3f} | "
                     f"{r['time']:.0f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
