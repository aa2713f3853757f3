"""A whole-night network: a per-epoch U-Time encoder, then a sequence model over epochs."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ._blocks import (DoubleConvBlock, check_encoder_args, check_int_tuple, check_network_args,
                      check_positive_int, check_sequence_input, init_conv)

_SEQUENCES = ("gru", "tcn")
#: Epochs encoded at once at evaluation (see ``EpochSequenceNet._encode_epochs``).
ENCODE_CHUNK = 256


class _MaskedTemporalConv(nn.Module):
    """Residual dilated convolutions over the epoch axis that never read padding.

    A linear projection to ``width`` channels, then per dilation a residual layer
    ``z + Dropout(LayerNorm(ReLU(Conv1d(z))))`` (kernel 3, "same" zero padding). The
    mask multiplies the sequence after the projection and after every layer, so padded
    epochs hold exact zeros, just like the convolution's own zero padding past the end
    of a night: a night padded in a batch gives the same outputs at its real epochs as
    the night alone. LayerNorm (over channels, per epoch) rather than BatchNorm, whose
    batch statistics would mix padded epochs in.
    """

    def __init__(self, in_features: int, width: int, dilations: tuple[int, ...],
                 n_layers: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, width)
        all_dilations = dilations * n_layers
        self.convs = nn.ModuleList(
            nn.Conv1d(width, width, kernel_size=3, dilation=d, padding=d)
            for d in all_dilations
        )
        for conv in self.convs:
            init_conv(conv)
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in all_dilations)
        self.dropout = nn.Dropout(dropout)

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # z: (batch, n_epochs, features); mask: (batch, n_epochs) bool or None
        keep = None if mask is None else mask.unsqueeze(-1).to(z.dtype)
        z = self.proj(z)
        if keep is not None:
            z = z * keep
        for conv, norm in zip(self.convs, self.norms):
            h = F.relu(conv(z.transpose(1, 2))).transpose(1, 2)
            z = z + self.dropout(norm(h))
            if keep is not None:
                z = z * keep
        return z


class _PackedGRU(nn.Module):
    """Bidirectional GRU over the epoch axis; padded epochs are packed away."""

    def __init__(self, in_features: int, hidden: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.gru = nn.GRU(in_features, hidden, num_layers=n_layers, batch_first=True,
                          bidirectional=True, dropout=dropout if n_layers > 1 else 0.0)

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            return self.gru(z)[0]
        # A night with no real epoch is run on its (zero) first epoch, so packing gets
        # lengths >= 1; its outputs are discarded by the caller.
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(z, lengths, batch_first=True, enforce_sorted=False)
        out = self.gru(packed)[0]
        return pad_packed_sequence(out, batch_first=True, total_length=z.shape[1])[0]


class EpochSequenceNet(nn.Module):
    """Whole-night staging: a U-Time epoch encoder, a sequence model, a per-epoch head.

    The design of SeqSleepNet (Phan et al. 2019) and U-Sleep (Perslev et al. 2021): an
    epoch encoder turns every 30-s epoch into a vector, a sequence model over the night
    gives each epoch the context of its neighbours, and a linear head labels every
    epoch. The same class serves as an EEG teacher and as a raw-ECG student, so the
    paper's raw-signal student gets temporal context while keeping U-Time's encoder
    maps for attention transfer.

    - epoch encoder: the encoder levels and bottleneck of the compact U-Time
      (:class:`~sleepkd.networks.CompactUTime`): per entry of ``widths`` two
      "same"-padded ``Conv1d(kernel_size, dilation) -> ReLU -> BatchNorm1d`` blocks and
      a max-pool of the matching entry of ``pools``, then two blocks
      ``widths[-1] -> bottleneck_width -> bottleneck_width`` (dilation 1). The modules
      carry U-Time's names (``encoder``, ``pooling``, ``bottleneck``), so a per-epoch
      U-Time of the same design can initialise them (:meth:`load_encoder_from`);
    - epoch embedding: the bottleneck's mean and max over time, concatenated, and a
      linear layer to ``embedding_dim``;
    - sequence model over the epochs of a night: ``"gru"``, a bidirectional GRU (hidden
      size ``hidden`` per direction, padding removed with ``pack_padded_sequence``), or
      ``"tcn"``, a linear projection to ``hidden`` channels and residual dilated
      convolutions over epochs (kernel 3, dilations ``tcn_dilations``, ``n_layers``
      times; LayerNorm; the mask applied after every layer);
    - head: dropout and a linear layer per epoch (logits, no softmax).

    Padding never leaks: only the real epochs are encoded (selected with the mask,
    encoded, scattered back into zeros), so padded inputs, even NaN, never enter a
    convolution or the BatchNorm batch statistics; the sequence model ignores padded
    epochs. A night's logits at its real epochs are therefore the same (up to float
    error) alone or in a padded batch (in evaluation mode; in training mode BatchNorm
    statistics depend on the other nights' real epochs, as for any batch). Logits at
    padded epochs are zero.

    Parameters
    ----------
    n_chans : int
        Number of input channels.
    n_outputs : int
        Number of classes.
    n_times : int
        Samples of ONE 30-s epoch per channel (3000 at 100 Hz, 6000 at 200 Hz), at
        least ``prod(pools)``. Inputs must have exactly this many samples per epoch.
    sfreq : float or None
        Sampling rate in Hz (stored for reference; the network does not need it).
    widths : sequence of int
        Encoder channels per level.
    bottleneck_width : int or None
        Bottleneck channels; ``None`` means ``2 * widths[-1]``.
    pools : sequence of int
        Max-pool size after each encoder level (same length as ``widths``).
    kernel_size : int
        Encoder convolution kernel size.
    dilation : int
        Dilation of the encoder convolutions.
    embedding_dim : int
        Size of each epoch's embedding (the sequence model's input).
    sequence : {"gru", "tcn"}
        The sequence model over the night.
    hidden : int
        GRU hidden size per direction (the head then sees ``2 * hidden`` features), or
        the TCN's channels.
    n_layers : int
        GRU layers, or repetitions of the TCN's dilation stack.
    dropout : float in [0, 1)
        Dropout on the embeddings, between GRU layers, in each TCN layer and before the
        head.
    tcn_dilations : sequence of int
        Dilations of one TCN stack. The default ``(1, 2, 4, 8, 16, 32)`` sees 63 epochs
        (31.5 min) on each side.

    Attributes
    ----------
    sequence : bool
        Class attribute ``True``: the network reads whole nights
        ``(batch, n_epochs, n_chans, n_times)`` and takes a ``mask``. (The chosen
        sequence model is ``sequence_model``.)
    feature_names : tuple of str
        ``enc1..encN`` (each encoder level's output after its max-pool, as in
        :class:`~sleepkd.networks.UTime`), ``bottleneck`` and ``embedding``.
    feature_groups : dict
        The attention-transfer groups: ``encoder`` (``enc1..encN``) and ``bottleneck``.
        ``embedding`` has no time axis and is no attention map (it is meant for
        FitNets-style feature distillation).
    min_times : int
        The shortest epoch accepted at construction (``prod(pools)``).

    Raises
    ------
    ValueError
        If an argument is invalid, ``widths`` and ``pools`` differ in length, or
        ``n_times`` is shorter than ``prod(pools)``.

    Notes
    -----
    Feature convention with ``return_features=True``:

    - ``features["embedding"]`` has shape ``(batch, n_epochs, embedding_dim)``, zero at
      padded epochs;
    - the per-epoch maps ``features["enc1"]``, ..., ``features["bottleneck"]`` hold the
      REAL epochs only, shape ``(n_real, channels, time)`` with
      ``n_real = mask.sum()``, in the order of ``mask.reshape(-1)``: night 0's real
      epochs first, then night 1's, and so on (the rows of
      ``x[mask]``). Select a per-epoch target the same way, e.g. ``y[mask]``. Without
      a mask, all ``batch * n_epochs`` epochs, in the order of
      ``x.reshape(-1, n_chans, n_times)``. A teacher and a student called with the same
      mask therefore return maps whose rows match, whatever their sampling rates.

    References
    ----------
    H. Phan, F. Andreotti, N. Cooray, O. Y. Chen, M. De Vos, "SeqSleepNet: end-to-end
    hierarchical recurrent neural network for sequence-to-sequence automatic sleep
    staging", IEEE TNSRE 27(3), 2019.

    M. Perslev, S. Darkner, L. Kempfner, M. Nikolic, P. J. Jennum, C. Igel, "U-Sleep:
    resilient high-frequency sleep staging", npj Digital Medicine 4, 72, 2021.

    Examples
    --------
    >>> import torch
    >>> net = EpochSequenceNet(n_chans=1, n_outputs=4, n_times=3000, sfreq=100).eval()
    >>> x = torch.randn(2, 10, 1, 3000)                 # 2 nights, up to 10 epochs
    >>> mask = torch.arange(10) < torch.tensor([[10], [7]])   # night 2: 7 real epochs
    >>> logits, feats = net(x, mask, return_features=True)
    >>> logits.shape, feats["embedding"].shape
    (torch.Size([2, 10, 4]), torch.Size([2, 10, 64]))
    >>> feats["enc1"].shape, feats["bottleneck"].shape  # the 17 real epochs
    (torch.Size([17, 4, 1000]), torch.Size([17, 128, 62]))
    >>> bool((logits[1, 7:] == 0).all())                # padded epochs
    True
    """

    sequence: bool = True
    supports_attention: bool = True

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float | None = None,
        *,
        widths: Sequence[int] = (4, 8, 16, 32, 64),
        bottleneck_width: int | None = 128,
        pools: Sequence[int] = (3, 2, 2, 2, 2),
        kernel_size: int = 5,
        dilation: int = 2,
        embedding_dim: int = 64,
        sequence: str = "gru",
        hidden: int = 64,
        n_layers: int = 1,
        dropout: float = 0.2,
        tcn_dilations: Sequence[int] = (1, 2, 4, 8, 16, 32),
    ) -> None:
        super().__init__()
        name = type(self).__name__
        n_chans, n_outputs, n_times, sfreq = check_network_args(n_chans, n_outputs, n_times, sfreq)
        widths, pools, bottleneck_width, kernel_size, dilation, min_times = check_encoder_args(
            n_times, widths, pools, bottleneck_width, kernel_size, dilation, name)
        embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        if sequence not in _SEQUENCES:
            raise ValueError(f"sequence must be 'gru' or 'tcn', got {sequence!r}.")
        hidden = check_positive_int(hidden, "hidden")
        n_layers = check_positive_int(n_layers, "n_layers")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                or not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}.")
        dropout = float(dropout)
        tcn_dilations = check_int_tuple(tcn_dilations, "tcn_dilations")

        self.n_chans, self.n_outputs, self.n_times, self.sfreq = n_chans, n_outputs, n_times, sfreq
        self.widths, self.pools = widths, pools
        self.bottleneck_width = bottleneck_width
        self.kernel_size, self.dilation = kernel_size, dilation
        self.min_times = min_times
        self.embedding_dim = embedding_dim
        self.sequence_model = sequence
        self.hidden, self.n_layers, self.dropout_rate = hidden, n_layers, dropout
        self.tcn_dilations = tcn_dilations

        # The per-epoch encoder: UTime's levels, with UTime's module names.
        in_widths = (n_chans,) + widths[:-1]
        self.encoder = nn.ModuleList(
            DoubleConvBlock(c_in, c_out, kernel_size, dilation)
            for c_in, c_out in zip(in_widths, widths)
        )
        self.pooling = nn.ModuleList(nn.MaxPool1d(p) for p in pools)
        self.bottleneck = DoubleConvBlock(widths[-1], bottleneck_width, kernel_size, 1)
        self.embed = nn.Linear(2 * bottleneck_width, embedding_dim)
        self.dropout = nn.Dropout(dropout)
        if sequence == "gru":
            self.sequence_stage = _PackedGRU(embedding_dim, hidden, n_layers, dropout)
            out_features = 2 * hidden
        else:
            self.sequence_stage = _MaskedTemporalConv(embedding_dim, hidden, tcn_dilations,
                                                      n_layers, dropout)
            out_features = hidden
        self.classifier = nn.Linear(out_features, n_outputs)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the features, in the order they are returned."""
        return tuple(f"enc{i}" for i in range(1, len(self.widths) + 1)) + \
            ("bottleneck", "embedding")

    @property
    def feature_groups(self) -> dict[str, tuple[str, ...]]:
        """The attention-transfer groups (``embedding`` is in none: no attention map)."""
        return {
            "encoder": tuple(f"enc{i}" for i in range(1, len(self.widths) + 1)),
            "bottleneck": ("bottleneck",),
        }

    def load_encoder_from(self, network: nn.Module) -> EpochSequenceNet:
        """Copy the encoder and bottleneck weights of a per-epoch U-Time-family network.

        Parameters
        ----------
        network : UTime or CompactUTime
            A network with the same encoder design (``n_chans``, ``widths``,
            ``bottleneck_width``, ``kernel_size``, ``dilation``, ``pools``), e.g. one
            trained on single epochs.

        Returns
        -------
        self : EpochSequenceNet

        Raises
        ------
        ValueError
            If ``network`` has no U-Time encoder or a different encoder design.
        """
        attrs = ("n_chans", "widths", "bottleneck_width", "kernel_size", "dilation", "pools")
        if not all(hasattr(network, a) for a in attrs + ("encoder", "bottleneck")):
            raise ValueError(f"{type(network).__name__} has no U-Time encoder to copy.")
        theirs = {a: getattr(network, a) for a in attrs}
        ours = {a: getattr(self, a) for a in attrs}
        if theirs != ours:
            raise ValueError(f"{type(network).__name__}'s encoder design {theirs} differs "
                             f"from this network's {ours}.")
        self.encoder.load_state_dict(network.encoder.state_dict())
        self.bottleneck.load_state_dict(network.bottleneck.state_dict())
        return self

    def _encode_epochs(self, z: torch.Tensor, features: dict | None) -> torch.Tensor:
        """:meth:`_encode`, in chunks of :data:`ENCODE_CHUNK` epochs when nothing needs
        the graph or the features (evaluation: each epoch is encoded on its own, with
        BatchNorm's running statistics, so chunks give the same embeddings). A whole
        8-hour night at 100 Hz in one piece holds about 300 MB of activations per
        night of the batch; in chunks, memory no longer grows with the night."""
        if (self.training or torch.is_grad_enabled() or features is not None
                or len(z) <= ENCODE_CHUNK):
            return self._encode(z, features)
        return torch.cat([self._encode(z[i:i + ENCODE_CHUNK], None)
                          for i in range(0, len(z), ENCODE_CHUNK)])

    def _encode(self, z: torch.Tensor, features: dict | None) -> torch.Tensor:
        """Per-epoch encoder: (n, n_chans, n_times) -> (n, embedding_dim)."""
        for i, (level, pool) in enumerate(zip(self.encoder, self.pooling), start=1):
            z = pool(level(z))
            if features is not None:
                features[f"enc{i}"] = z
        z = self.bottleneck(z)
        if features is not None:
            features["bottleneck"] = z
        return self.embed(torch.cat([z.mean(dim=-1), z.amax(dim=-1)], dim=1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_features: bool = False):
        """Compute per-epoch logits for whole nights (and the features).

        Parameters
        ----------
        x : Tensor, shape (batch, n_epochs, n_chans, n_times)
            Nights of consecutive epochs, padded at the end to a common length.
        mask : bool Tensor, shape (batch, n_epochs), or None
            True for real epochs, False for padding (at the end of each night).
            ``None``: every epoch is real.
        return_features : bool
            Also return the features (see the class's Notes for their convention).

        Returns
        -------
        logits : Tensor, shape (batch, n_epochs, n_outputs)
            Zero at padded epochs.
        features : dict of str to Tensor
            Only with ``return_features=True``: ``enc1..encN`` and ``bottleneck`` of
            the real epochs, shape (n_real, channels, time) in the order of
            ``mask.reshape(-1)``; ``embedding``, shape (batch, n_epochs,
            embedding_dim), zero at padded epochs.

        Raises
        ------
        ValueError
            If ``x`` is not 4-D, has the wrong channel count or epoch length, or the
            mask is not a (batch, n_epochs) bool tensor with padding at the end.
        """
        check_sequence_input(self, x, mask, padding_at_end=True)
        batch, n_epochs = x.shape[:2]
        features: dict[str, torch.Tensor] | None = {} if return_features else None
        flat = x.reshape(batch * n_epochs, self.n_chans, self.n_times)
        if mask is None:
            emb = self._encode_epochs(flat, features)
        else:
            # Encode the real epochs only (no padding in BatchNorm statistics, less
            # compute), then scatter them back into zeros.
            index = mask.reshape(-1).nonzero().squeeze(1)
            emb_real = self._encode_epochs(flat.index_select(0, index), features)
            emb = emb_real.new_zeros(batch * n_epochs, self.embedding_dim)
            emb = emb.index_copy(0, index, emb_real)
        emb = emb.reshape(batch, n_epochs, self.embedding_dim)
        z = self.sequence_stage(self.dropout(emb), mask)
        logits = self.classifier(self.dropout(z))
        if mask is not None:
            logits = logits.masked_fill(~mask.unsqueeze(-1), 0.0)
        if return_features:
            features["embedding"] = emb
            return logits, features
        return logits
