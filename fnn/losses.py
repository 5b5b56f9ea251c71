"""Losses on (predictions, targets), each beside its gradient ∂L/∂predictions, and the registry.

Each loss is a mean over the batch (and over output components for MSE and binary CE).
The `*_grad` functions return ∂L/∂(first argument), shaped like it. Two fused pairs work on
logits z (the last layer's pre-activation) because σ/softmax followed by a log loses all
precision in the tails: sigmoid + binary CE and softmax + categorical CE, whose gradients
simplify to (ŷ − y) / n.

`LOSSES` is the registry fit, evaluate and backprop use: one `Loss` record per loss, holding its
per-sample value, its gradient, its metric, the output activation it pairs with, whether it is
fused on logits and the targets it takes. A new loss is one new entry; its metric and its
default pairing follow from the record. Targets: see `fnn.targets`.

Besides a name, fit, evaluate and fnn.objective take a record (`huber_loss(delta)`,
`binary_focal_loss(gamma, alpha)`: losses with numbers) or a user's callable loss(pred, y) -> (n,)
per-sample losses (`from_callable`), which jax.grad differentiates: it has no hand-written gradient.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnn import metrics, targets
from fnn._more_losses import (
    BINARY_FOCAL,
    HUBER,
    MAE,
    focal_params,
    huber,
    huber_delta,
    huber_grad,
    huber_per_sample,
    mae,
    mae_grad,
    mae_per_sample,
    sigmoid_binary_focal_cross_entropy,
    sigmoid_binary_focal_cross_entropy_grad,
    sigmoid_binary_focal_cross_entropy_per_sample,
)
from fnn.errors import FnnTypeError, FnnValueError
from fnn.targets import warn_if_one_class_per_row

__all__ = [
    "ALIASES",
    "BINARY_CE",
    "BINARY_FOCAL",
    "CATEGORICAL_CE",
    "HUBER",
    "LOSSES",
    "MAE",
    "MSE",
    "ON_PROBABILITIES",
    "Loss",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_per_sample",
    "binary_focal_loss",
    "canonical_name",
    "categorical_cross_entropy",
    "categorical_cross_entropy_grad",
    "categorical_cross_entropy_per_sample",
    "from_callable",
    "grad",
    "huber",
    "huber_grad",
    "huber_loss",
    "huber_per_sample",
    "mae",
    "mae_grad",
    "mae_per_sample",
    "mse",
    "mse_grad",
    "mse_per_sample",
    "per_sample",
    "prepare_targets",
    "resolve",
    "sigmoid_binary_cross_entropy",
    "sigmoid_binary_cross_entropy_grad",
    "sigmoid_binary_cross_entropy_per_sample",
    "sigmoid_binary_focal_cross_entropy",
    "sigmoid_binary_focal_cross_entropy_grad",
    "sigmoid_binary_focal_cross_entropy_per_sample",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_cross_entropy_per_sample",
    "unfused",
    "value",
    "warn_if_one_class_per_row",
]

Array = jax.Array

MSE = "mse"
BINARY_CE = "binary_cross_entropy"
CATEGORICAL_CE = "categorical_cross_entropy"
ALIASES = {  # Keras' names and common short forms
    "mean_squared_error": MSE,
    "mean_absolute_error": MAE,
    "huber_loss": HUBER,
    "binary_focal_crossentropy": BINARY_FOCAL,
    "focal": BINARY_FOCAL,
    "bce": BINARY_CE,
    "binary_crossentropy": BINARY_CE,
    "categorical_crossentropy": CATEGORICAL_CE,
    "sparse_categorical_crossentropy": CATEGORICAL_CE,
    "sparse_categorical_cross_entropy": CATEGORICAL_CE,
    "cross_entropy": CATEGORICAL_CE,
}


def _pair(pred, y, loss, probabilities=False):
    return targets.pair(pred, y, LOSSES[loss].targets, probabilities, loss=loss)


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
    g = jnp.where(inside, (pc - t) / (pc * (1 - pc)), 0.0 * p) / p.size  # 0·p: a traced NaN stays NaN
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
    return jnp.where(p >= eps, -t / jnp.clip(p, eps, 1.0), 0.0 * p) / p.shape[0]  # 0·p: NaN stays NaN


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


# --------------------------------------------------------------------------- per sample
def mse_per_sample(pred: Array, t: Array) -> Array:
    """(n,): mean over components of (pred − t)²; t prepared (n, k)."""
    return jnp.mean((pred - t) ** 2, axis=-1)


def sigmoid_binary_cross_entropy_per_sample(logits: Array, t: Array) -> Array:
    """(n,): mean over components of softplus(z) − t z."""
    return jnp.mean(jnp.logaddexp(0.0, logits) - t * logits, axis=-1)


def _probability_rows(probs: Array, per_row: Array) -> Array:
    """per_row (n,), NaN where a row of probs holds a value outside [0, 1] or NaN: these forms take
    prepared, unchecked inputs (traced ones too), and an invalid one must never look plausible."""
    return jnp.where(jnp.all((probs >= 0) & (probs <= 1), axis=-1), per_row, jnp.nan)


def binary_cross_entropy_per_sample(probs: Array, t: Array) -> Array:
    """(n,): −mean over components of t log p + (1 − t) log(1 − p), p clipped; NaN for a row outside [0, 1]."""
    eps = _clip_eps(probs.dtype)
    p = jnp.clip(probs, eps, 1 - eps)
    return _probability_rows(probs, -jnp.mean(t * jnp.log(p) + (1 - t) * jnp.log1p(-p), axis=-1))


def _picked(values: Array, labels: Array) -> Array:
    """(n,): values[i, labels[i]]: what Σ_j t_j values_j is for one-hot t, without the one-hot."""
    return jnp.take_along_axis(values, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]


def softmax_cross_entropy_per_sample(logits: Array, t: Array) -> Array:
    """(n,): Σ_j t_j (logsumexp(z) − z_j); t (n, k) rows or (n,) int labels (then logsumexp(z) − z_label)."""
    lse = jax.scipy.special.logsumexp(logits, axis=-1)
    if t.ndim == 1:
        return lse - _picked(logits, t)
    return -jnp.sum(t * (logits - lse[:, None]), axis=-1)


def categorical_cross_entropy_per_sample(probs: Array, t: Array) -> Array:
    """(n,): −Σ_j t_j log p_j, p clipped; t (n, k) rows or (n,) int labels. NaN for a row outside [0, 1]."""
    log_p = jnp.log(jnp.clip(probs, _clip_eps(probs.dtype), 1.0))
    return _probability_rows(probs, -_picked(log_p, t) if t.ndim == 1 else -jnp.sum(t * log_p, axis=-1))


# --------------------------------------------------------------------------- the registry
class Loss(NamedTuple):
    """One loss: everything fit, evaluate and backprop need. Hashable: a static jit argument."""

    name: str
    value: Callable[[Array, Array], Array]  # (out, y) -> scalar mean
    grad: Callable[[Array, Array], Array] | None  # ∂value/∂out, shaped like out; None for a user's callable
    per_sample: Callable[[Array, Array], Array]  # (out, t prepared: (n, k), or (n,) labels) -> (n,)
    metric: metrics.Metric
    activation: str | None  # the output activation it pairs with (None: any)
    from_logits: bool  # computed from the last layer's pre-activation
    targets: str  # the targets it takes: a kind of fnn.targets


LOSSES = {
    MSE: Loss(MSE, mse, mse_grad, mse_per_sample, metrics.MSE, None, False, targets.REAL),
    BINARY_CE: Loss(
        BINARY_CE,
        sigmoid_binary_cross_entropy,
        sigmoid_binary_cross_entropy_grad,
        sigmoid_binary_cross_entropy_per_sample,
        metrics.BINARY_ACCURACY,
        "sigmoid",
        True,
        targets.BINARY,
    ),
    CATEGORICAL_CE: Loss(
        CATEGORICAL_CE,
        softmax_cross_entropy,
        softmax_cross_entropy_grad,
        softmax_cross_entropy_per_sample,
        metrics.ACCURACY,
        "softmax",
        True,
        targets.CATEGORICAL,
    ),
    MAE: Loss(MAE, mae, mae_grad, mae_per_sample, metrics.MAE, None, False, targets.REAL),
}


@dataclasses.dataclass(frozen=True)
class _Bound:
    """f(out, y, **params) with the params fixed; equal when f and the params are, so a record built
    twice with the same numbers is the same static structure (one compiled program)."""

    f: Callable
    params: tuple  # ((name, value), ...)

    def __call__(self, out: Array, y: Array) -> Array:
        return self.f(out, y, **dict(self.params))


def huber_loss(delta: float = 1.0) -> Loss:
    """The Huber loss record with this delta, for loss= of fit, evaluate and fnn.objective ("huber" is delta = 1).

    Its name stays "huber" (checkpoints and logs record that); the delta is static structure.

    Example:
        >>> fnn.losses.huber_loss(delta=0.5).grad(jnp.array([2.0, 0.25]), jnp.zeros(2))  # clip(d, ±δ) / n
        Array([0.25 , 0.125], dtype=float64)
    """
    p = (("delta", huber_delta(delta)),)
    return Loss(
        HUBER,
        _Bound(huber, p),
        _Bound(huber_grad, p),
        _Bound(huber_per_sample, p),
        metrics.MAE,
        None,
        False,
        targets.REAL,
    )


def binary_focal_loss(gamma: float = 2.0, alpha: float | None = None) -> Loss:
    """The binary focal cross-entropy record (on a sigmoid output, fused on its logits) with these gamma and alpha,
    for loss= of fit, evaluate and fnn.objective ("binary_focal_cross_entropy" is gamma = 2, no alpha, as Keras).

    Example:
        >>> fnn.evaluate(model, params, x, y, loss=fnn.losses.binary_focal_loss(gamma=2.0, alpha=0.25))
        {'loss': 0.11, 'accuracy': 0.53}
    """
    gamma, alpha = focal_params(gamma, alpha)
    p = (("gamma", gamma), ("alpha", alpha))
    return Loss(
        BINARY_FOCAL,
        _Bound(sigmoid_binary_focal_cross_entropy, p),
        _Bound(sigmoid_binary_focal_cross_entropy_grad, p),
        _Bound(sigmoid_binary_focal_cross_entropy_per_sample, p),
        metrics.BINARY_ACCURACY,
        "sigmoid",
        True,
        targets.BINARY,
    )


@dataclasses.dataclass(frozen=True)
class _UserPerSample:
    fn: Callable

    def __call__(self, out: Array, t: Array) -> Array:
        per = jnp.asarray(self.fn(out, t))
        if per.shape != (out.shape[0],):
            raise FnnValueError(
                f"loss {_name_of(self.fn)!r} returned shape {tuple(per.shape)} for {out.shape[0]} samples; a callable "
                f"loss(pred, y) must return one loss per sample, shape ({out.shape[0]},) (e.g. a mean over axis=-1)"
            )
        return per


@dataclasses.dataclass(frozen=True)
class _UserMean:
    per_sample: _UserPerSample

    def __call__(self, out: Array, y: Array) -> Array:
        p, t = targets.pair(out, y, targets.REAL, loss=_name_of(self.per_sample.fn))
        return jnp.mean(self.per_sample(p, t))


def _name_of(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def from_callable(fn: Callable[[Array, Array], Array]) -> Loss:
    """A user's loss(pred, y) -> (n,) per-sample losses as a record (fit, evaluate and fnn.objective take
    `fn` itself as loss=). pred: the network's outputs (n, k); y: the targets as given, as floats (n, k);
    the loss is the (weighted) mean of the per-sample values; its metric is mse. It has no hand-written
    gradient: jax.grad differentiates it, fnn.backprop refuses it.

    Example:
        >>> def l4(pred, y):
        ...     return jnp.mean((pred - y) ** 4, axis=-1)
        >>> fnn.evaluate(model, params, x, y, loss=l4)
        {'loss': 0.083, 'mse': 0.26}
    """
    if not callable(fn):
        raise FnnTypeError(f"a callable loss must be callable, got {type(fn).__name__} {fn!r:.40}")
    per = _UserPerSample(fn)
    return Loss(_name_of(fn), _UserMean(per), None, per, metrics.MSE, None, False, targets.REAL)


LOSSES[HUBER] = huber_loss(1.0)  # Keras' default delta
LOSSES[BINARY_FOCAL] = binary_focal_loss(2.0, None)  # Keras' defaults: gamma 2, no class balancing

ON_PROBABILITIES = {  # the unfused forms, on σ/softmax outputs: for checking, never for training
    BINARY_CE: (binary_cross_entropy, binary_cross_entropy_grad, binary_cross_entropy_per_sample),
    CATEGORICAL_CE: (categorical_cross_entropy, categorical_cross_entropy_grad, categorical_cross_entropy_per_sample),
}


def unfused(loss: Loss) -> Loss:
    """The same loss computed on probabilities instead of logits."""
    if not loss.from_logits:
        return loss
    if loss.name not in ON_PROBABILITIES:
        raise FnnValueError(f"{loss.name} is computed on logits only; it has no form on probabilities")
    value, grad, per_sample = ON_PROBABILITIES[loss.name]
    return loss._replace(value=value, grad=grad, per_sample=per_sample, from_logits=False)


def canonical_name(loss: str) -> str:
    """The registry name of a loss (Keras' names are aliases); unknown names are refused."""
    if not isinstance(loss, str):
        raise FnnTypeError(
            f"loss must be a name (str), got {type(loss).__name__} {loss!r:.60}; choose one of {list(LOSSES)}, "
            "a record such as fnn.losses.huber_loss(delta=2.0), or a callable loss(pred, y) -> (n,) per-sample losses"
        )
    name = ALIASES.get(loss.lower(), loss.lower())
    if name not in LOSSES:
        raise FnnValueError(f"unknown loss {loss!r}; choose one of {list(LOSSES)}")
    return name


def _default_for(output_activation) -> str:
    """The loss that pairs with an output activation (sigmoid: binary CE, softmax: categorical CE), else mse."""
    for name, loss in LOSSES.items():
        if loss.activation == output_activation:
            return name
    return MSE


LossLike = str | Loss | Callable[[Array, Array], Array] | None  # what loss= takes


def resolve(loss: LossLike, output_activation, n_outputs: int) -> Loss:
    """Pair a loss (None: the output's default; a name, a record or a callable) with the model's output
    layer; refuse pairs that cannot learn, naming the fix. k > 1 sigmoid outputs are k independent labels
    (multi-label). output_activation: the last layer's registry name or fnn.Activation."""
    if isinstance(loss, Loss):
        record = loss
    elif callable(loss):
        return from_callable(loss)
    else:
        record = LOSSES[_default_for(output_activation) if loss is None else canonical_name(loss)]
    name = record.name
    if record.activation is None:
        return record
    if record.targets == targets.BINARY:
        if output_activation == "softmax":
            raise FnnValueError(
                f"{name} on a softmax output of {n_outputs} units: use "
                "Dense(1, activation='sigmoid') for two classes, or categorical_cross_entropy with softmax"
            )
        if output_activation != "sigmoid":
            raise FnnValueError(
                f"{name} needs probabilities, but the output activation is {output_activation!r}; "
                "use activation='sigmoid' on the last layer"
            )
        return record if n_outputs == 1 else record._replace(metric=metrics.LABEL_ACCURACY)
    if n_outputs < 2:
        raise FnnValueError(
            "categorical_cross_entropy needs a softmax output of k >= 2 units, the model has 1 output unit; "
            "for two classes use Dense(1, activation='sigmoid') with binary_cross_entropy"
        )
    if output_activation != "softmax":
        raise FnnValueError(
            f"categorical_cross_entropy needs a softmax output, but the output activation is "
            f"{output_activation!r}; use Dense({n_outputs}, activation='softmax') as the last layer"
        )
    return record


def prepare_targets(y, loss: str, n_outputs: int, dtype=jnp.float32, name: str = "y") -> Array:
    """Any target form `loss` accepts -> (n, n_outputs) array of `dtype`, or (n,) int32 for class
    labels (see fnn.targets)."""
    loss = canonical_name(loss)
    return targets.prepare(y, LOSSES[loss].targets, n_outputs, dtype, name, loss=loss)


def value(loss: Loss, out: Array, y: Array) -> Array:
    """The loss of `out` (logits when loss.from_logits) against targets."""
    return loss.value(out, y)


def grad(loss: Loss, out: Array, y: Array) -> Array:
    """∂loss/∂out; ∂L/∂z = (ŷ − y)/n for the fused pairs. A user's callable loss has none: refused."""
    if loss.grad is None:
        raise FnnValueError(
            f"loss {loss.name!r} is a callable without a hand-written gradient, so fnn.backprop cannot start "
            "from it; differentiate with jax.grad(fnn.objective(model, loss)), as fit does"
        )
    return loss.grad(out, y)


def per_sample(loss: Loss, out: Array, t: Array) -> Array:
    """(n,) per-sample losses whose mean is `value`: out, t prepared ((n, k), or (n,) class labels)."""
    return loss.per_sample(out, t)
