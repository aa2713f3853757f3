"""A scorer for sklearn's model selection that passes nights to ``predict``.

sklearn's own scorers call ``estimator.predict(X)`` with no metadata, so a night-level
model scored by ``cross_val_score(..., scoring="accuracy")`` would read each test fold
as one long night and score unscored rows. :func:`staging_scorer` requests ``nights``
through metadata routing, hands it to ``predict``, and leaves unscored rows out.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from sleepkd.stages import UNSCORED

_METRICS = {
    "kappa": cohen_kappa_score,
    "accuracy": accuracy_score,
    "weighted_f1": lambda y, p: f1_score(y, p, average="weighted"),
    "macro_f1": lambda y, p: f1_score(y, p, average="macro"),
}


class StagingScorer:
    """Score staging on scored epochs only, each night predicted as a whole.

    Parameters
    ----------
    metric : {"kappa", "accuracy", "weighted_f1", "macro_f1"}
        Metric on the scored rows.
    unscored_label : object, default="?"
        Rows of ``y`` with this label are left out of the score.

    Notes
    -----
    Use :func:`staging_scorer` to build one. The scorer requests ``nights`` (a night id
    per row) under sklearn's metadata routing; pass it in ``params`` of
    ``cross_val_score`` / ``cross_validate`` / ``GridSearchCV.fit`` with
    ``sklearn.set_config(enable_metadata_routing=True)``. Models that read single
    epochs are scored the same way (they ignore the nights).
    """

    def __init__(self, metric: str = "kappa", unscored_label=UNSCORED) -> None:
        if metric not in _METRICS:
            raise ValueError(f"Unknown metric {metric!r}; expected one of {sorted(_METRICS)}.")
        self.metric = metric
        self.unscored_label = unscored_label

    def __call__(self, estimator, X, y_true, nights=None, **kwargs) -> float:
        from sleepkd.distillation._night_estimators import is_unscored

        y_true = np.asarray(y_true)
        y_pred = (estimator.predict(X) if nights is None
                  else estimator.predict(X, nights=nights))
        scored = ~is_unscored(y_true, self.unscored_label)
        if not scored.any():
            raise ValueError("Every row of y is unscored: there is nothing to score.")
        return float(_METRICS[self.metric](y_true[scored], np.asarray(y_pred)[scored]))

    def get_metadata_routing(self):
        """Request ``nights`` for scoring (sklearn's metadata routing)."""
        from sklearn.utils.metadata_routing import MetadataRequest

        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="nights", alias=True)
        return request

    def __repr__(self) -> str:
        return f"staging_scorer({self.metric!r})"


def staging_scorer(metric: str = "kappa", unscored_label=UNSCORED) -> StagingScorer:
    """A scorer that predicts whole nights and scores the scored epochs only.

    Parameters
    ----------
    metric : {"kappa", "accuracy", "weighted_f1", "macro_f1"}, default="kappa"
        Cohen's kappa, accuracy, or the support-weighted / unweighted mean F1.
    unscored_label : object, default="?"
        Label of the rows left out (unscored epochs kept in place by
        ``make_epochs(..., unscored="keep")``).

    Returns
    -------
    scorer : StagingScorer
        ``scorer(estimator, X, y, nights=None)``; pass it as ``scoring=`` to sklearn's
        model selection, with ``nights`` routed in ``params``.

    Examples
    --------
    >>> import sklearn
    >>> from sklearn.model_selection import GroupKFold, cross_val_score
    >>> scorer = staging_scorer("kappa")
    >>> sklearn.set_config(enable_metadata_routing=True)  # doctest: +SKIP
    >>> cross_val_score(student, X, y, groups=subjects, cv=GroupKFold(3),
    ...                 scoring=scorer,
    ...                 params={"nights": nights, "groups": subjects})  # doctest: +SKIP
    """
    return StagingScorer(metric, unscored_label)
