"""fnn: functional fully connected neural networks in JAX.

The public API: the submodules, and their main names re-exported here; no logic beyond turning
JAX's compilation cache on (fnn.cache) and loading, on first use, what a plain `fit` never needs
(`_LAZY`: checkpoint files, pictures, the learning-rate finder, numerical gradients).
`fnn.save`, `fnn.plot`, `from fnn import plot` work as if they had been imported here (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fnn import (
    activations,
    backprop,
    cache,
    callbacks,
    data,
    engine,
    errors,
    history,
    inference,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optim,
    regularizers,
    schedules,
    surface,
    targets,
)
from fnn.activations import Activation
from fnn.engine import TrainState
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnError, FnnTypeError, FnnValueError
from fnn.history import History
from fnn.inference import activations_of, evaluate, predict, predict_classes, predict_proba
from fnn.layers import DenseParams
from fnn.models import Dense, Dropout, Sequential, objective
from fnn.surface import landscape, sharpness
from fnn.sweep import SweepResult, sweep  # eager: the function shadows its module's name, as always
from fnn.train import FitResult, fit
from fnn.trainer import Trainer

if TYPE_CHECKING:  # what _LAZY loads on first use, as a type checker sees it
    from fnn import checkpoint, lr_finder, numerical, plot, signals
    from fnn.checkpoint import load, save
    from fnn.lr_finder import LRFindResult, lr_find
    from fnn.numerical import gradcheck, numerical_gradient

# name -> (module, attribute; None for the module itself). A plain fit imports none of these:
# together they cost ~35 ms of `import fnn` (plot and its pictures' modules alone ~20 ms).
_LAZY: dict[str, tuple[str, str | None]] = {
    "checkpoint": ("fnn.checkpoint", None),
    "load": ("fnn.checkpoint", "load"),
    "save": ("fnn.checkpoint", "save"),
    "lr_finder": ("fnn.lr_finder", None),
    "LRFindResult": ("fnn.lr_finder", "LRFindResult"),
    "lr_find": ("fnn.lr_finder", "lr_find"),
    "numerical": ("fnn.numerical", None),
    "gradcheck": ("fnn.numerical", "gradcheck"),
    "numerical_gradient": ("fnn.numerical", "numerical_gradient"),
    "plot": ("fnn.plot", None),
    "signals": ("fnn.signals", None),
}


def __getattr__(name: str) -> Any:
    """Import a name of `_LAZY` on first use (PEP 562) and keep it here, so the next use is free."""
    if name not in _LAZY:
        raise AttributeError(f"module 'fnn' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


cache.configure()  # JAX's persistent compilation cache, on unless turned off: see fnn/cache.py

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "CheckpointError",
    "CheckpointNotFoundError",
    "Dense",
    "DenseParams",
    "Dropout",
    "FitResult",
    "FnnError",
    "FnnTypeError",
    "FnnValueError",
    "History",
    "LRFindResult",
    "Sequential",
    "SweepResult",
    "TrainState",
    "Trainer",
    "activations",
    "activations_of",
    "backprop",
    "cache",
    "callbacks",
    "checkpoint",
    "data",
    "engine",
    "errors",
    "evaluate",
    "fit",
    "gradcheck",
    "history",
    "inference",
    "initializers",
    "landscape",
    "layers",
    "load",
    "losses",
    "lr_find",
    "lr_finder",
    "metrics",
    "models",
    "numerical",
    "numerical_gradient",
    "objective",
    "optim",
    "plot",
    "predict",
    "predict_classes",
    "predict_proba",
    "regularizers",
    "save",
    "schedules",
    "sharpness",
    "signals",
    "surface",
    "sweep",
    "targets",
]
