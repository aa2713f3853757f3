"""The safe .sleepkd model file and the night-level model bundle."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from sleepkd import DistilledECGStager, ECGNightStudent, EEGNightTeacher
from sleepkd.evaluation._night_bundle import NightStagingModel
from sleepkd.io._model_file import load_model_file, save_model_file
from tests._crafted import write_crafted_model
from tests._night_toy import TinyNightNet


def _beats(rng, n_epochs, base=60.0):
    """Beat times of a night whose heart rate steps between two levels every 10 epochs."""
    times, t = [], 0.0
    while t < n_epochs * 30.0:
        level = base + 15.0 * ((int(t // 300) % 2))
        t += 60.0 / (level + rng.normal(0, 1.0))
        times.append(t)
    return np.array(times)


@pytest.fixture(scope="module")
def fitted():
    from sleepkd.datasets import standardize_per_record
    from sleepkd.signal import instantaneous_heart_rate

    rng = np.random.default_rng(0)
    X, y, nights = [], [], []
    for night in range(4):
        beats = _beats(rng, 60, base=55.0 + 5 * night)
        hr, _, _ = instantaneous_heart_rate(beats, fs=2.0, n_epochs=60)
        X.append(standardize_per_record(hr, np.zeros(60), scale="iqr"))
        y.append(np.where((np.arange(60) // 10) % 2, "W", "N2"))
        nights += [night] * 60
    X, y, nights = np.concatenate(X), np.concatenate(y), np.array(nights)
    student = ECGNightStudent(module="heart_rate_tcn", module_params={"dropout": 0.0},
                              window=None, max_epochs=20, lr=5e-3, verbose=0, random_state=0)
    student.fit(X, y, nights=nights)
    model = NightStagingModel(student, fs_hr=2.0, scheme="3class",
                              provenance="generated beats (test)", info={"note": "test"})
    return model, rng


def test_safe_file_round_trip_gives_identical_predictions(fitted, tmp_path):
    model, rng = fitted
    beats = _beats(rng, 50)
    path = save_model_file(model, tmp_path / "model.sleepkd")
    loaded = load_model_file(path)
    assert isinstance(loaded, NightStagingModel)
    assert loaded.scheme == "3class" and loaded.info == {"note": "test"}
    before, after = model.predict_beats(beats), loaded.predict_beats(beats)
    assert len(before) == 51  # up to the last beat, just past 50 epochs
    np.testing.assert_array_equal(before.filter(like="p_").to_numpy(),
                                  after.filter(like="p_").to_numpy())
    assert (before["stage"] == after["stage"]).all()


def test_night_bundle_stages_steps_of_heart_rate(fitted):
    model, rng = fitted
    table = model.predict_beats(_beats(rng, 60), n_epochs=60)
    truth = np.where((np.arange(60) // 10) % 2, "W", "N2")
    assert (table["stage"].to_numpy() == truth).mean() > 0.8
    assert set(table["hr_quality"]) == {"ok"}


def test_a_pickle_payload_in_the_weights_is_refused(fitted, tmp_path):
    model, _ = fitted
    path = save_model_file(model, tmp_path / "model.sleepkd")
    marker = tmp_path / "pwned"
    crafted = write_crafted_model(path, tmp_path / "crafted.sleepkd", marker)
    with pytest.raises(ValueError, match="refused"):
        load_model_file(crafted)
    assert not marker.exists()


def test_bad_files_name_the_problem(fitted, tmp_path):
    model, _ = fitted
    with pytest.raises(FileNotFoundError):
        load_model_file(tmp_path / "missing.sleepkd")
    junk = tmp_path / "junk.sleepkd"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.sleepkd is not a sleepkd model file"):
        load_model_file(junk)
    path = save_model_file(model, tmp_path / "model.sleepkd")
    edited = tmp_path / "edited.sleepkd"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(edited, "w") as dst:
        described = json.loads(src.read("model.json"))
        described["estimator"]["class"] = "os.system"
        dst.writestr("model.json", json.dumps(described))
        dst.writestr("weights.pt", src.read("weights.pt"))
    with pytest.raises(ValueError, match="unknown estimator"):
        load_model_file(edited)


def test_other_version_warns(fitted, tmp_path, caplog):
    model, _ = fitted
    path = save_model_file(model, tmp_path / "model.sleepkd")
    edited = tmp_path / "old.sleepkd"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(edited, "w") as dst:
        described = json.loads(src.read("model.json"))
        described["sleepkd_version"] = "0.0.1"
        dst.writestr("model.json", json.dumps(described))
        dst.writestr("weights.pt", src.read("weights.pt"))
    with caplog.at_level("WARNING", logger="sleepkd.io"):
        load_model_file(edited)
    assert "written by sleepkd 0.0.1" in caplog.text


def test_a_class_network_or_stager_student_is_handled(tmp_path):
    from tests._night_toy import make_toy_nights

    X, X_eeg, y, nights, groups = make_toy_nights(n_subjects=3, seed=3)
    custom = ECGNightStudent(module=TinyNightNet, max_epochs=1, verbose=0).fit(
        X, y, nights=nights)
    with pytest.raises(ValueError, match="registered name"):
        save_model_file(NightStagingModel(custom), tmp_path / "x.sleepkd")
    stager = DistilledECGStager(
        teacher=EEGNightTeacher(module=TinyNightNet, max_epochs=1, verbose=0),
        student=ECGNightStudent(module="heart_rate_tcn", max_epochs=1, verbose=0),
        strategy="sd+cl", random_state=0).fit(X, y, X_eeg=X_eeg, groups=groups,
                                              nights=nights)
    loaded = load_model_file(save_model_file(NightStagingModel(stager), tmp_path / "s.sleepkd"))
    one = nights == nights[0]
    np.testing.assert_array_equal(loaded.estimator.predict_proba(X[one]),
                                  stager.predict_proba(X[one], nights=nights[one]))


def test_seed_ensemble_round_trip_keeps_every_member(tmp_path):
    from sleepkd import SeedEnsemble
    from sleepkd.datasets import standardize_per_record
    from sleepkd.signal import instantaneous_heart_rate

    rng = np.random.default_rng(1)
    X, y, nights = [], [], []
    for night in range(3):
        hr, _, _ = instantaneous_heart_rate(_beats(rng, 40), fs=2.0, n_epochs=40)
        X.append(standardize_per_record(hr, np.zeros(40), scale="iqr"))
        y.append(np.where((np.arange(40) // 10) % 2, "W", "N2"))
        nights += [night] * 40
    X, y, nights = np.concatenate(X), np.concatenate(y), np.array(nights)
    student = ECGNightStudent(module="heart_rate_tcn", window=None, max_epochs=2,
                              validation_fraction=None, verbose=0)
    ensemble = SeedEnsemble(student, n_members=3, random_state=4).fit(X, y, nights=nights)
    model = NightStagingModel(ensemble, fs_hr=2.0, scheme="3class", provenance="test")
    loaded = load_model_file(save_model_file(model, tmp_path / "ensemble.sleepkd"))
    assert isinstance(loaded.estimator, SeedEnsemble)
    assert loaded.estimator.seeds_ == [4, 5, 6] and len(loaded.estimator.estimators_) == 3
    beats = _beats(rng, 30)
    np.testing.assert_array_equal(model.predict_beats(beats).filter(like="p_").to_numpy(),
                                  loaded.predict_beats(beats).filter(like="p_").to_numpy())
    # each member's weights came back, not the first member's three times
    members = [m.predict_proba(X[:40]) for m in loaded.estimator.estimators_]
    assert not np.allclose(members[0], members[1])
    for before, after in zip(ensemble.estimators_, loaded.estimator.estimators_):
        np.testing.assert_array_equal(before.predict_proba(X[:40]), after.predict_proba(X[:40]))
    with zipfile.ZipFile(tmp_path / "ensemble.sleepkd") as archive:
        described = json.loads(archive.read("model.json"))
    assert described["estimator"]["class"] == "SeedEnsemble"
    assert [m["params"]["random_state"] for m in described["estimator"]["members"]] == [4, 5, 6]
