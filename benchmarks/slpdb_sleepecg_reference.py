"""External yardstick on slpdb: sleepecg's pretrained MESA classifiers, no training.

sleepecg (BSD) ships two WAKE-REM-NREM classifiers trained on about 2,000 MESA nights,
``wrn-gru-mesa`` and ``wrn-gru-mesa-weighted`` (class-weighted loss): a bidirectional
GRU over per-epoch HRV features (26 time-domain + 7 frequency-domain, window 120 s
before to 150 s after each epoch onset) plus three constant features, the recording
start time (clock time), age and gender. This script applies them, through sleepecg's
public API (``load_classifier``, ``SleepRecord``, ``SubjectData``, ``stage``), to the
14 shipped slpdb records read with sleepkd's own reader, and scores them on exactly
the scored epochs of ``benchmarks/slpdb_night_student.py``'s 3-class LOSO table (the
epochs that ``night_inputs(load_slpdb(), scheme="4class", eeg=False)`` labels; MT / M
and unannotated epochs are left out the same way). No model saw slpdb, so every record
is a test record.

How the sleepecg records are built (one ``SleepRecord`` per slpdb record):

- ``heartbeat_times``: the reviewed beat annotations in seconds from the record start
  (``Recording.beat_times``, every beat type, as sleepkd's student gets them;
  sleepecg's own ``read_slpdb`` instead detects beats in the ECG waveform, which the
  shipped copy lacks). sleepecg drops RR intervals outside 0.3-2 s itself.
- time origin: the record start, as in sleepecg's ``read_slpdb``. sleepecg's epoch
  ``i`` covers ``[30 i, 30 i + 30)`` s; slpdb's stage annotation ``k`` sits at
  ``30 i`` s or 4 ms later (sample 1 for the first one), so each of our epochs is
  matched to sleepecg's epoch ``round(onset / 30)`` (the script checks every onset is
  within 10 ms of that grid and that no two epochs share an index).
- ``sleep_stages``: all ``UNDEFINED``, only to fix the night length (up to the last
  annotated epoch); ``sleepecg.stage`` does not use stage labels, so no label reaches
  the classifier.
- ``recording_start_time``: the header's base time (every shipped header has one).
- ``subject_data``: gender male (all slpdb subjects are men; the headers say ``M``),
  age and weight from the header comment (``'44 M 89 32-01-89'``). slp67x's age is
  ``x`` (unknown): by default it stays ``None``, as sleepecg's own ``read_slpdb``
  leaves it, which sleepecg turns into its mask value -1 (``--age-unknown mean`` fills
  the mean age of the other 11 subjects instead); slp67x under the other choice is
  reported too. Weight (unknown for slp48 and slp67x) is not a feature of these models.

sleepecg's ``stage(..., return_mode="prob")`` gives probabilities over UNDEFINED, NREM,
REM, WAKE; the predicted stage is the most probable of NREM / REM / WAKE (how often the
UNDEFINED output would have won is reported). NREM -> N, REM -> R, WAKE -> W; the truth
merges our Light and Deep into N, as the LOSO table does.

Needs ``pip install keras`` beside sleepecg >= 0.6 (sleepecg's ``full`` extra): sleepecg
0.6 runs its Keras 3 models on the PyTorch backend by default, so TensorFlow is not
needed (older sleepecg, < 0.6, needs ``pip install tensorflow-cpu`` instead). Neither is
a sleepkd dependency. ``KERAS_BACKEND=tensorflow`` with ``pip install tensorflow-cpu``
runs the same models on TensorFlow; with sleepecg 0.6.0, Keras 3.15.1 and TensorFlow
2.21.0 that gave the same table (probabilities within 1e-6 of the torch backend's).

Run: ``OMP_NUM_THREADS=1 python benchmarks/slpdb_sleepecg_reference.py`` (about a minute
on 2 cores). Writes ``benchmarks/results/slpdb_sleepecg_reference.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import time
from pathlib import Path

import numpy as np

MODELS = ("wrn-gru-mesa", "wrn-gru-mesa-weighted")
#: sleepecg's wake-rem-nrem output columns after UNDEFINED (column 0): NREM, REM, WAKE.
SLEEPECG_TO_OURS = {1: "N", 2: "R", 3: "W"}
GRID_TOLERANCE_S = 0.01


def _base_time(text: str | None, name: str) -> datetime.time:
    """WFDB base time ``'0:49:0'`` / ``'23:07:00'`` -> ``datetime.time``."""
    match = re.fullmatch(r"(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d*)?)?", text or "")
    if match is None:
        raise ValueError(f"{name}: header has no usable base time ({text!r}).")
    hour, minute, second = (int(g) if g else 0 for g in match.groups())
    return datetime.time(hour % 24, minute, second)


def _sleep_record(rec, n_epochs: int, age):
    import sleepecg

    info = rec.info
    sex = (info.get("sex") or "").upper()
    gender = {"M": sleepecg.Gender.MALE, "F": sleepecg.Gender.FEMALE}.get(sex)
    return sleepecg.SleepRecord(
        sleep_stages=np.full(n_epochs, sleepecg.SleepStage.UNDEFINED),
        sleep_stage_duration=30,
        id=rec.name,
        recording_start_time=_base_time(info.get("base_time"), rec.name),
        heartbeat_times=np.asarray(rec.beat_times, dtype=float),
        subject_data=sleepecg.SubjectData(gender=gender, age=age,
                                          weight=info.get("weight_kg")),
    )


def _scores(y_true, y_pred):
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    return (cohen_kappa_score(y_true, y_pred), f1_score(y_true, y_pred, average="weighted"),
            accuracy_score(y_true, y_pred))


def _student_reference(path: Path) -> str | None:
    """The ECGNightStudent row's 3-class kappa from the LOSO table, if it is there."""
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        if line.startswith("| ECGNightStudent"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            return cells[2] if len(cells) > 2 else None
    return None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--age-unknown", choices=("none", "mean"), default="none",
                        help="age for a header that gives none (slp67x): None as "
                             "sleepecg's read_slpdb (default), or the other subjects' mean")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "slpdb_sleepecg_reference.md"))
    args = parser.parse_args(argv)

    os.environ.setdefault("KERAS_BACKEND", "torch")
    import torch

    torch.set_num_threads(1)
    t_import = time.perf_counter()
    import keras
    import sleepecg
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    from sleepkd.evaluation._recipes import night_inputs
    from sleepkd.io import load_slpdb

    t_imports = time.perf_counter() - t_import
    t0 = time.perf_counter()
    recordings = load_slpdb()
    data = night_inputs(recordings, scheme="4class", eeg=False)
    t_load = time.perf_counter() - t0
    scored = data.y != "?"
    y_true = np.where(np.isin(data.y, ["L", "D"]), "N", data.y)[scored]
    records, groups, onsets = data.records[scored], data.groups[scored], data.onsets[scored]
    n_scored = int(scored.sum())

    # map every scored epoch to sleepecg's 30-s grid from the record start
    index = np.rint(onsets / 30.0).astype(int)
    off_grid = np.abs(onsets - 30.0 * index)
    if off_grid.max() > GRID_TOLERANCE_S:
        raise RuntimeError(f"an epoch onset is {off_grid.max():.3f} s off the 30-s grid")
    for name in np.unique(records):
        if len(np.unique(index[records == name])) != np.count_nonzero(records == name):
            raise RuntimeError(f"{name}: two epochs map to one sleepecg epoch")

    known_ages = {rec.subject: rec.info["age"] for rec in recordings
                  if rec.info.get("age") is not None}
    mean_age = int(round(np.mean(list(known_ages.values()))))
    unknown_age = [rec.name for rec in recordings if rec.info.get("age") is None]

    def age_of(rec, mode):
        if rec.info.get("age") is not None:
            return int(rec.info["age"])
        return mean_age if mode == "mean" else None

    other_mode = "mean" if args.age_unknown == "none" else "none"
    by_name = {rec.name: rec for rec in recordings}
    results, per_record, alt = {}, {}, {}
    for model in MODELS:
        t0 = time.perf_counter()
        clf = sleepecg.load_classifier(model, "SleepECG")
        t_model = time.perf_counter() - t0
        t0 = time.perf_counter()
        y_pred = np.empty(n_scored, dtype=object)
        n_undefined = 0
        for name in dict.fromkeys(records):  # record order of night_inputs
            rec, rows = by_name[name], np.flatnonzero(records == name)
            n_epochs = int(index[rows].max()) + 1
            night = _sleep_record(rec, n_epochs, age_of(rec, args.age_unknown))
            proba = sleepecg.stage(clf, night, return_mode="prob")
            if proba.shape != (n_epochs, 4):
                raise RuntimeError(f"{name}: sleepecg returned {proba.shape} probabilities")
            picked = proba[index[rows]]
            n_undefined += int(np.count_nonzero(picked.argmax(axis=1) == 0))
            y_pred[rows] = [SLEEPECG_TO_OURS[k] for k in picked[:, 1:].argmax(axis=1) + 1]
        elapsed = time.perf_counter() - t0
        y_pred = y_pred.astype(str)
        per_subject, kappas = [], {}
        for subject in sorted(set(groups)):
            rows = groups == subject
            if len(set(y_true[rows]) | set(y_pred[rows])) > 1:
                per_subject.append(cohen_kappa_score(y_true[rows], y_pred[rows]))
        for name in dict.fromkeys(records):
            rows = records == name
            kappas[name] = (cohen_kappa_score(y_true[rows], y_pred[rows])
                            if len(set(y_true[rows]) | set(y_pred[rows])) > 1 else np.nan)
        for name in unknown_age:  # the other choice of the unknown age, for this record
            rec, rows = by_name[name], np.flatnonzero(records == name)
            proba = sleepecg.stage(clf, _sleep_record(rec, int(index[rows].max()) + 1,
                                                      age_of(rec, other_mode)),
                                   return_mode="prob")[index[rows]]
            y_alt = y_pred.copy()
            y_alt[rows] = [SLEEPECG_TO_OURS[k] for k in proba[:, 1:].argmax(axis=1) + 1]
            alt[(model, name)] = (cohen_kappa_score(y_true[rows], y_alt[rows]),
                                  cohen_kappa_score(y_true, y_alt))
        results[model] = {
            "pooled": _scores(y_true, y_pred), "subject": (np.mean(per_subject),
                                                           np.std(per_subject, ddof=1)),
            "record": (np.nanmean(list(kappas.values())),
                       np.nanstd(list(kappas.values()), ddof=1)),
            "time": elapsed, "load": t_model, "undefined": n_undefined,
            "confusion": confusion_matrix(y_true, y_pred, labels=["W", "N", "R"]),
        }
        per_record[model] = kappas
        print(model, results[model], flush=True)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        backend = f"tensorflow backend (TensorFlow {tf.__version__})"
    else:
        backend = (f"{keras.backend.backend()} backend (torch {torch.__version__}, 1 thread; "
                   "TensorFlow not used)")
    n_late = sum(_base_time(rec.info.get("base_time"), rec.name).hour < 12
                 for rec in recordings)
    n_rec = {name: int(np.count_nonzero(records == name)) for name in dict.fromkeys(records)}
    total = sum(len(rec.stages) for rec in recordings)
    student = _student_reference(Path(__file__).parent / "results" / "slpdb_night_student.md")
    cmd = "OMP_NUM_THREADS=1 python benchmarks/slpdb_sleepecg_reference.py" + (
        f" --age-unknown {args.age_unknown}" if args.age_unknown != "none" else "")
    n_outside = int(data.dropped["outside_signal"] + data.dropped["nonfinite"])
    dropped_text = (f", and {n_outside} that the heart-rate cutting of the LOSO table drops"
                    if n_outside else "")
    age_text = ", ".join(unknown_age) or "none"
    lines = [
        "# slpdb: sleepecg's pretrained MESA classifiers as an external yardstick",
        "",
        f"`{cmd}`: sleepecg {sleepecg.__version__} (`sleepecg.stage` with its bundled "
        f"`wrn-gru-mesa` and `wrn-gru-mesa-weighted`), Keras {keras.__version__} on the "
        f"{backend}, {platform.machine()}. The models were trained by sleepecg's authors "
        "on 1,971 MESA nights (older US adults, men and women, mean age about 69, recorded "
        "2010-12) from HRV features, clock time and age/gender; here they stage the 14 shipped "
        "slpdb records (12 men aged 32-56 with obstructive sleep apnoea, recorded in "
        "1989-90, R&K scoring) from the real beat annotations, with no training or "
        "tuning on slpdb: every record is a test record. sleepecg's authors report "
        "kappa 0.54 / 0.53 (3-class) for these models on 1,000 SHHS nights.",
        "",
        f"Scored epochs: {n_scored} of {total} (the {int(np.sum(data.y == '?'))} MT / M and "
        f"unannotated epochs left out{dropped_text}), the same epochs and labels as the 3-class column of "
        "`slpdb_night_student.md` (W / NREM = Light + Deep / REM). sleepecg's epoch "
        "`round(onset / 30)` from the record start is matched to each of ours (onsets sit "
        f"on that grid to within {off_grid.max() * 1000:.0f} ms). Inputs filled in: "
        "gender male for all (headers: M); recording start time = header base time; age "
        f"from the header, unknown for {age_text} (left `None`, i.e. sleepecg's mask "
        f"value -1, as sleepecg's own `read_slpdb` does"
        + ("" if args.age_unknown == "none" else f"; this run: the mean {mean_age} of the "
           "other subjects") + "). Predicted stage = most probable of NREM / REM / WAKE "
        f"(the UNDEFINED output would have won on {results[MODELS[0]]['undefined']} / "
        f"{results[MODELS[1]]['undefined']} epochs).",
        "",
        "Pooled over all scored epochs; subject = mean +- std of the 12 subjects' kappas "
        "(slp01a/b and slp02a/b pooled per subject, as the LOSO table's folds); record = "
        "mean +- std of the 14 records' kappas. Time: feature extraction + staging of the "
        "14 records (model loading and imports not included).",
        "",
        "| model | kappa 3-class | F1w 3 | accuracy 3 | subject kappa 3 | record kappa 3 | "
        "time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model, r in results.items():
        k, f, a = r["pooled"]
        lines.append(f"| sleepecg `{model}` (MESA, no slpdb training) | {k:.3f} | {f:.3f} | "
                     f"{a:.3f} | {r['subject'][0]:.3f} +- {r['subject'][1]:.3f} | "
                     f"{r['record'][0]:.3f} +- {r['record'][1]:.3f} | {r['time']:.1f} |")
    ours = (f"sleepkd's ECGNightStudent, trained leave-one-subject-out on the other "
            f"slpdb subjects, reaches a pooled 3-class kappa of {student} on the same "
            "epochs (`slpdb_night_student.md`). " if student else "")
    lines += ["", "What it means: " + ours + "An off-the-shelf ECG stager trained on a large "
              f"cohort does not transfer to these records: kappa "
              f"{results[MODELS[0]]['pooled'][0]:.2f} / {results[MODELS[1]]['pooled'][0]:.2f} "
              "here against its 0.54 / 0.53 on SHHS. The cohorts differ in age (32-56 "
              "against about 69 on average), in disease (every slpdb subject has obstructive "
              "apnoea, whose cyclic heart-rate changes shape the HRV features), in clock "
              f"time ({n_late} of the {len(recordings)} records start after midnight; slp01b "
              "and slp02b are second halves of a night) and in scoring (R&K, by the 1989 "
              "scorers); this script does not separate these causes. The yardstick says what "
              "a ready-made ECG stager gets on these records; it does not bound what a model "
              "trained on slpdb can reach."]
    lines += ["", "Per record (3-class kappa; n = scored epochs):", "",
              "| record | n | " + " | ".join(f"`{m}`" for m in MODELS) + " |",
              "|---|---:|" + "---:|" * len(MODELS)]
    for name, n in n_rec.items():
        lines.append(f"| {name} | {n} | " + " | ".join(
            f"{per_record[m][name]:.3f}" for m in MODELS) + " |")
    lines += ["", "Pooled confusion matrices (rows: expert W / N / R; columns: predicted "
              "W / N / R):", ""]
    for model in MODELS:
        c = results[model]["confusion"]
        lines.append(f"- `{model}`: " + "; ".join(" ".join(f"{v:d}" for v in row) for row in c))
    if alt:
        other = (f"the mean {mean_age} of the other subjects" if other_mode == "mean"
                 else "`None`, i.e. mask -1")
        lines += ["", f"Unknown age, the other choice ({other}): " + "; ".join(
            f"`{m}` {n}: record kappa {a:.3f}, pooled kappa {p:.3f}"
            for (m, n), (a, p) in alt.items()) + "."]
    lines += ["", f"Reading the records and cutting the epochs: {t_load:.1f} s; loading each "
              f"model: {results[MODELS[0]]['load']:.1f} / {results[MODELS[1]]['load']:.1f} s; "
              f"imports (Keras, sleepecg, sleepkd): {t_imports:.1f} s."]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
