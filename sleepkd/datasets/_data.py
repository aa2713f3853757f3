"""Where the data shipped inside sleepkd lives (``sleepkd/datasets/data/``)."""

from __future__ import annotations

from pathlib import Path


def slpdb_path() -> Path:
    """Folder of the slpdb annotation files shipped inside sleepkd.

    Returns
    -------
    path : pathlib.Path
        Folder holding ``REC.hea``, ``REC.ecg`` and ``REC.st`` for the 14 shipped
        records (see ``sleepkd/datasets/data/README.md`` for licence and citation).

    Examples
    --------
    >>> from sleepkd.datasets import slpdb_path
    >>> sorted(p.name for p in slpdb_path().glob("slp01a.*"))
    ['slp01a.ecg', 'slp01a.hea', 'slp01a.st']
    """
    return Path(__file__).resolve().parent / "data" / "slpdb"
