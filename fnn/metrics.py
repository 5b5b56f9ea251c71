"""Metrics: pure functions of (outputs, targets).

A `Metric` is what fit records beside a loss: a name and a per-sample function of what the loss
sees (logits for the fused pairs, flagged by from_logits) and prepared targets ((n, k), or (n,)
class labels), so a masked
or weighted batch can be summed sample by sample. Each loss in `fnn.losses` names its metric.
The public functions below take probabilities/values and targets in any form the losses accept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn import activations, targets
from fnn.errors import FnnTypeError, FnnValueError

__all__ = [
    "ACCURACY",
    "AUC_THRESHOLDS",
    "BINARY_ACCURACY",
    "LABEL_ACCURACY",
    "MAE",
    "MSE",
    "NAMES",
    "Metric",
    "absolute_error",
    "accuracy",
    "auc_of",
    "auc_parts",
    "binary_accuracy",
    "binary_hits",
    "categorical_accuracy",
    "class_hits",
    "label_hits",
    "mean_squared_error",
    "precision_parts",
    "ratio",
    "recall_parts",
    "resolve",
    "squared_error",
    "sum_rows",
    "true_positives",
]

Array = jax.Array


class Metric(NamedTuple):
    name: str
    per_sample: Callable[[Array, Array, bool], Array]  # (out, t, from_logits) -> (n,), or (parts, n)
    parts: int = 1  # sums kept over the epoch's rows: 1 (the figure is their mean), or more for `figure`
    figure: Callable[[Array], Array] | None = None  # (parts,) sums -> the figure (a ratio, an AUC)


def sum_rows(extra: tuple) -> int:
    """How many sums a run keeps for the loss's metric and these extra ones."""
    return 1 + sum(m.parts for m in extra)


def ratio(sums: Array) -> Array:
    """Σ numerator / Σ denominator, 0 where the denominator is 0 (as Keras' precision and recall)."""
    num, den = sums[0], sums[1]
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1), 0.0)


AUC_THRESHOLDS = 200  # as Keras' AUC(num_thresholds=200)


def _thresholds(dtype) -> Array:
    """Keras' AUC thresholds: 0 − ε, the 198 interior points of (0, 1) evenly spaced, 1 + ε."""
    eps = 1e-7
    inner = jnp.arange(1, AUC_THRESHOLDS - 1, dtype=dtype) / (AUC_THRESHOLDS - 1)
    return jnp.concatenate([jnp.array([-eps], dtype), inner, jnp.array([1 + eps], dtype)])


def auc_parts(out: Array, t: Array, from_logits: bool = False) -> Array:
    """(2·200, n): per row and threshold θ, [p > θ]·y (true positives) then [p > θ]·(1 − y) (false
    positives), p the first output column's probability: summed over an epoch, the ROC curve."""
    p = jax.nn.sigmoid(out[:, 0]) if from_logits else out[:, 0]
    y = (t[:, 0] > 0.5).astype(out.dtype)
    above = (p[None, :] > _thresholds(out.dtype)[:, None]).astype(out.dtype)
    return jnp.concatenate([above * y[None, :], above * (1 - y[None, :])])


def auc_of(sums: Array) -> Array:
    """The area under the ROC curve from auc_parts' sums, by the trapezoid rule over the thresholds
    (Keras' AUC, summation_method="interpolation"); 0 with only one class present."""
    tp, fp = sums[:AUC_THRESHOLDS], sums[AUC_THRESHOLDS:]
    positives, negatives = tp[0], fp[0]  # at θ = 0 − ε every row is predicted positive
    tpr = jnp.where(positives > 0, tp / jnp.where(positives > 0, positives, 1), 0.0)
    fpr = jnp.where(negatives > 0, fp / jnp.where(negatives > 0, negatives, 1), 0.0)
    return jnp.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2)


def true_positives(out: Array, t: Array, from_logits: bool = False) -> tuple[Array, Array, Array]:
    """(n,) each: predicted positives, true positives and actual positives per row (p > 0.5, t > 0.5)."""
    predicted = out > (0.0 if from_logits else 0.5)
    actual = t > 0.5

    def count(a: Array) -> Array:
        return jnp.sum(a.astype(out.dtype), axis=-1)

    return count(predicted), count(predicted & actual), count(actual)


def precision_parts(out: Array, t: Array, from_logits: bool = False) -> Array:
    """(2, n): true positives over predicted positives, per row: precision = Σ row 0 / Σ row 1."""
    predicted, hit, _ = true_positives(out, t, from_logits)
    return jnp.stack([hit, predicted])


def recall_parts(out: Array, t: Array, from_logits: bool = False) -> Array:
    """(2, n): true positives over actual positives, per row: recall = Σ row 0 / Σ row 1."""
    _, hit, actual = true_positives(out, t, from_logits)
    return jnp.stack([hit, actual])


def squared_error(out: Array, t: Array, from_logits: bool = False) -> Array:
    """(n,): mean over components of (out − t)²."""
    return jnp.mean((out - t) ** 2, axis=-1)


def binary_hits(out: Array, t: Array, from_logits: bool = False) -> Array:
    """(n,): 1 where (p > 0.5) == (t > 0.5), for one output column."""
    threshold = 0.0 if from_logits else 0.5  # σ(z) > 0.5 exactly when z > 0
    return jnp.all((out > threshold) == (t > 0.5), axis=-1).astype(out.dtype)


def label_hits(out: Array, t: Array, from_logits: bool = False) -> Array:
    """(n,): the fraction of a row's k yes/no labels predicted right (multi-label, per column)."""
    threshold = 0.0 if from_logits else 0.5
    return jnp.mean(((out > threshold) == (t > 0.5)).astype(out.dtype), axis=-1)


def class_hits(out: Array, t: Array, from_logits: bool = False) -> Array:
    """(n,): 1 where argmax(out) == argmax(t), or == t for (n,) int labels (softmax is monotone:
    logits give the same argmax)."""
    labels = t if t.ndim == 1 else jnp.argmax(t, axis=-1)
    return (jnp.argmax(out, axis=-1) == labels).astype(out.dtype)


def absolute_error(out: Array, t: Array, from_logits: bool = False) -> Array:
    """(n,): mean over components of |out − t|."""
    return jnp.mean(jnp.abs(out - t), axis=-1)


MSE = Metric("mse", squared_error)
MAE = Metric("mae", absolute_error)
ACCURACY = Metric("accuracy", class_hits)
BINARY_ACCURACY = Metric("accuracy", binary_hits)
LABEL_ACCURACY = Metric("label_accuracy", label_hits)  # k sigmoid outputs: k independent labels


def binary_accuracy(probs: Array, y: Array) -> Array:
    """Fraction of (probs > 0.5) == y over all labels; probs (n, k) or (n,), labels 0/1."""
    p, t = targets.pair(probs, y, targets.BINARY)
    return jnp.mean(label_hits(p, t))


def categorical_accuracy(probs: Array, y: Array) -> Array:
    """Fraction of argmax(probs) == label; probs (n, k), y labels (n,) or one-hot (n, k)."""
    p, t = targets.pair(probs, y, targets.CATEGORICAL)
    return jnp.mean(class_hits(p, t))


def accuracy(probs: Array, y: Array) -> Array:
    """binary_accuracy for one output column (or multi-label 0/1 targets), categorical otherwise."""
    k = 1 if jnp.ndim(probs) == 1 else jnp.shape(probs)[-1]
    if k == 1:
        return binary_accuracy(probs, y)
    return categorical_accuracy(probs, y)


def mean_squared_error(pred: Array, y: Array) -> Array:
    """mean((pred − y)²), as the mse loss."""
    p, t = targets.pair(pred, y, targets.REAL)
    return jnp.mean(squared_error(p, t))


@dataclasses.dataclass(frozen=True)
class _OnOutputs:
    """A per-sample metric of the network's outputs: probabilities where the loss sees logits, and
    (n,) integer labels one-hot, so mae/mse compare what the model predicts with what it should.
    Equal by value: a Spec holding it shares compiled programs."""

    fn: Callable[[Array, Array], Array]
    activation: Any  # the output layer's activation, applied to logits

    def __call__(self, out: Array, t: Array, from_logits: bool = False) -> Array:
        if from_logits:
            out = activations.get(self.activation).fn(out)
        if t.ndim == 1:
            t = jax.nn.one_hot(t, out.shape[-1], dtype=out.dtype)
        return self.fn(out, t)


_ALIASES = {"acc": "accuracy", "mean_absolute_error": "mae", "mean_squared_error": "mse"}
NAMES = ("accuracy", "acc", "mae", "mean_absolute_error", "mse", "mean_squared_error", "precision", "recall", "auc")


def resolve(names, loss, output_activation) -> tuple[Metric, ...]:
    """fit's metrics= (Keras' names) -> the extra Metric records, each named as given; a name the
    loss's own metric already records (e.g. "accuracy" with binary_crossentropy) adds nothing.

    "precision"/"recall" (binary losses): Σ true positives / Σ predicted (actual) positives over
    the epoch's rows, at p > 0.5; "auc": the ROC curve's area from counts at Keras' 200 thresholds.
    "accuracy"/"acc": the loss's accuracy for a classification loss; otherwise, as Keras picks,
    (out > 0.5) == (t > 0.5) for one output column and argmax agreement for several.

    Example:
        >>> record = fnn.models.resolve_loss(model, None)
        >>> [m.name for m in fnn.metrics.resolve(["acc", "mae"], record, "sigmoid")]
        ['acc', 'mae']
    """
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)):
        raise FnnTypeError(f"metrics must be a list of metric names such as ['accuracy'], got {type(names).__name__}")
    chosen: list[Metric] = []
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise FnnTypeError(
                f"metrics[{i}] must be a metric name (one of {list(NAMES)}), got {type(name).__name__} {name!r:.60}"
            )
        if name not in NAMES:
            raise FnnValueError(f"unknown metric {name!r} in metrics=; choose from {list(NAMES)}")
        if name == loss.metric.name or any(m.name == name for m in chosen):
            continue
        kind = _ALIASES.get(name, name)
        if kind in ("precision", "recall", "auc"):
            if loss.targets != targets.BINARY:
                raise FnnValueError(
                    f"metrics={name!r} needs yes/no outputs (a binary loss such as binary_crossentropy), but the "
                    f"loss is {loss.name!r}; use 'accuracy' for classes, 'mae'/'mse' for values"
                )
            if kind == "auc":
                chosen.append(Metric(name, auc_parts, 2 * AUC_THRESHOLDS, auc_of))
            else:
                chosen.append(Metric(name, precision_parts if kind == "precision" else recall_parts, 2, ratio))
            continue
        if kind == "accuracy":
            if loss.metric.per_sample in (binary_hits, class_hits, label_hits):
                per_sample = loss.metric.per_sample
            else:
                per_sample = _OnOutputs(_accuracy_hits, output_activation)
        else:
            per_sample = _OnOutputs(absolute_error if kind == "mae" else squared_error, output_activation)
        chosen.append(Metric(name, per_sample))
    return tuple(chosen)


def _accuracy_hits(out: Array, t: Array) -> Array:
    return binary_hits(out, t) if out.shape[-1] == 1 else class_hits(out, t)
