"""Night-level estimators: sequence assembly, masking, sklearn integration, learning."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score

from sleepkd.distillation._night_estimators import ECGNightStudent, EEGNightTeacher
from sleepkd.distillation._night_nets import NightStagingNet
from sleepkd.distillation._sequences import IGNORE, NightIndex, NightWindows, window_starts
from sleepkd.metrics import staging_scorer

from tests._night_toy import TinyNightNet, make_toy_nights


def _student(**kw):
    params = dict(module=TinyNightNet, window=32, max_epochs=12, lr=3e-3, batch_size=4,
                  verbose=0, random_state=0)
    params.update(kw)
    return ECGNightStudent(**params)


@pytest.fixture(scope="module")
def toy():
    return make_toy_nights(n_subjects=6, unscored_every=13, seed=1)


# --------------------------------------------------------------------------- assembly
def test_nights_assembled_and_split_back_exactly():
    # three nights, rows interleaved (shuffled across nights, time order kept within)
    nights = np.array(["c", "a", "c", "b", "a", "c", "b", "a", "c"])
    values = np.arange(9) * 10.0
    index = NightIndex(nights, 9)
    assert index.ids.tolist() == ["c", "a", "b"]
    assert [r.tolist() for r in index.rows] == [[0, 2, 5, 8], [1, 4, 7], [3, 6]]
    packed = index.pack(values, fill=-5.0)
    np.testing.assert_array_equal(packed, [[0, 20, 50, 80], [10, 40, 70, -5], [30, 60, -5, -5]])
    np.testing.assert_array_equal(index.unpack(packed), values)


def test_windows_carry_mask_and_ignored_labels():
    nights = np.array(["a"] * 5 + ["b"] * 2)
    y = np.array([0, 1, IGNORE, 2, 0, 1, 1])  # one unscored epoch in night a
    x = np.arange(7, dtype=np.float32)[:, None, None]
    ds = NightWindows({"x": x}, y, NightIndex(nights, 7), window=None)
    assert len(ds) == 2
    inputs, target = ds[1]
    np.testing.assert_array_equal(inputs["x"].ravel(), [5, 6, 0, 0, 0])
    np.testing.assert_array_equal(inputs["mask"], [True, True, False, False, False])
    np.testing.assert_array_equal(target, [1, 1, IGNORE, IGNORE, IGNORE])
    np.testing.assert_array_equal(ds[0][1], [0, 1, IGNORE, 2, 0])


def test_training_windows_cover_every_epoch():
    for length in (1, 7, 100, 257):
        for offset in (0, 3, 15):
            starts = window_starts(length, 32, offset)
            covered = np.zeros(length, dtype=bool)
            for s in starts:
                covered[s:s + 32] = True
            assert covered.all() and starts.min() == 0


def test_padding_never_reaches_the_gradient():
    torch.manual_seed(0)
    module = TinyNightNet(1, 3, 24)
    net = NightStagingNet(module=module, criterion=torch.nn.CrossEntropyLoss).initialize()
    x = torch.randn(2, 10, 1, 24)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 6:] = False
    y = torch.randint(0, 3, (2, 10))
    y[~mask] = IGNORE
    y[0, 3] = IGNORE  # an unscored epoch inside a night

    def grads(x_in):
        module.zero_grad()
        inputs = {"x": x_in, "mask": mask}
        loss = net.get_loss(net.infer(inputs), y, X=inputs, training=True)
        loss.backward()
        return [p.grad.clone() for p in module.parameters()]

    base = grads(x)
    x2 = x.clone()
    x2[~mask] = 1e3 * torch.randn_like(x2[~mask])  # change padded values only
    for g1, g2 in zip(base, grads(x2)):
        torch.testing.assert_close(g1, g2)


# --------------------------------------------------------------------------- estimator
def test_unscored_rows_are_input_but_not_classes(toy):
    X, _, y, nights, groups = toy
    est = _student(max_epochs=2).fit(X, y, nights=nights, groups=groups)
    assert est.classes_.tolist() == ["N2", "R", "W"]
    assert est.n_unscored_ == int(np.sum(y == "?")) > 0
    proba = est.predict_proba(X, nights=nights)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_student_reading_nights_learns_well_above_chance(toy):
    X, _, y, nights, groups = toy
    train = ~np.isin(groups, ["s0", "s1"])
    est = _student(max_epochs=25).fit(X[train], y[train], nights=nights[train],
                                      groups=groups[train])
    pred = est.predict(X[~train], nights=nights[~train])
    scored = y[~train] != "?"
    kappa = cohen_kappa_score(y[~train][scored], pred[scored])
    assert kappa > 0.5, kappa


def test_each_night_is_staged_on_its_own(toy):
    X, _, y, nights, groups = toy
    est = _student(max_epochs=2).fit(X, y, nights=nights, groups=groups)
    together = est.predict_proba(X, nights=nights)
    one = nights == nights[0]
    np.testing.assert_allclose(est.predict_proba(X[one], nights=nights[one]), together[one],
                               rtol=1e-5, atol=1e-6)


def test_same_seed_same_predictions_other_seed_differs(toy):
    X, _, y, nights, groups = toy
    p1 = _student(max_epochs=3).fit(X, y, nights=nights, groups=groups).predict_proba(
        X, nights=nights)
    p2 = _student(max_epochs=3).fit(X, y, nights=nights, groups=groups).predict_proba(
        X, nights=nights)
    p3 = _student(max_epochs=3, random_state=1).fit(X, y, nights=nights,
                                                     groups=groups).predict_proba(X, nights=nights)
    np.testing.assert_array_equal(p1, p2)
    assert not np.allclose(p1, p3)


def test_validation_split_never_cuts_a_night(toy, monkeypatch):
    X, _, y, nights, groups = toy
    seen = {}
    est = _student(max_epochs=1)
    original = est._datasets

    def spy(inputs, y_enc, index, train_idx, valid_idx, seed):
        seen["train"], seen["valid"] = set(nights[train_idx]), set(nights[valid_idx])
        return original(inputs, y_enc, index, train_idx, valid_idx, seed)

    monkeypatch.setattr(est, "_datasets", spy)
    est.fit(X, y, nights=nights)  # no groups: the split is by night
    assert seen["valid"] and not seen["train"] & seen["valid"]


def test_a_night_of_two_subjects_is_refused(toy):
    X, _, y, nights, groups = toy
    groups = groups.copy()
    groups[0] = "someone else"
    with pytest.raises(ValueError, match="several groups"):
        _student().fit(X, y, nights=nights, groups=groups)


def test_bad_input_messages(toy):
    X, _, y, nights, _ = toy
    with pytest.raises(ValueError, match="one night id per row"):
        _student().fit(X, y, nights=nights[:-1])
    with pytest.raises(ValueError, match="unscored label"):
        _student().fit(X, np.full(len(X), "?"), nights=nights)
    with pytest.raises(ValueError, match="window must be"):
        _student(window=0).fit(X, y, nights=nights)
    with pytest.raises(ValueError, match="reads whole nights"):
        ECGNightStudent(module="mlp", verbose=0).fit(X, y, nights=nights)


# --------------------------------------------------------------------------- sklearn
@pytest.fixture
def routing():
    sklearn.set_config(enable_metadata_routing=True)
    yield
    sklearn.set_config(enable_metadata_routing=False)


def test_cross_val_score_by_subject_routes_nights(toy, routing):
    X, _, y, nights, groups = toy
    cv = GroupKFold(n_splits=3)
    for train, test in cv.split(X, y, groups):  # folds never split a night
        assert not set(nights[train]) & set(nights[test])
    scores = cross_val_score(_student(max_epochs=15), X, y, cv=cv,
                             scoring=staging_scorer("kappa"),
                             params={"nights": nights, "groups": groups})
    assert scores.shape == (3,) and scores.mean() > 0.3, scores


def test_grid_search_clone_and_joblib(toy, routing, tmp_path):
    X, _, y, nights, groups = toy
    search = GridSearchCV(_student(max_epochs=3), {"lr": [1e-3, 3e-3]}, cv=GroupKFold(2),
                          scoring=staging_scorer("weighted_f1"))
    search.fit(X, y, groups=groups, nights=nights)
    best = search.best_estimator_
    assert clone(best).get_params()["lr"] == best.lr
    path = tmp_path / "night.joblib"
    joblib.dump(best, path)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(X, nights=nights),
                                  best.predict_proba(X, nights=nights))


def test_teacher_reads_eeg_nights(toy):
    _, X_eeg, y, nights, groups = toy
    teacher = EEGNightTeacher(module=TinyNightNet, window=32, max_epochs=8, lr=3e-3,
                              batch_size=4, verbose=0, random_state=0)
    teacher.fit(X_eeg, y, nights=nights, groups=groups)
    scored = y != "?"
    assert teacher.score(X_eeg, y, nights=nights) > 0.8
    assert cohen_kappa_score(y[scored], teacher.predict(X_eeg, nights=nights)[scored]) > 0.7
