"""How much the evaluation protocol lifts slpdb kappas: subject-wise against epoch-wise CV.

The issue's slpdb target (4-class kappa 0.45, 3-class 0.50) comes from published
numbers such as Li et al. 2018 (kappa 0.54 / 0.63 on slpdb, "ten-fold cross
validation"). sleepkd scores slpdb leave one subject out: no epoch of the test subject
is ever trained on. This benchmark runs the same models under both protocols, on the
same 14 records, so the two kinds of number can be read side by side:

- ``LOSO``: 12 folds, GroupKFold by subject (the results page's protocol);
- ``epoch-wise 10-fold``: the scored epochs dealt at random into 10 folds
  (StratifiedKFold, shuffled, seed 0), every subject in every training set. For HRV +
  gradient boosting a fold's epochs are simply left out of its training rows. For the
  night student the test fold's labels are hidden (set to the unscored label ``"?"``)
  while its nights are still read as input, the way a night model is trained on
  nights with unscored epochs; no test label is ever seen.
- ``block-wise 10-fold``: each night cut into 10 contiguous blocks of epochs, block k
  of every night forming fold k, so a test epoch's neighbours are mostly test epochs
  too (less leakage through neighbouring epochs, but the subject is still in training).

Models: HRV features + gradient boosting (the features and settings of
``benchmarks/slpdb_night_student.py``) and the package's night student
(:func:`sleepkd.evaluation.night_student`, one seed). 4-class models; 3-class scores
merge Light and Deep probabilities.

Run: ``OMP_NUM_THREADS=1 python benchmarks/slpdb_protocols.py`` (about 35 min at one
thread). Writes ``benchmarks/results/slpdb_protocols.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from slpdb_night_student import _gradient_boosting, _hrv_features, _scores  # noqa: E402

PROTOCOLS = ("LOSO", "epoch-wise 10-fold", "block-wise 10-fold")


def protocol_folds(name: str, y: np.ndarray, nights: np.ndarray, groups: np.ndarray,
                   n_folds: int = 10, random_state: int = 0) -> list[np.ndarray]:
    """Test rows of each fold (scored rows only) under protocol ``name``."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    scored = np.flatnonzero(y != "?")
    if name == "LOSO":
        n_subjects = len(set(groups))
        return [scored[test] for _, test in
                GroupKFold(n_splits=n_subjects).split(scored, groups=groups[scored])]
    if name == "epoch-wise 10-fold":
        cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
        return [scored[test] for _, test in cv.split(scored, y[scored])]
    if name == "block-wise 10-fold":
        block = np.empty(len(y), dtype=int)
        for night in np.unique(nights):
            rows = np.flatnonzero(nights == night)
            block[rows] = np.arange(len(rows)) * n_folds // len(rows)
        return [scored[block[scored] == k] for k in range(n_folds)]
    raise ValueError(f"unknown protocol {name!r}; expected one of {PROTOCOLS}.")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=list(PROTOCOLS))
    parser.add_argument("--models", nargs="+", choices=("night", "gb"), default=["night", "gb"])
    parser.add_argument("--seed", type=int, default=0, help="night student seed")
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "slpdb_protocols.md"))
    args = parser.parse_args(argv)

    import torch
    from sklearn.metrics import cohen_kappa_score

    from sleepkd.evaluation._recipes import night_inputs, night_student
    from sleepkd.io import load_slpdb

    torch.set_num_threads(1)
    data = night_inputs(load_slpdb(), scheme="4class", eeg=False)
    y, nights, groups = data.y, data.nights, data.groups
    scored = y != "?"
    hrv = _hrv_features(nights) if "gb" in args.models else None

    results = []
    for protocol in args.protocols:
        folds = protocol_folds(protocol, y, nights, groups)
        if not np.array_equal(np.sort(np.concatenate(folds)), np.flatnonzero(scored)):
            raise RuntimeError("the folds do not cover every scored epoch exactly once")
        for model in args.models:
            start = time.perf_counter()
            proba, classes = np.full((len(y), 4), np.nan), None
            for test in folds:
                if model == "gb":
                    train = np.setdiff1d(np.flatnonzero(scored), test)
                    est = _gradient_boosting().fit(hrv[train], y[train])
                    pred = est.predict_proba(hrv[test])
                else:
                    # LOSO trains on the other subjects' nights; the 10-fold protocols
                    # read every night and hide the test labels
                    if protocol == "LOSO":
                        train = np.flatnonzero(~np.isin(groups, groups[test]))
                        y_train = y[train]
                    else:
                        train = np.arange(len(y))
                        y_train = y.copy()
                        y_train[test] = "?"
                    est = night_student(max_epochs=args.max_epochs, random_state=args.seed)
                    est.fit(data.X[train], y_train, nights=nights[train],
                            groups=groups[train])
                    test_nights = np.isin(nights, nights[test])
                    night_proba = np.full((len(y), 4), np.nan)
                    night_proba[test_nights] = est.predict_proba(
                        data.X[test_nights], nights=nights[test_nights])
                    pred = night_proba[test]
                if classes is None:
                    classes = list(est.classes_)
                if list(est.classes_) != classes:
                    raise RuntimeError("a fold lacks a class")
                proba[test] = pred
            elapsed = time.perf_counter() - start
            row = {"protocol": protocol, "model": model, "folds": len(folds), "time": elapsed}
            for scheme in ("4class", "3class"):
                y_true, y_pred, pooled = _scores(y[scored], proba[scored], classes, scheme)
                per_subject = [cohen_kappa_score(y_true[groups[scored] == s],
                                                 y_pred[groups[scored] == s])
                               for s in sorted(set(groups))]
                row[scheme] = (*pooled, float(np.nanmedian(per_subject)))
            results.append(row)
            print(row, flush=True)

    names = {"night": f"ECGNightStudent (night_student recipe, seed {args.seed})",
             "gb": "HRV features + HistGradientBoosting"}
    options = [(f"--seed {args.seed}", args.seed != 0),
               (f"--max-epochs {args.max_epochs}", args.max_epochs != 60),
               ("--protocols " + " ".join(f"'{p}'" for p in args.protocols),
                args.protocols != list(PROTOCOLS)),
               ("--models " + " ".join(args.models), args.models != ["night", "gb"])]
    command = " ".join(["python benchmarks/slpdb_protocols.py"]
                       + [text for text, given in options if given])
    lines = [
        "# slpdb: subject-wise against epoch-wise cross-validation",
        "",
        f"`{command}`: the 14 real slpdb records (12 subjects, real beats and expert "
        f"stages), {int(scored.sum())} scored epochs, each scored once as a test epoch "
        "under each protocol. LOSO: GroupKFold by subject. Epoch-wise 10-fold: scored "
        "epochs dealt at random (StratifiedKFold, shuffled, seed 0). Block-wise 10-fold: "
        "fold k = the k-th tenth of every night. In the 10-fold protocols the night "
        "student reads every night and the test fold's labels are hidden from its loss "
        "(and from early stopping); boosting leaves the test rows out. Scores pooled over "
        "all test epochs; subject median = median over the 12 subjects of their own "
        f"kappa. 1 torch thread, {platform.machine()}.",
        "",
        "| protocol | model | folds | kappa 4-class | kappa 3-class | F1w 4 / 3 | "
        "subject median kappa 4 / 3 | time (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        k4, f4, _, m4 = r["4class"]
        k3, f3, _, m3 = r["3class"]
        lines.append(f"| {r['protocol']} | {names[r['model']]} | {r['folds']} | {k4:.3f} | "
                     f"{k3:.3f} | {f4:.3f} / {f3:.3f} | {m4:.3f} / {m3:.3f} | "
                     f"{r['time']:.0f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
