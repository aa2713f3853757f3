"""HeartRateTransformer: known heart rates, artefact counting, fill, bad input."""

import logging

import numpy as np
import pytest

from _ecg_fixtures import synth_ecg, synth_ecg_rows
from sleepkd.signal import HeartRateTransformer
from sleepkd.signal._heart_rate import heart_rate_on_grid

FS = 128.0


def _ecg_rows(beat_times_per_row, fs=FS, seconds=30.0):
    return np.stack([synth_ecg(t, fs, seconds, rng=i) for i, t in enumerate(beat_times_per_row)])


def test_constant_60_bpm():
    X = _ecg_rows([np.arange(0.4, 30.0, 1.0)] * 2)
    hr = HeartRateTransformer(fs=FS).fit_transform(X)
    assert hr.shape == (2, 120)
    np.testing.assert_allclose(hr, 60.0, atol=1.0)


def test_step_change_is_tracked():
    beats = np.concatenate([np.arange(0.5, 15.0, 1.0), 14.5 + np.cumsum(np.full(23, 2 / 3))])
    X = _ecg_rows([beats[beats < 29.7]])
    hr = HeartRateTransformer(fs=FS).fit_transform(X)[0]
    grid = (np.arange(120) + 0.5) / 4.0
    np.testing.assert_allclose(hr[grid < 14.4], 60.0, atol=1.0)
    np.testing.assert_allclose(hr[grid > 15.3], 90.0, atol=1.5)
    assert np.all(np.diff(hr) >= -0.5)  # monotone rise across the step


def test_grid_interpolation_exact():
    # beats at 0, 1, 2.5 s: HR 60 at t=1, 40 at t=2.5, linear between, constant outside;
    # grid at bin centres 0.25, 0.75, ..., 3.75 s
    hr, n_rr, n_bad = heart_rate_on_grid([np.array([0.0, 1.0, 2.5])], 4.0, 2.0)
    np.testing.assert_allclose(hr[0], [60.0, 60.0, 170 / 3, 50.0, 130 / 3, 40.0, 40.0, 40.0])
    assert (n_rr, n_bad) == (2, 0)


def test_artefacts_are_discarded_and_counted(caplog):
    beats = np.arange(0.5, 29.5, 1.0)
    missed = np.delete(beats, [10, 11])  # two missed beats: one RR of 3 s (20 bpm)
    hr, n_rr, n_bad = heart_rate_on_grid([missed], 30.0, 4.0, min_hr=30.0, max_hr=200.0)
    assert (n_rr, n_bad) == (missed.size - 1, 1)
    extra = np.sort(np.concatenate([beats, [10.75]]))  # a false beat: 0.25 s RR, 240 bpm
    _, n_rr, n_bad = heart_rate_on_grid([extra], 30.0, 4.0, min_hr=30.0, max_hr=200.0)
    assert (n_rr, n_bad) == (extra.size - 1, 1)  # 10.75 -> 11.5 s is 80 bpm: kept
    X = _ecg_rows([missed])
    with caplog.at_level(logging.WARNING, logger="sleepkd"):
        hr = HeartRateTransformer(fs=FS).fit_transform(X)[0]
    assert any("discarded 1 of 26 RR intervals" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(hr, 60.0, atol=1.0)  # the gap is bridged at 60 bpm


def test_rows_without_beats_are_filled_and_reported(caplog):
    X, _, _ = synth_ecg_rows(4, FS)
    X[1] = 0.0
    X[2] = np.random.default_rng(0).normal(size=X.shape[1])
    est = HeartRateTransformer(fs=FS).fit(X[[0, 3]])
    with caplog.at_level(logging.WARNING, logger="sleepkd"):
        hr = est.transform(X)
    assert np.all(np.isfinite(hr))
    np.testing.assert_allclose(hr[1], est.fill_value_)
    np.testing.assert_allclose(hr[2], est.fill_value_)
    assert 55 < est.fill_value_ < 65
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "2 of 4 rows have fewer than 2 usable beats" in messages
    assert "1 of 4 rows failed the ECG quality gate" in messages
    hr_const = HeartRateTransformer(fs=FS, fill=70.0).fit_transform(X)
    np.testing.assert_allclose(hr_const[1], 70.0)


def test_median_fill_needs_beats_at_fit():
    with pytest.raises(ValueError, match="no row of the fit data has 2 usable beats"):
        HeartRateTransformer(fs=FS).fit(np.zeros((2, int(30 * FS))))


def test_context_rows_and_feature_names():
    X, _, _ = synth_ecg_rows(3, FS, row_seconds=90.0)
    est = HeartRateTransformer(fs=FS, fs_out=2.0)
    hr = est.fit_transform(X)
    assert hr.shape == (3, 180)
    names = est.get_feature_names_out()
    assert names[0] == "hr_bpm_t0.25" and len(names) == 180


def test_fit_transform_equals_fit_then_transform():
    X, _, _ = synth_ecg_rows(3, FS)
    est = HeartRateTransformer(fs=FS)
    np.testing.assert_array_equal(est.fit_transform(X), est.fit(X).transform(X))


@pytest.mark.parametrize(
    "X, match",
    [
        (np.full((2, 3840), np.nan), "NaN"),
        (np.zeros(3840), "2D array"),
        (np.zeros((2, 0)), "0 feature"),
        (np.zeros((2, 5000)), "fs and the row length disagree"),
    ],
)
def test_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        HeartRateTransformer(fs=FS, fill=60.0).fit(X)


def test_transform_checks_row_length():
    est = HeartRateTransformer(fs=FS, fill=60.0).fit(np.zeros((2, 3840)))
    with pytest.raises(ValueError, match="features"):
        est.transform(np.zeros((2, 7680)))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(fs=10.0), "too low"),
        (dict(fs_out=0.0), "fs_out"),
        (dict(min_hr=100.0, max_hr=50.0), "min_hr must be below max_hr"),
        (dict(fill="mean"), "fill"),
        (dict(fill=np.nan), "fill"),
        (dict(min_template_corr=2.0), "min_template_corr"),
        (dict(method="x"), "method"),
    ],
)
def test_invalid_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        HeartRateTransformer(**params).fit(np.zeros((2, 7680)))


@pytest.mark.parametrize("fill, allow_none, ok", [
    ("median", False, True), (72.0, False, True), (None, True, True), (None, False, False),
    ("mean", True, False), (np.inf, True, False), (True, True, False),
])
def test_check_fill_shared_by_hr_and_hrv(fill, allow_none, ok):
    from sleepkd.signal._beats import check_fill

    if ok:
        check_fill(fill, allow_none=allow_none)
    else:
        with pytest.raises(ValueError, match="fill must be"):
            check_fill(fill, allow_none=allow_none)
