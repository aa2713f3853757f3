"""A narrow U-Time: the paper's architecture with a sixteenth of its parameters."""

from __future__ import annotations

from collections.abc import Sequence

from ._utime import UTime


class CompactUTime(UTime):
    """The modified U-Time with four times fewer channels per layer.

    Same levels, pools, kernels and feature names as :class:`UTime`, so attention
    transfer from a U-Time teacher matches layer groups one to one; with the default
    widths ``(4, 8, 16, 32, 64)`` and bottleneck 128 it has about 1/16 of U-Time's
    parameters (302,848 for 1 channel and 4 classes) and runs several times faster.

    Parameters
    ----------
    n_chans, n_outputs, n_times, sfreq
        As in :class:`UTime`.
    widths : sequence of int
        Encoder channels per level.
    bottleneck_width : int or None
        Bottleneck channels; ``None`` means ``2 * widths[-1]``.
    kernel_size, dilation, pools
        As in :class:`UTime`.

    Examples
    --------
    >>> import torch
    >>> net = CompactUTime(n_chans=1, n_outputs=3, n_times=3000)
    >>> net(torch.randn(2, 1, 3000)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float | None = None,
        *,
        widths: Sequence[int] = (4, 8, 16, 32, 64),
        bottleneck_width: int | None = 128,
        kernel_size: int = 5,
        dilation: int = 2,
        pools: Sequence[int] = (3, 2, 2, 2, 2),
    ) -> None:
        super().__init__(n_chans, n_outputs, n_times, sfreq, widths=widths,
                         bottleneck_width=bottleneck_width, kernel_size=kernel_size,
                         dilation=dilation, pools=pools)
