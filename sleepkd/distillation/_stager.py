"""DistilledECGStager: the three-stage distillation cascade as one sklearn classifier."""

from __future__ import annotations

import logging
import numbers
import warnings

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import cohen_kappa_score
from sklearn.utils.validation import check_is_fitted, validate_data

from sleepkd.distillation._estimators import (
    ECGStudent,
    EEGTeacher,
    _check_groups,
    _seed_from,
)
from sleepkd.distillation._splits import train_valid_split
from sleepkd.utils._validation import check_signal_array

logger = logging.getLogger(__name__)

#: Strategies of the paper (ablations included): which cascade stages run.
STRATEGIES = ("baseline", "sd+cl", "at+cl", "at+sd+cl")


class DistilledECGStager(ClassifierMixin, BaseEstimator):
    """ECG sleep stager trained with knowledge distilled from an EEG teacher.

    ``fit(X_ecg, y, X_eeg=...)`` runs the cascade of Joshi et al. (2021, 2022):

    1. the teacher is fitted on the EEG epochs (or a fitted teacher wrapped in
       :class:`sklearn.frozen.FrozenEstimator` is reused as is) and frozen;
    2. strategies with ``"at"``: the student is pre-trained on attention transfer
       alone, matching the attention maps of the teacher's feature maps, with no
       labels; the epoch with the lowest validation AT loss is kept;
    3. the student is trained on
       ``alpha * T**2 * KL(teacher || student) + (1 - alpha) * CE`` for strategies
       with ``"sd"`` (soft-label distillation), on class-weighted cross-entropy
       otherwise; the epoch with the best validation weighted F1 is kept.

    Only the ECG student runs in ``predict``: the EEG is needed for training only.

    Parameters
    ----------
    teacher : EEGTeacher, FrozenEstimator or None, default=None
        EEG model. ``None`` means ``EEGTeacher()`` (the paper's U-Time). A fitted
        teacher wrapped in ``FrozenEstimator`` is not refitted, so one teacher can
        serve many students (and survives ``clone``).
    student : ECGStudent or None, default=None
        ECG model; ``None`` means ``ECGStudent()`` (a compact U-Time).
    strategy : {"at+sd+cl", "sd+cl", "at+cl", "baseline"}, default="at+sd+cl"
        Which stages run: ``at`` attention-transfer pre-training, ``sd`` soft-label
        distillation, ``cl`` classification loss; ``"baseline"`` trains the student on
        labels only and needs no EEG.
    alpha : float in [0, 1], default=0.5
        Weight of the distillation term in stage 3.
    temperature : float > 0, default=1.0
        Softmax temperature ``T`` of the distillation term (scaled by ``T**2``).
    kl_reduction : {"batchmean", "mean"}, default="batchmean"
        ``"batchmean"``: the KL divergence per sample (the textbook scale);
        ``"mean"``: PyTorch's mean over samples and classes, as in the paper's code
        (``1 / n_classes`` of the former).
    at_distance : {"l1", "l2"}, default="l1"
        Distance between attention maps (the paper's code uses L1).
    at_normalize : {"sample", "batch"}, default="sample"
        Normalisation of attention maps: per sample over time (Zagoruyko &
        Komodakis) or across the batch axis (the paper's code).
    at_layers : "all" or list, default="all"
        Feature maps matched in attention transfer: ``"all"`` for every map both
        networks name alike, or a list of names or ``(teacher, student)`` pairs. As in
        the paper, the loss is the mean over layer groups (encoder, bottleneck,
        decoder, decoder end, dense head) of the mean within each group.
    pretrain_epochs : int or None, default=None
        Epochs of attention-transfer pre-training; ``None``: the student's
        ``max_epochs``.
    validation_fraction : float or None, default=0.1
        Share of subjects (rows, without groups) held out for checkpoint selection in
        every stage; the same split serves teacher and student.
    random_state : int, RandomState or None
        Seeds every stage; the same value gives identical predictions.
    verbose : int or None, default=None
        ``None``: teacher and student keep their own ``verbose``; an int overrides
        both (0 silences training).

    Attributes
    ----------
    teacher_ : EEGTeacher or FrozenEstimator
        The fitted (frozen) teacher; ``None`` for the baseline strategy.
    student_ : ECGStudent
        The fitted student, used by ``predict``.
    classes_ : ndarray
        Stage labels.
    strategy_ : str
        The strategy that ran (``"baseline"`` when no EEG was given).
    history_ : dict
        Per-stage training history: ``{"teacher": [...], "attention_transfer": [...],
        "student": [...]}`` (lists of per-epoch dicts).
    at_layers_ : list of (str, str)
        Matched feature maps (strategies with ``"at"``).
    n_features_in_ : int

    Examples
    --------
    >>> from sleepkd import DistilledECGStager, EEGTeacher, ECGStudent
    >>> from sleepkd.datasets import make_synthetic_psg
    >>> data = make_synthetic_psg(n_subjects=4, hours=1.0, random_state=0)
    >>> stager = DistilledECGStager(
    ...     teacher=EEGTeacher(module="compact", max_epochs=2, verbose=0),
    ...     student=ECGStudent(module="compact", max_epochs=2, verbose=0),
    ...     random_state=0,
    ... )
    >>> stager.fit(data.X_ecg, data.y, X_eeg=data.X_eeg, groups=data.groups)  # doctest: +SKIP
    """

    # X_eeg and groups are requested by default under sklearn's metadata routing
    __metadata_request__fit = {"X_eeg": True, "groups": True}

    def __init__(
        self,
        teacher=None,
        student=None,
        strategy="at+sd+cl",
        alpha=0.5,
        temperature=1.0,
        kl_reduction="batchmean",
        at_distance="l1",
        at_normalize="sample",
        at_layers="all",
        pretrain_epochs=None,
        validation_fraction=0.1,
        random_state=None,
        verbose=None,
    ):
        self.teacher = teacher
        self.student = student
        self.strategy = strategy
        self.alpha = alpha
        self.temperature = temperature
        self.kl_reduction = kl_reduction
        self.at_distance = at_distance
        self.at_normalize = at_normalize
        self.at_layers = at_layers
        self.pretrain_epochs = pretrain_epochs
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ params
    def set_params(self, **params):
        """Set parameters; ``teacher__x`` / ``student__x`` work with the defaults too.

        When ``teacher`` or ``student`` is ``None`` (the default), a nested parameter
        first puts the default estimator in its place, so
        ``DistilledECGStager().set_params(student__max_epochs=5)`` works.
        """
        for name, default in (("teacher", EEGTeacher), ("student", ECGStudent)):
            nested = any(key.startswith(f"{name}__") for key in params)
            if nested and params.get(name, getattr(self, name)) is None:
                params[name] = default()
        return super().set_params(**params)

    def _check_params(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"Unknown strategy {self.strategy!r}; expected one of {list(STRATEGIES)}."
            )
        if not (isinstance(self.alpha, numbers.Real) and 0 <= self.alpha <= 1):
            raise ValueError(f"alpha must be a number in [0, 1], got {self.alpha!r}.")
        if not (isinstance(self.temperature, numbers.Real) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}.")
        choices = {"kl_reduction": ("batchmean", "mean"), "at_distance": ("l1", "l2"),
                   "at_normalize": ("sample", "batch")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}."
                )
        if self.pretrain_epochs is not None and (
            not isinstance(self.pretrain_epochs, numbers.Integral) or self.pretrain_epochs < 1
        ):
            raise ValueError(
                f"pretrain_epochs must be None or a positive int, got {self.pretrain_epochs!r}."
            )

    # ------------------------------------------------------------------ fit
    def fit(self, X: ArrayLike, y: ArrayLike, X_eeg: ArrayLike | None = None,
            groups: ArrayLike | None = None):
        """Run the distillation cascade.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            ECG input of the student (raw epochs, or the output of sleepkd's
            transformers, e.g. heart rate with context).
        y : array-like of shape (n_epochs,)
            Stage labels.
        X_eeg : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            EEG epochs of the same rows, for the teacher. Required by the distilling
            strategies (without it the baseline runs, with a warning). Routed by
            sklearn's metadata routing (requested by default).
        groups : array-like of shape (n_epochs,), optional
            Subject ids: the validation split holds out whole subjects.

        Returns
        -------
        self
        """
        self._check_params()
        X = validate_data(self, X, dtype=np.float32, allow_nd=True)
        if X.ndim > 3:
            raise ValueError(f"X must be 2-D or 3-D, got an array of shape {X.shape}.")
        n = len(X)
        student_ = clone(self.student if self.student is not None else ECGStudent())
        self._apply_verbose(student_)
        y_enc = student_._encode_y(y, n)
        self.classes_ = student_.classes_
        groups = _check_groups(groups, n)

        strategy = self.strategy
        if X_eeg is None and strategy != "baseline":
            warnings.warn(
                f"strategy={strategy!r} needs X_eeg, which was not given: training the "
                "ECG-only baseline instead. Pass X_eeg to fit (with metadata routing "
                "enabled in a Pipeline or cross-validation).",
                UserWarning,
                stacklevel=2,
            )
            strategy = "baseline"
        if X_eeg is not None:
            X_eeg = self._check_eeg(X_eeg, n)
        self.strategy_ = strategy

        seed = _seed_from(self.random_state)
        split_seed, teacher_seed, student_seed = np.random.RandomState(seed).randint(
            2**31 - 1, size=3)
        train_idx, valid_idx = train_valid_split(
            y_enc, groups, self.validation_fraction, int(split_seed))
        student_._check_params()
        X3 = student_._validate_X(X, reset=True)
        self.history_ = {}
        module = student_._build_module(X3.shape[1], X3.shape[2], int(student_seed))
        if "at" in strategy.split("+"):
            _check_supports_attention(module, "student")  # before the teacher trains

        self.teacher_ = None
        teacher_est = None
        if strategy != "baseline":
            self.teacher_, teacher_est = self._fit_teacher(
                X_eeg, y_enc, train_idx, valid_idx, int(teacher_seed))
            X_eeg3 = teacher_est._validate_X(X_eeg, reset=False)

        if "at" in strategy.split("+"):
            module = self._pretrain_attention(
                student_, module, teacher_est, X3, X_eeg3, y_enc, train_idx, valid_idx,
                int(student_seed))

        from sleepkd.distillation._losses import DistillationLoss

        class_weight = student_._class_weights(y_enc)
        X_extra = None
        if "sd" in strategy.split("+"):
            logger.info("Stage 3: student with soft-label distillation (alpha=%s, T=%s).",
                        self.alpha, self.temperature)
            X_extra = {"teacher_logits": teacher_est._logits(X_eeg3)}
            criterion = DistillationLoss(alpha=self.alpha, temperature=self.temperature,
                                         class_weight=class_weight,
                                         reduction=self.kl_reduction)
        else:
            logger.info("Stage 3: student with the classification loss.")
            criterion = None
        student_._fit_rows(X3, y_enc, train_idx, valid_idx, int(student_seed),
                           module=module, criterion=criterion, X_extra=X_extra)
        self.history_["student"] = student_.history_
        self.student_ = student_
        return self

    def _apply_verbose(self, estimator) -> None:
        if self.verbose is not None:
            estimator.set_params(verbose=self.verbose)

    def _check_eeg(self, X_eeg, n: int) -> np.ndarray:
        X_eeg = check_signal_array(X_eeg, ndim=(2, 3), name="X_eeg")
        if len(X_eeg) != n:
            raise ValueError(
                f"X_eeg has {len(X_eeg)} rows but X has {n}: each row of X_eeg must be "
                "the EEG of the same epoch as the row of X. (In cross-validation, an "
                "X_eeg whose length differs from X is not split by sklearn but passed "
                "whole.)"
            )
        return X_eeg

    def _fit_teacher(self, X_eeg, y_enc, train_idx, valid_idx, seed):
        """Stage 1: fit (or reuse) the teacher and freeze it."""
        from sklearn.frozen import FrozenEstimator

        if isinstance(self.teacher, FrozenEstimator):
            teacher_est = self.teacher.estimator
            check_is_fitted(teacher_est)
            if not np.array_equal(np.asarray(teacher_est.classes_), self.classes_):
                raise ValueError(
                    f"The frozen teacher was fitted on classes "
                    f"{np.asarray(teacher_est.classes_).tolist()}, but y has classes "
                    f"{self.classes_.tolist()}; fit the teacher on the same label scheme."
                )
            logger.info("Stage 1: reusing the frozen, already fitted teacher.")
            teacher_ = self.teacher
        else:
            logger.info("Stage 1: fitting the EEG teacher.")
            teacher_est = clone(self.teacher if self.teacher is not None else EEGTeacher())
            self._apply_verbose(teacher_est)
            teacher_est._check_params()
            X_eeg3 = teacher_est._validate_X(X_eeg, reset=True)
            teacher_est.classes_ = self.classes_
            teacher_est._fit_rows(X_eeg3, y_enc, train_idx, valid_idx, seed)
            self.history_["teacher"] = teacher_est.history_
            teacher_ = teacher_est
        module = teacher_est.module_
        module.eval()
        for param in module.parameters():
            param.requires_grad_(False)
        if valid_idx is not None:
            self._warn_if_teacher_weak(teacher_est, X_eeg, y_enc, valid_idx)
        return teacher_, teacher_est

    def _warn_if_teacher_weak(self, teacher_est, X_eeg, y_enc, valid_idx) -> None:
        X_valid = teacher_est._validate_X(X_eeg[valid_idx], reset=False)
        pred = teacher_est._logits(X_valid).argmax(axis=1)
        kappa = cohen_kappa_score(y_enc[valid_idx], pred)
        self.teacher_valid_kappa_ = float(kappa)
        if not kappa > 0.2:
            warnings.warn(
                f"The EEG teacher reaches a Cohen's kappa of {kappa:.2f} on the validation "
                "subjects, barely better than chance: distilling from it may hurt the "
                "student. Train the teacher longer or check X_eeg.",
                UserWarning,
                stacklevel=3,
            )

    def _pretrain_attention(self, student_, module, teacher_est, X, X_eeg, y_enc,
                            train_idx, valid_idx, seed):
        """Stage 2: attention-transfer pre-training of the student module."""
        from sleepkd.distillation._losses import AttentionTransferLoss, feature_group_weights
        from sleepkd.distillation._nets import (
            AttentionTransferNet,
            history_records,
            layer_pairs_for,
        )

        teacher_module = teacher_est.module_
        _check_supports_attention(teacher_module, "teacher")
        pairs = layer_pairs_for(teacher_module.feature_names, module.feature_names,
                                self.at_layers)
        self.at_layers_ = pairs
        logger.info("Stage 2: attention-transfer pre-training on %d feature maps.",
                    len(pairs))
        # the paper's loss: mean over layer groups (encoder, bottleneck, decoder, ...)
        # of the mean within each group
        groups = getattr(teacher_module, "feature_groups", {})
        weights = feature_group_weights([t for t, _ in pairs], groups)
        criterion = AttentionTransferLoss(distance=self.at_distance,
                                          normalize=self.at_normalize, weights=weights)
        net = student_._train(
            module, {"x": X, "x_teacher": X_eeg}, y_enc, train_idx, valid_idx,
            criterion=criterion, seed=seed, net_class=AttentionTransferNet,
            net_kwargs={"teacher_module": teacher_module, "layer_pairs": pairs},
            max_epochs=self.pretrain_epochs, monitor="valid_loss", lower_is_better=True)
        self.history_["attention_transfer"] = history_records(net)
        return net.module_

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities from the ECG student (the EEG is not needed).

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            ECG rows shaped like those seen in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_epochs, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self, "student_")
        X = validate_data(self, X, reset=False, dtype=np.float32, allow_nd=True)
        return self.student_.predict_proba(X)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted stage of each ECG epoch (the EEG is not needed).

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            ECG rows shaped like those seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_epochs,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)  # checks fitted before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags


def _check_supports_attention(network, role: str) -> None:
    """Attention transfer needs feature maps with a time axis (not an MLP's)."""
    if not getattr(network, "supports_attention", False):
        raise ValueError(
            f"Attention transfer needs convolutional feature maps with a time axis, but "
            f"the {role} network {type(network).__name__} has none; use strategy='sd+cl' "
            "for feature-row (MLP) models."
        )
