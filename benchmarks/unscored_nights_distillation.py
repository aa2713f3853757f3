"""Distillation from unscored paired nights: few scored nights, many recorded ones.

A clinic or a wearable study has a few nights scored by an expert and many more paired
EEG + ECG recordings that nobody scored. The EEG teacher learns from the scored nights
and labels the rest with its soft labels; with ``distill_unscored=True`` the ECG
student learns from every night: the cross-entropy on the scored epochs, the soft
labels on all of them. Compared, per fold and seed on the same held-out subjects:

- ``ECG student, k scored``: the night student on the k scored nights (the baseline);
- ``SD+CL, k scored``: the cascade on the same k nights (the unscored ones ignored);
- ``SD+CL, k scored + unscored``: the cascade with ``distill_unscored=True``;
- ``ECG student, all scored``: every training night scored (what full scoring buys);
- ``EEG teacher, k scored``: the teacher of the cascade (the mean of its
  ``--n-teachers`` teachers), on the test EEG.

Every student is fitted by a ``DistilledECGStager`` with the fold's seed (the two ECG
students with ``strategy="baseline"``), so each pair shares its validation subject and
the student's initialisation and differs by the teacher only.

Run from the repository root (about 6 min on 2 cores with the defaults)::

    python benchmarks/unscored_nights_distillation.py

Writes ``results.md`` (table and paired evidence against the baseline) and
``subject_scores.csv`` to ``--out``. Data: synthetic nights with shared latent
physiology (sleepkd's generator; not recorded from people).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

SCORED = "ECG student, {k} scored"
SD_SCORED = "SD+CL, {k} scored"
SD_ALL = "SD+CL, {k} scored + {u} unscored"
FULL = "ECG student, all {n} scored"
TEACHER = "EEG teacher, {k} scored"


def _subject_rows(model, fold, seed, y_true, y_pred, groups):
    from sklearn.metrics import cohen_kappa_score, f1_score

    rows = []
    for subject in np.unique(groups):
        m = (groups == subject) & (y_true != "?")
        rows.append({"model": model, "fold": fold, "seed": seed, "subject": subject,
                     "n_epochs": int(m.sum()),
                     "f1_weighted": f1_score(y_true[m], y_pred[m], average="weighted"),
                     "kappa": cohen_kappa_score(y_true[m], y_pred[m])})
    return rows


def run_pair(data, y, train, test, fold, seed, n_scored, max_epochs, n_teachers):
    """Every model of one fold and seed; per-subject scores of the test subjects."""
    import torch

    from sleepkd import DistilledECGStager
    from sleepkd.cli._demo import DEMO_FS
    from sleepkd.evaluation._recipes import night_config

    torch.set_num_threads(1)
    groups, nights = data.groups, data.nights
    subjects = np.unique(groups[train])
    scored_subjects = np.random.default_rng([seed, fold]).choice(subjects, n_scored,
                                                                 replace=False)
    scored = np.isin(groups, scored_subjects)
    y_partial = np.where(scored, y, "?")
    names = dict(k=n_scored, u=len(subjects) - n_scored, n=len(subjects))
    rows = []

    def fresh():
        config = night_config(max_epochs, quiet=True, fs_eeg=DEMO_FS,
                              teacher_epochs=max_epochs)
        config["teacher"].set_params(random_state=seed)
        config["student"].set_params(random_state=seed)
        return config

    def score(name, stager_or_student):
        pred = stager_or_student.predict(data.X[test], nights=nights[test])
        rows.extend(_subject_rows(name.format(**names), fold, seed, y[test], pred,
                                  groups[test]))

    tr_scored = train[scored[train]]
    # every model is a stager with the same seed: the baselines share the validation
    # subjects and the student's initialisation with the distilled students (the
    # validation subject is drawn among the scored ones either way), so the pairs differ
    # by the teacher only
    for name, rows_fit, labels, strategy, distill_unscored in (
            (SCORED, tr_scored, y, "baseline", False), (FULL, train, y, "baseline", False),
            (SD_SCORED, tr_scored, y, "sd+cl", False),
            (SD_ALL, train, y_partial, "sd+cl", True)):
        config = fresh()
        stager = DistilledECGStager(teacher=config["teacher"], student=config["student"],
                                    strategy=strategy, distill_unscored=distill_unscored,
                                    n_teachers=n_teachers, random_state=seed, verbose=0)
        stager.fit(data.X[rows_fit], labels[rows_fit], X_eeg=data.X_eeg[rows_fit],
                   groups=groups[rows_fit], nights=nights[rows_fit])
        score(name, stager)
        if distill_unscored:
            # the teachers' mean probabilities: what the soft labels came from
            proba = np.mean([t.predict_proba(data.X_eeg[test], nights=nights[test])
                             for t in stager.teachers_], axis=0)
            pred = stager.classes_[proba.argmax(axis=1)]
            rows.extend(_subject_rows(TEACHER.format(**names), fold, seed, y[test], pred,
                                      groups[test]))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=20)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scored", type=int, default=4,
                        help="scored training subjects per fold (default: 4)")
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--n-teachers", type=int, default=1,
                        help="teachers averaged for the soft labels (default: 1)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", default="docs/results/synthetic_unscored_nights")
    args = parser.parse_args(argv)

    from sklearn.model_selection import GroupKFold

    from sleepkd.cli._demo import DEMO_FS
    from sleepkd.datasets import make_synthetic_psg
    from sleepkd.evaluation._recipes import night_experiment_data
    from sleepkd.metrics import summarize_gains
    from sleepkd.stages import to_scheme

    start = time.perf_counter()
    recordings = make_synthetic_psg(
        n_subjects=args.n_subjects, hours=args.hours, fs_ecg=DEMO_FS, fs_eeg=DEMO_FS,
        scheme="5class", physiology="shared", return_recordings=True,
        random_state=min(args.seeds)).recordings
    data = night_experiment_data(recordings, fs_eeg=DEMO_FS)
    y = np.asarray(to_scheme(data.y, "4class"), dtype=str)
    folds = list(GroupKFold(n_splits=args.folds).split(y, groups=data.groups))
    tasks = [(fold, seed, train, test) for seed in args.seeds
             for fold, (train, test) in enumerate(folds)]
    results = Parallel(n_jobs=args.n_jobs)(
        delayed(run_pair)(data, y, train, test, fold, seed, args.scored, args.max_epochs,
                          args.n_teachers)
        for fold, seed, train, test in tasks)
    scores = pd.DataFrame([row for rows in results for row in rows])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scores.to_csv(out / "subject_scores.csv", index=False)

    n_train = args.n_subjects - args.n_subjects // args.folds
    names = dict(k=args.scored, u=n_train - args.scored, n=n_train)
    baseline = SCORED.format(**names)
    models = [name.format(**names) for name in (SCORED, SD_SCORED, SD_ALL, FULL, TEACHER)]
    # mean over subjects within each fold x seed, then mean and std over the pairs
    per_pair = scores.groupby(["model", "fold", "seed"])[["f1_weighted", "kappa"]].mean()
    table = per_pair.groupby("model").agg(["mean", "std"]).reindex(
        [m for m in models if m in per_pair.index.get_level_values(0)])
    lines = ["# Distillation from unscored nights", "",
             f"Data: {args.n_subjects} synthetic {args.hours:g}-h nights with shared latent "
             "physiology (generated by sleepkd, not recorded from people); 4 classes.",
             f"Protocol: {args.folds} subject-wise folds x {len(args.seeds)} seeds; in each "
             f"fold and seed, {args.scored} of the training subjects are scored (drawn by "
             "seed), the others are recorded (EEG + ECG) but unscored; scores on the "
             "held-out subjects, mean ± std over fold x seed.", "",
             "| model | weighted F1 | kappa |", "|---|---:|---:|"]
    for model, row in table.iterrows():
        lines.append(f"| {model} | {row[('f1_weighted', 'mean')]:.3f} ± "
                     f"{row[('f1_weighted', 'std')]:.3f} | {row[('kappa', 'mean')]:.3f} ± "
                     f"{row[('kappa', 'std')]:.3f} |")
    evidence = summarize_gains(scores, baseline=baseline, models=models[1:4])
    lines += ["", f"## Paired evidence against {baseline!r}", "",
              "Gains paired by fold x seed; 95 % CI from a bootstrap over test subjects "
              "(2000 draws); Wilcoxon signed-rank over the pairs (seeds share subjects, "
              "so its p-value is optimistic). Points = metric x 100.", "",
              "| model | metric | mean gain (points) | 95 % CI | relative gain (%) | "
              "Wilcoxon p | wins | pairs |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for _, r in evidence.iterrows():
        lines.append(
            f"| {r['model']} | {r['metric']} | {100 * r['mean_gain']:+.1f} | "
            f"[{100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f}] | "
            f"{r['mean_relative_gain_pct']:+.1f} | {r['wilcoxon_p']:.3g} | "
            f"{100 * r['win_share']:.0f} % | {int(r['n_pairs'])} |")
    lines += ["", f"Command: `python benchmarks/unscored_nights_distillation.py "
              f"--n-subjects {args.n_subjects} --hours {args.hours:g} --folds {args.folds} "
              f"--seeds {' '.join(map(str, args.seeds))} --scored {args.scored} "
              f"--max-epochs {args.max_epochs} --n-teachers {args.n_teachers}`; "
              f"{time.perf_counter() - start:.0f} s "
              f"with {args.n_jobs} job(s) of one thread."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
