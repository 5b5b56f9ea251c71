"""fnn: functional fully connected neural networks in JAX."""
from fnn import cache
from fnn import (activations, backprop, checkpoint, data, engine, inference, initializers, layers, losses, metrics,
                 lr_finder, numerical, optim, plot, targets)
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnError, FnnTypeError, FnnValueError
from fnn.checkpoint import load, save
from fnn.layers import DenseParams
from fnn.models import Dense, Sequential, objective
from fnn.numerical import gradcheck, numerical_gradient
from fnn.sweep import SweepResult, sweep
from fnn.inference import evaluate, predict, predict_classes
from fnn.lr_finder import LRFindResult, lr_find
from fnn.train import FitResult, fit

cache.configure()  # JAX's persistent compilation cache, on unless turned off: see fnn/cache.py

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "CheckpointNotFoundError", "Dense", "DenseParams", "FnnError", "FnnTypeError",
    "FnnValueError", "Sequential", "activations", "backprop", "gradcheck", "initializers", "layers",
    "losses", "numerical", "numerical_gradient", "objective", "FitResult", "data", "evaluate", "fit", "metrics",
    "optim", "predict", "predict_classes", "checkpoint", "load", "save", "SweepResult", "sweep", "cache", "plot",
    "engine", "inference", "targets", "lr_find", "LRFindResult", "lr_finder",
]
