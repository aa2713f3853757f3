"""Distillation losses: class-weighted cross-entropy, soft-label KD, attention transfer.

The formulas follow Joshi et al. (2021) and the authors' code, with the standard
variants selectable:

- soft-label distillation ``alpha * T^2 * KL(p_t || p_s) + (1 - alpha) * CE(z_s, y)``,
  KL either per sample (``"batchmean"``, the mathematically correct KL) or averaged
  over batch x classes (``"mean"``, PyTorch's default used in the paper's code, 1/K of
  the former);
- attention transfer (Zagoruyko & Komodakis 2017) with maps ``A = sum_c F_c^2``,
  normalised per sample over time (``"sample"``, the original AT) or across the batch
  for each time point (``"batch"``, the paper's code), compared with the mean absolute
  difference (``"l1"``, the paper's code) or the mean squared difference (``"l2"``, the
  original AT code).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

_NORMALIZE = ("sample", "batch", None)
_DISTANCES = ("l1", "l2")
_REDUCTIONS = ("batchmean", "mean")


# --------------------------------------------------------------------------- helpers
def _check_normalize(normalize) -> None:
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be 'sample', 'batch' or None, got {normalize!r}.")


def _check_distance(distance) -> None:
    if distance not in _DISTANCES:
        raise ValueError(f"distance must be 'l1' or 'l2', got {distance!r}.")


def _check_logits_and_target(logits: torch.Tensor, y: torch.Tensor, name: str = "logits") -> None:
    if logits.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, n_classes), got {tuple(logits.shape)}.")
    if y.ndim != 1 or y.shape[0] != logits.shape[0]:
        raise ValueError(f"y must have shape ({logits.shape[0]},) to match {name}, "
                         f"got {tuple(y.shape)}.")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class indices, got dtype {y.dtype}.")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= logits.shape[1]):
        raise ValueError(f"y holds class indices outside [0, {logits.shape[1] - 1}] "
                         f"(min {int(y.min())}, max {int(y.max())}).")


def _as_class_weight(class_weight, logits: torch.Tensor) -> torch.Tensor | None:
    if class_weight is None:
        return None
    weight = torch.as_tensor(class_weight, dtype=logits.dtype, device=logits.device)
    if weight.ndim != 1 or weight.shape[0] != logits.shape[1]:
        raise ValueError(f"class_weight must have one value per class ({logits.shape[1]}), "
                         f"got shape {tuple(weight.shape)}.")
    if not torch.all(torch.isfinite(weight)) or torch.any(weight < 0):
        raise ValueError("class_weight must be finite and non-negative.")
    return weight


def _check_class_weight_init(class_weight) -> torch.Tensor | None:
    """Validate a criterion's ``class_weight`` argument; return it as a float tensor."""
    if class_weight is None:
        return None
    weight = torch.as_tensor(class_weight, dtype=torch.float32).detach().clone()
    if weight.ndim != 1 or weight.numel() == 0:
        raise ValueError(f"class_weight must be a 1-D sequence with one value per class, "
                         f"got shape {tuple(weight.shape)}.")
    if not torch.all(torch.isfinite(weight)) or torch.any(weight < 0):
        raise ValueError("class_weight must be finite and non-negative.")
    return weight


def _normalize_map(att: torch.Tensor, normalize, eps: float) -> torch.Tensor:
    if normalize == "sample":
        return F.normalize(att, p=2.0, dim=1, eps=eps)
    if normalize == "batch":
        return F.normalize(att, p=2.0, dim=0, eps=eps)
    return att


def _resample_map(att: torch.Tensor, length: int) -> torch.Tensor:
    """Shorten a (batch, time) map to ``length`` points by adaptive average pooling."""
    if att.shape[1] == length:
        return att
    return F.adaptive_avg_pool1d(att.unsqueeze(1), length).squeeze(1)


# --------------------------------------------------------------------------- functions
def weighted_cross_entropy(logits: torch.Tensor, y: torch.Tensor,
                           class_weight=None) -> torch.Tensor:
    """Class-weighted cross-entropy on logits (the paper's "CL" loss).

    ``sum_i w[y_i] * nll_i / sum_i w[y_i]`` (PyTorch's weighted mean); without weights
    the plain mean over the batch.

    Parameters
    ----------
    logits : Tensor, shape (batch, n_classes)
        Unnormalised scores.
    y : Tensor of int, shape (batch,)
        Class indices.
    class_weight : array-like of shape (n_classes,) or None
        Weight of each class, e.g. sklearn's ``compute_class_weight("balanced", ...)``.

    Returns
    -------
    loss : Tensor (scalar)

    Raises
    ------
    ValueError
        On mismatched shapes, non-integer or out-of-range labels, or invalid weights.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> round(float(weighted_cross_entropy(logits, torch.tensor([1]))), 6)  # log 2
    0.693147
    """
    _check_logits_and_target(logits, y)
    weight = _as_class_weight(class_weight, logits)
    return F.cross_entropy(logits, y.long(), weight=weight)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y: torch.Tensor,
    *,
    alpha: float = 0.5,
    temperature: float = 1.0,
    class_weight=None,
    reduction: str = "batchmean",
) -> torch.Tensor:
    """Soft-label distillation plus classification (Hinton et al. 2015; the paper's SD+CL).

    ``alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y)``

    where ``CE`` is :func:`weighted_cross_entropy` on the raw student logits. The
    ``T^2`` factor keeps the soft-label gradients' scale roughly independent of ``T``.
    The teacher logits are detached (no gradient reaches the teacher).

    Parameters
    ----------
    student_logits : Tensor, shape (batch, n_classes)
        Student scores ``z_s``.
    teacher_logits : Tensor, shape (batch, n_classes)
        Teacher scores ``z_t``.
    y : Tensor of int, shape (batch,)
        Class indices.
    alpha : float in [0, 1]
        Weight of the distillation term (0: CE only, 1: KL only). The paper uses 0.5.
    temperature : float > 0
        Softmax temperature ``T`` (the paper uses 1).
    class_weight : array-like of shape (n_classes,) or None
        Class weights of the CE term.
    reduction : {"batchmean", "mean"}
        ``"batchmean"``: KL summed over classes, averaged over the batch (the true KL).
        ``"mean"``: averaged over batch x classes, PyTorch's default used in the paper's
        code, i.e. ``1 / n_classes`` of ``"batchmean"``.

    Returns
    -------
    loss : Tensor (scalar)

    Raises
    ------
    ValueError
        If ``alpha`` is outside [0, 1], ``temperature`` is not positive, ``reduction``
        is unknown, or the shapes do not match.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[1.0, -1.0]])
    >>> float(distillation_loss(z, z, torch.tensor([0]), alpha=1.0))  # identical: no KL
    0.0
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
    temperature = float(temperature)
    if not temperature > 0.0 or temperature == float("inf"):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}.")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'batchmean' or 'mean', got {reduction!r}.")
    _check_logits_and_target(student_logits, y, "student_logits")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits {tuple(teacher_logits.shape)} and student_logits "
                         f"{tuple(student_logits.shape)} must have the same shape.")
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    # KL computed explicitly: F.kl_div's "mean" is deprecated and will change meaning.
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
    kl = kl / (kl.new_tensor(student_logits.shape[0]) if reduction == "batchmean"
               else kl.new_tensor(student_logits.numel()))
    ce = weighted_cross_entropy(student_logits, y, class_weight)
    return alpha * temperature**2 * kl + (1.0 - alpha) * ce


def attention_map(feature: torch.Tensor, normalize: str | None = "sample",
                  eps: float = 1e-8) -> torch.Tensor:
    """Activation-based attention map ``A = sum over channels of F^2``.

    Parameters
    ----------
    feature : Tensor, shape (batch, channels, time)
        A feature map.
    normalize : {"sample", "batch"} or None
        ``"sample"``: each sample's map divided by its L2 norm over time (Zagoruyko &
        Komodakis). ``"batch"``: each time point divided by the L2 norm across the
        batch (the paper's code, ``F.normalize(A, dim=0)``; with a batch of one every
        non-zero entry becomes 1). ``None``: no normalisation.
    eps : float
        Lower bound of the norm (avoids a division by zero for all-zero maps).

    Returns
    -------
    att : Tensor, shape (batch, time)

    Raises
    ------
    ValueError
        If ``feature`` is not 3-D or ``normalize`` is unknown.

    Examples
    --------
    >>> import torch
    >>> f = torch.tensor([[[3.0, 0.0], [0.0, 4.0]]])  # (1, 2, 2)
    >>> attention_map(f, normalize=None)
    tensor([[ 9., 16.]])
    """
    _check_normalize(normalize)
    if feature.ndim != 3:
        raise ValueError(f"feature must have shape (batch, channels, time), "
                         f"got {tuple(feature.shape)}.")
    return _normalize_map(feature.pow(2).sum(dim=1), normalize, eps)


def attention_transfer_loss(
    teacher_features: Sequence[torch.Tensor],
    student_features: Sequence[torch.Tensor],
    distance: str = "l1",
    normalize: str | None = "sample",
    eps: float = 1e-8,
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Attention-transfer loss between matched teacher and student feature maps.

    For each pair ``(F_t, F_s)`` (matched by position): ``A = sum_c F^2`` of each;
    if the time lengths differ, the longer map is shortened to the shorter length by
    adaptive average pooling (each output point is the mean over its span of input
    points, so a map of 8 points against one of 4 is compared as pair means); then both
    are normalised (``normalize``) and compared:

    - ``"l1"``: ``mean |A_t - A_s|`` over batch and time (the paper's code);
    - ``"l2"``: ``mean (A_t - A_s)^2`` over batch and time, the original AT code's
      ``(at(x) - at(y)).pow(2).mean()``; the AT paper writes the (unsquared) L2 norm
      of the difference per sample, which has the same minimiser.

    The loss is the mean over pairs (or the ``weights``-weighted mean). Channel counts
    may differ between teacher and student since ``A`` sums over channels. The teacher
    maps are detached.

    Parameters
    ----------
    teacher_features, student_features : sequence of Tensor, shapes (batch, C_i, T_i)
        Matched feature maps, in the same order.
    distance : {"l1", "l2"}
        Distance between normalised maps.
    normalize : {"sample", "batch"} or None
        See :func:`attention_map`.
    eps : float
        Lower bound of the norms.
    weights : sequence of float or None
        Non-negative weight of each pair (e.g. from :func:`feature_group_weights` for
        the paper's mean over layer groups); ``None`` weighs pairs equally.

    Returns
    -------
    loss : Tensor (scalar)

    Raises
    ------
    ValueError
        If the sequences are empty, differ in length, a map is not 3-D, batch sizes
        differ, or an option is unknown.

    Examples
    --------
    >>> import torch
    >>> f = [torch.randn(4, 8, 100)]
    >>> float(attention_transfer_loss(f, f))
    0.0
    """
    _check_distance(distance)
    _check_normalize(normalize)
    for name, seq in (("teacher_features", teacher_features),
                      ("student_features", student_features)):
        if isinstance(seq, (Mapping, torch.Tensor)) or not isinstance(seq, Sequence):
            raise ValueError(f"{name} must be a list of (batch, channels, time) tensors in "
                             f"matched order, got {type(seq).__name__}.")
    if len(teacher_features) != len(student_features):
        raise ValueError(f"Got {len(teacher_features)} teacher maps but "
                         f"{len(student_features)} student maps; they are matched by position.")
    if not teacher_features:
        raise ValueError("No feature maps to compare.")
    if weights is None:
        weights = [1.0] * len(teacher_features)
    weights = [float(w) for w in weights]
    if len(weights) != len(teacher_features) or any(not w >= 0 for w in weights) \
            or sum(weights) <= 0:
        raise ValueError(f"weights must be {len(teacher_features)} non-negative numbers "
                         f"with a positive sum, got {weights!r}.")

    total = None
    for i, (f_t, f_s, w) in enumerate(zip(teacher_features, student_features, weights)):
        if f_t.ndim != 3 or f_s.ndim != 3:
            raise ValueError(f"Pair {i}: feature maps must have shape (batch, channels, "
                             f"time), got {tuple(f_t.shape)} and {tuple(f_s.shape)}.")
        if f_t.shape[0] != f_s.shape[0]:
            raise ValueError(f"Pair {i}: teacher batch size {f_t.shape[0]} differs from "
                             f"student batch size {f_s.shape[0]}.")
        a_t = attention_map(f_t.detach(), normalize=None)
        a_s = attention_map(f_s, normalize=None)
        # Resample before normalising, so both maps are normalised over the same points.
        length = min(a_t.shape[1], a_s.shape[1])
        a_t = _normalize_map(_resample_map(a_t, length), normalize, eps)
        a_s = _normalize_map(_resample_map(a_s, length), normalize, eps)
        diff = a_t - a_s
        layer = diff.abs().mean() if distance == "l1" else diff.pow(2).mean()
        total = w * layer if total is None else total + w * layer
    return total / sum(weights)


def feature_group_weights(feature_names: Sequence[str],
                          feature_groups: Mapping[str, Sequence[str]]) -> list[float]:
    """Pair weights that give every group the same total weight.

    The paper's attention-transfer loss is the mean over layer groups (encoder,
    bottleneck, decoder, decoder end, dense) of the mean within each group. Passing
    these weights to :func:`attention_transfer_loss` reproduces it. A name in no group
    counts as a group of its own.

    Parameters
    ----------
    feature_names : sequence of str
        The matched feature names, in the order of the feature lists.
    feature_groups : mapping of str to sequence of str
        Group name -> member feature names (e.g. ``UTime(...).feature_groups``).

    Returns
    -------
    weights : list of float
        One weight per name; they sum to 1.

    Examples
    --------
    >>> groups = {"encoder": ("enc1", "enc2"), "bottleneck": ("bottleneck",)}
    >>> feature_group_weights(["enc1", "enc2", "bottleneck"], groups)
    [0.25, 0.25, 0.5]
    """
    names = list(feature_names)
    if not names:
        raise ValueError("feature_names is empty.")
    if len(set(names)) != len(names):
        raise ValueError(f"feature_names has duplicates: {names}.")
    group_of = {}
    for group, members in feature_groups.items():
        for member in members:
            group_of.setdefault(member, group)
    keys = [group_of.get(name, ("__own__", name)) for name in names]
    n_groups = len(set(keys))
    sizes = {key: keys.count(key) for key in set(keys)}
    return [1.0 / (n_groups * sizes[key]) for key in keys]


# --------------------------------------------------------------------------- criteria
class ClassificationLoss(nn.Module):
    """Criterion: :func:`weighted_cross_entropy` (for skorch's ``criterion``).

    Parameters
    ----------
    class_weight : array-like of shape (n_classes,) or None
        Class weights, kept as a (non-persistent) buffer so they follow ``.to(device)``.
    """

    def __init__(self, class_weight=None) -> None:
        super().__init__()
        self.register_buffer("class_weight", _check_class_weight_init(class_weight),
                             persistent=False)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return weighted_cross_entropy(logits, y, self.class_weight)


class DistillationLoss(nn.Module):
    """Criterion: :func:`distillation_loss`, or plain weighted CE without a teacher.

    Parameters
    ----------
    alpha, temperature, class_weight, reduction
        See :func:`distillation_loss`.
    """

    def __init__(self, alpha: float = 0.5, temperature: float = 1.0, class_weight=None,
                 reduction: str = "batchmean") -> None:
        super().__init__()
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
        if not float(temperature) > 0.0 or float(temperature) == float("inf"):
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}.")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be 'batchmean' or 'mean', got {reduction!r}.")
        self.alpha, self.temperature, self.reduction = float(alpha), float(temperature), reduction
        self.register_buffer("class_weight", _check_class_weight_init(class_weight),
                             persistent=False)

    def forward(self, logits: torch.Tensor, y: torch.Tensor,
                teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        if teacher_logits is None:
            return weighted_cross_entropy(logits, y, self.class_weight)
        return distillation_loss(logits, teacher_logits, y, alpha=self.alpha,
                                 temperature=self.temperature, class_weight=self.class_weight,
                                 reduction=self.reduction)


class AttentionTransferLoss(nn.Module):
    """Criterion: :func:`attention_transfer_loss` over lists of matched maps.

    Parameters
    ----------
    distance, normalize, eps, weights
        See :func:`attention_transfer_loss`.
    """

    def __init__(self, distance: str = "l1", normalize: str | None = "sample",
                 eps: float = 1e-8, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        _check_distance(distance)
        _check_normalize(normalize)
        self.distance, self.normalize, self.eps = distance, normalize, float(eps)
        self.weights = None if weights is None else [float(w) for w in weights]

    def forward(self, teacher_features: Sequence[torch.Tensor],
                student_features: Sequence[torch.Tensor]) -> torch.Tensor:
        return attention_transfer_loss(teacher_features, student_features,
                                       distance=self.distance, normalize=self.normalize,
                                       eps=self.eps, weights=self.weights)


# --------------------------------------------------------------------------- features
_FD_DISTANCES = ("l2", "l1", "cosine")


def feature_distillation_loss(student_embedding: torch.Tensor, teacher_embedding: torch.Tensor,
                              projection: nn.Module | None = None, *,
                              distance: str = "l2") -> torch.Tensor:
    """FitNets-style feature distillation: the projected student embedding vs the teacher's.

    ``mean_i d(P s_i, t_i)`` over the rows (epochs) ``i``, with ``P`` a learned
    projection (Romero et al. 2015, "FitNets"), ``d`` the mean squared difference over
    the dimensions (``"l2"``), the mean absolute difference (``"l1"``) or ``1 - cos``
    (``"cosine"``).

    Parameters
    ----------
    student_embedding : Tensor, shape (n_rows, d_student)
    teacher_embedding : Tensor, shape (n_rows, d_teacher)
        Treated as a constant target (no gradient).
    projection : nn.Module or None
        Maps ``d_student`` to ``d_teacher`` (e.g. ``nn.Linear``); ``None``: identity.
    distance : {"l2", "l1", "cosine"}, default="l2"

    Returns
    -------
    loss : Tensor (scalar)

    Examples
    --------
    >>> import torch
    >>> s, t = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 4.0]])
    >>> float(feature_distillation_loss(s, t))  # ((1-1)^2 + (2-4)^2) / 2
    2.0
    """
    if distance not in _FD_DISTANCES:
        raise ValueError(f"distance must be one of {list(_FD_DISTANCES)}, got {distance!r}.")
    if student_embedding.ndim != 2 or teacher_embedding.ndim != 2 or (
            student_embedding.shape[0] != teacher_embedding.shape[0]):
        raise ValueError(
            f"Embeddings must be (n_rows, dim) with the same rows, got "
            f"{tuple(student_embedding.shape)} and {tuple(teacher_embedding.shape)}.")
    projected = student_embedding if projection is None else projection(student_embedding)
    target = teacher_embedding.detach()
    if projected.shape != target.shape:
        raise ValueError(f"The projected student embedding {tuple(projected.shape)} does not "
                         f"match the teacher's {tuple(target.shape)}.")
    if projected.shape[0] == 0:
        return projected.sum() * 0.0
    if distance == "l2":
        return ((projected - target) ** 2).mean()
    if distance == "l1":
        return (projected - target).abs().mean()
    return (1.0 - F.cosine_similarity(projected, target, dim=1)).mean()


class FeatureDistillationLoss(nn.Module):
    """Criterion: :func:`feature_distillation_loss` with its own learned projection.

    The projection (an ``nn.Linear(student_dim, teacher_dim)``) belongs to the
    criterion, so skorch trains it with the student (criterion parameters are
    learnable parameters of the net) and it is dropped after the pre-training stage.

    Parameters
    ----------
    student_dim, teacher_dim : int
        Embedding sizes.
    distance : {"l2", "l1", "cosine"}, default="l2"
    """

    def __init__(self, student_dim: int, teacher_dim: int, distance: str = "l2") -> None:
        super().__init__()
        if distance not in _FD_DISTANCES:
            raise ValueError(f"distance must be one of {list(_FD_DISTANCES)}, got "
                             f"{distance!r}.")
        self.projection = nn.Linear(int(student_dim), int(teacher_dim))
        self.distance = distance

    def forward(self, student_embedding: torch.Tensor,
                teacher_embedding: torch.Tensor) -> torch.Tensor:
        return feature_distillation_loss(student_embedding, teacher_embedding,
                                         self.projection, distance=self.distance)
