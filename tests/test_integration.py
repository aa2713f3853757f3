"""The sklearn integrations users rely on: Pipeline, routing, CV, search, clone, joblib."""

from __future__ import annotations

import pickle
import warnings

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from sleepkd import DistilledECGStager, ECGStudent, EEGTeacher
from tests._toy import make_toy_paired

CONV = dict(module="compact", module_params={"widths": (4, 8, 8, 8, 8),
                                              "bottleneck_width": 8,
                                              "pools": (2, 2, 2, 2, 2)},
            max_epochs=3, lr=3e-3, batch_size=32, patience=None, verbose=0)


@pytest.fixture(autouse=True)
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


@pytest.fixture(scope="module")
def toy():
    return make_toy_paired(n_subjects=4, n_per_subject=30)


def _stager(**kw):
    return DistilledECGStager(teacher=EEGTeacher(**CONV), student=ECGStudent(**CONV),
                              random_state=0, **kw)


def _standardise(X):
    return (X - X.mean(axis=1, keepdims=True)) / (X.std(axis=1, keepdims=True) + 1e-6)


def test_pipeline_routes_eeg_to_the_stager(toy):
    X_ecg, X_eeg, y, groups = toy
    pipe = Pipeline([("scale", FunctionTransformer(_standardise)), ("stager", _stager())])
    pipe.fit(X_ecg, y, X_eeg=X_eeg, groups=groups)
    stager = pipe.named_steps["stager"]
    assert stager.strategy_ == "at+sd+cl"  # X_eeg arrived: no fallback
    assert pipe.predict(X_ecg).shape == (len(y),)


def test_cross_val_score_with_groupkfold_and_routed_eeg(toy):
    X_ecg, X_eeg, y, groups = toy
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = cross_val_score(_stager(strategy="sd+cl"), X_ecg, y, cv=GroupKFold(2),
                                 params={"X_eeg": X_eeg, "groups": groups},
                                 scoring="f1_weighted")
    assert not [w for w in caught if "needs X_eeg" in str(w.message)]  # X_eeg arrived
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


def test_cross_val_score_in_parallel(toy):
    X_ecg, X_eeg, y, groups = toy
    scores = cross_val_score(_stager(strategy="sd+cl"), X_ecg, y, cv=GroupKFold(2),
                             params={"X_eeg": X_eeg, "groups": groups}, n_jobs=2)
    serial = cross_val_score(_stager(strategy="sd+cl"), X_ecg, y, cv=GroupKFold(2),
                             params={"X_eeg": X_eeg, "groups": groups})
    np.testing.assert_allclose(scores, serial)


def test_grid_search_over_alpha(toy):
    X_ecg, X_eeg, y, groups = toy
    search = GridSearchCV(_stager(strategy="sd+cl"),
                          {"alpha": [0.2, 0.8], "student__max_epochs": [2]},
                          cv=GroupKFold(2), scoring="f1_weighted")
    search.fit(X_ecg, y, X_eeg=X_eeg, groups=groups)
    assert search.best_params_["alpha"] in (0.2, 0.8)
    assert len(search.cv_results_["mean_test_score"]) == 2


def test_clone_keeps_params_and_drops_fit(toy):
    X_ecg, X_eeg, y, groups = toy
    stager = _stager(alpha=0.3).fit(X_ecg, y, X_eeg=X_eeg, groups=groups)
    copy = clone(stager)
    assert copy.get_params()["alpha"] == 0.3
    assert copy.get_params()["student__max_epochs"] == 3
    assert not hasattr(copy, "student_")


def test_joblib_round_trip_gives_identical_probabilities(toy, tmp_path):
    X_ecg, X_eeg, y, groups = toy
    stager = _stager().fit(X_ecg, y, X_eeg=X_eeg, groups=groups)
    path = tmp_path / "stager.joblib"
    joblib.dump(stager, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X_ecg), stager.predict_proba(X_ecg))


def test_same_seed_same_predictions_other_seed_differs(toy):
    X_ecg, X_eeg, y, groups = toy
    a = _stager().fit(X_ecg, y, X_eeg=X_eeg, groups=groups).predict_proba(X_ecg)
    b = _stager().fit(X_ecg, y, X_eeg=X_eeg, groups=groups).predict_proba(X_ecg)
    c = _stager().set_params(random_state=1).fit(
        X_ecg, y, X_eeg=X_eeg, groups=groups).predict_proba(X_ecg)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def check_cuda_model_loads_on_cpu(model, monkeypatch, X, **predict_params):
    """Pickle ``model`` as if fitted on a GPU and load it with CUDA absent: skorch maps
    the weights to the CPU and the predictions are those of the model."""
    from skorch.exceptions import DeviceWarning
    import torch

    expected = model.predict_proba(X, **predict_params)
    model.net_.device = "cuda"  # as saved by a GPU machine
    payload = pickle.dumps(model)
    with monkeypatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: False)
        with pytest.warns(DeviceWarning, match="no CUDA devices"):
            loaded = pickle.loads(payload)
    assert str(loaded.net_.device) == "cpu"
    np.testing.assert_allclose(loaded.predict_proba(X, **predict_params), expected,
                               rtol=1e-6)
    return loaded


def test_model_fitted_on_cuda_loads_on_cpu_only_machine(toy, monkeypatch):
    """skorch stores the device and maps CUDA weights to the CPU when CUDA is absent."""
    X_ecg, X_eeg, y, groups = toy
    student = ECGStudent(**CONV, random_state=0).fit(X_ecg, y, groups=groups)
    check_cuda_model_loads_on_cpu(student, monkeypatch, X_ecg)


def test_night_model_fitted_on_cuda_loads_on_cpu_only_machine(monkeypatch):
    """The night models predict on ``net_.device``: after loading, the CPU."""
    from sleepkd.distillation._night_estimators import ECGNightStudent
    from tests._night_toy import TinyNightNet, make_toy_nights

    X, _, y, nights, groups = make_toy_nights(n_subjects=4)
    student = ECGNightStudent(module=TinyNightNet, window=32, max_epochs=2, batch_size=4,
                              patience=None, verbose=0, random_state=0)
    student.fit(X, y, nights=nights, groups=groups)
    check_cuda_model_loads_on_cpu(student, monkeypatch, X, nights=nights)
