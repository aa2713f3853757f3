"""A multilayer perceptron for feature rows (HRV features, EEG band powers)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._blocks import check_input, check_int_tuple, check_network_args

_NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


class MLPNet(nn.Module):
    """Fully connected network on flattened inputs.

    The input ``(batch, n_chans, n_times)`` is flattened to ``n_chans * n_times``
    features, so an estimator can pass feature rows as ``(batch, 1, n_features)``.
    Each hidden layer is ``Linear -> [norm] -> ReLU -> Dropout``.

    Parameters
    ----------
    n_chans : int
        Number of input channels.
    n_outputs : int
        Number of classes.
    n_times : int
        Features per channel.
    sfreq : float or None
        Unused (kept for the common signature).
    hidden : sequence of int
        Widths of the hidden layers.
    dropout : float
        Dropout after each hidden layer.
    norm : {"layer", "batch"} or None
        Normalisation after each hidden linear layer. Layer normalisation (the default)
        works with any batch size, including 1.

    Attributes
    ----------
    feature_names : tuple of str
        ``hidden1..hiddenN``: each hidden layer's activations (after ReLU, before
        dropout), shape (batch, width). They have no time axis, so attention transfer
        does not apply (``supports_attention = False``).

    Examples
    --------
    >>> import torch
    >>> net = MLPNet(n_chans=1, n_outputs=3, n_times=20)
    >>> logits, feats = net(torch.randn(5, 1, 20), return_features=True)
    >>> logits.shape, feats["hidden2"].shape
    (torch.Size([5, 3]), torch.Size([5, 64]))
    """

    supports_attention: bool = False

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float | None = None,
        *,
        hidden: Sequence[int] = (64, 64),
        dropout: float = 0.2,
        norm: str | None = "layer",
    ) -> None:
        super().__init__()
        n_chans, n_outputs, n_times, sfreq = check_network_args(n_chans, n_outputs, n_times, sfreq)
        hidden = check_int_tuple(hidden, "hidden")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        if norm is not None and norm not in _NORMS:
            raise ValueError(f"norm must be 'layer', 'batch' or None, got {norm!r}.")
        self.n_chans, self.n_outputs, self.n_times, self.sfreq = n_chans, n_outputs, n_times, sfreq
        self.hidden, self.norm = hidden, norm

        layers = []
        n_in = n_chans * n_times
        for width in hidden:
            parts = [nn.Linear(n_in, width)]
            if norm is not None:
                parts.append(_NORMS[norm](width))
            parts.append(nn.ReLU())
            layers.append(nn.Sequential(*parts))
            n_in = width
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(n_in, n_outputs)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the hidden activations, in the order they are returned."""
        return tuple(f"hidden{i}" for i in range(1, len(self.hidden) + 1))

    @property
    def feature_groups(self) -> dict[str, tuple[str, ...]]:
        """One group, ``hidden``, holding every hidden activation."""
        return {"hidden": self.feature_names}

    def forward(self, x: torch.Tensor, return_features: bool = False):
        """Compute the logits (and the hidden activations).

        Parameters
        ----------
        x : Tensor, shape (batch, n_chans, n_times)
            Input rows.
        return_features : bool
            Also return the hidden activations.

        Returns
        -------
        logits : Tensor, shape (batch, n_outputs)
        features : dict of str to Tensor
            Only with ``return_features=True``: ``hidden1..hiddenN`` -> (batch, width).
        """
        name = type(self).__name__
        check_input(x, self.n_chans, 1, name)
        if x.shape[-1] != self.n_times:
            raise ValueError(f"{name} was built for n_times={self.n_times} features per "
                             f"channel, got {x.shape[-1]}.")
        z = x.flatten(start_dim=1)
        features: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.layers, start=1):
            z = layer(z)
            features[f"hidden{i}"] = z
            z = self.dropout(z)
        logits = self.classifier(z)
        if return_features:
            return logits, features
        return logits
