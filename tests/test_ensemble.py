"""SeedEnsemble: several seeded fits of a stager, probabilities averaged."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, cross_val_score

from sleepkd import DistilledECGStager, ECGNightStudent, ECGStudent, EEGNightTeacher, SeedEnsemble
from tests._night_toy import TinyNightNet, make_toy_nights

_NIGHT = dict(module=TinyNightNet, window=None, max_epochs=6, lr=2e-2,
              validation_fraction=None, verbose=0)


@pytest.fixture(scope="module")
def nights():
    return make_toy_nights(n_subjects=4, seed=1)


@pytest.fixture(scope="module")
def fitted(nights):
    X, _, y, night_ids, groups = nights
    ensemble = SeedEnsemble(ECGNightStudent(**_NIGHT), n_members=3, random_state=5)
    return ensemble.fit(X, y, nights=night_ids, groups=groups)


def test_members_are_the_single_fits_of_consecutive_seeds(fitted, nights):
    X, _, y, night_ids, groups = nights
    assert fitted.seeds_ == [5, 6, 7]
    single = ECGNightStudent(**_NIGHT, random_state=6).fit(X, y, nights=night_ids,
                                                          groups=groups)
    # bit for bit: the ensemble adds no randomness of its own
    np.testing.assert_array_equal(fitted.estimators_[1].predict_proba(X, nights=night_ids),
                                  single.predict_proba(X, nights=night_ids))


def test_probabilities_are_the_mean_of_the_members(fitted, nights):
    X, _, _, night_ids, _ = nights
    members = [m.predict_proba(X, nights=night_ids) for m in fitted.estimators_]
    proba = fitted.predict_proba(X, nights=night_ids)
    np.testing.assert_allclose(proba, np.mean(members, axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(fitted.predict(X, nights=night_ids),
                                  fitted.classes_[proba.argmax(axis=1)])
    # members differ (different seeds), so the mean is not any one of them
    assert not np.allclose(members[0], members[1])


def test_nights_reach_the_members_at_prediction(fitted, nights):
    X, _, _, night_ids, _ = nights
    # staged night by night vs. all rows read as one night: a sequence model differs
    apart = fitted.predict_proba(X, nights=night_ids)
    together = fitted.predict_proba(X)
    assert not np.allclose(apart, together)
    first = night_ids == night_ids[0]
    np.testing.assert_allclose(fitted.predict_proba(X[first]), apart[first], atol=1e-6)


def test_ensemble_learns_well_above_chance(nights):
    X, _, y, night_ids, groups = nights
    test = groups == groups[-1]
    ensemble = SeedEnsemble(ECGNightStudent(**{**_NIGHT, "max_epochs": 30}), n_members=2,
                            random_state=0)
    ensemble.fit(X[~test], y[~test], nights=night_ids[~test], groups=groups[~test])
    # three balanced classes: chance is about 1/3
    assert ensemble.score(X[test], y[test], nights=night_ids[test]) > 0.7


@pytest.mark.parametrize("kind", ["student", "cascade"])
def test_score_leaves_unscored_rows_out(nights, kind):
    X, X_eeg, y, night_ids, groups = nights
    y = y.astype(object)
    y[::5] = "?"
    base, eeg = ECGNightStudent(**_NIGHT), {}
    if kind == "cascade":  # the unscored label is the cascade's student's
        base = DistilledECGStager(student=base, strategy="baseline", validation_fraction=None)
        eeg = {"X_eeg": X_eeg}
    ensemble = SeedEnsemble(base, n_members=2, random_state=0)
    ensemble.fit(X, y, nights=night_ids, groups=groups, **eeg)
    pred = ensemble.predict(X, nights=night_ids)
    scored = y != "?"
    assert ensemble.score(X, y, nights=night_ids) == pytest.approx(
        float(np.mean(pred[scored] == y[scored])))


def test_cross_val_score_routes_nights_and_the_eeg(nights):
    X, X_eeg, y, night_ids, groups = nights
    teacher = EEGNightTeacher(**{**_NIGHT, "max_epochs": 3})
    stager = DistilledECGStager(teacher=teacher, student=ECGNightStudent(**_NIGHT),
                                strategy="sd+cl", validation_fraction=None)
    ensemble = SeedEnsemble(stager, n_members=2, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        scores = cross_val_score(ensemble, X, y, cv=GroupKFold(2),
                                 params={"nights": night_ids, "groups": groups,
                                         "X_eeg": X_eeg})
    # the same folds by hand: what was routed is what the members got
    expected = []
    for train, test in GroupKFold(2).split(X, y, groups):
        est = clone(ensemble).fit(X[train], y[train], X_eeg=X_eeg[train],
                                  nights=night_ids[train], groups=groups[train])
        expected.append(est.score(X[test], y[test], nights=night_ids[test]))
    np.testing.assert_allclose(scores, expected)
    assert all(s > 0.5 for s in scores)


def test_joblib_round_trip(fitted, nights, tmp_path):
    X, _, _, night_ids, _ = nights
    joblib.dump(fitted, tmp_path / "ensemble.joblib")
    loaded = joblib.load(tmp_path / "ensemble.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X, nights=night_ids),
                                  fitted.predict_proba(X, nights=night_ids))


def test_per_epoch_students_work_too():
    from tests._toy import make_toy_paired

    X, _, y, groups = make_toy_paired(n_subjects=3, n_per_subject=40)
    base = ECGStudent(module="mlp", max_epochs=5, lr=1e-2, validation_fraction=None,
                      verbose=0)
    ensemble = SeedEnsemble(base, n_members=2, random_state=0).fit(X, y)
    assert ensemble.predict_proba(X).shape == (len(X), len(ensemble.classes_))
    assert not ensemble.reads_nights


@pytest.mark.parametrize("n_members", [0, -1, 1.5, True, "3"])
def test_bad_n_members_is_a_clear_error(nights, n_members):
    X, _, y, night_ids, _ = nights
    with pytest.raises(ValueError, match="n_members must be a positive int"):
        SeedEnsemble(ECGNightStudent(**_NIGHT), n_members=n_members).fit(X, y,
                                                                         nights=night_ids)


def test_an_estimator_without_random_state_is_refused(nights):
    from sklearn.naive_bayes import GaussianNB

    X, _, y, _, _ = nights
    with pytest.raises(ValueError, match="no random_state"):
        SeedEnsemble(GaussianNB()).fit(X, y)


def test_random_state_instance_draws_distinct_seeds():
    def seeds():
        return SeedEnsemble(ECGNightStudent(**_NIGHT), n_members=3,
                            random_state=np.random.RandomState(0))._member_seeds()

    assert len(set(seeds())) == 3 and seeds() == seeds()


@pytest.mark.parametrize("role", ["student", "teacher"])
def test_an_ensemble_inside_the_cascade_is_refused_with_a_pointer(nights, role):
    X, X_eeg, y, night_ids, groups = nights
    parts = {"student": ECGNightStudent(**_NIGHT), "teacher": EEGNightTeacher(**_NIGHT)}
    parts[role] = SeedEnsemble(parts[role], n_members=2)
    stager = DistilledECGStager(**parts, strategy="sd+cl")
    with pytest.raises(ValueError, match=r"SeedEnsemble\(DistilledECGStager"):
        stager.fit(X, y, X_eeg=X_eeg, nights=night_ids, groups=groups)


def test_sample_weight_of_score_can_be_routed(nights):
    X, _, y, night_ids, groups = nights
    weight = np.where(groups == groups[0], 3.0, 1.0)
    ensemble = SeedEnsemble(ECGNightStudent(**_NIGHT), n_members=2, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        ensemble.set_score_request(sample_weight=True)
        scores = cross_val_score(ensemble, X, y, cv=GroupKFold(2),
                                 params={"nights": night_ids, "groups": groups,
                                         "sample_weight": weight})
        ensemble.set_score_request(sample_weight=None)
    expected = []
    for train, test in GroupKFold(2).split(X, y, groups):
        est = clone(ensemble).fit(X[train], y[train], nights=night_ids[train],
                                  groups=groups[train])
        expected.append(est.score(X[test], y[test], sample_weight=weight[test],
                                  nights=night_ids[test]))
    np.testing.assert_allclose(scores, expected)


def test_seeded_ensemble_is_tagged_deterministic():
    student = ECGNightStudent(**_NIGHT)  # random_state None: each member gets one
    assert not SeedEnsemble(student, random_state=0).__sklearn_tags__().non_deterministic
    assert SeedEnsemble(student).__sklearn_tags__().non_deterministic


@pytest.mark.parametrize("random_state", [-1, 2**32 - 2])
def test_seeds_out_of_range_are_a_clear_error(random_state):
    with pytest.raises(ValueError, match="seeds must lie in"):
        SeedEnsemble(ECGNightStudent(**_NIGHT), n_members=3,
                     random_state=random_state)._member_seeds()
