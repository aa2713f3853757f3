"""The sleepkd command line: exit codes, one-line errors, outputs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sleepkd import ECGStudent
from sleepkd.cli import build_parser, main
from sleepkd.evaluation import StagingModel, load_model, save_model
from tests._toy import make_toy_paired

pytestmark = pytest.mark.filterwarnings("ignore:The EEG teacher reaches:UserWarning")

TINY = dict(module="compact", module_params={"widths": (2, 4, 4, 4, 4),
                                              "bottleneck_width": 4,
                                              "pools": (2, 2, 2, 2, 2)},
            max_epochs=1, batch_size=32, patience=None, verbose=0, random_state=0)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A tiny fitted ECG stager expecting 10-Hz ECG (300 samples per 30-s epoch)."""
    X_ecg, _, y, groups = make_toy_paired(n_subjects=3, n_per_subject=20, n_times_ecg=300)
    student = ECGStudent(**TINY).fit(X_ecg, y, groups=groups)
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    return save_model(StagingModel(student, fs=10.0, scheme="3class",
                                   provenance="toy data (tests)"), path)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """95 s of noise at 20 Hz: three whole epochs and 5 s left over."""
    folder = tmp_path_factory.mktemp("input")
    ecg = np.random.default_rng(0).normal(size=95 * 20)
    np.savez(folder / "night.npz", ecg=ecg, fs=20.0)
    np.save(folder / "night.npy", ecg)
    return folder


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    assert err[0].startswith("sleepkd: error: ")
    return err[0]


def test_predict_writes_hypnogram_csv(bundle, recording, tmp_path, capsys):
    out = tmp_path / "hyp.csv"
    code = main(["predict", "--allow-pickle", str(bundle), str(recording / "night.npz"), "--out", str(out),
                 "--no-plot"])
    assert code == 0
    table = pd.read_csv(out)
    assert table["onset_s"].tolist() == [0.0, 30.0, 60.0]
    model = load_model(bundle)
    assert list(table.columns) == (["onset_s", "stage"] + [f"p_{c}" for c in model.classes_]
                                   + ["ecg_quality"])
    expected = model.predict_recording(np.load(recording / "night.npz")["ecg"], 20.0)
    assert table["stage"].tolist() == expected["stage"].tolist()
    # a 10-Hz model: too slow for R-peak detection, so the quality is not checked
    assert table["ecg_quality"].tolist() == ["unchecked"] * 3
    stdout = capsys.readouterr().out
    assert "Staged 3 epochs" in stdout and str(out) in stdout
    assert "ECG quality: not checked" in stdout


def test_predict_npy_with_fs_and_default_plot(bundle, recording, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "hyp.csv"
    code = main(["predict", "--allow-pickle", str(bundle), str(recording / "night.npy"), "--fs", "20",
                 "--out", str(out), "--quiet"])
    assert code == 0
    assert out.is_file() and out.with_suffix(".png").stat().st_size > 0


@pytest.mark.parametrize("args, match", [
    (["predict", "--allow-pickle", "{bundle}", "{dir}/missing.npz"], "missing.npz"),
    (["predict", "--allow-pickle", "{dir}/no_model.joblib", "{dir}/night.npz"], "No such model file"),
    (["predict", "--allow-pickle", "{bundle}", "{dir}/night.npy"], "fs"),  # .npy without --fs
    (["predict", "--allow-pickle", "{bundle}", "{dir}/night.npy", "--fs", "5"], "below the 10 Hz"),
    (["predict", "--allow-pickle", "{bundle}", "{dir}/night.npz", "--channel", "EEG"], "EEG"),
    (["predict", "--allow-pickle", "{dir}/night.npz", "{dir}/night.npz"], "not a readable sleepkd model"),
])
def test_predict_bad_input_exits_1_with_one_line(bundle, recording, capsys, args, match):
    args = [a.format(bundle=bundle, dir=recording) for a in args]
    assert main(args) == 1
    assert match in _error_line(capsys)


def test_recording_shorter_than_an_epoch(bundle, tmp_path, capsys):
    np.savez(tmp_path / "short.npz", ecg=np.zeros(200), fs=20.0)  # 10 s
    assert main(["predict", "--allow-pickle", str(bundle), str(tmp_path / "short.npz")]) == 1
    assert "shorter than one 30-s epoch" in _error_line(capsys)


@pytest.fixture(scope="module")
def bundle_100hz(tmp_path_factory):
    """A model at 100 Hz (beats can be detected) that always says Wake, confidently."""
    from sklearn.dummy import DummyClassifier

    always_wake = DummyClassifier(strategy="prior").fit(np.zeros((4, 3000)),
                                                        ["W", "W", "W", "N"])
    path = tmp_path_factory.mktemp("model100") / "model.joblib"
    return save_model(StagingModel(always_wake, fs=100.0, scheme="3class"), path)


def _ecg_night(n_epochs, noisy_epochs=(), fs=100.0):
    from tests._ecg_fixtures import make_beat_times, synth_ecg

    duration = n_epochs * 30.0
    ecg = synth_ecg(make_beat_times(duration, rng=0), fs, duration)
    rng = np.random.default_rng(1)
    for k in noisy_epochs:
        ecg[int(k * 30 * fs):int((k + 1) * 30 * fs)] = rng.normal(size=int(30 * fs))
    return ecg


def test_predict_flags_pure_noise_ecg(bundle_100hz, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    ecg = np.random.default_rng(0).normal(size=10 * 30 * 100)  # 10 epochs of noise
    np.savez(tmp_path / "noise.npz", ecg=ecg, fs=100.0)
    out = tmp_path / "noise.csv"
    assert main(["predict", "--allow-pickle", str(bundle_100hz), str(tmp_path / "noise.npz"), "--out",
                 str(out), "--quiet"]) == 0
    table = pd.read_csv(out)
    assert (table["stage"] == "W").all()  # the model is confident: the flag is the news
    assert table["ecg_quality"].tolist() == ["noise"] * 10
    stdout = capsys.readouterr().out
    assert "Warning: 10 of 10 epochs (100%) failed the ECG quality gate" in stdout
    assert "not a usable ECG" in stdout
    assert out.with_suffix(".png").stat().st_size > 0


def test_predict_flags_only_the_bad_epochs_of_a_good_night(bundle_100hz, tmp_path,
                                                           capsys):
    np.savez(tmp_path / "night.npz", ecg=_ecg_night(8, noisy_epochs=(2, 3)), fs=100.0)
    out = tmp_path / "night.csv"
    assert main(["predict", "--allow-pickle", str(bundle_100hz), str(tmp_path / "night.npz"), "--out",
                 str(out), "--no-plot"]) == 0
    quality = pd.read_csv(out)["ecg_quality"].tolist()
    assert quality == ["ok", "ok", "noise", "noise", "ok", "ok", "ok", "ok"]
    stdout = capsys.readouterr().out
    assert "ECG quality: 2 of 8 epochs (25%) failed the ECG quality gate" in stdout
    assert "Warning" not in stdout


def test_failed_epochs_are_shaded_on_the_hypnogram():
    plt = pytest.importorskip("matplotlib.pyplot")
    from sleepkd.cli._predict import _failed_spans, _shade_failed_epochs

    onsets = np.arange(6) * 30.0
    quality = np.array(["ok", "noise", "no_beats", "ok", "noise", "ok"], dtype=object)
    assert _failed_spans(onsets, quality, 30.0) == [(30.0, 90.0), (120.0, 150.0)]
    fig, ax = plt.subplots()
    _shade_failed_epochs(ax, onsets, quality, 30.0)
    spans = [p for p in ax.patches]
    assert len(spans) == 2
    assert ax.get_legend().get_texts()[0].get_text() == "no usable ECG / heart rate"
    plt.close(fig)


@pytest.mark.parametrize("args", [["frobnicate"], [], ["predict"],
                                  ["demo", "--hours", "x"], ["demo", "--n-subjects", "2"],
                                  ["experiment", "--teacher-epochs", "0"],
                                  ["experiment", "--models", "epoch", "--teacher-epochs", "5"],
                                  ["experiment", "--patience", "-1"],
                                  ["experiment", "--jobs", "0"],
                                  ["experiment", "--device", "frobnicate"],
                                  ["train", ".", "--members", "0"]])
def test_bad_usage_exits_2(capsys, args):
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("sleepkd: error: ")


def test_help_and_version_exit_0(capsys):
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["--version"]) == 0


def test_debug_shows_the_exception(recording):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "predict", "--allow-pickle", str(recording / "nope.joblib"),
              str(recording / "night.npz")])


def test_tiny_demo_end_to_end_then_predict(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from sleepkd.io._model_file import load_model_file

    out = tmp_path / "demo"
    code = main(["demo", "--tiny", "--quiet", "--n-subjects", "4", "--hours", "0.25",
                 "--max-epochs", "1", "--out", str(out)])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "| SD+CL |" in stdout and "| FD+SD+CL |" in stdout
    assert "| ContextNet (per-epoch" in stdout and "synthetic data generated by sleepkd" in stdout
    for name in ("results.md", "scores.csv", "predictions.csv", "confusion_4class.png",
                 "hypnogram_4class.png", "model.sleepkd", "example_night_beats.csv",
                 "example_night_ecg.npz"):
        assert (out / name).is_file(), name
    model = load_model_file(out / "model.sleepkd")
    assert "synthetic" in model.provenance and model.fs_hr == 2.0
    for example in ("example_night_beats.csv", "example_night_ecg.npz"):
        hyp = tmp_path / f"{example}.csv"
        code = main(["predict", str(out / "model.sleepkd"), str(out / example),
                     "--out", str(hyp), "--quiet", "--no-plot"])
        assert code == 0, example
        table = pd.read_csv(hyp)
        assert set(table["stage"]) <= {"W", "L", "D", "R"}
        assert len(table) == 30  # the example night lasts min(hours, 1) = 0.25 h


def test_tiny_experiment_with_hrv_reference(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["experiment", "--models", "epoch", "--tiny", "--quiet", "--n-subjects",
                 "4", "--hours", "0.25", "--folds", "2", "--max-epochs", "1", "--schemes",
                 "3class", "--out", str(tmp_path)])
    assert code == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert sorted(scores["fold"].unique()) == [0, 1]
    assert "HRV + gradient boosting" in set(scores["model"])
    assert "| HRV + gradient boosting |" in capsys.readouterr().out


@pytest.mark.parametrize("models", ["epoch", "night"])
def test_experiment_patience_reaches_every_network(models):
    from sleepkd.cli._experiment import epoch_setup, night_setup

    def networks(extra):
        args = build_parser().parse_args(
            ["experiment", "--models", models, "--tiny", "--n-subjects", "3", "--hours",
             "0.1", "--folds", "2", "--max-epochs", "9", "--no-references", *extra])
        _, teacher, student, *_ = (epoch_setup if models == "epoch" else night_setup)(args)
        return teacher, student

    assert [n.patience for n in networks([])] == [3, 3]  # a third of --max-epochs
    assert [n.patience for n in networks(["--patience", "5"])] == [5, 5]
    # 0: no early stopping, every epoch trained and the best checkpoint kept
    assert [n.patience for n in networks(["--patience", "0"])] == [None, None]


@pytest.mark.parametrize("models", ["epoch", "night"])
def test_experiment_device_reaches_every_network(models):
    from sleepkd.cli._experiment import epoch_setup, night_setup

    args = build_parser().parse_args(
        ["experiment", "--models", models, "--tiny", "--n-subjects", "3", "--hours", "0.1",
         "--folds", "2", "--max-epochs", "2", "--device", "meta"])
    _, teacher, student, _, extra, _ = (epoch_setup if models == "epoch"
                                        else night_setup)(args)
    networks = [teacher, student] + [m for m, _ in extra.values()
                                     if "device" in m.get_params(deep=False)]
    assert len(networks) == (4 if models == "night" else 2)
    assert {n.device for n in networks} == {"meta"}


def test_experiment_refuses_cuda_without_a_gpu(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["experiment", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_night_teacher_epochs_of_the_recipes():
    from sleepkd.evaluation._recipes import night_config

    assert night_config(20)["teacher"].max_epochs == 20  # the student's budget
    assert night_config(20, teacher_epochs=4)["teacher"].max_epochs == 4
    assert night_config(20, teacher_epochs=4)["student"].max_epochs == 20


def test_tiny_night_experiment_compares_night_and_epoch_models(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["experiment", "--tiny", "--quiet", "--n-subjects", "4", "--hours", "0.25",
                 "--folds", "2", "--max-epochs", "1", "--schemes", "4class", "--seeds", "0",
                 "1", "--out", str(tmp_path)])
    assert code == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert set(scores["model"]) == {"EEG teacher", "EEG teacher (per-epoch)", "ECG baseline",
                                    "SD+CL", "FD+SD+CL", "ContextNet (per-epoch, ±4 epochs)"}
    assert len(scores) == 2 * 2 * 6  # seeds x folds x models


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "sleepkd", "frobnicate"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("sleepkd: error: ")


@pytest.mark.slow
def test_full_demo(tmp_path):
    assert main(["demo", "--quiet", "--out", str(tmp_path)]) == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    kappa = scores.set_index("model")["kappa"]
    assert kappa["EEG teacher"] > 0.4
    # every ECG student learns from heart rate alone: well above chance (kappa 0)
    for model in ("ECG baseline", "SD+CL", "FD+SD+CL", "ContextNet (per-epoch, ±4 epochs)"):
        assert kappa[model] > 0.15, (model, kappa[model])


def test_predict_refuses_a_pickle_without_allow_pickle(bundle, recording, capsys):
    assert main(["predict", str(bundle), str(recording / "night.npz")]) == 1
    assert "--allow-pickle" in _error_line(capsys)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """'sleepkd train' on 4 shipped slpdb records (2 training epochs: tiny, fast), the
    default seed ensemble of 3 members."""
    from sleepkd.datasets import slpdb_path

    out = tmp_path_factory.mktemp("train") / "model.sleepkd"
    code = main(["train", str(slpdb_path()), "--records", "slp01a", "slp02a", "slp04",
                 "slp14", "--max-epochs", "2", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_train_then_predict_a_slpdb_record(trained, tmp_path, capsys):
    from sleepkd.datasets import slpdb_path
    from sleepkd.io import load_slpdb

    out = tmp_path / "slp32.csv"
    assert main(["predict", str(trained), str(slpdb_path() / "slp32.ecg"), "--out", str(out),
                 "--no-plot"]) == 0
    table = pd.read_csv(out)
    beats = load_slpdb(slpdb_path(), records=["slp32"])[0].beat_times
    assert len(table) == int(np.ceil(beats[-1] / 30.0))
    assert set(table["stage"]) <= {"W", "L", "D", "R"}
    np.testing.assert_allclose(table.filter(like="p_").sum(axis=1), 1.0, atol=1e-3)
    assert set(table["hr_quality"]) <= {"ok", "gap"}
    assert "Staged" in capsys.readouterr().out


def test_train_writes_a_seed_ensemble_by_default(trained):
    from sleepkd import SeedEnsemble
    from sleepkd.io._model_file import load_model_file

    model = load_model_file(trained)
    assert isinstance(model.estimator, SeedEnsemble) and model.info["members"] == 3
    assert model.estimator.seeds_ == [0, 1, 2]
    assert "a mean of 3 seeds" in model.describe()


def test_predict_reads_a_csv_of_beat_times(trained, tmp_path):
    from sleepkd.io._model_file import load_model_file

    beats = np.cumsum(np.full(3000, 0.9))  # 45 min at 66.7 beats/min
    pd.DataFrame({"beat_times": beats}).to_csv(tmp_path / "beats.csv", index=False)
    out = tmp_path / "beats_hyp.csv"
    assert main(["predict", str(trained), str(tmp_path / "beats.csv"), "--out", str(out),
                 "--no-plot", "--quiet"]) == 0
    expected = load_model_file(trained).predict_beats(beats)
    table = pd.read_csv(out)
    assert table["stage"].tolist() == expected["stage"].tolist()


def test_predict_refuses_a_crafted_safe_model(trained, recording, tmp_path, capsys):
    from tests._crafted import write_crafted_model

    marker = tmp_path / "pwned"
    crafted = write_crafted_model(trained, tmp_path / "crafted.sleepkd", marker)
    assert main(["predict", str(crafted), str(recording / "night.npz")]) == 1
    assert "refused" in _error_line(capsys)
    assert not marker.exists()


def test_train_runs_the_cascade_when_every_recording_has_an_eeg(tmp_path, monkeypatch):
    """With an EEG in every recording, ``sleepkd train`` fits the EEG night teacher and
    distils it into the student (strategy sd+cl, written in the model file)."""
    from sleepkd.cli import _train
    from sleepkd.datasets import make_synthetic_psg
    from sleepkd.io._model_file import load_model_file

    recordings = make_synthetic_psg(n_subjects=3, hours=0.5, fs_ecg=128.0, fs_eeg=100.0,
                                    return_recordings=True, random_state=0).recordings
    assert all(rec.eeg is not None for rec in recordings)
    monkeypatch.setattr(_train, "_read_recordings", lambda folder, records: recordings)
    out = tmp_path / "model.sleepkd"
    assert main(["train", str(tmp_path), "--max-epochs", "1", "--members", "1", "--quiet",
                 "--out", str(out)]) == 0
    model = load_model_file(out)
    assert model.info["strategy"] == "sd+cl" and model.info["members"] == 1


def test_night_setup_uses_the_recordings_it_is_given(monkeypatch):
    from sleepkd.cli import _experiment
    from sleepkd.datasets import make_synthetic_psg

    args = build_parser().parse_args(
        ["experiment", "--tiny", "--n-subjects", "3", "--hours", "0.1", "--folds", "2",
         "--max-epochs", "2", "--no-references"])
    recordings = make_synthetic_psg(n_subjects=2, hours=0.1, fs_ecg=50.0, fs_eeg=50.0,
                                    return_recordings=True, random_state=1).recordings

    def no_load(*a, **k):
        raise AssertionError("night_setup generated the data again")

    monkeypatch.setattr(_experiment, "load_data", no_load)
    data, *_ = _experiment.night_setup(args, recordings=recordings)
    assert sorted(set(data.records)) == sorted(rec.name for rec in recordings)
