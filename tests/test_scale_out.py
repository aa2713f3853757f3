"""Scale-out on existing engines: Hugging Face Accelerate through skorch, and
cross-validation folds on a Dask cluster through joblib.

No GPU here: the Accelerate path runs with ``Accelerator(cpu=True)`` (the mechanism:
the accelerated net classes, device placement left to the accelerator, the plain net
left behind after training); device moves are tested with CUDA patched off.
"""

from __future__ import annotations

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.model_selection import GroupKFold, cross_val_score

from sleepkd import ECGStudent
from sleepkd.distillation._night_estimators import ECGNightStudent
from sleepkd.metrics import staging_scorer

from tests._night_toy import TinyNightNet, make_toy_nights
from tests._toy import make_toy_paired
from tests.test_integration import CONV, check_cuda_model_loads_on_cpu

NIGHT = dict(module=TinyNightNet, window=32, max_epochs=3, lr=3e-3, batch_size=4,
             patience=None, verbose=0, random_state=0)


@pytest.fixture(scope="module")
def epochs():
    return make_toy_paired(n_subjects=4, n_per_subject=30)


@pytest.fixture(scope="module")
def nights():
    return make_toy_nights(n_subjects=6, unscored_every=13, seed=1)


@pytest.fixture
def accelerator_factory():
    """``Accelerator(cpu=True, ...)``; accelerate keeps one state per process, reset
    after each test so that the next one may pick another precision."""
    accelerate = pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState, GradientState

    def make(mixed_precision="no"):
        return accelerate.Accelerator(cpu=True, mixed_precision=mixed_precision)

    yield make
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _fit_student(accelerator, epochs):
    X_ecg, _, y, groups = epochs
    return ECGStudent(**CONV, random_state=0, accelerator=accelerator).fit(
        X_ecg, y, groups=groups)


def _fit_night_student(accelerator, nights):
    X, _, y, night_ids, groups = nights
    return ECGNightStudent(**NIGHT, accelerator=accelerator).fit(
        X, y, nights=night_ids, groups=groups)


# --------------------------------------------------------------------------- accelerate
def test_accelerate_fp32_gives_the_predictions_of_plain_skorch(accelerator_factory, epochs,
                                                               nights):
    accelerator = accelerator_factory("no")
    X_ecg = epochs[0]
    plain, accelerated = _fit_student(None, epochs), _fit_student(accelerator, epochs)
    np.testing.assert_array_equal(accelerated.predict_proba(X_ecg),
                                  plain.predict_proba(X_ecg))
    X, night_ids = nights[0], nights[3]
    plain, accelerated = (_fit_night_student(None, nights),
                          _fit_night_student(accelerator, nights))
    np.testing.assert_array_equal(accelerated.predict_proba(X, nights=night_ids),
                                  plain.predict_proba(X, nights=night_ids))
    # what is left after training is a plain net: no accelerator in the fitted model,
    # and the accelerator let go of what it prepared (modules, data loaders)
    assert type(accelerated.net_).__name__ == "NightStagingNet"
    assert not hasattr(accelerated.net_, "accelerator")
    assert str(accelerated.net_.device) == "cpu"
    assert not getattr(accelerator, "_dataloaders", []) and not getattr(
        accelerator, "_models", [])


def test_accelerate_bf16_autocast_stays_close_to_fp32(accelerator_factory, epochs, nights):
    """bf16 autocast during training (on the CPU here): probabilities within 0.05 of
    the fp32 fit and at least 90 % of the predictions equal (measured: 0.003 and 98 %
    per epoch, 0.012 and 99 % per night). Prediction runs in full precision."""
    accelerator = accelerator_factory("bf16")
    X_ecg = epochs[0]
    plain, bf16 = _fit_student(None, epochs), _fit_student(accelerator, epochs)
    p, q = plain.predict_proba(X_ecg), bf16.predict_proba(X_ecg)
    assert q.dtype == np.float64 and np.all(np.isfinite(q))
    np.testing.assert_allclose(q, p, atol=0.05)
    assert np.mean(p.argmax(1) == q.argmax(1)) >= 0.9
    X, night_ids = nights[0], nights[3]
    plain, bf16 = _fit_night_student(None, nights), _fit_night_student(accelerator, nights)
    p, q = plain.predict_proba(X, nights=night_ids), bf16.predict_proba(X, nights=night_ids)
    np.testing.assert_allclose(q, p, atol=0.05)
    assert np.mean(p.argmax(1) == q.argmax(1)) >= 0.9


def test_accelerated_fit_pickles_with_joblib(accelerator_factory, epochs, nights, tmp_path):
    accelerator = accelerator_factory("no")
    X_ecg = epochs[0]
    X, night_ids = nights[0], nights[3]
    for name, model, predict in [
        ("student", _fit_student(accelerator, epochs), lambda m: m.predict(X_ecg)),
        ("night", _fit_night_student(accelerator, nights),
         lambda m: m.predict(X, nights=night_ids)),
    ]:
        path = tmp_path / f"{name}.joblib"
        joblib.dump(model, path)
        np.testing.assert_array_equal(predict(joblib.load(path)), predict(model))


def test_accelerated_model_trained_on_cuda_predicts_on_cpu(accelerator_factory, nights,
                                                           monkeypatch):
    """The fitted net sits on the accelerator's device; once saved from a GPU it loads
    on a CPU-only machine as any skorch net does."""
    X, _, y, night_ids, groups = nights
    model = _fit_night_student(accelerator_factory("no"), nights)
    check_cuda_model_loads_on_cpu(model, monkeypatch, X, nights=night_ids)


def test_accelerated_model_writes_a_safe_model_file(accelerator_factory, tmp_path):
    """The accelerator is a training parameter, not data: the ``.sleepkd`` file stores
    the model without it (predicting on the CPU) and predicts as the model."""
    from sleepkd.evaluation._night_bundle import NightStagingModel
    from sleepkd.io._model_file import load_model_file, save_model_file

    X, _, y, night_ids, groups = make_toy_nights(n_subjects=4, n_times=60)
    student = ECGNightStudent(**{**NIGHT, "module": "heart_rate_tcn", "max_epochs": 2},
                              accelerator=accelerator_factory("no"))
    student.fit(X, y, nights=night_ids, groups=groups)
    model = NightStagingModel(student, fs_hr=2.0, scheme="3class", standardize=None)
    loaded = load_model_file(save_model_file(model, tmp_path / "model.sleepkd"))
    assert loaded.estimator.accelerator is None
    np.testing.assert_array_equal(loaded.estimator.predict_proba(X, nights=night_ids),
                                  student.predict_proba(X, nights=night_ids))


def test_accelerator_must_be_an_accelerator(epochs):
    pytest.importorskip("accelerate")
    X_ecg, _, y, groups = epochs
    with pytest.raises(TypeError, match="accelerate.Accelerator"):
        ECGStudent(**CONV, accelerator="bf16").fit(X_ecg, y, groups=groups)


def test_missing_accelerate_names_the_extra(epochs, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "accelerate", None)  # import accelerate fails
    X_ecg, _, y, groups = epochs
    student = ECGStudent(**CONV, accelerator=object())
    assert student.get_params()["accelerator"] is not None  # init only stores
    with pytest.raises(ImportError, match=r"sleepkd\[gpu\]"):
        student.fit(X_ecg, y, groups=groups)


# --------------------------------------------------------------------------- dask
def test_cross_validation_on_a_dask_cluster_gives_the_joblib_scores(nights):
    """joblib's Dask backend runs the folds on the cluster's workers: same scores as
    the serial joblib path, with nights and subjects routed to fit and scorer."""
    distributed = pytest.importorskip("distributed")
    X, _, y, night_ids, groups = nights
    student = ECGNightStudent(**NIGHT)

    def scores(n_jobs):
        return cross_val_score(student, X, y, cv=GroupKFold(3), n_jobs=n_jobs,
                               params={"nights": night_ids, "groups": groups},
                               scoring=staging_scorer("kappa"))

    with sklearn.config_context(enable_metadata_routing=True):
        serial = scores(1)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client, \
                joblib.parallel_config(backend="dask"), \
                distributed.get_task_stream(client) as tasks:
            on_dask = scores(2)
    assert len(tasks.data) >= 3  # the folds ran as tasks on the cluster
    assert serial.shape == (3,) and np.all(np.isfinite(serial))
    np.testing.assert_array_equal(on_dask, serial)


def test_fits_in_threads_of_one_process_reproduce_the_serial_fits(nights):
    """torch's generator is process-wide: fits running at once in threads (a Dask
    worker with several threads, joblib's threading backend) must not interleave
    their draws (initial weights, dropout), or seeds stop reproducing."""
    X, _, y, night_ids, groups = nights

    def fit(seed):
        student = ECGNightStudent(**{**NIGHT, "random_state": seed})
        return student.fit(X, y, nights=night_ids, groups=groups).predict_proba(
            X, nights=night_ids)

    seeds = range(6)
    serial = [fit(seed) for seed in seeds]
    threaded = joblib.Parallel(n_jobs=3, backend="threading")(
        joblib.delayed(fit)(seed) for seed in seeds)
    for a, b in zip(threaded, serial):
        np.testing.assert_array_equal(a, b)
