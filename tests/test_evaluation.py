"""run_experiment, ExperimentResult, figures and the saved-model bundle."""

from __future__ import annotations

import logging

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.utils import Bunch

from sleepkd import ECGStudent, EEGTeacher
from sleepkd.evaluation import (
    StagingModel,
    load_model,
    run_experiment,
    save_model,
    subject_folds,
)
from sleepkd.metrics import relative_gain, staging_report
from tests._toy import make_toy_paired

pytestmark = pytest.mark.filterwarnings("ignore:The EEG teacher reaches:UserWarning")

TINY = dict(module="compact", module_params={"widths": (2, 4, 4, 4, 4),
                                              "bottleneck_width": 4,
                                              "pools": (2, 2, 2, 2, 2)},
            max_epochs=2, lr=3e-3, batch_size=32, patience=None, verbose=0)
STAGES = np.array(["W", "N2", "R"])  # 3 toy classes as real 5-class stages


def _toy_data():
    X_ecg, X_eeg, y, groups = make_toy_paired(n_subjects=4, n_per_subject=24)
    y = STAGES[np.searchsorted(["N", "R", "W"], y)]  # toy labels N R W -> stages
    records = np.char.add("rec-", groups)
    onsets = np.tile(30.0 * np.arange(24), 4)
    return Bunch(X_ecg=X_ecg, X_eeg=X_eeg, y=y, groups=groups, records=records,
                 onsets=onsets, source={"synthetic (tests)"}, DESCR="toy SYNTHETIC data")


@pytest.fixture(scope="module")
def toy_data():
    return _toy_data()


@pytest.fixture(scope="module")
def result(toy_data):
    return run_experiment(
        toy_data, teacher=EEGTeacher(**TINY), student=ECGStudent(**TINY),
        schemes=("3class", "5class"), strategies=("baseline", "sd+cl", "at+sd+cl"),
        extra_models={"majority": DummyClassifier(strategy="most_frequent")},
        n_splits=2, seeds=(0, 1), stager_params={"pretrain_epochs": 1},
        keep_estimators=True, verbose=0)


def test_scores_cover_every_seed_fold_scheme_model(result):
    scores = result.scores
    models = ["EEG teacher", "ECG baseline", "SD+CL", "AT+SD+CL", "majority"]
    assert result.models == models
    assert len(scores) == 2 * 2 * 2 * len(models)
    combos = scores.groupby(["seed", "fold", "scheme"])["model"].apply(list)
    assert all(list(m) == models for m in combos)
    assert {"accuracy", "kappa", "f1_weighted", "f1_macro", "f1_W", "f1_R"} <= set(scores)
    assert result.provenance == "synthetic"


def test_folds_are_subject_wise_and_shared(result, toy_data):
    # two folds of two subjects each, disjoint, covering all four subjects
    tested = [s for subjects in result.folds.values() for s in subjects]
    assert sorted(tested) == sorted(set(toy_data.groups))
    preds = result.predictions
    for (seed, fold, scheme, model), rows in preds.groupby(
            ["seed", "fold", "scheme", "model"]):
        assert sorted(set(rows["subject"])) == result.folds[fold]
    # every model saw exactly the same held-out epochs
    keys = preds.groupby("model").apply(
        lambda r: tuple(sorted(zip(r["seed"], r["fold"], r["scheme"], r["record"],
                                   r["onset"]))), include_groups=False)
    assert keys.nunique() == 1


def test_scores_match_staging_report_on_saved_predictions(result):
    preds = result.predictions
    for _, row in result.scores.iterrows():
        sub = preds[(preds["seed"] == row["seed"]) & (preds["fold"] == row["fold"])
                    & (preds["scheme"] == row["scheme"]) & (preds["model"] == row["model"])]
        report = staging_report(sub["y_true"].to_numpy(), sub["y_pred"].to_numpy())
        assert row["n_epochs"] == len(sub)
        assert row["f1_weighted"] == pytest.approx(report.f1_weighted)
        assert row["accuracy"] == pytest.approx(report.accuracy)


def test_labels_are_mapped_to_each_scheme(result):
    preds = result.predictions
    assert set(preds.loc[preds["scheme"] == "3class", "y_true"]) == {"W", "N", "R"}
    assert set(preds.loc[preds["scheme"] == "5class", "y_true"]) == {"W", "N2", "R"}


def test_table_means_and_relative_gain_formula(result):
    table = result.table()
    assert list(table.index) == result.models
    assert ("3class", "weighted F1") in table.columns
    scores = result.scores[result.scores["scheme"] == "3class"]
    f1 = scores[scores["model"] == "SD+CL"]["f1_weighted"].to_numpy()
    assert table.loc["SD+CL", ("3class", "weighted F1")] == (
        f"{f1.mean():.3f} ± {f1.std(ddof=1):.3f}")
    # gain per fold and seed, from the scores, then mean ± std
    base = scores[scores["model"] == "ECG baseline"].set_index(["seed", "fold"])
    kd = scores[scores["model"] == "AT+SD+CL"].set_index(["seed", "fold"])
    gains = [100 * relative_gain(kd.loc[k, "f1_weighted"], base.loc[k, "f1_weighted"])
             for k in base.index]
    points = [100 * (kd.loc[k, "f1_weighted"] - base.loc[k, "f1_weighted"])
              for k in base.index]
    assert table.loc["AT+SD+CL", ("3class", "ΔF1w vs baseline (%)")] == (
        f"{np.mean(gains):.1f} ± {np.std(gains, ddof=1):.1f}")
    assert table.loc["AT+SD+CL", ("3class", "ΔF1w vs baseline (points)")] == (
        f"{np.mean(points):.1f} ± {np.std(points, ddof=1):.1f}")
    # gains are reported for the distilled students only
    assert table.loc["EEG teacher", ("3class", "ΔF1w vs baseline (%)")] == ""
    assert table.loc["ECG baseline", ("3class", "ΔF1w vs baseline (%)")] == ""


def test_markdown_names_the_data_and_every_model(result):
    text = result.to_markdown()
    assert "synthetic data generated by sleepkd" in text
    assert "### 3class" in text and "### 5class" in text
    for model in result.models:
        assert f"| {model} |" in text


def test_save_writes_tables_predictions_and_figures(result, tmp_path):
    pytest.importorskip("matplotlib")
    paths = result.save(tmp_path)
    for name in ("results", "scores", "predictions", "confusion_3class",
                 "hypnogram_5class"):
        assert paths[name].is_file() and paths[name].stat().st_size > 0
    scores = pd.read_csv(paths["scores"])
    pd.testing.assert_frame_equal(scores[["seed", "fold", "model"]],
                                  result.scores[["seed", "fold", "model"]])
    preds = pd.read_csv(paths["predictions"])
    assert len(preds) == len(result.predictions)
    assert {"record", "onset", "y_true", "y_pred"} <= set(preds)
    assert "Folds (test subjects)" in paths["results"].read_text()


def test_estimators_are_kept_and_the_teacher_is_shared(result):
    key = (0, 0, "3class", "AT+SD+CL")
    stager = result.estimators[key]
    teacher = result.estimators[(0, 0, "3class", "EEG teacher")]
    # the students reuse the fold's teacher, frozen, instead of refitting it
    assert stager.teacher_.estimator is teacher
    assert result.estimators[(0, 0, "3class", "SD+CL")].teacher_.estimator is teacher


def test_parallel_runs_reproduce_the_sequential_result(result, toy_data):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers take the caller's thread count
    try:
        parallel = run_experiment(
            toy_data, teacher=EEGTeacher(**TINY), student=ECGStudent(**TINY),
            schemes=("3class", "5class"), strategies=("baseline", "sd+cl", "at+sd+cl"),
            extra_models={"majority": DummyClassifier(strategy="most_frequent")},
            n_splits=2, seeds=(0, 1), stager_params={"pretrain_epochs": 1},
            keep_estimators=True, n_jobs=2, verbose=0)
        sequential = run_experiment(
            toy_data, teacher=EEGTeacher(**TINY), student=ECGStudent(**TINY),
            schemes=("3class", "5class"), strategies=("baseline", "sd+cl", "at+sd+cl"),
            extra_models={"majority": DummyClassifier(strategy="most_frequent")},
            n_splits=2, seeds=(0, 1), stager_params={"pretrain_epochs": 1}, verbose=0)
    finally:
        torch.set_num_threads(threads)
    pd.testing.assert_frame_equal(parallel.scores, sequential.scores)
    pd.testing.assert_frame_equal(parallel.predictions, sequential.predictions)
    assert parallel.scores[["seed", "fold", "scheme", "model"]].equals(
        result.scores[["seed", "fold", "scheme", "model"]])
    # fitted models come back from the workers, each student with its fold's teacher
    stager = parallel.estimators[(1, 1, "5class", "AT+SD+CL")]
    assert stager.teacher_.estimator is parallel.estimators[(1, 1, "5class", "EEG teacher")]


def test_bad_arguments_raise(toy_data):
    kw = dict(teacher=EEGTeacher(**TINY), student=ECGStudent(**TINY), verbose=0)
    with pytest.raises(ValueError, match="more than the 4 subjects"):
        run_experiment(toy_data, n_splits=5, **kw)
    with pytest.raises(ValueError, match="schemes"):
        run_experiment(toy_data, schemes=("6class",), **kw)
    with pytest.raises(ValueError, match="Unknown strategies"):
        run_experiment(toy_data, strategies=("kd",), **kw)
    with pytest.raises(ValueError, match="no 'X_eeg'"):
        run_experiment({"X_ecg": toy_data.X_ecg, "y": toy_data.y}, **kw)
    with pytest.raises(ValueError, match="n_jobs"):
        run_experiment(toy_data, n_jobs=0, **kw)
    with pytest.raises(ValueError, match="n_jobs"):
        run_experiment(toy_data, n_jobs=True, **kw)


def test_subject_folds_are_deterministic_and_disjoint():
    groups = np.repeat(["a", "b", "c", "d", "e"], 3)
    first, second = subject_folds(groups, 5), subject_folds(groups, 5)
    for (tr1, te1), (tr2, te2) in zip(first, second):
        np.testing.assert_array_equal(te1, te2)
        assert not set(groups[tr1]) & set(groups[te1])


# --------------------------------------------------------------------------- bundle
class _MeanAmplitudeStager:
    """A fitted stand-in classifier: stage by the standard deviation of the row."""

    classes_ = np.array(["N", "W"])

    def predict_proba(self, X):
        p_w = (np.asarray(X).std(axis=1) > 1.0).astype(float)
        return np.column_stack([1 - p_w, p_w])


@pytest.fixture(scope="module")
def fitted_student():
    X_ecg, _, y, groups = make_toy_paired(n_subjects=3, n_per_subject=20, n_times_ecg=300)
    return ECGStudent(**TINY, random_state=0).fit(X_ecg, y, groups=groups)


def test_bundle_round_trip_predicts_identically(fitted_student, tmp_path):
    model = StagingModel(fitted_student, fs=10.0, scheme="3class",
                         provenance="toy data (tests)")
    path = save_model(model, tmp_path / "sub" / "model.joblib")
    loaded = load_model(path)
    assert loaded.describe() == model.describe()
    rng = np.random.default_rng(0)
    ecg = rng.normal(size=int(95 * 20.0))  # 95 s at 20 Hz: 3 epochs + 5 s
    table = loaded.predict_recording(ecg, fs=20.0)
    np.testing.assert_array_equal(table["onset_s"], [0.0, 30.0, 60.0])
    assert list(table.columns) == ["onset_s", "stage"] + [
        f"p_{c}" for c in fitted_student.classes_] + ["ecg_quality"]
    np.testing.assert_allclose(table.filter(like="p_").sum(axis=1), 1.0, rtol=1e-6)
    pd.testing.assert_frame_equal(table, model.predict_recording(ecg, fs=20.0))


def test_bundle_resamples_to_the_model_rate_and_drops_partial_epoch(caplog):
    model = StagingModel(_MeanAmplitudeStager(), fs=50.0, scheme="3class")
    t = np.arange(int(100 * 200)) / 200  # 100 s at 200 Hz
    # quiet first minute, loud after: W only in the third epoch (60-90 s)
    ecg = np.where(t < 60, 0.1, 3.0) * np.sin(2 * np.pi * 1.0 * t)
    bundle_logger = logging.getLogger("sleepkd.evaluation._bundle")
    bundle_logger.addHandler(caplog.handler)  # also when the CLI stopped propagation
    try:
        with caplog.at_level(logging.INFO, logger=bundle_logger.name):
            X, onsets = model.epochs(ecg, fs=200.0)
            table = model.predict_recording(ecg, fs=200.0)
    finally:
        bundle_logger.removeHandler(caplog.handler)
    assert X.shape == (3, 1500)  # 30 s at 50 Hz; the last 10 s are dropped
    assert "trailing 10.0 s" in caplog.text
    assert table["stage"].tolist() == ["N", "N", "W"]
    # a 1-Hz sine survives the resampling with its amplitude
    assert np.abs(X[2]).max() == pytest.approx(3.0, rel=0.02)


def test_bundle_adds_context_after_the_preprocessor():
    from sklearn.preprocessing import FunctionTransformer

    first_sample = FunctionTransformer(lambda X: X[:, :1])  # one value per epoch
    model = StagingModel(_MeanAmplitudeStager(), fs=1.0, context=1,
                         preprocessor=first_sample)
    ecg = np.repeat([1.0, 2.0, 3.0], 30)
    X, _ = model.epochs(ecg, fs=1.0)
    np.testing.assert_array_equal(X, [[0, 1, 2], [1, 2, 3], [2, 3, 0]])


def test_bundle_flags_epochs_that_fail_the_ecg_quality_gate(caplog):
    from tests._ecg_fixtures import make_beat_times, synth_ecg

    model = StagingModel(_MeanAmplitudeStager(), fs=50.0, scheme="3class")
    ecg = synth_ecg(make_beat_times(120.0, rng=0), 100.0, 120.0)  # 4 epochs at 100 Hz
    ecg[3000:6000] = np.random.default_rng(0).normal(size=3000)  # the 2nd is noise
    ecg[9000:] = 0.0  # the 4th a flat line (lead off)
    table = model.predict_recording(ecg, fs=100.0)
    assert table["ecg_quality"].tolist() == ["ok", "noise", "ok", "no_beats"]
    bundle_logger = logging.getLogger("sleepkd.evaluation._bundle")
    bundle_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger=bundle_logger.name):
            noise = model.predict_recording(np.random.default_rng(1).normal(size=9000), 100.0)
    finally:
        bundle_logger.removeHandler(caplog.handler)
    assert noise["ecg_quality"].tolist() == ["noise"] * 3
    assert "3 of 3 epochs (100%) failed the ECG quality gate" in caplog.text


@pytest.mark.parametrize("ecg, fs, match", [
    (np.zeros(29 * 100), 100.0, "shorter than one 30-s epoch"),
    (np.zeros(60 * 20), 20.0, "below the 50 Hz"),
    (np.zeros((2, 6000)), 100.0, "1-D"),
    (np.r_[np.zeros(6000), np.nan], 100.0, "1 NaN/inf"),
])
def test_bundle_rejects_unusable_recordings(ecg, fs, match):
    model = StagingModel(_MeanAmplitudeStager(), fs=50.0)
    with pytest.raises(ValueError, match=match):
        model.predict_recording(ecg, fs=fs)


def test_load_model_rejects_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such model file"):
        load_model(tmp_path / "missing.joblib")
    other = tmp_path / "other.joblib"
    joblib.dump({"not": "a model"}, other)
    with pytest.raises(ValueError, match="other.joblib does not hold a sleepkd"):
        load_model(other)
    corrupt = tmp_path / "corrupt.joblib"
    corrupt.write_bytes(b"\x00garbage, not a pickle")
    with pytest.raises(ValueError, match="corrupt.joblib is not a readable"):
        load_model(corrupt)
