"""Speed of the night-level models on this CPU: training, staging one night, the cascade.

Measures, on generated 8-hour nights (``make_synthetic_psg``, shared latent physiology):

1. training throughput of the heart-rate night student (``ECGNightStudent`` with the
   ``sleepkd train`` recipe), in scored epochs per second of ``fit`` (every training
   epoch passes over all training nights once; the one-off torch import is excluded by
   a warm-up fit);
2. the time to stage one 8-hour night once its beats are known
   (``NightStagingModel.predict_beats``: heart rate from the beats, per-night
   standardisation, the network), median of repeats;
3. the whole cascade (EEG night teacher + heart-rate night student with soft-label
   distillation) on ``--nights`` nights, with the number of training epochs each
   network ran and its validation score.

Writes a markdown table to ``benchmarks/results/night.md``. Run on an idle machine:
``python benchmarks/bench_night.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=20)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--student-epochs", type=int, default=40)
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="4 nights of 2 h, few epochs")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "night.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.nights, args.hours, args.student_epochs, args.teacher_epochs = 4, 2.0, 3, 2

    import torch

    torch.set_num_threads(args.threads)
    from sleepkd import DistilledECGStager
    from sleepkd.datasets import make_synthetic_psg
    from sleepkd.evaluation._night_bundle import NightStagingModel
    from sleepkd.evaluation._recipes import night_inputs, night_student, night_teacher

    (gen, t_gen) = _timed(make_synthetic_psg, n_subjects=args.nights, hours=args.hours,
                          fs_ecg=50.0, fs_eeg=50.0, physiology="shared",
                          return_recordings=True, random_state=0)
    data, t_inputs = _timed(night_inputs, gen.recordings, scheme="4class", fs_eeg=50.0)
    n_rows = len(data.y)
    rows = []

    # 1. student training throughput (no early stopping: a fixed number of epochs)
    night_student(max_epochs=1, patience=None).fit(data.X[:200], data.y[:200])  # warm-up
    student = night_student(max_epochs=args.student_epochs, patience=None)
    _, t_fit = _timed(student.fit, data.X, data.y, nights=data.nights, groups=data.groups)
    valid_groups = set(student.valid_groups_)
    n_train = int(np.sum((data.y != "?") & ~np.isin(data.groups, list(valid_groups))))
    rate = n_train * args.student_epochs / t_fit
    rows.append(("heart-rate night student: training", f"{rate:,.0f} scored epochs/s",
                 f"{n_train} scored training epochs x {args.student_epochs} epochs in "
                 f"{t_fit:.1f} s (validation on {len(valid_groups)} nights included)"))

    # 2. staging one night from its beats
    model = NightStagingModel(student, scheme="4class")
    beats = gen.recordings[0].beat_times
    n_epochs = gen.recordings[0].n_epochs
    model.predict_beats(beats, n_epochs=n_epochs)
    times = [_timed(model.predict_beats, beats, n_epochs=n_epochs)[1] for _ in range(7)]
    rows.append((f"stage one {args.hours:g}-h night from its beats", f"{np.median(times):.3f} s",
                 f"median of 7 (min {min(times):.3f} s, max {max(times):.3f} s); "
                 f"{len(beats)} beats, {n_epochs} epochs"))

    # 3. the whole cascade
    stager = DistilledECGStager(
        teacher=night_teacher(max_epochs=args.teacher_epochs, fs_eeg=50.0),
        student=night_student(max_epochs=args.student_epochs), strategy="sd+cl",
        random_state=0)
    _, t_cascade = _timed(stager.fit, data.X, data.y, X_eeg=data.X_eeg, groups=data.groups,
                          nights=data.nights)
    h_t, h_s = stager.history_["teacher"], stager.history_["student"]
    best_s = max(r.get("valid_f1", 0) for r in h_s)
    rows.append((f"cascade on {args.nights} nights of {args.hours:g} h", f"{t_cascade:.0f} s",
                 f"teacher {len(h_t)} epochs (validation kappa "
                 f"{stager.teacher_valid_kappa_:.2f}), student {len(h_s)} epochs "
                 f"(best validation weighted F1 {best_s:.2f}); plus generation "
                 f"{t_gen:.0f} s and inputs {t_inputs:.0f} s"))

    lines = [
        "# Night-level models: speed on this machine",
        "",
        f"`python benchmarks/bench_night.py{' --quick' if args.quick else ''} --threads "
        f"{args.threads} --student-epochs {args.student_epochs} --teacher-epochs "
        f"{args.teacher_epochs}` on "
        f"{args.nights} synthetic nights of {args.hours:g} h ({n_rows} epochs; "
        "make_synthetic_psg, shared latent physiology, EEG at 50 Hz, heart rate at 2 Hz), "
        f"{args.threads} torch thread(s), {platform.machine()}, torch {torch.__version__}.",
        "",
        "| what | result | details |",
        "|---|---:|---|",
    ] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", f"Machine load at the end (`uptime`): {os.getloadavg()[0]:.1f} "
              f"(1-min average on {os.cpu_count()} CPUs); other jobs slow every figure."]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
