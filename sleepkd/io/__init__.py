"""Readers of recording file formats, one private module per format.

- :func:`load_slpdb`: WFDB records of the MIT-BIH Polysomnographic Database.
- :func:`load_nsrr`: NSRR cohorts (SHHS, MESA, CFS, MrOS, ...): EDF + XML annotations.
- :func:`load_edf`: EDF / EDF+ with a hypnogram (Sleep-EDF, MASS, or a CSV/TSV file).
- :func:`read_ecg`: one ECG lead from a NumPy, CSV, WFDB, EDF or BDF file.
- :func:`prepare_store`: a folder of recordings -> a night store (one folder of
  memory-mappable ``.npy`` files per night, a QC table), in parallel, resumable;
  :func:`discover_sources` finds the nights, :class:`RecordingSource` describes one.
- :class:`NightStore` reads a store lazily; :class:`StoreWindows` serves training
  windows of its nights (a torch ``Dataset``).
- :func:`save_model_file`, :func:`load_model_file`: the safe ``.sleepkd`` model file
  (JSON and tensors; loading runs no code from the file).

Every recording reader returns :class:`~sleepkd.datasets.Recording` objects. The
optional packages behind the formats (``wfdb``, ``mne``) are imported only when a
file is read; ``load_slpdb`` and ``read_ecg`` are also importable from
:mod:`sleepkd.datasets`.
"""

from sleepkd.utils._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "load_slpdb": "._slpdb",
        "read_ecg": "._ecg_files",
        "load_nsrr": "._nsrr",
        "load_edf": "._edf",
        "prepare_store": "._store",
        "discover_sources": "._store",
        "RecordingSource": "._store",
        "NightStore": "._store",
        "StoreWindows": "._store_windows",
        "save_model_file": "._model_file",
        "load_model_file": "._model_file",
    },
)
