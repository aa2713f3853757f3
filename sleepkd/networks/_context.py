"""A student that stages the centre epoch of a window of neighbouring epochs."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from ._blocks import (ConvBlock, DoubleConvBlock, check_input, check_int_tuple,
                      check_network_args, check_positive_int, init_conv)

#: With ``pools="auto"`` each epoch's last encoder map keeps about this many samples.
AUTO_POOL_TARGET_LENGTH = 8
#: Length of one scored epoch in seconds (the AASM / R&K standard).
EPOCH_LENGTH = 30.0


def auto_pools(epoch_length: int, n_levels: int,
               target_length: int = AUTO_POOL_TARGET_LENGTH) -> tuple[int, ...]:
    """Equal pool sizes that bring ``epoch_length`` down to about ``target_length``.

    Parameters
    ----------
    epoch_length : int
        Samples per epoch.
    n_levels : int
        Number of encoder levels.
    target_length : int
        Wanted length of the last encoder map.

    Returns
    -------
    pools : tuple of int
        ``n_levels`` equal pool sizes (1 = no pooling) whose product is at most
        ``epoch_length``.

    Examples
    --------
    >>> auto_pools(3000, 4), auto_pools(120, 4), auto_pools(6, 3)
    ((4, 4, 4, 4), (2, 2, 2, 2), (1, 1, 1))
    """
    factor = max(1, round((epoch_length / target_length) ** (1.0 / n_levels)))
    while factor > 1 and factor**n_levels > epoch_length:
        factor -= 1
    return (factor,) * n_levels


class _TemporalConvStage(nn.Module):
    """Residual dilated convolutions over the epoch axis (a small TCN)."""

    def __init__(self, in_features: int, width: int, n_layers: int) -> None:
        super().__init__()
        self.proj = nn.Conv1d(in_features, width, kernel_size=1)
        init_conv(self.proj)
        self.layers = nn.ModuleList(
            ConvBlock(width, width, kernel_size=3, dilation=2**i) for i in range(n_layers)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: (batch, n_epochs, features)
        z = self.proj(z.transpose(1, 2))
        for layer in self.layers:
            z = z + layer(z)
        return z.transpose(1, 2)


class _GRUStage(nn.Module):
    """Bidirectional GRU over the epoch axis."""

    def __init__(self, in_features: int, width: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.gru = nn.GRU(in_features, width, num_layers=n_layers, batch_first=True,
                          bidirectional=True, dropout=dropout if n_layers > 1 else 0.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.gru(z)[0]


def _samples_per_epoch(n_times: int, n_epochs: int, n_context: int, sfreq: float | None,
                       epoch_seconds) -> int:
    """Samples per epoch: from ``sfreq * epoch_seconds``, checked against ``n_times``
    (or ``n_times / n_epochs`` without ``sfreq``)."""
    if isinstance(epoch_seconds, bool) or not isinstance(epoch_seconds, numbers.Real) \
            or not math.isfinite(epoch_seconds) or epoch_seconds <= 0:
        raise ValueError(f"epoch_length must be a positive number of seconds, got "
                         f"{epoch_seconds!r}.")
    if n_times % n_epochs:
        raise ValueError(f"n_times={n_times} is not a multiple of 2 * n_context + 1 = "
                         f"{n_epochs} (n_context={n_context} epochs on each side).")
    if sfreq is None:
        return n_times // n_epochs
    exact = sfreq * epoch_seconds
    length = round(exact)
    if length < 1 or abs(exact - length) > 1e-6 * max(1.0, exact):
        raise ValueError(f"sfreq * epoch_length = {sfreq:g} Hz x {epoch_seconds:g} s = "
                         f"{exact:g} is not a whole number of samples per epoch.")
    if n_times != n_epochs * length:
        found = f"{n_times / length:g}"
        raise ValueError(
            f"n_times={n_times} does not match n_context={n_context}: "
            f"{n_epochs} epochs (2 * n_context + 1) of {length} samples "
            f"({sfreq:g} Hz x {epoch_seconds:g} s) make n_times={n_epochs * length}, but "
            f"the input holds {found} epochs of {length} samples. Build the input with "
            f"the same context as the network (add_context(..., n_context)) or set "
            f"n_context to match it.")
    return length


class ContextNet(nn.Module):
    """Per-epoch conv encoder + sequence model over ``2 * n_context + 1`` epochs.

    The input is the scored epoch with ``n_context`` neighbouring epochs on each side,
    concatenated in time: ``(batch, n_chans, (2 * n_context + 1) * L)``. A shared
    encoder (U-Time-style levels: two "same"-padded ``Conv1d -> ReLU -> BatchNorm1d``
    blocks and a max-pool) runs on every epoch; each epoch's last map is averaged over
    time into a vector; a bidirectional GRU (or a dilated temporal-convolution stage)
    runs over the epoch vectors; the centre epoch's output gives the logits.

    Heart-rate based staging needs minutes of context (a 4-Hz heart-rate series has
    only 120 samples per epoch), hence this architecture.

    Parameters
    ----------
    n_chans : int
        Number of input channels.
    n_outputs : int
        Number of classes.
    n_times : int
        Input length, ``(2 * n_context + 1) * L`` for epochs of ``L`` samples.
    sfreq : float or None
        Sampling rate of the input in Hz. When given, each epoch must hold exactly
        ``L = sfreq * epoch_length`` samples, so an input built with another context
        (e.g. 9 epochs of 120 samples for ``n_context=2``) is refused rather than
        read as epochs of the wrong length. ``None`` (e.g. feature rows, which have
        no sampling rate): ``L = n_times / (2 * n_context + 1)`` and only the
        divisibility can be checked; pass ``sfreq`` (the estimators' ``sfreq``
        parameter) to have the input length checked.
    n_context : int
        Epochs of context on each side of the scored epoch.
    epoch_length : float
        Length of one epoch in seconds (used with ``sfreq`` only).
    widths : sequence of int
        Encoder channels per level.
    pools : "auto" or sequence of int
        Max-pool sizes after each level. ``"auto"`` picks equal sizes that leave about
        8 samples per epoch (see :func:`auto_pools`): ``(4, 4, 4, 4)`` for 3000 samples,
        ``(2, 2, 2, 2)`` for 120.
    kernel_size : int
        Encoder kernel size.
    dilation : int
        Encoder dilation.
    sequence : {"gru", "tcn"}
        The sequence stage over epochs.
    sequence_width : int
        GRU hidden size per direction, or TCN channels.
    sequence_layers : int or None
        GRU layers (default 1) or TCN layers (default: the fewest whose receptive field
        covers all ``2 * n_context + 1`` epochs).
    dropout : float
        Dropout before the output layer (and between GRU layers).

    Attributes
    ----------
    feature_names : tuple of str
        ``enc1..encN``: each encoder level's output after its pool, for the CENTRE epoch
        only, so the maps align in time with a teacher that sees only the scored epoch.
    n_epochs_in_window : int
        ``2 * n_context + 1``.
    samples_per_epoch : int
        ``L``: ``sfreq * epoch_length``, or ``n_times / n_epochs_in_window`` without
        ``sfreq``.
    min_times : int
        The shortest accepted input, ``n_epochs_in_window * prod(pools)``.

    Raises
    ------
    ValueError
        If ``n_times`` is not a multiple of ``2 * n_context + 1``, differs from
        ``(2 * n_context + 1) * sfreq * epoch_length`` when ``sfreq`` is given, an
        epoch is shorter than ``prod(pools)``, or an argument is invalid.

    Examples
    --------
    >>> import torch
    >>> net = ContextNet(n_chans=1, n_outputs=4, n_times=9 * 120, sfreq=4, n_context=4)
    >>> logits, feats = net(torch.randn(2, 1, 9 * 120), return_features=True)
    >>> logits.shape, feats["enc1"].shape
    (torch.Size([2, 4]), torch.Size([2, 16, 60]))
    """

    supports_attention: bool = True

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float | None = None,
        *,
        n_context: int = 2,
        epoch_length: float = EPOCH_LENGTH,
        widths: Sequence[int] = (16, 32, 64, 128),
        pools: str | Sequence[int] = "auto",
        kernel_size: int = 5,
        dilation: int = 2,
        sequence: str = "gru",
        sequence_width: int = 64,
        sequence_layers: int | None = None,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        n_chans, n_outputs, n_times, sfreq = check_network_args(n_chans, n_outputs, n_times, sfreq)
        n_context = check_positive_int(n_context, "n_context", minimum=0)
        n_epochs = 2 * n_context + 1
        epoch_length_samples = _samples_per_epoch(n_times, n_epochs, n_context, sfreq,
                                                  epoch_length)
        widths = check_int_tuple(widths, "widths")
        if isinstance(pools, str):
            if pools != "auto":
                raise ValueError(f"pools must be 'auto' or a sequence of ints, got {pools!r}.")
            pools = auto_pools(epoch_length_samples, len(widths))
        pools = check_int_tuple(pools, "pools")
        if len(pools) != len(widths):
            raise ValueError(f"widths and pools must have the same length, got {len(widths)} "
                             f"widths and {len(pools)} pools.")
        min_epoch = math.prod(pools)
        if epoch_length_samples < min_epoch:
            raise ValueError(
                f"epochs of {epoch_length_samples} samples are too short for pools {pools}: "
                f"ContextNet needs at least {min_epoch} samples per epoch, i.e. n_times >= "
                f"{min_epoch * n_epochs} for n_context={n_context}.")
        if sequence not in ("gru", "tcn"):
            raise ValueError(f"sequence must be 'gru' or 'tcn', got {sequence!r}.")
        sequence_width = check_positive_int(sequence_width, "sequence_width")
        if sequence_layers is None:
            # TCN: layers with dilations 1, 2, 4, ... see 2**n_layers - 1 epochs each side
            sequence_layers = 1 if sequence == "gru" else \
                max(1, math.ceil(math.log2(n_context + 1)))
        sequence_layers = check_positive_int(sequence_layers, "sequence_layers")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")

        self.n_chans, self.n_outputs, self.n_times, self.sfreq = n_chans, n_outputs, n_times, sfreq
        self.n_context, self.n_epochs_in_window = n_context, n_epochs
        self.epoch_length, self.samples_per_epoch = float(epoch_length), epoch_length_samples
        self.widths, self.pools = widths, pools
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")
        self.dilation = check_positive_int(dilation, "dilation")
        self.sequence = sequence
        self.min_times = min_epoch * n_epochs

        in_widths = (n_chans,) + widths[:-1]
        self.encoder = nn.ModuleList(
            DoubleConvBlock(c_in, c_out, self.kernel_size, self.dilation)
            for c_in, c_out in zip(in_widths, widths)
        )
        self.pooling = nn.ModuleList(nn.MaxPool1d(p) for p in pools)
        if sequence == "gru":
            self.sequence_stage = _GRUStage(widths[-1], sequence_width, sequence_layers, dropout)
            out_features = 2 * sequence_width
        else:
            self.sequence_stage = _TemporalConvStage(widths[-1], sequence_width, sequence_layers)
            out_features = sequence_width
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(out_features, n_outputs)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the (centre-epoch) encoder maps, in the order they are returned."""
        return tuple(f"enc{i}" for i in range(1, len(self.widths) + 1))

    @property
    def feature_groups(self) -> dict[str, tuple[str, ...]]:
        """One group, ``encoder``, holding every feature map."""
        return {"encoder": self.feature_names}

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """Compute the centre epoch's logits (and its encoder maps).

        Parameters
        ----------
        x : Tensor, shape (batch, n_chans, (2 * n_context + 1) * L)
            Windows of consecutive epochs, the scored one in the middle.
        return_features : bool
            Also return the centre epoch's encoder maps.

        Returns
        -------
        logits : Tensor, shape (batch, n_outputs)
        features : dict of str to Tensor
            Only with ``return_features=True``: ``enc1..encN`` -> (batch, channels,
            time) maps of the centre epoch.
        """
        name = type(self).__name__
        check_input(x, self.n_chans, self.min_times, name)
        batch, n_epochs = x.shape[0], self.n_epochs_in_window
        if x.shape[-1] % n_epochs:
            raise ValueError(f"{name} expects n_times to be a multiple of {n_epochs} "
                             f"(2 * n_context + 1), got {x.shape[-1]}.")
        if self.sfreq is not None and x.shape[-1] != n_epochs * self.samples_per_epoch:
            raise ValueError(
                f"{name} expects {n_epochs} epochs of {self.samples_per_epoch} samples "
                f"(n_times={n_epochs * self.samples_per_epoch}), got {x.shape[-1]} samples.")
        # (batch, chans, n_epochs * L) -> (batch * n_epochs, chans, L), epochs in order.
        z = x.reshape(batch, self.n_chans, n_epochs, -1).transpose(1, 2)
        z = z.reshape(batch * n_epochs, self.n_chans, -1)
        features: dict[str, torch.Tensor] = {}
        for i, (level, pool) in enumerate(zip(self.encoder, self.pooling), start=1):
            z = pool(level(z))
            if return_features:
                features[f"enc{i}"] = z.reshape(batch, n_epochs, *z.shape[1:])[:, self.n_context]
        epoch_vectors = z.mean(dim=-1).reshape(batch, n_epochs, -1)
        centre = self.sequence_stage(epoch_vectors)[:, self.n_context]
        logits = self.classifier(self.dropout(centre))
        if return_features:
            return logits, features
        return logits
