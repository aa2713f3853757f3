"""skorch nets and callbacks behind the teacher, the student and the cascade.

Per-sample extra inputs travel with X as a dict, so batching and slicing keep them
aligned with the rows (``{"x": ecg, "teacher_logits": ...}`` or
``{"x": ecg, "x_teacher": eeg}``); the module itself only ever sees ``x``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.hf import AccelerateMixin
from skorch.utils import to_tensor
from sklearn.metrics import f1_score


def _module_input(net: NeuralNet, x):
    x = to_tensor(x, device=net.device)
    if isinstance(x, Mapping):
        return x["x"]
    return x


class StagingNet(NeuralNet):
    """Classification net whose criterion may also take the teacher's logits.

    The criterion is called as ``criterion(logits, y)`` or, when the batch carries
    ``teacher_logits``, as ``criterion(logits, y, teacher_logits)``.
    """

    def infer(self, x, **fit_params):
        return self.module_(_module_input(self, x))

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = to_tensor(y_true, device=self.device)
        if isinstance(X, Mapping) and "teacher_logits" in X:
            teacher_logits = to_tensor(X["teacher_logits"], device=self.device)
            return self.criterion_(y_pred, y_true, teacher_logits)
        return self.criterion_(y_pred, y_true)


class AttentionTransferNet(NeuralNet):
    """Feature pre-training of a student on the attention maps of a frozen teacher.

    Parameters
    ----------
    module : torch.nn.Module
        The student network (trained).
    teacher_module : torch.nn.Module
        The frozen teacher network; run in eval mode without gradients.
    layer_pairs : list of (str, str)
        ``(teacher feature name, student feature name)`` pairs to match.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, module, *args, teacher_module=None, layer_pairs=(), **kwargs):
        super().__init__(module, *args, **kwargs)
        # held in a tuple: skorch would otherwise register it as a trainable component
        self.frozen_teacher = (teacher_module,)
        self.layer_pairs = layer_pairs

    def infer(self, x, **fit_params):
        return self.module_(_module_input(self, x), return_features=True)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        _, student_features = y_pred
        x_teacher = to_tensor(X["x_teacher"], device=self.device)
        # the batch's device: with Accelerate self.device is None and the batch is
        # already where the accelerator placed it
        teacher = self.frozen_teacher[0].to(x_teacher.device).eval()
        with torch.no_grad():
            _, teacher_features = teacher(x_teacher, return_features=True)
        t_maps = [teacher_features[t] for t, _ in self.layer_pairs]
        s_maps = [student_features[s] for _, s in self.layer_pairs]
        return self.criterion_(t_maps, s_maps)


def valid_weighted_f1(net: NeuralNet, X, y) -> float:
    """Weighted F1 of the validation set (skorch scoring, predictions are logits)."""
    logits = net.predict_proba(X)
    return float(f1_score(np.asarray(y), logits.argmax(axis=1), average="weighted"))


class KeepBestModule(Callback):
    """Keep the module weights of the best epoch and restore them when training ends.

    An in-memory version of skorch's ``Checkpoint`` + ``LoadInitState``: fitted
    stagers should not depend on files left behind in a working directory.

    Parameters
    ----------
    monitor : str
        History key to monitor, e.g. ``"valid_f1"`` or ``"valid_loss"``.
    lower_is_better : bool
        Whether a lower value of ``monitor`` is better.
    """

    def __init__(self, monitor: str = "valid_f1", lower_is_better: bool = False):
        self.monitor = monitor
        self.lower_is_better = lower_is_better

    def initialize(self):
        self.best_score_ = None
        self.best_epoch_ = None
        self._best_state = None
        return self

    def on_epoch_end(self, net, **kwargs):
        score = net.history[-1, self.monitor]
        better = self.best_score_ is None or (
            score < self.best_score_ if self.lower_is_better else score > self.best_score_
        )
        if better:
            self.best_score_ = score
            self.best_epoch_ = len(net.history)
            self._best_state = copy.deepcopy(_bare(net.module_).state_dict())
        net.history.record("best", bool(better))

    def on_train_end(self, net, **kwargs):
        if self._best_state is not None:
            net.module_.load_state_dict(self._best_state)
        self._best_state = None  # do not carry a second copy of the weights in pickles


def _bare(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (Accelerate on several
    devices), so that saved weights load into the unwrapped module."""
    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return module.module
    return module


class SleepkdAccelerateMixin(AccelerateMixin):
    """skorch's :class:`~skorch.hf.AccelerateMixin`, leaving losses without trainable
    parameters unprepared: on several devices the accelerator wraps what it prepares in
    ``DistributedDataParallel``, which refuses a module without parameters. They are
    moved to the accelerator's device instead."""

    def _initialize_accelerator(self):
        if self._wrapped_with_accelerator:
            return self
        criteria = self._criteria
        bare = []
        for name in criteria:
            criterion = getattr(self, name + "_")
            if isinstance(criterion, torch.nn.Module) and not any(
                    p.requires_grad for p in criterion.parameters()):
                setattr(self, name + "_", criterion.to(self.accelerator.device))
                bare.append(name)
        self._criteria = [name for name in criteria if name not in bare]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria


class AcceleratedStagingNet(SleepkdAccelerateMixin, StagingNet):
    """:class:`StagingNet` trained through Hugging Face Accelerate (skorch's
    :class:`~skorch.hf.AccelerateMixin`): mixed precision, several GPUs."""


class AcceleratedAttentionTransferNet(SleepkdAccelerateMixin, AttentionTransferNet):
    """:class:`AttentionTransferNet` trained through Hugging Face Accelerate."""


def accelerated_net_class(net_class: type) -> type:
    """The Accelerate version of one of sleepkd's net classes.

    The versions are defined at module level (not built on the fly), so that nets and
    the estimators holding them pickle.
    """
    from sleepkd.distillation._night_nets import (
        AcceleratedNightStagingNet,
        AcceleratedNightTransferNet,
        NightStagingNet,
        NightTransferNet,
    )

    if issubclass(net_class, AccelerateMixin):
        return net_class
    table = {StagingNet: AcceleratedStagingNet,
             AttentionTransferNet: AcceleratedAttentionTransferNet,
             NightStagingNet: AcceleratedNightStagingNet,
             NightTransferNet: AcceleratedNightTransferNet}
    if net_class not in table:
        raise ValueError(f"No Accelerate version of {net_class.__name__}; known: "
                         f"{sorted(cls.__name__ for cls in table)}.")
    return table[net_class]


def history_records(net: NeuralNet) -> list[dict]:
    """The per-epoch history of a skorch net as plain dicts (no per-batch entries)."""
    keep = []
    for row in net.history:
        keep.append({k: v for k, v in row.items() if k != "batches"})
    return keep


def layer_pairs_for(
    teacher_names: Sequence[str], student_names: Sequence[str], at_layers
) -> list[tuple[str, str]]:
    """Resolve the matched feature groups for attention transfer.

    Parameters
    ----------
    teacher_names, student_names : sequence of str
        Feature names the two networks return.
    at_layers : "all", sequence of str, or sequence of (str, str)
        ``"all"``: every name both networks share, in the teacher's order.

    Returns
    -------
    pairs : list of (str, str)

    Raises
    ------
    ValueError
        If no pair results or a named layer does not exist.
    """
    if isinstance(at_layers, str):
        if at_layers != "all":
            raise ValueError(
                f"at_layers must be 'all' or a list of layer names, got {at_layers!r}."
            )
        pairs = [(name, name) for name in teacher_names if name in set(student_names)]
    else:
        pairs = []
        for item in at_layers:
            t, s = (item, item) if isinstance(item, str) else tuple(item)
            pairs.append((t, s))
    missing = [t for t, _ in pairs if t not in teacher_names] + [
        s for _, s in pairs if s not in student_names
    ]
    if missing:
        raise ValueError(
            f"Unknown feature map(s) {missing} for attention transfer; the teacher has "
            f"{list(teacher_names)}, the student has {list(student_names)}."
        )
    if not pairs:
        raise ValueError(
            "Teacher and student share no feature map for attention transfer (teacher: "
            f"{list(teacher_names)}, student: {list(student_names)}); pass at_layers as "
            "a list of (teacher_name, student_name) pairs."
        )
    return pairs
