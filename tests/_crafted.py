"""A model file whose weights hold a pickle payload (for the safe-format tests)."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path


class _Payload:
    """Unpickling it would create the file ``marker`` (the 'attack')."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_crafted_model(model: Path, crafted: Path, marker: Path) -> Path:
    """Copy ``model``'s description and replace its weights with a pickle payload."""
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(crafted, "w") as dst:
        dst.writestr("model.json", src.read("model.json"))
        buffer = io.BytesIO()
        pickle.dump({"weight": _Payload(marker)}, buffer)
        dst.writestr("weights.pt", buffer.getvalue())
    return crafted
