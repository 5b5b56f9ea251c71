"""Losses on (predictions, targets), each beside its gradient ∂L/∂predictions.

Each loss is a mean over the batch (and over output components for MSE and binary CE).
The `*_grad` functions return ∂L/∂(first argument), shaped like it. Two fused pairs work on
logits z (the last layer's pre-activation) because σ/softmax followed by a log loses all
precision in the tails: sigmoid + binary CE and softmax + categorical CE, whose gradients
simplify to (ŷ − y) / n.

Targets: `mse` and binary CE take (n, k) or, for one output, (n,); categorical CE takes integer
class labels (n,) or one-hot/probability rows (n, k). `prepare_targets` turns any accepted
form into the (n, k) float array the pure functions below compute with.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate
from fnn.errors import FnnTypeError, FnnValueError

Array = jax.Array

MSE = "mse"
BINARY_CE = "binary_cross_entropy"
CATEGORICAL_CE = "categorical_cross_entropy"
LOSSES = (MSE, BINARY_CE, CATEGORICAL_CE)
_ALIASES = {
    "mean_squared_error": MSE,
    "bce": BINARY_CE,
    "binary_crossentropy": BINARY_CE,
    "categorical_crossentropy": CATEGORICAL_CE,
    "sparse_categorical_cross_entropy": CATEGORICAL_CE,
    "cross_entropy": CATEGORICAL_CE,
}


def canonical_name(loss: str) -> str:
    """The registry name of a loss; unknown names are refused."""
    if not isinstance(loss, str):
        raise FnnTypeError(f"loss must be a name (str), got {type(loss).__name__} {loss!r}; "
                           f"choose one of {list(LOSSES)}")
    name = _ALIASES.get(loss.lower(), loss.lower())
    if name not in LOSSES:
        raise FnnValueError(f"unknown loss {loss!r}; choose one of {list(LOSSES)}")
    return name


# --------------------------------------------------------------------------- mean squared error
def mse(pred: Array, y: Array) -> Array:
    """mean((pred − y)²) over samples and components. pred, y: (n, k) (or (n,) for k = 1)."""
    pred, y = _pair(pred, y, MSE)
    return jnp.mean((pred - y) ** 2)


def mse_grad(pred: Array, y: Array) -> Array:
    """∂mse/∂pred = 2 (pred − y) / (n k), shaped like pred."""
    p, t = _pair(pred, y, MSE)
    return (2 * (p - t) / p.size).reshape(jnp.shape(pred))


# --------------------------------------------------------------------------- binary cross-entropy
def _clip_eps(dtype):
    return float(jnp.finfo(dtype).eps)


def binary_cross_entropy(probs: Array, y: Array) -> Array:
    """−mean(y log p + (1 − y) log(1 − p)), p clipped to [eps, 1 − eps]. probs, y: (n, k) or (n,)."""
    p, t = _pair(probs, y, BINARY_CE, probabilities=True)
    eps = _clip_eps(p.dtype)
    p = jnp.clip(p, eps, 1 - eps)
    return -jnp.mean(t * jnp.log(p) + (1 - t) * jnp.log1p(-p))


def binary_cross_entropy_grad(probs: Array, y: Array) -> Array:
    """∂/∂p = (p − y) / (p (1 − p) n k); 0 where p was clipped."""
    p, t = _pair(probs, y, BINARY_CE, probabilities=True)
    eps = _clip_eps(p.dtype)
    inside = (p >= eps) & (p <= 1 - eps)
    pc = jnp.clip(p, eps, 1 - eps)
    g = jnp.where(inside, (pc - t) / (pc * (1 - pc)), 0.0) / p.size
    return g.reshape(jnp.shape(probs))


def sigmoid_binary_cross_entropy(logits: Array, y: Array) -> Array:
    """binary_cross_entropy(σ(z), y) computed from z as mean(softplus(z) − y z): exact for any z."""
    z, t = _pair(logits, y, BINARY_CE)
    return jnp.mean(jnp.logaddexp(0.0, z) - t * z)


def sigmoid_binary_cross_entropy_grad(logits: Array, y: Array) -> Array:
    """∂/∂z = (σ(z) − y) / (n k)."""
    z, t = _pair(logits, y, BINARY_CE)
    return ((jax.nn.sigmoid(z) - t) / z.size).reshape(jnp.shape(logits))


# --------------------------------------------------------------------------- categorical cross-entropy
def categorical_cross_entropy(probs: Array, y: Array) -> Array:
    """−(1/n) Σ y log p over (n, k) probabilities, p clipped to [eps, 1]; y: labels (n,) or (n, k)."""
    p, t = _pair(probs, y, CATEGORICAL_CE, probabilities=True)
    p = jnp.clip(p, _clip_eps(p.dtype), 1.0)
    return -jnp.sum(t * jnp.log(p)) / p.shape[0]


def categorical_cross_entropy_grad(probs: Array, y: Array) -> Array:
    """∂/∂p = −y / (p n); 0 where p was clipped."""
    p, t = _pair(probs, y, CATEGORICAL_CE, probabilities=True)
    eps = _clip_eps(p.dtype)
    return jnp.where(p >= eps, -t / jnp.clip(p, eps, 1.0), 0.0) / p.shape[0]


def softmax_cross_entropy(logits: Array, y: Array) -> Array:
    """categorical_cross_entropy(softmax(z), y) from z: (1/n) Σ_i [Σ_j y_ij · (logsumexp(z_i) − z_ij)]."""
    z, t = _pair(logits, y, CATEGORICAL_CE)
    log_probs = z - jax.scipy.special.logsumexp(z, axis=-1, keepdims=True)
    return -jnp.sum(t * log_probs) / z.shape[0]


def softmax_cross_entropy_grad(logits: Array, y: Array) -> Array:
    """∂/∂z = (softmax(z) Σ_j y_j − y) / n, i.e. (ŷ − y) / n for rows that sum to 1."""
    z, t = _pair(logits, y, CATEGORICAL_CE)
    s = jax.nn.softmax(z, axis=-1)
    return (s * t.sum(axis=-1, keepdims=True) - t) / z.shape[0]


# --------------------------------------------------------------------------- targets
def prepare_targets(y, loss: str, n_outputs: int, dtype=jnp.float32, name: str = "y") -> Array:
    """Any accepted target form -> (n, n_outputs) array of `dtype`, checked against the loss.

    mse / binary CE: (n, k) or (n,) when k = 1; binary CE labels must be 0 or 1.
    categorical CE: integer labels (n,) or (n, 1) in [0, k), or (n, k) rows >= 0 summing to 1.
    Never broadcasts (n,) against (n, 1): ambiguous shapes are refused.
    """
    loss = canonical_name(loss)
    y = _validate.array(y, name)
    _validate.check_finite(y, name)
    if y.ndim == 0 or y.ndim > 2:
        raise FnnValueError(f"{name} must be (n_samples,) or (n_samples, {n_outputs}), got shape {tuple(y.shape)}")
    if y.shape[0] == 0:
        raise FnnValueError(f"{name} has 0 samples (shape {tuple(y.shape)})")
    if loss == CATEGORICAL_CE:
        return _categorical_targets(y, n_outputs, dtype, name)
    if y.ndim == 1:
        if n_outputs != 1:
            raise FnnValueError(f"{name} has shape {tuple(y.shape)} but the model has {n_outputs} outputs; "
                                f"pass {name} of shape (n_samples, {n_outputs})")
        y = y[:, None]
    elif y.shape[1] != n_outputs:
        raise FnnValueError(f"{name} has {y.shape[1]} columns (shape {tuple(y.shape)}) but the model has "
                            f"{n_outputs} outputs")
    if loss == BINARY_CE and _validate.is_concrete(y):
        values = np.asarray(y)
        bad = (values != 0) & (values != 1)
        if bad.any():
            i = tuple(int(v) for v in np.argwhere(bad)[0])
            raise FnnValueError(f"binary_cross_entropy needs labels 0 or 1 in {name}; found {values[i]} at row "
                                f"{i[0]}; for k classes use softmax with categorical_cross_entropy")
    return jnp.asarray(y, dtype)


def _categorical_targets(y, k, dtype, name):
    labels = y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and k != 1)
    if labels:
        y = y.reshape(-1)
        if _validate.is_concrete(y):
            values = np.asarray(y)
            if values.dtype.kind == "f" and (values != np.round(values)).any():
                i = int(np.argwhere(values != np.round(values))[0, 0])
                raise FnnValueError(f"{name} looks like class labels (shape {tuple(y.shape)}) but {name}[{i}] = "
                                    f"{values[i]} is not an integer")
            bad = (values < 0) | (values >= k)
            if bad.any():
                i = int(np.argwhere(bad)[0, 0])
                raise FnnValueError(f"class label {name}[{i}] = {values[i]} is out of range: the model has {k} "
                                    f"output units, so labels must be in 0..{k - 1}")
        return jax.nn.one_hot(jnp.asarray(y).astype(jnp.int32), k, dtype=dtype)
    if y.shape[1] != k:
        raise FnnValueError(f"one-hot {name} has width {y.shape[1]} (shape {tuple(y.shape)}) but the model has {k} "
                            f"output units; pass (n, {k}) rows or integer labels (n,)")
    if _validate.is_concrete(y):
        values = np.asarray(y, dtype=np.float64)
        sums = values.sum(axis=1)
        if (values < 0).any():
            i, j = (int(v) for v in np.argwhere(values < 0)[0])
            raise FnnValueError(f"one-hot {name} row {i} has a negative entry {values[i, j]:.6g} at column {j}; "
                                "each row must be >= 0 and sum to 1, or pass integer labels (n,)")
        bad = np.abs(sums - 1) > 1e-4
        if bad.any():
            i = int(np.argwhere(bad)[0, 0])
            raise FnnValueError(f"one-hot {name} row {i} sums to {sums[i]:.6g}; "
                                "each row must be >= 0 and sum to 1, or pass integer labels (n,)")
    return jnp.asarray(y, dtype)


def _pair(pred, y, loss, probabilities=False):
    """(pred, y) as (n, k) arrays; y in any accepted form; both checked when concrete
    (finite, and in [0, 1] for probabilities)."""
    pred = _validate.array(pred, "predictions")
    if pred.ndim == 1 and loss != CATEGORICAL_CE:
        pred = pred[:, None]
    if pred.ndim != 2:
        raise FnnValueError(f"predictions must be (n_samples, n_outputs), got shape {tuple(pred.shape)}")
    if pred.shape[0] == 0:
        raise FnnValueError(f"predictions has 0 samples (shape {tuple(pred.shape)})")
    if pred.shape[1] == 0:
        raise FnnValueError(f"predictions has 0 outputs (shape {tuple(pred.shape)})")
    _validate.check_finite(pred, "predictions")
    if probabilities and _validate.is_concrete(pred):
        values = np.asarray(pred)
        outside = (values < 0) | (values > 1)
        if outside.any():
            i, j = (int(v) for v in np.argwhere(outside)[0])
            raise FnnValueError(f"predictions must be probabilities in [0, 1]; found {values[i, j]} at row {i}, "
                                f"column {j}; pass logits to the sigmoid_/softmax_ versions instead")
    pred = jnp.asarray(pred)
    if not jnp.issubdtype(pred.dtype, jnp.floating):
        pred = pred.astype(jnp.float32)
    t = prepare_targets(y, loss, pred.shape[1], pred.dtype)
    if t.shape[0] != pred.shape[0]:
        raise FnnValueError(f"predictions and y have different numbers of samples: {pred.shape[0]} and {t.shape[0]}")
    return pred, t


# --------------------------------------------------------------------------- pairing with an output layer
class LossSpec(NamedTuple):
    """A loss resolved against the output activation: on logits for the fused pairs."""

    name: str
    from_logits: bool


def resolve(loss: str, output_activation: str, n_outputs: int) -> LossSpec:
    """Pair a loss with the model's output layer; refuse pairs that cannot learn, naming the fix."""
    name = canonical_name(loss)
    if name == MSE:
        return LossSpec(MSE, False)
    if name == BINARY_CE:
        if output_activation == "sigmoid":
            return LossSpec(BINARY_CE, True)
        if output_activation == "softmax":
            raise FnnValueError(
                f"binary_cross_entropy on a softmax output of {n_outputs} units: use "
                "Dense(1, activation='sigmoid') for two classes, or categorical_cross_entropy with softmax")
        raise FnnValueError(
            f"binary_cross_entropy needs probabilities, but the output activation is {output_activation!r}; "
            "use activation='sigmoid' on the last layer")
    if n_outputs < 2:
        raise FnnValueError(
            "categorical_cross_entropy needs a softmax output of k >= 2 units, the model has 1 output unit; "
            "for two classes use Dense(1, activation='sigmoid') with binary_cross_entropy")
    if output_activation != "softmax":
        raise FnnValueError(
            f"categorical_cross_entropy needs a softmax output, but the output activation is "
            f"{output_activation!r}; use Dense({n_outputs}, activation='softmax') as the last layer")
    return LossSpec(CATEGORICAL_CE, True)


_FUNCTIONS = {
    (MSE, False): (mse, mse_grad),
    (BINARY_CE, False): (binary_cross_entropy, binary_cross_entropy_grad),
    (BINARY_CE, True): (sigmoid_binary_cross_entropy, sigmoid_binary_cross_entropy_grad),
    (CATEGORICAL_CE, False): (categorical_cross_entropy, categorical_cross_entropy_grad),
    (CATEGORICAL_CE, True): (softmax_cross_entropy, softmax_cross_entropy_grad),
}


def value(spec: LossSpec, out: Array, y: Array) -> Array:
    """The loss of `out` (logits when spec.from_logits) against prepared (n, k) targets."""
    return _FUNCTIONS[tuple(spec)][0](out, y)


def grad(spec: LossSpec, out: Array, y: Array) -> Array:
    """∂loss/∂out for prepared (n, k) targets; ∂L/∂z = (ŷ − y)/n for the fused pairs."""
    return _FUNCTIONS[tuple(spec)][1](out, y)


def per_sample(spec: LossSpec, out: Array, y: Array) -> Array:
    """(n,) per-sample losses whose mean is `value` (for masked batches): out, y prepared (n, k)."""
    if spec.name == MSE:
        return jnp.mean((out - y) ** 2, axis=-1)
    if spec.name == BINARY_CE:
        if spec.from_logits:
            return jnp.mean(jnp.logaddexp(0.0, out) - y * out, axis=-1)
        p = jnp.clip(out, _clip_eps(out.dtype), 1 - _clip_eps(out.dtype))
        return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log1p(-p), axis=-1)
    if spec.from_logits:
        return -jnp.sum(y * (out - jax.scipy.special.logsumexp(out, axis=-1, keepdims=True)), axis=-1)
    return -jnp.sum(y * jnp.log(jnp.clip(out, _clip_eps(out.dtype), 1.0)), axis=-1)
