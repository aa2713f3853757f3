"""Shared fixtures for the sleepkd test-suite."""

from __future__ import annotations

from pathlib import Path

import pytest

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
