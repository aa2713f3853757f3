"""Benchmark the ECG front-end on one synthetic 8-hour night at 256 Hz.

960 rows of 30 s (7680 samples) from ``tests/_ecg_fixtures.py`` (Gaussian-wave beats at
~60 bpm with RR variability, baseline wander and noise). Times, each the median of
``--repeats`` runs:

- BandpassFilter (0.5-40 Hz, order 4) fit_transform,
- HeartRateTransformer fit_transform (R-peak detection + 4-Hz heart-rate grid),
- HRVFeatures fit_transform (R-peak detection + 8 HRV features),
- the whole front-end: band-pass, then heart rate and HRV features (the second
  transformer reuses the first one's R-peaks through the one-entry detection cache).

Run from the repository root::

    python benchmarks/bench_frontend.py [--repeats 5]

Writes ``benchmarks/results/frontend.md`` and prints the same table.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _ecg_fixtures import synth_ecg_rows  # noqa: E402

from sleepkd.signal import BandpassFilter, HeartRateTransformer, HRVFeatures  # noqa: E402
from sleepkd.signal import _beats  # noqa: E402
from sleepkd.signal._beats import detect_beats_rows  # noqa: E402

FS = 256.0
N_ROWS = 960  # 8 hours of 30-s epochs


def _median_time(func, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        _beats._CACHE.clear()  # time real detection, not the one-entry cache
        start = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "frontend.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    X, _, row_beats = synth_ecg_rows(N_ROWS, FS, row_seconds=30.0, mean_hr=60.0)
    import neurokit2  # noqa: F401  (import cost is not part of the timings)

    bandpass = BandpassFilter(fs=FS, low=0.5, high=40.0, order=4)
    heart_rate = HeartRateTransformer(fs=FS)
    hrv = HRVFeatures(fs=FS)

    def whole():
        filtered = bandpass.fit_transform(X)
        return heart_rate.fit_transform(filtered), hrv.fit_transform(filtered)

    rows = []
    t_filter, filtered = _median_time(lambda: bandpass.fit_transform(X), args.repeats)
    rows.append(("BandpassFilter", t_filter))
    t_detect, _ = _median_time(lambda: detect_beats_rows(filtered, FS), args.repeats)
    rows.append(("R-peak detection alone (shared helper)", t_detect))
    t_hr, _ = _median_time(lambda: heart_rate.fit_transform(filtered), args.repeats)
    rows.append(("HeartRateTransformer (detection + HR grid)", t_hr))
    t_hrv, _ = _median_time(lambda: hrv.fit_transform(filtered), args.repeats)
    rows.append(("HRVFeatures (detection + features)", t_hrv))
    t_all, (hr_out, hrv_out) = _median_time(whole, args.repeats)
    rows.append(("whole front-end (filter + HR + HRV)", t_all))

    n_detected = sum(p.size for p in detect_beats_rows(filtered, FS).peaks)
    n_true = sum(p.size for p in row_beats)
    try:
        load = ", load average %.1f" % os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on Windows
        load = ""
    lines = [
        "# ECG front-end benchmark",
        "",
        f"One synthetic 8-hour night: {N_ROWS} rows x {X.shape[1]} samples at {FS:g} Hz "
        f"(tests/_ecg_fixtures.py). Median of {args.repeats} runs; fit_transform timings.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs{load}; "
        f"Python {platform.python_version()}, numpy {np.__version__}.",
        "",
        "| step | median time (s) |",
        "|---|---|",
        *[f"| {name} | {t:.2f} |" for name, t in rows],
        "",
        f"Beats detected: {n_detected} (true beats: {n_true}). "
        f"Outputs: heart rate {hr_out.shape}, HRV {hrv_out.shape}.",
        "Target: whole front-end under 5 s on 2 cores.",
        "",
    ]
    table = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
