"""Metrics: pure functions of (outputs, targets).

The public functions take probabilities/values and targets in any form the losses accept.
`per_sample` is what `fit` accumulates: it works on what the loss sees (logits for the fused
pairs) and prepared (n, k) targets, so a masked batch can be summed sample by sample.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from fnn import losses

Array = jax.Array

ACCURACY = "accuracy"
MSE = "mse"


def name_for(spec: losses.LossSpec) -> str:
    """The metric fit records beside a loss: accuracy for classification, mse for regression."""
    return MSE if spec.name == losses.MSE else ACCURACY


def per_sample(spec: losses.LossSpec, out: Array, y: Array) -> Array:
    """(n,): 1/0 correctness (or the fraction of correct labels for multi-unit sigmoid), or squared error."""
    if spec.name == losses.MSE:
        return jnp.mean((out - y) ** 2, axis=-1)
    if spec.name == losses.BINARY_CE:
        threshold = 0.0 if spec.from_logits else 0.5  # σ(z) > 0.5 exactly when z > 0
        return jnp.mean(((out > threshold) == (y > 0.5)).astype(out.dtype), axis=-1)
    return (jnp.argmax(out, axis=-1) == jnp.argmax(y, axis=-1)).astype(out.dtype)


def binary_accuracy(probs: Array, y: Array) -> Array:
    """Fraction of (probs > 0.5) == y; probs (n, k) or (n,), labels 0/1."""
    p, t = losses._pair(probs, y, losses.BINARY_CE)
    return jnp.mean(per_sample(losses.LossSpec(losses.BINARY_CE, False), p, t))


def categorical_accuracy(probs: Array, y: Array) -> Array:
    """Fraction of argmax(probs) == label; probs (n, k), y labels (n,) or one-hot (n, k)."""
    p, t = losses._pair(probs, y, losses.CATEGORICAL_CE)
    return jnp.mean(per_sample(losses.LossSpec(losses.CATEGORICAL_CE, False), p, t))


def accuracy(probs: Array, y: Array) -> Array:
    """binary_accuracy for one output column (or multi-label 0/1 targets), categorical otherwise."""
    k = 1 if jnp.ndim(probs) == 1 else jnp.shape(probs)[-1]
    if k == 1:
        return binary_accuracy(probs, y)
    return categorical_accuracy(probs, y)


def mean_squared_error(pred: Array, y: Array) -> Array:
    """mean((pred − y)²), as the mse loss."""
    return losses.mse(pred, y)
