"""Benchmark sleepkd's ECG front-end against sleepecg's detector + features, one run.

On the same synthetic 8-hour night at 256 Hz as ``bench_frontend.py`` (960 rows of
30 s from ``tests/_ecg_fixtures.py``), in one process, one after another in each of
``--repeats`` rounds (median reported):

(a) sleepkd's front-end with ``method="neurokit"``: BandpassFilter (0.5-40 Hz),
    HeartRateTransformer and HRVFeatures (the second reuses the first one's R-peaks),
(b) the same with ``method="sleepecg"``,
(b2) the same as (b) with ``n_jobs=2`` (the zero-phase filters on two threads; the
    rest of the front-end, and all of sleepecg's, runs on one),
(c) sleepecg on the same night as one continuous signal (its natural use):
    ``sleepecg.detect_heartbeats(ecg, fs)`` (C backend) and
    ``sleepecg.extract_features`` (groups ``hrv-time`` and ``hrv-frequency``, 33
    features per 30-s epoch, ``lookback=0, lookforward=30`` to match the rows).

Each is also scored against the known beats (sensitivity and positive predictive value
within 50 ms). Imports and one warm-up run are not timed; sleepkd's one-entry
detection cache is cleared before every timed run.

Run from the repository root::

    python benchmarks/bench_frontend_vs_sleepecg.py [--repeats 5]

writes ``benchmarks/results/frontend_vs_sleepecg.md``. ``--only {neurokit,sleepecg,
yardstick}`` instead generates the night and runs that one pipeline once (imports
included), for whole-process timing of one pipeline against another.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _ecg_fixtures import match_beats, synth_ecg_rows  # noqa: E402

FS = 256.0
N_ROWS = 960  # 8 hours of 30-s epochs
EPOCH_SECONDS = 30


def make_night():
    """The generated night of bench_frontend.py: rows, and true beats as global samples."""
    X, _, row_beats = synth_ecg_rows(N_ROWS, FS, row_seconds=EPOCH_SECONDS, mean_hr=60.0)
    n = X.shape[1]
    truth = np.concatenate([p + i * n for i, p in enumerate(row_beats)])
    return X, truth


def sleepkd_frontend(X: np.ndarray, method: str, n_jobs: int | None = None):
    """Band-pass, heart rate and HRV features; returns (hr, hrv, band-passed rows)."""
    from sleepkd.signal import BandpassFilter, HeartRateTransformer, HRVFeatures

    filtered = BandpassFilter(fs=FS, low=0.5, high=40.0, order=4, n_jobs=n_jobs).fit_transform(X)
    hr = HeartRateTransformer(fs=FS, method=method, n_jobs=n_jobs).fit_transform(filtered)
    hrv = HRVFeatures(fs=FS, method=method, n_jobs=n_jobs).fit_transform(filtered)
    return hr, hrv, filtered


def sleepkd_peaks(filtered: np.ndarray, method: str) -> np.ndarray:
    """The R-peaks the front-end used, as samples from the start of the night."""
    from sleepkd.signal._beats import detect_beats_rows

    peaks = detect_beats_rows(filtered, FS, method=method).peaks
    n = filtered.shape[1]
    return np.concatenate([p + i * n for i, p in enumerate(peaks)])


def sleepecg_yardstick(ecg: np.ndarray):
    """sleepecg's detector (C backend) and HRV feature extraction on the whole night."""
    import sleepecg

    beats = sleepecg.detect_heartbeats(ecg, FS, backend="c")
    record = sleepecg.SleepRecord(
        sleep_stages=np.zeros(N_ROWS, dtype=int),  # only sets the number of epochs
        sleep_stage_duration=EPOCH_SECONDS,
        heartbeat_times=beats / FS,
    )
    with warnings.catch_warnings():
        # "HR analysis window too short for estimating PSD": expected for 30-s windows.
        warnings.simplefilter("ignore", RuntimeWarning)
        features, _, _ = sleepecg.extract_features(
            [record], lookback=0, lookforward=EPOCH_SECONDS,
            sleep_stage_duration=EPOCH_SECONDS,
            feature_selection=["hrv-time", "hrv-frequency"],
        )
    return features[0], beats


def _clear_cache() -> None:
    from sleepkd.signal import _beats

    with _beats._CACHE_LOCK:
        _beats._CACHE.clear()


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:  # pragma: no cover - not on Windows
        return "unknown"
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min)"


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):  # pragma: no cover
        return "uptime not available; load average " + _load()


def run_only(which: str) -> None:
    """Generate the night and run one pipeline once (for whole-process timing)."""
    logging.basicConfig(level=logging.ERROR)
    X, _ = make_night()
    if which == "yardstick":
        sleepecg_yardstick(X.ravel())
    else:
        sleepkd_frontend(X, which)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "frontend_vs_sleepecg.md"
    )
    parser.add_argument("--only", choices=("neurokit", "sleepecg", "yardstick"))
    args = parser.parse_args(argv)
    if args.only:
        run_only(args.only)
        return ""
    logging.basicConfig(level=logging.ERROR)

    import neurokit2  # noqa: F401  (import costs are not part of the timings)
    import sleepecg

    from sleepkd.signal._beats import _sleepecg_c_routines

    if _sleepecg_c_routines() is None:
        raise SystemExit("sleepecg's C extension is not importable; this benchmark needs it.")

    X, truth = make_night()
    ecg = np.ascontiguousarray(X.ravel())
    tol = int(0.05 * FS)
    load_before = _uptime()

    pipelines = {
        "a": ("sleepkd front-end, method=\"neurokit\"", lambda: sleepkd_frontend(X, "neurokit")),
        "b": ("sleepkd front-end, method=\"sleepecg\"", lambda: sleepkd_frontend(X, "sleepecg")),
        "b2": ("sleepkd front-end, method=\"sleepecg\", n_jobs=2",
               lambda: sleepkd_frontend(X, "sleepecg", n_jobs=2)),
        "c": ("sleepecg: detect_heartbeats (C) + extract_features", lambda: sleepecg_yardstick(ecg)),
    }
    outputs = {}
    for key, (_, func) in pipelines.items():  # warm-up (first-call costs, caches)
        _clear_cache()
        outputs[key] = func()
    times = {key: [] for key in pipelines}
    user = {key: [] for key in pipelines}  # CPU seconds in user mode, all threads
    system = {key: [] for key in pipelines}  # CPU seconds in the kernel (page faults)
    for _ in range(args.repeats):
        for key, (_, func) in pipelines.items():
            _clear_cache()
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            func()
            times[key].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_SELF)
            user[key].append(after.ru_utime - before.ru_utime)
            system[key].append(after.ru_stime - before.ru_stime)
    load_after = _uptime()

    median = {key: statistics.median(t) for key, t in times.items()}
    paired = {  # per-round ratio, median over rounds (robust to drifting load)
        key: statistics.median(t / c for t, c in zip(times[key], times["c"])) for key in times
    }
    found = {
        "a": sleepkd_peaks(outputs["a"][2], "neurokit"),
        "b": sleepkd_peaks(outputs["b"][2], "sleepecg"),
        "b2": sleepkd_peaks(outputs["b2"][2], "sleepecg"),
        "c": outputs["c"][1],
    }
    accuracy = {key: match_beats(peaks, truth, tol) for key, peaks in found.items()}
    n_detected = {key: peaks.size for key, peaks in found.items()}
    rows = [
        f"| ({key}) {name} | {median[key]:.3f} | {min(times[key]):.3f}-{max(times[key]):.3f} "
        f"| {median[key] / median['c']:.2f} | {paired[key]:.2f} "
        f"| {statistics.median(user[key]):.3f} | {statistics.median(system[key]):.3f} "
        f"| {statistics.median(user[key]) / statistics.median(user['c']):.2f} "
        f"| {n_detected[key]} | {accuracy[key][0]:.4f} | {accuracy[key][1]:.4f} |"
        for key, (name, _) in pipelines.items()
    ]
    lines = [
        "# ECG front-end against sleepecg (one run)",
        "",
        f"One synthetic 8-hour night: {N_ROWS} rows x {X.shape[1]} samples at {FS:g} Hz "
        f"(tests/_ecg_fixtures.py, as in bench_frontend.py), {truth.size} true beats. "
        f"(a), (b), (b2), (c) run one after another in each of {args.repeats} rounds in one process, "
        "after one untimed warm-up each; imports not timed.",
        "(a)/(b): BandpassFilter 0.5-40 Hz, HeartRateTransformer (4-Hz HR grid) and "
        "HRVFeatures (8 features) on the 960 rows; (b2): (b) with n_jobs=2 (the zero-phase "
        "filters on two threads, the rest on one). (c): sleepecg's detector on the night "
        "as one signal, then its hrv-time + hrv-frequency features (33 per 30-s epoch).",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"shared with other jobs; Python {platform.python_version()}, numpy {np.__version__}, "
        f"sleepecg {sleepecg.__version__}. OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}.",
        f"Load (`uptime`) before: `{load_before}`; after: `{load_after}`.",
        "",
        "| pipeline | median time (s) | min-max (s) | ratio to (c), of medians "
        "| ratio to (c), median of per-round ratios | user CPU, median (s) | system CPU, median (s) "
        "| user-CPU ratio to (c), of medians | beats detected | sensitivity | PPV |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Accuracy: detections within {tol} samples ({tol / FS * 1000:.0f} ms) of a true beat. "
        "Target (issue 9, item 5): sleepkd's front-end in at most 2x the time of (c); "
        "(b) is the like-for-like row (one thread each), (b2) what a user with two cores gets.",
        "",
    ]
    table = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists():  # keep a hand-written whole-process section below the table
        old = args.out.read_text()
        marker = "\n## Whole-process timing"
        if marker in old:
            table += old[old.index(marker):]
    args.out.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
