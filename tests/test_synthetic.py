"""Generators of paired EEG + ECG nights: synthetic and semi-real."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from sleepkd.datasets import Recording, make_semireal_psg, make_synthetic_psg
from sleepkd.datasets._ecg_synth import (
    clean_ecg,
    ipfm_beat_times,
    simulate_beat_times,
    synthesize_ecg,
)
from sleepkd.datasets._eeg_synth import synthesize_eeg
from sleepkd.datasets._hypnogram import make_hypnogram, stage_fractions, stage_weights
from sleepkd.datasets._semireal import SEMIREAL_SOURCE
from sleepkd.datasets._synthetic import SYNTHETIC_SOURCE

STAGES = {"W", "N1", "N2", "N3", "R"}


@pytest.fixture(scope="module")
def night():
    """Two synthetic 1-h nights with their recordings."""
    return make_synthetic_psg(n_subjects=2, hours=1.0, random_state=0,
                              return_recordings=True)


def band_power(X: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    f, p = welch(X, fs, nperseg=int(2 * fs), axis=-1)
    return p[..., (f >= lo) & (f < hi)].sum(-1)


def local_argmax_offsets(signal, samples, half):
    """Offset of the maximum within +-half samples of each sample (0 = on it)."""
    idx = samples[:, None] + np.arange(-half, half + 1)
    return np.argmax(signal[idx], axis=1) - half


# --------------------------------------------------------------------- public API
def test_shapes_dtypes_and_provenance(night):
    n = 2 * 120
    assert night.X_ecg.shape == (n, 6000) and night.X_ecg.dtype == np.float32
    assert night.X_eeg.shape == (n, 1, 3000) and night.X_eeg.dtype == np.float32
    assert night.y.shape == night.groups.shape == (n,)
    assert set(night.y) == STAGES
    assert sorted(set(night.groups)) == ["synth00", "synth01"]
    assert (night.fs_ecg, night.fs_eeg) == (200.0, 100.0)
    assert "SYNTHETIC" in night.DESCR and "make_synthetic_psg" in night.DESCR
    for rec in night.recordings:
        assert isinstance(rec, Recording)
        assert rec.source == SYNTHETIC_SOURCE
        assert rec.ecg.shape == (3600 * 200,) and rec.eeg.shape == (1, 3600 * 100)
        assert rec.eeg_channels == ["C4-A1"]
        assert np.all(np.diff(rec.beat_times) > 0.25)
        assert np.array_equal(rec.epoch_onsets, np.arange(120) * 30.0)
    # rows are the recordings' epochs, in order
    first = night.recordings[0]
    np.testing.assert_array_equal(night.X_ecg[3], first.ecg[3 * 6000:4 * 6000])


def test_same_seed_identical_different_seed_differs():
    a = make_synthetic_psg(1, 0.5, random_state=7, return_recordings=True)
    b = make_synthetic_psg(1, 0.5, random_state=7, return_recordings=True)
    c = make_synthetic_psg(1, 0.5, random_state=8, return_recordings=True)
    np.testing.assert_array_equal(a.X_ecg, b.X_ecg)
    np.testing.assert_array_equal(a.X_eeg, b.X_eeg)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.recordings[0].beat_times, b.recordings[0].beat_times)
    assert not np.array_equal(a.recordings[0].beat_times[:50], c.recordings[0].beat_times[:50])
    assert not np.allclose(a.X_eeg, c.X_eeg)


def test_eeg_does_not_depend_on_the_ecg_rate():
    a = make_synthetic_psg(1, 0.25, fs_ecg=100.0, random_state=3)
    b = make_synthetic_psg(1, 0.25, fs_ecg=250.0, random_state=3)
    np.testing.assert_array_equal(a.X_eeg, b.X_eeg)
    assert a.X_ecg.shape[1] == 3000 and b.X_ecg.shape[1] == 7500


def test_scheme_and_context_are_passed_to_make_epochs():
    data = make_synthetic_psg(1, 0.25, scheme="4class", context=1, random_state=0)
    assert set(data.y) <= {"W", "L", "D", "R"}
    assert data.X_ecg.shape == (30, 3 * 6000)
    assert data.X_eeg.shape == (30, 1, 3 * 3000)


@pytest.mark.parametrize("kwargs", [
    {"n_subjects": 0}, {"n_subjects": 1.5}, {"n_subjects": True},
    {"hours": 0}, {"hours": -1.0}, {"hours": float("nan")}, {"hours": 1e-4},
    {"fs_ecg": 20.0}, {"fs_ecg": -200.0}, {"fs_ecg": 1e6}, {"fs_eeg": 30.0},
    {"fs_eeg": float("inf")}, {"scheme": "6class"}, {"random_state": "seed"},
    {"return_recordings": "yes"}, {"context": -1},
])
def test_bad_parameters_raise(kwargs):
    params = {"n_subjects": 1, "hours": 0.1, **kwargs}
    with pytest.raises(ValueError):
        make_synthetic_psg(**params)


def test_error_messages_name_the_parameter():
    with pytest.raises(ValueError, match="n_subjects"):
        make_synthetic_psg(n_subjects=0)
    with pytest.raises(ValueError, match="fs_ecg"):
        make_synthetic_psg(1, 0.1, fs_ecg=10.0)


# --------------------------------------------------------------------- hypnogram
@pytest.mark.parametrize("seed", range(8))
def test_short_nights_contain_all_five_stages(seed):
    hyp = make_hypnogram(1.0, random_state=seed)
    assert len(hyp.stages) == 120
    assert set(hyp.stages.tolist()) == STAGES
    assert hyp.stages[0] == "W"
    assert hyp.params["time_scale"] == pytest.approx(0.25)


def test_full_night_architecture():
    n3_first, n3_last, rem_first, rem_last, fractions = [], [], [], [], []
    for seed in range(6):
        stages = make_hypnogram(8.0, random_state=seed).stages
        third = len(stages) // 3
        n3_first.append(np.mean(stages[:third] == "N3"))
        n3_last.append(np.mean(stages[-third:] == "N3"))
        rem_first.append(np.mean(stages[:third] == "R"))
        rem_last.append(np.mean(stages[-third:] == "R"))
        fractions.append(stage_fractions(stages))
        n_bouts = np.count_nonzero(stages[1:] != stages[:-1]) + 1
        assert 30 < n_bouts < 300  # fragmented, but not epoch-by-epoch noise
    assert np.mean(n3_first) > 3 * np.mean(n3_last)  # N3 early
    assert np.mean(rem_last) > 1.5 * np.mean(rem_first)  # REM late
    mean = {s: np.mean([f[s] for f in fractions]) for s in STAGES}
    assert 0.40 < mean["N2"] < 0.65 and 0.05 < mean["N3"] < 0.25
    assert 0.12 < mean["R"] < 0.30 and 0.02 < mean["N1"] < 0.12 and mean["W"] < 0.25


def test_stage_weights_blend_across_boundaries():
    stages = np.array(["W", "W", "N3", "N3"])
    onsets = np.arange(4) * 30.0
    w = stage_weights(stages, onsets, np.array([5.0, 60.0, 115.0]), sigma=10.0)
    np.testing.assert_allclose(w.sum(0), 1.0)
    assert w[0, 0] > 0.99 and w[3, 2] > 0.99  # far from the boundary: pure stage
    assert w[0, 1] == pytest.approx(0.5, abs=0.03)  # at the boundary: half / half
    assert w[3, 1] == pytest.approx(0.5, abs=0.03)


# --------------------------------------------------------------------------- ECG
def test_ipfm_known_answer():
    np.testing.assert_allclose(ipfm_beat_times(np.full(101, 60.0), fs=10.0), np.arange(1, 11))
    beats = ipfm_beat_times(np.full(301, 90.0), fs=10.0)
    np.testing.assert_allclose(np.diff(beats), 60 / 90)
    with pytest.raises(ValueError, match="positive"):
        ipfm_beat_times(np.array([60.0, 0.0, 60.0]), fs=1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heart_rate_is_stage_dependent(seed):
    hyp = make_hypnogram(8.0, random_state=seed)
    beats = simulate_beat_times(hyp.stages, arousal_onsets=hyp.arousal_onsets,
                                random_state=seed)
    hr = 60.0 / np.diff(beats.times)
    stage = hyp.stages[np.clip((beats.times[1:] // 30).astype(int), 0, len(hyp.stages) - 1)]
    assert hr[stage == "W"].mean() > hr[stage == "N3"].mean() + 3.0
    assert 40 < np.median(hr) < 100
    # respiratory sinus arrhythmia: the RR series has a peak at the breathing rate
    assert beats.params["rsa_bpm"] > 0 and set(beats.types) <= {"N", "V", "S"}


@pytest.mark.parametrize("fs", [50.0, 128.0, 200.0, 256.0, 500.0, 1000.0])
def test_clean_r_peaks_sit_exactly_on_the_beats(fs):
    beats = simulate_beat_times(np.array(["W"] * 4 + ["N2"] * 4), random_state=1)
    times = beats.times[(beats.times > 0.5) & (beats.times < 239.0)]
    ecg = clean_ecg(times, fs, int(240 * fs), beat_types=beats.types[:len(times)])
    samples = np.round(times * fs).astype(int)
    offsets = local_argmax_offsets(ecg, samples, int(0.15 * fs))
    assert np.all(offsets == 0)


def test_noisy_ecg_r_peaks_on_the_beats_outside_artefacts():
    hyp = make_hypnogram(1.0, random_state=4)
    beats = simulate_beat_times(hyp.stages, random_state=4)
    fs = 256.0
    ecg = synthesize_ecg(beats.times, fs, 3600.0, beat_types=beats.types,
                         respiration=(beats.grid_times, beats.respiration), random_state=5)
    assert ecg.signal.dtype == np.float32 and ecg.signal.shape == (int(3600 * fs),)
    half = int(0.1 * fs)
    samples = np.round(beats.times * fs).astype(int)
    samples = samples[(samples > half) & (samples < len(ecg.signal) - half)]
    near = samples[:, None] + np.arange(-half, half + 1)
    clean = ~ecg.artefact_mask[near].any(axis=1)
    offsets = local_argmax_offsets(ecg.signal, samples[clean], half)
    assert clean.mean() > 0.9
    assert np.mean(offsets == 0) > 0.99


def test_electrode_off_segments_are_flat_and_masked():
    params = {"r_amplitude_mv": 1.0, "p_scale": 1.0, "t_scale": 1.0, "s_scale": 1.0,
              "resp_modulation": 0.1, "wander_mv": 0.1, "emg_mv": 0.01,
              "powerline_mv": 0.01, "powerline_hz": 50.0, "motion_per_hour": 0.0,
              "electrode_off_per_night": 20.0}
    ecg = synthesize_ecg(np.arange(1.0, 1790.0, 0.9), 200.0, 1800.0, params=params,
                         random_state=0)
    off = [a for a in ecg.artefacts if a[2] == "electrode_off"]
    assert off
    onset, duration, _ = off[0]
    segment = ecg.signal[int(onset * 200) + 1:int((onset + duration) * 200) - 1]
    assert np.ptp(segment) == 0.0
    assert ecg.artefact_mask[int(onset * 200) + 1]


# --------------------------------------------------------------------------- EEG
def test_eeg_spectral_signatures(night):
    fs, X, y = night.fs_eeg, night.X_eeg[:, 0], night.y
    delta = band_power(X, fs, 0.5, 2.0)
    alpha = band_power(X, fs, 8.0, 12.0)
    sigma = band_power(X, fs, 12.0, 16.0)

    def med(p, stage):
        return np.median(p[y == stage])

    assert med(delta, "N3") > 4 * med(delta, "W")
    assert med(alpha, "W") > 2 * med(alpha, "N3")
    assert med(sigma, "N2") > 1.5 * med(sigma, "R")


def test_eeg_stage_information_is_imperfect():
    # 2-h night: within-stage variability and overlap between N2 and N3, and N2
    # epochs without a spindle
    hyp = make_hypnogram(2.0, random_state=11)
    eeg = synthesize_eeg(hyp.stages, 100.0, len(hyp.stages) * 30.0, random_state=11)
    X = eeg.signal.reshape(len(hyp.stages), 3000)
    delta = band_power(X, 100.0, 0.5, 2.0)
    n2, n3 = delta[hyp.stages == "N2"], delta[hyp.stages == "N3"]
    assert np.std(np.log(n3)) > 0.2
    assert np.mean(n3 < n2.max()) > 0.02  # some N3 epochs look like N2 ...
    assert np.mean(n2 > n3.min()) > 0.01  # ... and some N2 epochs like N3
    spindle_epochs = np.unique((eeg.events["spindle"] // 30).astype(int))
    n2_epochs = np.flatnonzero(hyp.stages == "N2")
    assert 0 < np.isin(n2_epochs, spindle_epochs).mean() < 1


# --------------------------------------------------------------------- semi-real
@pytest.fixture(scope="module")
def slpdb_recording(slpdb_dir):
    pytest.importorskip("wfdb", reason="load_slpdb needs the optional wfdb package")
    from sleepkd.datasets import load_slpdb

    return load_slpdb(slpdb_dir, records=["slp01a"])[0]


def test_semireal_r_peaks_on_the_real_beats(slpdb_recording):
    real = slpdb_recording
    data = make_semireal_psg([real], random_state=0, return_recordings=True)
    rec = data.recordings[0]
    assert rec.source == SEMIREAL_SOURCE and "SEMI-REAL" in data.DESCR
    assert (rec.name, rec.subject) == (real.name, real.subject)
    np.testing.assert_array_equal(rec.beat_times, real.beat_times)
    np.testing.assert_array_equal(rec.stages, real.stages)
    assert rec.fs_ecg == 200.0 and rec.eeg.shape[0] == 1

    fs, half = rec.fs_ecg, 20
    samples = np.round(real.beat_times * fs).astype(int)
    samples = samples[(samples > half) & (samples < len(rec.ecg) - half)]
    mask = np.zeros(len(rec.ecg), bool)
    for onset, duration, _ in rec.info["ecg_artefacts"]:
        mask[int(onset * fs):int((onset + duration) * fs) + 1] = True
    near = samples[:, None] + np.arange(-half, half + 1)
    clean = ~mask[near].any(axis=1)
    offsets = local_argmax_offsets(rec.ecg, samples[clean], half)
    assert np.mean(offsets == 0) > 0.99
    # without noise every R-peak is exactly on its beat sample
    ecg = synthesize_ecg(real.beat_times, fs, len(rec.ecg) / fs, noise=False,
                         artefacts=False, random_state=0)
    assert np.all(local_argmax_offsets(ecg.signal, samples, half) == 0)


def test_semireal_unscored_epochs_are_dropped_and_counted(slpdb_recording):
    data = make_semireal_psg([slpdb_recording], fs_ecg=100.0, random_state=1)
    n_unscored = int(np.sum(slpdb_recording.stages == "?"))
    assert data.dropped["unscored"] == n_unscored
    assert len(data.y) == slpdb_recording.n_epochs - n_unscored
    assert data.X_ecg.shape == (len(data.y), 3000)


def test_semireal_is_deterministic(slpdb_recording):
    a = make_semireal_psg([slpdb_recording], random_state=3)
    b = make_semireal_psg([slpdb_recording], random_state=3)
    np.testing.assert_array_equal(a.X_ecg, b.X_ecg)
    np.testing.assert_array_equal(a.X_eeg, b.X_eeg)


def test_semireal_bad_input_raises():
    no_beats = Recording("r", "s", ecg=None, fs_ecg=None, eeg=None, fs_eeg=None,
                         eeg_channels=[], beat_times=None, stages=np.array(["W"]),
                         epoch_onsets=np.array([0.0]))
    with pytest.raises(ValueError, match="beat times"):
        make_semireal_psg([no_beats])
    with pytest.raises(ValueError, match="empty"):
        make_semireal_psg([])
    with pytest.raises(ValueError, match="fs_eeg"):
        make_semireal_psg([no_beats], fs_eeg=10.0)
