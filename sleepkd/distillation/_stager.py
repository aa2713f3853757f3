"""DistilledECGStager: the three-stage distillation cascade as one sklearn classifier."""

from __future__ import annotations

import logging
import numbers
import warnings

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import cohen_kappa_score
from sklearn.utils.validation import check_is_fitted, validate_data

from sleepkd.distillation._estimators import (
    ECGStudent,
    EEGTeacher,
    _check_groups,
    _rows_unseen_by,
    _seed_from,
    seeded_torch,
)
from sleepkd.distillation._sequences import NightIndex, nights_or_runs
from sleepkd.distillation._splits import train_valid_split
from sleepkd.utils._validation import check_signal_array

logger = logging.getLogger(__name__)

#: Strategies of the paper (ablations included): which cascade stages run.
STRATEGIES = ("baseline", "sd+cl", "at+cl", "at+sd+cl", "fd+cl", "fd+sd+cl")
#: The strategies of the paper's ablation (feature distillation is ours).
PAPER_STRATEGIES = STRATEGIES[:4]


class DistilledECGStager(ClassifierMixin, BaseEstimator):
    """ECG sleep stager trained with knowledge distilled from an EEG teacher.

    ``fit(X_ecg, y, X_eeg=...)`` runs the cascade of Joshi et al. (2021, 2022):

    1. the teacher is fitted on the EEG epochs (or a fitted teacher wrapped in
       :class:`sklearn.frozen.FrozenEstimator` is reused as is) and frozen;
    2. strategies with ``"at"``: the student is pre-trained on attention transfer
       alone, matching the attention maps of the teacher's feature maps, with no
       labels; with ``"fd"`` (feature distillation, after FitNets, Romero et al.
       2015), the student's per-epoch embedding is matched to the teacher's through a
       learned linear projection instead, for networks that share no time structure
       (e.g. an EEG epoch encoder and a heart-rate network); the epoch with the
       lowest validation loss is kept;
    3. the student is trained on
       ``alpha * T**2 * KL(teacher || student) + (1 - alpha) * CE`` for strategies
       with ``"sd"`` (soft-label distillation), on class-weighted cross-entropy
       otherwise; the epoch with the best validation weighted F1 is kept.

    Only the ECG student runs in ``predict``: the EEG is needed for training only.

    Teacher and student may read single epochs (:class:`EEGTeacher`,
    :class:`ECGStudent`) or whole nights (:class:`EEGNightTeacher`,
    :class:`ECGNightStudent`, given ``nights`` in ``fit`` and ``predict``); a
    per-epoch teacher can teach a night student (soft labels per epoch, and attention
    transfer on the student's per-epoch encoder maps).

    Parameters
    ----------
    teacher : EEGTeacher, EEGNightTeacher, FrozenEstimator or None, default=None
        EEG model. ``None`` means ``EEGTeacher()`` (the paper's U-Time). A fitted
        teacher wrapped in ``FrozenEstimator`` is not refitted, so one teacher can
        serve many students (and survives ``clone``).
    student : ECGStudent, ECGNightStudent or None, default=None
        ECG model; ``None`` means ``ECGStudent()`` (a compact U-Time).
    strategy : {"at+sd+cl", "sd+cl", "at+cl", "fd+sd+cl", "fd+cl", "baseline"}, \
default="at+sd+cl"
        Which stages run: ``at`` attention-transfer pre-training, ``fd`` feature
        (embedding) distillation pre-training (night-level students), ``sd``
        soft-label distillation, ``cl`` classification loss; ``"baseline"`` trains the
        student on labels only and needs no EEG.
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
    fd_distance : {"l2", "l1", "cosine"}, default="l2"
        Distance between the projected student embedding and the teacher's in
        feature distillation.
    soft_loss : {"kl", "dkd"}, default="kl"
        The soft-label term of strategies with ``"sd"``: the paper's
        ``T**2 * KL(teacher || student)``, or decoupled knowledge distillation (Zhao et
        al. 2022: target-class and non-target-class parts of the KL weighted
        ``dkd_alpha`` and ``dkd_beta``), both weighted ``alpha`` against the
        cross-entropy.
    dkd_alpha, dkd_beta : float, default=1.0, 8.0
        Weights of the target-class and non-target-class KL (``soft_loss="dkd"``).
    n_teachers : int, default=1
        Teachers fitted with consecutive seeds; the soft labels are the log of their
        mean probabilities (a teacher ensemble); attention transfer and feature
        distillation use the first. A frozen teacher is a single teacher.
    distill_unscored : bool, default=False
        Night students with ``"sd"``: the soft labels teach on the unscored epochs too
        (rows labelled ``unscored_label``), while the cross-entropy stays on the scored
        ones. Whole unscored nights (paired EEG + ECG recordings nobody scored) then
        train the student through the teacher, which learns from the scored nights
        only; a subject without a scored epoch never serves as validation (a validation
        subject's unscored nights are not trained on). The distillation term is then
        averaged over every real epoch of a batch (the same loss when all are scored).
        Needs ``soft_loss="kl"``. ``strategy="baseline"`` ignores it (one set of
        parameters serves every row of an experiment); other strategies without
        ``"sd"`` raise.
    pretrain_epochs : int or None, default=None
        Epochs of attention-transfer pre-training; ``None``: the student's
        ``max_epochs``.
    validation_fraction : float or None, default=0.1
        Share of subjects (rows, without groups) held out for checkpoint selection in
        every stage; the same split serves teacher and student. With a frozen teacher
        fitted on some of these subjects (``groups`` passed to both fits), the
        validation subjects are those the teacher was not trained on (its own
        validation subjects when it was fitted on the same rows, as in
        :func:`~sleepkd.evaluation.run_experiment`), and this fraction is not used.
    random_state : int, RandomState or None
        Seeds every stage; the same value gives identical predictions.
    verbose : int or None, default=None
        ``None``: teacher and student keep their own ``verbose``; an int overrides
        both (0 silences training).

    Attributes
    ----------
    teacher_ : EEGTeacher or FrozenEstimator
        The fitted (frozen) teacher; ``None`` for the baseline strategy.
    teachers_ : list
        Every fitted teacher (``n_teachers`` of them; absent for the baseline).
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
    teacher_valid_kappa_ : float or None
        Cohen's kappa of the teacher on validation rows of subjects it was never
        trained on (for a frozen teacher: every row of those subjects); a kappa of
        0.2 or less warns. ``None`` when there are no such rows, or when it cannot be
        known which rows a frozen teacher saw (fitted without ``groups``).
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
    __metadata_request__fit = {"X_eeg": True, "groups": True, "nights": True}
    # night-level students stage each night as a whole: nights reach prediction too
    __metadata_request__predict = {"nights": True}
    __metadata_request__predict_proba = {"nights": True}
    __metadata_request__score = {"nights": True}

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
        fd_distance="l2",
        soft_loss="kl",
        dkd_alpha=1.0,
        dkd_beta=8.0,
        n_teachers=1,
        distill_unscored=False,
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
        self.fd_distance = fd_distance
        self.soft_loss = soft_loss
        self.dkd_alpha = dkd_alpha
        self.dkd_beta = dkd_beta
        self.n_teachers = n_teachers
        self.distill_unscored = distill_unscored
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
                   "at_normalize": ("sample", "batch"),
                   "fd_distance": ("l2", "l1", "cosine"), "soft_loss": ("kl", "dkd")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}."
                )
        for name in ("dkd_alpha", "dkd_beta"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
        if not isinstance(self.n_teachers, numbers.Integral) or self.n_teachers < 1:
            raise ValueError(f"n_teachers must be a positive int, got {self.n_teachers!r}.")
        if self.n_teachers > 1 and isinstance(self.teacher, FrozenEstimator):
            raise ValueError("n_teachers > 1 fits several teachers, but the teacher is a "
                             "frozen, already fitted one; pass an unfitted teacher.")
        if not isinstance(self.distill_unscored, (bool, np.bool_)):
            raise ValueError(
                f"distill_unscored must be True or False, got {self.distill_unscored!r}.")
        if self.distill_unscored and self.soft_loss != "kl":
            raise ValueError(
                "distill_unscored=True needs soft_loss='kl': decoupled distillation splits "
                "the KL at the true class, which unscored epochs do not have.")
        if self.pretrain_epochs is not None and (
            not isinstance(self.pretrain_epochs, numbers.Integral) or self.pretrain_epochs < 1
        ):
            raise ValueError(
                f"pretrain_epochs must be None or a positive int, got {self.pretrain_epochs!r}."
            )

    # ------------------------------------------------------------------ fit
    def fit(self, X: ArrayLike, y: ArrayLike, X_eeg: ArrayLike | None = None,
            groups: ArrayLike | None = None, nights: ArrayLike | None = None):
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
        nights : array-like of shape (n_epochs,), optional
            Night (recording) id of each row, read by night-level teachers and
            students (:class:`EEGNightTeacher`, :class:`ECGNightStudent`); rows of a
            night in time order. ``None``: each run of consecutive rows of one subject
            (of ``groups``) is a night, or all rows without groups. Routed by
            metadata routing (requested by default); per-epoch models ignore it.

        Returns
        -------
        self
        """
        self._check_params()
        X = validate_data(self, X, dtype=np.float32, allow_nd=True)
        if X.ndim > 3:
            raise ValueError(f"X must be 2-D or 3-D, got an array of shape {X.shape}.")
        n = len(X)
        from sleepkd.distillation._ensemble import SeedEnsemble

        for role, part in (("student", self.student),
                           ("teacher", self._teacher_estimator())):
            if isinstance(part, SeedEnsemble):
                raise ValueError(
                    f"The {role} is a SeedEnsemble; the cascade trains one {role}. Wrap "
                    "the whole stager instead (SeedEnsemble(DistilledECGStager(...))), or "
                    "use n_teachers for a teacher ensemble.")
        student_ = clone(self.student if self.student is not None else ECGStudent())
        self._apply_verbose(student_)
        student_nights = _reads_nights(student_)
        teacher_nights = _reads_nights(self._teacher_estimator())
        # a night student keeps unscored epochs in place (label -1: input, no loss)
        y_enc = (student_._encode_night_y(y, n) if student_nights
                 else student_._encode_y(y, n))
        self.classes_ = student_.classes_
        groups = _check_groups(groups, n)
        index = NightIndex(nights_or_runs(nights, groups), n)
        index.check_nested_in(groups)

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
        stages = set(strategy.split("+"))
        if stages & {"at", "fd"} and teacher_nights and not student_nights:
            raise ValueError(
                f"strategy={strategy!r} transfers features from a night-level teacher, "
                "which needs a night-level student (ECGNightStudent); use strategy="
                "'sd+cl' for a per-epoch student.")
        if self.distill_unscored and strategy != "baseline":
            if "sd" not in stages:
                raise ValueError(
                    f"distill_unscored=True teaches unscored epochs through soft labels, "
                    f"but strategy={strategy!r} has no 'sd' stage.")
            if not student_nights:
                raise ValueError(
                    "distill_unscored=True needs a night-level student (ECGNightStudent), "
                    "which keeps unscored epochs in place; a per-epoch student reads "
                    "scored epochs only.")

        seed = _seed_from(self.random_state)
        split_seed, teacher_seed, student_seed = np.random.RandomState(seed).randint(
            2**31 - 1, size=3)
        # night models never see a night cut by the validation split
        split_groups = (groups if groups is not None or not (student_nights or teacher_nights)
                        else index.codes)
        train_idx, valid_idx = train_valid_split(
            y_enc, split_groups, self.validation_fraction, int(split_seed))
        # a frozen teacher must be judged, and the student selected, on the subjects
        # the teacher never saw, not on a split drawn here from another seed
        teacher_unseen = None
        if strategy != "baseline" and isinstance(self.teacher, FrozenEstimator):
            teacher_unseen = _rows_unseen_by(self.teacher.estimator, groups)
            if teacher_unseen is not None and valid_idx is not None:
                # subjects without a scored epoch cannot select a checkpoint
                labelled = np.isin(split_groups, np.unique(split_groups[y_enc >= 0]))
                unseen = teacher_unseen & labelled
                # ... but only while training keeps a scored epoch to learn from
                if unseen.any() and ((y_enc >= 0) & ~unseen).any():
                    train_idx = np.flatnonzero(~unseen)
                    valid_idx = np.flatnonzero(unseen)
                elif not unseen.any() and teacher_unseen.any():
                    logger.warning(
                        "The subjects the frozen teacher never saw have no scored epoch: "
                        "the validation subjects are drawn from all the others, which the "
                        "teacher may have been trained on.")
                # else every scored subject is unseen: the split drawn above validates on
                # unseen subjects already, and training keeps scored ones
        student_._check_params()
        X3 = student_._validate_X(X, reset=True)
        self.history_ = {}
        module = student_._build_module(X3.shape[1], X3.shape[2], int(student_seed))
        if "at" in stages:
            _check_supports_attention(module, "student")  # before the teacher trains
        if "fd" in stages:
            _check_has_embedding(module, "student")

        self.teacher_ = None
        self.teacher_valid_kappa_ = None
        teacher_est = teacher_logits = None
        if strategy != "baseline":
            # an ensemble: n_teachers fits with consecutive seeds; soft labels are the
            # log of their mean probabilities, features come from the first
            fitted = [self._fit_teacher(X_eeg, y_enc, train_idx, valid_idx,
                                        int(teacher_seed) + k, groups, teacher_unseen, index)
                      for k in range(self.n_teachers)]
            self.teacher_, teacher_est, teacher_logits, diagnostic_idx = fitted[0]
            self.teachers_ = [f[0] for f in fitted]
            if len(fitted) > 1:
                from sleepkd.distillation._losses import average_teacher_logits

                teacher_logits = np.asarray(average_teacher_logits(
                    [f[2] for f in fitted], mode="probs"), dtype=np.float32)
            if diagnostic_idx is not None:
                self._warn_if_teacher_weak(teacher_logits, y_enc, diagnostic_idx)
            X_eeg3 = teacher_est._validate_X(X_eeg, reset=False)

        night_kwargs = {"index": index} if student_nights else {}
        if stages & {"at", "fd"}:
            if student_nights:
                module = self._pretrain_night(student_, module, teacher_est, X3, X_eeg3,
                                              y_enc, train_idx, valid_idx,
                                              int(student_seed), index, stages)
            else:
                module = self._pretrain_attention(
                    student_, module, teacher_est, X3, X_eeg3, y_enc, train_idx,
                    valid_idx, int(student_seed))

        from sleepkd.distillation._losses import DecoupledDistillationLoss, DistillationLoss

        class_weight = student_._class_weights(y_enc)
        X_extra = None
        if "sd" in stages:
            logger.info("Stage 3: student with soft-label distillation (%s, alpha=%s, T=%s).",
                        self.soft_loss, self.alpha, self.temperature)
            X_extra = {"teacher_logits": teacher_logits}
            if self.soft_loss == "dkd":
                criterion = DecoupledDistillationLoss(
                    alpha_tckd=self.dkd_alpha, beta_nckd=self.dkd_beta,
                    temperature=self.temperature, weight=self.alpha,
                    class_weight=class_weight)
            else:
                criterion = DistillationLoss(alpha=self.alpha, temperature=self.temperature,
                                             class_weight=class_weight,
                                             reduction=self.kl_reduction,
                                             soft_on_unscored=bool(self.distill_unscored))
        else:
            logger.info("Stage 3: student with the classification loss.")
            criterion = None
        student_._record_split(groups, train_idx, valid_idx)
        student_._fit_rows(X3, y_enc, train_idx, valid_idx, int(student_seed),
                           module=module, criterion=criterion, X_extra=X_extra,
                           **night_kwargs)
        self.history_["student"] = student_.history_
        self.student_ = student_
        return self

    def _teacher_estimator(self):
        """The teacher estimator (unwrapped from FrozenEstimator, default if None)."""
        if isinstance(self.teacher, FrozenEstimator):
            return self.teacher.estimator
        return self.teacher if self.teacher is not None else EEGTeacher()

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

    def _fit_teacher(self, X_eeg, y_enc, train_idx, valid_idx, seed, groups, teacher_unseen,
                     index):
        """Stage 1: fit (or reuse) the teacher and freeze it; return it, its estimator
        its logits of every row and the rows it may be judged on (or None)."""
        diagnostic_idx = valid_idx
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
            diagnostic_idx = None
            if teacher_unseen is None:
                logger.warning(
                    "The frozen teacher or this fit has no groups (subject ids): which "
                    "rows the teacher was trained on is unknown, so its validation "
                    "kappa is not computed. Pass groups to both fits.")
            elif not teacher_unseen.any():
                logger.warning(
                    "The frozen teacher was trained on every subject of this fit: its "
                    "kappa on unseen subjects cannot be computed here.")
            else:
                diagnostic_idx = np.flatnonzero(teacher_unseen)
        else:
            logger.info("Stage 1: fitting the EEG teacher.")
            teacher_est = clone(self.teacher if self.teacher is not None else EEGTeacher())
            self._apply_verbose(teacher_est)
            teacher_est._check_params()
            X_eeg3 = teacher_est._validate_X(X_eeg, reset=True)
            teacher_est.classes_ = self.classes_
            if _reads_nights(teacher_est):
                # a night without one scored epoch gives the teacher no loss: leave it out
                scored_night = np.bincount(index.codes[y_enc >= 0],
                                           minlength=index.n_nights) > 0
                teacher_train = train_idx[scored_night[index.codes[train_idx]]]
                teacher_est._record_split(groups, teacher_train, valid_idx)
                teacher_est._fit_rows(X_eeg3, y_enc, teacher_train, valid_idx, seed,
                                      index=index)
            else:  # a per-epoch teacher learns from the scored rows only
                scored = y_enc >= 0
                teacher_est._record_split(groups, train_idx[scored[train_idx]], valid_idx)
                teacher_est._fit_rows(X_eeg3, y_enc, train_idx[scored[train_idx]],
                                      None if valid_idx is None
                                      else valid_idx[scored[valid_idx]], seed)
            self.history_["teacher"] = teacher_est.history_
            teacher_ = teacher_est
        module = teacher_est.module_
        module.eval()
        for param in module.parameters():
            param.requires_grad_(False)
        # each night (or epoch) is staged on its own, so the logits of the validation
        # rows are those the teacher gives them alone
        logits = teacher_est._logits(teacher_est._validate_X(X_eeg, reset=False),
                                     nights=index)
        return teacher_, teacher_est, logits, diagnostic_idx

    def _warn_if_teacher_weak(self, teacher_logits, y_enc, valid_idx) -> None:
        valid_idx = valid_idx[y_enc[valid_idx] >= 0]  # scored rows only
        if len(valid_idx) == 0:
            return
        pred = teacher_logits[valid_idx].argmax(axis=1)
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

    def _pretrain_night(self, student_, module, teacher_est, X, X_eeg, y_enc, train_idx,
                        valid_idx, seed, index, stages):
        """Stage 2 for a night-level student: attention transfer on per-epoch maps
        (``"at"``) or its epoch embeddings matched to the teacher's (``"fd"``)."""
        import torch

        from sleepkd.distillation._losses import AttentionTransferLoss, feature_group_weights
        from sleepkd.distillation._nets import history_records, layer_pairs_for
        from sleepkd.distillation._night_nets import NightTransferNet, teacher_features

        teacher_module = teacher_est.module_
        if "at" in stages:
            _check_supports_attention(teacher_module, "teacher")
            pairs = layer_pairs_for(teacher_module.feature_names,
                                    [f for f in module.feature_names if f != "embedding"],
                                    self.at_layers)
            self.at_layers_ = pairs
            weights = feature_group_weights([t for t, _ in pairs],
                                            getattr(teacher_module, "feature_groups", {}))
            criterion = AttentionTransferLoss(distance=self.at_distance,
                                              normalize=self.at_normalize, weights=weights)
            kind, name = "attention", "attention_transfer"
            logger.info("Stage 2: attention-transfer pre-training on %d feature maps.",
                        len(pairs))
        else:
            from sleepkd.distillation._losses import FeatureDistillationLoss

            _check_has_embedding(teacher_module, "teacher")
            pairs = [("embedding", "embedding")]
            rows = index.rows[0][: min(len(index.rows[0]), 4)]
            mask = torch.ones(1, len(rows), dtype=torch.bool)
            with torch.no_grad():
                module.eval()
                student_dim = module(torch.as_tensor(X[rows][None]), mask=mask,
                                     return_features=True)[1]["embedding"].shape[-1]
                module.train()
                teacher_dim = teacher_features(teacher_module, torch.as_tensor(
                    X_eeg[rows][None]), mask)["embedding"].shape[-1]
            with seeded_torch(seed):  # the projection's initial weights
                criterion = FeatureDistillationLoss(student_dim, teacher_dim,
                                                    distance=self.fd_distance)
            kind, name = "embedding", "feature_distillation"
            logger.info("Stage 2: feature distillation of the %d-d epoch embedding onto "
                        "the teacher's %d-d one.", student_dim, teacher_dim)
        train, valid = student_._datasets({"x": X, "x_teacher": X_eeg}, y_enc, index,
                                          train_idx, valid_idx, seed)
        net = student_._fit_net(
            module, train, None, valid, criterion=criterion, seed=seed,
            net_class=NightTransferNet,
            net_kwargs={"teacher_module": teacher_module, "layer_pairs": pairs, "kind": kind},
            max_epochs=self.pretrain_epochs, monitor="valid_loss", lower_is_better=True)
        self.history_[name] = history_records(net)
        return net.module_

    # ------------------------------------------------------------------ predict
    def _student_kwargs(self, nights) -> dict:
        return {"nights": nights} if _reads_nights(self.student_) else {}

    def predict_proba(self, X: ArrayLike, nights: ArrayLike | None = None) -> np.ndarray:
        """Class probabilities from the ECG student (the EEG is not needed).

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            ECG rows shaped like those seen in ``fit``.
        nights : array-like of shape (n_epochs,), optional
            Night id of each row, for a night-level student (``None``: the rows are
            one night); ignored by per-epoch students.

        Returns
        -------
        proba : ndarray of shape (n_epochs, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self, "student_")
        X = validate_data(self, X, reset=False, dtype=np.float32, allow_nd=True)
        return self.student_.predict_proba(X, **self._student_kwargs(nights))

    def predict(self, X: ArrayLike, nights: ArrayLike | None = None) -> np.ndarray:
        """Predicted stage of each ECG epoch (the EEG is not needed).

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            ECG rows shaped like those seen in ``fit``.
        nights : array-like of shape (n_epochs,), optional
            Night id of each row, for a night-level student.

        Returns
        -------
        y_pred : ndarray of shape (n_epochs,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X, nights=nights)  # checks fitted before classes_
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: ArrayLike, y: ArrayLike, nights: ArrayLike | None = None,
              sample_weight: ArrayLike | None = None) -> float:
        """Accuracy of the ECG student (on scored rows, for a night-level student).

        Parameters
        ----------
        X : array-like of shape (n_epochs, ...)
        y : array-like of shape (n_epochs,)
        nights : array-like of shape (n_epochs,), optional
        sample_weight : array-like of shape (n_epochs,), optional

        Returns
        -------
        score : float
        """
        check_is_fitted(self, "student_")
        if _reads_nights(self.student_):
            return self.student_.score(X, y, nights=nights, sample_weight=sample_weight)
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags


def _reads_nights(estimator) -> bool:
    return bool(getattr(estimator, "reads_nights", False))


def _check_has_embedding(network, role: str) -> None:
    """Feature distillation matches per-epoch embeddings."""
    if "embedding" not in tuple(getattr(network, "feature_names", ())):
        raise ValueError(
            f"Feature distillation ('fd') matches per-epoch embeddings, but the {role} "
            f"network {type(network).__name__} returns none (its features: "
            f"{list(getattr(network, 'feature_names', ()))}); use a night network "
            "('heart_rate_tcn', 'feature_sequence', 'epoch_sequence') or strategy 'sd+cl'."
        )


def _check_supports_attention(network, role: str) -> None:
    """Attention transfer needs feature maps with a time axis (not an MLP's)."""
    if not getattr(network, "supports_attention", False):
        raise ValueError(
            f"Attention transfer needs convolutional feature maps with a time axis, but "
            f"the {role} network {type(network).__name__} has none; use strategy='sd+cl' "
            "for feature-row (MLP) models."
        )
