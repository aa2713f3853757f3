"""Shared fixtures for the sleepkd test-suite."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_configure(config):
    """One torch thread: the test networks are tiny, and on a loaded 2-core machine
    torch's spinning worker threads slow small fits down a hundredfold."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)

#: The real slpdb annotations in ../shared/data (the copy shipped with the package is
#: used when the shared folder is not there).
SHARED_SLPDB = Path(__file__).resolve().parents[2] / "shared" / "data" / "slpdb"


@pytest.fixture(scope="session")
def slpdb_dir() -> Path:
    """Folder with the slpdb WFDB annotation files."""
    if SHARED_SLPDB.is_dir():
        return SHARED_SLPDB
    from sleepkd.datasets import slpdb_path

    return slpdb_path()
