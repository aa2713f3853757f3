"""R-peak detection: known beats of a synthetic ECG, edge cases, bad input.

Detection tests run for both detectors; the ``"sleepecg"`` ones are skipped when the
optional sleepecg package is not installed (it is in the ``test`` extra).
"""

import importlib.util
import logging
import sys

import numpy as np
import pytest
import scipy.signal

from _ecg_fixtures import make_beat_times, match_beats, synth_ecg, synth_ecg_rows
from sleepkd.signal import HeartRateTransformer, HRVFeatures, detect_rpeaks
from sleepkd.signal import _beats
from sleepkd.signal._beats import clean_ecg_rows, detect_beats_rows, sleepecg_find_rows

FS_LIST = [100.0, 128.0, 200.0, 256.0, 500.0]

HAS_SLEEPECG = importlib.util.find_spec("sleepecg") is not None
needs_sleepecg = pytest.mark.skipif(not HAS_SLEEPECG, reason="sleepecg not installed")
METHODS = ["neurokit", pytest.param("sleepecg", marks=needs_sleepecg)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fs", FS_LIST)
def test_detect_rpeaks_finds_known_beats(fs, method):
    times = make_beat_times(120.0, mean_hr=70.0, rr_sd=0.06, rng=1)
    ecg = synth_ecg(times, fs, 120.0, noise_sd=0.03, rng=2)
    peaks = detect_rpeaks(ecg, fs, method=method)
    assert peaks.dtype.kind == "i"
    sens, ppv = match_beats(peaks, np.rint(times * fs), tolerance=int(0.05 * fs))
    assert sens >= 0.99 and ppv >= 0.99


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fs", FS_LIST)
@pytest.mark.parametrize("mean_hr", [50.0, 90.0])
def test_row_detector_finds_known_beats_including_row_edges(fs, mean_hr, method):
    X, _, row_beats = synth_ecg_rows(12, fs, mean_hr=mean_hr, rng=3)
    beats = detect_beats_rows(X, fs, method=method)
    n = X.shape[1]
    detected = np.concatenate([p + i * n for i, p in enumerate(beats.peaks)])
    truth = np.concatenate([p + i * n for i, p in enumerate(row_beats)])
    sens, ppv = match_beats(detected, truth, tolerance=int(0.05 * fs))
    assert sens >= 0.99 and ppv >= 0.99
    assert not beats.rejected.any()


@pytest.mark.parametrize("method", METHODS)
def test_beat_in_first_300_ms_is_found(method):
    # neurokit2 alone skips beats in the first 0.3 s; the backward head pass keeps them.
    fs = 256.0
    times = np.arange(0.1, 29.5, 0.9)
    peaks = detect_rpeaks(synth_ecg(times, fs, 30.0, noise_sd=0.0), fs, method=method)
    assert abs(peaks[0] - 0.1 * fs) <= 2
    assert peaks.size == times.size


@needs_sleepecg
@pytest.mark.parametrize("fs", FS_LIST)
@pytest.mark.parametrize("first", [1.05, 1.15])
def test_sleepecg_first_beat_just_after_one_second(fs, first):
    # With no beat in its first second, sleepecg searches back with lowered thresholds
    # and can take the P wave (0.2 s before the R-peak) for the beat, then skip the
    # R-peak (sleepecg 0.6: the forward scan alone misses the first beat at all these
    # rates); the backward scan of the row head finds it.
    times = np.arange(first, 29.5, 1.2)
    ecg = synth_ecg(times, fs, 30.0, noise_sd=0.02, rng=1)
    truth, tol = np.rint(times * fs), int(0.05 * fs)
    assert match_beats(detect_rpeaks(ecg, fs, method="sleepecg"), truth, tol) == (1.0, 1.0)


@needs_sleepecg
def test_sleepecg_rows_equal_its_public_detector():
    # The vectorised band-pass + sleepecg's C routines give detect_heartbeats' peaks,
    # also for rows with a flat start, and the public per-row path is used without them.
    from sleepecg import detect_heartbeats

    fs = 200.0
    X, _, _ = synth_ecg_rows(6, fs, mean_hr=75.0, noise_sd=0.05, rng=4)
    X = clean_ecg_rows(X, fs)
    X[2, :500] = X[2, 500]  # flat first 2.5 s
    X[3] = np.random.default_rng(0).normal(size=X.shape[1])  # noise
    expected = [detect_heartbeats(row.copy(), fs) for row in X]
    skip = np.zeros(len(X), dtype=bool)
    skip[5] = True
    got = sleepecg_find_rows(X, fs, skip=skip)
    for i, (g, e) in enumerate(zip(got, expected)):
        np.testing.assert_array_equal(g, [] if skip[i] else e)
    X[4, :-int(1.5 * fs)] = X[4, 0]  # non-flat part shorter than the 2-s learning phase
    assert sleepecg_find_rows(X, fs)[4].size == 0
    X[4] = 0.0
    assert sleepecg_find_rows(X, fs)[4].size == 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_beats, "_sleepecg_c_routines", lambda: None)
        public = sleepecg_find_rows(X[:2], fs)
    for g, e in zip(public, expected[:2]):
        np.testing.assert_array_equal(g, e)


def test_sleepecg_missing_falls_back_to_neurokit_with_one_warning(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "sleepecg", None)  # import sleepecg -> ImportError
    monkeypatch.setattr(_beats, "_FALLBACK_LOGGED", False)
    fs = 128.0
    X, _, _ = synth_ecg_rows(3, fs, rng=5)
    with caplog.at_level(logging.WARNING, logger="sleepkd.signal._beats"):
        fallback = detect_beats_rows(X, fs, method="sleepecg")
        detect_rpeaks(X[0], fs, method="sleepecg")
        HeartRateTransformer(fs=fs, method="sleepecg").fit_transform(X)
        HRVFeatures(fs=fs, method="sleepecg").fit_transform(X)
    messages = [r.getMessage() for r in caplog.records if "method='sleepecg'" in r.getMessage()]
    assert len(messages) == 1
    assert 'pip install "sleepkd[sleepecg]"' in messages[0]
    _beats._CACHE.clear()
    reference = detect_beats_rows(X, fs, method="neurokit")
    assert all(np.array_equal(a, b) for a, b in zip(fallback.peaks, reference.peaks))


def test_vectorised_cleaning_equals_neurokit():
    nk = pytest.importorskip("neurokit2")
    fs = 128.0
    ecg = synth_ecg(make_beat_times(30.0), fs, 30.0)
    np.testing.assert_allclose(
        clean_ecg_rows(ecg[None, :], fs)[0], nk.ecg_clean(ecg, sampling_rate=fs), atol=1e-10
    )


@pytest.mark.parametrize("method", METHODS)
def test_flat_line_noise_and_short_signals_give_no_peaks(method):
    fs = 256.0
    rng = np.random.default_rng(0)
    assert detect_rpeaks(np.zeros(int(30 * fs)), fs, method=method).size == 0
    assert detect_rpeaks(np.full(int(30 * fs), 3.0), fs, method=method).size == 0
    for n in (1, 2, 5, 100, int(1.9 * fs)):
        out = detect_rpeaks(rng.normal(size=n), fs, method=method)
        assert out.size == 0 and out.dtype.kind == "i"
    # White and brown noise: both detectors find "peaks", the quality gate rejects them.
    assert detect_rpeaks(rng.normal(size=int(30 * fs)), fs, method=method).size == 0
    brown = np.cumsum(rng.normal(size=int(30 * fs)))
    assert detect_rpeaks(brown, fs, method=method).size == 0
    # ... and lets them through when disabled, so the gate is what removed them.
    noise = rng.normal(size=int(30 * fs))
    assert detect_rpeaks(noise, fs, method=method, min_template_corr=None).size > 0


@pytest.mark.parametrize("method", METHODS)
def test_noisy_rows_are_rejected_and_flagged(method):
    fs = 128.0
    X, _, _ = synth_ecg_rows(4, fs)
    X[1] = np.random.default_rng(1).normal(size=X.shape[1])
    X[2] = 0.0
    beats = detect_beats_rows(X, fs, method=method)
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
    for estimator in (HeartRateTransformer(method="auto"), HRVFeatures(method="auto")):
        with pytest.raises(ValueError, match="method"):
            estimator.fit(np.zeros((2, 7680)))


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


def test_min_template_corr_auto_is_per_detector():
    # Each gate scores another signal (cleaned rows, or the 5-30 Hz band the sleepecg
    # detector saw), so "auto" (the default) resolves per detector; numbers pass as is.
    assert _beats.DEFAULT_MIN_TEMPLATE_CORR == "auto"
    assert _beats.resolve_min_template_corr("auto", "neurokit") == 0.6
    assert _beats.resolve_min_template_corr("auto", "sleepecg") == 0.62
    assert _beats.resolve_min_template_corr(0.5, "sleepecg") == 0.5
    assert _beats.resolve_min_template_corr(None, "sleepecg") is None
    for bad in ("magic", True, 1.5):
        with pytest.raises(ValueError, match="min_template_corr"):
            _beats.check_min_template_corr(bad)


@needs_sleepecg
def test_sleepecg_gate_flags_the_rows_the_cleaned_gate_flagged():
    # The recalibrated sleepecg gate (band signal, 0.62) against the cleaned-signal gate
    # at 0.6 that it replaces: ECG fixtures pass, white, brown and AR(1) noise fail.
    fs = 256.0
    rng = np.random.default_rng(3)
    n = int(30 * fs)
    white = rng.normal(size=(4, n))
    ar = scipy.signal.lfilter([1.0], [1.0, -0.9], rng.normal(size=(4, n)), axis=1)
    noise = np.vstack([white, np.cumsum(rng.normal(size=(4, n)), axis=1), ar])
    for rows, expected in ((synth_ecg_rows(8, fs, noise_sd=0.1, rng=2)[0], False), (noise, True)):
        cleaned = clean_ecg_rows(rows, fs)
        found = detect_beats_rows(rows, fs, method="sleepecg", min_template_corr=None).peaks
        scores = np.array([_beats.template_correlation(c, p) for c, p in zip(cleaned, found)])
        assert np.all((scores < 0.6) == expected)  # what the old gate said
        beats = detect_beats_rows(rows, fs, method="sleepecg")
        assert beats.rejected.tolist() == [expected] * len(rows)


def test_detection_cache_compares_bytes_and_copes_with_large_inputs(monkeypatch):
    fs = 128.0
    X, _, _ = synth_ecg_rows(3, fs)
    first = detect_beats_rows(X, fs)
    fortran = np.asfortranarray(X)  # same values, other memory layout: a hit
    assert not fortran.flags.c_contiguous
    monkeypatch.setattr(_beats, "_detect_beats_rows", lambda *a: pytest.fail("no hit"))
    assert all(np.array_equal(a, b) for a, b in zip(first.peaks, detect_beats_rows(fortran, fs).peaks))
    monkeypatch.undo()
    X[0] = 0.0  # the cache kept its own copy: the caller's change is seen
    assert detect_beats_rows(X, fs).peaks[0].size == 0
    zeros = np.zeros((2, int(30 * fs)))
    detect_beats_rows(zeros, fs)
    negative = -zeros  # equal as numbers, other bits: recomputed, never a false hit
    monkeypatch.setattr(_beats, "_detect_beats_rows", lambda *a: pytest.fail("false hit"))
    detect_beats_rows(zeros.copy(), fs)  # true hit
    with pytest.raises(pytest.fail.Exception):
        detect_beats_rows(negative, fs)
    monkeypatch.undo()
    monkeypatch.setattr(_beats, "CACHE_COPY_MAX_BYTES", 0)  # keyed on a SHA-256
    _beats._CACHE.clear()
    first = detect_beats_rows(X, fs)
    assert "digest" in _beats._CACHE["entry"] and "rows" not in _beats._CACHE["entry"]
    monkeypatch.setattr(_beats, "_detect_beats_rows", lambda *a: pytest.fail("no hit"))
    assert all(np.array_equal(a, b) for a, b in zip(first.peaks, detect_beats_rows(X.copy(), fs).peaks))


def _template_correlation_reference(cleaned, peaks):
    """The gate's score written plainly (np.median, boolean masks, np.nanmean)."""
    if peaks.size < 2:
        return np.nan
    half = int(np.median(np.diff(peaks)) // 2)
    if half < 1:
        return np.nan
    inside = peaks[(peaks >= half) & (peaks + half < cleaned.size)]
    if inside.size < 2:
        return np.nan
    beats = np.stack([cleaned[p - half:p + half] for p in inside])
    beats = beats - beats.mean(axis=1, keepdims=True)
    template = beats.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = beats @ template / (np.linalg.norm(beats, axis=1) * np.linalg.norm(template))
    return float(np.nanmean(corr)) if np.any(np.isfinite(corr)) else np.nan


def test_template_correlation_matches_its_plain_formula():
    fs = 256.0
    rng = np.random.default_rng(7)
    ecg, _, _ = synth_ecg_rows(6, fs, noise_sd=0.1, rng=1)
    rows = np.vstack([clean_ecg_rows(ecg, fs), rng.normal(size=(3, ecg.shape[1]))])
    found = detect_beats_rows(ecg, fs, min_template_corr=None).peaks
    cases = [(row, p) for row, p in zip(rows, found)]
    cases += [(rows[-1], np.sort(rng.choice(rows.shape[1], 25, replace=False))) for _ in range(3)]
    cases += [  # edge cases: 1 beat, beats at the very edges, a flat stretch, half < 1
        (rows[0], found[0][:1]), (rows[0], np.array([0, 3, rows.shape[1] - 1])),
        (np.zeros(500), np.array([100, 200, 300])), (rows[0], np.array([10, 11, 12])),
    ]
    for row, peaks in cases:
        expected = _template_correlation_reference(row, peaks)
        got = _beats.template_correlation(row, peaks)
        if np.isnan(expected):
            assert np.isnan(got)
        else:
            assert got == pytest.approx(expected, abs=1e-12)
    assert any(not np.isnan(_template_correlation_reference(r, p)) for r, p in cases)


def test_rr_intervals_of_all_rows_at_once_equal_row_by_row():
    rng = np.random.default_rng(11)
    for _ in range(200):
        rows = [np.sort(rng.uniform(0, 30, rng.integers(0, 7))) for _ in range(rng.integers(0, 6))]
        rr, ends, n_rr, n_bad = _beats.rr_intervals(rows, 30.0, 200.0)
        assert len(rr) == len(ends) == len(rows)
        expected_bad = 0
        for times, row_rr, row_ends in zip(rows, rr, ends):
            diffs = np.diff(times)
            bad = (diffs < 0.3) | (diffs > 2.0)
            expected_bad += int(bad.sum())
            np.testing.assert_array_equal(row_rr, np.where(bad, np.nan, diffs))
            np.testing.assert_array_equal(row_ends, times[1:])
        assert n_rr == sum(max(t.size - 1, 0) for t in rows) and n_bad == expected_bad
