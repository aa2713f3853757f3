"""Night-level teacher and student: each epoch is staged from the whole night.

Sleep has structure over hours (cycles of about 90 minutes, deep sleep early, REM
late) that a window of a few epochs cannot see. These estimators keep sklearn's
contract (a row of ``X`` is one 30-s epoch, one prediction per row) and read the
night each row belongs to from ``nights``, routed like ``groups``.
"""

from __future__ import annotations

import logging
import numbers

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted, column_or_1d

from sleepkd.distillation._estimators import _SHARED_DOC, _check_groups, _seed_from, _TorchStager
from sleepkd.distillation._sequences import IGNORE, NightIndex, NightWindows, nights_or_runs
from sleepkd.distillation._splits import train_valid_split
from sleepkd.stages import UNSCORED

logger = logging.getLogger(__name__)


def is_unscored(y: np.ndarray, unscored_label) -> np.ndarray:
    """Rows of ``y`` equal to ``unscored_label`` (works for numeric and string labels)."""
    if unscored_label is None:
        return np.zeros(len(y), dtype=bool)
    return np.array([value == unscored_label for value in np.asarray(y, dtype=object)],
                    dtype=bool)


class _NightStager(_TorchStager):
    """Shared implementation of :class:`EEGNightTeacher` and :class:`ECGNightStudent`."""

    # nights (and subjects) reach fit and prediction through sklearn's metadata routing
    __metadata_request__fit = {"groups": True, "nights": True}
    __metadata_request__predict = {"nights": True}
    __metadata_request__predict_proba = {"nights": True}
    __metadata_request__score = {"nights": True}

    #: Read by DistilledECGStager: these models stage whole nights.
    reads_nights = True

    def __init__(self, module="heart_rate_tcn", module_params=None, *, window=256,
                 max_epochs=50, lr=1e-3, batch_size=8, weight_decay=0.0,
                 class_weight="balanced", validation_fraction=0.2, patience=10,
                 unscored_label=UNSCORED, sfreq=None, device="cpu", accelerator=None,
                 random_state=None, verbose=1):
        super().__init__(
            module=module, module_params=module_params, max_epochs=max_epochs, lr=lr,
            batch_size=batch_size, weight_decay=weight_decay, class_weight=class_weight,
            validation_fraction=validation_fraction, patience=patience, sfreq=sfreq,
            device=device, accelerator=accelerator, random_state=random_state,
            verbose=verbose,
        )
        self.window = window
        self.unscored_label = unscored_label

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        super()._check_params()
        if self.window is not None and (
            not isinstance(self.window, numbers.Integral) or self.window < 1
        ):
            raise ValueError(
                f"window must be None (whole nights) or a positive number of epochs, got "
                f"{self.window!r}."
            )

    def _encode_night_y(self, y, n_rows: int) -> np.ndarray:
        """Encode the scored labels; unscored rows get -1 (kept as input, no loss)."""
        y = column_or_1d(y, warn=True)
        if len(y) != n_rows:
            raise ValueError(f"X has {n_rows} rows but y has {len(y)} labels.")
        unscored = is_unscored(y, self.unscored_label)
        if unscored.all():
            raise ValueError(
                f"Every label equals the unscored label {self.unscored_label!r}: there is "
                "nothing to learn from."
            )
        y_enc = np.full(n_rows, IGNORE, dtype=np.int64)
        y_enc[~unscored] = self._encode_y(y[~unscored], int((~unscored).sum()))
        self.n_unscored_ = int(unscored.sum())
        return y_enc

    def _night_index(self, nights, n_rows: int, groups=None) -> NightIndex:
        index = NightIndex(nights_or_runs(nights, groups), n_rows)
        index.check_nested_in(groups)
        if nights is None and n_rows > 1:
            logger.info("No nights given: read %d rows as %d night(s) (runs of consecutive "
                        "rows of one subject, or all rows); pass nights (a night id per "
                        "row) to stage nights apart.", n_rows, index.n_nights)
        return index

    # ------------------------------------------------------------------ fit
    def fit(self, X: ArrayLike, y: ArrayLike, nights: ArrayLike | None = None,
            groups: ArrayLike | None = None):
        """Fit the network on the nights of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            One row per 30-s epoch (signal samples, or a feature row for
            ``module="feature_sequence"``), rows of a night in time order.
        y : array-like of shape (n_epochs,)
            Stage labels; rows labelled ``unscored_label`` stay in the night as input
            but carry no loss.
        nights : array-like of shape (n_epochs,), optional
            Night (recording) id of each row. ``None``: each run of consecutive rows
            of one subject (of ``groups``) is a night, or all rows without groups.
            Routed with sklearn's metadata routing (requested by default).
        groups : array-like of shape (n_epochs,), optional
            Subject ids: the validation split holds out whole subjects (otherwise
            whole nights). A night must belong to one subject.

        Returns
        -------
        self
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        y_enc = self._encode_night_y(y, len(X))
        groups = _check_groups(groups, len(X))
        index = self._night_index(nights, len(X), groups)
        seed = _seed_from(self.random_state)
        train_idx, valid_idx = self._split(y_enc, index, groups, seed)
        self._record_split(groups, train_idx, valid_idx)
        self._fit_rows(X, y_enc, train_idx, valid_idx, seed, index=index)
        return self

    def fit_windows(self, train, valid=None):
        """Fit on datasets of night windows, read lazily (e.g. from a night store).

        For cohorts that do not fit in memory: ``train`` and ``valid`` are torch
        datasets with the items of the night-level models (``({"x": (length, n_chans,
        n_times), "mask": (length,)}, y)``, ``y`` the class index of each epoch, -1
        for unscored epochs and padding), such as :class:`sleepkd.io.StoreWindows`;
        skorch iterates over them batch by batch, so memory is bounded by the batch,
        not the cohort.

        Parameters
        ----------
        train : torch Dataset
            Training windows, with attributes ``classes`` (labels in class-index
            order), ``row_shape`` (shape of one epoch row, as ``X.shape[1:]`` in
            ``fit``) and ``y`` (the class indices of each night, for the class
            weights); a ``redraw()`` method moves the windows each training epoch.
        valid : torch Dataset, optional
            Whole validation nights (``window=None``), from other subjects; the best
            epoch by their weighted F1 is kept. ``None``: the last epoch is kept.

        Returns
        -------
        self
        """
        from sleepkd.distillation._losses import ClassificationLoss

        self._check_params()
        for name in ("classes", "row_shape", "y"):
            if not hasattr(train, name):
                raise ValueError(f"train must have a {name!r} attribute (as StoreWindows "
                                 f"has); got {type(train).__name__}.")
        self.classes_ = np.asarray(train.classes)
        self.input_shape_ = tuple(int(d) for d in train.row_shape)
        self.n_features_in_ = self.input_shape_[0]
        shape = (1,) + self.input_shape_ if len(self.input_shape_) == 1 else self.input_shape_
        y_enc = np.concatenate([np.asarray(y) for y in train.y])
        seed = _seed_from(self.random_state)
        module = self._build_module(shape[0], shape[1], seed)
        _check_night_network(module)
        criterion = ClassificationLoss(class_weight=self._class_weights(y_enc))
        self.train_groups_ = self.valid_groups_ = None
        self.n_unscored_ = int(np.sum(y_enc < 0))
        return self._fit_windows_net(module, train, valid, criterion, seed)

    def _fit_windows_net(self, module, train, valid, criterion, seed: int):
        """Train ``module`` on window datasets (a new window grid each epoch), keep the
        best epoch on the whole validation nights, and set ``net_`` and ``history_``."""
        from sleepkd.distillation._nets import history_records
        from sleepkd.distillation._night_nets import (
            NightStagingNet,
            RedrawWindows,
            valid_weighted_f1_nights,
        )

        self.net_ = self._fit_net(module, train, None, valid, criterion=criterion, seed=seed,
                                  net_class=NightStagingNet, scoring=valid_weighted_f1_nights,
                                  callbacks=[("redraw_windows", RedrawWindows())])
        self.net_.module_.eval()
        self.history_ = history_records(self.net_)
        return self

    def _split(self, y_enc, index: NightIndex, groups, seed: int):
        """Validation split by subject (or by night): never inside a night."""
        split_groups = groups if groups is not None else index.codes
        return train_valid_split(y_enc, split_groups, self.validation_fraction, seed)

    def _datasets(self, inputs: dict, y_enc, index: NightIndex, train_idx, valid_idx,
                  seed: int):
        train_idx = np.sort(train_idx)
        train = NightWindows({k: v[train_idx] for k, v in inputs.items()}, y_enc[train_idx],
                             index.subset(train_idx), window=self.window, seed=seed)
        valid = None
        if valid_idx is not None:
            valid_idx = np.sort(valid_idx)
            valid = NightWindows({k: v[valid_idx] for k, v in inputs.items()},
                                 y_enc[valid_idx], index.subset(valid_idx), window=None)
        return train, valid

    def _fit_rows(self, X, y_enc, train_idx, valid_idx, seed, module=None, criterion=None,
                  X_extra=None, index: NightIndex | None = None):
        """Fit on validated arrays (the cascade reuses this with its own split, a
        pre-trained module, a distillation criterion and per-row extra inputs)."""
        from sleepkd.distillation._losses import ClassificationLoss

        if index is None:
            index = NightIndex(None, len(X))
        if module is None:
            module = self._build_module(X.shape[1], X.shape[2], seed)
        _check_night_network(module)
        if criterion is None:
            criterion = ClassificationLoss(class_weight=self._class_weights(y_enc))
        train, valid = self._datasets({"x": X, **(X_extra or {})}, y_enc, index, train_idx,
                                      valid_idx, seed)
        return self._fit_windows_net(module, train, valid, criterion, seed)

    # ------------------------------------------------------------------ predict
    def _logits(self, X: np.ndarray, nights=None) -> np.ndarray:
        """Per-row logits of validated 3-D ``X``, each night staged on its own."""
        import torch

        index = nights if isinstance(nights, NightIndex) else NightIndex(nights, len(X))
        module = self.net_.module_
        module.eval()
        device = self.net_.device
        out = np.empty((len(X), len(self.classes_)), dtype=np.float32)
        with torch.no_grad():
            for rows in index.rows:
                x = torch.as_tensor(X[rows][None], device=device)
                out[rows] = module(x)[0].detach().cpu().numpy()
        return out

    def predict_proba(self, X: ArrayLike, nights: ArrayLike | None = None) -> np.ndarray:
        """Class probabilities of each epoch, each night staged as a whole.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            Rows shaped like those seen in ``fit``, rows of a night in time order.
        nights : array-like of shape (n_epochs,), optional
            Night id of each row; ``None``: all rows are one night.

        Returns
        -------
        proba : ndarray of shape (n_epochs, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self, "net_")
        X = self._validate_X(X, reset=False)
        logits = self._logits(X, self._night_index(nights, len(X))).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: ArrayLike, nights: ArrayLike | None = None) -> np.ndarray:
        """Predicted stage of each epoch, each night staged as a whole.

        Parameters
        ----------
        X : array-like of shape (n_epochs, n_times) or (n_epochs, n_channels, n_times)
            Rows shaped like those seen in ``fit``.
        nights : array-like of shape (n_epochs,), optional
            Night id of each row; ``None``: all rows are one night.

        Returns
        -------
        y_pred : ndarray of shape (n_epochs,)
            Labels from ``classes_`` (unscored rows get a stage too).
        """
        proba = self.predict_proba(X, nights=nights)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: ArrayLike, y: ArrayLike, nights: ArrayLike | None = None,
              sample_weight: ArrayLike | None = None) -> float:
        """Accuracy on the scored rows (rows labelled ``unscored_label`` are left out).

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
        from sklearn.metrics import accuracy_score

        y = column_or_1d(y)
        scored = ~is_unscored(y, self.unscored_label)
        y_pred = self.predict(X, nights=nights)
        weight = None if sample_weight is None else np.asarray(sample_weight)[scored]
        return float(accuracy_score(y[scored], y_pred[scored], sample_weight=weight))


def _check_night_network(module) -> None:
    if not getattr(module, "sequence", False):
        raise ValueError(
            f"{type(module).__name__} stages single epochs; a night-level estimator needs "
            "a network that reads whole nights (sequence = True), e.g. 'heart_rate_tcn', "
            "'feature_sequence' or 'epoch_sequence'. Use EEGTeacher / ECGStudent for "
            "per-epoch networks."
        )


_NIGHT_DOC = _SHARED_DOC.replace(
    """    module : str or torch.nn.Module subclass, default={default!r}
        Network: ``"utime"`` (the paper's U-Time), ``"compact"`` (a narrower U-Time
        with a sixteenth of its parameters), ``"context"`` (epochs with neighbouring context),
        ``"mlp"`` (feature rows), or a module class with the signature
        ``(n_chans, n_outputs, n_times, sfreq, **module_params)``.""",
    """    module : str or torch.nn.Module subclass, default={default!r}
        Night network: ``"heart_rate_tcn"`` (instantaneous heart rate of the whole night
        into a dilated temporal CNN), ``"feature_sequence"`` (per-epoch feature rows
        into a bidirectional GRU), ``"epoch_sequence"`` (a compact U-Time epoch encoder
        followed by a sequence model over the night), or a module class with the
        signature ``(n_chans, n_outputs, n_times, sfreq, **module_params)`` whose
        ``forward(x, mask=None)`` maps ``(batch, n_epochs, n_chans, n_times)`` to
        ``(batch, n_epochs, n_outputs)`` and that sets ``sequence = True``.""",
).replace(
    """    max_epochs : int, default=50""",
    """    window : int or None, default=256
        Training windows of this many epochs (256 epochs = 2 h 8 min), overlapping by
        half, on a new random grid each training epoch; ``None``: whole nights.
        Validation and prediction always read whole nights.
    max_epochs : int, default=50""",
).replace(
    """    batch_size : int, default=64
        Mini-batch size.""",
    """    batch_size : int, default=8
        Windows per mini-batch.""",
).replace(
    """    validation_fraction : float or None, default=0.1
        Share of rows (of subjects when ``groups`` are passed to ``fit``) held out to""",
    """    validation_fraction : float or None, default=0.2
        Share of nights (of subjects when ``groups`` are passed to ``fit``) held out to""",
).replace(
    """    sfreq : float, optional""",
    """    unscored_label : object, default="?"
        Label of epochs without a stage (unscored, movement, artefact): they stay in
        their night as input, carry no loss and are not scored. ``None``: every label
        is a class.
    sfreq : float, optional""",
).replace(
    """    n_features_in_ : int""",
    """    n_unscored_ : int
        Rows labelled ``unscored_label`` in ``fit``.
    n_features_in_ : int""",
)
for _line in ("Share of nights", "Windows per", "window : int", "unscored_label : object",
              "n_unscored_", "Night network"):
    assert _line in _NIGHT_DOC, _line  # the shared docstring changed: update the edits


class EEGNightTeacher(_NightStager):
    """Night-level EEG sleep stager: an epoch encoder and a sequence model over the night.

    As SeqSleepNet (Phan et al. 2019) and U-Sleep (Perslev et al. 2021) do, each epoch
    is encoded on its own and a sequence model reads the encoded night; one prediction
    per row. Teacher of :class:`DistilledECGStager` when the student reads nights too.
    """

    __doc__ += _NIGHT_DOC.format(default="epoch_sequence")

    def __init__(self, module="epoch_sequence", module_params=None, *, window=256,
                 max_epochs=50, lr=1e-3, batch_size=8, weight_decay=0.0,
                 class_weight="balanced", validation_fraction=0.2, patience=10,
                 unscored_label=UNSCORED, sfreq=None, device="cpu", accelerator=None,
                 random_state=None, verbose=1):
        super().__init__(
            module=module, module_params=module_params, window=window,
            max_epochs=max_epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
            class_weight=class_weight, validation_fraction=validation_fraction,
            patience=patience, unscored_label=unscored_label, sfreq=sfreq, device=device,
            accelerator=accelerator, random_state=random_state, verbose=verbose,
        )


class ECGNightStudent(_NightStager):
    """Night-level ECG sleep stager: heart rate (or ECG epochs) of the whole night.

    The default network reads instantaneous heart rate over the whole night with a
    dilated temporal CNN (after Sridhar et al. 2020); one prediction per row. Fitted
    alone it is the ECG-only baseline; inside :class:`DistilledECGStager` it learns
    from the labels and an EEG teacher.
    """

    __doc__ += _NIGHT_DOC.format(default="heart_rate_tcn")

    def __init__(self, module="heart_rate_tcn", module_params=None, *, window=256,
                 max_epochs=50, lr=1e-3, batch_size=8, weight_decay=0.0,
                 class_weight="balanced", validation_fraction=0.2, patience=10,
                 unscored_label=UNSCORED, sfreq=None, device="cpu", accelerator=None,
                 random_state=None, verbose=1):
        super().__init__(
            module=module, module_params=module_params, window=window,
            max_epochs=max_epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
            class_weight=class_weight, validation_fraction=validation_fraction,
            patience=patience, unscored_label=unscored_label, sfreq=sfreq, device=device,
            accelerator=accelerator, random_state=random_state, verbose=verbose,
        )
