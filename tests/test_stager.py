"""DistilledECGStager: the cascade, its strategies, learning and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import cohen_kappa_score

from sleepkd import DistilledECGStager, ECGStudent, EEGTeacher
from tests._toy import make_toy_paired

CONV = dict(module="compact", module_params={"widths": (4, 8, 8, 8, 8),
                                              "bottleneck_width": 8,
                                              "pools": (2, 2, 2, 2, 2)},
            max_epochs=6, lr=3e-3, batch_size=32, patience=None, verbose=0)


@pytest.fixture(scope="module")
def toy():
    return make_toy_paired()


def _stager(strategy="at+sd+cl", **kw):
    params = dict(teacher=EEGTeacher(**CONV), student=ECGStudent(**CONV),
                  strategy=strategy, random_state=0)
    return DistilledECGStager(**{**params, **kw})


@pytest.fixture(scope="module")
def fitted_teacher(toy):
    X_ecg, X_eeg, y, groups = toy
    return EEGTeacher(**CONV, random_state=0).fit(X_eeg, y, groups=groups)


def test_teacher_learns(toy, fitted_teacher):
    X_ecg, X_eeg, y, groups = toy
    X2, Xe2, y2, _ = make_toy_paired(n_subjects=2, seed=1)
    kappa = cohen_kappa_score(y2, fitted_teacher.predict(Xe2))
    assert kappa > 0.8


@pytest.mark.parametrize("strategy", ["baseline", "sd+cl", "at+cl", "at+sd+cl"])
def test_every_strategy_beats_majority(toy, fitted_teacher, strategy):
    X_ecg, X_eeg, y, groups = toy
    stager = _stager(strategy, teacher=FrozenEstimator(fitted_teacher))
    stager.set_params(student__max_epochs=10)
    stager.fit(X_ecg, y, X_eeg=X_eeg, groups=groups)
    X2, Xe2, y2, _ = make_toy_paired(n_subjects=2, seed=1)
    majority = np.mean(y2 == "W")  # any single class reaches about 1/3
    acc = np.mean(stager.predict(X2) == y2)
    assert acc > majority + 0.2, (strategy, acc)
    assert set(stager.history_) >= {"student"}
    if "at" in strategy:
        assert stager.history_["attention_transfer"]
        assert stager.at_layers_[0] == ("enc1", "enc1")


def test_cascade_fits_teacher_and_records_history(toy):
    X_ecg, X_eeg, y, groups = toy
    stager = _stager().fit(X_ecg, y, X_eeg=X_eeg, groups=groups)
    assert set(stager.history_) == {"teacher", "attention_transfer", "student"}
    assert isinstance(stager.teacher_, EEGTeacher)
    assert stager.strategy_ == "at+sd+cl"
    proba = stager.predict_proba(X_ecg[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # the frozen teacher has no trainable parameters left
    assert not any(p.requires_grad for p in stager.teacher_.module_.parameters())


def test_missing_eeg_falls_back_to_baseline(toy):
    X_ecg, X_eeg, y, groups = toy
    with pytest.warns(UserWarning, match="needs X_eeg"):
        stager = _stager().fit(X_ecg, y)
    assert stager.strategy_ == "baseline" and stager.teacher_ is None


def test_baseline_needs_no_eeg_and_does_not_warn(toy):
    X_ecg, X_eeg, y, groups = toy
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _stager("baseline").fit(X_ecg, y, groups=groups)


def test_set_params_reaches_default_components():
    stager = DistilledECGStager().set_params(teacher__max_epochs=3, student__max_epochs=4)
    assert stager.teacher.max_epochs == 3 and stager.student.max_epochs == 4
    assert DistilledECGStager().teacher is None  # defaults are not shared or mutated


@pytest.mark.parametrize(
    "kwargs, fit_kwargs, match",
    [
        ({}, {"X_eeg_rows": 10}, "X_eeg has 10 rows but X has"),
        ({}, {"nan_in": "X_eeg"}, "X_eeg contains NaN"),
        ({}, {"nan_in": "X"}, "NaN"),
        ({}, {"one_class": True}, "at least 2 classes"),
        ({"strategy": "kd"}, {}, "Unknown strategy 'kd'"),
        ({"alpha": 1.5}, {}, "alpha"),
        ({"temperature": 0}, {}, "temperature"),
        ({"at_distance": "cos"}, {}, "at_distance"),
    ],
)
def test_bad_input(toy, kwargs, fit_kwargs, match):
    X_ecg, X_eeg, y, groups = toy
    X_ecg, X_eeg, y = X_ecg.copy(), X_eeg.copy(), y.copy()
    if "X_eeg_rows" in fit_kwargs:
        X_eeg = X_eeg[: fit_kwargs["X_eeg_rows"]]
    if fit_kwargs.get("nan_in") == "X_eeg":
        X_eeg[3, 0, 5] = np.nan
    if fit_kwargs.get("nan_in") == "X":
        X_ecg[3, 5] = np.nan
    if fit_kwargs.get("one_class"):
        y[:] = "W"
    with pytest.raises(ValueError, match=match):
        _stager(**kwargs).fit(X_ecg, y, X_eeg=X_eeg, groups=groups)


def test_frozen_teacher_with_other_classes_is_refused(toy, fitted_teacher):
    X_ecg, X_eeg, y, groups = toy
    y_other = np.where(y == "R", "N", y)  # the teacher knows 3 classes, y has 2
    with pytest.raises(ValueError, match="frozen teacher was fitted on classes"):
        _stager(teacher=FrozenEstimator(fitted_teacher)).fit(
            X_ecg, y_other, X_eeg=X_eeg, groups=groups)


def test_attention_transfer_refuses_mlp(toy):
    X_ecg, X_eeg, y, groups = toy
    stager = DistilledECGStager(teacher=EEGTeacher(**CONV),
                                student=ECGStudent(module="mlp", max_epochs=1, verbose=0),
                                strategy="at+cl", random_state=0)
    with pytest.raises(ValueError, match="Attention transfer needs convolutional"):
        stager.fit(X_ecg, y, X_eeg=X_eeg, groups=groups)
    assert not hasattr(stager, "teacher_")  # refused before the teacher was trained


def test_soft_label_distillation_works_with_mlp_features(toy):
    X_ecg, X_eeg, y, groups = toy
    feats = np.stack([X_ecg.std(axis=1), np.abs(X_ecg).mean(axis=1)], axis=1)
    stager = DistilledECGStager(
        teacher=EEGTeacher(**CONV),
        student=ECGStudent(module="mlp", max_epochs=30, lr=1e-2, verbose=0),
        strategy="sd+cl", random_state=0)
    stager.fit(feats, y, X_eeg=X_eeg, groups=groups)
    assert np.mean(stager.predict(feats) == y) > 0.6


def test_unfitted_raises(toy):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        _stager().predict(toy[0])


def test_validation_split_holds_out_whole_subjects():
    from sleepkd.distillation._splits import train_valid_split

    y = np.arange(100) % 3
    groups = np.repeat(np.arange(10), 10)
    train, valid = train_valid_split(y, groups, 0.2, seed=0)
    assert set(groups[train]).isdisjoint(groups[valid])
    assert len(np.unique(groups[valid])) == 2 and len(train) + len(valid) == 100
    train, valid = train_valid_split(y, None, 0.2, seed=0)  # no groups: stratified rows
    assert len(valid) == 20 and sorted(np.bincount(y[valid])) == [6, 7, 7]
    assert train_valid_split(y, groups, None, seed=0)[1] is None


def test_subjects_without_labels_never_validate():
    from sleepkd.distillation._splits import train_valid_split

    y = np.arange(100) % 3
    groups = np.repeat(np.arange(10), 10)
    y[groups >= 4] = -1  # six subjects recorded, never scored
    for seed in range(20):
        train, valid = train_valid_split(y, groups, 0.2, seed=seed)
        assert set(groups[valid]) <= {0, 1, 2, 3} and len(np.unique(groups[valid])) == 1
        assert set(groups[train]).isdisjoint(groups[valid])
        assert len(train) + len(valid) == 100
    y[groups >= 1] = -1  # one scored subject: nothing left to validate on
    train, valid = train_valid_split(y, groups, 0.2, seed=0)
    assert valid is None and len(train) == 100


def test_frozen_teacher_is_judged_on_the_subjects_it_never_saw(toy):
    X_ecg, X_eeg, y, groups = toy
    unseen = np.isin(groups, ["s4", "s5"])
    X_eeg = X_eeg.copy()
    X_eeg[unseen] += np.random.default_rng(0).normal(scale=1.0, size=X_eeg[unseen].shape)
    teacher = EEGTeacher(**CONV, validation_fraction=None, random_state=0).fit(
        X_eeg[~unseen], y[~unseen], groups=groups[~unseen])
    stager = _stager("sd+cl", teacher=FrozenEstimator(teacher))
    stager.set_params(student__max_epochs=1)
    stager.fit(X_ecg, y, X_eeg=X_eeg, groups=groups)
    by_hand = cohen_kappa_score(y[unseen], teacher.predict(X_eeg[unseen]))
    assert by_hand < 0.95  # the noisy unseen subjects are not trivially perfect
    assert stager.teacher_valid_kappa_ == pytest.approx(by_hand, abs=1e-12)
    # the student is selected on the same subjects
    assert set(stager.student_.valid_groups_) == {"s4", "s5"}


def test_shared_frozen_teacher_and_student_use_the_teachers_split(toy):
    """run_experiment's pattern: the teacher is fitted on the same rows, then frozen."""
    X_ecg, X_eeg, y, groups = toy
    teacher = EEGTeacher(**CONV, validation_fraction=0.34, random_state=0).fit(
        X_eeg, y, groups=groups)
    assert set(teacher.train_groups_).isdisjoint(teacher.valid_groups_)
    assert set(teacher.train_groups_) | set(teacher.valid_groups_) == set(groups)
    stager = _stager("sd+cl", teacher=FrozenEstimator(teacher), random_state=0)
    stager.set_params(student__max_epochs=1)
    stager.fit(X_ecg, y, X_eeg=X_eeg, groups=groups)
    never_seen = ~np.isin(groups, teacher.train_groups_)
    by_hand = cohen_kappa_score(y[never_seen], teacher.predict(X_eeg[never_seen]))
    assert stager.teacher_valid_kappa_ == pytest.approx(by_hand, abs=1e-12)
    np.testing.assert_array_equal(stager.student_.valid_groups_, teacher.valid_groups_)


def test_frozen_teacher_without_groups_is_not_judged_on_rows_it_may_have_seen(toy):
    X_ecg, X_eeg, y, groups = toy
    teacher = EEGTeacher(**{**CONV, "max_epochs": 1}, random_state=0).fit(X_eeg, y)
    assert teacher.train_groups_ is None
    stager = _stager("sd+cl", teacher=FrozenEstimator(teacher))
    stager.set_params(student__max_epochs=1)
    stager.fit(X_ecg, y, X_eeg=X_eeg, groups=groups)
    assert stager.teacher_valid_kappa_ is None


def test_labels_outside_every_stage_vocabulary_are_refused(toy):
    X_ecg, X_eeg, y, groups = toy
    y_typo = y.copy().astype(object)
    y_typo[:5] = "N5"  # next to W, N, R
    student = ECGStudent(module="mlp", max_epochs=1, verbose=0)
    feats = X_ecg.std(axis=1, keepdims=True)
    for estimator, X in [(student, feats), (EEGTeacher(**CONV), X_eeg)]:
        with pytest.raises(ValueError, match=r"Unknown sleep-stage label\(s\) \['N5'\]"
                                             r".*known labels are \[.*'N1'.*'W'"):
            estimator.fit(X, y_typo)
    with pytest.raises(ValueError, match="Unknown sleep-stage label"):
        _stager("baseline", student=student).fit(feats, y_typo, groups=groups)
    # labels none of which is a stage are a user's own classes, as sklearn expects
    y_own = np.where(y == "W", "one", np.where(y == "N", "two", "three"))
    assert set(clone_fit(student, feats, y_own).classes_) == {"one", "two", "three"}
    lower = np.char.lower(y.astype(str))  # known labels in another case pass too
    assert set(clone_fit(student, feats, lower).classes_) == {"w", "n", "r"}


def clone_fit(estimator, X, y):
    from sklearn.base import clone

    return clone(estimator).fit(X, y)
