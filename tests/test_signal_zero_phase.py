"""sosfiltfilt_rows: scipy's sosfiltfilt numbers, in blocks, on threads; and n_jobs."""

import tracemalloc

import numpy as np
import pytest
import scipy.signal

from _ecg_fixtures import synth_ecg_rows
from sleepkd.signal import BandpassFilter, HeartRateTransformer, HRVFeatures
from sleepkd.signal import _beats, _zero_phase
from sleepkd.signal._beats import _sleepecg_c_routines, sleepecg_sos
from sleepkd.signal._zero_phase import rows_per_block, sosfiltfilt_rows

BANDPASS = scipy.signal.butter(4, (0.5, 40.0), btype="bandpass", fs=256.0, output="sos")
DETECTOR = sleepecg_sos(256.0, power_line=True)  # band-pass and FIR sections


@pytest.mark.parametrize("sos", [BANDPASS, DETECTOR], ids=["bandpass", "detector"])
@pytest.mark.parametrize("n_rows", [1, 8, 19])
@pytest.mark.parametrize("path", ["in-place", "public"])
def test_equals_scipy_sosfiltfilt_bit_for_bit(sos, n_rows, path, monkeypatch):
    X = np.random.default_rng(n_rows).normal(size=(n_rows, 900))
    # Blocks of 8 rows: several blocks, a partial last one, and threads with work.
    monkeypatch.setattr(_zero_phase, "BLOCK_BYTES", 8 * 8 * (900 + 2 * 27))
    assert rows_per_block(n_rows, 900 + 2 * 27) == min(8, n_rows)
    expected = scipy.signal.sosfiltfilt(sos, X, axis=-1)
    for n_jobs in (None, 1, 2, -1):
        out = sosfiltfilt_rows(sos, X, n_jobs=n_jobs, _private_loop=path == "in-place")
        assert out.flags.c_contiguous and out.dtype == np.float64
        np.testing.assert_array_equal(out, expected)


def test_private_loop_is_found_on_this_scipy():
    # The fast path is the one the suite exercises: a scipy without it must be noticed.
    assert _zero_phase._private_sosfilt() is not None


@pytest.mark.parametrize("n_times", [2, 3, 30, 200])
def test_every_padlen_and_layout(n_times):
    rng = np.random.default_rng(n_times)
    X = rng.normal(size=(5, n_times))
    for padlen in sorted({0, 1, n_times - 1, min(27, n_times - 1)}):
        expected = scipy.signal.sosfiltfilt(BANDPASS, X, padlen=padlen)
        np.testing.assert_array_equal(sosfiltfilt_rows(BANDPASS, X, padlen=padlen), expected)
        # A reversed, non-contiguous view and float32 rows read the same values.
        np.testing.assert_array_equal(
            sosfiltfilt_rows(BANDPASS, X[:, ::-1], padlen=padlen),
            scipy.signal.sosfiltfilt(BANDPASS, X[:, ::-1], padlen=padlen),
        )
        X32 = X.astype(np.float32)
        np.testing.assert_array_equal(
            sosfiltfilt_rows(BANDPASS, X32, padlen=padlen),
            scipy.signal.sosfiltfilt(BANDPASS, X32.astype(np.float64), padlen=padlen),
        )


def test_one_long_row_needs_no_more_memory_than_scipy():
    # A whole recording as one row (detect_rpeaks): buffers of one row, not a block's.
    x = np.random.default_rng(0).normal(size=(1, 200_000))
    peaks = []
    for func in (lambda: scipy.signal.sosfiltfilt(BANDPASS, x), lambda: sosfiltfilt_rows(BANDPASS, x)):
        tracemalloc.start()
        func()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] <= peaks[0]  # scipy: about 5 copies of the row; here 3


def test_read_only_coefficients_and_bad_inputs():
    sos = BANDPASS.copy()
    sos.flags.writeable = False  # e.g. from a joblib memmap
    x = np.random.default_rng(1).normal(size=(3, 300))
    np.testing.assert_array_equal(sosfiltfilt_rows(sos, x), scipy.signal.sosfiltfilt(BANDPASS, x))
    with pytest.raises(ValueError, match="real"):
        sosfiltfilt_rows(BANDPASS, x + 1j)
    with pytest.raises(TypeError):
        sosfiltfilt_rows(BANDPASS, x, padlen=3.5)


def test_bad_arguments():
    X = np.zeros((2, 10))
    with pytest.raises(ValueError, match="padlen=10 must be .* smaller than the row length 10"):
        sosfiltfilt_rows(BANDPASS, X, padlen=10)
    with pytest.raises(ValueError, match="2-D"):
        sosfiltfilt_rows(BANDPASS, np.zeros(10))
    for bad in (0, 1.5, "2", True):
        with pytest.raises(ValueError, match="n_jobs"):
            sosfiltfilt_rows(BANDPASS, X, padlen=3, n_jobs=bad)


def test_transformers_give_the_same_output_for_any_n_jobs():
    fs = 256.0
    X, _, _ = synth_ecg_rows(140, fs, noise_sd=0.05, rng=4)  # 3 blocks of 30-s rows
    assert rows_per_block(140, X.shape[1] + 54) < 70
    methods = ["neurokit"] + (["sleepecg"] if _sleepecg_c_routines() is not None else [])
    serial = BandpassFilter(fs=fs).fit_transform(X)
    np.testing.assert_array_equal(BandpassFilter(fs=fs, n_jobs=2).fit_transform(X), serial)
    X3 = np.stack([X, -X], axis=1)  # 3-D rows: every channel filtered as a row
    np.testing.assert_array_equal(BandpassFilter(fs=fs, n_jobs=2).fit_transform(X3)[:, 1], -serial)
    for method in methods:
        for cls in (HeartRateTransformer, HRVFeatures):
            one = cls(fs=fs, method=method).fit_transform(serial)
            _beats._CACHE.clear()  # detect again, on two threads
            two = cls(fs=fs, method=method, n_jobs=2).fit_transform(serial)
            np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("cls", [BandpassFilter, HeartRateTransformer, HRVFeatures])
def test_transformers_refuse_a_bad_n_jobs_at_fit(cls):
    with pytest.raises(ValueError, match="n_jobs must be None or a non-zero integer"):
        cls(fs=256.0, n_jobs=0).fit(np.zeros((2, 7680)))
