"""Tests for :func:`sleepkd.io.load_edf`: EDF+ hypnograms (Sleep-EDF, MASS) and tables.

Everything is written here: Sleep-EDF-like PSG files (EEG 100 Hz, respiration 1 Hz,
no ECG) with a separate EDF+ hypnogram whose annotations span several epochs and
end past the signal; MASS-like files (ECG 256 Hz, EEG 128 Hz, respiration 10 Hz) with
20-s epochs starting off zero; EDF+ files with their own annotations; CSV/TSV tables.
"""

from __future__ import annotations

import datetime

import numpy as np
import pytest

pytest.importorskip("mne")
edfio = pytest.importorskip("edfio")

from sleepkd.io import load_edf  # noqa: E402

START = datetime.time(22, 0, 0)
SLEEP_EDF = {"EEG Fpz-Cz": 100.0, "EEG Pz-Oz": 100.0, "Resp oro-nasal": 1.0}
MASS = {"ECG ECGI": 256.0, "EEG C3-CLE": 128.0, "Resp Belt Thor": 10.0}


def _signal(label: str, fs: float, seconds: float) -> np.ndarray:
    t = np.arange(int(round(seconds * fs))) / fs
    if label.upper().startswith(("ECG", "EKG")):
        return 1.3 * np.sin(2 * np.pi * 1.1 * t)  # mV
    if label.upper().startswith("EEG"):
        return 30.0 * np.sin(2 * np.pi * 9.0 * t) + 5.0  # µV
    return np.cos(2 * np.pi * 0.2 * t)


def write_psg(path, seconds, rates, annotations=(), start=START):
    """An EDF(+) file; ``annotations`` are (onset, duration, text)."""
    signals, data = [], {}
    for label, fs in rates.items():
        values = _signal(label, fs, seconds)
        unit = ("mV" if label.upper().startswith("ECG") else
                "uV" if label.upper().startswith("EEG") else "")
        signals.append(edfio.EdfSignal(values, sampling_frequency=fs, label=label,
                                       physical_dimension=unit))
        data[label] = values
    edf = edfio.Edf(signals, starttime=start,
                    annotations=[edfio.EdfAnnotation(*a) for a in annotations])
    edf.write(path)
    return data


def write_hypnogram(path, annotations, start=START):
    """An annotation-only EDF+ file (like Sleep-EDF's ``*-Hypnogram.edf``)."""
    edfio.Edf([], starttime=start,
              annotations=[edfio.EdfAnnotation(*a) for a in annotations]).write(path)


#: Sleep-EDF style: runs of several epochs; the final "?" runs past the signal (330 s).
SLEEP_EDF_STAGES = [
    (0, 60, "Sleep stage W"), (60, 30, "Sleep stage 1"), (90, 90, "Sleep stage 2"),
    (180, 30, "Sleep stage 3"), (210, 30, "Sleep stage 4"), (240, 30, "Sleep stage R"),
    (270, 30, "Movement time"), (300, 300, "Sleep stage ?"),
]
SLEEP_EDF_EXPECTED = ["W", "W", "N1", "N2", "N2", "N2", "N3", "N3", "R", "?", "?"]


@pytest.fixture(scope="module")
def sleep_edf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sleep-edf")
    data = write_psg(folder / "SC4001E0-PSG.edf", 330, SLEEP_EDF)
    write_hypnogram(folder / "SC4001EC-Hypnogram.edf", SLEEP_EDF_STAGES)
    return folder, data


def test_sleep_edf_hypnogram(sleep_edf):
    folder, data = sleep_edf
    rec = load_edf(folder / "SC4001E0-PSG.edf", folder / "SC4001EC-Hypnogram.edf")
    assert rec.stages.tolist() == SLEEP_EDF_EXPECTED and rec.n_epochs == 11
    np.testing.assert_allclose(rec.epoch_onsets, np.arange(11) * 30.0)
    assert rec.epoch_length == 30.0 and rec.name == "SC4001E0-PSG"
    assert rec.info["hypnogram_format"] == "edf+"
    assert rec.info["n_unscored"] == 2
    assert rec.info["unscored_labels"] == {"Movement time": 1, "Sleep stage ?": 1}
    assert rec.info["n_trimmed_epochs"] == 9 and rec.info["n_gap_epochs"] == 0
    assert rec.info["stage_labels"][2] == "Sleep stage 1"
    # no ECG in Sleep-EDF: ecg is None, the EEG is Fpz-Cz at its own 100 Hz
    assert rec.ecg is None and rec.fs_ecg is None
    assert rec.eeg_channels == ["EEG Fpz-Cz"] and rec.fs_eeg == 100.0
    assert rec.eeg.shape == (1, 33000)
    np.testing.assert_allclose(rec.eeg[0], data["EEG Fpz-Cz"], atol=0.01)
    assert rec.info["channels"] == SLEEP_EDF
    assert len(rec.info["files"]) == 2


def test_sleep_edf_other_eeg_and_missing_ecg(sleep_edf):
    folder, _ = sleep_edf
    rec = load_edf(folder / "SC4001E0-PSG.edf", folder / "SC4001EC-Hypnogram.edf",
                   eeg_channel="pz-oz")
    assert rec.eeg_channels == ["EEG Pz-Oz"]
    with pytest.raises(ValueError, match=r"No ECG channel 'ECG' in .*SC4001E0-PSG\.edf;"
                                         r" the file has the channels \['EEG Fpz-Cz', "
                                         r"'EEG Pz-Oz', 'Resp oro-nasal'\]"):
        load_edf(folder / "SC4001E0-PSG.edf", folder / "SC4001EC-Hypnogram.edf",
                 ecg_channel="ECG")


def test_hypnogram_starting_later_is_shifted(tmp_path):
    write_psg(tmp_path / "psg.edf", 120, {"EEG Fpz-Cz": 100.0})
    write_hypnogram(tmp_path / "hyp.edf", [(0, 30, "Sleep stage 2"),
                                           (30, 30, "Sleep stage R")],
                    start=datetime.time(22, 1, 0))  # one minute after the PSG
    rec = load_edf(tmp_path / "psg.edf", tmp_path / "hyp.edf")
    assert rec.stages.tolist() == ["N2", "R"]
    np.testing.assert_allclose(rec.epoch_onsets, [60.0, 90.0])


def test_mass_20s_epochs_with_gap(tmp_path):
    data = write_psg(tmp_path / "01-01-0001 PSG.edf", 200, MASS)
    onsets = 4.0 + 20.0 * np.arange(9)
    labels = ["W", "1", "2", "2", "3", "R", "?", "2", "W"]
    annotations = [(float(o), 20.0, f"Sleep stage {s}")
                   for i, (o, s) in enumerate(zip(onsets, labels)) if i != 3]  # gap
    write_hypnogram(tmp_path / "01-01-0001 Base.edf", annotations)
    rec = load_edf(tmp_path / "01-01-0001 PSG.edf", tmp_path / "01-01-0001 Base.edf")
    assert rec.epoch_length == 20.0
    np.testing.assert_allclose(rec.epoch_onsets, onsets)
    assert rec.stages.tolist() == ["W", "N1", "N2", "?", "N3", "R", "?", "N2", "W"]
    assert rec.info["n_gap_epochs"] == 1
    assert rec.info["unscored_labels"] == {"Sleep stage ?": 1, "gap": 1}
    assert rec.info["ecg_channel"] == "ECG ECGI" and rec.fs_ecg == 256.0
    assert rec.ecg.shape == (200 * 256,) and rec.ecg.dtype == np.float32
    np.testing.assert_allclose(rec.ecg, data["ECG ECGI"], atol=1e-3)
    assert rec.eeg_channels == ["EEG C3-CLE"] and rec.fs_eeg == 128.0
    assert rec.info["units"] == {"ECG ECGI": "mV", "EEG C3-CLE": "uV"}
    with pytest.raises(ValueError, match=r"not on the 30-s epoch grid"):
        load_edf(tmp_path / "01-01-0001 PSG.edf", tmp_path / "01-01-0001 Base.edf",
                 epoch_length=30)


def test_embedded_annotations_and_other_events(tmp_path):
    annotations = [(0, 30, "Sleep stage W"), (12, 3, "EEG arousal"),
                   (30, 60, "Sleep stage 2"), (40, 0, "Lights off"),
                   (90, 30, "Sleep stage N3"), (150, 30, "Sleep stage R")]
    write_psg(tmp_path / "night.edf", 180, MASS, annotations)
    rec = load_edf(tmp_path / "night.edf")
    assert rec.stages.tolist() == ["W", "N2", "N2", "N3", "?", "R"]
    assert rec.info["other_annotations"] == {"EEG arousal": 1, "Lights off": 1}
    assert rec.info["n_gap_epochs"] == 1 and rec.info["files"] == [
        str(tmp_path / "night.edf")]


def test_make_epochs_on_mass_like_night(tmp_path):
    from sleepkd.datasets import make_epochs

    write_psg(tmp_path / "n.edf", 120, MASS,
              [(0, 60, "Sleep stage W"), (60, 60, "Sleep stage 2")])
    data = make_epochs([load_edf(tmp_path / "n.edf", subject="s1")], fs_ecg=64,
                       fs_eeg=64)
    assert data.X_ecg.shape == (4, 1920) and data.y.tolist() == ["W", "W", "N2", "N2"]
    assert set(data.groups.tolist()) == {"s1"}


# ------------------------------------------------------------------------ tables
@pytest.fixture(scope="module")
def mass_psg(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    write_psg(folder / "psg.edf", 150, MASS)
    return folder / "psg.edf"


def test_csv_onset_duration_stage(mass_psg, tmp_path):
    (tmp_path / "hyp.csv").write_text(
        "onset,duration,stage\n0,60,W\n60,30,N1\n90,30,MT\n120,30,R\n")
    rec = load_edf(mass_psg, tmp_path / "hyp.csv")
    assert rec.stages.tolist() == ["W", "W", "N1", "?", "R"]
    assert rec.info["hypnogram_format"] == "table"
    assert rec.info["unscored_labels"] == {"MT": 1}


def test_tsv_without_duration_and_with_gap(mass_psg, tmp_path):
    (tmp_path / "hyp.tsv").write_text("Start\tDescription\n0\tSleep stage W\n"
                                      "60\tSleep stage 3\n90\tSleep stage 4\n")
    rec = load_edf(mass_psg, tmp_path / "hyp.tsv")
    assert rec.stages.tolist() == ["W", "?", "N3", "N3"]
    assert rec.info["n_gap_epochs"] == 1


@pytest.mark.parametrize("text, kwargs, expected", [
    ("stage\nW\nN1\nN2\nN3\nR\n", {}, ["W", "N1", "N2", "N3", "R"]),
    ("W\n2\n2\n?\nR\n", {}, ["W", "N2", "N2", "?", "R"]),  # no header
    ("0\n1\n4\n", {"stage_map": {"0": "W", "1": "N1", "4": "R"}}, ["W", "N1", "R"]),
    ("W\nN2\nN2\nR\nR\nR\nW\n", {"epoch_length": 20}, ["W", "N2", "N2", "R", "R",
                                                        "R", "W"]),
])
def test_one_stage_per_line(mass_psg, tmp_path, text, kwargs, expected):
    (tmp_path / "hyp.txt").write_text(text)
    rec = load_edf(mass_psg, tmp_path / "hyp.txt", **kwargs)
    assert rec.stages.tolist() == expected
    length = kwargs.get("epoch_length", 30)
    assert rec.epoch_length == length
    np.testing.assert_allclose(rec.epoch_onsets, np.arange(len(expected)) * length)


@pytest.mark.parametrize("text, match", [
    ("stage\nW\n0\nN2\n", r"Unknown sleep-stage label\(s\) \['0'\] .*hyp\.csv.*stage_map"),
    ("onset,duration,stage\n0,30,W\nabc,30,N2\n", r"Column 'onset' .* not numbers"),
    ("onset,duration,stage\n0,30,W\n30,45,N2\n", r"neither a 30-s nor a 20-s"),
    ("onset,duration,stage\n0,60,W\n30,30,N2\n", r"two different stages for the "
                                                 r"epoch at 30 s"),
    ("onset,duration,stage\n0,30,W\n120,60,N2\n", r"stages of .*hyp\.csv run to 180 s"
                                                  r" .*longer than the signal .*150 s"),
    ("onset,label\n0,W\n", None),  # fine: a stage column by another name
    ("a,b\n1,2\n", r"has columns \['a', 'b'\]"),
    ("\n\n", r"hyp\.csv is empty"),
])
def test_bad_tables(mass_psg, tmp_path, text, match):
    (tmp_path / "hyp.csv").write_text(text)
    if match is None:
        assert load_edf(mass_psg, tmp_path / "hyp.csv").stages.tolist() == ["W"]
        return
    with pytest.raises(ValueError, match=match):
        load_edf(mass_psg, tmp_path / "hyp.csv")


# ------------------------------------------------------------------------ errors
def test_bad_edf_annotations(tmp_path):
    write_psg(tmp_path / "psg.edf", 90, {"EEG Fpz-Cz": 100.0})
    write_hypnogram(tmp_path / "odd.edf", [(0, 30, "Sleep stage W"),
                                           (30, 30, "Sleep stage X")])
    with pytest.raises(ValueError, match=r"Unknown sleep-stage annotation\(s\) "
                                         r"\['Sleep stage X'\] in .*odd\.edf"):
        load_edf(tmp_path / "psg.edf", tmp_path / "odd.edf")
    write_hypnogram(tmp_path / "none.edf", [(0, 30, "Lights off")])
    with pytest.raises(ValueError, match=r"No sleep-stage annotation in .*none\.edf"):
        load_edf(tmp_path / "psg.edf", tmp_path / "none.edf")
    write_hypnogram(tmp_path / "long.edf", [(0, 120, "Sleep stage 2")])
    with pytest.raises(ValueError, match=r"long\.edf run to 120 s .*psg\.edf \(90 s\)"):
        load_edf(tmp_path / "psg.edf", tmp_path / "long.edf")
    with pytest.raises(ValueError, match=r"No sleep-stage annotation in .*psg\.edf"):
        load_edf(tmp_path / "psg.edf")  # no annotations of its own
    write_hypnogram(tmp_path / "odd-grid.edf", [(0, 25, "Sleep stage W")])
    with pytest.raises(ValueError, match=r"neither a 30-s nor a 20-s epoch grid"):
        load_edf(tmp_path / "psg.edf", tmp_path / "odd-grid.edf")


def test_truncated_edf_and_hypnogram(sleep_edf, tmp_path):
    folder, _ = sleep_edf
    content = (folder / "SC4001E0-PSG.edf").read_bytes()
    (tmp_path / "cut.edf").write_bytes(content[:-1000])
    with pytest.raises(ValueError, match=r"cut\.edf is truncated: .*330 data records"):
        load_edf(tmp_path / "cut.edf", folder / "SC4001EC-Hypnogram.edf")
    hyp = (folder / "SC4001EC-Hypnogram.edf").read_bytes()
    (tmp_path / "cut-hyp.edf").write_bytes(hyp[:-50])
    with pytest.raises(ValueError, match=r"cut-hyp\.edf is truncated"):
        load_edf(folder / "SC4001E0-PSG.edf", tmp_path / "cut-hyp.edf")


def test_bad_arguments(sleep_edf, tmp_path):
    folder, _ = sleep_edf
    psg = folder / "SC4001E0-PSG.edf"
    with pytest.raises(FileNotFoundError, match=r"Hypnogram file not found"):
        load_edf(psg, tmp_path / "missing.edf")
    with pytest.raises(ValueError, match=r"epoch_length must be a positive number"):
        load_edf(psg, folder / "SC4001EC-Hypnogram.edf", epoch_length=0)
    (tmp_path / "hyp.csv").write_text("onset,duration,stage\n0,30,W\n30,45,N2\n")
    with pytest.raises(ValueError, match=r"hyp\.csv: 1 stage annotation\(s\) do not "
                                         r"last a whole number of 30-s epochs"):
        load_edf(psg, tmp_path / "hyp.csv", epoch_length=30)
    with pytest.raises(ValueError, match=r"stage_map must be a dict"):
        load_edf(psg, folder / "SC4001EC-Hypnogram.edf", stage_map=["W"])
    with pytest.raises(ValueError, match=r"eeg_channel must be a channel name"):
        load_edf(psg, folder / "SC4001EC-Hypnogram.edf", eeg_channel=3)
