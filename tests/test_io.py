"""Tests for sleepkd.datasets.read_ecg: round-trips of every format and every error."""

from __future__ import annotations

import builtins
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from sleepkd.datasets import read_ecg

FS = 250.0


def _ecg(n_seconds: float = 4.0, fs: float = FS) -> np.ndarray:
    """A smooth test waveform in mV (values matter, not the shape)."""
    t = np.arange(int(n_seconds * fs)) / fs
    return 1.2 * np.sin(2 * np.pi * 1.1 * t) + 0.3 * np.sin(2 * np.pi * 7.0 * t)


def write_edf(path, signals, fs, *, bdf=False, record_seconds=1):
    """Write a minimal EDF (16-bit) or BDF (24-bit) file.

    ``signals`` is a list of ``(label, data, physical_unit)``, all at ``fs``. The
    format is a fixed ASCII header (256 bytes + 256 per signal) followed by data
    records holding ``fs * record_seconds`` little-endian integers per signal,
    mapped linearly from [digital min, max] to [physical min, max].
    """
    spr = int(fs * record_seconds)
    n_records = len(signals[0][1]) // spr
    ns = len(signals)
    dmin, dmax = (-(2**23), 2**23 - 1) if bdf else (-32768, 32767)

    def field(value, width):
        return str(value)[:width].ljust(width).encode("ascii")

    head = (b"\xffBIOSEMI" if bdf else field("0", 8)) + field("X X X X", 80)
    head += field("Startdate 01-JAN-2020 X X X", 80) + field("01.01.20", 8)
    head += field("22.00.00", 8) + field(256 * (ns + 1), 8)
    head += field("24BIT" if bdf else "", 44) + field(n_records, 8)
    head += field(record_seconds, 8) + field(ns, 4)
    physical, digital = [], []
    for _, data, _ in signals:
        data = np.asarray(data, float)[: n_records * spr]
        lo, hi = float(data.min()), float(data.max())
        hi = hi if hi > lo else lo + 1.0
        lo, hi = float(f"{lo:.6g}"), float(f"{hi:.6g}")  # what the header will hold
        physical.append((lo, hi))
        digital.append(np.round((data - lo) / (hi - lo) * (dmax - dmin) + dmin)
                       .clip(dmin, dmax).astype(np.int64))
    columns = [
        [field(label, 16) for label, _, _ in signals],
        [field("", 80)] * ns,
        [field(unit, 8) for _, _, unit in signals],
        [field(f"{lo:.6g}", 8) for lo, _ in physical],
        [field(f"{hi:.6g}", 8) for _, hi in physical],
        [field(dmin, 8)] * ns,
        [field(dmax, 8)] * ns,
        [field("", 80)] * ns,
        [field(spr, 8)] * ns,
        [field("", 32)] * ns,
    ]
    for column in columns:
        head += b"".join(column)
    assert len(head) == 256 * (ns + 1)
    body = bytearray()
    for r in range(n_records):
        for d in digital:
            chunk = d[r * spr:(r + 1) * spr]
            if bdf:  # 24-bit two's complement, little-endian
                body += (chunk & 0xFFFFFF).astype("<u4").view(np.uint8) \
                    .reshape(-1, 4)[:, :3].tobytes()
            else:
                body += chunk.astype("<i2").tobytes()
    path.write_bytes(head + bytes(body))
    return [(hi - lo) / (dmax - dmin) for lo, hi in physical]  # resolution per signal


# ------------------------------------------------------------------------ NumPy
def test_npy_round_trip(tmp_path):
    ecg = _ecg()
    np.save(tmp_path / "night.npy", ecg.astype(np.float32))
    signal, fs, info = read_ecg(tmp_path / "night.npy", fs=FS)
    np.testing.assert_array_equal(signal, ecg.astype(np.float32).astype(np.float64))
    assert signal.dtype == np.float64 and fs == FS
    assert info == {
        "channel": None, "units": None, "original_units": None,
        "source": str(tmp_path / "night.npy"), "format": "npy",
        "n_samples": ecg.size, "duration": 4.0,
    }


def test_npy_needs_fs(tmp_path):
    np.save(tmp_path / "x.npy", _ecg())
    with pytest.raises(ValueError, match=r"\.npy file stores no sampling rate; pass fs="):
        read_ecg(tmp_path / "x.npy")


def test_npz_round_trip_and_fs_agreement(tmp_path):
    ecg = _ecg()
    path = tmp_path / "night.npz"
    np.savez(path, ecg=ecg, fs=FS)
    signal, fs, info = read_ecg(str(path))
    np.testing.assert_array_equal(signal, ecg)
    assert fs == FS and info["channel"] == "ecg" and info["format"] == "npz"
    assert read_ecg(path, fs=250)[1] == FS  # agreeing fs is accepted
    with pytest.raises(ValueError, match=r"fs=256 Hz disagrees .* 250 Hz"):
        read_ecg(path, fs=256)


def test_npz_only_array_named_channel_and_units(tmp_path):
    ecg = _ecg()
    np.savez(tmp_path / "one.npz", lead_ii=ecg, fs=FS)
    signal, _, info = read_ecg(tmp_path / "one.npz")
    assert info["channel"] == "lead_ii"
    np.testing.assert_array_equal(signal, ecg)
    # microvolts are converted to millivolts
    np.savez(tmp_path / "uv.npz", ecg=ecg * 1000, fs=FS, units="uV")
    signal, _, info = read_ecg(tmp_path / "uv.npz")
    np.testing.assert_allclose(signal, ecg, rtol=1e-12)
    assert info["units"] == "mV" and info["original_units"] == "uV"
    # several arrays: choose by name, or fail listing them
    np.savez(tmp_path / "two.npz", a=ecg, b=2 * ecg, fs=FS)
    np.testing.assert_array_equal(read_ecg(tmp_path / "two.npz", channel="b")[0], 2 * ecg)
    with pytest.raises(ValueError, match=r"\['a', 'b'\]"):
        read_ecg(tmp_path / "two.npz")
    with pytest.raises(ValueError, match=r"No array 'c'"):
        read_ecg(tmp_path / "two.npz", channel="c")


def test_npz_without_fs(tmp_path):
    np.savez(tmp_path / "nofs.npz", ecg=_ecg())
    assert read_ecg(tmp_path / "nofs.npz", fs=128)[1] == 128.0
    with pytest.raises(ValueError, match="stores no sampling rate"):
        read_ecg(tmp_path / "nofs.npz")


# -------------------------------------------------------------------------- CSV
def test_csv_with_time_column(tmp_path):
    fs = 360.0  # 1/360 s is not exact in decimal: the rate comes from rounded times
    ecg = _ecg(fs=fs)
    t = np.arange(ecg.size) / fs
    pd.DataFrame({"time": np.round(t, 6), "ECG": ecg, "resp": -ecg}).to_csv(
        tmp_path / "rec.csv", index=False)
    signal, got_fs, info = read_ecg(tmp_path / "rec.csv")
    np.testing.assert_allclose(signal, ecg, rtol=1e-12)
    assert got_fs == pytest.approx(fs, rel=1e-6)
    assert info["channel"] == "ECG" and info["format"] == "csv"
    np.testing.assert_allclose(read_ecg(tmp_path / "rec.csv", channel="resp")[0], -ecg)


def test_csv_single_column_needs_fs(tmp_path):
    ecg = _ecg()
    pd.DataFrame({"lead": ecg}).to_csv(tmp_path / "one.csv", index=False)
    signal, fs, info = read_ecg(tmp_path / "one.csv", fs=FS)
    np.testing.assert_allclose(signal, ecg, rtol=1e-12)
    assert fs == FS and info["channel"] == "lead"
    with pytest.raises(ValueError, match="stores no sampling rate; pass fs="):
        read_ecg(tmp_path / "one.csv")


def test_csv_without_header(tmp_path):
    ecg = _ecg()
    np.savetxt(tmp_path / "raw.csv", ecg)
    signal, _, _ = read_ecg(tmp_path / "raw.csv", fs=FS)
    assert signal.size == ecg.size  # the first sample is data, not a header
    np.testing.assert_allclose(signal, ecg, rtol=1e-12)


def test_csv_errors(tmp_path):
    ecg = _ecg()
    t = np.arange(ecg.size) / FS
    t[100:] += 0.5  # a gap
    pd.DataFrame({"time": t, "ecg": ecg}).to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(ValueError, match="not uniformly sampled"):
        read_ecg(tmp_path / "gap.csv")
    t = np.arange(ecg.size) / FS
    pd.DataFrame({"time": t, "ecg": ecg}).to_csv(tmp_path / "ok.csv", index=False)
    with pytest.raises(ValueError, match=r"fs=500 Hz disagrees .* 250 Hz"):
        read_ecg(tmp_path / "ok.csv", fs=500)
    pd.DataFrame({"x": ecg, "y": ecg}).to_csv(tmp_path / "ambiguous.csv", index=False)
    with pytest.raises(ValueError, match=r"available: \['x', 'y'\]"):
        read_ecg(tmp_path / "ambiguous.csv", fs=FS)
    (tmp_path / "text.csv").write_text("ecg\n0.1\nabc\n0.3\n")
    with pytest.raises(ValueError, match="1 non-numeric"):
        read_ecg(tmp_path / "text.csv", fs=FS)
    (tmp_path / "gaps.csv").write_text("ecg\n0.1\n\n0.3\nnan\n0.2\n")
    with pytest.raises(ValueError, match="contains 1 NaN"):
        # blank lines are skipped by the parser; 'nan' is a NaN sample
        read_ecg(tmp_path / "gaps.csv", fs=FS)


# ------------------------------------------------------------------------- WFDB
def _write_wfdb(directory, name="rec", sig_names=("EEG C4-A1", "ECG lead II")):
    wfdb = pytest.importorskip("wfdb")
    ecg = _ecg()
    eeg_uv = 40 * np.cos(2 * np.pi * 10 * np.arange(ecg.size) / FS)
    wfdb.wrsamp(name, fs=FS, units=["uV", "mV"], sig_name=list(sig_names),
                p_signal=np.column_stack([eeg_uv, ecg]), fmt=["16", "16"],
                write_dir=str(directory))
    return ecg, eeg_uv


@pytest.mark.parametrize("suffix", ["", ".hea", ".dat"])
def test_wfdb_round_trip(tmp_path, suffix):
    ecg, _ = _write_wfdb(tmp_path)
    signal, fs, info = read_ecg(f"{tmp_path / 'rec'}{suffix}")
    assert fs == FS and info["channel"] == "ECG lead II"  # found by name
    assert info["units"] == "mV" and info["format"] == "wfdb"
    assert info["source"] == str(tmp_path / "rec")
    # 16-bit storage: error within half a quantisation step
    np.testing.assert_allclose(signal, ecg, atol=np.ptp(ecg) / 2**16)


def test_wfdb_channel_choice_and_unit_conversion(tmp_path):
    ecg, eeg_uv = _write_wfdb(tmp_path)
    signal, _, info = read_ecg(tmp_path / "rec", channel="EEG C4-A1")
    assert info["channel"] == "EEG C4-A1" and info["original_units"] == "uV"
    np.testing.assert_allclose(signal, eeg_uv / 1000, atol=np.ptp(eeg_uv) / 1000 / 2**16)
    with pytest.raises(ValueError, match=r"No channel 'ECG V5' .*\['EEG C4-A1', 'ECG lead II'\]"):
        read_ecg(tmp_path / "rec", channel="ECG V5")


def test_wfdb_without_ecg_channel_lists_channels(tmp_path):
    _write_wfdb(tmp_path, sig_names=("EEG", "Resp"))
    with pytest.raises(ValueError, match=r"No ECG channel .*\['EEG', 'Resp'\]"):
        read_ecg(tmp_path / "rec")
    assert read_ecg(tmp_path / "rec", channel="Resp")[2]["channel"] == "Resp"


def test_wfdb_ekg_name_is_found(tmp_path):
    _write_wfdb(tmp_path, sig_names=("EEG", "ekg"))
    assert read_ecg(tmp_path / "rec")[2]["channel"] == "ekg"


def test_wfdb_missing_dat_names_it(tmp_path, slpdb_dir):
    # The real slpdb headers ship without their signal files.
    shutil.copy(slpdb_dir / "slp01a.hea", tmp_path / "slp01a.hea")
    with pytest.raises(FileNotFoundError, match=r"slp01a\.dat"):
        read_ecg(tmp_path / "slp01a")
    _write_wfdb(tmp_path)
    (tmp_path / "rec.dat").unlink()
    with pytest.raises(FileNotFoundError, match=r"rec\.dat"):
        read_ecg(tmp_path / "rec.hea")


def test_wfdb_corrupt_header(tmp_path):
    pytest.importorskip("wfdb")
    (tmp_path / "bad.hea").write_text("this is not a header\n")
    with pytest.raises(ValueError, match=r"Could not read .*bad\.hea"):
        read_ecg(tmp_path / "bad")


def test_missing_optional_package_names_extra(tmp_path, monkeypatch):
    _write_wfdb(tmp_path)
    (tmp_path / "x.edf").write_bytes(b"0" * 512)
    real_import = builtins.__import__

    def no_optional(name, *args, **kwargs):
        if name in ("wfdb", "mne"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optional)
    with pytest.raises(ImportError, match=r'pip install "sleepkd\[wfdb\]"'):
        read_ecg(tmp_path / "rec")
    with pytest.raises(ImportError, match=r'pip install "sleepkd\[edf\]"'):
        read_ecg(tmp_path / "x.edf")


# -------------------------------------------------------------------- EDF / BDF
@pytest.mark.parametrize("suffix", [".edf", ".bdf"])
def test_edf_round_trip_and_channels(tmp_path, suffix):
    pytest.importorskip("mne")
    fs = 128.0
    ecg = _ecg(n_seconds=10, fs=fs)
    eeg_uv = 50 * np.sin(2 * np.pi * 10 * np.arange(ecg.size) / fs)
    path = tmp_path / f"night{suffix}"
    resolution = write_edf(path, [("EEG C3-A2", eeg_uv, "uV"), ("ECG II", ecg, "mV"),
                                  ("Resp", ecg * 3, "")], fs, bdf=suffix == ".bdf")
    signal, got_fs, info = read_ecg(path)
    assert got_fs == fs and info["channel"] == "ECG II"
    assert info["units"] == "mV" and info["original_units"] == "mV"
    assert info["format"] == suffix[1:] and info["n_samples"] == ecg.size
    np.testing.assert_allclose(signal, ecg, atol=resolution[1])
    signal, _, info = read_ecg(path, channel="EEG C3-A2")  # uV -> mV
    assert info["original_units"] in ("uV", "µV")
    np.testing.assert_allclose(signal, eeg_uv / 1000, atol=resolution[0] / 1000)
    signal, _, info = read_ecg(path, channel="Resp")  # no units: returned as stored
    assert info["units"] is None
    np.testing.assert_allclose(signal, ecg * 3, atol=resolution[2])
    with pytest.raises(ValueError, match=r"No channel 'ECG V1' .*'ECG II'"):
        read_ecg(path, channel="ECG V1")
    with pytest.raises(ValueError, match=r"fs=250 Hz disagrees .* 128 Hz"):
        read_ecg(path, fs=250)


def test_edf_without_ecg_and_corrupt(tmp_path):
    pytest.importorskip("mne")
    write_edf(tmp_path / "eeg.edf", [("Fpz-Cz", _ecg(4, 100), "uV")], 100)
    with pytest.raises(ValueError, match=r"No ECG channel .*\['Fpz-Cz'\]"):
        read_ecg(tmp_path / "eeg.edf")
    (tmp_path / "broken.edf").write_bytes(b"0       garbage" + b"\x00" * 100)
    with pytest.raises(ValueError, match=r"Could not read .*broken\.edf"):
        read_ecg(tmp_path / "broken.edf")


# ----------------------------------------------------------------- common errors
def test_missing_file_names_path(tmp_path):
    for name in ("nothing.npy", "nothing.edf", "record_without_header"):
        with pytest.raises(FileNotFoundError, match=name):
            read_ecg(tmp_path / name, fs=FS)


def test_unknown_extension_lists_formats(tmp_path):
    (tmp_path / "night.mat").write_bytes(b"\x00")
    with pytest.raises(ValueError, match=r"'\.mat'.*\.npy.*\.npz.*\.csv.*\.hea.*\.edf.*\.bdf"):
        read_ecg(tmp_path / "night.mat", fs=FS)


def test_corrupt_numpy_files(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    with pytest.raises(ValueError, match=r"Could not read .*bad\.npy"):
        read_ecg(tmp_path / "bad.npy", fs=FS)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"Could not read .*bad\.npz"):
        read_ecg(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((2, 100)), r"1-D .* shape \(2, 100\)"),
        (np.zeros(0), "empty"),
        (np.array([0.1, np.nan, 0.2, np.nan, np.inf]), "3 NaN or infinite sample"),
    ],
)
def test_bad_signal(tmp_path, array, match):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(ValueError, match=match):
        read_ecg(tmp_path / "x.npy", fs=FS)


@pytest.mark.parametrize("fs", [0, -250, float("nan"), "250"])
def test_bad_fs(tmp_path, fs):
    np.save(tmp_path / "x.npy", _ecg())
    with pytest.raises(ValueError, match="fs must be a positive number"):
        read_ecg(tmp_path / "x.npy", fs=fs)


def test_bad_fs_stored_in_file(tmp_path):
    np.savez(tmp_path / "x.npz", ecg=_ecg(), fs=-1.0)
    with pytest.raises(ValueError, match="sampling rate stored in"):
        read_ecg(tmp_path / "x.npz")


def test_channel_on_npy_is_an_error(tmp_path):
    np.save(tmp_path / "x.npy", _ecg())
    with pytest.raises(ValueError, match="no channel names"):
        read_ecg(tmp_path / "x.npy", fs=FS, channel="ECG")


def test_logs_what_was_read(tmp_path, caplog):
    np.save(tmp_path / "x.npy", _ecg())
    with caplog.at_level(logging.INFO, logger="sleepkd.io._ecg_files"):
        read_ecg(tmp_path / "x.npy", fs=FS)
    assert "Read 1000 samples at 250 Hz" in caplog.text
