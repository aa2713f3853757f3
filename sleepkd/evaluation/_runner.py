"""Subject-wise cross-validated comparison of the EEG teacher, the ECG students and
reference models: :func:`run_experiment` and its :class:`ExperimentResult`."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sleepkd.evaluation._provenance import PROVENANCE_NOTE, data_provenance
from sleepkd.stages import SCHEMES, UNSCORED

logger = logging.getLogger(__name__)

#: Row name of the teacher's own EEG predictions.
TEACHER_NAME = "EEG teacher"
#: Row name of each strategy of :class:`~sleepkd.distillation.DistilledECGStager`.
STRATEGY_NAMES = {
    "baseline": "ECG baseline",
    "sd+cl": "SD+CL",
    "at+cl": "AT+CL",
    "at+sd+cl": "AT+SD+CL",
    "fd+cl": "FD+CL",
    "fd+sd+cl": "FD+SD+CL",
}
#: The distilled strategies, whose weighted-F1 gain over the baseline is reported.
_BASELINE = STRATEGY_NAMES["baseline"]
_METRIC_COLUMNS = ("accuracy", "kappa", "f1_weighted", "f1_macro")
_TABLE_METRICS = {"f1_weighted": "weighted F1", "kappa": "kappa", "accuracy": "accuracy"}
_GAIN_REL = "ΔF1w vs baseline (%)"
_GAIN_PTS = "ΔF1w vs baseline (points)"


# --------------------------------------------------------------------------- data
def _field(data, name: str, required: bool = True):
    """``data.name`` or ``data[name]`` (a Bunch, a dict or any object)."""
    if isinstance(data, Mapping):
        value = data.get(name)
    else:
        value = getattr(data, name, None)
    if value is None and required:
        raise ValueError(
            f"data has no {name!r}: pass a Bunch from sleepkd.datasets (make_synthetic_psg, "
            "make_semireal_psg, make_epochs) or a dict with X_ecg, X_eeg, y and groups."
        )
    return value


def _check_data(data) -> dict:
    X_ecg = np.asarray(_field(data, "X_ecg"))
    X_eeg = np.asarray(_field(data, "X_eeg"))
    y = np.asarray(_field(data, "y"))
    groups = np.asarray(_field(data, "groups"))
    n = len(y)
    for name, arr in (("X_ecg", X_ecg), ("X_eeg", X_eeg), ("groups", groups)):
        if len(arr) != n:
            raise ValueError(f"data.{name} has {len(arr)} rows but data.y has {n}.")
    if n == 0:
        raise ValueError("data holds no epochs.")
    records = _field(data, "records", required=False)
    records = groups.astype(str) if records is None else np.asarray(records).astype(str)
    onsets = _field(data, "onsets", required=False)
    if onsets is None:  # rows in time order within each record
        onsets = np.zeros(n)
        for rec in np.unique(records):
            idx = np.flatnonzero(records == rec)
            onsets[idx] = 30.0 * np.arange(len(idx))
    return {"X_ecg": X_ecg, "X_eeg": X_eeg, "y": y, "groups": groups,
            "records": records, "onsets": np.asarray(onsets, dtype=float)}


# --------------------------------------------------------------------------- result
def _mean_std(values: pd.Series, digits: int) -> str:
    values = values.dropna()
    if values.empty:
        return "n/a"
    mean = values.mean()
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {values.std(ddof=1):.{digits}f}"


@dataclass(eq=False)
class ExperimentResult:
    """Scores and predictions of :func:`run_experiment`.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per (seed, fold, scheme, model) with columns ``seed``, ``fold``,
        ``scheme``, ``model``, ``n_epochs``, ``accuracy``, ``kappa``, ``f1_weighted``,
        ``f1_macro`` and ``f1_<stage>``, computed with
        :func:`sleepkd.metrics.staging_report` on the held-out subjects.
    predictions : pandas.DataFrame
        One row per held-out epoch and model: ``seed``, ``fold``, ``scheme``,
        ``model``, ``subject``, ``record``, ``onset``, ``y_true``, ``y_pred``.
    folds : dict
        Fold number -> sorted list of its test subjects (the same for every seed,
        scheme and model).
    models : list of str
        Model names in table order.
    provenance : str
        ``"synthetic"``, ``"semi-real"``, ``"real"``, ``"mixed"`` or ``"unstated"``.
    description : str
        The data set's ``DESCR``.
    config : dict
        The settings of the run (estimators' parameters as text, seeds, folds).
    estimators : dict
        ``(seed, fold, scheme, model) -> fitted estimator`` when
        ``run_experiment(keep_estimators=True)``; empty otherwise.
    """

    scores: pd.DataFrame
    predictions: pd.DataFrame
    folds: dict
    models: list
    provenance: str = "unstated"
    description: str = ""
    config: dict = field(default_factory=dict)
    estimators: dict = field(default_factory=dict, repr=False)

    @property
    def schemes(self) -> list[str]:
        """Label schemes in the order they were run."""
        return list(dict.fromkeys(self.scores["scheme"]))

    def gains(self) -> pd.DataFrame:
        """Weighted-F1 gain of every model over the ECG baseline, per seed and fold.

        Returns
        -------
        gains : pandas.DataFrame
            Columns ``seed``, ``fold``, ``scheme``, ``model``, ``f1_weighted``,
            ``baseline_f1_weighted``, ``gain_relative`` (``(F1 - F1_base) / F1_base``,
            see :func:`sleepkd.metrics.relative_gain`; NaN when the baseline F1 is 0)
            and ``gain_points`` (``F1 - F1_base``); empty without a baseline row.
        """
        from sleepkd.metrics import relative_gain

        keys = ["seed", "fold", "scheme"]
        base = self.scores[self.scores["model"] == _BASELINE][keys + ["f1_weighted"]]
        merged = self.scores[keys + ["model", "f1_weighted"]].merge(
            base.rename(columns={"f1_weighted": "baseline_f1_weighted"}), on=keys)
        merged = merged[merged["model"] != _BASELINE].reset_index(drop=True)
        merged["gain_relative"] = [
            relative_gain(float(s), float(b)) if b > 0 else math.nan
            for s, b in zip(merged["f1_weighted"], merged["baseline_f1_weighted"])
        ]
        merged["gain_points"] = merged["f1_weighted"] - merged["baseline_f1_weighted"]
        return merged

    def subject_scores(self) -> pd.DataFrame:
        """Scores of every model on every test subject, per seed, fold and scheme.

        Returns
        -------
        scores : pandas.DataFrame
            Columns ``seed``, ``fold``, ``scheme``, ``model``, ``subject``,
            ``n_epochs``, ``accuracy``, ``kappa`` (NaN when a subject has a single
            stage in both labels and predictions) and ``f1_weighted``, from the
            predictions (so anyone can redo the statistics from ``predictions.csv``).
        """
        from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

        rows = []
        keys = ["seed", "fold", "scheme", "model", "subject"]
        for key, part in self.predictions.groupby(keys, sort=False):
            y, p = part["y_true"].to_numpy(), part["y_pred"].to_numpy()
            single = len(set(y) | set(p)) < 2
            rows.append(dict(zip(keys, key), n_epochs=len(y),
                             accuracy=accuracy_score(y, p),
                             kappa=math.nan if single else cohen_kappa_score(y, p),
                             f1_weighted=f1_score(y, p, average="weighted",
                                                  zero_division=0)))
        return pd.DataFrame(rows)

    def evidence(self, *, baseline: str = _BASELINE, metrics=("f1_weighted", "kappa"),
                 n_boot: int = 2000, random_state=0) -> pd.DataFrame:
        """Paired evidence of every distilled student against the baseline.

        Per scheme, model and metric (:func:`sleepkd.metrics.summarize_gains` on
        :meth:`subject_scores`): the mean absolute and relative gain over fold x seed
        pairs, a 95 % confidence interval of the mean gain from a bootstrap over
        subjects, the Wilcoxon signed-rank p-value over the pairs, and the share of
        pairs the model wins.

        Parameters
        ----------
        baseline : str, default="ECG baseline"
        metrics : sequence of str, default=("f1_weighted", "kappa")
        n_boot : int, default=2000
        random_state : int, default=0

        Returns
        -------
        evidence : pandas.DataFrame
            Empty when the baseline or no distilled student is in the results.
        """
        import warnings

        from sleepkd.metrics import summarize_gains

        distilled = [m for m in self.models if m in set(STRATEGY_NAMES.values()) - {baseline}]
        if baseline not in self.models or not distilled:
            return pd.DataFrame()
        with warnings.catch_warnings():  # subjects with one stage: kappa undefined, counted
            warnings.simplefilter("ignore", UserWarning)
            return summarize_gains(self.subject_scores(), baseline=baseline, models=distilled,
                                   metrics=list(metrics), by="scheme", n_boot=n_boot,
                                   random_state=random_state)

    def evidence_markdown(self, evidence: pd.DataFrame | None = None) -> str:
        """:meth:`evidence` as a markdown table (one line per scheme, model, metric)."""
        evidence = self.evidence() if evidence is None else evidence
        if evidence.empty:
            return ""
        lines = ["| scheme | model | metric | baseline | model | mean gain (points) | "
                 "95 % CI (subjects) | relative gain (%) | Wilcoxon p | wins | pairs |",
                 "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for _, r in evidence.iterrows():
            lines.append(
                f"| {r['scheme']} | {r['model']} | {r['metric']} | "
                f"{r['baseline_mean']:.3f} | {r['model_mean']:.3f} | "
                f"{100 * r['mean_gain']:+.1f} | [{100 * r['ci_low']:+.1f}, "
                f"{100 * r['ci_high']:+.1f}] | {r['mean_relative_gain_pct']:+.1f} | "
                f"{r['wilcoxon_p']:.3f} | {100 * r['win_share']:.0f} % | {int(r['n_pairs'])} |")
        return "\n".join(lines) + "\n"

    def table(self, digits: int = 3) -> pd.DataFrame:
        """The results table: models x (scheme, figure), as "mean ± std" strings.

        Means and sample standard deviations (``ddof=1``) are taken across folds and
        seeds. The gain of each distilled student (SD+CL, AT+CL, AT+SD+CL) over the
        ECG baseline is computed per fold and seed, then averaged: relative in percent
        and absolute in weighted-F1 points (x 100).

        Parameters
        ----------
        digits : int, default=3
            Decimals of the scores (gains get one decimal).

        Returns
        -------
        table : pandas.DataFrame
            Index: model names; columns: a MultiIndex (scheme, figure) with figures
            "weighted F1", "kappa", "accuracy", "ΔF1w vs baseline (%)" and
            "ΔF1w vs baseline (points)".
        """
        gains = self.gains()
        distilled = set(STRATEGY_NAMES.values()) - {_BASELINE}
        columns, data = [], {}
        for scheme in self.schemes:
            rows = self.scores[self.scores["scheme"] == scheme]
            for metric, label in _TABLE_METRICS.items():
                columns.append((scheme, label))
                data[(scheme, label)] = {
                    model: _mean_std(rows.loc[rows["model"] == model, metric], digits)
                    for model in self.models}
            g = gains[gains["scheme"] == scheme]
            for label, col, scale in ((_GAIN_REL, "gain_relative", 100.0),
                                      (_GAIN_PTS, "gain_points", 100.0)):
                columns.append((scheme, label))
                data[(scheme, label)] = {
                    model: (_mean_std(scale * g.loc[g["model"] == model, col], 1)
                            if model in distilled else "")
                    for model in self.models}
        table = pd.DataFrame(data, index=pd.Index(self.models, name="model"))
        table.columns = pd.MultiIndex.from_tuples(columns, names=["scheme", "figure"])
        return table

    def to_markdown(self, digits: int = 3) -> str:
        """The results as markdown: one table per label scheme and the protocol.

        Parameters
        ----------
        digits : int, default=3
            Decimals of the scores.

        Returns
        -------
        text : str
        """
        table = self.table(digits)
        n_seeds = self.scores["seed"].nunique()
        n_folds = len(self.folds)
        n_splits = self.config.get("n_splits", n_folds)
        folds_text = (f"{n_splits} folds" if n_splits == n_folds
                      else f"the first {n_folds} of {n_splits} folds")
        lines = [
            f"Data: {PROVENANCE_NOTE.get(self.provenance, self.provenance)}.",
            "",
            f"Protocol: subject-wise cross-validation, {folds_text} (the same folds "
            f"for every model and scheme), {n_seeds} seed(s); scores on the held-out "
            f"subjects, mean ± std over {n_folds * n_seeds} fold x seed run(s). "
            "ΔF1w: weighted-F1 gain over the ECG baseline in the same fold and seed, "
            "relative (%) and absolute (points = F1 x 100).",
        ]
        for scheme in self.schemes:
            sub = table[scheme]
            classes = " / ".join(SCHEMES.get(scheme, ()))
            lines += ["", f"### {scheme}" + (f" ({classes})" if classes else ""), ""]
            header = ["model", *sub.columns]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|---|" + "---:|" * len(sub.columns))
            for model, row in sub.iterrows():
                lines.append("| " + " | ".join([model, *row.tolist()]) + " |")
        return "\n".join(lines) + "\n"

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the long-form ``scores`` to a CSV file and return its path."""
        path = Path(path)
        self.scores.to_csv(path, index=False)
        return path

    def save(self, out_dir: str | os.PathLike, *, figures: bool = True) -> dict:
        """Write ``results.md``, ``scores.csv``, ``predictions.csv`` and the figures.

        Parameters
        ----------
        out_dir : str or path-like
            Folder (created if missing).
        figures : bool, default=True
            Also draw ``confusion_<scheme>.png`` and ``hypnogram_<scheme>.png``
            (needs matplotlib; when it is missing the figures are skipped with a
            logged warning).

        Returns
        -------
        paths : dict
            Name -> path of every file written.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"results": out / "results.md", "scores": out / "scores.csv",
                 "subject_scores": out / "subject_scores.csv",
                 "predictions": out / "predictions.csv"}
        text = ["# sleepkd experiment", "", self.to_markdown()]
        evidence = self.evidence()
        if not evidence.empty:
            paths["evidence"] = out / "evidence.csv"
            evidence.to_csv(paths["evidence"], index=False)
            text += ["## Distillation evidence", "",
                     "Gains of each distilled student over the ECG baseline, paired by "
                     "fold x seed; 95 % CI of the mean gain from a bootstrap over test "
                     "subjects (2000 draws); Wilcoxon signed-rank test over the pairs "
                     "(seeds share subjects, so its p-value is optimistic); wins: share "
                     "of pairs with a gain > 0. Points = metric x 100.", "",
                     self.evidence_markdown(evidence)]
        if self.description:
            text += ["## Data", "", self.description, ""]
        text += ["## Folds (test subjects)", ""]
        text += [f"- fold {k}: {', '.join(map(str, v))}" for k, v in self.folds.items()]
        if self.config:
            text += ["", "## Configuration", ""]
            text += [f"- {k}: {v}" for k, v in self.config.items()]
        paths["results"].write_text("\n".join(text) + "\n", encoding="utf-8")
        self.to_csv(paths["scores"])
        self.subject_scores().to_csv(paths["subject_scores"], index=False)
        self.predictions.to_csv(paths["predictions"], index=False)
        if figures:
            try:
                paths.update(self._save_figures(out))
            except ImportError as exc:
                logger.warning("Figures skipped: %s", exc)
        return paths

    def _save_figures(self, out: Path) -> dict:
        from sleepkd.evaluation._plots import (
            close_figure,
            plot_confusion_matrices,
            plot_hypnograms,
        )

        paths = {}
        if not self.evidence().empty:
            from sleepkd.evaluation._plots import plot_subject_gains

            fig = plot_subject_gains(self)
            paths["subject_gains"] = out / "subject_gains.png"
            fig.savefig(paths["subject_gains"], dpi=110, bbox_inches="tight")
            close_figure(fig)
        for scheme in self.schemes:
            for kind, plot in (("confusion", plot_confusion_matrices),
                               ("hypnogram", plot_hypnograms)):
                fig = plot(self, scheme=scheme)
                path = out / f"{kind}_{scheme}.png"
                fig.savefig(path, dpi=110, bbox_inches="tight")
                close_figure(fig)
                paths[f"{kind}_{scheme}"] = path
        return paths

    def __repr__(self) -> str:
        return (f"ExperimentResult(models={self.models}, schemes={self.schemes}, "
                f"n_folds={len(self.folds)}, n_seeds={self.scores['seed'].nunique()}, "
                f"provenance={self.provenance!r})")


# --------------------------------------------------------------------------- runner
def _seeded(estimator, seed: int):
    """A clone of ``estimator`` with every ``random_state`` parameter set to ``seed``."""
    from sklearn.base import clone

    estimator = clone(estimator)
    params = estimator.get_params(deep=True)
    seeds = {name: seed for name in params
             if name == "random_state" or name.endswith("__random_state")}
    if seeds:
        estimator.set_params(**seeds)
    return estimator


def _extra_input(name: str, spec, data, n: int) -> tuple:
    """``(estimator, rows)`` of an extra model: ``X_ecg`` or the named field."""
    estimator, key = spec if isinstance(spec, tuple) else (spec, "X_ecg")
    if not hasattr(estimator, "fit"):
        raise ValueError(f"extra model {name!r} is not an estimator: {estimator!r}.")
    X = np.asarray(_field(data, key))
    if len(X) != n:
        raise ValueError(f"data.{key} (input of {name!r}) has {len(X)} rows, data.y {n}.")
    return estimator, X


def _check_strategies(strategies) -> list[str]:
    from sleepkd.distillation._stager import STRATEGIES

    strategies = list(strategies)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"Unknown strategies {unknown}; expected some of {list(STRATEGIES)}.")
    if len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies has duplicates: {strategies}.")
    return strategies


def _check_schemes(schemes) -> list[str]:
    if isinstance(schemes, str):
        schemes = [schemes]
    schemes = list(schemes)
    unknown = [s for s in schemes if s not in SCHEMES]
    if not schemes or unknown:
        raise ValueError(f"schemes must be some of {sorted(SCHEMES)}, got {schemes}.")
    return schemes


def subject_folds(groups: np.ndarray, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Subject-wise folds: ``(train_idx, test_idx)`` pairs from :class:`GroupKFold`.

    Deterministic (no shuffling), so every model, scheme and seed sees the same
    split of subjects.

    Parameters
    ----------
    groups : ndarray of shape (n_epochs,)
        Subject of each epoch.
    n_splits : int
        Number of folds, at least 2 and at most the number of subjects.

    Returns
    -------
    folds : list of (ndarray, ndarray)
    """
    from sklearn.model_selection import GroupKFold

    n_subjects = len(np.unique(groups))
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ValueError(f"n_splits must be an int >= 2, got {n_splits!r}.")
    if n_splits > n_subjects:
        raise ValueError(
            f"n_splits={n_splits} is more than the {n_subjects} subjects in the data; "
            "each fold needs at least one test subject.")
    return list(GroupKFold(n_splits=n_splits).split(groups, groups=groups))


def run_experiment(
    data,
    *,
    teacher,
    student,
    schemes: Sequence[str] = ("4class", "3class"),
    strategies: Sequence[str] | None = None,
    extra_models: Mapping | None = None,
    n_splits: int = 5,
    max_folds: int | None = None,
    seeds: Sequence[int] = (0,),
    stager_params: Mapping | None = None,
    keep_estimators: bool = False,
    n_jobs: int = 1,
    verbose: int = 1,
) -> ExperimentResult:
    """Compare the EEG teacher, the distilled ECG students and reference models.

    Protocol (the same for every model, so the comparison is paired): subjects are
    split into ``n_splits`` folds by :class:`~sklearn.model_selection.GroupKFold`
    (deterministic; the seeds only seed the models). For every seed, fold and label
    scheme:

    1. the labels are mapped with :func:`sleepkd.stages.to_scheme`;
    2. ONE teacher (a clone with ``random_state=seed``) is fitted on the EEG of the
       training subjects and shared, frozen
       (:class:`sklearn.frozen.FrozenEstimator`), by all students; its own
       predictions on the test subjects' EEG are the row "EEG teacher";
    3. one :class:`~sleepkd.distillation.DistilledECGStager` per strategy is fitted
       on the training subjects' ECG (with the EEG for distillation) and predicts the
       test subjects' ECG;
    4. every ``extra_models`` estimator is fitted on the training rows of ``X_ecg``;
    5. a :func:`~sleepkd.metrics.staging_report` is computed per model on the test
       subjects (pooled over their epochs).

    Validation subjects for checkpoint selection are drawn from the training subjects
    only, so test subjects never influence training.

    Parameters
    ----------
    data : Bunch or dict
        With ``X_ecg``, ``X_eeg``, ``y`` (stages, any scheme finer than or equal to
        the requested ones), ``groups`` (subject ids) and optionally ``records``,
        ``onsets``, ``DESCR`` and ``source`` (as from
        :func:`~sleepkd.datasets.make_synthetic_psg`).
    teacher : EEGTeacher
        The EEG model (unfitted; cloned per fold and seed).
    student : ECGStudent
        The ECG model of every strategy (cloned).
    schemes : sequence of {"5class", "4class", "3class"}, default=("4class", "3class")
    strategies : sequence of str, optional
        Strategies of :class:`~sleepkd.distillation.DistilledECGStager`; default the
        paper's four (``"baseline"``, ``"sd+cl"``, ``"at+cl"``, ``"at+sd+cl"``). The gains are
        reported over ``"baseline"`` when it is among them.
    extra_models : dict, optional
        Name -> scikit-learn classifier fitted on ``X_ecg`` rows (e.g. a Pipeline of
        :class:`~sleepkd.signal.HRVFeatures` and a gradient-boosting classifier), or
        name -> ``(classifier, field)`` to fit it on another array of ``data`` with
        one row per epoch (e.g. the raw ECG when ``X_ecg`` holds heart rate); its
        ``random_state`` parameters are set to the seed.
    n_splits : int, default=5
        Number of subject-wise folds.
    max_folds : int, optional
        Run only the first ``max_folds`` folds (e.g. ``n_splits=5, max_folds=1``: one
        80/20 subject split, for a quick look); default all.
    seeds : sequence of int, default=(0,)
        One run of every fold per seed.
    stager_params : dict, optional
        Further parameters of every ``DistilledECGStager`` (``alpha``,
        ``temperature``, ``at_distance``, ...).
    keep_estimators : bool, default=False
        Keep every fitted model in ``result.estimators`` (memory grows with folds x
        seeds x schemes x models).
    n_jobs : int, default=1
        Fold x seed x scheme runs in parallel (joblib processes; -1: one per CPU). Each
        worker uses the caller's number of torch threads, so the results are those of
        a sequential run; set ``torch.set_num_threads(1)`` first when running several
        jobs on few cores. The progress bar then counts finished runs.
    verbose : int, default=1
        0: silent (training logs off, no progress bar); 1: a progress bar over the
        fits (the estimators keep their own ``verbose``).

    Returns
    -------
    result : ExperimentResult

    Raises
    ------
    ValueError
        On missing or misaligned data fields, an unknown scheme or strategy, fewer
        subjects than folds, or a model name used twice.
    """
    from tqdm.auto import tqdm

    from sleepkd.distillation._stager import PAPER_STRATEGIES

    arrays = _check_data(data)
    schemes = _check_schemes(schemes)
    strategies = _check_strategies(PAPER_STRATEGIES if strategies is None else strategies)
    extra_models = {name: _extra_input(name, spec, data, len(arrays["y"]))
                    for name, spec in dict(extra_models or {}).items()}
    stager_params = dict(stager_params or {})
    seeds = [int(s) for s in seeds]
    if (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))
            or not (n_jobs >= 1 or n_jobs == -1)):
        raise ValueError(f"n_jobs must be a positive int or -1, got {n_jobs!r}.")
    if not seeds:
        raise ValueError("seeds must hold at least one seed.")
    models = [TEACHER_NAME] + [STRATEGY_NAMES[s] for s in strategies] + list(extra_models)
    if len(set(models)) != len(models):
        raise ValueError(f"Model names must be unique, got {models}.")
    groups = arrays["groups"]
    folds = subject_folds(groups, n_splits)
    if max_folds is not None:
        if not isinstance(max_folds, (int, np.integer)) or max_folds < 1:
            raise ValueError(f"max_folds must be None or an int >= 1, got {max_folds!r}.")
        folds = folds[:max_folds]
    fold_subjects = {k: sorted(np.unique(groups[test]).tolist())
                     for k, (_, test) in enumerate(folds)}
    provenance = data_provenance(data)
    logger.info("Experiment on %s: %d epochs, %d subjects, %d of %d subject-wise folds, "
                "seeds %s, schemes %s, models %s.", PROVENANCE_NOTE[provenance],
                len(groups), len(np.unique(groups)), len(folds), n_splits, seeds, schemes,
                models)
    if verbose == 0:
        teacher = _seeded(teacher, 0).set_params(verbose=0)
        student = _seeded(student, 0).set_params(verbose=0)

    fits_per_task = 1 + len(strategies) + len(extra_models)
    tasks = [(seed, fold, train, test, scheme) for seed in seeds
             for fold, (train, test) in enumerate(folds) for scheme in schemes]
    common = dict(arrays=arrays, teacher=teacher, student=student, strategies=strategies,
                  extra_models=extra_models, stager_params=stager_params,
                  keep_estimators=keep_estimators, n_folds=len(folds))
    bar = tqdm(total=len(tasks) * fits_per_task, disable=verbose == 0,
               desc="sleepkd experiment", unit="fit")
    score_rows, prediction_frames, estimators = [], [], {}
    try:
        if n_jobs == 1:
            outputs = (_run_task(task, bar=bar, **common) for task in tasks)
        else:
            from joblib import Parallel, delayed

            # one task = one fold x seed x scheme; the workers use the caller's torch
            # threads, so results match a sequential run
            outputs = Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_run_task)(task, bar=None, threads=_torch_threads(), **common)
                for task in tasks)
        for rows, frames, fitted in outputs:
            score_rows += rows
            prediction_frames += frames
            estimators.update(fitted)
            if n_jobs != 1:
                bar.update(fits_per_task)
    finally:
        bar.close()

    config = {
        "teacher": repr(teacher), "student": repr(student), "strategies": strategies,
        "extra_models": {k: repr(v[0]) for k, v in extra_models.items()},
        "stager_params": stager_params, "n_splits": n_splits, "folds_run": len(folds),
        "seeds": seeds,
        "schemes": schemes,
    }
    return ExperimentResult(
        scores=pd.DataFrame(score_rows),
        predictions=pd.concat(prediction_frames, ignore_index=True),
        folds=fold_subjects, models=models, provenance=provenance,
        description=str(_field(data, "DESCR", required=False) or ""), config=config,
        estimators=estimators)


class _NoBar:
    """Stands in for the progress bar inside a parallel worker."""

    def set_postfix_str(self, *args, **kwargs) -> None:
        pass

    def update(self, *args, **kwargs) -> None:
        pass


def _torch_threads() -> int | None:
    import sys

    torch = sys.modules.get("torch")
    return None if torch is None else torch.get_num_threads()


def _run_task(task, *, arrays, teacher, student, strategies, extra_models, stager_params,
              keep_estimators, n_folds, bar, threads=None) -> tuple[list, list, dict]:
    """Fit and score every model of one seed, fold and scheme.

    Returns the score rows, the prediction frames and (with ``keep_estimators``) the
    fitted models keyed by ``(seed, fold, scheme, name)``.
    """
    from sklearn.frozen import FrozenEstimator

    from sleepkd.distillation._stager import DistilledECGStager
    from sleepkd.metrics import staging_report
    from sleepkd.stages import to_scheme

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    seed, fold, train, test, scheme = task
    groups = arrays["groups"]
    y = to_scheme(arrays["y"], scheme)
    fitted = _fit_fold(
        arrays, y, train, test, seed=seed, teacher=teacher, student=student,
        strategies=strategies, extra_models=extra_models, stager_params=stager_params,
        bar=_NoBar() if bar is None else bar,
        label=f"seed {seed}, fold {fold + 1}/{n_folds}, {scheme}",
        frozen=FrozenEstimator, stager_class=DistilledECGStager)
    estimators = ({(seed, fold, scheme, name): est for name, (est, _) in fitted.items()}
                  if keep_estimators else {})
    # unscored epochs (kept in place for the night models) are not scored
    keep = y[test] != UNSCORED
    test_rows = test[keep]
    predictions = {name: np.asarray(pred)[keep] for name, (_, pred) in fitted.items()}
    labels = list(SCHEMES[scheme])
    present = [c for c in labels if c in set(y[test_rows]) | set(
        np.concatenate([p for p in predictions.values()]))]
    score_rows, frames = [], []
    for model, y_pred in predictions.items():
        report = staging_report(y[test_rows], y_pred, labels=present)
        row = {"seed": seed, "fold": fold, "scheme": scheme, "model": model,
               "n_epochs": report.n_epochs, **{m: getattr(report, m) for m in _METRIC_COLUMNS}}
        row.update({f"f1_{c}": report.f1_per_class.get(c, math.nan) for c in labels})
        score_rows.append(row)
        frames.append(pd.DataFrame({
            "seed": seed, "fold": fold, "scheme": scheme, "model": model,
            "subject": groups[test_rows], "record": arrays["records"][test_rows],
            "onset": arrays["onsets"][test_rows], "y_true": y[test_rows],
            "y_pred": np.asarray(y_pred)}))
        logger.info("seed %d fold %d %s %-22s kappa %.3f  F1w %.3f", seed, fold, scheme,
                    model, report.kappa, report.f1_weighted)
    return score_rows, frames, estimators


def _reads_nights(estimator) -> bool:
    return bool(getattr(estimator, "reads_nights", False))


def _fit_fold(arrays, y, train, test, *, seed, teacher, student, strategies,
              extra_models, stager_params, bar, label, frozen, stager_class) -> dict:
    """Fit every model on the training rows; name -> (fitted model, test predictions).

    Night-level models read every row of their nights (unscored epochs kept in place,
    ``nights`` = the records); per-epoch models are fitted on the scored rows only.
    """
    X_ecg, X_eeg, groups, nights = (arrays["X_ecg"], arrays["X_eeg"], arrays["groups"],
                                    arrays["records"])
    scored = y != UNSCORED
    scored_train = train[scored[train]]
    predictions = {}
    bar.set_postfix_str(f"{label}: {TEACHER_NAME}")
    logger.info("%s: fitting the EEG teacher.", label)
    teacher_ = _seeded(teacher, seed)
    if _reads_nights(teacher_):
        teacher_.fit(X_eeg[train], y[train], nights=nights[train], groups=groups[train])
        teacher_pred = teacher_.predict(X_eeg[test], nights=nights[test])
    else:
        teacher_.fit(X_eeg[scored_train], y[scored_train], groups=groups[scored_train])
        teacher_pred = teacher_.predict(X_eeg[test])
    predictions[TEACHER_NAME] = teacher_, teacher_pred
    bar.update()
    shared = frozen(teacher_)
    rows = train if _reads_nights(student) else scored_train
    for strategy in strategies:
        name = STRATEGY_NAMES[strategy]
        bar.set_postfix_str(f"{label}: {name}")
        logger.info("%s: fitting the %s student.", label, name)
        stager = stager_class(teacher=shared, student=student, strategy=strategy,
                              random_state=seed, **stager_params)
        stager.fit(X_ecg[rows], y[rows], X_eeg=X_eeg[rows], groups=groups[rows],
                   nights=nights[rows])
        predictions[name] = stager, stager.predict(X_ecg[test], nights=nights[test])
        bar.update()
    for name, (estimator, X_extra) in extra_models.items():
        bar.set_postfix_str(f"{label}: {name}")
        logger.info("%s: fitting %s.", label, name)
        model = _seeded(estimator, seed)
        if _reads_nights(model):
            model.fit(X_extra[train], y[train], nights=nights[train], groups=groups[train])
            predictions[name] = model, model.predict(X_extra[test], nights=nights[test])
        else:
            model.fit(X_extra[scored_train], y[scored_train])
            predictions[name] = model, model.predict(X_extra[test])
        bar.update()
    return predictions
