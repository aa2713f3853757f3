"""The safe model file (``.sleepkd``): a fitted stager that loads without running code.

A joblib (pickle) file can execute anything when it is loaded. A ``.sleepkd`` file is a
zip archive of two members:

- ``model.json``: the format marker, the sleepkd version that wrote it, the model
  bundle's fields (rates, epoch length, label scheme, provenance, ...) and the
  estimator as data: its class (one of sleepkd's estimators), its parameters, its
  fitted classes and input shape, and the network's registered name;
- ``weights.pt``: the network's ``state_dict``, read back with
  ``torch.load(..., weights_only=True)``, which refuses any pickled object other than
  tensors and plain containers. For a :class:`~sleepkd.SeedEnsemble` the description
  lists every member and ``weights.pt`` holds their state dicts with the prefixes
  ``member0.``, ``member1.``, ... (a sleepkd that predates ensembles refuses such a
  file with "unknown estimator 'SeedEnsemble'").

Loading rebuilds the estimator from its parameters, builds the network from the
registry and loads the weights: no code from the file runs. Only models whose network
is registered by name (not a user's own ``nn.Module`` class) and whose parameters are
plain data can be written; anything else is refused with a message pointing to joblib.
"""

from __future__ import annotations

import io
import json
import logging
import numbers
import os
import zipfile
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

#: Format marker of the file.
FILE_FORMAT = "sleepkd.model-file/1"
#: Conventional suffix of the file.
SUFFIX = ".sleepkd"
_JSON, _WEIGHTS = "model.json", "weights.pt"


def _estimator_classes() -> dict:
    from sleepkd.distillation._estimators import ECGStudent, EEGTeacher
    from sleepkd.distillation._night_estimators import ECGNightStudent, EEGNightTeacher

    return {cls.__name__: cls for cls in (ECGStudent, EEGTeacher, ECGNightStudent,
                                          EEGNightTeacher)}


def _plain(value, where: str):
    """``value`` as JSON data (tuples become lists), or a ValueError naming ``where``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    raise ValueError(
        f"{where} = {value!r} is not plain data (numbers, strings, lists, dicts), so the "
        "model cannot be written as a safe .sleepkd file; save it with joblib instead.")


def _bundle_kinds() -> dict:
    from sleepkd.evaluation._night_bundle import NIGHT_FORMAT, NightStagingModel

    return {NIGHT_FORMAT: NightStagingModel}


def save_model_file(model, path: str | os.PathLike) -> Path:
    """Write a model bundle as a safe ``.sleepkd`` file.

    Parameters
    ----------
    model : NightStagingModel
        The bundle; its estimator is an ECG student (or a ``DistilledECGStager``,
        whose student is what is stored: only the student runs at prediction), or a
        :class:`~sleepkd.SeedEnsemble` of them (every member is stored).
    path : str or path-like
        Destination; parent folders are created.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ValueError
        If the model's network is not registered by name or a parameter is not plain
        data (the message says which), or the estimator is not fitted.
    """
    import torch
    from sklearn.utils.validation import check_is_fitted

    kinds = _bundle_kinds()
    if getattr(model, "format", None) not in kinds:
        raise ValueError(f"Expected a sleepkd model bundle ({', '.join(kinds)}), got "
                         f"{type(model).__name__}.")
    described = {
        "format": FILE_FORMAT,
        "sleepkd_version": model.version,
        "bundle": {
            "format": model.format,
            "fields": {k: _plain(v, f"model.{k}") for k, v in vars(model).items()
                       if k not in ("estimator", "format")},
        },
    }
    from sleepkd.distillation._ensemble import SeedEnsemble

    if isinstance(model.estimator, SeedEnsemble):
        check_is_fitted(model.estimator, "estimators_")
        members = [_describe_estimator(m) for m in model.estimator.estimators_]
        described["estimator"] = {
            "class": "SeedEnsemble",
            # the members' seeds are the data; a RandomState is not kept
            "params": {"n_members": len(members),
                       "random_state": (int(model.estimator.random_state) if isinstance(
                           model.estimator.random_state, numbers.Integral) else None)},
            "seeds": [int(seed) for seed in model.estimator.seeds_],
            "members": [spec for spec, _ in members],
        }
        state = {f"member{k}.{name}": tensor for k, (_, weights) in enumerate(members)
                 for name, tensor in weights.items()}
    else:
        spec, state = _describe_estimator(model.estimator)
        described["estimator"] = spec
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_JSON, json.dumps(described, indent=1))
        archive.writestr(_WEIGHTS, buffer.getvalue())
    os.replace(tmp, path)  # never a half-written model file
    return path


def _describe_estimator(fitted) -> tuple[dict, dict]:
    """The description and weights of one fitted stager (the student of a cascade)."""
    from sklearn.utils.validation import check_is_fitted

    estimator = getattr(fitted, "student_", fitted)
    classes = _estimator_classes()
    if type(estimator).__name__ not in classes or type(estimator) is not classes[
            type(estimator).__name__]:
        raise ValueError(f"{type(estimator).__name__} cannot be written as a safe file; "
                         f"supported estimators: {sorted(classes)} (or a SeedEnsemble of "
                         "them).")
    check_is_fitted(estimator, "net_")
    params = estimator.get_params(deep=False)
    # training-only settings that are not data: the loaded model predicts on the CPU
    params["accelerator"] = None
    params["device"] = "cpu"
    if not isinstance(params["module"], str):
        raise ValueError(
            f"The network {params['module']!r} is a class, not a registered name: the "
            "safe file rebuilds networks by name only; save this model with joblib.")
    spec = {
        "class": type(estimator).__name__,
        "params": {k: _plain(v, f"estimator.{k}") for k, v in params.items()},
        "classes": _plain(np.asarray(estimator.classes_).tolist(), "classes_"),
        "input_shape": [int(d) for d in estimator.input_shape_],
        "n_features_in": int(estimator.n_features_in_),
        "distilled": estimator is not fitted,
    }
    state = {k: v.detach().cpu() for k, v in estimator.module_.state_dict().items()}
    return spec, state


def load_model_file(path: str | os.PathLike):
    """Read a safe ``.sleepkd`` model file; no code from the file is executed.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    model : NightStagingModel
        The bundle, with a fitted estimator that predicts as the saved one did (the
        student of a distilled stager; a SeedEnsemble of the members' students for an
        ensemble).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a sleepkd model file, is corrupt, names an unknown
        estimator or network, or its weights hold anything but tensors (e.g. a pickle
        payload); the message names the file.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such model file: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            described = json.loads(archive.read(_JSON).decode("utf-8"))
            weights = archive.read(_WEIGHTS)
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a sleepkd model file ({type(exc).__name__}: "
                         f"{exc}).") from exc
    if not isinstance(described, dict) or described.get("format") != FILE_FORMAT:
        raise ValueError(f"{path} is not a sleepkd model file (format "
                         f"{described.get('format') if isinstance(described, dict) else None!r}, "
                         f"expected {FILE_FORMAT!r}).")
    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: the weights were refused: they hold something other "
                         f"than tensors ({' '.join(str(exc).split())[:300]}).") from exc
    try:
        model = _rebuild(described, state)
    except (KeyError, TypeError, RuntimeError) as exc:  # RuntimeError: weights' shapes
        raise ValueError(f"{path}: incomplete or inconsistent model description "
                         f"({type(exc).__name__}: {exc}).") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    from sleepkd import __version__

    if described.get("sleepkd_version") != __version__:
        logger.warning("%s was written by sleepkd %s; this is sleepkd %s: check its "
                       "predictions.", path, described.get("sleepkd_version"), __version__)
    return model


def _rebuild(described: dict, state: dict):
    """The bundle and its fitted estimator, from the description and the weights."""
    spec = described["estimator"]
    if spec["class"] == "SeedEnsemble":
        estimator = _rebuild_ensemble(spec, state)
    else:
        estimator = _rebuild_estimator(spec, state)
    bundle = described["bundle"]
    kinds = _bundle_kinds()
    if bundle["format"] not in kinds:
        raise ValueError(f"unknown model kind {bundle['format']!r}.")
    return kinds[bundle["format"]](estimator=estimator, **bundle["fields"])


def _rebuild_ensemble(spec: dict, state: dict):
    from sleepkd.distillation._ensemble import SeedEnsemble

    members = []
    for k, member in enumerate(spec["members"]):
        prefix = f"member{k}."
        weights = {name[len(prefix):]: tensor for name, tensor in state.items()
                   if name.startswith(prefix)}
        members.append(_rebuild_estimator(member, weights))
    if not members or not len(spec["seeds"]) == len(members) == spec["params"]["n_members"]:
        raise ValueError(f"the ensemble lists {len(members)} members, "
                         f"{len(spec['seeds'])} seeds and n_members="
                         f"{spec['params']['n_members']}.")
    for member in members[1:]:
        if not np.array_equal(member.classes_, members[0].classes_):
            raise ValueError(f"the ensemble's members have different classes "
                             f"({members[0].classes_.tolist()} and "
                             f"{member.classes_.tolist()}).")
    unfitted = _estimator_classes()[spec["members"][0]["class"]](
        **spec["members"][0]["params"])
    ensemble = SeedEnsemble(unfitted, **spec["params"])
    ensemble.estimators_ = members
    ensemble.seeds_ = [int(seed) for seed in spec["seeds"]]
    ensemble.classes_ = members[0].classes_
    ensemble.n_features_in_ = members[0].n_features_in_
    return ensemble


def _rebuild_estimator(spec: dict, state: dict):
    """One fitted stager from its description and its network's weights."""
    from sleepkd.distillation._losses import ClassificationLoss
    from sleepkd.distillation._nets import StagingNet
    from sleepkd.distillation._night_nets import NightStagingNet

    classes = _estimator_classes()
    if spec["class"] not in classes:
        raise ValueError(f"unknown estimator {spec['class']!r}; expected one of "
                         f"{sorted(classes)} or SeedEnsemble.")
    estimator = classes[spec["class"]](**spec["params"])
    estimator.classes_ = np.asarray(spec["classes"])
    estimator.input_shape_ = tuple(spec["input_shape"])
    estimator.n_features_in_ = int(spec["n_features_in"])
    shape = estimator.input_shape_
    n_chans, n_times = (1, shape[0]) if len(shape) == 1 else shape
    module = estimator._build_module(n_chans, n_times, seed=0)
    module.load_state_dict(state, strict=True)
    module.eval()
    net_class = NightStagingNet if getattr(estimator, "reads_nights", False) else StagingNet
    estimator.net_ = net_class(module=module, criterion=ClassificationLoss,
                               batch_size=estimator.batch_size, device="cpu").initialize()
    estimator.net_.module_.eval()
    estimator.history_ = []
    return estimator
