"""R-peak detection: known beats of a synthetic ECG, edge cases, bad input."""

import numpy as np
import pytest

from _ecg_fixtures import make_beat_times, match_beats, synth_ecg, synth_ecg_rows
from sleepkd.signal import detect_rpeaks
from sleepkd.signal._beats import clean_ecg_rows, detect_beats_rows

FS_LIST = [100.0, 128.0, 200.0, 256.0, 500.0]


@pytest.mark.parametrize("fs", FS_LIST)
def test_detect_rpeaks_finds_known_beats(fs):
    times = make_beat_times(120.0, mean_hr=70.0, rr_sd=0.06, rng=1)
    ecg = synth_ecg(times, fs, 120.0, noise_sd=0.03, rng=2)
    peaks = detect_rpeaks(ecg, fs)
    assert peaks.dtype.kind == "i"
    sens, ppv = match_beats(peaks, np.rint(times * fs), tolerance=int(0.05 * fs))
    assert sens >= 0.99 and ppv >= 0.99


@pytest.mark.parametrize("fs", FS_LIST)
@pytest.mark.parametrize("mean_hr", [50.0, 90.0])
def test_row_detector_finds_known_beats_including_row_edges(fs, mean_hr):
    X, _, row_beats = synth_ecg_rows(12, fs, mean_hr=mean_hr, rng=3)
    beats = detect_beats_rows(X, fs)
    n = X.shape[1]
    detected = np.concatenate([p + i * n for i, p in enumerate(beats.peaks)])
    truth = np.concatenate([p + i * n for i, p in enumerate(row_beats)])
    sens, ppv = match_beats(detected, truth, tolerance=int(0.05 * fs))
    assert sens >= 0.99 and ppv >= 0.99
    assert not beats.rejected.any()


def test_beat_in_first_300_ms_is_found():
    # neurokit2 alone skips beats in the first 0.3 s; the backward head pass keeps them.
    fs = 256.0
    times = np.arange(0.1, 29.5, 0.9)
    peaks = detect_rpeaks(synth_ecg(times, fs, 30.0, noise_sd=0.0), fs)
    assert abs(peaks[0] - 0.1 * fs) <= 2
    assert peaks.size == times.size


def test_vectorised_cleaning_equals_neurokit():
    nk = pytest.importorskip("neurokit2")
    fs = 128.0
    ecg = synth_ecg(make_beat_times(30.0), fs, 30.0)
    np.testing.assert_allclose(
        clean_ecg_rows(ecg[None, :], fs)[0], nk.ecg_clean(ecg, sampling_rate=fs), atol=1e-10
    )


def test_flat_line_noise_and_short_signals_give_no_peaks():
    fs = 256.0
    rng = np.random.default_rng(0)
    assert detect_rpeaks(np.zeros(int(30 * fs)), fs).size == 0
    assert detect_rpeaks(np.full(int(30 * fs), 3.0), fs).size == 0
    for n in (1, 2, 5, 100, int(1.9 * fs)):
        out = detect_rpeaks(rng.normal(size=n), fs)
        assert out.size == 0 and out.dtype.kind == "i"
    # White and brown noise: neurokit2 finds "peaks", the quality gate rejects them.
    assert detect_rpeaks(rng.normal(size=int(30 * fs)), fs).size == 0
    brown = np.cumsum(rng.normal(size=int(30 * fs)))
    assert detect_rpeaks(brown, fs).size == 0
    # ... and lets them through when disabled, so the gate is what removed them.
    assert detect_rpeaks(rng.normal(size=int(30 * fs)), fs, min_template_corr=None).size > 0


def test_noisy_rows_are_rejected_and_flagged():
    fs = 128.0
    X, _, _ = synth_ecg_rows(4, fs)
    X[1] = np.random.default_rng(1).normal(size=X.shape[1])
    X[2] = 0.0
    beats = detect_beats_rows(X, fs)
    assert beats.rejected.tolist() == [False, True, False, False]
    assert [p.size > 20 for p in beats.peaks] == [True, False, False, True]


@pytest.mark.parametrize(
    "ecg, fs, match",
    [
        (np.array([0.0, np.nan, 1.0] * 1000), 256.0, "NaN"),
        (np.array([0.0, np.inf, 1.0] * 1000), 256.0, "infinity"),
        (np.zeros((2, 3000)), 256.0, "1 dimensions"),
        (np.zeros(0), 256.0, "empty"),
        (np.zeros(3000), 0.0, "fs"),
        (np.zeros(3000), np.nan, "fs"),
        (np.zeros(3000), 20.0, "too low"),
        (np.array(["a"] * 3000), 256.0, "numeric"),
    ],
)
def test_bad_input(ecg, fs, match):
    with pytest.raises(ValueError, match=match):
        detect_rpeaks(ecg, fs)


def test_unknown_method():
    with pytest.raises(ValueError, match="method"):
        detect_rpeaks(np.zeros(3000), 256.0, method="magic")


def test_detection_cache_is_keyed_on_content():
    fs = 128.0
    X, _, _ = synth_ecg_rows(3, fs)
    first = detect_beats_rows(X, fs)
    again = detect_beats_rows(X.copy(), fs)  # same content: served from the cache
    assert all(np.array_equal(a, b) for a, b in zip(first.peaks, again.peaks))
    again.peaks[0][:] = -1  # callers get copies
    assert detect_beats_rows(X, fs).peaks[0][0] >= 0
    X[1] = 0.0  # changed content: detected afresh
    assert detect_beats_rows(X, fs).peaks[1].size == 0
    assert detect_beats_rows(X, fs, min_template_corr=None).peaks[0].size == first.peaks[0].size
