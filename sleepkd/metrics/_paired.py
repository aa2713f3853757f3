"""Paired statistics for a gain over a baseline: the evidence a distillation claim needs.

A claim such as "distillation raises weighted F1 by 14 %" compares two models
evaluated on the same subjects. These functions keep that pairing:

- :func:`paired_gains`: per evaluation unit (by default each fold x seed), the gain of
  a model over the baseline on the subjects both were scored on;
- :func:`bootstrap_ci`: a percentile confidence interval of the mean gain, resampling
  **subjects** (the independent units) with replacement;
- :func:`paired_test`: the Wilcoxon signed-rank test over the pairs, and the share of
  pairs the model wins;
- :func:`summarize_gains`: all of it, one row per (model vs baseline, metric).

Input table contract
--------------------
``scores`` is a long :class:`pandas.DataFrame` with one row per
(model, pair, subject): a model column (``model_col``, default ``"model"``), the pair
columns (``pair_on``, default ``("fold", "seed")``), a subject column (``subject_col``,
default ``"subject"``) and one numeric column per metric (e.g. ``f1_weighted``,
``kappa``, as in :attr:`sleepkd.metrics.StagingReport.per_subject`). Other columns are
ignored. A (model, pair, subject) key may appear only once. Subject ids must name the
same person across pairs (seeds re-evaluate the same subjects), since subjects are the
resampling unit.

Pairing rules: model and baseline rows are matched on (pair, subject); a row without
its counterpart, or with a NaN metric on either side (e.g. an undefined kappa), is left
out of that metric's comparison and counted in a :class:`UserWarning`.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["PairedTest", "bootstrap_ci", "paired_gains", "paired_test", "summarize_gains"]

#: Columns of :func:`summarize_gains`, after the optional ``by`` columns.
SUMMARY_COLUMNS = (
    "model", "baseline", "metric", "baseline_mean", "model_mean", "mean_gain",
    "mean_relative_gain_pct", "ci_low", "ci_high", "wilcoxon_p", "win_share",
    "n_pairs", "n_subjects", "note",
)
_ALTERNATIVES = ("two-sided", "greater", "less")


class PairedTest(NamedTuple):
    """Result of :func:`paired_test`.

    Attributes
    ----------
    statistic : float
        Wilcoxon's statistic as returned by :func:`scipy.stats.wilcoxon` (0 when all
        differences are zero; NaN with fewer than 2 pairs).
    pvalue : float
        Its p-value: 1 when all differences are zero, NaN with fewer than 2 pairs.
    win_share : float
        Share of pairs with a strictly positive gain (NaN without pairs).
    n_pairs : int
        Number of pairs.
    n_ties : int
        Pairs with a gain of exactly 0.
    note : str
        Why the p-value was not computed by scipy; empty otherwise.
    """

    statistic: float
    pvalue: float
    win_share: float
    n_pairs: int
    n_ties: int
    note: str


# --------------------------------------------------------------------------- helpers
def _as_columns(value, name: str) -> list[str]:
    cols = [value] if isinstance(value, str) else list(value)
    if not cols:
        raise ValueError(f"{name} must name at least one column.")
    if len(set(cols)) != len(cols):
        raise ValueError(f"{name} has duplicates: {cols}.")
    return cols


def _check_scores(scores, model_col, pair_cols, subject_col, metrics, by_cols=()) -> None:
    if not isinstance(scores, pd.DataFrame):
        raise ValueError(f"scores must be a pandas DataFrame (one row per model, pair and "
                         f"subject), got {type(scores).__name__}.")
    needed = [model_col, *pair_cols, subject_col, *metrics]
    missing = [c for c in dict.fromkeys(needed) if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lacks column(s) {missing}; it has {list(scores.columns)}.")
    overlap = set(pair_cols) & {model_col, subject_col}
    if overlap:
        raise ValueError(f"pair_on must not contain the model or subject column: "
                         f"{sorted(overlap)}.")
    for metric in metrics:
        if not pd.api.types.is_numeric_dtype(scores[metric]) \
                or pd.api.types.is_bool_dtype(scores[metric]):
            raise ValueError(f"Metric column {metric!r} must be numeric, got dtype "
                             f"{scores[metric].dtype}.")
    keys = [*by_cols, model_col, *pair_cols, subject_col]
    dup = scores.duplicated(keys, keep=False)
    if dup.any():
        first = scores.loc[dup, keys].iloc[0].to_dict()
        raise ValueError(f"{int(dup.sum())} rows share a (model, pair, subject) key, e.g. "
                         f"{first}; each key may appear once.")


def _check_model(scores, model_col, name, value) -> None:
    present = pd.unique(scores[model_col]).tolist()
    if value not in present:
        raise ValueError(f"{name} {value!r} is not in scores[{model_col!r}]: {present}.")


def _matched(scores, *, model, baseline, metric, pair_cols, subject_col, model_col,
             warn=True) -> pd.DataFrame:
    """Per (pair, subject): the baseline's and the model's metric and their difference."""
    keys = [*pair_cols, subject_col]
    base = scores.loc[scores[model_col] == baseline, keys + [metric]]
    mod = scores.loc[scores[model_col] == model, keys + [metric]]
    merged = base.merge(mod, on=keys, how="outer", suffixes=("_baseline", "_model"),
                        indicator=True)
    unmatched = int((merged["_merge"] != "both").sum())
    merged = merged[merged["_merge"] == "both"].drop(columns="_merge")
    merged = merged.rename(columns={f"{metric}_baseline": "baseline_score",
                                    f"{metric}_model": "model_score"})
    undefined = merged["baseline_score"].isna() | merged["model_score"].isna()
    n_undefined = int(undefined.sum())
    merged = merged[~undefined]
    if warn and (unmatched or n_undefined):
        parts = []
        if unmatched:
            parts.append(f"{unmatched} (pair, subject) row(s) scored for only one of the "
                         f"two models")
        if n_undefined:
            parts.append(f"{n_undefined} with an undefined (NaN) {metric}")
        warnings.warn(f"{model!r} vs {baseline!r} on {metric}: left out "
                      f"{' and '.join(parts)}; only subjects scored for both count.",
                      UserWarning, stacklevel=3)
    if merged.empty:
        raise ValueError(f"No (pair, subject) row has a {metric} for both {model!r} and "
                         f"{baseline!r}: nothing to compare.")
    merged = merged.sort_values(keys, kind="stable").reset_index(drop=True)
    merged["difference"] = merged["model_score"] - merged["baseline_score"]
    return merged


def _gains_from_matched(matched: pd.DataFrame, pair_cols) -> pd.DataFrame:
    grouped = matched.groupby(pair_cols, sort=True)
    table = grouped.agg(n_subjects=("difference", "size"),
                        baseline_score=("baseline_score", "mean"),
                        model_score=("model_score", "mean"),
                        gain=("difference", "mean")).reset_index()
    base = table["baseline_score"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(base > 0, table["gain"].to_numpy(dtype=float) / base, np.nan)
    table["relative_gain"] = relative
    return table


def _check_random_state(random_state) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (isinstance(random_state, numbers.Integral)
                                and not isinstance(random_state, bool)):
        return np.random.default_rng(random_state)
    raise ValueError(f"random_state must be None, an int or a numpy Generator, "
                     f"got {random_state!r}.")


def _bootstrap_from_matched(matched, pair_cols, subject_col, *, n_boot, confidence,
                            random_state) -> tuple[float, float]:
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}.")
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    rng = _check_random_state(random_state)
    subjects, s_idx = np.unique(matched[subject_col].to_numpy(), return_inverse=True)
    pair_keys = matched[pair_cols].astype(str).agg("\x1f".join, axis=1) \
        if len(pair_cols) > 1 else matched[pair_cols[0]].astype(str)
    _, p_idx = np.unique(pair_keys.to_numpy(), return_inverse=True)
    n_subjects, n_pairs = len(subjects), int(p_idx.max()) + 1
    if n_subjects < 2:
        return math.nan, math.nan
    # D[s, p]: the subject's difference in the pair (0 where absent), M[s, p]: membership
    diff = np.zeros((n_subjects, n_pairs))
    member = np.zeros((n_subjects, n_pairs))
    diff[s_idx, p_idx] = matched["difference"].to_numpy(dtype=float)
    member[s_idx, p_idx] = 1.0
    # the same draws as scipy.stats.bootstrap: rng.integers(0, n, (n_resamples, n))
    draws = rng.integers(0, n_subjects, (int(n_boot), n_subjects))
    counts = np.zeros((int(n_boot), n_subjects))
    np.add.at(counts, (np.repeat(np.arange(int(n_boot)), n_subjects), draws.ravel()), 1.0)
    num, den = counts @ diff, counts @ member
    with np.errstate(divide="ignore", invalid="ignore"):
        pair_gain = np.where(den > 0, num / den, np.nan)
    stats = np.nanmean(pair_gain, axis=1)  # pairs left empty by a resample drop out
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


# --------------------------------------------------------------------------- public
def paired_gains(
    scores: pd.DataFrame,
    *,
    model,
    baseline,
    metric: str,
    pair_on: str | Sequence[str] = ("fold", "seed"),
    subject_col: str = "subject",
    model_col: str = "model",
) -> pd.DataFrame:
    """Gain of ``model`` over ``baseline`` in every pair (e.g. fold x seed).

    Within a pair, the scores of both models are averaged over the subjects scored for
    both (see the module's pairing rules), so
    ``gain = model_score - baseline_score = mean over subjects of the differences``
    and ``relative_gain = gain / baseline_score``.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long table of per-subject scores (see the module docstring for the contract).
    model, baseline
        Values of ``scores[model_col]`` to compare.
    metric : str
        Metric column, e.g. ``"f1_weighted"`` or ``"kappa"``.
    pair_on : str or sequence of str, default=("fold", "seed")
        Columns that define a pair (an evaluation both models went through alike).
    subject_col : str, default="subject"
        Subject id column.
    model_col : str, default="model"
        Model name column.

    Returns
    -------
    gains : pandas.DataFrame
        One row per pair, sorted by the pair columns: the ``pair_on`` columns, then
        ``n_subjects`` (matched subjects), ``baseline_score`` and ``model_score`` (mean
        over those subjects), ``gain`` (difference, in the metric's units) and
        ``relative_gain`` (a fraction; NaN where ``baseline_score <= 0``, e.g. a
        kappa of 0, since a relative change from zero or a negative value has no
        meaning). ``gains.attrs`` holds ``model``, ``baseline`` and ``metric``.

    Raises
    ------
    ValueError
        If a column is missing or not numeric, a (model, pair, subject) key repeats, a
        model is absent, or no row can be matched.

    Warns
    -----
    UserWarning
        When rows are left out (no counterpart, or a NaN metric).

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({
    ...     "model": ["base", "base", "kd", "kd"], "fold": [0, 0, 0, 0],
    ...     "seed": [0, 0, 0, 0], "subject": ["a", "b", "a", "b"],
    ...     "f1_weighted": [0.50, 0.60, 0.60, 0.65]})
    >>> g = paired_gains(scores, model="kd", baseline="base", metric="f1_weighted")
    >>> round(float(g["gain"].iloc[0]), 3), round(float(g["relative_gain"].iloc[0]), 4)
    (0.075, 0.1364)
    """
    pair_cols = _as_columns(pair_on, "pair_on")
    _check_scores(scores, model_col, pair_cols, subject_col, [metric])
    _check_model(scores, model_col, "model", model)
    _check_model(scores, model_col, "baseline", baseline)
    matched = _matched(scores, model=model, baseline=baseline, metric=metric,
                       pair_cols=pair_cols, subject_col=subject_col, model_col=model_col)
    table = _gains_from_matched(matched, pair_cols)
    table.attrs.update({"model": model, "baseline": baseline, "metric": metric})
    return table


def bootstrap_ci(
    scores: pd.DataFrame,
    *,
    model,
    baseline,
    metric: str,
    pair_on: str | Sequence[str] = ("fold", "seed"),
    subject_col: str = "subject",
    model_col: str = "model",
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state=0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean gain, resampling subjects.

    The mean gain is the mean over pairs of :func:`paired_gains`' ``gain``. Each
    bootstrap replicate draws ``n_subjects`` subjects with replacement (all rows of a
    drawn subject, in every pair, come along, as many times as it was drawn) and
    recomputes that statistic: in every pair, the mean of the drawn subjects'
    differences; then the mean over the pairs (a pair none of whose subjects was drawn
    drops out of that replicate). The interval is the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles (linear interpolation) of the replicates.

    Subjects, not pairs, are resampled because they are the independent units: the
    seeds of one fold re-evaluate the same people. When every subject is scored in
    every pair, the statistic is the mean of per-subject mean differences, and the
    interval equals ``scipy.stats.bootstrap((g,), np.mean, method="percentile",
    n_resamples=n_boot, rng=np.random.default_rng(random_state))`` on those
    per-subject gains ``g`` (sorted by subject id): the draws are the same,
    ``rng.integers(0, n_subjects, (n_boot, n_subjects))``.

    Parameters
    ----------
    scores, model, baseline, metric, pair_on, subject_col, model_col
        See :func:`paired_gains`.
    n_boot : int, default=2000
        Bootstrap replicates.
    confidence : float in (0, 1), default=0.95
        Coverage of the interval.
    random_state : int, numpy Generator or None, default=0
        Seed of the draws; an int gives the same interval on every call (whatever the
        row order of ``scores``).

    Returns
    -------
    low, high : float
        The interval; ``(0.0, 0.0)`` when every difference is 0; ``(nan, nan)`` with
        fewer than 2 matched subjects (no spread to resample).

    Raises
    ------
    ValueError
        As :func:`paired_gains`, and on an invalid ``n_boot``, ``confidence`` or
        ``random_state``.

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({
    ...     "model": ["base"] * 3 + ["kd"] * 3, "fold": 0, "seed": 0,
    ...     "subject": ["a", "b", "c"] * 2,
    ...     "kappa": [0.5, 0.6, 0.7, 0.6, 0.7, 0.8]})
    >>> low, high = bootstrap_ci(scores, model="kd", baseline="base", metric="kappa")
    >>> round(low, 6), round(high, 6)  # every subject gains 0.1
    (0.1, 0.1)
    """
    pair_cols = _as_columns(pair_on, "pair_on")
    _check_scores(scores, model_col, pair_cols, subject_col, [metric])
    _check_model(scores, model_col, "model", model)
    _check_model(scores, model_col, "baseline", baseline)
    matched = _matched(scores, model=model, baseline=baseline, metric=metric,
                       pair_cols=pair_cols, subject_col=subject_col, model_col=model_col)
    return _bootstrap_from_matched(matched, pair_cols, subject_col, n_boot=n_boot,
                                   confidence=confidence, random_state=random_state)


def paired_test(gains, *, alternative: str = "two-sided",
                zero_method: str = "wilcox") -> PairedTest:
    """Wilcoxon signed-rank test of the per-pair gains, and the model's win share.

    Parameters
    ----------
    gains : pandas.DataFrame or array-like of shape (n_pairs,)
        :func:`paired_gains`' table (its ``gain`` column is used) or the gains.
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        ``"greater"``: the model is better than the baseline.
    zero_method : {"wilcox", "pratt", "zsplit"}, default="wilcox"
        Passed to :func:`scipy.stats.wilcoxon` (``"wilcox"``, scipy's default,
        discards zero differences).

    Returns
    -------
    result : PairedTest
        ``statistic``, ``pvalue``, ``win_share`` (share of pairs with a gain > 0),
        ``n_pairs``, ``n_ties`` (gains of exactly 0) and ``note``.

    Notes
    -----
    Two cases do not reach scipy, and ``note`` says so:

    - fewer than 2 pairs: no test is possible; ``statistic`` and ``pvalue`` are NaN;
    - every gain is exactly 0 (e.g. the model is the baseline): scipy would discard
      every difference and warn, or raise; ``statistic`` is 0 and ``pvalue`` 1, the
      answer of every zero-handling method that keeps zeros (no evidence of a
      difference).

    The pairs of different seeds share their subjects, so they are not independent
    and the p-value is optimistic; :func:`bootstrap_ci`, which resamples subjects, is
    the more conservative evidence.

    Examples
    --------
    >>> paired_test([0.02, 0.03, -0.01, 0.04, 0.05]).pvalue
    0.125
    >>> paired_test([0.0, 0.0, 0.0]).pvalue
    1.0
    """
    from scipy.stats import wilcoxon

    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {list(_ALTERNATIVES)}, "
                         f"got {alternative!r}.")
    values = gains["gain"] if isinstance(gains, pd.DataFrame) else gains
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"gains must be 1-D (one gain per pair), got shape {values.shape}.")
    if np.isnan(values).any():
        raise ValueError("gains contain NaN; drop the undefined pairs first.")
    n = int(values.size)
    win_share = float(np.mean(values > 0)) if n else math.nan
    n_ties = int(np.sum(values == 0))
    if n < 2:
        return PairedTest(math.nan, math.nan, win_share, n, n_ties,
                          f"{n} pair(s): fewer than 2, no paired test")
    if n_ties == n:
        return PairedTest(0.0, 1.0, win_share, n, n_ties,
                          "all pair gains are exactly 0: p = 1 by convention")
    result = wilcoxon(values, alternative=alternative, zero_method=zero_method)
    return PairedTest(float(result.statistic), float(result.pvalue), win_share, n,
                      n_ties, "")


def summarize_gains(
    scores: pd.DataFrame,
    *,
    baseline,
    models=None,
    metrics: str | Sequence[str] = ("f1_weighted", "kappa"),
    pair_on: str | Sequence[str] = ("fold", "seed"),
    subject_col: str = "subject",
    model_col: str = "model",
    by: str | Sequence[str] | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state=0,
    alternative: str = "two-sided",
) -> pd.DataFrame:
    """One row of paired evidence per (model vs baseline, metric).

    Parameters
    ----------
    scores : pandas.DataFrame
        Long table of per-subject scores (see the module docstring).
    baseline
        The reference model (a value of ``scores[model_col]``).
    models : sequence or None, default=None
        Models to compare with the baseline; ``None``: every other model, in order of
        appearance.
    metrics : str or sequence of str, default=("f1_weighted", "kappa")
        Metric columns.
    pair_on, subject_col, model_col
        See :func:`paired_gains`.
    by : str, sequence of str or None, default=None
        Columns to stratify by (e.g. ``"scheme"``): one block of rows per value,
        and the columns lead the table.
    n_boot, confidence, random_state
        See :func:`bootstrap_ci`; an int ``random_state`` gives every row the same
        subject draws.
    alternative : {"two-sided", "greater", "less"}, default="two-sided"
        See :func:`paired_test`.

    Returns
    -------
    summary : pandas.DataFrame
        One row per (by..., model, metric) with columns (after the ``by`` columns):

        - ``model``, ``baseline``, ``metric``;
        - ``baseline_mean``, ``model_mean``: means over pairs of the per-pair scores;
        - ``mean_gain``: mean over pairs of the gain (metric units; ``model_mean -
          baseline_mean``);
        - ``mean_relative_gain_pct``: mean over pairs of the relative gain, in
          percent (NaN, with a note, when a pair's baseline score is <= 0). The
          relative gain of the means, ``100 * mean_gain / baseline_mean``, can be
          computed from the table;
        - ``ci_low``, ``ci_high``: the subject-bootstrap interval of ``mean_gain``;
        - ``wilcoxon_p``: the signed-rank p-value over pairs; ``win_share``: the
          share of pairs with a positive gain;
        - ``n_pairs``, ``n_subjects``: pairs and distinct subjects compared;
        - ``note``: why a figure is NaN or set by convention; empty otherwise.

    Raises
    ------
    ValueError
        As :func:`paired_gains`; also if ``models`` is empty or holds the baseline.

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({
    ...     "model": ["base"] * 4 + ["kd"] * 4, "fold": [0, 0, 1, 1] * 2, "seed": 0,
    ...     "subject": ["a", "b", "c", "d"] * 2,
    ...     "kappa": [0.5, 0.6, 0.4, 0.5, 0.6, 0.6, 0.5, 0.55]})
    >>> row = summarize_gains(scores, baseline="base", metrics="kappa").iloc[0]
    >>> round(float(row["mean_gain"]), 4), int(row["n_pairs"]), int(row["n_subjects"])
    (0.0625, 2, 4)
    """
    pair_cols = _as_columns(pair_on, "pair_on")
    metric_list = _as_columns(metrics, "metrics")
    by_cols = [] if by is None else _as_columns(by, "by")
    if set(by_cols) & ({model_col, subject_col} | set(pair_cols)):
        raise ValueError("by must not repeat the model, subject or pair columns.")
    if by_cols:
        missing = [c for c in by_cols if c not in scores.columns]
        if missing:
            raise ValueError(f"scores lacks the by column(s) {missing}.")
    _check_scores(scores, model_col, pair_cols, subject_col, metric_list, by_cols)
    _check_model(scores, model_col, "baseline", baseline)
    if models is None:
        models = [m for m in pd.unique(scores[model_col]).tolist() if m != baseline]
    else:
        models = [models] if isinstance(models, str) else list(models)
    if not models:
        raise ValueError("No model to compare with the baseline.")
    if baseline in models:
        raise ValueError(f"models must not contain the baseline {baseline!r}.")
    for m in models:
        _check_model(scores, model_col, "model", m)

    blocks = [((), scores)] if not by_cols else [
        (key if isinstance(key, tuple) else (key,), block)
        for key, block in scores.groupby(by_cols, sort=True)]
    rows = []
    for key, block in blocks:
        for model in models:
            for metric in metric_list:
                row = dict(zip(by_cols, key))
                row.update(_summary_row(block, model=model, baseline=baseline,
                                        metric=metric, pair_cols=pair_cols,
                                        subject_col=subject_col, model_col=model_col,
                                        n_boot=n_boot, confidence=confidence,
                                        random_state=random_state,
                                        alternative=alternative))
                rows.append(row)
    return pd.DataFrame(rows, columns=[*by_cols, *SUMMARY_COLUMNS])


def _summary_row(block, *, model, baseline, metric, pair_cols, subject_col, model_col,
                 n_boot, confidence, random_state, alternative) -> dict:
    row = {"model": model, "baseline": baseline, "metric": metric}
    has_both = block[model_col].isin([model]).any() and block[model_col].isin(
        [baseline]).any()
    if not has_both:
        return {**row, **_empty_figures(), "note": "model or baseline absent"}
    try:
        matched = _matched(block, model=model, baseline=baseline, metric=metric,
                           pair_cols=pair_cols, subject_col=subject_col,
                           model_col=model_col)
    except ValueError as err:  # nothing matched in this block
        return {**row, **_empty_figures(), "note": str(err)}
    gains = _gains_from_matched(matched, pair_cols)
    test = paired_test(gains, alternative=alternative)
    low, high = _bootstrap_from_matched(matched, pair_cols, subject_col, n_boot=n_boot,
                                        confidence=confidence, random_state=random_state)
    notes = [test.note] if test.note else []
    n_subjects = int(matched[subject_col].nunique())
    if n_subjects < 2:
        notes.append("fewer than 2 subjects: no bootstrap interval")
    relative = gains["relative_gain"].to_numpy(dtype=float)
    n_undefined = int(np.isnan(relative).sum())
    if n_undefined:
        notes.append(f"relative gain undefined: baseline score <= 0 in {n_undefined} "
                     f"pair(s)")
    row.update({
        "baseline_mean": float(gains["baseline_score"].mean()),
        "model_mean": float(gains["model_score"].mean()),
        "mean_gain": float(gains["gain"].mean()),
        "mean_relative_gain_pct": math.nan if n_undefined else float(100 * relative.mean()),
        "ci_low": low, "ci_high": high,
        "wilcoxon_p": test.pvalue, "win_share": test.win_share,
        "n_pairs": int(len(gains)), "n_subjects": n_subjects,
        "note": "; ".join(notes),
    })
    return row


def _empty_figures() -> dict:
    figures = dict.fromkeys(SUMMARY_COLUMNS[3:-3], math.nan)
    figures.update({"n_pairs": 0, "n_subjects": 0})
    return figures
