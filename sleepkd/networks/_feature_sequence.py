"""A whole-night network over per-epoch feature rows: an MLP embedding, a bidirectional
GRU over the night, a per-epoch head."""

from __future__ import annotations


import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ._blocks import (check_dropout, check_network_args, check_positive_int,
                      check_sequence_input)


class FeatureSequenceNet(nn.Module):
    """Whole-night staging from per-epoch feature rows (e.g. HRV features).

    Each epoch's feature row (``n_times`` = number of features, one channel) is embedded
    by a small MLP, a bidirectional GRU runs over the epochs of the night, and a linear
    head labels every epoch. This is the classic feature + recurrent-network design of
    cardiorespiratory sleep stagers (e.g. Radha et al. 2019, *Sci Rep* 9:14149, an LSTM
    over per-epoch HRV features).

    - embedding: ``Linear(n_chans * n_times, embedding_dim) -> ReLU -> Dropout`` (and a
      second ``Linear -> ReLU`` of the same width when ``mlp_layers=2``);
    - sequence: a bidirectional GRU (``hidden`` per direction, ``n_layers`` layers) run
      on packed sequences with each night's length from the mask
      (:func:`~torch.nn.utils.rnn.pack_padded_sequence`), so padding is never read;
    - head: dropout and a linear layer per epoch.

    Padded rows are set to zero (with :func:`torch.where`, so NaN padding is harmless)
    before the embedding, which works row by row, and the GRU never sees them: a night's
    logits at its real epochs are the same alone or in a padded batch. Logits and
    embeddings at padded epochs are zero.

    Parameters
    ----------
    n_chans : int
        Channels per epoch (1 for a feature row).
    n_outputs : int
        Number of classes.
    n_times : int
        Features per epoch and channel.
    sfreq : float or None
        Unused (feature rows have no sampling rate); accepted for the shared signature.
    embedding_dim : int, default 32
        Width of the per-epoch MLP.
    mlp_layers : {1, 2}, default 1
        Layers of the per-epoch MLP.
    hidden : int, default 32
        GRU hidden size per direction.
    n_layers : int, default 1
        GRU layers.
    dropout : float, default 0.3
        Dropout after the embedding, between GRU layers and before the head.

    Attributes
    ----------
    sequence : bool
        True: the network reads whole nights.
    supports_attention : bool
        False.
    feature_names : tuple of str
        ``("embedding",)``: the GRU output per epoch, ``(batch, n_epochs, 2 * hidden)``.

    Examples
    --------
    >>> import torch
    >>> net = FeatureSequenceNet(n_chans=1, n_outputs=3, n_times=10).eval()
    >>> net(torch.randn(2, 50, 1, 10), torch.arange(50) < torch.tensor([[50], [20]])).shape
    torch.Size([2, 50, 3])
    """

    sequence = True
    supports_attention = False

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float | None = None,
                 embedding_dim: int = 32, mlp_layers: int = 1, hidden: int = 32,
                 n_layers: int = 1, dropout: float = 0.3) -> None:
        super().__init__()
        self.n_chans, self.n_outputs, self.n_times, self.sfreq = check_network_args(
            n_chans, n_outputs, n_times, sfreq)
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.mlp_layers = check_positive_int(mlp_layers, "mlp_layers")
        if self.mlp_layers > 2:
            raise ValueError(f"mlp_layers must be 1 or 2, got {mlp_layers!r}.")
        self.hidden = check_positive_int(hidden, "hidden")
        self.n_layers = check_positive_int(n_layers, "n_layers")
        self.dropout_rate = check_dropout(dropout)
        layers: list[nn.Module] = [nn.Linear(self.n_chans * self.n_times, self.embedding_dim),
                                   nn.ReLU(), nn.Dropout(self.dropout_rate)]
        if self.mlp_layers == 2:
            layers += [nn.Linear(self.embedding_dim, self.embedding_dim), nn.ReLU()]
        self.embed = nn.Sequential(*layers)
        self.gru = nn.GRU(self.embedding_dim, self.hidden, num_layers=self.n_layers,
                          batch_first=True, bidirectional=True,
                          dropout=self.dropout_rate if self.n_layers > 1 else 0.0)
        self.head_dropout = nn.Dropout(self.dropout_rate)
        self.classifier = nn.Linear(2 * self.hidden, self.n_outputs)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the returned features: ``("embedding",)``."""
        return ("embedding",)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_features: bool = False):
        """Compute per-epoch logits for whole nights of feature rows.

        Parameters
        ----------
        x : Tensor, shape (batch, n_epochs, n_chans, n_times)
            Per-epoch feature rows (finite at real epochs), padded at the end.
        mask : bool Tensor, shape (batch, n_epochs), or None
            True for real epochs, False for padding at the end of each night.
        return_features : bool, default False
            Also return ``{"embedding": (batch, n_epochs, 2 * hidden)}``.

        Returns
        -------
        logits : Tensor, shape (batch, n_epochs, n_outputs)
            Zero at padded epochs.
        features : dict of str to Tensor
            Only with ``return_features=True``.

        Raises
        ------
        ValueError
            If ``x`` or ``mask`` has the wrong shape or type, or the mask has a real
            epoch after padding.
        """
        check_sequence_input(self, x, mask, padding_at_end=True)
        batch, n_epochs = x.shape[:2]
        if mask is None:
            mask = torch.ones(batch, n_epochs, dtype=torch.bool, device=x.device)
        x = torch.where(mask[:, :, None, None], x, torch.zeros((), dtype=x.dtype,
                                                               device=x.device))
        z = self.embed(x.reshape(batch, n_epochs, self.n_chans * self.n_times))
        # a night without real epochs is run on its first (zero) row; outputs are masked
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(z, lengths, batch_first=True, enforce_sorted=False)
        out = pad_packed_sequence(self.gru(packed)[0], batch_first=True,
                                  total_length=n_epochs)[0]
        keep = mask.unsqueeze(-1).to(out.dtype)
        emb = out * keep
        logits = self.classifier(self.head_dropout(emb)) * keep
        if return_features:
            return logits, {"embedding": emb}
        return logits
