"""fnn: functional fully connected neural networks in JAX."""
from fnn import activations, backprop, checkpoint, data, initializers, layers, losses, metrics, numerical, optim
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnError, FnnTypeError, FnnValueError
from fnn.checkpoint import load, save
from fnn.layers import DenseParams
from fnn.models import Dense, Sequential, objective
from fnn.numerical import gradcheck, numerical_gradient
from fnn.sweep import SweepResult, sweep
from fnn.train import FitResult, evaluate, fit, predict, predict_classes

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "CheckpointNotFoundError", "Dense", "DenseParams", "FnnError", "FnnTypeError",
    "FnnValueError", "Sequential", "activations", "backprop", "gradcheck", "initializers", "layers",
    "losses", "numerical", "numerical_gradient", "objective", "FitResult", "data", "evaluate", "fit", "metrics",
    "optim", "predict", "predict_classes", "checkpoint", "load", "save", "SweepResult", "sweep",
]
