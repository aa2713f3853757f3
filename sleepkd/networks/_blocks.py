"""Building blocks and argument checks shared by the sleepkd networks."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn


class ConvBlock(nn.Module):
    """"Same"-padded ``Conv1d -> ReLU -> BatchNorm1d``, the U-Time block.

    The order (activation before batch normalisation) and the Xavier-uniform weights
    with zero biases follow the paper's U-Time.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int
        Convolution kernel size (odd or even: padding is "same" either way).
    dilation : int
        Convolution dilation.

    Examples
    --------
    >>> import torch
    >>> block = ConvBlock(1, 4, kernel_size=5, dilation=2)
    >>> block(torch.zeros(2, 1, 50)).shape
    torch.Size([2, 4, 50])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation,
                              padding="same")
        self.act = nn.ReLU()
        self.bn = nn.BatchNorm1d(out_channels)
        init_conv(self.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.act(self.conv(x)))


class DoubleConvBlock(nn.Sequential):
    """Two :class:`ConvBlock` in a row (one U-Time level)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5,
                 dilation: int = 1) -> None:
        super().__init__(
            ConvBlock(in_channels, out_channels, kernel_size, dilation),
            ConvBlock(out_channels, out_channels, kernel_size, dilation),
        )


def init_conv(conv: nn.Module) -> None:
    """Xavier-uniform weights and zero bias (the paper's initialisation)."""
    nn.init.xavier_uniform_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum`` or raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_int_tuple(values, name: str, minimum: int = 1) -> tuple[int, ...]:
    """Return a non-empty tuple of ints >= ``minimum`` or raise ``ValueError``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{name} must be a non-empty sequence of integers, got {values!r}.")
    return tuple(check_positive_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(values))


def check_network_args(n_chans, n_outputs, n_times, sfreq) -> tuple[int, int, int, float | None]:
    """Validate the common constructor arguments of every sleepkd network."""
    n_chans = check_positive_int(n_chans, "n_chans")
    n_outputs = check_positive_int(n_outputs, "n_outputs")
    n_times = check_positive_int(n_times, "n_times")
    if sfreq is not None:
        if isinstance(sfreq, bool) or not isinstance(sfreq, numbers.Real) \
                or not math.isfinite(sfreq) or sfreq <= 0:
            raise ValueError(f"sfreq must be a positive number in Hz or None, got {sfreq!r}.")
        sfreq = float(sfreq)
    return n_chans, n_outputs, n_times, sfreq


def check_input(x: torch.Tensor, n_chans: int, min_times: int, owner: str) -> None:
    """Check a forward input: 3-D ``(batch, n_chans, n_times >= min_times)``."""
    if x.ndim != 3:
        raise ValueError(f"{owner} expects input of shape (batch, n_chans, n_times), "
                         f"got a tensor of shape {tuple(x.shape)}.")
    if x.shape[1] != n_chans:
        raise ValueError(f"{owner} was built for n_chans={n_chans}, got input with "
                         f"{x.shape[1]} channels.")
    if x.shape[2] < min_times:
        raise ValueError(f"{owner} needs at least {min_times} samples per input for its "
                         f"pooling, got {x.shape[2]}.")
