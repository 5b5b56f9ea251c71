"""fnn: functional fully connected neural networks in JAX."""
from fnn import activations, backprop, initializers, layers, losses, numerical
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnError, FnnTypeError, FnnValueError
from fnn.layers import DenseParams
from fnn.models import Dense, Sequential, objective
from fnn.numerical import gradcheck, numerical_gradient

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "CheckpointNotFoundError", "Dense", "DenseParams", "FnnError", "FnnTypeError",
    "FnnValueError", "Sequential", "activations", "backprop", "gradcheck", "initializers", "layers",
    "losses", "numerical", "numerical_gradient", "objective",
]
