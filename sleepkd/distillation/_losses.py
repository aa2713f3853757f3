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
  original AT code);
- decoupled knowledge distillation (DKD, Zhao et al. 2022): the soft-label KL split
  into a target-class part (target vs the rest) and a non-target part (the
  distribution among the other classes), weighted separately;
- feature distillation (FitNets, Romero et al. 2015): a per-epoch student embedding
  mapped by a learned projection onto the teacher's embedding;
- teacher ensembles: several teachers' logits averaged into one soft label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

_NORMALIZE = ("sample", "batch", None)
_DISTANCES = ("l1", "l2")
_REDUCTIONS = ("batchmean", "mean")
_FD_DISTANCES = ("l2", "l1", "cosine")
_TEACHER_NORMALIZE = (None, "standardize")
_ENSEMBLE_MODES = ("probs", "logits")


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


def _check_temperature(temperature) -> float:
    temperature = float(temperature)
    if not temperature > 0.0 or temperature == float("inf"):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}.")
    return temperature


def _check_dkd_weights(alpha_tckd, beta_nckd) -> tuple[float, float]:
    out = []
    for name, value in (("alpha_tckd", alpha_tckd), ("beta_nckd", beta_nckd)):
        value = float(value)
        if not 0.0 <= value < float("inf"):
            raise ValueError(f"{name} must be a non-negative finite number, got {value!r}.")
        out.append(value)
    return out[0], out[1]


def _check_fd_options(distance, teacher_normalize) -> None:
    if distance not in _FD_DISTANCES:
        raise ValueError(f"distance must be 'l2', 'l1' or 'cosine', got {distance!r}.")
    if teacher_normalize not in _TEACHER_NORMALIZE:
        raise ValueError(f"teacher_normalize must be None or 'standardize', "
                         f"got {teacher_normalize!r}.")


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
    allow_unlabelled: bool = False,
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
    allow_unlabelled : bool, default=False
        Accept rows with ``y < 0`` (no label, e.g. unscored epochs): they enter the
        distillation term only, which is averaged over all rows, while the
        cross-entropy is averaged over the labelled rows (0 when there are none).
        With every row labelled the loss is the same as without this option.

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
    labelled = None
    if allow_unlabelled:
        labelled = y >= 0
        _check_logits_and_target(student_logits, torch.where(labelled, y, 0),
                                 "student_logits")
    else:
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
    if labelled is None:
        ce = weighted_cross_entropy(student_logits, y, class_weight)
    elif bool(labelled.any()):
        ce = weighted_cross_entropy(student_logits[labelled], y[labelled], class_weight)
    else:  # no label in the batch: the soft labels alone
        ce = student_logits.sum() * 0.0
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


def decoupled_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y: torch.Tensor,
    *,
    alpha_tckd: float = 1.0,
    beta_nckd: float = 8.0,
    temperature: float = 4.0,
) -> torch.Tensor:
    """Decoupled knowledge distillation (DKD, Zhao et al., CVPR 2022).

    With ``p = softmax(z / T)`` for teacher and student and ``t = y_i`` the target
    class of sample ``i``:

    - target-class KD, a KL between two-class distributions (target vs all other
      classes): ``TCKD_i = KL([p_t[t], 1 - p_t[t]] || [p_s[t], 1 - p_s[t]])``;
    - non-target-class KD, a KL between the distributions among the non-target
      classes, renormalised: ``q[k] = p[k] / (1 - p[t])`` for ``k != t``,
      ``NCKD_i = KL(q_t || q_s)``;

    ``loss = T^2 * mean_i (alpha_tckd * TCKD_i + beta_nckd * NCKD_i)``.

    The classical KL decomposes as ``KL(p_t || p_s) = TCKD + (1 - p_t[t]) * NCKD``:
    plain KD ties the non-target weight to the teacher's confidence, which DKD frees.
    The paper's defaults are ``alpha_tckd = 1``, ``beta_nckd = 8`` and ``T = 4``
    (CIFAR-100); with two classes ``NCKD`` is 0. No cross-entropy is included (see
    :class:`DecoupledDistillationLoss`); the teacher logits are detached. Computed
    from log-softmax values, so very confident teachers stay finite.

    Parameters
    ----------
    student_logits : Tensor, shape (batch, n_classes)
        Student scores ``z_s``.
    teacher_logits : Tensor, shape (batch, n_classes)
        Teacher scores ``z_t`` (or log-probabilities, e.g. from
        :func:`average_teacher_logits`).
    y : Tensor of int, shape (batch,)
        Class indices (the target class of each sample).
    alpha_tckd : float >= 0, default=1.0
        Weight of the target-class term.
    beta_nckd : float >= 0, default=8.0
        Weight of the non-target-class term.
    temperature : float > 0, default=4.0
        Softmax temperature ``T``.

    Returns
    -------
    loss : Tensor (scalar)

    Raises
    ------
    ValueError
        If a weight is negative, the temperature is not positive, there are fewer than
        two classes, or the shapes do not match.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[2.0, 0.0, -1.0]])
    >>> float(decoupled_kd_loss(z, z, torch.tensor([0])))  # identical: no divergence
    0.0
    """
    alpha_tckd, beta_nckd = _check_dkd_weights(alpha_tckd, beta_nckd)
    temperature = _check_temperature(temperature)
    _check_logits_and_target(student_logits, y, "student_logits")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher_logits {tuple(teacher_logits.shape)} and student_logits "
                         f"{tuple(student_logits.shape)} must have the same shape.")
    if student_logits.shape[1] < 2:
        raise ValueError("Decoupled KD needs at least two classes, got "
                         f"{student_logits.shape[1]}.")
    target = F.one_hot(y.long(), student_logits.shape[1]).bool()

    def parts(logits):
        log_p = F.log_softmax(logits / temperature, dim=1)
        log_target = log_p.gather(1, y.long().view(-1, 1)).squeeze(1)  # log p[t]
        log_rest = torch.logsumexp(log_p.masked_fill(target, float("-inf")), dim=1)
        log_q = log_p - log_rest.unsqueeze(1)  # renormalised over non-targets
        return log_target, log_rest, log_q

    s_target, s_rest, s_q = parts(student_logits)
    t_target, t_rest, t_q = parts(teacher_logits.detach())
    tckd = (t_target.exp() * (t_target - s_target) + t_rest.exp() * (t_rest - s_rest))
    # target entries masked with where (not multiplied), so they add exactly 0
    nckd = torch.where(target, torch.zeros_like(t_q), t_q.exp() * (t_q - s_q)).sum(dim=1)
    per_sample = alpha_tckd * tckd + beta_nckd * nckd
    return temperature**2 * per_sample.mean()


def feature_distillation_loss(
    student_embedding: torch.Tensor,
    teacher_embedding: torch.Tensor,
    projection: nn.Module | None = None,
    *,
    distance: str = "l2",
    teacher_normalize: str | None = None,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Feature (embedding) distillation after FitNets (Romero et al. 2015).

    The student's per-epoch embedding ``s`` (batch x d_s) is mapped through a learned
    ``projection`` ``P`` (e.g. ``nn.Linear(d_s, d_t)``) and compared with the
    teacher's embedding ``t`` (batch x d_t), row by row:

    - ``"l2"``: ``mean over rows and dims of (P(s) - t)^2`` (FitNets' hint loss, as a
      mean rather than half a sum);
    - ``"l1"``: ``mean over rows and dims of |P(s) - t|``;
    - ``"cosine"``: ``mean over rows of 1 - cos(P(s), t)`` (scale-free).

    The teacher embedding is detached. ``teacher_normalize="standardize"`` first
    standardises every teacher dimension over the batch rows,
    ``(t - mean) / (std + eps)`` (population std), so dimensions of very different
    scales weigh alike; the default ``None`` keeps the teacher's values, since an
    affine projection already absorbs a global offset and scale, and batch statistics
    make the target depend on the batch's composition.

    Parameters
    ----------
    student_embedding : Tensor, shape (batch, d_s)
    teacher_embedding : Tensor, shape (batch, d_t)
    projection : nn.Module or None, default=None
        Maps ``(batch, d_s)`` to ``(batch, d_t)``; ``None`` is the identity (then
        ``d_s`` must equal ``d_t``).
    distance : {"l2", "l1", "cosine"}, default="l2"
    teacher_normalize : {None, "standardize"}, default=None
    eps : float, default=1e-8
        Added to the standard deviation, and lower bound of the norms in the cosine.

    Returns
    -------
    loss : Tensor (scalar)
        0 (still attached to the graph) when there are no rows, e.g. a batch of
        padding only.

    Raises
    ------
    ValueError
        If an embedding is not 2-D, the row counts differ, the projected width does
        not match the teacher's, or an option is unknown.

    Examples
    --------
    >>> import torch
    >>> e = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    >>> float(feature_distillation_loss(e, e.clone()))
    0.0
    """
    _check_fd_options(distance, teacher_normalize)
    for name, emb in (("student_embedding", student_embedding),
                      ("teacher_embedding", teacher_embedding)):
        if emb.ndim != 2:
            raise ValueError(f"{name} must have shape (batch, dim), got {tuple(emb.shape)}.")
    if student_embedding.shape[0] != teacher_embedding.shape[0]:
        raise ValueError(f"The embeddings must have the same rows (one per epoch), got "
                         f"{student_embedding.shape[0]} student and "
                         f"{teacher_embedding.shape[0]} teacher rows.")
    projected = student_embedding if projection is None else projection(student_embedding)
    target = teacher_embedding.detach()
    if projected.shape != target.shape:
        raise ValueError(f"The projected student embedding has shape {tuple(projected.shape)}"
                         f", the teacher's {tuple(target.shape)}; pass a projection to "
                         f"d_t = {target.shape[1]} dimensions.")
    if projected.shape[0] == 0:  # no rows (e.g. a batch of padding): 0, graph kept
        return projected.sum() * 0.0
    if teacher_normalize == "standardize":
        target = (target - target.mean(dim=0)) / (target.std(dim=0, unbiased=False) + eps)
    if distance == "cosine":
        return (1.0 - F.cosine_similarity(projected, target, dim=1, eps=eps)).mean()
    diff = projected - target
    return diff.abs().mean() if distance == "l1" else diff.pow(2).mean()


def average_teacher_logits(list_of_logits, *, mode: str = "probs", weights=None):
    """Soft labels of a teacher ensemble, as logits for the distillation losses.

    - ``"probs"``: ``log(sum_k w_k softmax(z_k))``, the log of the (weighted) mean
      class probabilities, computed as a log-sum-exp of log-softmax values; its
      softmax is the ensemble's mean probability (at ``T = 1``; at another
      temperature the loss sharpens or softens this mean);
    - ``"logits"``: ``sum_k w_k z_k``, the (weighted) mean of the logits (a
      geometric mean of the probabilities, renormalised).

    with ``w_k = 1 / n_teachers`` unless ``weights`` are given (normalised to sum
    to 1).

    Parameters
    ----------
    list_of_logits : sequence of array-like or Tensor, each (n_samples, n_classes)
        Each teacher's logits for the same rows, in the same class order.
    mode : {"probs", "logits"}, default="probs"
    weights : sequence of float or None, default=None
        Non-negative weight of each teacher, with a positive sum.

    Returns
    -------
    logits : Tensor or ndarray of shape (n_samples, n_classes)
        A Tensor when the inputs are Tensors, a float ndarray otherwise (in the
        inputs' floating dtype, float64 for integers).

    Raises
    ------
    ValueError
        If no logits are given, their shapes differ, they are not 2-D, or ``mode`` or
        ``weights`` are invalid.

    Examples
    --------
    >>> import numpy as np
    >>> z = average_teacher_logits([np.log([[0.2, 0.8]]), np.log([[0.6, 0.4]])])
    >>> np.round(np.exp(z), 6)
    array([[0.4, 0.6]])
    """
    if mode not in _ENSEMBLE_MODES:
        raise ValueError(f"mode must be 'probs' or 'logits', got {mode!r}.")
    if isinstance(list_of_logits, (torch.Tensor, np.ndarray, Mapping)) \
            or not isinstance(list_of_logits, Sequence) or not list_of_logits:
        raise ValueError("list_of_logits must be a non-empty list of (n_samples, "
                         "n_classes) logit arrays, one per teacher.")
    as_tensor = all(isinstance(z, torch.Tensor) for z in list_of_logits)
    if as_tensor:
        stack = torch.stack([z.detach() for z in list_of_logits]) if len(
            {tuple(z.shape) for z in list_of_logits}) == 1 else None
    else:
        arrays = [np.asarray(z) for z in list_of_logits]
        stack = None
        if len({a.shape for a in arrays}) == 1:
            dtype = np.result_type(*arrays)
            dtype = dtype if np.issubdtype(dtype, np.floating) else np.float64
            stack = torch.as_tensor(np.stack(arrays).astype(dtype))
    if stack is None:
        shapes = [tuple(np.shape(z)) for z in list_of_logits]
        raise ValueError(f"All teachers' logits must have the same shape, got {shapes}.")
    if stack.ndim != 3:
        raise ValueError(f"Each teacher's logits must have shape (n_samples, n_classes), "
                         f"got {tuple(stack.shape[1:])}.")
    n = stack.shape[0]
    if weights is None:
        w = torch.full((n,), 1.0 / n, dtype=stack.dtype)
    else:
        w = torch.as_tensor([float(v) for v in weights], dtype=stack.dtype)
        if w.numel() != n or not torch.all(torch.isfinite(w)) or torch.any(w < 0) \
                or float(w.sum()) <= 0:
            raise ValueError(f"weights must be {n} non-negative finite numbers with a "
                             f"positive sum, got {list(weights)!r}.")
        w = w / w.sum()
    w = w.to(stack.device).view(-1, 1, 1)
    if mode == "logits":
        out = (w * stack).sum(dim=0)
    else:
        log_p = F.log_softmax(stack, dim=2)
        # log sum_k w_k p_k; zero weights give -inf terms that logsumexp ignores
        out = torch.logsumexp(log_p + torch.log(w), dim=0)
    return out if as_tensor else out.numpy()


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
    soft_on_unscored : bool, default=False
        Night models: pass the unscored real epochs of a batch too (label ``-1``), so
        that the soft labels teach on them (``allow_unlabelled`` of
        :func:`distillation_loss`); padding stays out.
    """

    def __init__(self, alpha: float = 0.5, temperature: float = 1.0, class_weight=None,
                 reduction: str = "batchmean", soft_on_unscored: bool = False) -> None:
        super().__init__()
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
        if not float(temperature) > 0.0 or float(temperature) == float("inf"):
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}.")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be 'batchmean' or 'mean', got {reduction!r}.")
        self.alpha, self.temperature, self.reduction = float(alpha), float(temperature), reduction
        self.soft_on_unscored = bool(soft_on_unscored)
        self.register_buffer("class_weight", _check_class_weight_init(class_weight),
                             persistent=False)

    def forward(self, logits: torch.Tensor, y: torch.Tensor,
                teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        if teacher_logits is None:
            return weighted_cross_entropy(logits, y, self.class_weight)
        return distillation_loss(logits, teacher_logits, y, alpha=self.alpha,
                                 temperature=self.temperature, class_weight=self.class_weight,
                                 reduction=self.reduction,
                                 allow_unlabelled=self.soft_on_unscored)


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


class DecoupledDistillationLoss(nn.Module):
    """Criterion: :func:`decoupled_kd_loss` plus weighted CE, or CE without a teacher.

    ``weight * DKD(z_s, z_t, y) + (1 - weight) * CE(z_s, y)``, where ``CE`` is
    :func:`weighted_cross_entropy`. Called like :class:`DistillationLoss`:
    ``criterion(logits, y, teacher_logits)``; without ``teacher_logits`` it is the
    weighted CE alone. The paper's ``CE + DKD`` is ``weight = 0.5`` up to a factor
    of 2 (which Adam's step size ignores).

    Parameters
    ----------
    alpha_tckd, beta_nckd, temperature
        See :func:`decoupled_kd_loss`.
    weight : float in [0, 1], default=0.5
        Share of the DKD term (like ``alpha`` in :class:`DistillationLoss`).
    class_weight : array-like of shape (n_classes,) or None
        Class weights of the CE term.
    """

    def __init__(self, alpha_tckd: float = 1.0, beta_nckd: float = 8.0,
                 temperature: float = 4.0, weight: float = 0.5, class_weight=None) -> None:
        super().__init__()
        self.alpha_tckd, self.beta_nckd = _check_dkd_weights(alpha_tckd, beta_nckd)
        self.temperature = _check_temperature(temperature)
        if not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {weight!r}.")
        self.weight = float(weight)
        self.register_buffer("class_weight", _check_class_weight_init(class_weight),
                             persistent=False)

    def forward(self, logits: torch.Tensor, y: torch.Tensor,
                teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        ce = weighted_cross_entropy(logits, y, self.class_weight)
        if teacher_logits is None:
            return ce
        dkd = decoupled_kd_loss(logits, teacher_logits, y, alpha_tckd=self.alpha_tckd,
                                beta_nckd=self.beta_nckd, temperature=self.temperature)
        return self.weight * dkd + (1.0 - self.weight) * ce


class FeatureDistillationLoss(nn.Module):
    """Criterion: :func:`feature_distillation_loss` with its own learned projection.

    Owns ``projection = nn.Linear(student_dim, teacher_dim)``. Passed as a skorch
    ``criterion``, its parameters are trained with the student's: skorch's
    ``NeuralNet.get_all_learnable_params`` yields the criterion's parameters too, and
    the optimizer is built from them. The projection is only needed for the
    pre-training; the student alone runs afterwards.

    Called as ``criterion(student_embedding, teacher_embedding)``.

    Parameters
    ----------
    student_dim : int
        Width ``d_s`` of the student's embedding.
    teacher_dim : int
        Width ``d_t`` of the teacher's embedding.
    distance : {"l2", "l1", "cosine"}, default="l2"
    teacher_normalize : {None, "standardize"}, default=None
        See :func:`feature_distillation_loss`.
    bias : bool, default=True
        Whether the projection has a bias.
    """

    def __init__(self, student_dim: int, teacher_dim: int, distance: str = "l2",
                 teacher_normalize: str | None = None, bias: bool = True) -> None:
        super().__init__()
        _check_fd_options(distance, teacher_normalize)
        for name, dim in (("student_dim", student_dim), ("teacher_dim", teacher_dim)):
            if isinstance(dim, bool) or int(dim) != dim or int(dim) < 1:
                raise ValueError(f"{name} must be a positive integer, got {dim!r}.")
        self.distance, self.teacher_normalize = distance, teacher_normalize
        self.projection = nn.Linear(int(student_dim), int(teacher_dim), bias=bias)

    def forward(self, student_embedding: torch.Tensor,
                teacher_embedding: torch.Tensor) -> torch.Tensor:
        return feature_distillation_loss(student_embedding, teacher_embedding,
                                         self.projection, distance=self.distance,
                                         teacher_normalize=self.teacher_normalize)
