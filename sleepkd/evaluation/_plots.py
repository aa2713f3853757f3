"""Figures of an experiment: confusion matrices and one night's hypnograms.

matplotlib is an optional dependency (``pip install "sleepkd[plot]"``), imported only
when a figure is drawn, with the non-interactive Agg backend unless another backend
was already chosen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sleepkd.evaluation._provenance import PROVENANCE_NOTE
from sleepkd.stages import SCHEMES

#: Models drawn in the hypnogram figure, top to bottom after the expert.
HYPNOGRAM_MODELS = ("EEG teacher", "ECG baseline", "SD+CL", "AT+SD+CL")
# Stage order on a hypnogram's y axis, top to bottom (wake on top, deep sleep at the bottom).
_HYPNOGRAM_ORDER = {
    "5class": ("W", "R", "N1", "N2", "N3"),
    "4class": ("W", "R", "L", "D"),
    "3class": ("W", "R", "N"),
}


def _pyplot():
    """matplotlib.pyplot with the Agg backend, or an ImportError naming the extra."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'Figures need matplotlib: pip install "sleepkd[plot]"') from exc
    if "matplotlib.pyplot" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def close_figure(fig) -> None:
    """Release a figure drawn by this module."""
    _pyplot().close(fig)


def _provenance_note(result) -> str:
    provenance = getattr(result, "provenance", "unstated")
    return PROVENANCE_NOTE.get(provenance, provenance)


def _pick_seed(predictions: pd.DataFrame, seed):
    seeds = sorted(predictions["seed"].unique())
    if seed is None:
        return seeds[0]
    if seed not in seeds:
        raise ValueError(f"seed {seed!r} is not in the results; seeds: {seeds}.")
    return seed


def _rows(result, scheme: str, seed) -> tuple[pd.DataFrame, object]:
    predictions = result.predictions
    if scheme not in set(predictions["scheme"]):
        raise ValueError(f"scheme {scheme!r} is not in the results; schemes: "
                         f"{sorted(set(predictions['scheme']))}.")
    rows = predictions[predictions["scheme"] == scheme]
    seed = _pick_seed(rows, seed)
    return rows[rows["seed"] == seed], seed


def plot_confusion_matrices(result, scheme: str, *, models=None, seed=None):
    """Row-normalised confusion matrices, one panel per model.

    Every held-out epoch of every fold (of one seed) is pooled; each row (true stage)
    sums to 1, and the number of true epochs is printed on the row label.

    Parameters
    ----------
    result : ExperimentResult
        The output of :func:`~sleepkd.evaluation.run_experiment`.
    scheme : str
        Label scheme to draw (one the experiment ran).
    models : list of str, optional
        Models to draw; default all, in table order.
    seed : int, optional
        Seed whose predictions are drawn; default the first.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the scheme, a model or the seed is not in the results.
    ImportError
        If matplotlib is not installed.
    """
    plt = _pyplot()
    rows, seed = _rows(result, scheme, seed)
    models = list(result.models if models is None else models)
    missing = [m for m in models if m not in set(rows["model"])]
    if missing:
        raise ValueError(f"models {missing} are not in the results; models: "
                         f"{sorted(set(rows['model']))}.")
    present = set(rows["y_true"]) | set(rows["y_pred"])
    labels = [c for c in SCHEMES[scheme] if c in present]
    n = len(models)
    ncols = n if n <= 5 else int(np.ceil(n / 2))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows + 0.6),
                             squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, model in zip(axes.ravel(), models):
        sub = rows[rows["model"] == model]
        counts = pd.crosstab(pd.Categorical(sub["y_true"], categories=labels),
                             pd.Categorical(sub["y_pred"], categories=labels),
                             dropna=False).to_numpy(dtype=float)
        totals = counts.sum(axis=1, keepdims=True)
        norm = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)),
                      [f"{c} ({int(t)})" for c, t in zip(labels, totals.ravel())])
        ax.set_xlabel("predicted")
        ax.set_ylabel("expert")
        ax.set_title(model, fontsize=10)
    fig.suptitle(f"Confusion matrices, {scheme}, held-out subjects of all folds "
                 f"(seed {seed}; rows sum to 1)\n{_provenance_note(result)}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_hypnograms(result, scheme: str, *, record=None, models=HYPNOGRAM_MODELS,
                    seed=None):
    """One night: the expert's hypnogram above each model's.

    Parameters
    ----------
    result : ExperimentResult
    scheme : str
        Label scheme to draw.
    record : str, optional
        Test record to draw; default the record of the first test subject of the
        first fold.
    models : sequence of str, default=("EEG teacher", "ECG baseline", "SD+CL", "AT+SD+CL")
        Models drawn below the expert; those not in the results are left out.
    seed : int, optional
        Seed whose predictions are drawn; default the first.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the scheme, the record or the seed is not in the results, or no model of
        ``models`` is.
    ImportError
        If matplotlib is not installed.
    """
    rows, seed = _rows(result, scheme, seed)
    if record is None:
        first = rows[rows["fold"] == rows["fold"].min()]
        record = sorted(set(first["record"]))[0]
    rows = rows[rows["record"] == str(record)]
    if rows.empty:
        raise ValueError(f"record {record!r} is not among the test records of scheme "
                         f"{scheme!r}.")
    models = [m for m in models if m in set(rows["model"])]
    if not models:
        raise ValueError("None of the requested models is in the results.")
    expert = rows[rows["model"] == models[0]].sort_values("onset")
    tracks = [("expert", expert["onset"].to_numpy(), expert["y_true"].to_numpy())]
    for model in models:
        sub = rows[rows["model"] == model].sort_values("onset")
        tracks.append((model, sub["onset"].to_numpy(), sub["y_pred"].to_numpy()))
    accuracy = {model: float(np.mean(
        rows[rows["model"] == model].sort_values("onset")["y_pred"].to_numpy()
        == expert["y_true"].to_numpy())) for model in models}
    title = (f"Hypnogram of test record {record} ({scheme}, seed {seed}, fold "
             f"{int(expert['fold'].iloc[0]) + 1})\n{_provenance_note(result)}")
    return draw_hypnograms(tracks, scheme, title=title,
                           notes={m: f"accuracy {a:.2f}" for m, a in accuracy.items()})


def draw_hypnograms(tracks, scheme: str | None, *, title: str, notes=None):
    """Stacked step plots of stage sequences sharing a time axis (hours).

    Parameters
    ----------
    tracks : list of (name, onsets_s, stages)
        One panel per track.
    scheme : str or None
        Label scheme (sets the stage order); ``None`` infers it from the labels.
    title : str
        Figure title (say whether the data is synthetic, semi-real or real).
    notes : dict, optional
        Track name -> text shown at the right of its panel.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    plt = _pyplot()
    labels = set().union(*(set(map(str, t[2])) for t in tracks))
    if scheme is None:
        scheme = next((s for s in ("3class", "4class", "5class")
                       if labels <= set(SCHEMES[s])), None)
    order = list(_HYPNOGRAM_ORDER.get(scheme, sorted(labels)))
    order += sorted(labels - set(order))
    level = {stage: len(order) - 1 - i for i, stage in enumerate(order)}
    fig, axes = plt.subplots(len(tracks), 1, sharex=True,
                             figsize=(10, 1.3 * len(tracks) + 0.8), squeeze=False)
    for ax, (name, onsets, stages) in zip(axes[:, 0], tracks):
        onsets = np.asarray(onsets, dtype=float)
        values = np.array([level[str(s)] for s in stages], dtype=float)
        # an epoch covers [onset, onset + 30 s): extend the last step to its end
        hours = np.append(onsets, onsets[-1] + 30.0) / 3600.0 if len(onsets) else onsets
        ax.step(hours, np.append(values, values[-1:]) if len(values) else values,
                where="post", lw=1.0, color="tab:blue" if name == "expert" else "black")
        ax.set_yticks(range(len(order)), order[::-1])
        ax.set_ylim(-0.5, len(order) - 0.5)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        if notes and name in notes:
            ax.text(1.0, 1.02, notes[name], transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=8)
    axes[-1, 0].set_xlabel("time from the start of the recording (h)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_subject_gains(result, *, metric: str = "f1_weighted", baseline: str = "ECG baseline"):
    """Per-subject gain of every distilled student over the baseline, per scheme.

    Each dot is one test subject in one seed (its score minus the baseline's on the
    same subject, fold and seed, in points = metric x 100); the bar is the mean over
    subjects and seeds. Subjects above zero gained from distillation.

    Parameters
    ----------
    result : ExperimentResult
    metric : {"f1_weighted", "kappa", "accuracy"}, default="f1_weighted"
    baseline : str, default="ECG baseline"

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the baseline or no other student is in the results.
    """
    plt = _pyplot()
    scores = result.subject_scores()
    keys = ["seed", "fold", "scheme", "subject"]
    base = scores[scores["model"] == baseline][keys + [metric]].rename(
        columns={metric: "base"})
    if base.empty:
        raise ValueError(f"{baseline!r} is not in the results.")
    models = [m for m in result.models if m not in (baseline, "EEG teacher")
              and m in set(scores["model"]) and "teacher" not in m]
    merged = scores[scores["model"].isin(models)].merge(base, on=keys)
    merged["gain"] = 100.0 * (merged[metric] - merged["base"])
    schemes = result.schemes
    fig, axes = plt.subplots(1, len(schemes), figsize=(1.6 + 1.5 * len(models), 3.4),
                             squeeze=False, sharey=True)
    rng = np.random.default_rng(0)
    for ax, scheme in zip(axes[0], schemes):
        part = merged[merged["scheme"] == scheme]
        for k, model in enumerate(models):
            gains = part.loc[part["model"] == model, "gain"].dropna().to_numpy()
            ax.scatter(k + rng.uniform(-0.18, 0.18, len(gains)), gains, s=12, alpha=0.6)
            if len(gains):
                ax.hlines(gains.mean(), k - 0.3, k + 0.3, color="black", lw=2)
        ax.axhline(0.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=8)
        ax.set_title(scheme, fontsize=9)
    axes[0][0].set_ylabel(f"gain in {metric} over {baseline} (points)", fontsize=8)
    fig.suptitle("Per-subject gain of each student (dots: subject x seed; bar: mean). "
                 + _provenance_note(result), fontsize=8)
    fig.tight_layout()
    return fig
