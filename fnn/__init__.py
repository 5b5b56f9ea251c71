"""fnn: functional fully connected neural networks in JAX.

The public API: the submodules, and their main names re-exported here; no logic beyond turning
JAX's compilation cache on (fnn.cache).
"""

from fnn import (
    activations,
    backprop,
    cache,
    callbacks,
    checkpoint,
    data,
    engine,
    errors,
    history,
    inference,
    initializers,
    layers,
    losses,
    lr_finder,
    metrics,
    models,
    numerical,
    optim,
    plot,
    regularizers,
    schedules,
    signals,
    surface,
    targets,
)
from fnn.activations import Activation
from fnn.checkpoint import load, save
from fnn.engine import TrainState
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnError, FnnTypeError, FnnValueError
from fnn.history import History
from fnn.inference import activations_of, evaluate, predict, predict_classes, predict_proba
from fnn.layers import DenseParams
from fnn.lr_finder import LRFindResult, lr_find
from fnn.models import Dense, Dropout, Sequential, objective
from fnn.numerical import gradcheck, numerical_gradient
from fnn.surface import landscape, sharpness
from fnn.sweep import SweepResult, sweep
from fnn.train import FitResult, fit
from fnn.trainer import Trainer

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
