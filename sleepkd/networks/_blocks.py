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


def check_sequence_input(network: nn.Module, x: torch.Tensor, mask: torch.Tensor | None,
                         *, padding_at_end: bool) -> None:
    """Validate ``x`` (batch, n_epochs, n_chans, n_times) and ``mask`` for a night network.

    Parameters
    ----------
    network : nn.Module
        The network (its ``n_chans``, ``n_times`` and ``sfreq`` are checked against).
    x : Tensor
        The input.
    mask : bool Tensor or None
        The epoch mask.
    padding_at_end : bool
        Require the padding of each night to follow its real epochs.

    Raises
    ------
    ValueError
        With a message naming the problem.
    """
    name = type(network).__name__
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} expects a tensor, got {type(x).__name__}.")
    if x.ndim != 4:
        hint = " (for one night, add a batch axis: x[None])" if x.ndim == 3 else ""
        raise ValueError(f"{name} expects input of shape (batch, n_epochs, n_chans, "
                         f"n_times), got a tensor of shape {tuple(x.shape)}{hint}.")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} got an empty input of shape {tuple(x.shape)}.")
    if not x.is_floating_point():
        raise ValueError(f"{name} expects a floating-point input, got {x.dtype}.")
    if x.shape[2] != network.n_chans:
        raise ValueError(f"{name} was built for n_chans={network.n_chans}, got input with "
                         f"{x.shape[2]} channels.")
    if x.shape[3] != network.n_times:
        sfreq = "" if network.sfreq is None else f" (30 s at {network.sfreq:g} Hz)"
        raise ValueError(f"{name} was built for n_times={network.n_times} samples per "
                         f"epoch{sfreq}, got epochs of {x.shape[3]} samples; check the "
                         "sampling rate.")
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True for real epochs), got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)}.")
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask must have shape (batch, n_epochs) = {tuple(x.shape[:2])}, "
                         f"got {tuple(mask.shape)}.")
    if padding_at_end and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
        raise ValueError("mask must mark each night's real epochs first and its padding at "
                         "the end (True ... True False ... False); got a real epoch after "
                         "padding.")


def check_dropout(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"dropout must be a number in [0, 1), got {value!r}.")
    return float(value)


def check_encoder_args(n_times: int, widths, pools, bottleneck_width, kernel_size, dilation,
                       name: str) -> tuple:
    """Validate the U-Time encoder's arguments (shared by U-Time and the epoch encoder
    of the night networks); return ``(widths, pools, bottleneck_width, kernel_size,
    dilation, min_times)``, ``bottleneck_width=None`` meaning ``2 * widths[-1]``."""
    widths = check_int_tuple(widths, "widths")
    pools = check_int_tuple(pools, "pools")
    if len(widths) != len(pools):
        raise ValueError(f"widths and pools must have the same length, got {len(widths)} "
                         f"widths and {len(pools)} pools.")
    bottleneck_width = 2 * widths[-1] if bottleneck_width is None else \
        check_positive_int(bottleneck_width, "bottleneck_width")
    kernel_size = check_positive_int(kernel_size, "kernel_size")
    dilation = check_positive_int(dilation, "dilation")
    min_times = math.prod(pools)
    if n_times < min_times:
        raise ValueError(f"n_times={n_times} is too short for pools {pools}: {name} needs at "
                         f"least {min_times} samples per epoch.")
    return widths, pools, bottleneck_width, kernel_size, dilation, min_times
