"""Tests for :func:`sleepkd.datasets.load_slpdb` on the real slpdb annotations."""

from __future__ import annotations

import filecmp
import logging
import shutil
import sys
from collections import Counter

import numpy as np
import pytest

wfdb = pytest.importorskip("wfdb")

from sleepkd.datasets import load_slpdb, make_epochs, slpdb_path  # noqa: E402

FS = 250
EPOCH = 7500  # samples per 30-s epoch at 250 Hz

# Computed from the files (rdann / the headers) and cross-checked below.
# name: (sig_len, n_epochs, first stage sample, unscored epochs at the start (scoring
#        starts late), unscored epochs at the end, beats, non-normal beats,
#        stage counts W N1 N2 N3 R ?)
TABLE = {
    "slp01a": (1800000, 240, 1, 0, 0, 7806, 0, (7, 1, 105, 113, 13, 1)),
    "slp01b": (2700000, 360, 1, 0, 0, 11467, 2, (180, 27, 128, 0, 25, 0)),
    "slp02a": (2700000, 360, 1, 0, 0, 16145, 10, (44, 18, 206, 7, 77, 8)),
    "slp02b": (2025000, 270, 1, 0, 0, 11315, 33, (107, 14, 119, 0, 29, 1)),
    "slp04": (5400000, 720, 1, 0, 0, 27029, 3, (162, 60, 442, 33, 23, 0)),
    "slp14": (5400000, 714, 45000, 6, 0, 22920, 28, (321, 188, 126, 42, 36, 1)),
    "slp32": (4800000, 640, 1, 0, 0, 21718, 11, (394, 27, 159, 60, 0, 0)),
    "slp37": (5250000, 698, 15000, 2, 0, 30611, 1, (75, 21, 591, 0, 11, 0)),
    "slp41": (5850000, 780, 1, 0, 0, 25884, 216, (229, 230, 218, 13, 90, 0)),
    "slp48": (5700000, 760, 1, 0, 0, 24711, 19, (213, 241, 272, 2, 31, 1)),
    "slp60": (5325000, 710, 1, 0, 0, 25017, 1, (286, 344, 49, 0, 31, 0)),
    "slp61": (5550000, 720, 150000, 20, 0, 25482, 72, (124, 88, 326, 103, 79, 0)),
    "slp66": (3300000, 439, 1, 0, 1, 15775, 1, (175, 143, 116, 5, 0, 0)),
    "slp67x": (1155000, 154, 1, 0, 0, 5374, 2, (72, 41, 40, 1, 0, 0)),
}
STAGES = ("W", "N1", "N2", "N3", "R", "?")
EEG_CHANNEL = {"slp01a": "C4-A1", "slp01b": "C4-A1", "slp02a": "O2-A1",
               "slp02b": "O2-A1", "slp32": "C4-A1", "slp37": "C4-A1", "slp41": "C4-A1"}
RK_TO_AASM = {"W": "W", "1": "N1", "2": "N2", "3": "N3", "4": "N3", "R": "R",
              "MT": "?", "M": "?"}


@pytest.fixture(scope="module")
def slpdb(slpdb_dir):
    return {rec.name: rec for rec in load_slpdb(slpdb_dir)}


@pytest.fixture
def record_copy(tmp_path, slpdb_dir):
    """A writable copy of slp01a's three files in tmp_path."""
    for file in slpdb_dir.glob("slp01a.*"):
        shutil.copyfile(file, tmp_path / file.name)
    return tmp_path


# ------------------------------------------------------------------ the real files
def test_every_record_read_in_order(slpdb):
    assert list(slpdb) == sorted(TABLE)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_counts_per_record(slpdb, name):
    sig_len, n_epochs, first, lead, trail, n_beats, n_other, stages = TABLE[name]
    rec = slpdb[name]
    assert rec.info["sig_len"] == sig_len and rec.info["fs"] == FS
    assert rec.n_epochs == n_epochs
    assert len(rec.beat_times) == n_beats == rec.info["n_beats"]
    assert rec.info["n_non_normal_beats"] == n_other
    assert sum(rec.info["beat_types"].values()) == n_beats
    assert rec.info["beat_types"].get("N", 0) == n_beats - n_other
    counts = Counter(rec.stages.tolist())
    assert tuple(counts.get(s, 0) for s in STAGES) == stages
    # cross-checks against the header: the scored epochs tile the record except for
    # late-starting (slp14, slp37, slp61) and early-ending (slp66) scoring
    assert sig_len % EPOCH == 0
    assert n_epochs == sig_len // EPOCH - lead - trail
    assert first // EPOCH == lead
    assert rec.info["scoring_start"] == pytest.approx(first / FS)
    assert rec.epoch_onsets[0] == pytest.approx(first / FS)
    assert rec.epoch_onsets[-1] + 30 == pytest.approx(sig_len / FS - trail * 30)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_stages_match_raw_annotations(slpdb, slpdb_dir, name):
    """Independent path: rdann + a hand-written R&K -> AASM table."""
    raw = wfdb.rdann(str(slpdb_dir / name), "st")
    tokens = [note.split()[0] for note in raw.aux_note]
    rec = slpdb[name]
    assert rec.info["rk_stages"].tolist() == tokens
    assert rec.stages.tolist() == [RK_TO_AASM[t] for t in tokens]
    np.testing.assert_allclose(rec.epoch_onsets, raw.sample / FS)
    assert rec.info["events"] == [tuple(note.split()[1:]) for note in raw.aux_note]
    beats = wfdb.rdann(str(slpdb_dir / name), "ecg")
    np.testing.assert_allclose(rec.beat_times, beats.sample / FS)


def test_totals(slpdb):
    stages = np.concatenate([rec.stages for rec in slpdb.values()])
    counts = Counter(stages.tolist())
    assert len(stages) == 7565
    assert counts == {"N2": 2897, "W": 2389, "N1": 1443, "R": 445, "N3": 379, "?": 12}
    rk = Counter(np.concatenate([rec.info["rk_stages"] for rec in slpdb.values()]).tolist())
    assert rk["MT"] == 12 and rk["M"] == 0 and rk["3"] == 282 and rk["4"] == 97
    # the data README says about 1 % MT/M; these 14 records have 0.16 %
    assert 0.001 < counts["?"] / len(stages) < 0.01
    assert sum(rec.info["n_beats"] for rec in slpdb.values()) == 271254


def test_rem_absent_only_where_documented(slpdb):
    without_rem = {name for name, rec in slpdb.items() if "R" not in rec.stages}
    assert without_rem == {"slp32", "slp66", "slp67x"}


def test_subjects(slpdb):
    subjects = {name: rec.subject for name, rec in slpdb.items()}
    assert subjects["slp01a"] == subjects["slp01b"] == "slp01"
    assert subjects["slp02a"] == subjects["slp02b"] == "slp02"
    assert all(subjects[n] == n for n in subjects if not n.startswith(("slp01", "slp02")))
    assert len(set(subjects.values())) == 12


def test_beat_times_increasing_and_inside_record(slpdb):
    for rec in slpdb.values():
        beats = rec.beat_times
        assert np.all(np.diff(beats) > 0), rec.name
        assert beats[0] >= 0 and beats[-1] < rec.info["sig_len"] / FS, rec.name
        # mean heart rate plausible for a sleeping adult: checks the 250 Hz clock
        rate = 60 * (len(beats) - 1) / (beats[-1] - beats[0])
        assert 40 < rate < 110, (rec.name, rate)


def test_epochs_30_s_apart(slpdb):
    for rec in slpdb.values():
        steps = np.diff(rec.epoch_onsets)
        # first annotation at sample 1 (4 ms) where scoring starts at the beginning
        expected = np.full(len(steps), 30.0)
        if rec.info["scoring_start"] < 1:
            expected[0] = 30 - 1 / FS
        np.testing.assert_allclose(steps, expected, err_msg=rec.name)
        assert rec.info["epoch_gaps"] == []
        assert rec.duration <= rec.info["duration"]


def test_header_facts(slpdb):
    for name, rec in slpdb.items():
        assert rec.info["eeg_channel"] == EEG_CHANNEL.get(name, "C3-O1")
        assert rec.eeg_channels == [rec.info["eeg_channel"]]
        assert rec.info["signal_names"][0] == "ECG"
        assert rec.info["sex"] == "M"
        assert rec.info["units"][0] == "mV"  # "-500" without units: WFDB default
    first = slpdb["slp01a"].info
    assert (first["age"], first["weight_kg"], first["study_id"]) == (44, 89.0, "32-01-89")
    assert len(slpdb["slp32"].info["signal_names"]) == 7
    assert slpdb["slp32"].info["base_date"] == "20/7/89"  # two-digit year, wfdb rejects it
    assert slpdb["slp67x"].info["age"] is None and slpdb["slp67x"].info["base_date"] is None
    ages = [rec.info["age"] for rec in slpdb.values() if rec.info["age"] is not None]
    assert min(ages) == 32 and max(ages) == 56


def test_events_kept(slpdb):
    rec = slpdb["slp01a"]
    assert rec.info["events"][0] == ("LA", "LA")
    assert rec.info["event_counts"] == {"H": 23, "HA": 15, "L": 64, "LA": 150}
    assert slpdb["slp41"].info["event_counts"] == {}


def test_no_waveforms_without_dat(slpdb, slpdb_dir, caplog):
    for rec in slpdb.values():
        assert rec.ecg is None and rec.eeg is None
        assert rec.fs_ecg is None and rec.fs_eeg is None
        assert rec.source == "real (PhysioNet slpdb)"
        assert rec.info["has_waveforms"] is False
    with caplog.at_level(logging.INFO, logger="sleepkd.io._slpdb"):
        load_slpdb(slpdb_dir, records="slp04")
    assert "waveforms are not available" in caplog.text and "slp04" in caplog.text


def test_labels_only_epochs_and_missing_waveform_error(slpdb):
    rec = slpdb["slp01a"]
    data = make_epochs([rec], signals=())
    assert len(data.y) == 239 and data.dropped["unscored"] == 1
    assert set(data.groups) == {"slp01"} and "REAL" in data.DESCR
    with pytest.raises(ValueError, match="'slp01a' has no ECG waveform.*slpdb"):
        make_epochs([rec])


# ------------------------------------------------------------------ selection, shipping
def test_records_argument(slpdb_dir):
    recs = load_slpdb(slpdb_dir, records=["slp04", "slp01a"])
    assert [r.name for r in recs] == ["slp04", "slp01a"]
    assert load_slpdb(slpdb_dir, records="slp67x")[0].n_epochs == 154
    with pytest.raises(ValueError, match="records is empty"):
        load_slpdb(slpdb_dir, records=[])


def test_shipped_copy_is_complete_and_identical(slpdb_dir):
    shipped = slpdb_path()
    files = sorted(p.name for p in shipped.iterdir())
    assert len(files) == 42
    assert {p.split(".")[1] for p in files} == {"hea", "ecg", "st"}
    assert {p.split(".")[0] for p in files} == set(TABLE)
    if slpdb_dir != shipped:
        match, mismatch, errors = filecmp.cmpfiles(slpdb_dir, shipped, files, shallow=False)
        assert mismatch == [] and errors == []
    readme = (shipped.parent / "README.md").read_text()
    for needed in ("ODC-By 1.0", "Ichimaru", "Goldberger", "slp03", "bb73f5e"):
        assert needed in readme


def test_default_path_is_shipped_copy():
    assert [r.name for r in load_slpdb(records="slp01a")] == ["slp01a"]


# ------------------------------------------------------------------ errors
def test_missing_record_names_file(slpdb_dir):
    with pytest.raises(FileNotFoundError, match=r"slp99\.hea"):
        load_slpdb(slpdb_dir, records=["slp01a", "slp99"])


@pytest.mark.parametrize("extension", ["ecg", "st"])
def test_missing_annotation_file_names_file(record_copy, extension):
    (record_copy / f"slp01a.{extension}").unlink()
    with pytest.raises(FileNotFoundError, match=rf"slp01a\.{extension}"):
        load_slpdb(record_copy)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="slpdb folder not found"):
        load_slpdb(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"No WFDB header \(.hea\)"):
        load_slpdb(tmp_path)


@pytest.mark.parametrize("extension", ["hea", "ecg", "st"])
@pytest.mark.parametrize("damage", ["random", "random_with_eof", "truncated", "text",
                                    "zeros"])
def test_corrupt_file_gives_error_naming_it(record_copy, extension, damage):
    file = record_copy / f"slp01a.{extension}"
    content = file.read_bytes()
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, len(content), dtype=np.uint8).tobytes()
    file.write_bytes({
        "random": noise,
        "random_with_eof": noise + b"\x00\x00",  # passes the end-of-file check
        "truncated": content[: len(content) // 2 + 1],
        "text": b"this is not a WFDB file\n" * 20,
        "zeros": bytes(len(content)),
    }[damage])
    with pytest.raises(ValueError, match=rf"slp01a\.{extension}"):
        load_slpdb(record_copy)


def test_unknown_stage_token_names_file(tmp_path):
    _write_fake_record(tmp_path, stages=["W", "Z OA", "R", "2"], with_signals=False)
    with pytest.raises(ValueError, match=r"Unknown R&K stage token\(s\) \['Z'\].*fake01\.st"):
        load_slpdb(tmp_path)


def test_gap_between_stage_annotations_reported(tmp_path, caplog):
    # the third annotation comes 60 s after the second: one epoch is missing
    _write_fake_record(tmp_path, stages=["W", "2", "R"], with_signals=False,
                       stage_samples=[1, EPOCH, 3 * EPOCH])
    with caplog.at_level(logging.WARNING, logger="sleepkd.io._slpdb"):
        (rec,) = load_slpdb(tmp_path)
    assert rec.info["epoch_gaps"] == [(1, 60.0)]
    assert "not 30 s after the previous one" in caplog.text and "fake01.st" in caplog.text
    np.testing.assert_allclose(rec.epoch_onsets, [1 / FS, 30, 90])


def test_missing_wfdb_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wfdb", None)
    with pytest.raises(ImportError, match=r'pip install "sleepkd\[wfdb\]"'):
        load_slpdb()


# ------------------------------------------------------------------ with .dat files
def _write_fake_record(folder, stages=("W", "1 OA", "R", "MT"), with_signals=True,
                       eeg_units="mV", date=None, stage_samples=None):
    """A 4-epoch slpdb-like record: ECG 1 Hz sine (mV), EEG 10 Hz sine (50 µV)."""
    n = len(stages) * EPOCH
    t = np.arange(n) / FS
    ecg = np.sin(2 * np.pi * 1.0 * t)
    eeg_uv = 50 * np.sin(2 * np.pi * 10.0 * t)
    eeg = eeg_uv / 1000 if eeg_units == "mV" else eeg_uv
    wfdb.wrsamp("fake01", fs=FS, units=["mV", "mmHg", eeg_units],
                sig_name=["ECG", "BP", "EEG (C4-A1)"],
                p_signal=np.c_[ecg, 100 + 0 * t, eeg], fmt=["212"] * 3,
                comments=["44 M 89 32-01-89"], write_dir=str(folder))
    if date:
        header = folder / "fake01.hea"
        lines = header.read_text().splitlines()
        lines[0] += f" 1:05:30 {date}"
        header.write_text("\n".join(lines) + "\n")
    if not with_signals:
        (folder / "fake01.dat").unlink()
    beats = np.arange(100, n, 250)
    wfdb.wrann("fake01", "ecg", beats, symbol=["N"] * (len(beats) - 1) + ["V"],
               write_dir=str(folder))
    if stage_samples is None:
        stage_samples = np.r_[1, np.arange(1, len(stages)) * EPOCH]
    wfdb.wrann("fake01", "st", np.asarray(stage_samples),
               symbol=['"'] * len(stages), aux_note=list(stages), write_dir=str(folder))
    return ecg, eeg_uv


@pytest.mark.parametrize("eeg_units, date", [("mV", None), ("uV", None), ("mV", "20/7/89")])
def test_reading_signals_when_dat_present(tmp_path, eeg_units, date):
    ecg, eeg_uv = _write_fake_record(tmp_path, eeg_units=eeg_units, date=date)
    (rec,) = load_slpdb(tmp_path)
    assert rec.info["has_waveforms"] is True
    assert rec.fs_ecg == rec.fs_eeg == FS
    assert rec.ecg.shape == (4 * EPOCH,) and rec.ecg.dtype == np.float32
    assert rec.eeg.shape == (1, 4 * EPOCH) and rec.eeg_channels == ["C4-A1"]
    # 12-bit samples: quantisation below 0.1 % of the amplitude
    np.testing.assert_allclose(rec.ecg, ecg, atol=1e-3)  # mV
    np.testing.assert_allclose(rec.eeg[0], eeg_uv, atol=0.1)  # µV
    assert rec.stages.tolist() == ["W", "N1", "R", "?"]
    assert rec.info["events"] == [(), ("OA",), (), ()]
    assert rec.info["beat_types"] == {"N": 119, "V": 1} and rec.info["n_non_normal_beats"] == 1
    assert rec.info["base_date"] == date


def test_fake_dat_record_through_make_epochs(tmp_path):
    ecg, eeg_uv = _write_fake_record(tmp_path)
    data = make_epochs(load_slpdb(tmp_path), fs_ecg=200, fs_eeg=100, context=1)
    assert data.X_ecg.shape == (3, 3 * 6000) and data.X_eeg.shape == (3, 1, 3 * 3000)
    assert data.y.tolist() == ["W", "N1", "R"] and data.dropped["unscored"] == 1
    # the middle epoch of row 1 is epoch 1 (from sample 7500 at 250 Hz = 6000 at 200 Hz)
    t = 30 + np.arange(6000) / 200
    np.testing.assert_allclose(data.X_ecg[1, 6000:12000], np.sin(2 * np.pi * t), atol=5e-3)


def test_corrupt_dat_names_file(tmp_path):
    _write_fake_record(tmp_path)
    dat = tmp_path / "fake01.dat"
    dat.write_bytes(dat.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"fake01\.dat"):
        load_slpdb(tmp_path)
