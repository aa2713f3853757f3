"""Paired statistics of a gain over a baseline (sleepkd.metrics._paired)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sleepkd.metrics import (
    PairedTest,
    bootstrap_ci,
    paired_gains,
    paired_test,
    summarize_gains,
)


def _cv_scores(n_subjects=12, n_folds=3, seeds=(0, 1), gain=0.05, noise=0.03, seed=0):
    """Per-subject scores of a subject-wise CV: folds reshuffled per seed."""
    rng = np.random.default_rng(seed)
    subjects = [f"s{i:02d}" for i in range(n_subjects)]
    ability = dict(zip(subjects, rng.uniform(0.4, 0.7, n_subjects)))
    rows = []
    for s in seeds:
        order = np.random.default_rng(100 + s).permutation(subjects)
        for fold, members in enumerate(np.array_split(order, n_folds)):
            for subj in members:
                base = ability[subj] + rng.normal(0, 0.02)
                kd = base + gain + rng.normal(0, noise)
                for model, f1 in (("baseline", base), ("kd", kd)):
                    rows.append({"model": model, "seed": s, "fold": fold,
                                 "subject": subj, "f1_weighted": f1,
                                 "kappa": f1 - 0.2})
    return pd.DataFrame(rows)


def _fixed_test_set(differences, base=0.5):
    """One pair only (a fixed test set): rows of both models for each subject."""
    subjects = [f"s{i:02d}" for i in range(len(differences))]
    rows = []
    for subj, d in zip(subjects, differences):
        rows.append({"model": "baseline", "fold": 0, "seed": 0, "subject": subj,
                     "f1_weighted": base})
        rows.append({"model": "kd", "fold": 0, "seed": 0, "subject": subj,
                     "f1_weighted": base + d})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------- paired gains
def test_paired_gains_hand_example():
    scores = pd.DataFrame({
        "model": ["base", "base", "kd", "kd", "base", "kd"],
        "fold": [0, 0, 0, 0, 1, 1], "seed": 0,
        "subject": ["a", "b", "a", "b", "c", "c"],
        "f1_weighted": [0.50, 0.60, 0.60, 0.64, 0.40, 0.38],
    })
    g = paired_gains(scores, model="kd", baseline="base", metric="f1_weighted")
    assert g.columns.tolist() == ["fold", "seed", "n_subjects", "baseline_score",
                                  "model_score", "gain", "relative_gain"]
    assert g["fold"].tolist() == [0, 1] and g["n_subjects"].tolist() == [2, 1]
    # fold 0: baseline 0.55, model 0.62 -> gain 0.07, relative 0.07 / 0.55
    assert g["baseline_score"].tolist() == pytest.approx([0.55, 0.40], abs=1e-12)
    assert g["gain"].tolist() == pytest.approx([0.07, -0.02], abs=1e-12)
    assert g["relative_gain"].tolist() == pytest.approx([0.07 / 0.55, -0.02 / 0.40],
                                                        abs=1e-12)
    assert g.attrs == {"model": "kd", "baseline": "base", "metric": "f1_weighted"}


def test_relative_gain_matches_the_papers_headline_formula():
    # weighted F1 0.56 -> 0.64 is "14.3 % higher"
    scores = _fixed_test_set([0.08], base=0.56)
    g = paired_gains(scores, model="kd", baseline="baseline", metric="f1_weighted")
    assert 100 * g["relative_gain"].iloc[0] == pytest.approx(14.2857142857, abs=1e-8)
    summary = summarize_gains(scores, baseline="baseline", metrics="f1_weighted")
    assert summary["mean_relative_gain_pct"].iloc[0] == pytest.approx(14.2857142857,
                                                                      abs=1e-8)


def test_relative_gain_undefined_for_a_non_positive_baseline():
    scores = _fixed_test_set([0.1, 0.1], base=0.0)
    g = paired_gains(scores, model="kd", baseline="baseline", metric="f1_weighted")
    assert math.isnan(g["relative_gain"].iloc[0])
    row = summarize_gains(scores, baseline="baseline", metrics="f1_weighted").iloc[0]
    assert math.isnan(row["mean_relative_gain_pct"])
    assert "relative gain undefined" in row["note"]
    assert row["mean_gain"] == pytest.approx(0.1)


def test_unmatched_and_undefined_rows_are_left_out_with_a_warning():
    scores = _fixed_test_set([0.1, 0.2, 0.3])
    scores = scores[~((scores["model"] == "kd") & (scores["subject"] == "s00"))]
    scores.loc[(scores["model"] == "baseline") & (scores["subject"] == "s01"),
               "f1_weighted"] = np.nan
    with pytest.warns(UserWarning, match="only one of the two models.*undefined"):
        g = paired_gains(scores, model="kd", baseline="baseline", metric="f1_weighted")
    assert g["n_subjects"].tolist() == [1]
    assert g["gain"].iloc[0] == pytest.approx(0.3)


def test_paired_gains_errors():
    scores = _fixed_test_set([0.1, 0.2])
    with pytest.raises(ValueError, match="lacks column"):
        paired_gains(scores, model="kd", baseline="baseline", metric="kappa")
    with pytest.raises(ValueError, match="not in scores"):
        paired_gains(scores, model="kd2", baseline="baseline", metric="f1_weighted")
    with pytest.raises(ValueError, match="once"):
        paired_gains(pd.concat([scores, scores.iloc[:1]]), model="kd",
                     baseline="baseline", metric="f1_weighted")
    with pytest.raises(ValueError, match="numeric"):
        paired_gains(scores.assign(f1_weighted="x"), model="kd", baseline="baseline",
                     metric="f1_weighted")
    with pytest.raises(ValueError, match="DataFrame"):
        paired_gains(scores.to_dict(), model="kd", baseline="baseline",
                     metric="f1_weighted")
    other = scores.assign(subject=scores["subject"] + np.where(
        scores["model"] == "kd", "_x", ""))
    with pytest.raises(ValueError, match="nothing to compare"), \
            pytest.warns(UserWarning):
        paired_gains(other, model="kd", baseline="baseline", metric="f1_weighted")


# ----------------------------------------------------------------- bootstrap
def _reference_ci(per_subject_gains, n_boot, random_state, confidence=0.95):
    """Hand-rolled percentile bootstrap of the mean over subjects."""
    g = np.asarray(per_subject_gains, dtype=float)
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, len(g), (n_boot, len(g)))
    means = g[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    return np.quantile(means, [alpha, 1 - alpha])


def test_bootstrap_agrees_with_scipy_on_a_fixed_test_set():
    diffs = np.random.default_rng(3).normal(0.04, 0.05, 15)
    scores = _fixed_test_set(diffs)
    low, high = bootstrap_ci(scores, model="kd", baseline="baseline",
                             metric="f1_weighted", n_boot=2000, random_state=7)
    ref = stats.bootstrap((diffs,), np.mean, method="percentile", n_resamples=2000,
                          confidence_level=0.95, rng=np.random.default_rng(7))
    assert low == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert high == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    assert [low, high] == pytest.approx(_reference_ci(diffs, 2000, 7), abs=1e-12)
    low90, high90 = bootstrap_ci(scores, model="kd", baseline="baseline",
                                 metric="f1_weighted", confidence=0.9, random_state=7)
    assert low < low90 < high90 < high


def test_bootstrap_resamples_subjects_across_seeds():
    # every subject scored in every pair (fixed test set, 3 seeds): the statistic is
    # the mean over subjects of their mean gain over seeds
    rng = np.random.default_rng(4)
    # seeds x subjects: a gain that depends on the subject, and a little seed noise
    diffs = rng.normal(0.03, 0.04, (1, 10)) + rng.normal(0.0, 0.005, (3, 10))
    frames = []
    for seed, row in enumerate(diffs):
        frame = _fixed_test_set(row)
        frames.append(frame.assign(seed=seed))
    scores = pd.concat(frames, ignore_index=True)
    per_subject = diffs.mean(axis=0)  # subjects s00..s09 in sorted order
    low, high = bootstrap_ci(scores, model="kd", baseline="baseline",
                             metric="f1_weighted", n_boot=500, random_state=11)
    ref = stats.bootstrap((per_subject,), np.mean, method="percentile",
                          n_resamples=500, rng=np.random.default_rng(11))
    assert [low, high] == pytest.approx([ref.confidence_interval.low,
                                         ref.confidence_interval.high], abs=1e-12)
    # resampling the 30 (seed, subject) rows as if independent: too narrow
    naive = _reference_ci(diffs.ravel(), 500, 11)
    assert naive[1] - naive[0] < high - low


def test_bootstrap_with_folds_follows_the_hand_rolled_hierarchical_reference():
    scores = _cv_scores(n_subjects=9, n_folds=3, seeds=(0, 1))
    matched = scores.pivot_table(index=["seed", "fold", "subject"], columns="model",
                                 values="f1_weighted").reset_index()
    matched["d"] = matched["kd"] - matched["baseline"]
    subjects = sorted(matched["subject"].unique())
    rng = np.random.default_rng(5)
    draws = rng.integers(0, len(subjects), (300, len(subjects)))
    replicates = []
    for draw in draws:
        counts = pd.Series(np.bincount(draw, minlength=len(subjects)), index=subjects)
        w = matched["subject"].map(counts)
        per_pair = (matched.assign(wd=w * matched["d"], w=w)
                    .groupby(["seed", "fold"])[["wd", "w"]].sum())
        per_pair = per_pair[per_pair["w"] > 0]
        replicates.append((per_pair["wd"] / per_pair["w"]).mean())
    expected = np.quantile(replicates, [0.025, 0.975])
    got = bootstrap_ci(scores, model="kd", baseline="baseline", metric="f1_weighted",
                       n_boot=300, random_state=5)
    assert list(got) == pytest.approx(list(expected), abs=1e-12)
    mean_gain = paired_gains(scores, model="kd", baseline="baseline",
                             metric="f1_weighted")["gain"].mean()
    assert got[0] < mean_gain < got[1]


def test_bootstrap_is_deterministic_under_random_state():
    scores = _cv_scores()
    kwargs = dict(model="kd", baseline="baseline", metric="kappa", n_boot=400)
    first = bootstrap_ci(scores, random_state=3, **kwargs)
    shuffled = scores.sample(frac=1.0, random_state=1)
    assert bootstrap_ci(shuffled, random_state=3, **kwargs) == first
    assert bootstrap_ci(scores, random_state=4, **kwargs) != first
    a = summarize_gains(scores, baseline="baseline", n_boot=400, random_state=3)
    b = summarize_gains(shuffled, baseline="baseline", n_boot=400, random_state=3)
    pd.testing.assert_frame_equal(a, b)


def test_bootstrap_edge_cases_and_errors():
    one = _fixed_test_set([0.1])
    assert all(math.isnan(v) for v in bootstrap_ci(one, model="kd", baseline="baseline",
                                                   metric="f1_weighted"))
    scores = _fixed_test_set([0.1, 0.2])
    for kwargs, match in (({"n_boot": 0}, "n_boot"), ({"confidence": 1.0}, "confidence"),
                          ({"random_state": "x"}, "random_state")):
        with pytest.raises(ValueError, match=match):
            bootstrap_ci(scores, model="kd", baseline="baseline", metric="f1_weighted",
                         **kwargs)


# ----------------------------------------------------------------- paired test
def test_paired_test_agrees_with_scipy():
    gains = np.array([0.02, 0.031, -0.012, 0.044, 0.05, 0.007, -0.003, 0.021])
    for alternative in ("two-sided", "greater", "less"):
        got = paired_test(gains, alternative=alternative)
        ref = stats.wilcoxon(gains, alternative=alternative)
        assert got.pvalue == ref.pvalue and got.statistic == ref.statistic
    got = paired_test(gains)
    assert isinstance(got, PairedTest)
    assert got.win_share == 6 / 8 and got.n_pairs == 8 and got.n_ties == 0
    assert got.note == ""
    # from a paired_gains table: its gain column
    scores = _cv_scores()
    g = paired_gains(scores, model="kd", baseline="baseline", metric="f1_weighted")
    assert paired_test(g).pvalue == stats.wilcoxon(g["gain"]).pvalue


def test_paired_test_edge_cases():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no scipy warning leaks out
        zero = paired_test([0.0, 0.0, 0.0, 0.0])
    assert (zero.statistic, zero.pvalue, zero.win_share, zero.n_ties) == (0.0, 1.0, 0.0, 4)
    assert "exactly 0" in zero.note
    single = paired_test([0.05])
    assert math.isnan(single.pvalue) and math.isnan(single.statistic)
    assert single.win_share == 1.0 and "fewer than 2" in single.note
    assert math.isnan(paired_test([]).win_share)
    with pytest.raises(ValueError, match="NaN"):
        paired_test([0.1, np.nan])
    with pytest.raises(ValueError, match="alternative"):
        paired_test([0.1, 0.2], alternative="bigger")


# ----------------------------------------------------------------- summary
def test_model_identical_to_the_baseline_gains_exactly_nothing():
    scores = _cv_scores()
    same = scores[scores["model"] == "baseline"].assign(model="copy")
    scores = pd.concat([scores, same], ignore_index=True)
    g = paired_gains(scores, model="copy", baseline="baseline", metric="f1_weighted")
    assert (g["gain"] == 0.0).all() and (g["relative_gain"] == 0.0).all()
    assert bootstrap_ci(scores, model="copy", baseline="baseline",
                        metric="f1_weighted") == (0.0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = summarize_gains(scores, baseline="baseline", models=["copy"])
    for _, row in summary.iterrows():
        assert row["mean_gain"] == 0.0 and row["mean_relative_gain_pct"] == 0.0
        assert (row["ci_low"], row["ci_high"]) == (0.0, 0.0)
        assert row["wilcoxon_p"] == 1.0 and row["win_share"] == 0.0
        assert "exactly 0" in row["note"]


def test_summarize_gains_table_contract():
    scores = _cv_scores(gain=0.05, noise=0.01)
    summary = summarize_gains(scores, baseline="baseline", n_boot=500)
    assert summary.columns.tolist() == [
        "model", "baseline", "metric", "baseline_mean", "model_mean", "mean_gain",
        "mean_relative_gain_pct", "ci_low", "ci_high", "wilcoxon_p", "win_share",
        "n_pairs", "n_subjects", "note"]
    assert summary[["model", "metric"]].values.tolist() == [["kd", "f1_weighted"],
                                                            ["kd", "kappa"]]
    row = summary.iloc[0]
    g = paired_gains(scores, model="kd", baseline="baseline", metric="f1_weighted")
    assert row["mean_gain"] == pytest.approx(g["gain"].mean(), abs=1e-15)
    assert row["mean_gain"] == pytest.approx(row["model_mean"] - row["baseline_mean"])
    assert row["mean_relative_gain_pct"] == pytest.approx(100 * g["relative_gain"].mean())
    assert (row["ci_low"], row["ci_high"]) == bootstrap_ci(
        scores, model="kd", baseline="baseline", metric="f1_weighted", n_boot=500)
    assert row["wilcoxon_p"] == stats.wilcoxon(g["gain"]).pvalue
    assert row["win_share"] == 1.0 and row["n_pairs"] == 6 and row["n_subjects"] == 12
    assert row["ci_low"] > 0 and row["note"] == ""


def test_summarize_gains_by_scheme_and_single_pair():
    a = _cv_scores(seed=1).assign(scheme="3class")
    b = _cv_scores(seed=2).assign(scheme="4class")
    summary = summarize_gains(pd.concat([a, b]), baseline="baseline", metrics="kappa",
                              by="scheme", n_boot=200)
    assert summary.columns[0] == "scheme"
    assert summary["scheme"].tolist() == ["3class", "4class"]
    one_pair = summarize_gains(_fixed_test_set([0.1, 0.2, 0.0]), baseline="baseline",
                               metrics="f1_weighted", n_boot=200).iloc[0]
    assert math.isnan(one_pair["wilcoxon_p"]) and one_pair["n_pairs"] == 1
    assert "fewer than 2" in one_pair["note"]
    with pytest.raises(ValueError, match="baseline"):
        summarize_gains(a, baseline="baseline", models=["baseline"])
