"""DistilledECGStager with night-level teachers and students."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import GroupKFold, cross_val_score

from sleepkd import DistilledECGStager, ECGNightStudent, EEGNightTeacher, EEGTeacher
from sleepkd.metrics import staging_scorer
from tests._night_toy import TinyNightNet, make_toy_nights

SMALL_SEQ = {"widths": (4, 8, 8, 8, 8), "bottleneck_width": 8, "embedding_dim": 8,
             "hidden": 8}


@pytest.fixture(scope="module")
def toy():
    return make_toy_nights(n_subjects=6, n_times=96, unscored_every=11, seed=2)


def _night(cls, module=TinyNightNet, **kw):
    params = dict(module=module, window=32, max_epochs=10, lr=3e-3, batch_size=4, verbose=0,
                  random_state=0)
    params.update(kw)
    return cls(**params)


def _held_out_kappa(stager, X, y, nights, test):
    pred = stager.predict(X[test], nights=nights[test])
    scored = y[test] != "?"
    return cohen_kappa_score(y[test][scored], pred[scored])


@pytest.mark.parametrize("strategy", ["baseline", "sd+cl", "fd+cl", "fd+sd+cl"])
def test_night_cascade_learns(toy, strategy):
    X, X_eeg, y, nights, groups = toy
    test = np.isin(groups, ["s0"])
    stager = DistilledECGStager(teacher=_night(EEGNightTeacher),
                                student=_night(ECGNightStudent, max_epochs=20),
                                strategy=strategy, pretrain_epochs=3, random_state=0)
    stager.fit(X[~test], y[~test], X_eeg=X_eeg[~test], groups=groups[~test],
               nights=nights[~test])
    assert stager.classes_.tolist() == ["N2", "R", "W"]
    assert _held_out_kappa(stager, X, y, nights, test) > 0.4
    if strategy != "baseline":
        assert stager.teacher_valid_kappa_ > 0.5
    if strategy.startswith("fd"):
        assert len(stager.history_["feature_distillation"]) == 3


def test_attention_transfer_between_epoch_sequence_networks(toy):
    X, X_eeg, y, nights, groups = toy
    stager = DistilledECGStager(
        teacher=_night(EEGNightTeacher, "epoch_sequence", module_params=SMALL_SEQ,
                       max_epochs=2),
        student=_night(ECGNightStudent, "epoch_sequence", module_params=SMALL_SEQ,
                       max_epochs=2),
        strategy="at+sd+cl", pretrain_epochs=2, random_state=0)
    stager.fit(X, y, X_eeg=X_eeg, groups=groups, nights=nights)
    assert [t for t, _ in stager.at_layers_] == ["enc1", "enc2", "enc3", "enc4", "enc5",
                                                 "bottleneck"]
    assert len(stager.history_["attention_transfer"]) == 2
    assert np.isfinite(stager.history_["attention_transfer"][-1]["train_loss"])


def test_per_epoch_teacher_teaches_a_night_student(toy):
    X, X_eeg, y, nights, groups = toy
    scored = y != "?"
    teacher = EEGTeacher(module="compact", module_params={"widths": (4, 4, 4, 4, 4),
                                                          "bottleneck_width": 4},
                         max_epochs=2, verbose=0, random_state=0)
    teacher.fit(X_eeg[scored], y[scored], groups=groups[scored])
    stager = DistilledECGStager(
        teacher=FrozenEstimator(teacher),
        student=_night(ECGNightStudent, "epoch_sequence", module_params=SMALL_SEQ,
                       max_epochs=2),
        strategy="at+sd+cl", pretrain_epochs=1, random_state=0)
    stager.fit(X, y, X_eeg=X_eeg, groups=groups, nights=nights)
    assert stager.predict_proba(X, nights=nights).shape == (len(X), 3)


def test_night_teacher_needs_night_student_for_feature_transfer(toy):
    X, X_eeg, y, nights, groups = toy
    from sleepkd import ECGStudent

    scored = y != "?"
    stager = DistilledECGStager(teacher=_night(EEGNightTeacher),
                                student=ECGStudent(module="mlp", verbose=0),
                                strategy="fd+cl")
    with pytest.raises(ValueError, match="needs a night-level student"):
        stager.fit(X[scored], y[scored], X_eeg=X_eeg[scored], groups=groups[scored])


def test_feature_distillation_needs_embeddings(toy):
    X, X_eeg, y, nights, groups = toy
    from sleepkd import ECGStudent

    scored = y != "?"
    stager = DistilledECGStager(teacher=EEGTeacher(module="mlp", verbose=0),
                                student=ECGStudent(module="mlp", verbose=0),
                                strategy="fd+cl")
    with pytest.raises(ValueError, match="embedding"):
        stager.fit(X[scored], y[scored], X_eeg=X_eeg[scored][:, 0], groups=groups[scored])


def test_cross_val_score_routes_eeg_groups_and_nights(toy):
    X, X_eeg, y, nights, groups = toy
    stager = DistilledECGStager(teacher=_night(EEGNightTeacher, max_epochs=5),
                                student=_night(ECGNightStudent, max_epochs=10),
                                strategy="sd+cl", random_state=0)
    sklearn.set_config(enable_metadata_routing=True)
    try:
        scores = cross_val_score(stager, X, y, cv=GroupKFold(2),
                                 scoring=staging_scorer("kappa"),
                                 params={"X_eeg": X_eeg, "groups": groups, "nights": nights})
    finally:
        sklearn.set_config(enable_metadata_routing=False)
    assert scores.shape == (2,) and np.all(scores > 0.2), scores


def test_run_experiment_with_night_models_scores_scored_epochs_only(toy):
    from sleepkd.evaluation import run_experiment

    X, X_eeg, y, nights, groups = toy
    data = {"X_ecg": X, "X_eeg": X_eeg, "y": y, "groups": groups, "records": nights}
    result = run_experiment(
        data, teacher=_night(EEGNightTeacher, max_epochs=5),
        student=_night(ECGNightStudent, max_epochs=8), schemes=("3class",),
        strategies=("baseline", "sd+cl", "fd+sd+cl"), n_splits=3, max_folds=2,
        stager_params={"pretrain_epochs": 2}, verbose=0)
    assert set(result.scores["model"]) == {"EEG teacher", "ECG baseline", "SD+CL", "FD+SD+CL"}
    assert "?" not in set(result.predictions["y_true"])
    tested = result.predictions[result.predictions["model"] == "ECG baseline"]
    test_subjects = {s for k in (0, 1) for s in result.folds[k]}
    assert len(tested) == int(np.sum((y != "?") & np.isin(groups, list(test_subjects))))
    teacher = result.scores[result.scores["model"] == "EEG teacher"]
    assert (teacher["kappa"] > 0.6).all()


def test_decoupled_kd_and_a_teacher_ensemble(toy):
    X, X_eeg, y, nights, groups = toy
    test = np.isin(groups, ["s0"])
    stager = DistilledECGStager(teacher=_night(EEGNightTeacher, max_epochs=4),
                                student=_night(ECGNightStudent, max_epochs=15),
                                strategy="sd+cl", soft_loss="dkd", n_teachers=2,
                                random_state=0)
    stager.fit(X[~test], y[~test], X_eeg=X_eeg[~test], groups=groups[~test],
               nights=nights[~test])
    assert len(stager.teachers_) == 2
    one, two = (t.predict_proba(X_eeg[~test], nights=nights[~test]) for t in stager.teachers_)
    assert not np.allclose(one, two)  # two seeds, two teachers
    assert _held_out_kappa(stager, X, y, nights, test) > 0.3
    from sleepkd.distillation._losses import DecoupledDistillationLoss

    assert isinstance(stager.student_.net_.criterion_, DecoupledDistillationLoss)
    with pytest.raises(ValueError, match="n_teachers"):
        DistilledECGStager(teacher=FrozenEstimator(stager.teachers_[0]), n_teachers=2).fit(
            X, y, X_eeg=X_eeg, nights=nights)
    with pytest.raises(ValueError, match="soft_loss"):
        DistilledECGStager(soft_loss="js").fit(X, y, X_eeg=X_eeg, nights=nights)


def test_experiment_keeps_per_subject_scores_and_paired_evidence(toy, tmp_path):
    from sklearn.metrics import f1_score

    from sleepkd.evaluation import run_experiment

    X, X_eeg, y, nights, groups = toy
    data = {"X_ecg": X, "X_eeg": X_eeg, "y": y, "groups": groups, "records": nights}
    result = run_experiment(
        data, teacher=_night(EEGNightTeacher, max_epochs=3),
        student=_night(ECGNightStudent, max_epochs=3), schemes=("3class",),
        strategies=("baseline", "sd+cl"), n_splits=3, seeds=(0, 1), verbose=0)
    subjects = result.subject_scores()
    assert len(subjects) == 2 * 6 * 3  # seeds x subjects x models (each tested once)
    row = subjects[(subjects["model"] == "SD+CL") & (subjects["seed"] == 1)].iloc[0]
    pred = result.predictions
    part = pred[(pred["model"] == "SD+CL") & (pred["seed"] == 1)
                & (pred["subject"] == row["subject"])]
    assert row["f1_weighted"] == pytest.approx(
        f1_score(part["y_true"], part["y_pred"], average="weighted"))
    evidence = result.evidence()
    assert set(evidence["metric"]) == {"f1_weighted", "kappa"}
    assert (evidence["n_pairs"] == 2 * 3).all()  # seeds x folds
    assert (evidence["ci_low"] <= evidence["mean_gain"]).all()
    assert (evidence["mean_gain"] <= evidence["ci_high"]).all()
    paths = result.save(tmp_path)
    assert paths["subject_scores"].is_file() and paths["evidence"].is_file()
    assert "Distillation evidence" in paths["results"].read_text()


def test_feature_distillation_is_reproducible(toy):
    X, X_eeg, y, nights, groups = toy

    def fit():
        return DistilledECGStager(teacher=_night(EEGNightTeacher, max_epochs=2),
                                  student=_night(ECGNightStudent, max_epochs=2),
                                  strategy="fd+sd+cl", pretrain_epochs=2, random_state=3,
                                  ).fit(X, y, X_eeg=X_eeg, groups=groups, nights=nights)

    np.testing.assert_array_equal(fit().predict_proba(X, nights=nights),
                                  fit().predict_proba(X, nights=nights))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unscored_nights_teach_the_student_through_the_teacher(seed):
    # two scored subjects, four recorded but never scored: only distill_unscored lets
    # the student learn from the four (through the teacher's soft labels); at every seed
    X, X_eeg, y, nights, groups = make_toy_nights(n_subjects=8, n_times=96,
                                                  unscored_every=11, seed=2)
    test, scored = np.isin(groups, ["s0", "s1"]), np.isin(groups, ["s2", "s3"])
    y_fit = np.where(scored, y, "?")
    kappas = {}
    for distill_unscored in (False, True):
        stager = DistilledECGStager(teacher=_night(EEGNightTeacher, max_epochs=30),
                                    student=_night(ECGNightStudent, max_epochs=20),
                                    strategy="sd+cl", distill_unscored=distill_unscored,
                                    random_state=seed)
        stager.fit(X[~test], y_fit[~test], X_eeg=X_eeg[~test], groups=groups[~test],
                   nights=nights[~test])
        # a subject without one scored epoch cannot select the checkpoint
        assert 0 < len(stager.student_.valid_groups_)
        assert set(stager.student_.valid_groups_) <= {"s2", "s3"}
        assert set(stager.teacher_.train_groups_) <= {"s2", "s3"}  # scored nights only
        assert stager.student_.net_.criterion_.soft_on_unscored is distill_unscored
        kappas[distill_unscored] = _held_out_kappa(stager, X, y, nights, test)
    # measured at seeds 0-3: 0.77-0.86 with the unscored nights, 0.33-0.57 without
    assert kappas[True] > 0.7
    assert kappas[True] > kappas[False] + 0.15


def test_soft_labels_reach_unscored_epochs_but_never_padding():
    from sleepkd.distillation._losses import DistillationLoss
    from sleepkd.distillation._night_nets import NightStagingNet

    def loss(teacher_logits, soft_on_unscored):
        net = NightStagingNet(TinyNightNet, module__n_chans=1, module__n_outputs=3,
                              module__n_times=4, criterion=DistillationLoss,
                              criterion__soft_on_unscored=soft_on_unscored).initialize()
        y_pred = torch.linspace(-1, 1, 2 * 3 * 3).reshape(2, 3, 3)
        y_true = torch.tensor([[0, -1, 2], [1, -1, -1]])  # unscored at [0,1], [1,1]
        mask = torch.tensor([[True, True, True], [True, True, False]])  # padding: [1,2]
        return float(net.get_loss(y_pred, y_true, X={"mask": mask,
                                                     "teacher_logits": teacher_logits}))

    base = torch.zeros(2, 3, 3)
    at_unscored, at_padding = base.clone(), base.clone()
    at_unscored[0, 1] = torch.tensor([5.0, 0.0, 0.0])
    at_padding[1, 2] = torch.tensor([5.0, 0.0, 0.0])
    assert loss(at_unscored, True) != pytest.approx(loss(base, True), abs=1e-4)
    assert loss(at_padding, True) == pytest.approx(loss(base, True), abs=1e-7)
    assert loss(at_unscored, False) == pytest.approx(loss(base, False), abs=1e-7)
    # the exact value: the loss of the 5 real epochs (KL over 5, CE over the 3 scored)
    from sleepkd.distillation._losses import distillation_loss

    teacher = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(0))
    y_pred = torch.linspace(-1, 1, 2 * 3 * 3).reshape(2, 3, 3)
    real = torch.tensor([[True, True, True], [True, True, False]])
    y_real = torch.tensor([0, -1, 2, 1, -1])
    expected = distillation_loss(y_pred[real], teacher[real], y_real, allow_unlabelled=True)
    assert loss(teacher, True) == pytest.approx(float(expected), abs=1e-6)


def test_frozen_teacher_never_takes_every_scored_subject_into_validation():
    # the teacher trained on s0, s1; of s2..s7 only s2 and s3 are scored: both are unseen
    # by the teacher, but validating on both would leave training without a label
    X, X_eeg, y, nights, groups = make_toy_nights(n_subjects=8, n_times=96,
                                                  unscored_every=11, seed=2)
    seen = np.isin(groups, ["s0", "s1"])
    teacher = _night(EEGNightTeacher, max_epochs=2).fit(
        X_eeg[seen], y[seen], nights=nights[seen], groups=groups[seen])
    y_fit = np.where(np.isin(groups, ["s2", "s3"]), y, "?")
    for distill_unscored in (False, True):
        stager = DistilledECGStager(teacher=FrozenEstimator(teacher),
                                    student=_night(ECGNightStudent, max_epochs=2),
                                    strategy="sd+cl", distill_unscored=distill_unscored,
                                    validation_fraction=0.5, random_state=0)
        stager.fit(X[~seen], y_fit[~seen], X_eeg=X_eeg[~seen], groups=groups[~seen],
                   nights=nights[~seen])
        valid = set(stager.student_.valid_groups_)
        assert len(valid) == 1 and valid < {"s2", "s3"}
        assert {"s2", "s3"} - valid <= set(stager.student_.train_groups_)
        assert stager.history_["student"][-1]["train_loss"] > 0


def test_frozen_teacher_says_when_its_unseen_subjects_are_unscored(caplog):
    # the teacher saw s0, s1 (scored); s2, s3 are unseen but unscored: they cannot
    # validate, so validation falls back to subjects the teacher was trained on
    X, X_eeg, y, nights, groups = make_toy_nights(n_subjects=4, n_times=96,
                                                  unscored_every=11, seed=2)
    seen = np.isin(groups, ["s0", "s1"])
    teacher = _night(EEGNightTeacher, max_epochs=2, validation_fraction=None).fit(
        X_eeg[seen], y[seen], nights=nights[seen], groups=groups[seen])
    assert set(teacher.train_groups_) == {"s0", "s1"}
    y_fit = np.where(seen, y, "?")
    stager = DistilledECGStager(teacher=FrozenEstimator(teacher),
                                student=_night(ECGNightStudent, max_epochs=2),
                                strategy="sd+cl", distill_unscored=True,
                                validation_fraction=0.5, random_state=0)
    with caplog.at_level("WARNING", logger="sleepkd"):
        stager.fit(X, y_fit, X_eeg=X_eeg, groups=groups, nights=nights)
    assert "never saw have no scored epoch" in caplog.text
    assert set(stager.student_.valid_groups_) < {"s0", "s1"}


def test_distill_unscored_errors(toy):
    X, X_eeg, y, nights, groups = toy
    cases = [(dict(strategy="fd+cl"), "no 'sd' stage"),
             (dict(strategy="sd+cl", soft_loss="dkd"), "soft_loss='kl'"),
             (dict(strategy="sd+cl", distill_unscored=1), "True or False")]
    for kwargs, match in cases:
        stager = DistilledECGStager(teacher=_night(EEGNightTeacher),
                                    student=_night(ECGNightStudent),
                                    **{"distill_unscored": True, **kwargs})
        with pytest.raises(ValueError, match=match):
            stager.fit(X, y, X_eeg=X_eeg, groups=groups, nights=nights)
    scored = y != "?"
    with pytest.raises(ValueError, match="night-level student"):
        DistilledECGStager(teacher=EEGTeacher(max_epochs=1, verbose=0), strategy="sd+cl",
                           distill_unscored=True).fit(X[scored], y[scored],
                                                      X_eeg=X_eeg[scored])
