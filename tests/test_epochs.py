"""Tests for :func:`sleepkd.datasets.make_epochs` and :func:`sleepkd.datasets.add_context`."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sleepkd.datasets import Recording, add_context, make_epochs

FS = 10.0  # 300 samples per 30-s epoch keeps the known-answer arrays small
N = 300


def make_recording(name="r1", stages=("W", "N1", "N2", "N3", "R"), *, subject=None,
                   fs_ecg=FS, fs_eeg=FS, n_samples=None, onsets=None, ecg=True, eeg=True,
                   source="synthetic (test ramp)", n_channels=2):
    """A night whose ECG is a ramp (sample index) and EEG channels ±ramp."""
    stages = np.asarray(stages)
    onsets = np.arange(len(stages)) * 30.0 if onsets is None else np.asarray(onsets, float)
    n_ecg = int(len(stages) * 30 * fs_ecg) if n_samples is None else n_samples
    n_eeg = int(len(stages) * 30 * fs_eeg) if n_samples is None else n_samples
    ramp_eeg = np.arange(n_eeg, dtype=float)
    eeg_signal = np.stack([ramp_eeg * (-1) ** c for c in range(n_channels)])
    return Recording(
        name=name, subject=subject or name,
        ecg=np.arange(n_ecg, dtype=float) if ecg else None, fs_ecg=fs_ecg if ecg else None,
        eeg=eeg_signal if eeg else None, fs_eeg=fs_eeg if eeg else None,
        eeg_channels=[f"C{c}" for c in range(n_channels)], beat_times=None,
        stages=stages, epoch_onsets=onsets, source=source,
    )


# ------------------------------------------------------------------ basic cutting
def test_rows_hold_exactly_the_samples_of_each_epoch():
    data = make_epochs([make_recording()])
    assert data.X_ecg.shape == (5, N) and data.X_ecg.dtype == np.float32
    assert data.X_eeg.shape == (5, 2, N) and data.X_eeg.dtype == np.float32
    for i in range(5):
        expected = np.arange(i * N, (i + 1) * N)
        np.testing.assert_array_equal(data.X_ecg[i], expected)
        np.testing.assert_array_equal(data.X_eeg[i, 0], expected)
        np.testing.assert_array_equal(data.X_eeg[i, 1], -expected)
    assert data.y.tolist() == ["W", "N1", "N2", "N3", "R"]
    assert data.groups.tolist() == ["r1"] * 5 and data.records.tolist() == ["r1"] * 5
    np.testing.assert_array_equal(data.onsets, [0, 30, 60, 90, 120])
    assert (data.fs_ecg, data.fs_eeg, data.scheme, data.context) == (FS, FS, "5class", 0)
    assert data.dropped["unscored"] == data.dropped["outside_signal"] == 0


def test_onsets_not_on_sample_zero_are_rounded_to_samples():
    # slpdb's first annotation sits at sample 1 (4 ms at 250 Hz): 0.1 s = 1 sample here
    rec = make_recording(stages=["W", "N1"], onsets=[0.1, 30.0], n_samples=2 * N + 5)
    data = make_epochs([rec], signals="ecg")
    np.testing.assert_array_equal(data.X_ecg[0], np.arange(1, N + 1))
    np.testing.assert_array_equal(data.X_ecg[1], np.arange(N, 2 * N))


def test_scheme_maps_labels():
    rec = make_recording(stages=["W", "N1", "N2", "N3", "R", "MT"])
    assert make_epochs([rec], scheme="4class").y.tolist() == ["W", "L", "L", "D", "R"]
    assert make_epochs([rec], scheme="3class").y.tolist() == ["W", "N", "N", "N", "R"]


def test_rows_grouped_by_recording_and_subject():
    recs = [make_recording("a1", ["W", "N2"], subject="s1"),
            make_recording("a2", ["R"], subject="s1"),
            make_recording("b", ["N3", "W", "W"], subject="s2")]
    data = make_epochs(recs, signals="ecg")
    assert data.records.tolist() == ["a1", "a1", "a2", "b", "b", "b"]
    assert data.groups.tolist() == ["s1", "s1", "s1", "s2", "s2", "s2"]
    assert data.y.tolist() == ["W", "N2", "R", "N3", "W", "W"]
    np.testing.assert_array_equal(data.X_ecg[2], np.arange(N))  # a2 starts again at 0


def test_signals_selection():
    rec = make_recording()
    only_ecg = make_epochs([rec], signals="ecg")
    assert only_ecg.X_eeg is None and only_ecg.fs_eeg is None and only_ecg.X_ecg is not None
    only_eeg = make_epochs([rec], signals=["eeg"])
    assert only_eeg.X_ecg is None and only_eeg.X_eeg.shape == (5, 2, N)
    labels_only = make_epochs([make_recording(ecg=False, eeg=False)], signals=())
    assert labels_only.X_ecg is None and labels_only.X_eeg is None
    assert labels_only.y.tolist() == ["W", "N1", "N2", "N3", "R"]


def test_one_dimensional_eeg_is_one_channel():
    rec = make_recording(eeg=False)
    rec.eeg, rec.fs_eeg = np.arange(5 * N, dtype=float), FS
    data = make_epochs([rec], signals="eeg")
    assert data.X_eeg.shape == (5, 1, N)


# ------------------------------------------------------------------ dropping
def test_unscored_epochs_dropped_counted_and_warned(caplog):
    rec = make_recording(stages=["W", "?", "N2", "MT", "R"])
    with caplog.at_level(logging.WARNING, logger="sleepkd.datasets._epochs"):
        data = make_epochs([rec])
    assert data.y.tolist() == ["W", "N2", "R"]
    np.testing.assert_array_equal(data.onsets, [0, 60, 120])
    np.testing.assert_array_equal(data.X_ecg[1], np.arange(2 * N, 3 * N))
    assert data.dropped["unscored"] == 2
    assert data.dropped["per_record"]["r1"] == {"unscored": 2, "outside_signal": 0,
                                               "nonfinite": 0}
    assert "dropped 2 of 5 epochs" in caplog.text and "2 unscored" in caplog.text


def test_epochs_outside_signal_dropped_and_counted():
    # signal covers 3.5 epochs: epoch 3 is cut off, epoch 4 lies wholly beyond the end
    rec = make_recording(n_samples=int(3.5 * N))
    data = make_epochs([rec])
    assert data.y.tolist() == ["W", "N1", "N2"]
    assert data.dropped["outside_signal"] == 2 and data.dropped["unscored"] == 0


def test_unscored_outside_signal_counted_once_as_unscored():
    rec = make_recording(stages=["W", "N1", "?"], n_samples=2 * N)
    data = make_epochs([rec])
    assert data.dropped["unscored"] == 1 and data.dropped["outside_signal"] == 0


def test_nan_in_signal_drops_epoch():
    rec = make_recording()
    rec.ecg[N + 7] = np.nan
    data = make_epochs([rec])
    assert data.y.tolist() == ["W", "N2", "N3", "R"]
    assert data.dropped["nonfinite"] == 1
    assert data.X_eeg.shape[0] == data.X_ecg.shape[0] == 4
    np.testing.assert_array_equal(data.X_ecg[1], np.arange(2 * N, 3 * N))
    assert np.isfinite(data.X_ecg).all()


def test_nothing_left_is_an_error():
    with pytest.raises(ValueError, match="No epoch left.*2 unscored"):
        make_epochs([make_recording(stages=["?", "MT"])])


# ------------------------------------------------------------------ context
def test_context_zero_padded_at_record_edges():
    data = make_epochs([make_recording(stages=["W", "N1", "N2"])], signals="ecg",
                       context=1)
    assert data.X_ecg.shape == (3, 3 * N)
    zeros = np.zeros(N)
    np.testing.assert_array_equal(data.X_ecg[0], np.r_[zeros, np.arange(0, 2 * N)])
    np.testing.assert_array_equal(data.X_ecg[1], np.arange(0, 3 * N))
    np.testing.assert_array_equal(data.X_ecg[2], np.r_[np.arange(N, 3 * N), zeros])


def test_context_edge_padding_repeats_edge_sample():
    rec = make_recording(stages=["W", "N1"])
    rec.ecg = rec.ecg + 5.0  # first sample 5, last 2 * N + 4
    data = make_epochs([rec], signals="ecg", context=1, pad="edge")
    np.testing.assert_array_equal(data.X_ecg[0], np.r_[np.full(N, 5), 5 + np.arange(2 * N)])
    np.testing.assert_array_equal(data.X_ecg[1],
                                  np.r_[5 + np.arange(2 * N), np.full(N, 2 * N + 4)])


def test_context_without_padding_drops_edge_rows():
    data = make_epochs([make_recording()], signals="ecg", context=2, pad=None)
    assert data.y.tolist() == ["N2"]
    np.testing.assert_array_equal(data.X_ecg[0], np.arange(5 * N))
    assert data.dropped["outside_signal"] == 4


def test_context_includes_unscored_neighbours_from_the_signal():
    data = make_epochs([make_recording(stages=["W", "?", "N2"])], signals="ecg",
                       context=1)
    assert data.y.tolist() == ["W", "N2"]
    # N2's left neighbour is the unscored epoch's signal, not W's
    np.testing.assert_array_equal(data.X_ecg[1], np.r_[np.arange(N, 3 * N), np.zeros(N)])


def test_context_eeg_keeps_channels():
    data = make_epochs([make_recording(stages=["W", "N1", "N2"])], signals="eeg",
                       context=1)
    assert data.X_eeg.shape == (3, 2, 3 * N)
    np.testing.assert_array_equal(data.X_eeg[1, 0], np.arange(3 * N))
    np.testing.assert_array_equal(data.X_eeg[1, 1], -np.arange(3 * N))
    np.testing.assert_array_equal(data.X_eeg[0, 1, :N], 0)


def test_context_never_crosses_records():
    recs = [make_recording("a", ["W", "N1"]), make_recording("b", ["N2", "R"])]
    data = make_epochs(recs, signals="ecg", context=1)
    np.testing.assert_array_equal(data.X_ecg[1, 2 * N:], 0)  # a's end, not b's start
    np.testing.assert_array_equal(data.X_ecg[2, :N], 0)


def test_signal_context_equals_add_context_when_every_epoch_is_kept():
    recs = [make_recording("a", ["W", "N1", "N2", "R"]), make_recording("b", ["N3", "W"])]
    one = make_epochs(recs, context=0)
    two = make_epochs(recs, context=2)
    np.testing.assert_array_equal(add_context(one.X_ecg, one.records, 2), two.X_ecg)
    np.testing.assert_array_equal(add_context(one.X_eeg, one.records, 2), two.X_eeg)


# ------------------------------------------------------------------ resampling
def test_resampling_lengths_and_rate():
    rec = make_recording(fs_ecg=250.0, fs_eeg=256.0, stages=["W", "N1", "N2"])
    data = make_epochs([rec], fs_ecg=200, fs_eeg=128, context=1)
    assert data.fs_ecg == 200.0 and data.fs_eeg == 128.0
    assert data.X_ecg.shape == (3, 3 * 6000)
    assert data.X_eeg.shape == (3, 2, 3 * 3840)


def test_resampling_preserves_a_slow_sine():
    fs_in, fs_out = 250.0, 200.0
    rec = make_recording(fs_ecg=fs_in, eeg=False, stages=["W", "N1", "N2"])
    t_in = np.arange(len(rec.ecg)) / fs_in
    rec.ecg = np.sin(2 * np.pi * 0.5 * t_in)
    data = make_epochs([rec], signals="ecg", fs_ecg=fs_out)
    t_out = 30.0 + np.arange(6000) / fs_out  # the middle epoch, away from edge effects
    np.testing.assert_allclose(data.X_ecg[1], np.sin(2 * np.pi * 0.5 * t_out), atol=1e-3)


def test_same_rate_requested_is_a_no_op():
    rec = make_recording()
    np.testing.assert_array_equal(make_epochs([rec], fs_ecg=FS).X_ecg,
                                  make_epochs([rec]).X_ecg)


def test_mismatched_rates_without_target_rate_is_an_error():
    recs = [make_recording("a", fs_ecg=250.0), make_recording("b", fs_ecg=200.0)]
    with pytest.raises(ValueError, match=r"different ECG sampling rates.*'a': 250.0.*"
                                         r"'b': 200.0.*fs_ecg"):
        make_epochs(recs, signals="ecg")
    data = make_epochs(recs, signals="ecg", fs_ecg=100)
    assert data.X_ecg.shape == (10, 3000)


# ------------------------------------------------------------------ provenance
def test_source_and_descr_state_provenance():
    synthetic = make_epochs([make_recording()])
    assert synthetic.source == {"synthetic (test ramp)"}
    assert "SYNTHETIC" in synthetic.DESCR and "5 scored 30-s epochs" in synthetic.DESCR
    mixed = make_epochs([make_recording("a", source="real (PhysioNet slpdb)"),
                         make_recording("b", source="semi-real (slpdb beats)")])
    assert "MIX" in mixed.DESCR and "REAL" in mixed.DESCR and "SEMI-REAL" in mixed.DESCR
    assert mixed.source == {"real (PhysioNet slpdb)", "semi-real (slpdb beats)"}


# ------------------------------------------------------------------ validation
def test_missing_signal_named():
    rec = make_recording(ecg=False)
    with pytest.raises(ValueError, match="'r1' has no ECG waveform"):
        make_epochs([rec])
    rec.source = "real (PhysioNet slpdb)"
    with pytest.raises(ValueError, match=r"no ECG waveform \(slpdb read without its .dat"):
        make_epochs([rec], signals="ecg")


@pytest.mark.parametrize("kwargs, message", [
    ({"context": -1}, "context must be an integer >= 0"),
    ({"context": 1.5}, "context must be an integer >= 0"),
    ({"context": True}, "context must be an integer >= 0"),
    ({"signals": ("ecg", "emg")}, "signals must be a subset"),
    ({"signals": ("ecg", "ecg")}, "signals must be a subset"),
    ({"pad": "reflect"}, "pad must be one of"),
    ({"scheme": "6class"}, "Unknown scheme"),
    ({"fs_ecg": 0}, "fs_ecg must be a positive number"),
    ({"fs_eeg": "fast"}, "fs_eeg must be a positive number"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_epochs([make_recording()], **kwargs)


def test_bad_recordings():
    with pytest.raises(ValueError, match="recordings is empty"):
        make_epochs([])
    with pytest.raises(ValueError, match=r"must all be Recording objects; got \['dict'\]"):
        make_epochs([make_recording(), {"ecg": np.zeros(10)}])
    with pytest.raises(ValueError, match="list of Recording"):
        make_epochs("r1")
    with pytest.raises(ValueError, match=r"repeated: \['r1'\]"):
        make_epochs([make_recording(), make_recording()])


def test_bad_recording_contents():
    rec = make_recording()
    rec.epoch_onsets = rec.epoch_onsets[:-1]
    with pytest.raises(ValueError, match="'r1': stages .* same length"):
        make_epochs([rec])
    rec = make_recording(onsets=[0, 60, 30, 90, 120])
    with pytest.raises(ValueError, match="strictly increasing"):
        make_epochs([rec])
    rec = make_recording(onsets=[0, 30, np.nan, 90, 120])
    with pytest.raises(ValueError, match="finite"):
        make_epochs([rec])
    rec = make_recording(stages=["W", "N1", "Z", "N3", "R"])
    with pytest.raises(ValueError, match=r"'r1'.*Unknown sleep-stage label\(s\) \['Z'\]"):
        make_epochs([rec])
    rec = make_recording()
    rec.ecg = rec.ecg.reshape(1, -1)
    with pytest.raises(ValueError, match="ecg must be 1-D"):
        make_epochs([rec])
    with pytest.raises(ValueError, match="different numbers of EEG channels"):
        make_epochs([make_recording("a"), make_recording("b", n_channels=1)])
    rec = make_recording()
    rec.fs_ecg = -1
    with pytest.raises(ValueError, match="r1.fs_ecg must be a positive number"):
        make_epochs([rec])


def test_single_recording_accepted():
    assert make_epochs(make_recording()).X_ecg.shape == (5, N)


# ------------------------------------------------------------------ add_context
def test_add_context_docstring_example():
    out = add_context(np.array([1.0, 2.0, 3.0, 10.0]), ["a", "a", "a", "b"], 1)
    assert out.tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 0], [0, 10, 0]]


def test_add_context_2d_and_3d():
    X = np.arange(12.0).reshape(6, 2)
    records = ["a"] * 3 + ["b"] * 3
    out = add_context(X, records, 1)
    assert out.shape == (6, 6)
    np.testing.assert_array_equal(out[1], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(out[2], [2, 3, 4, 5, 0, 0])  # not b's first row
    X3 = np.arange(24.0).reshape(6, 2, 2)  # (rows, channels, times)
    out3 = add_context(X3, records, 1)
    assert out3.shape == (6, 2, 6)
    np.testing.assert_array_equal(out3[1, 0], [0, 1, 4, 5, 8, 9])
    np.testing.assert_array_equal(out3[1, 1], [2, 3, 6, 7, 10, 11])


def test_add_context_edge_padding_repeats_edge_rows():
    out = add_context(np.array([1, 2, 3]), ["a"] * 3, 2, pad="edge")
    assert out.tolist() == [[1, 1, 1, 2, 3], [1, 1, 2, 3, 3], [1, 2, 3, 3, 3]]


def test_add_context_with_onsets_pads_missing_epochs():
    # epoch at 60 s was dropped: rows 30 s and 90 s are not neighbours
    X = np.array([1.0, 2.0, 4.0])
    out = add_context(X, ["a"] * 3, 1, onsets=[0, 30, 90])
    assert out.tolist() == [[0, 1, 2], [1, 2, 0], [0, 4, 0]]
    assert add_context(X, ["a"] * 3, 1).tolist() == [[0, 1, 2], [1, 2, 4], [2, 4, 0]]
    edge = add_context(X, ["a"] * 3, 1, onsets=[0, 30, 90], pad="edge")
    assert edge.tolist() == [[1, 1, 2], [1, 2, 2], [2, 4, 4]]


def test_add_context_zero_returns_copy():
    X = np.arange(6.0).reshape(3, 2)
    out = add_context(X, ["a"] * 3, 0)
    np.testing.assert_array_equal(out, X)
    assert out is not X and not np.shares_memory(out, X)


def test_add_context_validation():
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match="contiguous.*split records: \\['a'\\]"):
        add_context(X, ["a", "b", "a", "a"], 1)
    with pytest.raises(ValueError, match=r"records must have shape \(4,\)"):
        add_context(X, ["a"] * 3, 1)
    with pytest.raises(ValueError, match="context must be an integer"):
        add_context(X, ["a"] * 4, -1)
    with pytest.raises(ValueError, match="pad must be"):
        add_context(X, ["a"] * 4, 1, pad=None)
    with pytest.raises(ValueError, match="at least one row"):
        add_context(np.zeros((0, 3)), [], 1)
    with pytest.raises(ValueError, match="onsets of record 'a' must increase"):
        add_context(X, ["a"] * 4, 1, onsets=[0, 30, 40, 90])


def test_standardize_per_record_known_answer_and_errors():
    from sleepkd.datasets import standardize_per_record

    X = np.array([[60.0, 62.0], [70.0, 68.0], [80.0, 90.0], [50.0, 50.0]])
    out = standardize_per_record(X, ["a", "a", "a", "b"])
    a = X[:3]
    np.testing.assert_allclose(out[:3], (a - np.median(a)) / a.std(), rtol=1e-6)
    np.testing.assert_array_equal(out[3], [0.0, 0.0])  # constant record: centred only
    # a subject with a higher heart rate gives the same standardised rows
    np.testing.assert_allclose(standardize_per_record(X[:3] + 15.0, ["a"] * 3), out[:3],
                               rtol=1e-5)
    with pytest.raises(ValueError, match="rows but records has"):
        standardize_per_record(X, ["a"])
    with pytest.raises(ValueError, match="infinity"):
        standardize_per_record(np.array([[np.inf]]), ["a"])
    with pytest.raises(ValueError, match="fill must be None or a finite number"):
        standardize_per_record(X, ["a"] * 4, fill=np.nan)


def test_standardize_per_record_nan_policy(caplog):
    from sleepkd.datasets import standardize_per_record

    # night "a" has a segment without beats (NaN); night "b" has no beats at all
    X = np.array([[60.0, 62.0], [np.nan, np.nan], [70.0, 68.0], [80.0, 90.0],
                  [np.nan, np.nan], [np.nan, np.nan]])
    records = ["a"] * 4 + ["b"] * 2
    with caplog.at_level("WARNING", logger="sleepkd.datasets"):
        out = standardize_per_record(X, records)
    finite = X[[0, 2, 3]]
    expected = (finite - np.median(finite)) / finite.std()
    # the NaN rows leave the statistics of the other rows unchanged...
    np.testing.assert_allclose(out[[0, 2, 3]], expected, rtol=1e-6)
    np.testing.assert_allclose(out[[0, 2, 3]], standardize_per_record(finite, ["a"] * 3))
    # ... and stay NaN, as does the record without any finite value (with a warning)
    assert np.isnan(out[[1, 4, 5]]).all()
    assert "'b' has no finite value" in caplog.text
    filled = standardize_per_record(X, records, fill=0.0)
    np.testing.assert_array_equal(filled[[1, 4, 5]], 0.0)
    np.testing.assert_array_equal(filled[[0, 2, 3]], out[[0, 2, 3]])
