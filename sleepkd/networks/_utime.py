"""The modified U-Time used as teacher and student in the paper (about 4.8 M parameters)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._blocks import (ConvBlock, DoubleConvBlock, check_encoder_args, check_input,
                      check_network_args, init_conv)


class UTime(nn.Module):
    """Modified U-Time for one 30-s epoch (Joshi et al. 2021, after Perslev et al. 2019).

    A fully convolutional encoder-decoder that labels every sample point, followed by
    a mean over the window and a 1x1 convolution that gives one set of logits per
    input:

    - block: "same"-padded ``Conv1d(kernel_size) -> ReLU -> BatchNorm1d``;
    - encoder: one level per entry of ``widths`` (two blocks, ``dilation``), each
      followed by a max-pool of the matching entry of ``pools``;
    - bottleneck: two blocks ``widths[-1] -> bottleneck_width -> bottleneck_width``
      (dilation 1);
    - decoder: per level, nearest upsampling to the length of the matching skip
      connection, a block to the level's width, concatenation with the skip and two
      blocks (dilation 1, as in the paper's code);
    - dense head: 1x1 conv to ``n_outputs`` + tanh per sample point, mean over the
      window, 1x1 conv ``n_outputs -> n_outputs`` = logits (no softmax).

    With the defaults (1 input channel, 4 classes) it has 4,813,240 parameters
    (4,813,215 for 3 classes): the paper's "about 4.8 M".

    Parameters
    ----------
    n_chans : int
        Number of input channels.
    n_outputs : int
        Number of classes.
    n_times : int
        Input length in samples (e.g. 6000 for 30 s at 200 Hz). Any length of at least
        ``prod(pools)`` works; upsampling matches each skip connection's length.
    sfreq : float or None
        Sampling rate in Hz (stored for reference; the network does not need it).
    widths : sequence of int
        Encoder channels per level (the decoder mirrors them).
    bottleneck_width : int or None
        Bottleneck channels; ``None`` means ``2 * widths[-1]`` (512 by default).
    kernel_size : int
        Convolution kernel size.
    dilation : int
        Dilation of the encoder convolutions.
    pools : sequence of int
        Max-pool size after each encoder level (same length as ``widths``).

    Attributes
    ----------
    feature_names : tuple of str
        Names of the maps returned with ``return_features=True``, in order:
        ``enc1..encN`` (each encoder level's output after its max-pool, as in the paper's
        code), ``bottleneck``, ``dec1..decN`` (each decoder level's output, from the
        coarsest to the finest), ``dec_end`` (the decoder's final output, i.e. the same
        tensor as ``decN``: the paper matches it as a group of its own) and ``dense``
        (the per-sample tanh map, ``n_outputs`` channels).
    feature_groups : dict
        The paper's groups of matched layers: ``encoder``, ``bottleneck``, ``decoder``,
        ``dec_end``, ``dense``. The paper's attention-transfer loss is the mean over
        groups of the mean over each group's layers.
    min_times : int
        The shortest input accepted (``prod(pools)``).

    Raises
    ------
    ValueError
        If an argument is invalid, ``widths`` and ``pools`` differ in length, or
        ``n_times`` is shorter than ``prod(pools)``.

    Examples
    --------
    >>> import torch
    >>> net = UTime(n_chans=1, n_outputs=4, n_times=3000, sfreq=100)
    >>> logits, feats = net(torch.randn(2, 1, 3000), return_features=True)
    >>> logits.shape, feats["enc1"].shape, feats["dense"].shape
    (torch.Size([2, 4]), torch.Size([2, 16, 1000]), torch.Size([2, 4, 3000]))
    """

    supports_attention: bool = True

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float | None = None,
        *,
        widths: Sequence[int] = (16, 32, 64, 128, 256),
        bottleneck_width: int | None = 512,
        kernel_size: int = 5,
        dilation: int = 2,
        pools: Sequence[int] = (3, 2, 2, 2, 2),
    ) -> None:
        super().__init__()
        n_chans, n_outputs, n_times, sfreq = check_network_args(n_chans, n_outputs, n_times, sfreq)
        widths, pools, bottleneck_width, kernel_size, dilation, min_times = check_encoder_args(
            n_times, widths, pools, bottleneck_width, kernel_size, dilation, type(self).__name__)

        self.n_chans, self.n_outputs, self.n_times, self.sfreq = n_chans, n_outputs, n_times, sfreq
        self.widths, self.pools = widths, pools
        self.bottleneck_width = bottleneck_width
        self.kernel_size, self.dilation = kernel_size, dilation
        self.min_times = min_times

        in_widths = (n_chans,) + widths[:-1]
        self.encoder = nn.ModuleList(
            DoubleConvBlock(c_in, c_out, kernel_size, dilation)
            for c_in, c_out in zip(in_widths, widths)
        )
        self.pooling = nn.ModuleList(nn.MaxPool1d(p) for p in pools)
        self.bottleneck = DoubleConvBlock(widths[-1], bottleneck_width, kernel_size, 1)
        # Decoder, coarsest level first: the block after upsampling brings the channels
        # to the level's width, then the concatenation with the skip doubles them.
        dec_widths = widths[::-1]
        dec_in = (bottleneck_width,) + dec_widths[:-1]
        self.up_blocks = nn.ModuleList(
            ConvBlock(c_in, c_out, kernel_size, 1) for c_in, c_out in zip(dec_in, dec_widths)
        )
        self.decoder = nn.ModuleList(
            DoubleConvBlock(2 * c, c, kernel_size, 1) for c in dec_widths
        )
        self.dense = nn.Conv1d(widths[0], n_outputs, kernel_size=1)
        self.classifier = nn.Conv1d(n_outputs, n_outputs, kernel_size=1)
        init_conv(self.dense)
        init_conv(self.classifier)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the feature maps, in the order they are returned."""
        n = len(self.widths)
        return (tuple(f"enc{i}" for i in range(1, n + 1)) + ("bottleneck",)
                + tuple(f"dec{i}" for i in range(1, n + 1)) + ("dec_end", "dense"))

    @property
    def feature_groups(self) -> dict[str, tuple[str, ...]]:
        """The paper's groups of matched layers (group name -> feature names)."""
        n = len(self.widths)
        return {
            "encoder": tuple(f"enc{i}" for i in range(1, n + 1)),
            "bottleneck": ("bottleneck",),
            "decoder": tuple(f"dec{i}" for i in range(1, n + 1)),
            "dec_end": ("dec_end",),
            "dense": ("dense",),
        }

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """Compute the logits (and the named feature maps).

        Parameters
        ----------
        x : Tensor, shape (batch, n_chans, n_times)
            Input windows.
        return_features : bool
            Also return the feature maps.

        Returns
        -------
        logits : Tensor, shape (batch, n_outputs)
        features : dict of str to Tensor
            Only with ``return_features=True``: ``feature_names`` -> (batch, channels,
            time) maps.
        """
        check_input(x, self.n_chans, self.min_times, type(self).__name__)
        features: dict[str, torch.Tensor] = {}
        skips = []
        z = x
        for i, (level, pool) in enumerate(zip(self.encoder, self.pooling), start=1):
            z = level(z)
            skips.append(z)
            z = pool(z)
            features[f"enc{i}"] = z
        z = self.bottleneck(z)
        features["bottleneck"] = z
        for i, (up, level, skip) in enumerate(zip(self.up_blocks, self.decoder, skips[::-1]),
                                              start=1):
            # Upsample to the skip's length: exact for lengths divisible by prod(pools),
            # and still aligned when a pool dropped the last samples.
            z = up(F.interpolate(z, size=skip.shape[-1], mode="nearest"))
            z = level(torch.cat([skip, z], dim=1))
            features[f"dec{i}"] = z
        features["dec_end"] = z
        z = torch.tanh(self.dense(z))
        features["dense"] = z
        logits = self.classifier(z.mean(dim=-1, keepdim=True)).squeeze(-1)
        if return_features:
            return logits, features
        return logits
