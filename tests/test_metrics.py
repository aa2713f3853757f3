"""Tests for sleepkd.metrics: staging_report agrees with scikit-learn, and its tables."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
)

from sleepkd.metrics import StagingReport, staging_report
from sleepkd.metrics._report import relative_gain

STAGES = np.array(["W", "N1", "N2", "N3", "R"])


def _noisy_staging(seed: int, n: int = 400, n_subjects: int = 5):
    """Random true stages, predictions right ~60 % of the time, subject ids."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice(STAGES, n, p=[0.25, 0.1, 0.4, 0.1, 0.15])
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.choice(STAGES, n))
    groups = rng.integers(0, n_subjects, n)
    return y_true, y_pred, groups


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pooled_figures_agree_with_sklearn(seed):
    y_true, y_pred, _ = _noisy_staging(seed)
    report = staging_report(y_true, y_pred)
    assert report.labels == ("W", "N1", "N2", "N3", "R")
    assert report.n_epochs == len(y_true)
    assert report.accuracy == accuracy_score(y_true, y_pred)
    assert report.kappa == cohen_kappa_score(y_true, y_pred)
    assert report.f1_weighted == f1_score(y_true, y_pred, average="weighted")
    assert report.f1_macro == f1_score(y_true, y_pred, average="macro")
    per_class = f1_score(y_true, y_pred, average=None, labels=list(report.labels))
    assert list(report.f1_per_class) == list(report.labels)
    np.testing.assert_array_equal(list(report.f1_per_class.values()), per_class)
    np.testing.assert_array_equal(
        report.confusion.to_numpy(),
        confusion_matrix(y_true, y_pred, labels=list(report.labels)),
    )
    assert report.per_subject is None and report.n_subjects is None


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_per_subject_figures_agree_with_sklearn(seed):
    y_true, y_pred, groups = _noisy_staging(seed, n_subjects=4)
    report = staging_report(y_true, y_pred, groups=groups)
    table = report.per_subject
    assert list(table.index) == [0, 1, 2, 3]
    assert table.index.name == "subject"
    assert list(table.columns) == ["n_epochs", "accuracy", "kappa", "f1_weighted",
                                   "f1_macro"]
    for subject in range(4):
        m = groups == subject
        row = table.loc[subject]
        assert row["n_epochs"] == m.sum()
        assert row["accuracy"] == accuracy_score(y_true[m], y_pred[m])
        assert row["kappa"] == cohen_kappa_score(y_true[m], y_pred[m])
        assert row["f1_weighted"] == f1_score(y_true[m], y_pred[m], average="weighted")
        assert row["f1_macro"] == f1_score(y_true[m], y_pred[m], average="macro")
    assert table["n_epochs"].sum() == report.n_epochs
    summary = report.summary()
    for metric in ("accuracy", "kappa", "f1_weighted", "f1_macro"):
        values = table[metric].to_numpy()
        assert summary.loc[metric, "subject_mean"] == pytest.approx(values.mean(), abs=1e-15)
        assert summary.loc[metric, "subject_std"] == pytest.approx(
            values.std(ddof=1), abs=1e-15)
        assert summary.loc[metric, "pooled"] == getattr(report, metric)


def test_per_subject_missing_stage_uses_subject_labels():
    # Subject "b" never shows N3: its macro F1 averages over its own stages only.
    y_true = np.array(["W", "N3", "N2", "W", "N2", "R", "W", "N2"])
    y_pred = np.array(["W", "N3", "N2", "W", "W", "R", "W", "N2"])
    groups = np.array(["a", "a", "a", "b", "b", "b", "b", "b"])
    report = staging_report(y_true, y_pred, groups=groups)
    m = groups == "b"
    assert report.per_subject.loc["b", "f1_macro"] == f1_score(
        y_true[m], y_pred[m], average="macro")
    # W: 2*2/(2*2+1+0)=0.8, N2: 2*1/(2+0+1)=2/3, R: 1 -> mean 0.8222...
    assert report.per_subject.loc["b", "f1_macro"] == pytest.approx((0.8 + 2 / 3 + 1) / 3)


@pytest.mark.parametrize(
    "y_true, y_pred, expected",
    [
        (["R", "W", "N2", "N1", "N3"], ["N3", "N1", "W", "R", "N2"],
         ("W", "N1", "N2", "N3", "R")),
        (["R", "D", "L"], ["W", "L", "L"], ("W", "L", "D", "R")),
        (["N", "R", "W"], ["N", "N", "R"], ("W", "N", "R")),
        (["R", "W"], ["R", "R"], ("W", "R")),
        (["N2", "R", "W"], ["N2", "N2", "W"], ("W", "N2", "R")),
        (["b", "a", "c"], ["a", "a", "c"], ("a", "b", "c")),  # not a scheme: sorted
        (["N", "N1", "W"], ["W", "W", "W"], ("N", "N1", "W")),  # mixed schemes: sorted
        ([3, 1, 2], [1, 1, 2], (1, 2, 3)),
    ],
)
def test_label_order(y_true, y_pred, expected):
    report = staging_report(y_true, y_pred)
    assert report.labels == expected
    assert tuple(report.confusion.index) == expected
    assert tuple(report.confusion.columns) == expected
    assert tuple(report.f1_per_class) == expected


def test_user_labels_keep_their_order_and_absent_stage_is_nan():
    y_true = ["W", "N2", "N2", "W"]
    y_pred = ["W", "N2", "W", "W"]
    report = staging_report(y_true, y_pred, labels=["N2", "W", "R"])
    assert report.labels == ("N2", "W", "R")
    assert report.confusion.loc["R"].sum() == 0 and report.confusion["R"].sum() == 0
    assert math.isnan(report.f1_per_class["R"])
    # absent stage left out of the macro F1: equals sklearn on the present labels
    assert report.f1_macro == f1_score(y_true, y_pred, average="macro")
    assert report.kappa == cohen_kappa_score(y_true, y_pred)


def test_confusion_matrix_orientation_hand_made():
    # true W staged as W, W, N2; true N2 staged as N2; true R staged as W, R.
    y_true = ["W", "W", "W", "N2", "R", "R"]
    y_pred = ["W", "W", "N2", "N2", "W", "R"]
    cm = staging_report(y_true, y_pred).confusion
    assert cm.index.name == "true" and cm.columns.name == "predicted"
    expected = pd.DataFrame(
        [[2, 1, 0], [0, 1, 0], [1, 0, 1]],
        index=["W", "N2", "R"], columns=["W", "N2", "R"],
    )
    np.testing.assert_array_equal(cm.to_numpy(), expected.to_numpy())
    assert cm.loc["W", "N2"] == 1  # a true W predicted N2
    assert cm.loc["N2", "W"] == 0
    assert cm.loc["R", "W"] == 1  # a true R predicted W


def test_perfect_prediction_is_one_everywhere():
    y, _, groups = _noisy_staging(3, n_subjects=3)
    report = staging_report(y, y, groups=groups)
    figures = report.to_dict()
    assert figures.pop("n_epochs") == len(y)
    assert all(v == 1.0 for v in figures.values()), figures
    assert (report.per_subject[["accuracy", "kappa", "f1_weighted", "f1_macro"]] == 1).all().all()
    np.testing.assert_array_equal(
        report.confusion.to_numpy(), np.diag(report.confusion.to_numpy().diagonal()))
    assert report.n_undefined_kappa == 0


def test_single_stage_subject_kappa_is_nan_counted_and_silent(caplog):
    y_true = np.array(["W", "W", "W", "W", "N2", "R", "N2", "W"])
    y_pred = np.array(["W", "W", "W", "W", "N2", "N2", "N2", "W"])
    groups = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn's UndefinedMetricWarning must not leak
        with caplog.at_level(logging.WARNING, logger="sleepkd.metrics._report"):
            report = staging_report(y_true, y_pred, groups=groups)
    assert math.isnan(report.per_subject.loc[1, "kappa"])
    assert report.n_undefined_kappa == 1
    assert "undefined for 1 subject" in caplog.text
    m = groups == 2
    assert report.per_subject.loc[2, "kappa"] == cohen_kappa_score(y_true[m], y_pred[m])
    summary = report.summary()
    # NaN subject left out of mean; the std of a single value is undefined
    assert summary.loc["kappa", "subject_mean"] == report.per_subject.loc[2, "kappa"]
    assert math.isnan(summary.loc["kappa", "subject_std"])
    assert "Kappa undefined" in report.to_markdown()


def test_pooled_kappa_nan_when_one_stage_everywhere(caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.WARNING, logger="sleepkd.metrics._report"):
            report = staging_report(["W"] * 5, ["W"] * 5)
    assert math.isnan(report.kappa)
    assert "kappa is undefined" in caplog.text
    assert report.confusion.to_numpy().tolist() == [[5]]
    assert report.accuracy == 1.0


def test_disagreeing_constant_raters_have_kappa_zero():
    report = staging_report(["W"] * 4, ["N2"] * 4)
    assert report.kappa == 0.0 == cohen_kappa_score(["W"] * 4, ["N2"] * 4)


def test_to_dict_summary_markdown_repr():
    report = staging_report(["W", "N2", "N2", "R"], ["W", "N2", "R", "R"],
                            groups=["a", "a", "b", "b"])
    assert isinstance(report, StagingReport)
    assert list(report.to_dict()) == ["accuracy", "kappa", "f1_weighted", "f1_macro",
                                      "f1_W", "f1_N2", "f1_R", "n_epochs"]
    assert report.to_dict()["f1_N2"] == pytest.approx(2 / 3)
    summary = report.summary()
    assert list(summary.columns) == ["pooled", "subject_mean", "subject_std"]
    assert list(summary.index) == ["accuracy", "kappa", "f1_weighted", "f1_macro",
                                   "f1_W", "f1_N2", "f1_R"]
    text = report.to_markdown(digits=2)
    lines = text.splitlines()
    assert lines[0] == "**Sleep staging report** (4 epochs, 2 subjects)"
    assert "| accuracy    |   0.75 |         0.75 |        0.35 |" in lines
    assert "| true \\ predicted | W | N2 | R |" in lines
    assert "| N2               | 0 |  1 | 1 |" in lines
    assert len({len(line) for line in lines if line.startswith("|")}) == 2  # 2 tables
    assert repr(report) == (
        "StagingReport(n_epochs=4, n_subjects=2, accuracy=0.750, kappa=0.636, "
        "f1_weighted=0.750, f1_macro=0.778, labels=['W', 'N2', 'R'])"
    )
    no_groups = staging_report(["W", "R"], ["W", "R"]).summary()
    assert list(no_groups.columns) == ["pooled"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y_true=["W", "R"], y_pred=["W"]), "same length, got 2 and 1"),
        (dict(y_true=[], y_pred=[]), "empty"),
        (dict(y_true=[["W"]], y_pred=[["W"]]), "1-D"),
        (dict(y_true=["W", "R"], y_pred=["W", "R"], groups=[1]), "groups"),
        (dict(y_true=["W", "R"], y_pred=["W", "R"], labels=["W"]), r"\['R'\]"),
        (dict(y_true=["W", "R"], y_pred=["W", "R"], labels=["W", "R", "W"]), "duplicates"),
        (dict(y_true=["W", "R"], y_pred=["W", "R"], labels=[]), "non-empty"),
        (dict(y_true=["W", "R"], y_pred=[1, 2]), "[Mm]ix"),
    ],
)
def test_errors(kwargs, match):
    y_true, y_pred = kwargs.pop("y_true"), kwargs.pop("y_pred")
    with pytest.raises(ValueError, match=match):
        staging_report(y_true, y_pred, **kwargs)


def test_relative_gain():
    assert relative_gain(0.64, 0.56) == pytest.approx(0.142857, abs=1e-6)
    assert relative_gain(0.5, 0.5) == 0.0
    assert relative_gain(0.4, 0.5) == pytest.approx(-0.2)
    for baseline in (0, -0.1):
        with pytest.raises(ValueError, match="positive"):
            relative_gain(0.5, baseline)
    with pytest.raises(ValueError, match="finite"):
        relative_gain(float("nan"), 0.5)
