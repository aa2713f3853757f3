"""Benchmark training throughput and inference time of teachers, students and cascade.

Throughput is measured in 30-s epochs of data per second of wall time, for one pass
over ``--n-train`` random epochs (content does not change the cost), for:

- stage 1: the teacher (class-weighted cross-entropy) on EEG at 100 Hz,
- stage 2: attention-transfer pre-training of a student against the frozen teacher,
- stage 3: soft-label distillation + cross-entropy,

and the inference time of each student for one 8-hour night (960 epochs). With
``--nights N`` it also times a whole ``DistilledECGStager`` cascade (AT+SD+CL, the
demo's configuration, ``--max-epochs`` epochs per stage) on N generated 8-hour
nights from ``make_synthetic_psg``.

Run from the repository root::

    python benchmarks/bench_distillation.py [--n-train 1024] [--nights 20]

Writes ``benchmarks/results/distillation.md`` and prints the same table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sleepkd import DistilledECGStager, ECGStudent, EEGTeacher  # noqa: E402

NIGHT = 960  # 30-s epochs in 8 hours
CLASSES = np.array(["W", "L", "D", "R"])

#: (name, module, module_params, rows in Hz, context epochs each side)
TEACHERS = [
    ("U-Time (paper), EEG 100 Hz", "utime", None, 100.0, 0),
    ("compact U-Time, EEG 100 Hz", "compact", None, 100.0, 0),
]
STUDENTS = [
    ("U-Time (paper), ECG 200 Hz", "utime", None, 200.0, 0),
    ("compact U-Time, ECG 200 Hz", "compact", None, 200.0, 0),
    ("compact U-Time, ECG 100 Hz", "compact", None, 100.0, 0),
    ("context net (TCN), heart rate 4 Hz, +-4 epochs", "context",
     {"n_context": 4, "sequence": "tcn"}, 4.0, 4),
    ("context net (GRU), ECG 100 Hz, +-2 epochs", "context",
     {"n_context": 2}, 100.0, 2),
]


def _rows(n, fs, context, rng):
    return rng.standard_normal((n, int(30 * fs) * (2 * context + 1))).astype(np.float32)


def _one_pass(estimator_factory, X, y, X_eeg=None, strategy=None, stage_teacher=None):
    """Seconds for one training pass over X (no validation)."""
    start = time.perf_counter()
    if strategy is None:
        estimator_factory().fit(X, y)
    else:
        from sklearn.frozen import FrozenEstimator

        DistilledECGStager(teacher=FrozenEstimator(stage_teacher),
                           student=estimator_factory(), strategy=strategy,
                           pretrain_epochs=1, validation_fraction=None,
                           random_state=0, verbose=0).fit(X, y, X_eeg=X_eeg)
    return time.perf_counter() - start


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--nights", type=int, default=0,
                        help="also time a whole cascade on this many 8-h nights")
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--skip-utime", action="store_true",
                        help="skip the paper-size U-Time (slow on CPU)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "distillation.md")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    n = args.n_train
    y = CLASSES[rng.integers(0, 4, n)]
    common = dict(max_epochs=1, validation_fraction=None, patience=None, verbose=0,
                  random_state=0, batch_size=64)
    lines = [
        "# Distillation: training throughput and inference time",
        "",
        f"Command: `python benchmarks/bench_distillation.py --n-train {n}"
        + (f" --nights {args.nights} --max-epochs {args.max_epochs}" if args.nights else "")
        + (" --skip-utime" if args.skip_utime else "") + "`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; batch 64; one pass over {n} random 30-s epochs.",
        "",
        "| model | stage | train epochs/s | inference, one 8-h night (s) |",
        "|---|---|---:|---:|",
    ]
    X_eeg = _rows(n, 100.0, 0, rng)
    fitted_teacher = None
    for name, module, params, fs, ctx in TEACHERS:
        if args.skip_utime and module == "utime":
            continue
        factory = lambda: EEGTeacher(module=module, module_params=params, **common)  # noqa: E731
        seconds = _one_pass(factory, X_eeg, y)
        teacher = factory().fit(X_eeg[:128], y[:128])
        start = time.perf_counter()
        teacher.predict(_rows(NIGHT, fs, ctx, rng))
        infer = time.perf_counter() - start
        lines.append(f"| teacher: {name} | 1: CE | {n / seconds:.1f} | {infer:.2f} |")
        print(lines[-1], flush=True)
        if module == "compact":
            fitted_teacher = factory().fit(X_eeg, y)
    for name, module, params, fs, ctx in STUDENTS:
        if args.skip_utime and module == "utime":
            continue
        X = _rows(n, fs, ctx, rng)
        factory = lambda: ECGStudent(module=module, module_params=params, **common)  # noqa: E731
        seconds = _one_pass(factory, X, y)
        student = factory().fit(X[:128], y[:128])
        start = time.perf_counter()
        student.predict(_rows(NIGHT, fs, ctx, rng))
        infer = time.perf_counter() - start
        lines.append(f"| student: {name} | 3: CE | {n / seconds:.1f} | {infer:.2f} |")
        print(lines[-1], flush=True)
        # the cascade stages against the compact teacher (stage 2 = AT pass + CE pass)
        kd = _one_pass(factory, X, y, X_eeg, "sd+cl", fitted_teacher)
        lines.append(f"| student: {name} | 3: SD+CL | {n / kd:.1f} | |")
        print(lines[-1], flush=True)
        at_cl = _one_pass(factory, X, y, X_eeg, "at+cl", fitted_teacher)
        at = max(at_cl - seconds, 1e-9)
        lines.append(f"| student: {name} | 2: AT | {n / at:.1f} | |")
        print(lines[-1], flush=True)
    if args.nights:
        lines += _cascade_on_nights(args.nights, args.max_epochs)
    table = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)
    return table


def _cascade_on_nights(n_nights: int, max_epochs: int) -> list[str]:
    """Time a whole AT+SD+CL cascade on generated nights (the demo's configuration)."""
    from sleepkd.cli._demo import DEMO_FS, heart_rate_inputs, network_config
    from sleepkd.datasets import make_synthetic_psg

    start = time.perf_counter()
    data = make_synthetic_psg(n_subjects=n_nights, hours=8.0, fs_ecg=DEMO_FS,
                              fs_eeg=DEMO_FS, scheme="4class", random_state=0)
    t_data = time.perf_counter() - start
    start = time.perf_counter()
    data, _ = heart_rate_inputs(data)
    t_front = time.perf_counter() - start
    config = network_config(max_epochs, quiet=True)
    stager = DistilledECGStager(teacher=config["teacher"], student=config["student"],
                                strategy="at+sd+cl", random_state=0, verbose=0,
                                **config["stager_params"])
    start = time.perf_counter()
    stager.fit(data.X_ecg, data.y, X_eeg=data.X_eeg, groups=data.groups)
    t_fit = time.perf_counter() - start
    n = len(data.y)
    return [
        "",
        f"Whole cascade (AT+SD+CL) on {n_nights} generated 8-h nights ({n} epochs), "
        f"{max_epochs} epochs per stage (AT pre-training {config['stager_params']['pretrain_epochs']}), "
        "the demo's networks (narrow compact U-Time teacher on EEG at 50 Hz, context-net "
        "student on per-night standardised heart rate at 4 Hz with +-4 epochs):",
        "",
        "| step | seconds |",
        "|---|---:|",
        f"| generate nights | {t_data:.1f} |",
        f"| heart rate + context (front-end) | {t_front:.1f} |",
        f"| fit cascade (3 stages) | {t_fit:.1f} |",
    ]


if __name__ == "__main__":
    main()
