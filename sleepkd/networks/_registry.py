"""Look up a network class by name."""

from __future__ import annotations

from torch import nn

from ._compact import CompactUTime
from ._context import ContextNet
from ._epoch_sequence import EpochSequenceNet
from ._feature_sequence import FeatureSequenceNet
from ._heart_rate_tcn import HeartRateTCN
from ._mlp import MLPNet
from ._utime import UTime

#: Short name -> network class.
NETWORKS: dict[str, type[nn.Module]] = {
    "utime": UTime,
    "compact": CompactUTime,
    "context": ContextNet,
    "mlp": MLPNet,
    "heart_rate_tcn": HeartRateTCN,
    "feature_sequence": FeatureSequenceNet,
    "epoch_sequence": EpochSequenceNet,
}


def get_network(name_or_class: str | type[nn.Module]) -> type[nn.Module]:
    """Return a network class from its short name, or pass a class through.

    Parameters
    ----------
    name_or_class : str or subclass of torch.nn.Module
        One of ``"utime"``, ``"compact"``, ``"context"``, ``"mlp"``, or the night
        networks ``"heart_rate_tcn"``, ``"feature_sequence"``, ``"epoch_sequence"``
        (case-insensitive),
        or an ``nn.Module`` subclass with the sleepkd network signature
        ``(n_chans, n_outputs, n_times, sfreq=None, **kwargs)``.

    Returns
    -------
    cls : type
        The network class.

    Raises
    ------
    ValueError
        If the name is unknown or the object is neither a name nor an ``nn.Module``
        subclass.

    Examples
    --------
    >>> get_network("utime").__name__
    'UTime'
    """
    if isinstance(name_or_class, str):
        key = name_or_class.lower()
        if key not in NETWORKS:
            raise ValueError(f"Unknown network {name_or_class!r}; known networks are "
                             f"{sorted(NETWORKS)} (or pass an nn.Module subclass).")
        return NETWORKS[key]
    if isinstance(name_or_class, type) and issubclass(name_or_class, nn.Module):
        return name_or_class
    raise ValueError(f"network must be one of {sorted(NETWORKS)} or an nn.Module subclass, "
                     f"got {name_or_class!r}.")
