"""A whole-night heart-rate stager: convolutions over the night's heart rate, then
dilated residual blocks over epochs (after Sridhar et al. 2020)."""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn
from torch.nn import functional as F

from ._blocks import (check_dropout, check_int_tuple, check_network_args, check_positive_int,
                      check_sequence_input, init_conv)


class _ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of (batch, channels, time), per time step.

    Unlike BatchNorm or GroupNorm it never mixes time steps, so padded samples cannot
    leak into real ones through normalisation statistics.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class _ResidualBlock(nn.Module):
    """``z + Dropout(Norm(ReLU(Conv(Norm(ReLU(Conv(z)))))))`` with the mask after each conv."""

    def __init__(self, width: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv1 = nn.Conv1d(width, width, kernel_size, dilation=dilation, padding=pad)
        self.conv2 = nn.Conv1d(width, width, kernel_size, dilation=dilation, padding=pad)
        for conv in (self.conv1, self.conv2):
            init_conv(conv)
        self.norm1 = _ChannelNorm(width)
        self.norm2 = _ChannelNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, z: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = self.norm1(F.relu(self.conv1(z))) * keep
        h = self.dropout(h)
        h = self.norm2(F.relu(self.conv2(h))) * keep
        return (z + self.dropout(h)) * keep


class HeartRateTCN(nn.Module):
    """Whole-night sleep staging from heart rate with dilated residual convolutions.

    The design follows Sridhar et al. (2020, *npj Digital Medicine* 3:106, "Deep learning
    for automated sleep staging using instantaneous heart rate"): the night's
    instantaneous heart rate, resampled at 2 Hz (see
    :func:`sleepkd.signal._ihr.instantaneous_heart_rate`), is read as one long signal;
    convolutions with max-pooling bring it down to epoch resolution, and dilated
    residual blocks over the epochs give each epoch about an hour of context on either
    side before a per-epoch classifier. It is scaled down (the defaults have 44 k
    parameters; the paper's network is far larger) and regularised (dropout; train it
    with weight decay and augmentation) for small data sets such as the 14 nights of
    slpdb.

    - the epochs of each night are concatenated along time: ``(batch, n_chans,
      n_epochs * n_times)``;
    - stem: per entry of ``widths``, ``Conv1d(kernel_size, "same") -> ReLU -> LayerNorm
      (over channels) -> MaxPool1d(pools[i])``; ``prod(pools)`` must divide
      ``n_times``, so no pooling window straddles two epochs;
    - epoch pooling: the mean and the max of the remaining ``n_times / prod(pools)``
      samples of each epoch, concatenated, and a 1x1 convolution to ``hidden``
      channels;
    - context: ``len(dilations)`` residual blocks at epoch resolution, each two
      ``Conv1d(hidden, hidden, block_kernel, dilation) -> ReLU -> LayerNorm`` with
      dropout, summed onto the block's input (with ``block_kernel=3`` and dilations
      1..32 each epoch sees 126 epochs, about an hour, on either side);
    - head: dropout and a linear layer per epoch (logits, no softmax).

    Padding never leaks: the input is set to zero at masked epochs (with
    :func:`torch.where`, so even NaN padding is harmless) and every temporal layer's
    output is multiplied by the mask, upsampled to that layer's resolution. Masked
    stretches are therefore exact zeros, the same as the convolutions' own zero padding
    past the end of a night, and normalisation is per time step: a night's outputs at its
    real epochs are the same (up to float error) alone or in a padded batch, whatever
    the padded values are, in training mode too (except for dropout's randomness).
    Logits at masked epochs are zero. The mask may be False anywhere (e.g. epochs
    without usable heart rate inside a night); those epochs then read as zeros.

    Parameters
    ----------
    n_chans : int
        Input channels (e.g. 1: standardised heart rate).
    n_outputs : int
        Number of classes.
    n_times : int
        Samples of ONE 30-s epoch per channel (60 at 2 Hz); a multiple of
        ``prod(pools)``.
    sfreq : float or None
        Sampling rate in Hz (stored for reference).
    widths : sequence of int, default (8, 16, 32)
        Stem channels per level.
    pools : sequence of int, default (2, 2, 3)
        Max-pool size after each stem level (same length as ``widths``).
    kernel_size : int, default 5
        Stem convolution kernel size (odd).
    hidden : int, default 32
        Channels of the residual blocks.
    dilations : sequence of int, default (1, 2, 4, 8, 16, 32)
        Dilation of each residual block (over epochs).
    block_kernel : int, default 3
        Kernel size of the residual blocks (odd).
    dropout : float, default 0.3
        Dropout in the residual blocks and before the head.
    augment_scale : (float, float) or None, default None
        Training only: every night's input multiplied by a factor drawn uniformly from
        this range (e.g. ``(0.8, 1.25)``); ``None``: off.
    augment_offset : float, default 0.0
        Training only: a shift drawn uniformly from ``[-augment_offset,
        augment_offset]`` added to every night's input.
    augment_noise : float, default 0.0
        Training only: Gaussian noise of this standard deviation added per sample.

    Attributes
    ----------
    sequence : bool
        True: the network reads whole nights.
    supports_attention : bool
        False: no attention-transfer maps.
    feature_names : tuple of str
        ``("embedding",)``, the per-epoch features before the head.

    Examples
    --------
    >>> import torch
    >>> net = HeartRateTCN(n_chans=1, n_outputs=4, n_times=60, sfreq=2.0).eval()
    >>> x = torch.randn(2, 100, 1, 60)
    >>> mask = torch.arange(100) < torch.tensor([[100], [70]])
    >>> net(x, mask).shape
    torch.Size([2, 100, 4])
    """

    sequence = True
    supports_attention = False

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float | None = None,
                 widths=(8, 16, 32), pools=(2, 2, 3), kernel_size: int = 5,
                 hidden: int = 32, dilations=(1, 2, 4, 8, 16, 32), block_kernel: int = 3,
                 dropout: float = 0.3, augment_scale=None, augment_offset: float = 0.0,
                 augment_noise: float = 0.0) -> None:
        super().__init__()
        self.n_chans, self.n_outputs, self.n_times, self.sfreq = check_network_args(
            n_chans, n_outputs, n_times, sfreq)
        self.widths = check_int_tuple(widths, "widths")
        self.pools = check_int_tuple(pools, "pools")
        if len(self.pools) != len(self.widths):
            raise ValueError(f"pools ({len(self.pools)} entries) must have one entry per "
                             f"level of widths ({len(self.widths)}).")
        if self.n_times % math.prod(self.pools):
            raise ValueError(f"n_times={self.n_times} must be a multiple of prod(pools)="
                             f"{math.prod(self.pools)}, so that pooling stays inside epochs.")
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")
        self.block_kernel = check_positive_int(block_kernel, "block_kernel")
        for name, k in (("kernel_size", self.kernel_size), ("block_kernel", self.block_kernel)):
            if k % 2 == 0:
                raise ValueError(f"{name} must be odd (symmetric 'same' padding), got {k}.")
        self.hidden = check_positive_int(hidden, "hidden")
        self.dilations = check_int_tuple(dilations, "dilations")
        self.dropout_rate = check_dropout(dropout)
        if augment_scale is not None:
            low, high = (float(v) for v in augment_scale)
            if not 0 < low <= high:
                raise ValueError(f"augment_scale must be (low, high) with 0 < low <= high, "
                                 f"got {augment_scale!r}.")
            augment_scale = (low, high)
        for name, value in (("augment_offset", augment_offset),
                            ("augment_noise", augment_noise)):
            if not (isinstance(value, numbers.Real) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
        self.augment_scale = augment_scale
        self.augment_offset, self.augment_noise = float(augment_offset), float(augment_noise)

        self.stem = nn.ModuleList()
        self.stem_norms = nn.ModuleList()
        in_ch = self.n_chans
        for width in self.widths:
            conv = nn.Conv1d(in_ch, width, self.kernel_size, padding=self.kernel_size // 2)
            init_conv(conv)
            self.stem.append(conv)
            self.stem_norms.append(_ChannelNorm(width))
            in_ch = width
        self.to_epochs = nn.Conv1d(2 * in_ch, self.hidden, 1)
        init_conv(self.to_epochs)
        self.blocks = nn.ModuleList(
            _ResidualBlock(self.hidden, self.block_kernel, d, self.dropout_rate)
            for d in self.dilations)
        self.head_dropout = nn.Dropout(self.dropout_rate)
        self.classifier = nn.Linear(self.hidden, self.n_outputs)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the returned features: ``("embedding",)``."""
        return ("embedding",)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """Training only: each night scaled and shifted at random, plus sample noise (the
        standardised heart rate of a new subject differs in both)."""
        shape = (x.shape[0], 1, 1, 1)
        if self.augment_scale is not None:
            low, high = self.augment_scale
            x = x * torch.empty(shape, device=x.device, dtype=x.dtype).uniform_(low, high)
        if self.augment_offset:
            x = x + torch.empty(shape, device=x.device, dtype=x.dtype).uniform_(
                -self.augment_offset, self.augment_offset)
        if self.augment_noise:
            x = x + self.augment_noise * torch.randn_like(x)
        return x

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_features: bool = False):
        """Compute per-epoch logits for whole nights.

        Parameters
        ----------
        x : Tensor, shape (batch, n_epochs, n_chans, n_times)
            Nights of consecutive epochs, padded to a common length.
        mask : bool Tensor, shape (batch, n_epochs), or None
            True for real epochs, False for padding. ``None``: all real.
        return_features : bool, default False
            Also return ``{"embedding": (batch, n_epochs, hidden)}`` (zero at masked
            epochs).

        Returns
        -------
        logits : Tensor, shape (batch, n_epochs, n_outputs)
            Zero at masked epochs.
        features : dict of str to Tensor
            Only with ``return_features=True``.

        Raises
        ------
        ValueError
            If ``x`` or ``mask`` has the wrong shape or type.
        """
        check_sequence_input(self, x, mask, padding_at_end=False)
        batch, n_epochs = x.shape[:2]
        if mask is None:
            mask = torch.ones(batch, n_epochs, dtype=torch.bool, device=x.device)
        if self.training:
            x = self._augment(x)
        x = torch.where(mask[:, :, None, None], x, torch.zeros((), dtype=x.dtype,
                                                               device=x.device))
        z = x.permute(0, 2, 1, 3).reshape(batch, self.n_chans, n_epochs * self.n_times)
        keep_epoch = mask.to(x.dtype).unsqueeze(1)  # (batch, 1, n_epochs)
        per_epoch = self.n_times
        for conv, norm, pool in zip(self.stem, self.stem_norms, self.pools):
            keep = keep_epoch.repeat_interleave(per_epoch, dim=2)
            z = norm(F.relu(conv(z))) * keep
            z = F.max_pool1d(z, pool)
            per_epoch //= pool
        width = z.shape[1]
        z = z.reshape(batch, width, n_epochs, per_epoch)
        z = torch.cat([z.mean(dim=-1), z.amax(dim=-1)], dim=1)
        z = self.to_epochs(z) * keep_epoch
        for block in self.blocks:
            z = block(z, keep_epoch)
        emb = z.transpose(1, 2)  # (batch, n_epochs, hidden)
        logits = self.classifier(self.head_dropout(emb)) * mask.unsqueeze(-1).to(x.dtype)
        if return_features:
            return logits, {"embedding": emb}
        return logits
