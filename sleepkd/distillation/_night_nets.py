"""skorch nets of the night-level models: batches are padded windows of nights.

A batch is ``(inputs, y)`` from :class:`~sleepkd.distillation._sequences.NightWindows`:
``inputs["x"]`` of shape ``(batch, length, n_chans, n_times)``, ``inputs["mask"]`` (True
for real epochs), optional per-epoch extras (``"teacher_logits"``, ``"x_teacher"``), and
``y`` of shape ``(batch, length)`` with -1 where an epoch carries no label (unscored, or
padding). Every loss is computed on the labelled epochs only, through the same criteria
as the per-epoch models, so padding never reaches a gradient.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.utils import to_tensor
from sklearn.metrics import f1_score

from sleepkd.distillation._nets import SleepkdAccelerateMixin


def real_epoch_rows(name: str, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-epoch features of the real (unpadded) epochs, in ``mask.reshape(-1)`` order.

    The night networks' convention: ``"embedding"`` is ``(batch, length, dim)`` (one
    vector per epoch, padding included), every other per-epoch map already holds the
    real epochs only, ``(mask.sum(), channels, time)``.
    """
    if name == "embedding":
        return features[mask]
    n_real = int(mask.sum())
    if features.shape[0] != n_real:
        raise ValueError(
            f"Feature map {name!r} has {features.shape[0]} rows, but the batch has {n_real} "
            "real epochs: night networks return per-epoch maps of the real epochs only."
        )
    return features


class NightStagingNet(NeuralNet):
    """Night-level classification net; the criterion sees labelled epochs only.

    The criterion is called as ``criterion(logits, y)`` on ``(n_labelled, n_classes)``
    logits, or as ``criterion(logits, y, teacher_logits)`` when the batch carries
    ``teacher_logits`` (soft-label distillation), exactly like the per-epoch models.
    A criterion with ``soft_on_unscored = True`` gets every real (unpadded) epoch
    instead, unscored ones with label ``-1``.
    """

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        return self.module_(x["x"], mask=x["mask"])

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = to_tensor(y_true, device=self.device)
        distill = isinstance(X, Mapping) and "teacher_logits" in X
        if distill and getattr(self.criterion_, "soft_on_unscored", False):
            # soft labels on every real epoch, scored or not; padding stays out
            real = to_tensor(X["mask"], device=self.device).bool()
            if not bool(real.any()):
                return y_pred.sum() * 0.0
            teacher_logits = to_tensor(X["teacher_logits"], device=self.device)[real]
            return self.criterion_(y_pred[real], y_true[real], teacher_logits)
        keep = y_true >= 0
        if not bool(keep.any()):  # a window of unscored epochs only
            return y_pred.sum() * 0.0
        logits, y = y_pred[keep], y_true[keep]
        if distill:
            teacher_logits = to_tensor(X["teacher_logits"], device=self.device)[keep]
            return self.criterion_(logits, y, teacher_logits)
        return self.criterion_(logits, y)


def teacher_features(teacher: torch.nn.Module, x_teacher: torch.Tensor,
                     mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Feature maps of a frozen teacher for the real epochs of a batch of windows.

    A night-level teacher reads the windows; a per-epoch teacher reads the real epochs
    one by one. Either way each returned tensor has one row per real epoch, in
    ``mask.reshape(-1)`` order.
    """
    if getattr(teacher, "sequence", False):
        _, features = teacher(x_teacher, mask=mask, return_features=True)
        return {name: real_epoch_rows(name, value, mask) for name, value in features.items()}
    _, features = teacher(x_teacher[mask], return_features=True)  # one epoch at a time
    return features


class NightTransferNet(NeuralNet):
    """Stage-2 pre-training of a night-level student on a frozen teacher's features.

    ``kind="attention"``: attention transfer between matched per-epoch feature maps
    (``criterion(teacher_maps, student_maps)``); ``kind="embedding"``: the student's
    per-epoch embedding matched to the teacher's through the criterion's learned
    projection (``criterion(student_embedding, teacher_embedding)``, FitNets-style).
    Unscored epochs take part (no labels are used); padding does not.

    Parameters
    ----------
    module : torch.nn.Module
        The student network (trained).
    teacher_module : torch.nn.Module
        The frozen teacher network.
    layer_pairs : list of (str, str)
        ``(teacher, student)`` feature names matched by attention transfer.
    kind : {"attention", "embedding"}
        What is transferred.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, module, *args, teacher_module=None, layer_pairs=(), kind="attention",
                 **kwargs):
        super().__init__(module, *args, **kwargs)
        # held in a tuple: skorch would otherwise register it as a trainable component
        self.frozen_teacher = (teacher_module,)
        self.layer_pairs = layer_pairs
        self.kind = kind

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        return self.module_(x["x"], mask=x["mask"], return_features=True)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        _, student = y_pred
        mask = to_tensor(X["mask"], device=self.device)
        # the batch's device (with Accelerate self.device is None)
        teacher_module = self.frozen_teacher[0].to(mask.device).eval()
        with torch.no_grad():
            teacher = teacher_features(teacher_module,
                                       to_tensor(X["x_teacher"], device=self.device), mask)
        if self.kind == "embedding":
            return self.criterion_(real_epoch_rows("embedding", student["embedding"], mask),
                                   teacher["embedding"])
        t_maps = [teacher[t] for t, _ in self.layer_pairs]
        s_maps = [real_epoch_rows(s, student[s], mask) for _, s in self.layer_pairs]
        return self.criterion_(t_maps, s_maps)


class AcceleratedNightStagingNet(SleepkdAccelerateMixin, NightStagingNet):
    """:class:`NightStagingNet` trained through Hugging Face Accelerate (skorch's
    :class:`~skorch.hf.AccelerateMixin`): mixed precision, several GPUs."""


class AcceleratedNightTransferNet(SleepkdAccelerateMixin, NightTransferNet):
    """:class:`NightTransferNet` trained through Hugging Face Accelerate."""


def valid_weighted_f1_nights(net: NeuralNet, X, y) -> float:
    """Weighted F1 over the labelled epochs of the validation nights (skorch scoring)."""
    logits = np.asarray(net.predict_proba(X))
    if y is None:
        y = np.stack([X[i][1] for i in range(len(X))])
    y = np.asarray(y)
    keep = y >= 0
    return float(f1_score(y[keep], logits.argmax(axis=-1)[keep], average="weighted"))


class RedrawWindows(Callback):
    """Cut the training nights into windows on a new random grid each epoch."""

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        redraw = getattr(dataset_train, "redraw", None)
        if redraw is not None:
            redraw()
