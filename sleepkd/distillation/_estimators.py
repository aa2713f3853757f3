"""scikit-learn classifiers over skorch nets: the EEG teacher and the ECG student."""

from __future__ import annotations

import contextlib
import logging
import numbers
import threading

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from sleepkd.distillation._splits import train_valid_split

logger = logging.getLogger(__name__)

_MAX_SEED = 2**31 - 1


def _seed_from(random_state) -> int:
    """An int seed for torch from an sklearn-style ``random_state``."""
    return int(check_random_state(random_state).randint(_MAX_SEED))


# torch draws initial weights, dropout masks and augmentation from one process-wide
# generator: fits running in threads of one process (a Dask worker with several
# threads, joblib's threading backend) would interleave their draws and lose
# reproducibility. Seeded torch work holds this lock; fits in separate processes
# still run in parallel.
_TORCH_RNG_LOCK = threading.RLock()


@contextlib.contextmanager
def seeded_torch(seed: int):
    """Run a block on torch's global generator seeded with ``seed``, alone in this
    process, and restore the generator afterwards."""
    import torch

    with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def as_3d(X: np.ndarray) -> np.ndarray:
    """``(n, n_times)`` -> ``(n, 1, n_times)``; 3-D arrays pass through."""
    return X[:, None, :] if X.ndim == 2 else X


class _TorchStager(ClassifierMixin, BaseEstimator):
    """Shared implementation of :class:`EEGTeacher` and :class:`ECGStudent`."""

    # groups (subject ids) reach the validation split when routed
    __metadata_request__fit = {"groups": True}

    def __init__(
        self,
        module="utime",
        module_params=None,
        *,
        max_epochs=50,
        lr=1e-3,
        batch_size=64,
        weight_decay=0.0,
        class_weight="balanced",
        validation_fraction=0.1,
        patience=10,
        sfreq=None,
        device="cpu",
        accelerator=None,
        random_state=None,
        verbose=1,
    ):
        self.module = module
        self.module_params = module_params
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.sfreq = sfreq
        self.device = device
        self.accelerator = accelerator
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        X = validate_data(
            self, X, reset=reset, dtype=np.float32, allow_nd=True, ensure_min_features=1
        )
        if X.ndim > 3:
            raise ValueError(
                f"X must be (n_epochs, n_times) or (n_epochs, n_channels, n_times), got "
                f"an array of shape {X.shape}."
            )
        if reset:
            self.input_shape_ = X.shape[1:]
        elif X.shape[1:] != self.input_shape_:
            raise ValueError(
                f"X has rows of shape {X.shape[1:]}, but {type(self).__name__} was "
                f"fitted on rows of shape {self.input_shape_}."
            )
        return as_3d(np.ascontiguousarray(X))

    def _encode_y(self, y, n_rows: int) -> np.ndarray:
        y = column_or_1d(y, warn=True)
        if len(y) != n_rows:
            raise ValueError(f"X has {n_rows} rows but y has {len(y)} labels.")
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        _check_stage_vocabulary(classes)
        self.classes_ = classes
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y; got 1 class: "
                f"{self.classes_.tolist()}."
            )
        return y_enc.astype(np.int64)

    def _check_params(self) -> None:
        for name in ("max_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not (isinstance(self.lr, numbers.Real) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}.")
        frac = self.validation_fraction
        if frac is not None and not (isinstance(frac, numbers.Real) and 0 <= frac < 1):
            raise ValueError(
                f"validation_fraction must be None or in [0, 1), got {frac!r}."
            )
        if self.patience is not None and (
            not isinstance(self.patience, numbers.Integral) or self.patience < 1
        ):
            raise ValueError(f"patience must be None or a positive int, got {self.patience!r}.")

    def _class_weights(self, y_enc: np.ndarray):
        import torch

        n_classes = len(self.classes_)
        y_enc = y_enc[y_enc >= 0]  # night models mark unscored epochs with -1
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, numbers.Real) and not isinstance(
                self.class_weight, bool):
            power = float(self.class_weight)
            if not 0 < power <= 1:
                raise ValueError(f"A numeric class_weight is a power in (0, 1] of the "
                                 f"balanced weights, got {self.class_weight!r}.")
            weights = compute_class_weight("balanced", classes=np.arange(n_classes),
                                           y=y_enc) ** power
        elif isinstance(self.class_weight, str):
            if self.class_weight != "balanced":
                raise ValueError(
                    f"class_weight must be 'balanced', a power in (0, 1], None or a "
                    f"dict, got {self.class_weight!r}."
                )
            weights = compute_class_weight("balanced", classes=np.arange(n_classes), y=y_enc)
        elif isinstance(self.class_weight, dict):
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(f"class_weight names unknown classes {sorted(unknown)}.")
            weights = np.array([self.class_weight.get(c, 1.0) for c in self.classes_])
        else:
            raise ValueError(
                f"class_weight must be 'balanced', a power in (0, 1], None or a dict, got "
                f"{self.class_weight!r}."
            )
        return torch.as_tensor(weights, dtype=torch.float32)

    # ------------------------------------------------------------------ networks
    def _build_module(self, n_chans: int, n_times: int, seed: int):
        from sleepkd.networks import get_network

        network = get_network(self.module)
        with seeded_torch(seed):
            return network(
                n_chans=n_chans,
                n_outputs=len(self.classes_),
                n_times=n_times,
                sfreq=self.sfreq,
                **(self.module_params or {}),
            )

    def _train(
        self,
        module,
        X,
        y_enc: np.ndarray,
        train_idx: np.ndarray,
        valid_idx: np.ndarray | None,
        *,
        criterion,
        seed: int,
        net_class=None,
        net_kwargs=None,
        max_epochs: int | None = None,
        monitor: str = "valid_f1",
        lower_is_better: bool = False,
    ):
        """Train ``module`` with skorch on the given rows and return the fitted net.

        ``X`` is an array or a dict of arrays (per-row extra inputs); the best epoch on
        the validation rows (by ``monitor``) is kept.
        """
        from skorch.dataset import Dataset

        from sleepkd.distillation._nets import valid_weighted_f1

        def rows(idx):
            if isinstance(X, dict):
                return {k: v[idx] for k, v in X.items()}
            return X[idx]

        valid = None if valid_idx is None else Dataset(rows(valid_idx), y_enc[valid_idx])
        return self._fit_net(
            module, rows(train_idx), y_enc[train_idx], valid, criterion=criterion,
            seed=seed, net_class=net_class, net_kwargs=net_kwargs, max_epochs=max_epochs,
            monitor=monitor, lower_is_better=lower_is_better, scoring=valid_weighted_f1)

    def _fit_net(self, module, X_train, y_train, valid_dataset, *, criterion, seed,
                 net_class=None, net_kwargs=None, max_epochs=None, monitor="valid_f1",
                 lower_is_better=False, scoring=None, callbacks=()):
        """Fit a skorch net on ``X_train`` (array, dict or torch Dataset with
        ``y_train=None``), selecting the best epoch on ``valid_dataset`` by ``monitor``
        (``"valid_f1"`` is computed by ``scoring(net, X, y)``)."""
        import torch
        from skorch.callbacks import EarlyStopping, EpochScoring, ProgressBar
        from skorch.helper import predefined_split

        from sleepkd.distillation._nets import KeepBestModule, StagingNet

        callbacks = list(callbacks)
        train_split = None
        if valid_dataset is not None:
            train_split = predefined_split(valid_dataset)
            if monitor == "valid_f1":
                callbacks.append(
                    ("valid_f1", EpochScoring(scoring, name="valid_f1",
                                              lower_is_better=False))
                )
            callbacks.append(("keep_best", KeepBestModule(monitor, lower_is_better)))
            if self.patience is not None:
                callbacks.append(("early_stopping", EarlyStopping(
                    monitor=monitor, lower_is_better=lower_is_better,
                    patience=self.patience, load_best=False)))
        if self.verbose and self.verbose >= 2:
            callbacks.append(("progress", ProgressBar()))

        generator = torch.Generator().manual_seed(seed)
        net_class = net_class or StagingNet
        kwargs = dict(
            module=module,
            criterion=criterion,
            optimizer=torch.optim.Adam,
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr,
            max_epochs=max_epochs or self.max_epochs,
            batch_size=self.batch_size,
            train_split=train_split,
            callbacks=callbacks,
            iterator_train__shuffle=True,
            iterator_train__generator=generator,
            device=self.device,
            verbose=int(bool(self.verbose)),
            **(net_kwargs or {}),
        )
        accelerator = self._checked_accelerator()
        if accelerator is None:
            net = net_class(**kwargs)
        else:  # skorch leaves device placement to the accelerator
            from sleepkd.distillation._nets import accelerated_net_class

            # the log goes through accelerator.print (once, on the main process),
            # which skorch's PrintLog calls whatever verbose says: print when silent
            silent = {} if self.verbose else {"callbacks__print_log__sink": print}
            net = accelerated_net_class(net_class)(
                **{**kwargs, "device": None}, accelerator=accelerator, **silent)
        with seeded_torch(seed):  # dropout and anything else drawing from torch
            try:
                net.fit(X_train, y_train)
            finally:
                if accelerator is not None:
                    # it holds what it prepared (modules, data loaders with the data):
                    # let go, or pickles and clones of this estimator carry them
                    accelerator.free_memory()
        if accelerator is None:
            return net
        # the trained (unwrapped) module in a plain net on the accelerator's device: it
        # predicts in full precision, pickles without the accelerator, and loads on
        # a CPU-only machine like any skorch net
        plain = net_class(**{**kwargs, "module": net.module_, "criterion": net.criterion_,
                             "device": str(accelerator.device)}).initialize()
        plain.history = net.history
        return plain

    def _checked_accelerator(self):
        """``self.accelerator`` once checked (``None`` when not used)."""
        if self.accelerator is None:
            return None
        try:
            from accelerate import Accelerator
        except ImportError as exc:
            raise ImportError(
                "accelerator= needs Hugging Face Accelerate: pip install \"sleepkd[gpu]\"."
            ) from exc
        if not isinstance(self.accelerator, Accelerator):
            raise TypeError(f"accelerator must be an accelerate.Accelerator or None, got "
                            f"{type(self.accelerator).__name__}.")
        return self.accelerator

    # ------------------------------------------------------------------ public API
    def fit(self, X: ArrayLike, y: ArrayLike, groups: ArrayLike | None = None):
        """Fit the network on epochs ``X`` with stage labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            Signal epochs (a 2-D array is one channel); for ``module="mlp"``, feature
            rows.
        y : array-like of shape (n_epochs,)
            Stage labels (any hashable labels; ``classes_`` keeps them sorted). String
            labels that include sleep stages of :mod:`sleepkd.stages` (``"W"``,
            ``"N2"``, ...) must all belong to its vocabularies: ``"N5"`` next to them
            raises a ValueError listing the known labels. Labels none of which is a
            stage (integers, ``"one"``, ``"two"``) are accepted as they are.
        groups : array-like of shape (n_epochs,), optional
            Subject ids. The validation split for checkpoint selection then holds out
            whole subjects. Routed automatically with sklearn's metadata routing.

        Returns
        -------
        self
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        y_enc = self._encode_y(y, len(X))
        groups = _check_groups(groups, len(X))
        seed = _seed_from(self.random_state)
        train_idx, valid_idx = train_valid_split(y_enc, groups, self.validation_fraction, seed)
        self._record_split(groups, train_idx, valid_idx)
        self._fit_rows(X, y_enc, train_idx, valid_idx, seed)
        return self

    def _record_split(self, groups, train_idx, valid_idx) -> None:
        """Remember the subjects trained on and held out (``train_groups_`` and
        ``valid_groups_``; ``None`` without groups), so that a cascade reusing this
        fitted model knows which subjects it never saw."""
        if groups is None:
            self.train_groups_ = self.valid_groups_ = None
            return
        self.train_groups_ = np.unique(groups[train_idx])
        self.valid_groups_ = np.unique(groups[valid_idx if valid_idx is not None else []])

    def _fit_rows(self, X, y_enc, train_idx, valid_idx, seed, module=None, criterion=None,
                  X_extra=None):
        """Fit on already validated arrays (the cascade reuses this with its own split,
        a pre-trained module, a distillation criterion and extra per-row inputs)."""
        from sleepkd.distillation._losses import ClassificationLoss
        from sleepkd.distillation._nets import history_records

        if module is None:
            module = self._build_module(X.shape[1], X.shape[2], seed)
        if criterion is None:
            criterion = ClassificationLoss(class_weight=self._class_weights(y_enc))
        inputs = X if X_extra is None else {"x": X, **X_extra}
        self.net_ = self._train(module, inputs, y_enc, train_idx, valid_idx,
                                criterion=criterion, seed=seed)
        self.net_.module_.eval()
        self.history_ = history_records(self.net_)
        return self

    def _logits(self, X: np.ndarray, nights=None) -> np.ndarray:
        """Logits of validated 3-D ``X`` (eval mode, batched); ``nights`` is only read
        by the night-level models.

        Every forward pass gets exactly ``batch_size`` rows (the last batch is padded
        with zero rows, whose outputs are dropped): the kernels then do the same
        arithmetic for a row whatever else is in ``X``, so the prediction of a row
        does not depend on the batch it came in, down to the last bit (sklearn's
        ``check_methods_subset_invariance``; differences of about 1e-7 otherwise).
        """
        import torch

        size = int(self.batch_size)
        parts = []
        for start in range(0, len(X), size):
            chunk = X[start:start + size]
            n_rows = len(chunk)
            if n_rows < size:
                pad = np.zeros((size - n_rows,) + chunk.shape[1:], dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            logits = self.net_.forward(chunk, training=False)
            if isinstance(logits, torch.Tensor):
                logits = logits.detach().cpu().numpy()
            parts.append(np.asarray(logits, dtype=np.float32)[:n_rows])
        if not parts:
            return np.empty((0, len(self.classes_)), dtype=np.float32)
        return np.concatenate(parts)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities of each epoch.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            Rows shaped like those seen in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_epochs, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self, "net_")
        logits = self._logits(self._validate_X(X, reset=False)).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted stage of each epoch.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            Rows shaped like those seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_epochs,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)  # checks fitted before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def module_(self):
        """The fitted torch module."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags


def _check_stage_vocabulary(classes: np.ndarray) -> None:
    """Refuse string labels outside every stage vocabulary next to sleep-stage labels.

    Labels that look like sleep stages (at least one from a vocabulary of
    :mod:`sleepkd.stages`, e.g. ``"W"``, ``"N2"``) must all be known: a typo such as
    ``"N5"`` would otherwise become a class of its own. Labels none of which is a
    stage (integers, ``"one"``/``"two"``) are any user's classes and pass.
    """
    from sleepkd.stages import _known_labels

    values = classes.tolist()
    if not values or not all(isinstance(v, str) for v in values):
        return
    known = _known_labels()
    unknown = [v for v in values if v.strip().upper() not in known]
    if unknown and len(unknown) < len(values):
        raise ValueError(
            f"Unknown sleep-stage label(s) {unknown} next to the stage labels "
            f"{[v for v in values if v not in unknown]}; known labels are "
            f"{sorted(known)}. Fix or drop these epochs, or map the labels to one "
            "scheme with sleepkd.stages.to_scheme."
        )


def _rows_unseen_by(estimator, groups) -> np.ndarray | None:
    """Boolean mask of the rows whose subject ``estimator`` was not trained on.

    ``None`` when this cannot be known: no ``groups`` here, or the estimator was
    fitted without groups (its ``train_groups_`` is ``None`` or missing).
    """
    train_groups = getattr(estimator, "train_groups_", None)
    if groups is None or train_groups is None:
        return None
    return ~np.isin(groups, train_groups)


def _check_groups(groups, n: int) -> np.ndarray | None:
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) != n:
        raise ValueError(
            f"groups must be 1-D with one subject id per epoch ({n}), got shape "
            f"{groups.shape}."
        )
    return groups


_SHARED_DOC = """
    Parameters
    ----------
    module : str or torch.nn.Module subclass, default={default!r}
        Network: ``"utime"`` (the paper's U-Time), ``"compact"`` (a narrower U-Time
        with a sixteenth of its parameters), ``"context"`` (epochs with neighbouring context),
        ``"mlp"`` (feature rows), or a module class with the signature
        ``(n_chans, n_outputs, n_times, sfreq, **module_params)``.
    module_params : dict, optional
        Keyword arguments of the network (e.g. ``{{"widths": (8, 16, 32, 64, 128)}}``).
    max_epochs : int, default=50
        Maximum number of training epochs.
    lr : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=64
        Mini-batch size.
    weight_decay : float, default=0.0
        Adam weight decay.
    class_weight : "balanced", float, dict or None, default="balanced"
        Class weights of the cross-entropy; "balanced" uses sklearn's balanced weights
        from the training labels; a float ``p`` in (0, 1] those weights to the power
        ``p`` (milder: the night-level heart-rate student uses 0.25, measured on
        slpdb; fully balanced weights made it predict the rare stages everywhere).
    validation_fraction : float or None, default=0.1
        Share of rows (of subjects when ``groups`` are passed to ``fit``) held out to
        select the best epoch by weighted F1. ``None`` or 0: train for ``max_epochs``
        and keep the last weights.
    patience : int or None, default=10
        Stop after this many epochs without improvement of the validation weighted F1.
    sfreq : float, optional
        Sampling rate of the input, passed to the network (informative for most).
    device : str, default="cpu"
        Torch device (``"cpu"``, ``"cuda"``). A model fitted on a GPU loads on a
        CPU-only machine (skorch maps the weights). Ignored when ``accelerator`` is
        given: the accelerator places the model.
    accelerator : accelerate.Accelerator, optional
        Train through Hugging Face Accelerate (skorch's ``AccelerateMixin``, skorch's
        way to mixed precision): e.g. ``Accelerator(mixed_precision="bf16")`` on a GPU,
        several GPUs under ``accelerate launch``. The fitted ``net_`` is a plain
        skorch net on the accelerator's device that predicts in full precision.
        Needs the ``gpu`` extra (``pip install "sleepkd[gpu]"``).
    random_state : int, RandomState or None
        Seeds weight initialisation, shuffling, dropout and the validation split: the
        same value gives identical predictions.
    verbose : int, default=1
        0: silent; 1: one line per epoch (skorch's log); 2: also per-batch progress bars.

    Attributes
    ----------
    classes_ : ndarray
        Stage labels seen in ``fit``.
    net_ : skorch.NeuralNet
        The fitted skorch net (its ``module_`` is the torch network).
    history_ : list of dict
        Per-epoch training history (losses, validation weighted F1, best epoch).
    input_shape_ : tuple
        Shape of one input row seen in ``fit``.
    train_groups_ : ndarray or None
        Subject ids the weights were trained on; ``None`` when fitted without
        ``groups``. A :class:`DistilledECGStager` reusing this model frozen evaluates
        it on the other subjects only.
    valid_groups_ : ndarray or None
        Subject ids held out for checkpoint selection (empty without validation);
        ``None`` when fitted without ``groups``.
    n_features_in_ : int
        ``X.shape[1]`` seen in ``fit``.
"""


class EEGTeacher(_TorchStager):
    """EEG sleep stager: the teacher of the distillation cascade.

    A scikit-learn classifier over a skorch-wrapped PyTorch network, trained with
    class-weighted cross-entropy; the best epoch on held-out subjects is kept.
    """

    __doc__ += _SHARED_DOC.format(default="utime")

    def __init__(self, module="utime", module_params=None, *, max_epochs=50, lr=1e-3,
                 batch_size=64, weight_decay=0.0, class_weight="balanced",
                 validation_fraction=0.1, patience=10, sfreq=None, device="cpu",
                 accelerator=None, random_state=None, verbose=1):
        super().__init__(
            module=module, module_params=module_params, max_epochs=max_epochs, lr=lr,
            batch_size=batch_size, weight_decay=weight_decay, class_weight=class_weight,
            validation_fraction=validation_fraction, patience=patience, sfreq=sfreq,
            device=device, accelerator=accelerator, random_state=random_state,
            verbose=verbose,
        )


class ECGStudent(_TorchStager):
    """ECG sleep stager: the student of the distillation cascade.

    Fitted alone it is the ECG-only baseline; inside :class:`DistilledECGStager` it
    learns from the labels and from an :class:`EEGTeacher`.
    """

    __doc__ += _SHARED_DOC.format(default="compact")

    def __init__(self, module="compact", module_params=None, *, max_epochs=50, lr=1e-3,
                 batch_size=64, weight_decay=0.0, class_weight="balanced",
                 validation_fraction=0.1, patience=10, sfreq=None, device="cpu",
                 accelerator=None, random_state=None, verbose=1):
        super().__init__(
            module=module, module_params=module_params, max_epochs=max_epochs, lr=lr,
            batch_size=batch_size, weight_decay=weight_decay, class_weight=class_weight,
            validation_fraction=validation_fraction, patience=patience, sfreq=sfreq,
            device=device, accelerator=accelerator, random_state=random_state,
            verbose=verbose,
        )
