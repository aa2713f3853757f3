"""Seed ensembles: several fits of one stager, their probabilities averaged.

A network trained on a dozen nights lands somewhere different with every seed (initial
weights, training windows, dropout, the checkpoint picked on a small validation split).
Averaging the probabilities of a few such fits removes much of that variance: on the
slpdb leave-one-subject-out benchmark, single fits of the night student reach a pooled
4-class kappa of 0.29-0.33 by seed, three seeds averaged 0.34-0.38
(``benchmarks/slpdb_night_student.py``).
"""

from __future__ import annotations

import logging
import numbers

import numpy as np
from numpy.typing import ArrayLike
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, process_routing
from sklearn.utils.validation import check_is_fitted

from sleepkd.distillation._estimators import _MAX_SEED

logger = logging.getLogger(__name__)


class SeedEnsemble(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Fit one stager several times with different seeds; average the probabilities.

    Works with every sleepkd stager (:class:`ECGNightStudent`,
    :class:`EEGNightTeacher`, :class:`DistilledECGStager`, the per-epoch models) and
    keeps their contract: the metadata the stager takes (``nights``, ``groups``,
    ``X_eeg``) is routed to every member, in ``fit`` and at prediction.

    Parameters
    ----------
    estimator : classifier
        The stager to fit ``n_members`` times; it must take ``random_state``.
    n_members : int, default=3
        Number of fits. Training time grows in proportion.
    random_state : int, RandomState or None, default=None
        Seeds of the members: an int ``s`` gives them ``s, s + 1, ...`` (so
        ``random_state=0`` reproduces the seeds 0, 1, 2 of the benchmarks); otherwise
        ``n_members`` seeds are drawn from it.

    Attributes
    ----------
    estimators_ : list of classifiers
        The fitted members.
    seeds_ : list of int
        The ``random_state`` each member was fitted with.
    classes_ : ndarray of shape (n_classes,)
        Class labels (the same for every member).
    n_features_in_ : int
        Columns of ``X`` seen in ``fit``.

    Examples
    --------
    >>> from sleepkd import ECGNightStudent, SeedEnsemble
    >>> student = ECGNightStudent(max_epochs=5, verbose=0)
    >>> ensemble = SeedEnsemble(student, n_members=3, random_state=0)
    >>> # ensemble.fit(X, y, nights=nights, groups=groups).predict(X_new, nights=...)
    """

    def __init__(self, estimator, n_members=3, random_state=None):
        self.estimator = estimator
        self.n_members = n_members
        self.random_state = random_state

    # ------------------------------------------------------------------ routing
    def get_metadata_routing(self):
        """The members receive what the stager requests (``nights``, ``X_eeg``, ...)."""
        mapping = MethodMapping()
        for caller, callee in (("fit", "fit"), ("predict", "predict_proba"),
                               ("predict_proba", "predict_proba"),
                               ("score", "predict_proba")):
            mapping.add(caller=caller, callee=callee)
        # add_self_request: score's own sample_weight can be requested too
        return MetadataRouter(owner=self.__class__.__name__).add_self_request(self).add(
            estimator=self.estimator, method_mapping=mapping)

    def _routed(self, method: str, params: dict, callee: str) -> dict:
        if get_config().get("enable_metadata_routing", False):
            return dict(getattr(process_routing(self, method, **params).estimator, callee))
        return dict(params)  # without routing, the metadata goes to the members as given

    # ------------------------------------------------------------------ fit
    def _member_seeds(self) -> list[int]:
        if (not isinstance(self.n_members, numbers.Integral)
                or isinstance(self.n_members, bool) or self.n_members < 1):
            raise ValueError(f"n_members must be a positive int, got {self.n_members!r}.")
        if isinstance(self.random_state, numbers.Integral) and not isinstance(
                self.random_state, bool):
            first = int(self.random_state)
            if first < 0 or first + self.n_members > 2**32:
                raise ValueError(f"random_state={first} gives the members seeds {first} to "
                                 f"{first + self.n_members - 1}; seeds must lie in "
                                 "[0, 2**32 - 1].")
            return [first + k for k in range(self.n_members)]
        rng = check_random_state(self.random_state)
        return [int(s) for s in rng.randint(_MAX_SEED - self.n_members, size=self.n_members)]

    def fit(self, X: ArrayLike, y: ArrayLike, **fit_params):
        """Fit ``n_members`` clones of the stager, member ``k`` with seed ``seeds_[k]``.

        Parameters
        ----------
        X : array-like
            As the stager's ``fit`` takes it.
        y : array-like of shape (n_samples,)
            Stage labels.
        **fit_params : dict
            Metadata of the stager's ``fit`` (``nights``, ``groups``, ``X_eeg``);
            routed when sklearn's metadata routing is enabled, passed on as given
            otherwise.

        Returns
        -------
        self
        """
        params = self._routed("fit", fit_params, "fit")
        return self._fit_members(lambda member: member.fit(X, y, **params))

    def fit_windows(self, train, valid=None):
        """Fit the members on datasets of night windows (e.g. from a night store).

        Each member is the stager's ``fit_windows(train, valid)`` with its own seed
        (initial weights, dropout); the training windows move on from one member to
        the next, as they do from one training epoch to the next, so a member depends
        on the members fitted before it (the whole ensemble is still reproducible).

        Parameters
        ----------
        train : torch Dataset
            Training windows, as :meth:`ECGNightStudent.fit_windows` takes them.
        valid : torch Dataset, optional
            Whole validation nights; ``None``: each member keeps its last epoch.

        Returns
        -------
        self
        """
        if not hasattr(self.estimator, "fit_windows"):
            raise ValueError(f"{type(self.estimator).__name__} has no fit_windows: only the "
                             "night-level models train from window datasets.")
        return self._fit_members(lambda member: member.fit_windows(train, valid))

    def _fit_members(self, fit_one):
        if "random_state" not in self.estimator.get_params(deep=False):
            raise ValueError(f"{type(self.estimator).__name__} has no random_state: the "
                             "members of a seed ensemble would all be the same fit.")
        seeds = self._member_seeds()
        members = []
        for k, seed in enumerate(seeds):
            logger.info("Seed ensemble: fitting member %d of %d (random_state=%d).", k + 1,
                        len(seeds), seed)
            members.append(fit_one(clone(self.estimator).set_params(random_state=seed)))
        classes = np.asarray(members[0].classes_)
        for member in members[1:]:
            if not np.array_equal(np.asarray(member.classes_), classes):
                raise RuntimeError("The members learned different classes: "
                                   f"{classes.tolist()} and "
                                   f"{np.asarray(member.classes_).tolist()}.")
        self.estimators_ = members
        self.seeds_ = seeds
        self.classes_ = classes
        self.n_features_in_ = members[0].n_features_in_
        if hasattr(members[0], "feature_names_in_"):
            self.feature_names_in_ = members[0].feature_names_in_
        return self

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X: ArrayLike, **params) -> np.ndarray:
        """Mean of the members' class probabilities.

        Parameters
        ----------
        X : array-like
            As the stager's ``predict_proba`` takes it.
        **params : dict
            Metadata of the stager's ``predict_proba`` (``nights`` for night models).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return self._mean_proba(X, "predict_proba", params)

    def _mean_proba(self, X, method: str, params: dict) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        params = self._routed(method, params, "predict_proba")
        return np.mean([np.asarray(m.predict_proba(X, **params), dtype=np.float64)
                        for m in self.estimators_], axis=0)

    def predict(self, X: ArrayLike, **params) -> np.ndarray:
        """The class of highest mean probability.

        Parameters
        ----------
        X : array-like
            As the stager's ``predict_proba`` takes it.
        **params : dict
            As for :meth:`predict_proba`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self._mean_proba(X, "predict", params)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
              **params) -> float:
        """Accuracy on the scored rows (unscored rows are left out, as the night models do).

        Parameters
        ----------
        X : array-like
            As the stager's ``predict_proba`` takes it.
        y : array-like of shape (n_samples,)
            True stages; rows equal to the stager's ``unscored_label`` are not scored.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the rows.
        **params : dict
            As for :meth:`predict_proba`.

        Returns
        -------
        score : float
        """
        from sklearn.metrics import accuracy_score

        from sleepkd.distillation._night_estimators import is_unscored

        proba = self._mean_proba(X, "score", params)
        y_pred = self.classes_[np.argmax(proba, axis=1)]
        y = np.asarray(y)
        first = self.estimators_[0]
        # a cascade's unscored label is its student's
        unscored = getattr(getattr(first, "student_", first), "unscored_label", None)
        scored = ~is_unscored(y, unscored)
        weight = None if sample_weight is None else np.asarray(sample_weight)[scored]
        return float(accuracy_score(y[scored], y_pred[scored], sample_weight=weight))

    @property
    def reads_nights(self) -> bool:
        """Whether the members stage whole nights (read by ``run_experiment``, which then
        passes ``nights`` at prediction)."""
        return bool(getattr(self.estimator, "reads_nights", False)) or bool(
            getattr(getattr(self.estimator, "student", None), "reads_nights", False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.input_tags = inner.input_tags
        # every member's random_state is set from the ensemble's own
        tags.non_deterministic = not isinstance(self.random_state, numbers.Integral)
        return tags
