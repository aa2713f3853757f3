"""BandpassFilter: measured gain against the design, shapes, dtypes, errors."""

import numpy as np
import pytest
import scipy.signal

from sleepkd.signal import BandpassFilter

FS = 100.0


def _gain_db(filt, freq, fs=FS, seconds=60.0):
    """Measured gain (dB) of ``filt`` on a sinusoid, from the RMS of the middle half."""
    t = np.arange(int(seconds * fs)) / fs
    x = np.sin(2 * np.pi * freq * t)[None, :]
    y = filt.fit(x).transform(x)[0]
    mid = slice(len(t) // 4, 3 * len(t) // 4)
    return 20 * np.log10(np.sqrt(np.mean(y[mid] ** 2)) / np.sqrt(np.mean(x[0, mid] ** 2)))


def _design_db(filt, freq, fs=FS):
    """|H|^2 of the designed sections (forward-backward pass), in dB."""
    _, h = scipy.signal.sosfreqz(filt.sos_, worN=[freq], fs=fs)
    return 20 * np.log10(np.abs(h[0]) ** 2)


@pytest.mark.parametrize("freq", [1.0, 5.0, 10.0, 20.0, 30.0])
def test_passband_gain_matches_design(freq):
    filt = BandpassFilter(fs=FS, low=0.5, high=40.0, order=4, epoch_seconds=None)
    measured = _gain_db(filt, freq)
    assert abs(measured - _design_db(filt, freq)) < 1.0
    assert abs(measured) < 1.0  # and the pass band is flat


@pytest.mark.parametrize(
    "low, high, freq",
    [(2.0, 10.0, 0.5), (2.0, 10.0, 40.0), (None, 5.0, 20.0), (8.0, None, 2.0)],
)
def test_stopband_two_octaves_out_is_30db_down(low, high, freq):
    filt = BandpassFilter(fs=FS, low=low, high=high, order=4, epoch_seconds=None)
    measured = _gain_db(filt, freq, seconds=120.0)
    assert measured < -30.0
    assert measured == pytest.approx(_design_db(filt, freq), abs=3.0)


def test_3d_input_keeps_shape_and_filters_each_channel():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 2, 3000))
    filt = BandpassFilter(fs=FS, low=1.0, high=20.0).fit(X)
    Y = filt.transform(X)
    assert Y.shape == X.shape
    assert filt.input_shape_ == (2, 3000)
    assert not hasattr(filt, "n_features_in_")
    ref = BandpassFilter(fs=FS, low=1.0, high=20.0).fit_transform(X[:, 1, :])
    np.testing.assert_allclose(Y[:, 1, :], ref)
    with pytest.raises(ValueError, match="shape"):
        filt.transform(X[:, :1, :])
    with pytest.raises(ValueError, match="3 dimensions"):
        filt.transform(X[:, 0, :])


def test_dtypes():
    X = np.random.default_rng(0).normal(size=(2, 3000))
    filt = BandpassFilter(fs=FS)
    assert filt.fit_transform(X.astype(np.float32)).dtype == np.float32
    assert filt.fit_transform(X).dtype == np.float64
    assert filt.fit_transform((X * 100).astype(int)).dtype == np.float64


def test_short_rows_are_filtered_with_reduced_padding():
    X = np.random.default_rng(0).normal(size=(4, 10))  # shorter than the default padlen
    Y = BandpassFilter(fs=FS, epoch_seconds=None).fit_transform(X)
    assert Y.shape == X.shape and np.all(np.isfinite(Y))


def test_transform_rejects_other_row_length():
    filt = BandpassFilter(fs=FS).fit(np.zeros((2, 3000)))
    with pytest.raises(ValueError, match="features"):
        filt.transform(np.zeros((2, 6000)))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(low=0.5, high=50.0), r"high=50 Hz .*Nyquist frequency 50 Hz \(fs=100 Hz\)"),
        (dict(low=60.0, high=None), "Nyquist"),
        (dict(low=10.0, high=5.0), "low must be below high"),
        (dict(low=5.0, high=5.0), "low must be below high"),
        (dict(low=-1.0), "positive"),
        (dict(low=None, high=None), "both are None"),
        (dict(order=0), "order"),
        (dict(fs=0.0), "fs"),
    ],
)
def test_invalid_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        BandpassFilter(**params).fit(np.zeros((2, 3000)))


@pytest.mark.parametrize(
    "X, match",
    [
        (np.full((2, 3000), np.nan), "NaN"),
        (np.full((2, 3000), np.inf), "infinity"),
        (np.zeros((3000,)), "2D array"),
        (np.zeros((2, 0)), "0 feature"),
        (np.zeros((1, 1, 1, 3000)), "dim"),
        (np.full((2, 2, 3000), np.nan), "NaN"),
    ],
)
def test_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        BandpassFilter(fs=FS, epoch_seconds=None).fit(X)


def test_row_length_must_be_whole_epochs():
    # 30 s at 256 Hz given with fs=100: 76.8 s is not a whole number of epochs.
    with pytest.raises(ValueError, match="fs and the row length disagree"):
        BandpassFilter(fs=FS).fit(np.zeros((2, 7680)))
    BandpassFilter(fs=FS).fit(np.zeros((2, 9000)))  # three epochs of context: fine
    BandpassFilter(fs=FS, epoch_seconds=None).fit(np.zeros((2, 7680)))
