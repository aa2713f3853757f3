"""Night store: prepare a generated cohort, kill and resume it, and read it lazily.

1. Generates ``--nights`` synthetic 8-h nights (ECG 256 Hz, EEG 128 Hz, from
   :func:`sleepkd.datasets.make_synthetic_psg`) written as EDF + NSRR XML, with a few
   unscored epochs per night (all data SYNTHETIC).
2. Runs ``sleepkd prepare`` with ``--jobs 2``, kills it (SIGKILL to its process group)
   once a third of the nights are done, and resumes it: reports the wall times, the
   time per night, that the finished nights were not redone (their ``meta.json``
   untouched) and checks the QC table against what was written.
3. Store size on disk against the input.
4. Peak memory (``ru_maxrss`` of a fresh subprocess), for 50 and 200 nights (200:
   each prepared night linked four times under new names): (a) reading one epoch of
   :class:`sleepkd.io.StoreWindows` batches through a torch ``DataLoader``, heart
   rate and EEG; (b) training from the store with ``fit_windows``: the night student
   (:func:`sleepkd.evaluation.night_student`, heart rate) and the night teacher
   (:func:`sleepkd.evaluation.night_teacher`, EEG), one training epoch over every
   window of the training nights and the checkpoint scored on whole validation
   nights (10 % of them), as ``sleepkd train --store`` does.

``--reuse`` skips steps 1-3 on a ``--workdir`` that already holds the store (to
re-measure memory only; the prepare rows are then left out).

Writes ``benchmarks/results/store.md``::

    python benchmarks/bench_store.py [--nights 50] [--hours 8] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CODES = {"W": "Wake|0", "N1": "Stage 1 sleep|1", "N2": "Stage 2 sleep|2",
         "N3": "Stage 3 sleep|3", "R": "REM sleep|5", "?": "Unscored|9"}


def unscored_epochs(i: int, n_epochs: int) -> list[int]:
    """Epochs written as unscored in night ``i``: ``i % 4`` at the start, ``i % 3``
    in the middle."""
    middle = n_epochs // 2
    return list(range(i % 4)) + list(range(middle, middle + i % 3))


def write_night(i: int, folder: str, hours: float) -> dict:
    """Generate night ``i`` and write it as EDF + NSRR XML; return what was written."""
    import edfio

    from sleepkd.datasets import make_synthetic_psg
    from tests._edf_writers import nsrr_xml, stages_to_nsrr_events

    rec = make_synthetic_psg(n_subjects=1, hours=hours, fs_ecg=256.0, fs_eeg=128.0,
                             return_recordings=True, random_state=1000 + i).recordings[0]
    stages = rec.stages.astype(str).copy()
    stages[unscored_epochs(i, len(stages))] = "?"
    name = f"night{i:03d}"
    signals = [
        edfio.EdfSignal(rec.ecg.astype(np.float64), sampling_frequency=rec.fs_ecg,
                        label="ECG", physical_dimension="mV"),
        edfio.EdfSignal(rec.eeg[0].astype(np.float64), sampling_frequency=rec.fs_eeg,
                        label="EEG C4-A1", physical_dimension="uV"),
    ]
    edfio.Edf(signals).write(Path(folder) / f"{name}.edf")
    (Path(folder) / f"{name}-nsrr.xml").write_text(
        nsrr_xml(stages_to_nsrr_events(stages.tolist())))
    return {"name": name, "n_epochs": len(stages),
            "n_unscored": int(np.sum(stages == "?")), "n_beats": len(rec.beat_times)}


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def linked_store(store: Path, target: Path, copies: int) -> None:
    """A store of ``copies`` x the nights of ``store``: files symlinked, meta renamed."""
    shutil.rmtree(target, ignore_errors=True)
    (target / "nights").mkdir(parents=True)
    shutil.copy(store / "store.json", target / "store.json")
    for night in sorted((store / "nights").iterdir()):
        if night.name.startswith("."):
            continue
        for c in range(copies):
            name = f"{night.name}_c{c}"
            folder = target / "nights" / name
            folder.mkdir()
            for file in night.glob("*.npy"):
                (folder / file.name).symlink_to(file.resolve())
            meta = json.loads((night / "meta.json").read_text())
            meta["name"] = name
            meta["qc"]["name"] = name
            (folder / "meta.json").write_text(json.dumps(meta))


MEMORY_SCRIPT = r"""
import resource, sys, time, json
import torch
from torch.utils.data import DataLoader
from sleepkd.io import NightStore, StoreWindows
torch.set_num_threads(1)
store, signal = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
windows = StoreWindows(NightStore(store), signal=signal, window=256, seed=0)
loader = DataLoader(windows, batch_size=32, shuffle=True, num_workers=0)
start = time.perf_counter()
n_items = n_bytes = 0
for inputs, y in loader:
    n_items += len(y)
    n_bytes += inputs["x"].numel() * 4
    # (a training step would run here)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "seconds": elapsed,
                  "windows": n_items, "nights": len(windows.names),
                  "read_mb": n_bytes / 2**20, "epoch_shape": list(windows.epoch_shape)}))
"""


TRAIN_SCRIPT = r"""
import resource, sys, time, json
import torch
from sleepkd.evaluation import night_student, night_teacher
from sleepkd.io import NightStore, StoreWindows
torch.set_num_threads(1)
store_path, signal = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
store = NightStore(store_path)
names = store.names
n_valid = max(1, len(names) // 10)
if signal == "hr":
    model = night_student(max_epochs=1, patience=None)
    common = dict(signal="hr", standardize="iqr")
else:
    model = night_teacher(max_epochs=1, patience=None,
                          fs_eeg=float(store.settings["fs_eeg"]))
    common = dict(signal="eeg")
train = StoreWindows(store, names[n_valid:], window=model.window, seed=0, **common)
valid = StoreWindows(store, names[:n_valid], window=None, classes=list(train.classes),
                     **common)
start = time.perf_counter()
model.fit_windows(train, valid)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "seconds": elapsed,
                  "nights": len(names), "valid_nights": n_valid,
                  "train_epochs": int(sum(len(y) for y in train.y)),
                  "model": type(model).__name__, "window": model.window,
                  "epoch_shape": list(train.row_shape)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nights", type=int, default=50)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--workdir", help="folder for the cohort and store (default: a "
                                          "temporary folder, removed at the end)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "store.md"))
    parser.add_argument("--reuse", action="store_true",
                        help="memory only, on the store already in --workdir; the "
                             "prepare and size sections are kept from --out")
    args = parser.parse_args()
    if args.reuse and not args.workdir:
        parser.error("--reuse needs --workdir")
    from joblib import Parallel, delayed

    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(  # the workers import tests._edf_writers
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    env = dict(os.environ)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="sleepkd_bench_store_"))
    cohort, store = work / "cohort", work / "store"
    if not args.reuse:
        shutil.rmtree(work / "store", ignore_errors=True)
    cohort.mkdir(parents=True, exist_ok=True)

    if not args.reuse:
        t0 = time.perf_counter()
        written = Parallel(n_jobs=args.jobs)(delayed(write_night)(i, str(cohort), args.hours)
                                             for i in range(args.nights))
        t_generate = time.perf_counter() - t0
        print(f"generated {args.nights} nights in {t_generate:.0f} s", flush=True)

        # 1. a run killed once a third of the nights are done ----------------------
        command = [sys.executable, "-m", "sleepkd", "prepare", str(cohort), str(store),
                   "--jobs", str(args.jobs), "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, env=env, start_new_session=True, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        goal = max(1, args.nights // 3)

        def finished() -> list[str]:
            folder = store / "nights"
            return sorted(p.name for p in folder.iterdir()
                          if not p.name.startswith(".")) if folder.is_dir() else []

        while len(finished()) < goal and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        t_killed = time.perf_counter() - t0
        done = finished()
        stale = [p.name for p in (store / "nights").iterdir() if p.name.startswith(".")]
        stamps = {n: (store / "nights" / n / "meta.json").stat().st_mtime_ns for n in done}
        print(f"killed after {t_killed:.0f} s: {len(done)} nights done, {len(stale)} "
              f"unfinished folders left", flush=True)

        # 2. resume ----------------------------------------------------------------
        from sleepkd.io import NightStore, prepare_store

        t0 = time.perf_counter()
        qc = prepare_store(str(cohort), store, n_jobs=args.jobs, progress=False)
        t_resume = time.perf_counter() - t0
        run = qc.attrs["run"]
        untouched = all((store / "nights" / n / "meta.json").stat().st_mtime_ns == s
                        for n, s in stamps.items())
        print(f"resumed in {t_resume:.0f} s: {run}", flush=True)

        # QC table against what was written
        table = qc.set_index("name")
        exact = {"n_epochs": True, "n_unscored": True, "n_scored": True, "status": True}
        beat_error = []
        for night in written:
            row = table.loc[night["name"]]
            exact["status"] &= row["status"] == "ok"
            exact["n_epochs"] &= row["n_epochs"] == night["n_epochs"]
            exact["n_unscored"] &= row["n_unscored"] == night["n_unscored"]
            exact["n_scored"] &= row["n_scored"] == night["n_epochs"] - night["n_unscored"]
            beat_error.append(abs(row["n_beats"] - night["n_beats"]) / night["n_beats"])

        # 3. sizes -----------------------------------------------------------------
        input_mb = folder_size(cohort) / 2**20
        store_mb = folder_size(store) / 2**20
        eeg_mb = sum((store / "nights" / n / "eeg.npy").stat().st_size
                     for n in NightStore(store).names) / 2**20

    # 4. peak memory: reading one epoch of windows, and training from the store ----
    from sleepkd.io import NightStore

    prepared = NightStore(store)
    epochs_per_night = np.mean([prepared.meta(name)["qc"]["n_epochs"]
                                for name in prepared.names])

    def measure(script: str, target: Path, signal_name: str) -> dict:
        out = subprocess.run([sys.executable, "-c", script, str(target), signal_name],
                             env=env, cwd=ROOT, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"{signal_name} on {target} failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["signal"] = signal_name
        print(result, flush=True)
        return result

    memory, training = [], []
    for n_nights, copies in ((args.nights, 1), (4 * args.nights, 4)):
        target = work / f"store_x{copies}"
        linked_store(store, target, copies)
        for signal_name in ("hr", "eeg"):
            result = measure(MEMORY_SCRIPT, target, signal_name)
            result["in_memory_mb"] = n_nights * epochs_per_night * int(
                np.prod(result["epoch_shape"])) * 4 / 2**20
            memory.append(result)
        for signal_name in ("hr", "eeg"):
            result = measure(TRAIN_SCRIPT, target, signal_name)
            result["in_memory_mb"] = n_nights * epochs_per_night * int(
                np.prod(result["epoch_shape"])) * 4 / 2**20
            training.append(result)

    n = args.nights
    head = [
        "# Night store (`sleepkd prepare`, `NightStore`, `StoreWindows`)",
        "",
        f"`python benchmarks/bench_store.py --nights {n} --hours {args.hours:g} "
        f"--jobs {args.jobs}` on a {os.cpu_count()}-core machine shared with other "
        "jobs. All data SYNTHETIC: nights generated by "
        "`make_synthetic_psg` (ECG 256 Hz, EEG 128 Hz), written as EDF + NSRR XML with "
        "0-3 unscored epochs at the start and 0-2 in the middle; store settings: "
        "heart rate 2 Hz, EEG resampled to 100 Hz, no ECG waveform, 5 classes.",
        "",
        "## Prepare, killed and resumed",
        "",
        "| step | wall time | nights |",
        "|---|---|---|",
        f"| generate and write the cohort ({args.jobs} jobs) | {t_generate:.0f} s | {n} |",
        f"| `sleepkd prepare --jobs {args.jobs}`, SIGKILL once {goal} nights were done "
        f"| {t_killed:.0f} s | {len(done)} done, {len(stale)} unfinished `.tmp` folder(s) "
        "left |",
        f"| resumed run (`prepare_store(n_jobs={args.jobs})`) | {t_resume:.0f} s | "
        f"{run['prepared']} prepared, {run['already']} already done, {run['skipped']} "
        "skipped |",
        "",
        f"- Time per night (resumed run, {args.jobs} jobs): "
        f"{t_resume / max(run['prepared'], 1):.1f} s wall, i.e. "
        f"{t_resume * args.jobs / max(run['prepared'], 1):.1f} s of one core per "
        f"{args.hours:g}-h night (EDF read, R-peak detection on 256 Hz ECG, heart rate, "
        "EEG resampling, writing).",
        f"- Finished nights redone by the resumed run: "
        f"{'none' if untouched and run['already'] == len(done) else 'SOME'} (their "
        f"`meta.json` untouched: {untouched}; `already` = {run['already']} = nights "
        f"done at the kill: {run['already'] == len(done)}). Unfinished `.tmp` folders "
        "removed by the resumed run: "
        f"{not any(p.name.startswith('.') for p in (store / 'nights').iterdir())}.",
        f"- QC table: {len(qc)} rows; status ok for all: {exact['status']}; n_epochs, "
        f"n_unscored and n_scored equal to what was written for every night: "
        f"{exact['n_epochs'] and exact['n_unscored'] and exact['n_scored']}; detected "
        f"beats vs generated beats: median error {100 * np.median(beat_error):.2f} %, "
        f"max {100 * np.max(beat_error):.2f} %; rejected beats "
        f"{int(qc['n_rejected_beats'].sum())} in total, "
        f"{int(qc['n_invalid_hr_epochs'].sum())} epochs without enough real heart rate.",
        "",
        "## Size on disk",
        "",
        "| | total | per night |",
        "|---|---|---|",
        f"| input (EDF + XML) | {input_mb:.0f} MB | {input_mb / n:.1f} MB |",
        f"| store | {store_mb:.0f} MB | {store_mb / n:.1f} MB |",
        f"| of which `eeg.npy` (float32, 100 Hz) | {eeg_mb:.0f} MB | {eeg_mb / n:.1f} MB |",
        "",
    ] if not args.reuse else [
        Path(args.out).read_text().split("## Peak memory")[0].rstrip(), ""]
    lines = head + [
        "## Peak memory of reading the store",
        "",
        "`StoreWindows(store, signal=..., window=256, seed=0)` through "
        "`DataLoader(batch_size=32, shuffle=True, num_workers=0)`, every window of "
        "every night once, in a fresh process; RSS is `ru_maxrss` (it counts the "
        "mapped file pages touched, at most `MAX_OPEN_NIGHTS` = 32 nights mapped at a "
        f"time). {4 * n}-night rows: the {n} prepared nights linked four times.",
        "",
        "| nights | signal | windows | data read | the same in memory (to_arrays) "
        "| RSS after imports | peak RSS | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in memory:
        lines.append(
            f"| {m['nights']} | {m['signal']} {tuple(m['epoch_shape'])} | {m['windows']} "
            f"| {m['read_mb']:.0f} MB | {m['in_memory_mb']:.0f} MB | {m['base_mb']:.0f} MB "
            f"| {m['peak_mb']:.0f} MB | {m['seconds']:.1f} s |")
    lines += [
        "",
        "## Peak memory of training from the store",
        "",
        "`fit_windows(train, valid)` as `sleepkd train --store` runs it, in a fresh "
        "process, one torch thread: the night student (`night_student()`, HeartRateTCN, "
        "training windows of 360 epochs) on the heart rate, the night teacher "
        "(`night_teacher()`, U-Time epoch encoder + BiGRU, windows of 32 epochs) on the "
        "EEG; one training epoch over every window of the training nights (90 %), the "
        "checkpoint scored on the other 10 % as whole nights. 'In memory' is what the "
        "same nights would take as arrays.",
        "",
        "| nights | model | signal | training epochs (30 s) | the same in memory "
        "| RSS after imports | peak RSS | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in training:
        lines.append(
            f"| {m['nights']} | {m['model']} | {m['signal']} {tuple(m['epoch_shape'])} "
            f"| {m['train_epochs']} | {m['in_memory_mb']:.0f} MB | {m['base_mb']:.0f} MB "
            f"| {m['peak_mb']:.0f} MB | {m['seconds']:.0f} s |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
