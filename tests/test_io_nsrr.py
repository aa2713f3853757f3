"""Tests for :func:`sleepkd.io.load_nsrr` on small EDF + XML files in the NSRR formats.

The files are written here: an EDF with several channels at different rates (ECG
256 Hz, EEG 128 Hz, airflow 10 Hz, as in SHHS / MESA), and the two XML dialects NSRR
ships (NSRR ``PSGAnnotation`` and Compumedics ``CMPStudyConfig``), with respiratory
and arousal events around the stages, unscored and movement codes.
"""

from __future__ import annotations

import builtins
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mne")
edfio = pytest.importorskip("edfio")

from sleepkd.io import load_nsrr  # noqa: E402
from sleepkd.io._common import pick_channel  # noqa: E402
from tests._edf_writers import nsrr_xml, profusion_xml  # noqa: E402

EPOCH = 30.0
RATES = {"ECG": 256.0, "EEG": 128.0, "EEG(sec)": 128.0, "AIRFLOW": 10.0}


def _signal(label: str, fs: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    if label.upper() in ("ECG", "EKG") or label.upper().startswith("ECG"):
        return 1.1 * np.sin(2 * np.pi * 1.2 * t)  # mV
    if label.upper().startswith("EEG") or "-" in label:
        return 40.0 * np.sin(2 * np.pi * 10.0 * t) + 10.0 * np.cos(2 * np.pi * 2.0 * t)
    return np.sin(2 * np.pi * 0.25 * t)


def write_edf(path, seconds, rates=RATES, annotations=()):
    """An EDF(+) with one channel per ``rates`` item; returns the written signals."""
    signals, data = [], {}
    for label, fs in rates.items():
        values = _signal(label, fs, seconds)
        unit = ("mV" if "ECG" in label.upper() or "EKG" in label.upper()
                else "uV" if label.upper().startswith("EEG") or "-" in label else "")
        signals.append(edfio.EdfSignal(values, sampling_frequency=fs, label=label,
                                       physical_dimension=unit))
        data[label] = values
    edf = edfio.Edf(signals, annotations=[edfio.EdfAnnotation(*a) for a in annotations])
    edf.write(path)
    return data


S = "Stages|Stages"
#: 10 epochs: W W N1 N2 N2 N2 N3 N3(R&K 4) R unscored(9)
STAGE_EVENTS = [
    (S, "Wake|0", 0.0, 60.0),
    ("Respiratory|Respiratory", "Hypopnea|Hypopnea", 65.5, 12.0),
    (S, "Stage 1 sleep|1", 60.0, 30.0),
    (S, "Stage 2 sleep|2", 90.0, 90.0),
    ("Arousals|Arousals", "Arousal|Arousal ()", 100.0, 5.0),
    (S, "Stage 3 sleep|3", 180.0, 30.0),
    (S, "Stage 4 sleep|4", 210.0, 30.0),
    (S, "REM sleep|5", 240.0, 30.0),
    (S, "Unscored|9", 270.0, 30.0),
]
EXPECTED = ["W", "W", "N1", "N2", "N2", "N2", "N3", "N3", "R", "?"]


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A 300-s SHHS-like EDF and its NSRR XML."""
    folder = tmp_path_factory.mktemp("nsrr")
    data = write_edf(folder / "shhs1-200001.edf", 300)
    (folder / "shhs1-200001-nsrr.xml").write_text(nsrr_xml(STAGE_EVENTS))
    return folder, data


def test_nsrr_xml_round_trip(night):
    folder, data = night
    rec = load_nsrr(folder / "shhs1-200001.edf", folder / "shhs1-200001-nsrr.xml")
    assert rec.name == rec.subject == "shhs1-200001"
    assert rec.stages.tolist() == EXPECTED and rec.n_epochs == 10
    np.testing.assert_allclose(rec.epoch_onsets, np.arange(10) * EPOCH)
    assert rec.epoch_length == EPOCH and rec.source.startswith("real")
    assert rec.info["xml_format"] == "nsrr"
    assert rec.info["stage_codes"].tolist() == ["0", "0", "1", "2", "2", "2", "3", "4",
                                                "5", "9"]
    assert rec.info["n_unscored"] == 1 and rec.info["unscored_codes"] == {"9": 1}
    assert rec.info["n_gap_epochs"] == 0 and rec.info["n_trimmed_epochs"] == 0
    assert rec.info["channels"] == RATES
    # each signal at its own rate, in mV / µV
    assert rec.fs_ecg == 256.0 and rec.ecg.shape == (300 * 256,)
    assert rec.fs_eeg == 128.0 and rec.eeg.shape == (1, 300 * 128)
    assert rec.eeg_channels == ["EEG"] and rec.info["ecg_channel"] == "ECG"
    assert rec.info["units"] == {"ECG": "mV", "EEG": "uV"}
    np.testing.assert_allclose(rec.ecg, data["ECG"], atol=np.ptp(data["ECG"]) / 2**15)
    np.testing.assert_allclose(rec.eeg[0], data["EEG"], atol=np.ptp(data["EEG"]) / 2**15)
    assert rec.beat_times is None


def test_channels_chosen_by_name_and_alias(night):
    folder, data = night
    rec = load_nsrr(folder / "shhs1-200001.edf", folder / "shhs1-200001-nsrr.xml",
                    ecg_channel="ekg", eeg_channel=["C3-A2", "eeg(sec)"])
    assert rec.info["ecg_channel"] == "ECG" and rec.eeg_channels == ["EEG(sec)"]
    np.testing.assert_allclose(rec.eeg[0], data["EEG(sec)"], atol=0.01)


@pytest.mark.parametrize("wanted, kind, expected", [
    (None, "ECG", "EKG"),
    ("ECG", "ECG", "EKG"),
    ("c3-a2", "EEG", "EEG C3-A2"),
    ("EEG C3-M2", "EEG", "EEG C3-A2"),
    ("C4-A1", "EEG", "C4-M1"),
    ("EEG C4-M1", "EEG", "C4-M1"),
    (None, "EEG", "C4-M1"),
    (["O1-M2", "c4 - m1"], "EEG", "C4-M1"),
])
def test_pick_channel_aliases(tmp_path, wanted, kind, expected):
    names = ["EKG", "EEG C3-A2", "C4-M1", "Thor"]
    assert pick_channel(names, wanted, kind, tmp_path / "x.edf") == expected


def test_pick_channel_defaults_and_missing(tmp_path):
    assert pick_channel(["ECG1", "ECG2"], None, "ECG", tmp_path) == "ECG1"
    assert pick_channel(["ECG R", "ECG L"], None, "ECG", tmp_path) == "ECG L"
    assert pick_channel(["EEG Fpz-Cz", "EOG"], None, "EEG", tmp_path) == "EEG Fpz-Cz"
    assert pick_channel(["EOG", "Resp"], None, "ECG", tmp_path) is None
    with pytest.raises(ValueError, match=r"No EEG channel 'O2-M1' in .*x\.edf; the "
                                         r"file has the channels \['EKG', 'Thor'\]"):
        pick_channel(["EKG", "Thor"], "O2-M1", "EEG", tmp_path / "x.edf")


def test_profusion_xml_mesa_like(tmp_path):
    rates = {"EKG": 256.0, "EEG3": 128.0, "Flow": 10.0}
    write_edf(tmp_path / "mesa-0001.edf", 300, rates)
    codes = [0, 0, 1, 2, 2, 3, 4, 5, 9, 6]
    (tmp_path / "mesa-0001-profusion.xml").write_text(profusion_xml(codes))
    rec = load_nsrr(tmp_path / "mesa-0001.edf", tmp_path / "mesa-0001-profusion.xml",
                    eeg_channel="EEG3", subject="mesa-0001-person")
    assert rec.info["xml_format"] == "profusion"
    assert rec.stages.tolist() == ["W", "W", "N1", "N2", "N2", "N3", "N3", "R", "?", "?"]
    assert rec.info["unscored_codes"] == {"6": 1, "9": 1}
    assert rec.subject == "mesa-0001-person"
    assert rec.info["ecg_channel"] == "EKG" and rec.fs_ecg == 256.0
    assert rec.eeg_channels == ["EEG3"] and rec.fs_eeg == 128.0


def test_gaps_are_unscored_and_trailing_unscored_trimmed(tmp_path):
    write_edf(tmp_path / "n.edf", 300)
    events = [(S, "Wake|0", 0, 60), (S, "Stage 2 sleep|2", 120, 60),  # gap 60-120
              (S, "REM sleep|5", 180, 120), (S, "Unscored|9", 300, 90)]  # past the end
    (tmp_path / "n.xml").write_text(nsrr_xml(events))
    rec = load_nsrr(tmp_path / "n.edf", tmp_path / "n.xml")
    assert rec.stages.tolist() == ["W", "W", "?", "?", "N2", "N2", "R", "R", "R", "R"]
    assert rec.info["n_gap_epochs"] == 2 and rec.info["n_trimmed_epochs"] == 3
    assert rec.info["unscored_codes"] == {"gap": 2}


def test_concept_without_code(tmp_path):
    write_edf(tmp_path / "n.edf", 60, {"ECG": 256.0})
    events = [(S, "Wake", 0, 30), ("Stages", "Stage 2 sleep", 30, 30)]
    (tmp_path / "n.xml").write_text(nsrr_xml(events))
    rec = load_nsrr(tmp_path / "n.edf", tmp_path / "n.xml")
    assert rec.stages.tolist() == ["W", "N2"] and rec.eeg is None


def test_works_with_make_epochs(night):
    from sleepkd.datasets import make_epochs

    folder, _ = night
    rec = load_nsrr(folder / "shhs1-200001.edf", folder / "shhs1-200001-nsrr.xml")
    data = make_epochs([rec], fs_ecg=64.0, fs_eeg=64.0)
    assert data.X_ecg.shape == (9, 30 * 64) and data.X_eeg.shape == (9, 1, 30 * 64)
    assert data.y.tolist() == EXPECTED[:-1]


# ------------------------------------------------------------------------ errors
def test_stages_longer_than_signal(tmp_path):
    write_edf(tmp_path / "short.edf", 240)
    (tmp_path / "long.xml").write_text(nsrr_xml(STAGE_EVENTS))
    with pytest.raises(ValueError, match=r"stages of .*long\.xml run to 270 s .* "
                                         r"longer than the signal of .*short\.edf \(240 s\)"):
        load_nsrr(tmp_path / "short.edf", tmp_path / "long.xml")
    (tmp_path / "long-p.xml").write_text(profusion_xml([0] * 9))
    with pytest.raises(ValueError, match=r"long-p\.xml run to 270 s"):
        load_nsrr(tmp_path / "short.edf", tmp_path / "long-p.xml")


@pytest.mark.parametrize("text, match", [
    ("<PSGAnnotation><ScoredEvents><ScoredEvent>", r"Malformed XML in .*bad\.xml"),
    ("not xml at all", r"Malformed XML in .*bad\.xml"),
    ("<Annotations><Event/></Annotations>", r"neither an NSRR XML .* root is <Annotations>"),
    (nsrr_xml([("Respiratory|Respiratory", "Hypopnea|Hypopnea", 0, 10)]),
     r"bad\.xml holds no sleep-stage events"),
    (nsrr_xml([(S, "Stage 2 sleep|2", 0, 30), (S, "Odd|12", 30, 30)]),
     r"Unknown sleep-stage code\(s\) \['12'\] in .*bad\.xml"),
    (profusion_xml([0, 1, "X"]), r"Unknown sleep-stage code\(s\) \['X'\]"),
    (nsrr_xml([(S, "Wake|0", 0, 45)]), r"do not last a whole number of 30-s epochs"),
    (nsrr_xml([(S, "Wake|0", 0, 30), (S, "Stage 2 sleep|2", 45, 30)]),
     r"not on the 30-s epoch grid"),
    (nsrr_xml([(S, "Wake|0", 0, 60), (S, "Stage 2 sleep|2", 30, 30)]),
     r"two different stages for the epoch at 30 s"),
    (nsrr_xml([(S, "Wake|0", "x", 30)]), r"no valid <Start> / <Duration>"),
    (nsrr_xml([(S, "Wake|0", 0, 30)], epoch_length="abc"), r"<EpochLength> of"),
    ("<CMPStudyConfig><EpochLength>30</EpochLength></CMPStudyConfig>",
     r"no <SleepStages>"),
])
def test_bad_xml(night, tmp_path, text, match):
    folder, _ = night
    (tmp_path / "bad.xml").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_nsrr(folder / "shhs1-200001.edf", tmp_path / "bad.xml")


def test_missing_channel_lists_channels(night):
    folder, _ = night
    with pytest.raises(ValueError, match=r"No ECG channel 'ECG2' in .*shhs1-200001\.edf;"
                                         r" the file has the channels \['ECG', 'EEG', "
                                         r"'EEG\(sec\)', 'AIRFLOW'\]"):
        load_nsrr(folder / "shhs1-200001.edf", folder / "shhs1-200001-nsrr.xml",
                  ecg_channel="ECG2")


def test_no_ecg_or_eeg_by_name(tmp_path):
    write_edf(tmp_path / "resp.edf", 60, {"Thor": 10.0, "Abdo": 10.0})
    (tmp_path / "n.xml").write_text(nsrr_xml([(S, "Wake|0", 0, 60)]))
    with pytest.raises(ValueError, match=r"No ECG or EEG channel .*\['Thor', 'Abdo'\]"):
        load_nsrr(tmp_path / "resp.edf", tmp_path / "n.xml")


def test_truncated_and_corrupt_edf(night, tmp_path):
    folder, _ = night
    content = (folder / "shhs1-200001.edf").read_bytes()
    (tmp_path / "cut.edf").write_bytes(content[: len(content) // 2])
    xml = folder / "shhs1-200001-nsrr.xml"
    with pytest.raises(ValueError, match=r"cut\.edf is truncated: the header announces "
                                         r"300 data records"):
        load_nsrr(tmp_path / "cut.edf", xml)
    (tmp_path / "text.edf").write_text("hello, I am not an EDF file" * 20)
    with pytest.raises(ValueError, match=r"text\.edf is not an EDF file"):
        load_nsrr(tmp_path / "text.edf", xml)
    (tmp_path / "tiny.edf").write_bytes(content[:100])
    with pytest.raises(ValueError, match=r"tiny\.edf is not an EDF file: only 100 bytes"):
        load_nsrr(tmp_path / "tiny.edf", xml)
    (tmp_path / "head.edf").write_bytes(content[:600])
    with pytest.raises(ValueError, match=r"head\.edf is truncated inside its header"):
        load_nsrr(tmp_path / "head.edf", xml)


def test_missing_files(night, tmp_path):
    folder, _ = night
    with pytest.raises(FileNotFoundError, match=r"EDF file not found: .*none\.edf"):
        load_nsrr(tmp_path / "none.edf", folder / "shhs1-200001-nsrr.xml")
    with pytest.raises(FileNotFoundError, match=r"XML annotation file not found"):
        load_nsrr(folder / "shhs1-200001.edf", tmp_path / "none.xml")


def test_missing_mne_names_extra(night, monkeypatch):
    folder, _ = night
    real_import = builtins.__import__

    def no_mne(name, *args, **kwargs):
        if name == "mne" or name.startswith("mne."):
            raise ImportError("No module named 'mne'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mne)
    with pytest.raises(ImportError, match=r'pip install "sleepkd\[edf\]"'):
        load_nsrr(folder / "shhs1-200001.edf", folder / "shhs1-200001-nsrr.xml")


def test_io_package_is_light_and_exports():
    code = ("import sys, sleepkd.io as io; assert sorted(io.__all__) == "
            "['NightStore', 'RecordingSource', 'StoreWindows', 'discover_sources', "
            "'load_edf', 'load_model_file', 'load_nsrr', 'load_slpdb', 'prepare_store', "
            "'read_ecg', 'save_model_file'], "
            "io.__all__; "
            "print(sorted(m for m in ('mne', 'wfdb', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
    import sleepkd.datasets
    import sleepkd.io

    for name in sleepkd.io.__all__:
        assert callable(getattr(sleepkd.io, name))
    assert sleepkd.datasets.load_slpdb is sleepkd.io.load_slpdb
    assert sleepkd.datasets.read_ecg is sleepkd.io.read_ecg
