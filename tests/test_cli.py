"""The sleepkd command line: exit codes, one-line errors, outputs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sleepkd import ECGStudent
from sleepkd.cli import main
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
    code = main(["predict", str(bundle), str(recording / "night.npz"), "--out", str(out),
                 "--no-plot"])
    assert code == 0
    table = pd.read_csv(out)
    assert table["onset_s"].tolist() == [0.0, 30.0, 60.0]
    model = load_model(bundle)
    assert list(table.columns) == ["onset_s", "stage"] + [f"p_{c}" for c in model.classes_]
    expected = model.predict_recording(np.load(recording / "night.npz")["ecg"], 20.0)
    assert table["stage"].tolist() == expected["stage"].tolist()
    stdout = capsys.readouterr().out
    assert "Staged 3 epochs" in stdout and str(out) in stdout


def test_predict_npy_with_fs_and_default_plot(bundle, recording, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "hyp.csv"
    code = main(["predict", str(bundle), str(recording / "night.npy"), "--fs", "20",
                 "--out", str(out), "--quiet"])
    assert code == 0
    assert out.is_file() and out.with_suffix(".png").stat().st_size > 0


@pytest.mark.parametrize("args, match", [
    (["predict", "{bundle}", "{dir}/missing.npz"], "missing.npz"),
    (["predict", "{dir}/no_model.joblib", "{dir}/night.npz"], "No such model file"),
    (["predict", "{bundle}", "{dir}/night.npy"], "fs"),  # .npy without --fs
    (["predict", "{bundle}", "{dir}/night.npy", "--fs", "5"], "below the 10 Hz"),
    (["predict", "{bundle}", "{dir}/night.npz", "--channel", "EEG"], "EEG"),
    (["predict", "{dir}/night.npz", "{dir}/night.npz"], "not a readable sleepkd model"),
])
def test_predict_bad_input_exits_1_with_one_line(bundle, recording, capsys, args, match):
    args = [a.format(bundle=bundle, dir=recording) for a in args]
    assert main(args) == 1
    assert match in _error_line(capsys)


def test_recording_shorter_than_an_epoch(bundle, tmp_path, capsys):
    np.savez(tmp_path / "short.npz", ecg=np.zeros(200), fs=20.0)  # 10 s
    assert main(["predict", str(bundle), str(tmp_path / "short.npz")]) == 1
    assert "shorter than one 30-s epoch" in _error_line(capsys)


@pytest.mark.parametrize("args", [["frobnicate"], [], ["predict"],
                                  ["demo", "--hours", "x"], ["demo", "--n-subjects", "2"]])
def test_bad_usage_exits_2(capsys, args):
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("sleepkd: error: ")


def test_help_and_version_exit_0(capsys):
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["--version"]) == 0


def test_debug_shows_the_exception(recording):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "predict", str(recording / "nope.joblib"),
              str(recording / "night.npz")])


def test_tiny_demo_end_to_end_then_predict(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "demo"
    code = main(["demo", "--tiny", "--quiet", "--n-subjects", "4", "--hours", "0.25",
                 "--max-epochs", "1", "--out", str(out)])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "| AT+SD+CL |" in stdout and "synthetic data generated by sleepkd" in stdout
    for name in ("results.md", "scores.csv", "predictions.csv", "confusion_4class.png",
                 "hypnogram_4class.png", "model.joblib", "example_night_ecg.npz"):
        assert (out / name).is_file(), name
    model = load_model(out / "model.joblib")
    assert model.context == 4 and model.preprocessor is not None
    assert "synthetic" in model.provenance
    code = main(["predict", str(out / "model.joblib"), str(out / "example_night_ecg.npz"),
                 "--out", str(tmp_path / "hyp.csv"), "--quiet"])
    assert code == 0
    table = pd.read_csv(tmp_path / "hyp.csv")
    assert set(table["stage"]) <= {"W", "L", "D", "R"}
    assert len(table) == 30  # the example night lasts min(hours, 1) = 0.25 h


def test_tiny_experiment_with_hrv_reference(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = main(["experiment", "--tiny", "--quiet", "--n-subjects", "4", "--hours", "0.25",
                 "--folds", "2", "--max-epochs", "1", "--schemes", "3class",
                 "--out", str(tmp_path)])
    assert code == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert sorted(scores["fold"].unique()) == [0, 1]
    assert "HRV + gradient boosting" in set(scores["model"])
    assert "| HRV + gradient boosting |" in capsys.readouterr().out


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
    for model in ("ECG baseline", "SD+CL", "AT+CL", "AT+SD+CL"):
        assert kappa[model] > 0.15, (model, kappa[model])
