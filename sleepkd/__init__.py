"""sleepkd: sleep staging from a single-lead ECG, distilled from an EEG model.

The public names are imported lazily so that ``import sleepkd`` stays fast: torch,
skorch and neurokit2 are loaded only when an estimator or transformer that needs them
is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_LAZY = {
    "to_scheme": "sleepkd.stages",
    "Recording": "sleepkd.datasets._recording",
    "BandpassFilter": "sleepkd.signal._filter",
    "detect_rpeaks": "sleepkd.signal._rpeaks",
    "HeartRateTransformer": "sleepkd.signal._heart_rate",
    "HRVFeatures": "sleepkd.signal._hrv",
    "EEGTeacher": "sleepkd.distillation._estimators",
    "ECGStudent": "sleepkd.distillation._estimators",
    "DistilledECGStager": "sleepkd.distillation._stager",
    "EEGNightTeacher": "sleepkd.distillation._night_estimators",
    "ECGNightStudent": "sleepkd.distillation._night_estimators",
    "SeedEnsemble": "sleepkd.distillation._ensemble",
    "instantaneous_heart_rate": "sleepkd.signal._ihr",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from sleepkd.datasets._recording import Recording
    from sleepkd.distillation._estimators import ECGStudent, EEGTeacher
    from sleepkd.distillation._ensemble import SeedEnsemble
    from sleepkd.distillation._night_estimators import ECGNightStudent, EEGNightTeacher
    from sleepkd.distillation._stager import DistilledECGStager
    from sleepkd.signal._filter import BandpassFilter
    from sleepkd.signal._heart_rate import HeartRateTransformer
    from sleepkd.signal._hrv import HRVFeatures
    from sleepkd.signal._ihr import instantaneous_heart_rate
    from sleepkd.signal._rpeaks import detect_rpeaks
    from sleepkd.stages import to_scheme


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sleepkd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
