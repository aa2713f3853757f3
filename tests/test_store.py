"""Tests for the night store: :func:`sleepkd.io.prepare_store`, :class:`NightStore`,
:class:`StoreWindows`, the ``sleepkd prepare`` command and the Dask path.

The cohort is written here: five generated 30-min nights (synthetic ECG 256 Hz and
EEG 128 Hz from :func:`~sleepkd.datasets.make_synthetic_psg`) as EDF with NSRR,
plain-named NSRR or Profusion XML, or a CSV hypnogram; one night whose ECG is noise
(no R-peaks); one slpdb record (real beat annotations, no waveforms); a corrupt EDF
and a truncated EDF.
"""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("mne")
pytest.importorskip("edfio")
pytest.importorskip("wfdb")

from sleepkd.distillation._sequences import NightIndex, NightWindows  # noqa: E402
from sleepkd.io import (  # noqa: E402
    NightStore,
    RecordingSource,
    StoreWindows,
    discover_sources,
    load_nsrr,
    prepare_store,
)
from sleepkd.io import _store  # noqa: E402
from sleepkd.signal import detect_rpeaks, instantaneous_heart_rate  # noqa: E402
from tests._edf_writers import (  # noqa: E402
    nsrr_xml,
    profusion_xml,
    stages_to_nsrr_events,
    write_edf_signals,
)

N_EPOCHS = 60  # 30-min nights
UNSCORED_AT = {"night00": [0, 1], "night01": [30], "night02": [], "night03": [57, 58, 59],
               "night05": [10, 11, 12]}
CODES = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "R": 5, "?": 9}
OK_EDF = sorted(UNSCORED_AT)
OK = sorted(OK_EDF + ["slp01a"])
BAD = {"corrupt": "is not an EDF file", "truncated": "is truncated",
       "night04": "no R-peaks detected"}


def _write_night(folder, name, rec, stages, xml="nsrr", noise_ecg=False):
    ecg = rec.ecg.astype(np.float64)
    if noise_ecg:
        ecg = np.random.default_rng(1).normal(0, 0.2, ecg.size)
    write_edf_signals(folder / f"{name}.edf", [("ECG", ecg, rec.fs_ecg, "mV"),
                                               ("EEG C4-A1", rec.eeg[0], rec.fs_eeg, "uV")])
    if xml == "nsrr":
        (folder / f"{name}-nsrr.xml").write_text(nsrr_xml(stages_to_nsrr_events(stages)))
    elif xml == "plain":
        (folder / f"{name}.xml").write_text(nsrr_xml(stages_to_nsrr_events(stages)))
    elif xml == "profusion":
        (folder / f"{name}-profusion.xml").write_text(
            profusion_xml([CODES[s] for s in stages]))
    else:  # one stage per line
        (folder / f"{name}.csv").write_text("stage\n" + "\n".join(stages) + "\n")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, slpdb_dir):
    """The input folder and what was written into it."""
    from sleepkd.datasets import make_synthetic_psg

    folder = tmp_path_factory.mktemp("cohort")
    recs = make_synthetic_psg(n_subjects=6, hours=N_EPOCHS / 120, fs_ecg=256.0,
                              fs_eeg=128.0, return_recordings=True,
                              random_state=0).recordings
    written = {}
    kinds = {"night00": "nsrr", "night01": "plain", "night02": "profusion",
             "night03": "nsrr", "night04": "nsrr", "night05": "csv"}
    for rec, (name, kind) in zip(recs, kinds.items()):
        stages = rec.stages.astype(str).copy()
        stages[UNSCORED_AT.get(name, [])] = "?"
        _write_night(folder, name, rec, stages.tolist(), kind, noise_ecg=name == "night04")
        written[name] = {"stages": stages, "beats": rec.beat_times}
    (folder / "wfdb").mkdir()
    for ext in ("hea", "ecg", "st"):
        shutil.copy(slpdb_dir / f"slp01a.{ext}", folder / "wfdb" / f"slp01a.{ext}")
    (folder / "corrupt.edf").write_bytes(np.random.default_rng(0).bytes(5000))
    (folder / "corrupt-nsrr.xml").write_text(nsrr_xml(stages_to_nsrr_events(["W"] * 4)))
    _write_night(folder, "truncated", recs[0], recs[0].stages.astype(str).tolist())
    edf = folder / "truncated.edf"
    edf.write_bytes(edf.read_bytes()[: edf.stat().st_size // 2])
    return folder, written


@pytest.fixture(scope="module")
def prepared(cohort, tmp_path_factory):
    """The cohort prepared with the joblib path (n_jobs=1)."""
    folder, _ = cohort
    out = tmp_path_factory.mktemp("store")
    sources = discover_sources(folder)
    qc = prepare_store(sources, out, progress=False)
    return out, sources, qc


def test_discover_sources_finds_every_layout(cohort):
    folder, _ = cohort
    sources = {s.name: s for s in discover_sources(folder)}
    assert sorted(sources) == sorted(OK + list(BAD))
    assert sources["slp01a"].kind == "slpdb"
    assert sources["night05"].kind == "edf"
    assert sources["night05"].paths[1].endswith("night05.csv")
    for name, suffix in [("night00", "-nsrr.xml"), ("night01", "night01.xml"),
                         ("night02", "-profusion.xml"), ("corrupt", "-nsrr.xml")]:
        assert sources[name].kind == "nsrr" and sources[name].paths[1].endswith(suffix)
    assert discover_sources(folder / "wfdb", subject=lambda n: "p1")[0].subject == "p1"
    (folder / "empty").mkdir(exist_ok=True)
    with pytest.raises(ValueError, match="No recording found"):
        discover_sources(folder / "empty")


def _expected_rows(folder, written, slpdb_dir):
    """The QC rows, computed from the written files with the public pieces."""
    from sleepkd.datasets import load_slpdb

    rows = {}
    for name in OK_EDF:
        stages = written[name]["stages"]
        if name == "night05":
            from sleepkd.io import load_edf

            rec = load_edf(folder / f"{name}.edf", folder / f"{name}.csv")
        else:
            xml = next(p for p in folder.glob(f"{name}*.xml"))
            rec = load_nsrr(folder / f"{name}.edf", xml)
        beats = detect_rpeaks(rec.ecg, rec.fs_ecg) / rec.fs_ecg
        # the detector finds the beats that were written (a few missed at artefacts)
        assert abs(len(beats) - len(written[name]["beats"])) <= 0.02 * len(beats)
        _, valid, report = instantaneous_heart_rate(beats, fs=2.0, n_epochs=N_EPOCHS)
        n_unscored = int(np.sum(stages == "?"))
        rows[name] = dict(status="ok", n_epochs=N_EPOCHS, n_scored=N_EPOCHS - n_unscored,
                          n_unscored=n_unscored, n_beats=len(beats), beats_from="ecg",
                          n_rejected_beats=report["n_rejected_beats"],
                          gap_seconds=round(report["gap_seconds"], 3),
                          n_invalid_hr_epochs=int(np.sum(~valid)), duration_h=0.5,
                          n_dropped_epochs=0)
    rec = load_slpdb(slpdb_dir, records="slp01a")[0]
    end = int(np.ceil(rec.duration / 30 - 1e-9))
    _, valid, report = instantaneous_heart_rate(rec.beat_times, fs=2.0, n_epochs=end)
    grid = np.rint(rec.epoch_onsets / 30).astype(int)
    n_unscored = int(np.sum(rec.stages == "?"))  # movement time
    rows["slp01a"] = dict(status="ok", subject="slp01", n_epochs=240,
                          n_scored=240 - n_unscored, n_unscored=n_unscored, n_beats=7806,
                          beats_from="annotations",
                          n_rejected_beats=report["n_rejected_beats"],
                          gap_seconds=round(report["gap_seconds"], 3),
                          n_invalid_hr_epochs=int(np.sum(~valid[grid])),
                          duration_h=round(rec.duration / 3600, 6), n_dropped_epochs=0)
    return rows


def test_qc_table_is_exact(cohort, prepared, slpdb_dir):
    folder, written = cohort
    out, _, qc = prepared
    assert list(qc.columns) == list(_store.QC_COLUMNS)
    assert qc["name"].tolist() == sorted(OK + list(BAD))
    table = qc.set_index("name")
    for name, expected in _expected_rows(folder, written, slpdb_dir).items():
        for column, value in expected.items():
            assert table.loc[name, column] == value, (name, column)
        assert table.loc[name, "reason"] == ""
    for name, reason in BAD.items():
        assert table.loc[name, "status"] == "skipped"
        assert reason in table.loc[name, "reason"], table.loc[name, "reason"]
        assert pd.isna(table.loc[name, "n_epochs"])
        assert not (out / "nights" / name).exists()
    assert table.loc["truncated", "reason"].startswith("ValueError")
    # the file on disk is the same table
    on_disk = pd.read_csv(out / "qc.csv", keep_default_na=False, na_values=[""])
    assert on_disk["name"].tolist() == qc["name"].tolist()
    pd.testing.assert_frame_equal(on_disk[["n_beats", "gap_seconds"]].astype(float),
                                  qc[["n_beats", "gap_seconds"]].astype(float))
    assert NightStore(out).qc.equals(qc)
    assert not [p for p in (out / "nights").iterdir() if p.name.startswith(".")]


def test_night_arrays_and_memory_map(cohort, prepared):
    folder, written = cohort
    out, _, _ = prepared
    store = NightStore(out)
    assert store.names == OK and len(store) == len(OK) and "night00" in store
    night = store.load("night01")
    for key in ("hr", "eeg", "stages", "onsets", "beats", "hr_valid"):
        assert isinstance(night[key], np.memmap), key
    assert "ecg" not in night  # fs_ecg=None: no waveform stored
    assert night["hr"].shape == (N_EPOCHS, 60) and night["hr"].dtype == np.float32
    assert night["eeg"].shape == (N_EPOCHS, 1, 3000)  # resampled 128 -> 100 Hz
    assert night["stages"].tolist() == written["night01"]["stages"].tolist()
    np.testing.assert_allclose(night["onsets"], np.arange(N_EPOCHS) * 30.0)
    hr, valid, _ = instantaneous_heart_rate(night["beats"], fs=2.0, n_epochs=N_EPOCHS)
    np.testing.assert_array_equal(night["hr"], hr.astype(np.float32))
    np.testing.assert_array_equal(night["hr_valid"], valid)
    meta = night["meta"]
    assert meta["complete"] and meta["source"].startswith("real (NSRR")
    assert meta["eeg_channels"] == ["EEG C4-A1"] and meta["fs_eeg"] == 100.0
    assert not isinstance(store.load("night01", mmap=False)["hr"], np.memmap)
    assert "eeg" not in store.load("slp01a")  # no waveforms in the shipped slpdb
    data = store.to_arrays(["night00", "night02"], signals=("hr", "eeg"), scheme="4class")
    assert data.X_hr.shape == (2 * N_EPOCHS, 60) and data.X_eeg.shape[1:] == (1, 3000)
    assert set(data.y.tolist()) <= {"W", "L", "D", "R", "?"}
    assert data.records.tolist() == ["night00"] * N_EPOCHS + ["night02"] * N_EPOCHS
    with pytest.raises(ValueError, match="no 'eeg' array"):
        store.to_arrays(["slp01a"], signals="eeg")


def test_resume_does_not_redo_finished_nights(cohort, prepared, monkeypatch):
    out, sources, qc = prepared
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "nights").glob("*/meta.json")}
    read = []
    original = RecordingSource.load
    monkeypatch.setattr(RecordingSource, "load",
                        lambda self: read.append(self.name) or original(self))
    again = prepare_store(sources, out, progress=False)
    assert sorted(read) == sorted(BAD)  # only the failed nights are tried again
    pd.testing.assert_frame_equal(again, qc)
    assert stamps == {p.name: p.stat().st_mtime_ns
                      for p in (out / "nights").glob("*/meta.json")}


def test_crash_in_the_middle_of_a_night_leaves_no_half_night(cohort, tmp_path, monkeypatch):
    folder, _ = cohort
    sources = [s for s in discover_sources(folder) if s.name in ("night00", "night01",
                                                                 "night02")]
    original = _store._save_array

    def crash(path, array):
        if path.parent.name == ".night01.tmp" and path.name == "eeg.npy":
            raise KeyboardInterrupt  # the run is killed while writing night01
        original(path, array)

    monkeypatch.setattr(_store, "_save_array", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_store(sources, tmp_path, progress=False)
    assert (tmp_path / "nights" / "night00" / "meta.json").is_file()
    assert not (tmp_path / "nights" / "night01").exists()
    assert (tmp_path / "nights" / ".night01.tmp").is_dir()  # unfinished, not a night
    assert NightStore(tmp_path).names == ["night00"]

    monkeypatch.setattr(_store, "_save_array", original)
    read = []
    load = RecordingSource.load
    monkeypatch.setattr(RecordingSource, "load",
                        lambda self: read.append(self.name) or load(self))
    qc = prepare_store(sources, tmp_path, progress=False)
    assert sorted(read) == ["night01", "night02"]
    assert qc["status"].tolist() == ["ok"] * 3
    assert not (tmp_path / "nights" / ".night01.tmp").exists()
    assert NightStore(tmp_path).names == ["night00", "night01", "night02"]


def test_other_settings_are_refused_unless_overwrite(cohort, tmp_path):
    folder, _ = cohort
    sources = [s for s in discover_sources(folder) if s.name == "night02"]
    prepare_store(sources, tmp_path, progress=False, fs_eeg=None)
    assert "eeg" not in NightStore(tmp_path).load("night02")
    with pytest.raises(ValueError, match="other settings.*fs_hr"):
        prepare_store(sources, tmp_path, progress=False, fs_eeg=None, fs_hr=4.0)
    qc = prepare_store(sources, tmp_path, progress=False, fs_hr=4.0, fs_ecg=128.0,
                       overwrite=True)
    night = NightStore(tmp_path).load("night02")
    assert night["hr"].shape == (N_EPOCHS, 120) and night["ecg"].shape == (N_EPOCHS, 3840)
    assert qc["status"].tolist() == ["ok"]


def _encoded(stages, classes):
    return np.array([classes.index(s) if s in classes else -1 for s in stages])


@pytest.mark.parametrize("window", [16, None])
def test_store_windows_items_equal_night_windows(prepared, window):
    out, _, _ = prepared
    store = NightStore(out)
    names = ["night03", "slp01a", "night00"]
    data = store.to_arrays(names, signals="hr")
    classes = ["W", "N1", "N2", "N3", "R"]
    reference = NightWindows({"x": data.X_hr[:, None, :]}, _encoded(data.y, classes),
                             NightIndex(data.records, len(data.y)), window=window, seed=3)
    windows = StoreWindows(store, names, window=window, seed=3)
    for redraw in (False, True):
        if redraw:
            reference.redraw()
            windows.redraw()
        assert len(windows) == len(reference)
        for i in range(len(reference)):
            (ref_x, ref_y), (x, y) = reference[i], windows[i]
            assert ref_x.keys() == x.keys()
            for key in ref_x:
                assert x[key].dtype == ref_x[key].dtype
                np.testing.assert_array_equal(x[key], ref_x[key])
            np.testing.assert_array_equal(y, ref_y)
    assert windows[0][0]["x"].shape == (windows.length, 1, 60)
    # pickles without its memory maps (DataLoader workers open their own)
    clone = pickle.loads(pickle.dumps(windows))
    assert not clone._open and len(clone) == len(windows)


def test_store_windows_eeg_and_coarser_scheme(prepared):
    import torch

    store = NightStore(prepared[0])
    windows = StoreWindows(store, ["night00", "night01"], signal="eeg", window=8,
                           scheme="3class")
    assert windows.classes == ("W", "N", "R")
    batch = next(iter(torch.utils.data.DataLoader(windows, batch_size=4)))
    assert batch[0]["x"].shape == (4, 8, 1, 3000) and batch[1].dtype == torch.int64
    assert int(batch[1][0, 0]) == -1  # night00 starts with unscored epochs
    with pytest.raises(ValueError, match="no 'eeg' array"):
        StoreWindows(store, ["slp01a"], signal="eeg")
    with pytest.raises(ValueError, match="not in classes"):
        StoreWindows(store, ["night00"], classes=["W", "N2"])


def test_dask_backend_needs_a_client(cohort, tmp_path):
    pytest.importorskip("distributed")
    with pytest.raises(RuntimeError, match="dask.distributed Client"):
        prepare_store([], tmp_path, backend="dask", progress=False)


def test_dask_path_gives_the_joblib_results(prepared, tmp_path):
    distributed = pytest.importorskip("distributed")
    out, sources, qc = prepared
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        qc_dask = prepare_store(sources, tmp_path, backend="dask", progress=False)
    pd.testing.assert_frame_equal(qc_dask, qc)
    joblib_store, dask_store = NightStore(out), NightStore(tmp_path)
    assert dask_store.names == joblib_store.names
    for name in joblib_store.names:
        a, b = joblib_store.load(name), dask_store.load(name)
        assert a.keys() == b.keys()
        for key in a:
            if key != "meta":
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}.{key}")


def test_cli_prepare(cohort, tmp_path, capsys):
    from sleepkd.cli import main

    folder, _ = cohort
    source = tmp_path / "in"
    source.mkdir()
    for name in ("night02.edf", "night02-profusion.xml", "corrupt.edf", "corrupt-nsrr.xml"):
        shutil.copy(folder / name, source / name)
    code = main(["prepare", str(source), str(tmp_path / "out"), "--quiet", "--fs-hr", "4"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "1 night(s) prepared" in printed and "1 skipped" in printed
    assert str(tmp_path / "out" / "qc.csv") in printed
    assert NightStore(tmp_path / "out").settings["fs_hr"] == 4.0
    code = main(["prepare", str(source), str(tmp_path / "out"), "--quiet", "--fs-hr", "4"])
    assert code == 0 and "1 already in the store" in capsys.readouterr().out
    assert main(["prepare", str(tmp_path / "nowhere"), str(tmp_path / "o2")]) == 1


def test_two_processes_give_the_same_store(prepared, tmp_path):
    out, sources, qc = prepared
    names = ["night01", "corrupt", "slp01a"]
    subset = [s for s in sources if s.name in names]
    qc2 = prepare_store(subset, tmp_path, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(qc2, qc[qc["name"].isin(names)].reset_index(drop=True))
    for name in ("night01", "slp01a"):
        np.testing.assert_array_equal(NightStore(tmp_path).load(name)["hr"],
                                      NightStore(out).load(name)["hr"])


def test_train_from_the_store_then_predict(prepared, tmp_path):
    """'sleepkd train --store' fits the night student window by window from the store
    and writes a model that stages a night of the store from its beats."""
    from sleepkd.cli import main
    from sleepkd.io._model_file import load_model_file

    out, _, _ = prepared
    model_path = tmp_path / "store.sleepkd"
    assert main(["train", "--store", str(out), "--max-epochs", "2", "--scheme", "4class",
                 "--members", "2", "--out", str(model_path), "--quiet"]) == 0
    model = load_model_file(model_path)
    assert len(model.estimator.estimators_) == 2  # a seed ensemble, trained from windows
    store = NightStore(out)
    name = store.names[0]
    beats = np.asarray(store.load(name)["beats"])
    table = model.predict_beats(beats)
    assert set(table["stage"]) <= {"W", "L", "D", "R"}
    assert main(["train", str(out), "--store", str(out), "--out", str(model_path)]) == 2
