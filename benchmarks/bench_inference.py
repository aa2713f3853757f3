"""Time staging one 8-hour night (960 epochs) with fitted students, through the estimator.

Each student is fitted for one epoch on 128 random rows (weights do not change the
cost), then ``predict`` runs on 960 rows; median of 3 runs after one warm-up call, with
the estimator's default batch size (64) and torch's default threads.

Run from the repository root::

    python benchmarks/bench_inference.py

Writes ``benchmarks/results/inference.md`` and prints the same table.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sleepkd import ECGStudent  # noqa: E402

STUDENTS = [
    ("compact U-Time, ECG 200 Hz", "compact", None, 6000),
    ("compact U-Time, ECG 100 Hz", "compact", None, 3000),
    ("context net (GRU), heart rate 4 Hz, +-4 epochs", "context", {"n_context": 4}, 1080),
    ("context net (TCN), heart rate 4 Hz, +-4 epochs", "context",
     {"n_context": 4, "sequence": "tcn"}, 1080),
]


def main() -> str:
    rng = np.random.default_rng(0)
    lines = [
        "# Staging one 8-hour night (960 epochs) with a fitted student",
        "",
        "Command: `python benchmarks/bench_inference.py`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f} at start.",
        "",
        "| student | input samples per row | predict, one night (s) |",
        "|---|---:|---:|",
    ]
    y = np.array(["W", "L", "D", "R"] * 32)
    for name, module, params, n_times in STUDENTS:
        X = rng.standard_normal((128, n_times)).astype(np.float32)
        student = ECGStudent(module=module, module_params=params, max_epochs=1,
                             validation_fraction=None, verbose=0, random_state=0).fit(X, y)
        night = rng.standard_normal((960, n_times)).astype(np.float32)
        student.predict(night[:8])
        times = []
        for _ in range(3):
            start = time.perf_counter()
            student.predict(night)
            times.append(time.perf_counter() - start)
        lines.append(f"| {name} | {n_times} | {statistics.median(times):.2f} |")
        print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    out = ROOT / "benchmarks" / "results" / "inference.md"
    out.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
