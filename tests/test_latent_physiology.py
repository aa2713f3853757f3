"""Shared latent physiology of the generators (``physiology="shared"``)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from sleepkd.datasets import make_semireal_psg, make_synthetic_psg
from sleepkd.datasets._hypnogram import make_hypnogram
from sleepkd.datasets._latent import (
    detect_hr_surges,
    event_envelope,
    make_latent_night,
)

#: Documented band of the scorer's agreement with the latent stage (8-h nights).
SCORER_KAPPA_BAND = (0.75, 0.85)


@pytest.fixture(scope="module")
def shared_night():
    return make_synthetic_psg(2, 1.0, physiology="shared", random_state=0,
                              return_recordings=True)


def test_shared_generator_is_deterministic_under_random_state():
    a = make_synthetic_psg(1, 0.5, physiology="shared", random_state=4,
                           return_recordings=True)
    b = make_synthetic_psg(1, 0.5, physiology="shared", random_state=4,
                           return_recordings=True)
    c = make_synthetic_psg(1, 0.5, physiology="shared", random_state=5)
    np.testing.assert_array_equal(a.X_ecg, b.X_ecg)
    np.testing.assert_array_equal(a.X_eeg, b.X_eeg)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.latent_stages, b.latent_stages)
    la, lb = a.recordings[0].info["latent"], b.recordings[0].info["latent"]
    for key in ("swa", "arousal", "phasic", "arousal_onsets", "phasic_onsets"):
        np.testing.assert_array_equal(la[key], lb[key])
    assert not np.allclose(a.X_eeg, c.X_eeg)


@pytest.mark.parametrize("seed", range(6))
def test_scorer_agreement_sits_in_the_documented_band(seed):
    hyp = make_hypnogram(8.0, random_state=seed)
    latent = make_latent_night(hyp.stages, arousals_per_hour=hyp.params["arousals_per_hour"],
                               random_state=seed)
    kappa = cohen_kappa_score(latent.true_stages, latent.labels)
    assert SCORER_KAPPA_BAND[0] <= kappa <= SCORER_KAPPA_BAND[1]
    # disagreement concentrates on transitions of the latent stage
    s = latent.true_stages
    trans = np.zeros(len(s), bool)
    trans[1:] |= s[1:] != s[:-1]
    trans[:-1] |= s[1:] != s[:-1]
    wrong = latent.labels != s
    assert wrong[trans].mean() > 2 * wrong[~trans].mean()
    assert set(latent.scorer_reason[wrong]) <= {"transition", "depth", "arousal", "base"}
    assert np.all(latent.scorer_reason[~wrong] == "")


def test_shared_night_exposes_latent_state(shared_night):
    data = shared_night
    kappa = cohen_kappa_score(data.latent_stages, data.y)
    assert 0.6 < kappa < 0.95  # 1-h nights: compressed cycles, more transitions
    assert "shared" in data.DESCR and "scorer" in data.DESCR
    for rec in data.recordings:
        latent = rec.info["latent"]
        assert rec.info["physiology"] == "shared"
        np.testing.assert_array_equal(rec.info["latent_stages"], latent["true_stages"])
        n = len(latent["times"])
        assert latent["swa"].shape == latent["arousal"].shape == latent["phasic"].shape == (n,)
        assert len(latent["arousal_onsets"]) > 0
        # arousals 3-15 s, the heart-rate surge follows within 0.5-3 s
        assert np.all((latent["arousal_durations"] >= 3) & (latent["arousal_durations"] <= 15))
        assert np.all((latent["surge_latency"] >= 0.5) & (latent["surge_latency"] <= 3))
        # phasic bursts only in latent REM
        onsets = latent["phasic_onsets"]
        stage = latent["true_stages"][(onsets // 30).astype(int)]
        assert np.all(stage == "R")


def test_labels_mode_has_latent_equal_to_labels():
    data = make_synthetic_psg(1, 0.25, physiology="labels", random_state=0,
                              return_recordings=True)
    np.testing.assert_array_equal(data.latent_stages, data.y)
    assert data.recordings[0].info["latent"] is None


def test_arousal_surges_follow_the_eeg_arousals():
    # heart rate rises after each latent arousal, more for more intense ones
    data = make_synthetic_psg(1, 2.0, physiology="shared", random_state=2,
                              return_recordings=True)
    rec = data.recordings[0]
    latent = rec.info["latent"]
    beats = rec.beat_times
    hr_t, hr = beats[1:], 60.0 / np.diff(beats)
    rises = []
    for onset in latent["arousal_onsets"]:
        before = hr[(hr_t > onset - 15) & (hr_t < onset)]
        after = hr[(hr_t > onset + 2) & (hr_t < onset + 10)]
        if len(before) > 3 and len(after) > 3:
            rises.append(after.mean() - before.mean())
    rises = np.array(rises)
    assert len(rises) > 5 and np.median(rises) > 2.0
    # the EEG shows the same arousals: 8-30 Hz power rises inside them
    from scipy.signal import welch

    fs = rec.fs_eeg
    eeg = rec.eeg[0]
    inside, outside = [], []
    for onset, dur in zip(latent["arousal_onsets"], latent["arousal_durations"]):
        a = int(onset * fs)
        if a - int(5 * fs) < 0 or a + int(3 * fs) > len(eeg):
            continue
        f, p_in = welch(eeg[a:a + int(3 * fs)], fs, nperseg=int(fs))
        _, p_out = welch(eeg[a - int(5 * fs):a - int(2 * fs)], fs, nperseg=int(fs))
        band = (f >= 8) & (f < 30)
        inside.append(p_in[band].sum())
        outside.append(p_out[band].sum())
    assert np.median(np.array(inside) / np.array(outside)) > 1.5


def test_event_envelope_and_surge_detector_known_answers():
    t = np.arange(0.0, 20.0, 0.5)
    env = event_envelope(t, np.array([5.0]), np.array([4.0]), np.array([2.0]), ramp=0.0)
    np.testing.assert_array_equal(env[(t >= 5) & (t < 9)], 2.0)  # [onset, onset + dur)
    assert np.all(env[(t < 5) | (t >= 9)] == 0.0)
    # a regular 60-bpm heart with one 15-bpm surge at 300 s
    hr = np.full(6000, 60.0)
    grid = np.arange(6000) * 0.1
    hr += 15.0 * np.clip((grid - 300) / 3, 0, 1) * np.exp(-np.clip(grid - 303, 0, None) / 8)
    phase = np.cumsum(hr / 60 * 0.1)
    beats = np.interp(np.arange(1, int(phase[-1])), phase, grid)
    onsets, peaks, durations = detect_hr_surges(beats)
    assert len(onsets) == 1
    assert 296.0 < onsets[0] < 303.0 and 10.0 < peaks[0] < 17.0 and durations[0] > 2.0


@pytest.mark.parametrize("kwargs", [{"physiology": "latent"}, {"physiology": None},
                                    {"physiology": 1}])
def test_bad_physiology_raises(kwargs):
    with pytest.raises(ValueError, match="physiology"):
        make_synthetic_psg(1, 0.1, **kwargs)


# --------------------------------------------------------------------- semi-real
@pytest.fixture(scope="module")
def slpdb_record(slpdb_dir):
    pytest.importorskip("wfdb", reason="load_slpdb needs the optional wfdb package")
    from sleepkd.datasets import load_slpdb

    return load_slpdb(slpdb_dir, records=["slp04"])[0]


def test_semireal_shared_keeps_real_beats_and_labels(slpdb_record):
    a = make_semireal_psg([slpdb_record], physiology="shared", random_state=1,
                          return_recordings=True)
    b = make_semireal_psg([slpdb_record], physiology="shared", random_state=1)
    np.testing.assert_array_equal(a.X_eeg, b.X_eeg)
    rec = a.recordings[0]
    np.testing.assert_array_equal(rec.beat_times, slpdb_record.beat_times)
    np.testing.assert_array_equal(rec.stages, slpdb_record.stages)
    np.testing.assert_array_equal(a.latent_stages, a.y)
    latent = rec.info["latent"]
    assert latent["params"]["n_hr_surges"] > 10
    # EEG arousals start shortly before a real heart-rate surge
    surges, _, _ = detect_hr_surges(slpdb_record.beat_times)
    first = latent["arousal_onsets"][np.isfinite(latent["surge_latency"])]
    gaps = np.min(np.abs(surges[None, :] - first[:, None]), axis=1)
    assert np.all(gaps <= 3.0 + 1e-9)
    with pytest.raises(ValueError, match="physiology"):
        make_semireal_psg([slpdb_record], physiology="latent")
