"""PyTorch networks for teachers and students, one file per architecture.

All share one constructor signature ``(n_chans, n_outputs, n_times, sfreq=None, **kw)``
and ``forward(x, return_features=False)``; with ``return_features=True`` they also
return their named intermediate feature maps for attention transfer. The night
networks (``sequence = True``) read whole nights: ``forward(x, mask=None,
return_features=False)`` maps ``(batch, n_epochs, n_chans, n_times)`` to
``(batch, n_epochs, n_outputs)``, ``n_times`` being the samples of one epoch.
"""

from sleepkd.utils._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "UTime": "._utime",
        "CompactUTime": "._compact",
        "ContextNet": "._context",
        "MLPNet": "._mlp",
        "EpochSequenceNet": "._epoch_sequence",
        "HeartRateTCN": "._heart_rate_tcn",
        "FeatureSequenceNet": "._feature_sequence",
        "get_network": "._registry",
        "NETWORKS": "._registry",
    },
)
