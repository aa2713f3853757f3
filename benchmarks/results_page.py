"""Regenerate every number of the results page (``docs/results.rst``), one command.

Runs, one after another, the commands whose outputs the page includes (each writes its
own files; the page includes them unchanged):

1. real beats and stages: ``benchmarks/slpdb_night_student.py`` (the package's night
   student as seed ensembles, the previous per-epoch student and HRV + gradient
   boosting, slpdb, leave one subject out) and
   ``benchmarks/night_slpdb.py`` (the architecture search, with HRV + gradient
   boosting on the same folds), and ``benchmarks/slpdb_protocols.py`` (the same
   models under subject-wise and epoch-wise cross-validation);
2. generated nights with shared latent physiology: ``sleepkd experiment`` with the
   night-level and the per-epoch models side by side (one seed), and the distillation
   evidence of the night students (5 folds x 3 seeds, also scored against the
   generator's latent stage), and the same evidence on
   semi-real nights (real slpdb beats and stages, synthesised EEG);
3. the paper's setting (U-Time on raw 30-s epochs for both networks), and what one
   30-s epoch of beats holds (``benchmarks/single_epoch_heart.py``);
4. speed: ``benchmarks/bench_night.py`` and ``benchmarks/bench_frontend_vs_sleepecg.py``;
5. the demo's table.

Takes several hours on a 2-core CPU. ``--only NAME ...`` runs some of them; ``--list``
prints the commands.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "docs/results"

#: name -> command (run from the repository root with OMP_NUM_THREADS=1).
COMMANDS = {
    # the night student as 1-, 3- and 5-seed ensembles, ContextNet, HRV + boosting
    "slpdb": "python benchmarks/slpdb_night_student.py",
    "slpdb_search": "python benchmarks/night_slpdb.py",
    # the same models scored leave one subject out and with epoch- and block-wise folds
    "slpdb_protocols": "python benchmarks/slpdb_protocols.py",
    # needs `pip install keras` (sleepecg's pretrained MESA models, Keras 3 on torch)
    "slpdb_sleepecg": "python benchmarks/slpdb_sleepecg_reference.py",
    "night_vs_epoch": (
        "sleepkd experiment --data synthetic --physiology shared --n-subjects 20 "
        "--hours 2 --folds 5 --seeds 0 --schemes 4class --max-epochs 20 --quiet "
        f"--out {RESULTS}/synthetic_night_vs_epoch"),
    "distillation": (
        "sleepkd experiment --data synthetic --physiology shared --n-subjects 20 "
        "--hours 2 --folds 5 --seeds 0 1 2 --schemes 4class --max-epochs 20 "
        f"--no-references --quiet --out {RESULTS}/synthetic_night_distillation"),
    "distillation_40": (
        "sleepkd experiment --data synthetic --physiology shared --n-subjects 40 "
        "--hours 2 --folds 5 --seeds 0 1 2 --schemes 4class --max-epochs 20 "
        f"--no-references --quiet --out {RESULTS}/synthetic_night_distillation_40"),
    # the "distillation" run again, scored against the labels and the latent stage
    "latent_truth": "python benchmarks/latent_truth_distillation.py",
    "latent_truth_40": ("python benchmarks/latent_truth_distillation.py --n-subjects 40 "
                        f"--out {RESULTS}/synthetic_latent_truth_40"),
    # few scored nights, the others recorded but unscored (distill_unscored=True)
    "unscored_nights": "python benchmarks/unscored_nights_distillation.py",
    "unscored_nights_3teachers": ("python benchmarks/unscored_nights_distillation.py "
                                  f"--n-teachers 3 --out {RESULTS}/synthetic_unscored_nights_3teachers"),
    "unscored_nights_8scored": ("python benchmarks/unscored_nights_distillation.py "
                                f"--scored 8 --out {RESULTS}/synthetic_unscored_nights_8scored"),
    "semireal": (
        "sleepkd experiment --data semireal --physiology shared --folds 5 --seeds 0 1 2 "
        "--schemes 4class --max-epochs 20 --no-references --quiet "
        f"--out {RESULTS}/semireal_night_distillation"),
    # about 70 min with 2 jobs of one thread (its predictions.csv, 3 MB, is not kept)
    "paper_setting": (
        "sleepkd experiment --models epoch --student-input raw --data synthetic "
        "--physiology shared --n-subjects 20 --hours 2 --folds 5 --seeds 0 1 2 --schemes "
        "4class --max-epochs 15 --patience 0 --jobs 2 --no-references --quiet "
        f"--out {RESULTS}/synthetic_paper_setting"),
    # what one 30-s epoch of beats holds, on the paper-setting run's nights (23 s)
    "single_epoch_heart": "python benchmarks/single_epoch_heart.py",
    "speed": ("python benchmarks/bench_night.py --threads 1 --student-epochs 20 "
              "--teacher-epochs 20"),
    # needs sleepecg (the "sleepecg" extra); the page quotes three runs of it
    "frontend": "python benchmarks/bench_frontend_vs_sleepecg.py --repeats 9",
    "demo": f"sleepkd demo --quiet --out {RESULTS}/demo_run",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(COMMANDS))
    parser.add_argument("--list", action="store_true", help="print the commands and exit")
    args = parser.parse_args(argv)
    names = args.only or list(COMMANDS)
    for name in names:
        print(f"[{name}] OMP_NUM_THREADS=1 {COMMANDS[name]}", flush=True)
        if args.list:
            continue
        code = subprocess.call(shlex.split(COMMANDS[name]), cwd=ROOT,
                               env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
        if code:
            print(f"[{name}] failed with exit code {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
