"""How much stage information do the generated nights carry, and how fast are they made?

Measures, with scikit-learn only:

(a) EEG: a band-power classifier (log band powers delta / slow / theta / alpha / sigma /
    beta, relative powers and ratios; StandardScaler + LogisticRegression), 5-class
    (and 4-class), subject-wise GroupKFold, Cohen's kappa on the pooled predictions;
    on fully synthetic nights (several seeds) and on semi-real nights (slpdb stages).
(b) HRV: the same protocol with heart-rate-variability features per epoch (mean HR,
    SDNN, RMSSD, pNN50, LF, HF, LF/HF, respiratory peak of the RR spectrum over a 2-min
    window; features z-scored within each night; +-2 epochs of context), computed from
    the exact beat times (an upper bound for an ECG stager: no detection errors). On
    synthetic beats and on the REAL slpdb beats (the reference a generator should not
    beat by much).
(c) Per physiology mode (``"shared"``: a latent state drives EEG and ECG and the labels
    are a noisy scorer's reading of the latent stage; ``"labels"``: EEG and ECG drawn
    from the labels): the scorer's agreement with the latent stage (kappa, and how much
    more often it disagrees on transition epochs), the EEG classifier's kappa against
    the latent stage, and whether the EEG carries heart information beyond the label:
    within-(subject, label) Pearson correlations between the epoch's mean heart rate
    (exact beats) and (i) the EEG arousal feature log 8-30 Hz power (all sleep epochs),
    (ii) the EEG depth feature log 0.5-2 Hz power (N2 + N3 epochs).
(d) Generation time of 1 and of 20 nights of 8 h (ECG 200 Hz, EEG 100 Hz), including
    make_epochs, per physiology mode.

Writes ``benchmarks/results/generated_data_honesty.md``. Run from the repository root::

    python benchmarks/generated_data_honesty.py            # full (about 10 minutes)
    python benchmarks/generated_data_honesty.py --quick    # smoke run (about 1 minute)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

# One BLAS thread: on small problems (and on a busy 2-core machine) threads fighting
# over cores make LogisticRegression 20x slower. Must be set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy.signal import welch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import cohen_kappa_score  # noqa: E402
from sklearn.model_selection import GroupKFold, cross_val_predict  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sleepkd.datasets import make_semireal_psg, make_synthetic_psg  # noqa: E402
from sleepkd.stages import to_scheme  # noqa: E402

EEG_BANDS = {"delta": (0.5, 2.0), "slow": (2.0, 4.0), "theta": (4.0, 8.0),
             "alpha": (8.0, 12.0), "sigma": (12.0, 16.0), "beta": (16.0, 30.0)}


def eeg_band_features(X_eeg: np.ndarray, fs: float) -> np.ndarray:
    """Log band powers, log relative powers and log ratios per epoch (first channel)."""
    f, p = welch(X_eeg[:, 0, :], fs, nperseg=int(2 * fs), axis=-1)
    bp = np.stack([p[:, (f >= lo) & (f < hi)].sum(1) for lo, hi in EEG_BANDS.values()], 1)
    log_bp = np.log(bp + 1e-12)
    rel = log_bp - np.log(bp.sum(1, keepdims=True))
    d, s, t, a, sg, b = log_bp.T
    ratios = np.stack([d - a, t - a, sg - t, d - b, (d + s) / 2 - t], 1)
    return np.hstack([log_bp, rel, ratios])


def hrv_features(beats: np.ndarray, onsets: np.ndarray, epoch_length: float = 30.0,
                 window: float = 120.0) -> np.ndarray:
    """HRV features of each epoch over a window centred on it (from exact beat times)."""
    rr = np.diff(beats)
    t = beats[1:]
    ok = (rr > 0.3) & (rr < 2.0)
    grid = np.arange(0.0, onsets[-1] + epoch_length + window, 0.25)
    rr_4hz = np.interp(grid, t[ok], rr[ok])
    rows = []
    for onset in onsets:
        c = onset + epoch_length / 2
        m = (t >= c - window / 2) & (t < c + window / 2) & ok
        r = rr[m]
        if len(r) < 10:
            rows.append([np.nan] * 8)
            continue
        d = np.diff(r)
        g = (grid >= c - window / 2) & (grid < c + window / 2)
        x = rr_4hz[g] - rr_4hz[g].mean()
        f, p = welch(x, 4.0, nperseg=min(len(x), 256))
        lf = p[(f >= 0.04) & (f < 0.15)].sum()
        hf = p[(f >= 0.15) & (f < 0.4)].sum()
        resp = (f > 0.1) & (f < 0.5)
        rows.append([60 / r.mean(), r.std(), np.sqrt(np.mean(d**2)),
                     np.mean(np.abs(d) > 0.05), np.log(lf + 1e-9), np.log(hf + 1e-9),
                     np.log((lf + 1e-9) / (hf + 1e-9)), f[resp][np.argmax(p[resp])]])
    F = np.asarray(rows, dtype=float)
    F = np.where(np.isnan(F), np.nanmedian(F, 0), F)
    return (F - F.mean(0)) / (F.std(0) + 1e-9)


def with_context(F: np.ndarray, k: int = 2) -> np.ndarray:
    """Stack the features of epochs i-k..i+k (edge rows repeated)."""
    idx = np.clip(np.arange(len(F))[:, None] + np.arange(-k, k + 1), 0, len(F) - 1)
    return F[idx].reshape(len(F), -1)


def cv_kappa(X: np.ndarray, y: np.ndarray, groups: np.ndarray, n_splits: int = 5) -> float:
    """Cohen's kappa of pooled subject-wise cross-validated predictions."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    n_splits = min(n_splits, len(np.unique(groups)))
    pred = cross_val_predict(model, X, y, groups=groups, cv=GroupKFold(n_splits))
    return float(cohen_kappa_score(y, pred))


def hrv_dataset(recordings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HRV features (+-2 epochs), 5-class labels and subjects of the scored epochs."""
    X, y, g = [], [], []
    for rec in recordings:
        F = with_context(hrv_features(np.asarray(rec.beat_times), np.asarray(rec.epoch_onsets),
                                      rec.epoch_length))
        labels = to_scheme(np.asarray(rec.stages), "5class")
        keep = labels != "?"
        X.append(F[keep])
        y.append(labels[keep])
        g.append(np.full(keep.sum(), rec.subject))
    return np.vstack(X), np.concatenate(y), np.concatenate(g)


def epoch_heart_rate(data) -> np.ndarray:
    """Mean heart rate (bpm, exact beats) of each row's 30-s epoch."""
    out = np.full(len(data.y), np.nan)
    for rec in data.recordings:
        rows = np.flatnonzero(data.records == rec.name)
        beats = np.asarray(rec.beat_times)
        rr, t = np.diff(beats), beats[1:]
        ok = (rr > 0.3) & (rr < 2.0)
        rr, t = rr[ok], t[ok]
        a = np.searchsorted(t, data.onsets[rows])
        b = np.searchsorted(t, data.onsets[rows] + data.epoch_length)
        csum = np.concatenate([[0.0], np.cumsum(rr)])
        n = b - a
        out[rows] = np.where(n > 3, 60.0 * n / np.maximum(csum[b] - csum[a], 1e-9), np.nan)
    return out


def within_correlation(x: np.ndarray, y: np.ndarray, strata: np.ndarray) -> float:
    """Pearson correlation of x and y after removing each stratum's mean and sd."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, strata = x[ok], y[ok], strata[ok]
    zx, zy = np.zeros(len(x)), np.zeros(len(y))
    for s in np.unique(strata):
        m = strata == s
        if m.sum() < 10:
            continue
        zx[m] = (x[m] - x[m].mean()) / (x[m].std() + 1e-12)
        zy[m] = (y[m] - y[m].mean()) / (y[m].std() + 1e-12)
    keep = (zx != 0) | (zy != 0)
    return float(np.corrcoef(zx[keep], zy[keep])[0, 1])


def transition_epochs(data, stages: np.ndarray) -> np.ndarray:
    """Rows whose stage (``stages``, aligned with rows) differs from a neighbour's."""
    out = np.zeros(len(stages), bool)
    for name in np.unique(data.records):
        rows = np.flatnonzero(data.records == name)
        s = stages[rows]
        change = s[1:] != s[:-1]
        out[rows[1:]] |= change
        out[rows[:-1]] |= change
    return out


def evaluate(data) -> dict:
    """EEG and HRV kappas, scorer agreement and EEG-heart coupling of one data set."""
    X_eeg = eeg_band_features(data.X_eeg, data.fs_eeg)
    X_hrv, y_hrv, g_hrv = hrv_dataset(data.recordings)
    y4, y4_hrv = to_scheme(data.y, "4class"), to_scheme(y_hrv, "4class")
    latent = np.asarray(data.latent_stages)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    pred = cross_val_predict(model, X_eeg, data.y, groups=data.groups,
                             cv=GroupKFold(min(5, len(np.unique(data.groups)))))
    hr = epoch_heart_rate(data)
    f, p = welch(data.X_eeg[:, 0, :], data.fs_eeg, nperseg=int(2 * data.fs_eeg), axis=-1)
    arousal_feature = np.log(p[:, (f >= 8) & (f < 30)].sum(1) + 1e-12)
    depth_feature = np.log(p[:, (f >= 0.5) & (f < 2)].sum(1) + 1e-12)
    strata = np.char.add(np.asarray(data.groups, str), np.asarray(data.y, str))
    sleep = np.asarray(data.y) != "W"
    nrem = np.isin(data.y, ["N2", "N3"])
    trans = transition_epochs(data, latent)
    disagree = np.asarray(data.y) != latent
    return {
        "eeg5": float(cohen_kappa_score(data.y, pred)),
        "eeg5_latent": float(cohen_kappa_score(latent, pred)),
        "eeg4": cv_kappa(X_eeg, y4, data.groups),
        "hrv5": cv_kappa(X_hrv, y_hrv, g_hrv),
        "hrv4": cv_kappa(X_hrv, y4_hrv, g_hrv),
        "scorer": float(cohen_kappa_score(latent, data.y)),
        "disagree_transition": float(disagree[trans].mean()) if trans.any() else 0.0,
        "disagree_other": float(disagree[~trans].mean()),
        "r_arousal_hr": within_correlation(arousal_feature[sleep], hr[sleep], strata[sleep]),
        "r_delta_hr": within_correlation(depth_feature[nrem], hr[nrem], strata[nrem]),
        "n_epochs": len(data.y),
        "n_subjects": len(np.unique(data.groups)),
    }


def fmt(values: list[float]) -> str:
    values = np.asarray(values)
    if len(values) == 1:
        return f"{values[0]:.3f}"
    spread = f"({values.min():.3f}-{values.max():.3f})"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f} {spread}"


MODES = ("shared", "labels", "independent")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timing-nights", type=int, default=20)
    parser.add_argument("--quick", action="store_true",
                        help="6 subjects x 2 h, one seed, timing of 1 and 3 nights")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "generated_data_honesty.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.subjects, args.hours, args.seeds, args.timing_nights = 6, 2.0, [0], 3
    command = "python benchmarks/generated_data_honesty.py " + " ".join(
        argv if argv is not None else sys.argv[1:])

    results = {}
    for mode in MODES:
        results["synthetic", mode] = []
        for seed in args.seeds:
            data = make_synthetic_psg(args.subjects, args.hours, random_state=seed,
                                      physiology=mode, return_recordings=True)
            results["synthetic", mode].append(evaluate(data))
            print(f"synthetic {mode} seed {seed}: {results['synthetic', mode][-1]}",
                  flush=True)
            del data
    for mode in MODES:
        results["semi-real", mode] = []
        for seed in args.seeds:
            data = make_semireal_psg(random_state=seed, physiology=mode,
                                     return_recordings=True)
            results["semi-real", mode].append(evaluate(data))
            print(f"semi-real {mode} seed {seed}: {results['semi-real', mode][-1]}",
                  flush=True)
            del data

    timings = {}
    for mode in MODES:
        for n in (1, args.timing_nights):
            start = time.perf_counter()
            data = make_synthetic_psg(n, 8.0, random_state=100 + n, physiology=mode)
            timings[mode, n] = time.perf_counter() - start
            print(f"{mode}: {n} night(s) of 8 h: {timings[mode, n]:.1f} s", flush=True)
            del data
    from sleepkd.datasets import load_slpdb

    recs = load_slpdb()
    for mode in MODES:
        start = time.perf_counter()
        make_semireal_psg(recs, random_state=0, physiology=mode)
        timings[mode, "semi-real"] = time.perf_counter() - start
        print(f"{mode}: 14 semi-real records: {timings[mode, 'semi-real']:.1f} s",
              flush=True)

    # Parts of one 8-h night (median of 3 runs), ECG at 256 Hz as in the spec.
    from sleepkd.datasets._ecg_synth import simulate_beat_times, synthesize_ecg
    from sleepkd.datasets._eeg_synth import synthesize_eeg
    from sleepkd.datasets._hypnogram import make_hypnogram
    from sleepkd.datasets._latent import make_latent_night

    parts = {"hypnogram": [], "latent state + scorer": [], "beat times (IPFM)": [],
             "ECG waveform, 256 Hz": [], "EEG, 100 Hz": []}
    for run in range(3):
        start = time.perf_counter()
        hyp = make_hypnogram(8.0, random_state=run)
        parts["hypnogram"].append(time.perf_counter() - start)
        duration = len(hyp.stages) * 30.0
        start = time.perf_counter()
        latent = make_latent_night(hyp.stages, arousals_per_hour=10.0, random_state=run)
        parts["latent state + scorer"].append(time.perf_counter() - start)
        start = time.perf_counter()
        beats = simulate_beat_times(hyp.stages, latent=latent, random_state=run)
        parts["beat times (IPFM)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        synthesize_ecg(beats.times, 256.0, duration, beat_types=beats.types,
                       respiration=(beats.grid_times, beats.respiration), random_state=run)
        parts["ECG waveform, 256 Hz"].append(time.perf_counter() - start)
        start = time.perf_counter()
        synthesize_eeg(hyp.stages, 100.0, duration, latent=latent, random_state=run)
        parts["EEG, 100 Hz"].append(time.perf_counter() - start)
    parts = {k: float(np.median(v)) for k, v in parts.items()}
    print(f"parts of one 8-h night (shared): {parts}", flush=True)

    def column(key, kind, mode):
        return fmt([r[key] for r in results[kind, mode]])

    def first(key, kind):
        return results[kind, MODES[0]][0][key]

    kinds = {"synthetic": f"synthetic ({args.subjects} × {args.hours:g} h)",
             "semi-real": "semi-real (14 slpdb records)"}
    lines = [
        "# Honesty of the generated paired EEG + ECG data",
        "",
        f"Command: `{command.strip()}`  ",
        f"Machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, seeds {args.seeds}; synthetic: "
        f"{first('n_subjects', 'synthetic')} subjects, {first('n_epochs', 'synthetic')} "
        f"epochs per seed; semi-real: {first('n_subjects', 'semi-real')} subjects, "
        f"{first('n_epochs', 'semi-real')} epochs.",
        "",
        "`physiology=\"shared\"`: a latent night state drives EEG and ECG and the labels "
        "are a noisy scorer's reading of the latent stage (semi-real: EEG arousals, "
        "slow-wave depth and REM phasic bursts derived from the real beats; labels real). "
        "`physiology=\"labels\"`: EEG and ECG drawn from the labels, sharing the timing of "
        "brief arousals (the earlier model). `physiology=\"independent\"`: as labels, "
        "with the EEG's arousals apart from the heart's (the labels are the only link).",
        "",
        "## Stage information",
        "",
        "Cohen's kappa of pooled subject-wise 5-fold GroupKFold predictions "
        "(StandardScaler + LogisticRegression) against the labels `y`. EEG: band-power "
        "features of the 30-s epoch. HRV: features of exact beat times over 2-min "
        "windows, +-2 epochs of context, z-scored per night. Mean ± sd (min-max) over "
        "seeds.",
        "",
        "| data | physiology | EEG kappa 5-class | EEG kappa 4-class "
        "| HRV kappa 5-class | HRV kappa 4-class |",
        "|---|---|---|---|---|---|",
    ]
    for kind, label in kinds.items():
        for mode in MODES:
            lines.append(
                f"| {label} | {mode} | {column('eeg5', kind, mode)} "
                f"| {column('eeg4', kind, mode)} | {column('hrv5', kind, mode)} "
                f"| {column('hrv4', kind, mode)} |")
    lines += [
        "",
        "Semi-real HRV uses the real slpdb beats (hence the same value for every seed "
        "and mode): the reference for how much stage information real heartbeats carry "
        "with these features (sleep-apnea patients, R&K scoring, little REM and N3 in "
        "some records).",
        "",
        "## Scorer and shared physiology",
        "",
        "Scorer kappa: agreement of the labels with the latent stage (5 classes). "
        "Disagreement rate on transition epochs (latent stage differs from a "
        "neighbour's) and on the others. EEG kappa vs latent: the EEG classifier above "
        "(trained on the labels) scored against the latent stage. EEG-heart coupling "
        "beyond the label: Pearson r, within (subject, label), between the epoch's "
        "mean heart rate and log 8-30 Hz EEG power (arousal feature, sleep epochs) or "
        "log 0.5-2 Hz power (depth feature, N2 + N3 epochs); it is what a teacher that "
        "sees the EEG can pass on to a heart-based student and a label cannot.",
        "",
        "| data | physiology | scorer kappa vs latent | disagreement: transition / "
        "other epochs | EEG kappa vs latent | r(arousal feature, HR) "
        "| r(delta power, HR) |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, label in kinds.items():
        for mode in MODES:
            rs = results[kind, mode]
            dis = (f"{np.mean([r['disagree_transition'] for r in rs]):.3f} / "
                   f"{np.mean([r['disagree_other'] for r in rs]):.3f}")
            lines.append(
                f"| {label} | {mode} | {column('scorer', kind, mode)} | {dis} "
                f"| {column('eeg5_latent', kind, mode)} "
                f"| {column('r_arousal_hr', kind, mode)} "
                f"| {column('r_delta_hr', kind, mode)} |")
    lines += [
        "",
        "Semi-real labels are the real expert labels, so their scorer kappa is 1 by "
        "definition (no scorer model); the real inter-scorer agreement of slpdb is "
        "unknown.",
        "",
        "## Generation time",
        "",
        "| generation (8-h nights, ECG 200 Hz, EEG 100 Hz, with make_epochs) "
        "| physiology | seconds |",
        "|---|---|---|",
    ]
    for (mode, n), t in timings.items():
        what = "14 semi-real slpdb records" if n == "semi-real" else \
            f"make_synthetic_psg, {n} night(s)"
        lines.append(f"| {what} | {mode} | {t:.1f} |")
    lines += ["", "| part of one 8-h night, shared (median of 3) | seconds |",
              "|---|---|"]
    lines += [f"| {name} | {t:.2f} |" for name, t in parts.items()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
