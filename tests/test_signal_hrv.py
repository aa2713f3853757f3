"""HRV features: agreement with neurokit2, exact formulas, spectra, NaN policy, fill."""

import logging

import numpy as np
import pytest

from _ecg_fixtures import make_beat_times, synth_ecg, synth_ecg_rows
from sleepkd.signal import HRVFeatures
from sleepkd.signal._hrv import FEATURE_NAMES, hrv_from_beats, hrv_from_rr

FS = 128.0


@pytest.mark.parametrize("seed, mean_hr, rr_sd", [(1, 60.0, 0.05), (2, 75.0, 0.08), (3, 55.0, 0.03)])
def test_time_domain_agrees_with_neurokit(seed, mean_hr, rr_sd):
    nk = pytest.importorskip("neurokit2")
    peaks = np.rint(make_beat_times(300.0, mean_hr, rr_sd, rng=seed) * 1000).astype(int)
    ours = dict(zip(FEATURE_NAMES, hrv_from_beats([peaks / 1000.0], 300.0)[0]))
    ref = nk.hrv_time(peaks, sampling_rate=1000).iloc[0]
    for name, ref_name in [("mean_rr_ms", "HRV_MeanNN"), ("sdnn_ms", "HRV_SDNN"),
                           ("rmssd_ms", "HRV_RMSSD"), ("pnn50_pct", "HRV_pNN50")]:
        assert ours[name] == pytest.approx(ref[ref_name], rel=0.01), name


def test_hrv_from_ecg_rows_agrees_with_neurokit_on_true_beats():
    nk = pytest.importorskip("neurokit2")
    X, times, row_beats = synth_ecg_rows(2, FS, row_seconds=300.0, mean_hr=65.0, rr_sd=0.06)
    feats = HRVFeatures(fs=FS).fit_transform(X)
    for row, true_peaks in zip(feats, row_beats):
        ref = nk.hrv_time(true_peaks, sampling_rate=FS).iloc[0]
        assert row[0] == pytest.approx(ref["HRV_MeanNN"], rel=0.01)
        assert row[2] == pytest.approx(ref["HRV_SDNN"], rel=0.01)
        assert row[3] == pytest.approx(ref["HRV_RMSSD"], rel=0.01)


def test_exact_formulas():
    rr = np.array([800.0, 850.0, 800.0, 900.0, 820.0])
    f = hrv_from_rr(rr)
    diffs = np.diff(rr)
    assert f["mean_rr_ms"] == pytest.approx(rr.mean())
    assert f["mean_hr_bpm"] == pytest.approx(np.mean(60000.0 / rr))
    assert f["sdnn_ms"] == pytest.approx(rr.std(ddof=1))
    assert f["rmssd_ms"] == pytest.approx(np.sqrt(np.mean(diffs**2)))
    assert f["pnn50_pct"] == pytest.approx(100 * 2 / 5)  # |diffs| > 50: 100 and 80
    assert np.isnan(f["lf_power_ms2"]) and np.isnan(f["hf_power_ms2"])  # 4 s is too short


def test_rows_are_independent_and_padding_is_ignored():
    a = make_beat_times(60.0, 60.0, rng=1)
    b = make_beat_times(60.0, 80.0, rng=2)
    both = hrv_from_beats([a, b], 60.0)
    np.testing.assert_allclose(both[0], hrv_from_beats([a], 60.0)[0])
    np.testing.assert_allclose(both[1], hrv_from_beats([b], 60.0)[0])


def _modulated_beats(freq, amp_s, mean_rr, duration):
    t = [0.0]
    while t[-1] < duration:
        t.append(t[-1] + mean_rr + amp_s * np.sin(2 * np.pi * freq * t[-1]))
    return np.array(t[:-1])


@pytest.mark.parametrize("freq, mean_rr, band", [(0.1, 1.0, 5), (0.25, 0.6, 6)])
def test_band_power_of_sinusoidal_rr_modulation(freq, mean_rr, band):
    # RR modulated by A sin(2 pi f t): band power A^2 / 2, less the attenuation of linear
    # interpolation between beats (about 4 % at f * RR = 0.1, 13 % at 0.15).
    amp_ms = 40.0
    f = hrv_from_beats([_modulated_beats(freq, amp_ms / 1000, mean_rr, 300.0)], 300.0)[0]
    expected = amp_ms**2 / 2
    assert f[band] == pytest.approx(expected, rel=0.2)
    other = 6 if band == 5 else 5
    assert f[other] < 0.05 * f[band]


def test_artefact_interval_is_excluded_from_successive_differences():
    times = np.arange(0.0, 60.0, 1.0)
    with_gap = np.delete(times, [20, 21])  # one 3-s interval: 20 bpm, discarded
    f = hrv_from_beats([with_gap], 60.0)[0]
    assert f[0] == pytest.approx(1000.0) and f[3] == pytest.approx(0.0)
    assert f[4] == pytest.approx(0.0)


def test_nan_policy_single_epoch():
    beats = [make_beat_times(30.0, 60.0, rng=0), np.array([1.0, 2.0]), np.array([5.0]), np.array([])]
    f = hrv_from_beats(beats, 30.0)
    assert np.all(np.isfinite(f[0, :5])) and np.isfinite(f[0, 6])  # HF resolvable in 30 s
    assert np.isnan(f[0, 5]) and np.isnan(f[0, 7])  # LF needs 50 s
    assert f[1, 0] == pytest.approx(1000.0) and np.isnan(f[1, 2:]).all()  # one interval
    assert np.isnan(f[2:]).all()  # fewer than 2 beats


def test_transformer_fill_options(caplog):
    X, _, _ = synth_ecg_rows(3, FS)
    X[1] = 0.0
    with caplog.at_level(logging.WARNING, logger="sleepkd"):
        raw = HRVFeatures(fs=FS).fit_transform(X)
    assert np.isnan(raw[1]).all() and np.isnan(raw[:, 5]).all()
    assert any("1 of 3 rows have fewer than 2 usable beats" in r.getMessage() for r in caplog.records)
    est = HRVFeatures(fs=FS, fill="median").fit(X)
    out = est.transform(X)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[1, :5], np.nanmedian(raw[:, :5], axis=0))
    assert est.fill_values_[5] == 0.0  # LF undefined on every 30-s fit row
    np.testing.assert_allclose(HRVFeatures(fs=FS, fill=-1.0).fit_transform(X)[1], -1.0)


def test_feature_names_and_context_rows():
    X, _, _ = synth_ecg_rows(2, FS, row_seconds=150.0)  # five epochs of context
    est = HRVFeatures(fs=FS)
    out = est.fit_transform(X)
    assert list(est.get_feature_names_out()) == list(FEATURE_NAMES)
    assert np.all(np.isfinite(out))  # LF is resolvable in 150 s
    assert 55 < out[0, 1] < 65


@pytest.mark.parametrize(
    "X, match",
    [
        (np.full((2, 3840), np.inf), "infinity"),
        (np.zeros((2, 2, 3840)), "dim 3"),
        (np.zeros((0, 3840)), "0 sample"),
        (np.zeros((2, 3000)), "fs and the row length disagree"),
    ],
)
def test_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        HRVFeatures(fs=FS).fit(X)


def test_hrv_from_rr_validates():
    with pytest.raises(ValueError, match="positive finite"):
        hrv_from_rr([800.0, -1.0])
    with pytest.raises(ValueError, match="1-D"):
        hrv_from_rr([[800.0, 900.0]])
    with pytest.raises(ValueError, match="fill"):
        HRVFeatures(fill="mode").fit(np.zeros((2, 7680)))
