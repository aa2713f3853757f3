"""Distillation evidence scored against the generator's latent stage as well as the labels.

On nights generated with shared latent physiology the expert labels are a noisy
scorer's reading of a latent stage (agreement kappa about 0.8, disagreements
concentrated near transitions). A teacher that sees the EEG may pass on what the
scorer misread; if it does, the distilled student should agree better with the latent
stage than its baseline, even where its gain against the labels is within noise.

This runs the protocol of the results page's "Distillation evidence (generated
nights)" section (``sleepkd experiment`` with the same arguments, so the same folds,
seeds and networks) and reports the paired evidence twice: against the labels (what
the results page reports) and against the latent stage of the same epochs. The EEG
teacher and the labels themselves are scored against the latent stage as yardsticks.

Run from the repository root (about 25 min with the defaults on 2 cores)::

    python benchmarks/latent_truth_distillation.py

Writes ``results.md``, ``evidence.csv`` and ``subject_scores.csv`` to ``--out``.
Data: synthetic nights (sleepkd's generator; not recorded from people).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_OUT = "docs/results/synthetic_latent_truth"


def _experiment_args(args):
    from sleepkd.cli import build_parser

    return build_parser().parse_args([
        "experiment", "--data", "synthetic", "--physiology", "shared",
        "--n-subjects", str(args.n_subjects), "--hours", f"{args.hours:g}",
        "--folds", str(args.folds), "--seeds", *map(str, args.seeds),
        "--schemes", "4class", "--max-epochs", str(args.max_epochs),
        "--no-references", "--quiet", "--jobs", str(args.n_jobs)])


def _latent_of_predictions(predictions: pd.DataFrame, records, onsets, latent_4):
    """The latent stage of each prediction row, looked up by (record, onset)."""
    lookup = pd.Series(latent_4, index=pd.MultiIndex.from_arrays(
        [np.asarray(records).astype(str), np.round(np.asarray(onsets, float), 3)]))
    key = pd.MultiIndex.from_arrays([predictions["record"].astype(str).to_numpy(),
                                     np.round(predictions["onset"].to_numpy(float), 3)])
    latent = lookup.reindex(key).to_numpy()
    if pd.isna(latent).any():
        raise RuntimeError(f"{int(pd.isna(latent).sum())} predictions have no latent stage.")
    return latent


def _agreement(predictions: pd.DataFrame, latent) -> pd.DataFrame:
    """Pooled kappa and weighted F1 of every model (and the labels) against the latent
    stage, per fold x seed, then mean and std over the pairs."""
    from sklearn.metrics import cohen_kappa_score, f1_score

    def scores(model, seed, fold, truth, pred):
        return {"model": model, "seed": seed, "fold": fold,
                "kappa": cohen_kappa_score(truth, pred),
                "f1_weighted": f1_score(truth, pred, average="weighted", zero_division=0)}

    frame = predictions.assign(latent=latent)
    rows = []
    for (seed, fold), pair in frame.groupby(["seed", "fold"], sort=False):
        for model, part in pair.groupby("model", sort=False):
            rows.append(scores(model, seed, fold, part["latent"], part["y_pred"]))
        # every model predicts the same test epochs: the labels are scored once
        rows.append(scores("labels (the scorer)", seed, fold, part["latent"], part["y_true"]))
    table = pd.DataFrame(rows)
    return table.groupby("model", sort=False)[["kappa", "f1_weighted"]].agg(["mean", "std"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=20)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    from sleepkd.cli._experiment import load_data, night_setup
    from sleepkd.datasets._synthetic import latent_stages_of
    from sleepkd.evaluation._runner import run_experiment
    from sleepkd.stages import to_scheme

    start = time.perf_counter()
    exp_args = _experiment_args(args)
    recordings = load_data(exp_args, return_recordings=True).recordings
    data, teacher, student, strategies, extra, stager_params = night_setup(
        exp_args, recordings=recordings)
    latent_4 = np.asarray(to_scheme(latent_stages_of(data, recordings), "4class"))
    result = run_experiment(
        data, teacher=teacher, student=student, schemes=("4class",),
        strategies=strategies, extra_models=extra, n_splits=args.folds, seeds=args.seeds,
        stager_params=stager_params, n_jobs=args.n_jobs, verbose=0)
    latent = _latent_of_predictions(result.predictions, data.records, data.onsets, latent_4)
    vs_latent = dataclasses.replace(result, predictions=result.predictions.assign(
        y_true=latent))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ev_labels, ev_latent = result.evidence(), vs_latent.evidence()
    pd.concat([ev_labels.assign(truth="labels"), ev_latent.assign(truth="latent stage")]
              ).to_csv(out / "evidence.csv", index=False)
    pd.concat([result.subject_scores().assign(truth="labels"),
               vs_latent.subject_scores().assign(truth="latent stage")]
              ).to_csv(out / "subject_scores.csv", index=False)
    agreement = _agreement(result.predictions, latent)
    command = ("python benchmarks/latent_truth_distillation.py"
               + "".join(f" --{k.replace('_', '-')} {v}" for k, v in (
                   ("n_subjects", args.n_subjects), ("hours", f"{args.hours:g}"),
                   ("folds", args.folds), ("max_epochs", args.max_epochs)))
               + " --seeds " + " ".join(map(str, args.seeds))
               + ("" if args.out == DEFAULT_OUT else f" --out {args.out}"))
    lines = [
        "# Distillation evidence against the labels and against the latent stage", "",
        f"Data: {args.n_subjects} synthetic {args.hours:g}-h nights with shared latent "
        "physiology (generated by sleepkd, not recorded from people); 4 classes; "
        f"{int((data.y != '?').sum())} scored epochs. The labels are the generator's "
        "noisy scorer; the latent stage is what the scorer read.",
        f"Protocol: {args.folds} subject-wise folds x {len(args.seeds)} seeds, the "
        "networks and settings of `sleepkd experiment --models night` (max epochs "
        f"{args.max_epochs}); scored epochs of the held-out subjects.", "",
        "## Agreement with the latent stage", "",
        "Pooled over each fold's test subjects, mean ± std over fold x seed.", "",
        "| model | kappa vs latent | weighted F1 vs latent |", "|---|---:|---:|"]
    for model, row in agreement.iterrows():
        lines.append(f"| {model} | {row[('kappa', 'mean')]:.3f} ± "
                     f"{row[('kappa', 'std')]:.3f} | {row[('f1_weighted', 'mean')]:.3f} ± "
                     f"{row[('f1_weighted', 'std')]:.3f} |")
    for title, evidence in (("against the labels", ev_labels),
                            ("against the latent stage", ev_latent)):
        lines += ["", f"## Distillation evidence {title}", "",
                  "Paired by fold x seed; 95 % CI of the mean gain from a bootstrap over "
                  "test subjects; Wilcoxon signed-rank over the pairs; points = metric x "
                  "100.", "", result.evidence_markdown(evidence).rstrip()]
    lines += ["", f"Command: `{command}`  ",
              f"Finished in {time.perf_counter() - start:.0f} s with {args.n_jobs} jobs."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
