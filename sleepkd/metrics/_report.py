"""Sleep-staging report: pooled and per-subject figures computed with scikit-learn.

Every figure is computed by :mod:`sklearn.metrics` itself (``accuracy_score``,
``cohen_kappa_score``, ``f1_score``, ``confusion_matrix``), so the numbers agree
exactly with what a reader computes on the same labels. What this module adds is the
bookkeeping a sleep paper needs: stage order (W first, R last), per-subject figures
with their mean and standard deviation, undefined values made explicit, and tables.
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from sleepkd.stages import SCHEMES

logger = logging.getLogger(__name__)

#: The scalar figures reported pooled and per subject, in report order.
SCALAR_METRICS = ("accuracy", "kappa", "f1_weighted", "f1_macro")


@dataclass(frozen=True, eq=False)
class StagingReport:
    """Agreement between expert and predicted sleep stages.

    Built by :func:`staging_report`; read the figures as attributes, or as tables
    with :meth:`summary` and :meth:`to_markdown`.

    Parameters
    ----------
    accuracy : float
        Fraction of epochs staged correctly, pooled over all epochs.
    kappa : float
        Cohen's kappa pooled over all epochs (NaN when undefined, see
        :func:`staging_report`).
    f1_weighted : float
        F1 averaged over stages, weighted by each stage's number of true epochs.
    f1_macro : float
        Unweighted mean of the per-stage F1 (stages absent from both ``y_true`` and
        ``y_pred`` are left out).
    f1_per_class : dict
        Stage label -> F1 (NaN for a stage absent from both ``y_true`` and ``y_pred``).
    confusion : pandas.DataFrame
        Confusion matrix of epoch counts: rows are the true stages (index named
        ``"true"``), columns the predicted stages (columns named ``"predicted"``).
    per_subject : pandas.DataFrame or None
        One row per subject (index named ``"subject"``) with columns ``n_epochs``,
        ``accuracy``, ``kappa``, ``f1_weighted``, ``f1_macro``; ``None`` when no
        groups were given.
    labels : tuple
        Stage labels in report order.
    n_epochs : int
        Number of epochs compared.
    n_undefined_kappa : int
        Number of subjects whose kappa is undefined (NaN in ``per_subject``).
    """

    accuracy: float
    kappa: float
    f1_weighted: float
    f1_macro: float
    f1_per_class: dict
    confusion: pd.DataFrame
    per_subject: pd.DataFrame | None
    labels: tuple
    n_epochs: int
    n_undefined_kappa: int = 0

    @property
    def n_subjects(self) -> int | None:
        """Number of subjects, or ``None`` when no groups were given."""
        return None if self.per_subject is None else len(self.per_subject)

    def to_dict(self) -> dict:
        """Pooled scalar figures as a flat dict.

        Returns
        -------
        figures : dict
            ``accuracy``, ``kappa``, ``f1_weighted``, ``f1_macro``, one ``f1_<label>``
            per stage (e.g. ``f1_W``) and ``n_epochs``.
        """
        figures = {name: getattr(self, name) for name in SCALAR_METRICS}
        figures.update({f"f1_{label}": f1 for label, f1 in self.f1_per_class.items()})
        figures["n_epochs"] = self.n_epochs
        return figures

    def summary(self) -> pd.DataFrame:
        """Table of the figures: one row per metric.

        Returns
        -------
        table : pandas.DataFrame
            Index: ``accuracy``, ``kappa``, ``f1_weighted``, ``f1_macro`` and one
            ``f1_<label>`` per stage. Column ``pooled`` holds the figure over all
            epochs; when groups were given, ``subject_mean`` and ``subject_std`` hold the mean
            and sample standard deviation (``ddof=1``) over subjects, ignoring subjects
            whose value is undefined. Per-stage F1 is reported pooled only (NaN in the
            subject columns).
        """
        rows = {name: getattr(self, name) for name in SCALAR_METRICS}
        rows.update({f"f1_{label}": f1 for label, f1 in self.f1_per_class.items()})
        table = pd.DataFrame({"pooled": pd.Series(rows, dtype=float)})
        table.index.name = "metric"
        if self.per_subject is not None:
            scores = self.per_subject[list(SCALAR_METRICS)]
            table["subject_mean"] = scores.mean(skipna=True)
            table["subject_std"] = scores.std(ddof=1, skipna=True)
        return table

    def to_markdown(self, digits: int = 3) -> str:
        """Render the summary and the confusion matrix as markdown tables.

        Parameters
        ----------
        digits : int, default=3
            Decimals shown for the figures.

        Returns
        -------
        text : str
            A short heading line, the :meth:`summary` table and the confusion matrix
            (rows true, columns predicted). Undefined values are shown as ``n/a``.
        """
        subjects = "" if self.n_subjects is None else f", {self.n_subjects} subjects"
        parts = [
            f"**Sleep staging report** ({self.n_epochs} epochs{subjects})",
            "",
            _markdown_table(self.summary(), digits=digits),
            "",
            "Confusion matrix (rows: true, columns: predicted)",
            "",
            _markdown_table(self.confusion, digits=0, corner="true \\ predicted"),
        ]
        if self.n_undefined_kappa:
            parts += ["", f"Kappa undefined (single stage) for "
                          f"{self.n_undefined_kappa} subject(s); left out of the "
                          "subject mean and std."]
        return "\n".join(parts) + "\n"

    def __repr__(self) -> str:
        subjects = "" if self.n_subjects is None else f", n_subjects={self.n_subjects}"
        return (
            f"StagingReport(n_epochs={self.n_epochs}{subjects}, "
            f"accuracy={self.accuracy:.3f}, kappa={self.kappa:.3f}, "
            f"f1_weighted={self.f1_weighted:.3f}, f1_macro={self.f1_macro:.3f}, "
            f"labels={list(self.labels)})"
        )


def staging_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    groups: ArrayLike | None = None,
    labels: ArrayLike | None = None,
) -> StagingReport:
    """Accuracy, Cohen's kappa, F1 and confusion matrix of a sleep stager.

    Figures are pooled over all epochs and, when ``groups`` is given, computed per
    subject with their mean and standard deviation across subjects. All values are
    computed by :mod:`sklearn.metrics` and agree exactly with it.

    Parameters
    ----------
    y_true : array-like of shape (n_epochs,)
        Expert stages.
    y_pred : array-like of shape (n_epochs,)
        Predicted stages.
    groups : array-like of shape (n_epochs,), default=None
        Subject identifier of each epoch; enables the per-subject table.
    labels : array-like, default=None
        Stages to report, in report order. ``None`` uses every label present in
        ``y_true`` or ``y_pred``: in the order of a known scheme
        (:data:`sleepkd.stages.SCHEMES`: ``W N1 N2 N3 R``, ``W L D R``, ``W N R``)
        when the labels belong to one, sorted otherwise. A label listed here but
        absent from both ``y_true`` and ``y_pred`` gets a zero row and column in the
        confusion matrix and an F1 of NaN, and is left out of the macro F1.

    Returns
    -------
    report : StagingReport
        Pooled figures, the confusion matrix (rows true, columns predicted) and the
        per-subject table.

    Raises
    ------
    ValueError
        If ``y_true`` and ``y_pred`` differ in length, are empty or not 1-D, mix
        strings and numbers; if ``groups`` has another length; if ``labels`` is
        empty, has duplicates, or misses a label present in the data.

    Notes
    -----
    Per subject, figures use the stages present in that subject's ``y_true`` or
    ``y_pred`` (scikit-learn's default), so a stage a subject never shows does not
    count as an F1 of 0 in the macro F1.

    Cohen's kappa is undefined when ``y_true`` and ``y_pred`` both contain one and
    the same single stage (expected agreement is 1, so kappa is 0/0). It is then
    reported as NaN (scikit-learn does the same with a warning) and logged as a
    warning; undefined per-subject values are counted in ``n_undefined_kappa`` and
    left out of the subject mean and standard deviation.

    Examples
    --------
    >>> from sleepkd.metrics import staging_report
    >>> report = staging_report(["W", "N2", "N2", "R"], ["W", "N2", "R", "R"])
    >>> report.labels
    ('W', 'N2', 'R')
    >>> round(report.accuracy, 2)
    0.75
    >>> report.confusion.loc["N2", "R"]  # true N2 staged as R
    np.int64(1)
    """
    from sklearn.metrics import confusion_matrix, f1_score

    y_true = _check_labels_array(y_true, "y_true")
    y_pred = _check_labels_array(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred must have the same length, got {len(y_true)} and "
            f"{len(y_pred)}."
        )
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1 or len(groups) != len(y_true):
            raise ValueError(
                f"groups must be 1-D with one subject id per epoch ({len(y_true)}), "
                f"got shape {groups.shape}."
            )
    labels = _resolve_labels(y_true, y_pred, labels)

    f1_per_class = f1_score(
        y_true, y_pred, labels=labels, average=None, zero_division=np.nan
    )
    with warnings.catch_warnings():
        # sklearn warns about a 1x1 matrix even when `labels` is given explicitly.
        warnings.filterwarnings("ignore", message="A single label was found")
        cm = confusion_matrix(y_true, y_pred, labels=labels)
    label_list = [_plain(label) for label in labels]
    confusion = pd.DataFrame(
        cm,
        index=pd.Index(label_list, name="true"),
        columns=pd.Index(label_list, name="predicted"),
    )
    per_subject, n_undefined = None, 0
    if groups is not None:
        per_subject, undefined = _per_subject_table(y_true, y_pred, groups)
        n_undefined = len(undefined)
        if n_undefined:
            logger.warning(
                "Cohen's kappa is undefined for %d subject(s) (%s): a single stage in "
                "both y_true and y_pred. Reported as NaN and left out of the subject "
                "mean and std.", n_undefined, ", ".join(map(str, undefined[:10])),
            )
    scalars = _scalar_figures(y_true, y_pred)
    if math.isnan(scalars["kappa"]):
        logger.warning("Cohen's kappa is undefined: y_true and y_pred hold one and "
                       "the same single stage. Reported as NaN.")
    return StagingReport(
        **{name: scalars[name] for name in SCALAR_METRICS},
        f1_per_class={label: float(f1) for label, f1 in zip(label_list, f1_per_class)},
        confusion=confusion,
        per_subject=per_subject,
        labels=tuple(label_list),
        n_epochs=len(y_true),
        n_undefined_kappa=n_undefined,
    )


def relative_gain(score: float, baseline: float) -> float:
    """Relative improvement of ``score`` over ``baseline``.

    Computed as ``(score - baseline) / baseline``.

    Papers often state a gain as a relative percentage ("weighted F1 14.3 % higher");
    report it next to the absolute difference in points, which this does not replace.

    Parameters
    ----------
    score : float
        The new figure (e.g. the distilled student's weighted F1).
    baseline : float
        The reference figure; must be positive and finite.

    Returns
    -------
    gain : float
        Relative gain as a fraction (multiply by 100 for percent); negative when
        ``score`` is below ``baseline``.

    Raises
    ------
    ValueError
        If either value is not a finite number, or ``baseline`` is not positive (a
        relative change from zero or from a negative kappa has no meaning).

    Examples
    --------
    >>> from sleepkd.metrics._report import relative_gain
    >>> round(100 * relative_gain(0.64, 0.56), 1)
    14.3
    """
    for name, value in (("score", score), ("baseline", baseline)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if baseline <= 0:
        raise ValueError(
            f"baseline must be positive for a relative gain, got {baseline!r}; report "
            "the absolute difference instead."
        )
    return (float(score) - float(baseline)) / float(baseline)


def _check_labels_array(y: ArrayLike, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one stage per epoch), got shape {y.shape}.")
    if y.size == 0:
        raise ValueError(f"{name} is empty: no epochs to evaluate.")
    return y


def _resolve_labels(y_true: np.ndarray, y_pred: np.ndarray, labels) -> np.ndarray:
    """Report order of the labels; checks user labels cover the data."""
    from sklearn.utils.multiclass import unique_labels

    present = unique_labels(y_true, y_pred)  # sorted; rejects mixed str/number
    if labels is None:
        return np.asarray(_scheme_order(present.tolist()), dtype=present.dtype)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D list, got {labels!r}.")
    if len(set(labels.tolist())) != labels.size:
        raise ValueError(f"labels contains duplicates: {labels.tolist()}.")
    missing = sorted(set(present.tolist()) - set(labels.tolist()), key=str)
    if missing:
        raise ValueError(
            f"y_true/y_pred contain label(s) {missing} that are not in labels "
            f"{labels.tolist()}."
        )
    return labels


def _scheme_order(present: list) -> list:
    """Order labels like the first scheme that contains them all, else keep sorted."""
    for scheme in SCHEMES.values():
        if set(present) <= set(scheme):
            return [label for label in scheme if label in present]
    return present


def _scalar_figures(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, kappa, weighted and macro F1 over the labels present in the data.

    sklearn's default labels (the sorted labels present) are used on purpose: the
    result is then bit-for-bit what a plain sklearn call returns (another label order
    changes the float summation order), and stages absent from both arrays, which
    carry no information, cannot pull the macro F1 down.
    """
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    if _kappa_undefined(y_true, y_pred):
        kappa = float("nan")  # 0/0; sklearn would warn and return NaN
    else:
        kappa = float(cohen_kappa_score(y_true, y_pred))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "kappa": kappa,
        "f1_weighted": float(f1_score(y_true, y_pred, average="weighted")),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro")),
    }


def _kappa_undefined(y_true: np.ndarray, y_pred: np.ndarray) -> bool:
    # Expected agreement is 1 exactly when both raters use one and the same stage.
    first = y_true[0]
    return bool(np.all(y_true == first) and np.all(y_pred == first))


def _per_subject_table(y_true, y_pred, groups):
    """One row of figures per subject, and the subjects whose kappa is undefined."""
    rows, undefined = {}, []
    for subject in np.unique(groups):
        mask = groups == subject
        figures = _scalar_figures(y_true[mask], y_pred[mask])
        if math.isnan(figures["kappa"]):
            undefined.append(_plain(subject))
        rows[_plain(subject)] = {"n_epochs": int(mask.sum()), **figures}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "subject"
    return table, undefined


def _plain(value):
    """NumPy scalar -> Python scalar (clean dict keys and reprs)."""
    return value.item() if isinstance(value, np.generic) else value


def _format_cell(value, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}f}"
    return str(value)


def _markdown_table(table: pd.DataFrame, digits: int, corner: str | None = None) -> str:
    """A GitHub-flavoured markdown table (no ``tabulate`` needed)."""
    header = [corner or table.index.name or ""] + [str(c) for c in table.columns]
    body = [
        [str(index)] + [_format_cell(v, digits) for v in row]
        for index, row in zip(table.index, table.itertuples(index=False))
    ]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(cells, align_left_first=True):
        padded = [
            cell.ljust(w) if i == 0 and align_left_first else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        [":" + "-" * (widths[0] + 1)] + ["-" * (w + 1) + ":" for w in widths[1:]]
    ) + "|"
    return "\n".join([line(header), rule] + [line(r) for r in body])
