"""Targets: every form a loss accepts, turned into the (n, k) float array the losses compute with,
or (n,) int32 labels for concrete class labels (no dense one-hot: 10,000 classes stay small).

Three kinds: "real" (mse: any finite values), "binary" (binary cross-entropy: 0/1 labels or soft
labels in [0, 1]) and "categorical" (integer class labels (n,) in [0, k), or one-hot/probability
rows (n, k)). Concrete targets are checked on the host and refused with an error naming the row;
under a transformation (jit, grad, vmap) values cannot be checked, so an invalid target turns its
row into NaN: a traced loss on bad labels is loud (NaN), never a plausible number.

Per-sample weights (`sample_weights`, from sample_weight and class_weight) live here too: they
are read off the prepared targets, and fit and evaluate share them.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["BINARY", "CATEGORICAL", "REAL", "pair", "prepare", "sample_weights", "warn_if_one_class_per_row"]

Array = jax.Array

REAL, BINARY, CATEGORICAL = "real", "binary", "categorical"


def prepare(y, kind: str, n_outputs: int, dtype=jnp.float32, name: str = "y", loss: str = "the loss") -> Array:
    """Any accepted target form -> (n, n_outputs) array of `dtype`, checked for `kind`; concrete
    class labels -> (n,) int32 labels (10,000 classes need no (n, 10,000) one-hot).

    real / binary: (n, k) or (n,) when k = 1. categorical: integer labels (n,) or (n, 1) in [0, k),
    or (n, k) rows >= 0 summing to 1. Never broadcasts (n,) against (n, 1): ambiguous shapes are
    refused. `loss` names the loss in messages.
    """
    y = _validate.array(y, name)
    _validate.check_finite(y, name)
    if _validate.is_concrete(y):
        y = np.asarray(y)  # checked and shaped on the host: nothing to compile
    if y.ndim == 0 or y.ndim > 2:
        raise FnnValueError(f"{name} must be (n_samples,) or (n_samples, {n_outputs}), got shape {tuple(y.shape)}")
    if y.shape[0] == 0:
        raise FnnValueError(f"{name} has 0 samples (shape {tuple(y.shape)})")
    if kind == CATEGORICAL:
        return _categorical(y, n_outputs, dtype, name)
    if y.ndim == 1:
        if n_outputs != 1:
            raise FnnValueError(
                f"{name} has shape {tuple(y.shape)} but the model has {n_outputs} outputs; "
                f"pass {name} of shape (n_samples, {n_outputs})"
            )
        y = y[:, None]
    elif y.shape[1] != n_outputs:
        raise FnnValueError(
            f"{name} has {y.shape[1]} columns (shape {tuple(y.shape)}) but the model has {n_outputs} outputs"
        )
    if kind != BINARY:
        return _validate.device(y, dtype) if _validate.is_concrete(y) else jnp.asarray(y, dtype)
    if not _validate.is_concrete(y):
        y = jnp.asarray(y, dtype)
        return jnp.where((y >= 0) & (y <= 1), y, jnp.nan)
    values = np.asarray(y)
    bad = (values < 0) | (values > 1)
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise FnnValueError(
            f"{loss} needs labels in [0, 1] in {name} (0/1 classes, or soft labels); found "
            f"{values[i]} at row {i[0]}; for k classes use softmax with categorical_cross_entropy"
        )
    return _validate.device(y, dtype)


def _categorical(y, k, dtype, name):
    labels = y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and k != 1)
    if labels:
        y = y.reshape(-1)
        if not _validate.is_concrete(y):
            y = jnp.asarray(y)
            valid = (y >= 0) & (y < k) & (y == jnp.round(y) if jnp.issubdtype(y.dtype, jnp.floating) else True)
            rows = jax.nn.one_hot(jnp.where(valid, y, 0).astype(jnp.int32), k, dtype=dtype)
            return jnp.where(valid[:, None], rows, jnp.nan)
        values = np.asarray(y)
        if values.dtype.kind == "f" and (values != np.round(values)).any():
            i = int(np.argwhere(values != np.round(values))[0, 0])
            raise FnnValueError(
                f"{name} looks like class labels (shape {tuple(y.shape)}) but {name}[{i}] = "
                f"{values[i]} is not an integer"
            )
        bad = (values < 0) | (values >= k)
        if bad.any():
            i = int(np.argwhere(bad)[0, 0])
            raise FnnValueError(
                f"class label {name}[{i}] = {values[i]} is out of range: the model has {k} "
                f"output units, so labels must be in 0..{k - 1}"
            )
        return _validate.device(values.astype(np.int32))  # labels stay labels: no (n, k) one-hot
    if y.shape[1] != k:
        raise FnnValueError(
            f"one-hot {name} has width {y.shape[1]} (shape {tuple(y.shape)}) but the model has {k} "
            f"output units; pass (n, {k}) rows or integer labels (n,)"
        )
    if not _validate.is_concrete(y):
        y = jnp.asarray(y, dtype)
        valid = jnp.all(y >= 0, axis=1) & (jnp.abs(jnp.sum(y, axis=1) - 1) <= 1e-4)
        return jnp.where(valid[:, None], y, jnp.nan)
    values = np.asarray(y, dtype=np.float64)
    sums = values.sum(axis=1)
    if (values < 0).any():
        i, j = (int(v) for v in np.argwhere(values < 0)[0])
        raise FnnValueError(
            f"one-hot {name} row {i} has a negative entry {values[i, j]:.6g} at column {j}; "
            "each row must be >= 0 and sum to 1, or pass integer labels (n,)"
        )
    bad = np.abs(sums - 1) > 1e-4
    if bad.any():
        i = int(np.argwhere(bad)[0, 0])
        raise FnnValueError(
            f"one-hot {name} row {i} sums to {sums[i]:.6g}; "
            "each row must be >= 0 and sum to 1, or pass integer labels (n,)"
        )
    return _validate.device(y, dtype)


def pair(pred, y, kind: str, probabilities: bool = False, loss: str = "the loss"):
    """(pred, y) as (n, k) arrays (class labels one-hot here: these are the reference forms); y in
    any form `kind` accepts; both checked when concrete (finite, and in [0, 1] for probabilities).
    Traced (under jit, vmap or grad): an invalid value is NaN instead, so the loss on it is NaN."""
    pred = _validate.array(pred, "predictions")
    if pred.ndim == 1 and kind != CATEGORICAL:
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
            raise FnnValueError(
                f"predictions must be probabilities in [0, 1]; found {values[i, j]} at row {i}, "
                f"column {j}; pass logits to the sigmoid_/softmax_ versions instead"
            )
    pred = jnp.asarray(pred)
    if not jnp.issubdtype(pred.dtype, jnp.floating):
        pred = pred.astype(jnp.float32)
    if probabilities and not _validate.is_concrete(pred):  # traced: unchecked, so outside [0, 1] is NaN
        pred = jnp.where((pred >= 0) & (pred <= 1), pred, jnp.nan)
    t = prepare(y, kind, pred.shape[1], pred.dtype, loss=loss)
    if t.ndim == 1:
        t = jax.nn.one_hot(t, pred.shape[1], dtype=pred.dtype)
    if t.shape[0] != pred.shape[0]:
        raise FnnValueError(f"predictions and y have different numbers of samples: {pred.shape[0]} and {t.shape[0]}")
    return pred, t


def sample_weights(model, loss, y, sample_weight, class_weight) -> np.ndarray | None:
    """(n,) per-sample weights from sample_weight and class_weight (None when neither is given).

    model: its `output_dim` is read; loss: a `fnn.losses.Loss` (the kind of targets it takes);
    y: the prepared targets ((n, k), or (n,) class labels). sample_weight: (n,) finite weights >= 0; class_weight:
    {class label: weight >= 0}, the labels 0..k-1 (0/1 for one sigmoid unit).

    Example:
        >>> record = fnn.models.resolve_loss(model, None)
        >>> t = fnn.losses.prepare_targets(np.array([0, 1, 1]), record.name, model.output_dim)
        >>> fnn.targets.sample_weights(model, record, t, None, {0: 1.0, 1: 3.0})
        array([1., 3., 3.])
    """
    if sample_weight is None and class_weight is None:
        return None
    n = y.shape[0]
    w = np.ones(n, np.float64)
    if sample_weight is not None:
        sw = np.asarray(_validate.array(sample_weight, "sample_weight"), np.float64)
        if sw.shape != (n,):
            raise FnnValueError(f"sample_weight must have one weight per sample, shape ({n},), got {sw.shape}")
        _validate.check_finite(sw, "sample_weight")
        if (sw < 0).any():
            i = int(np.argwhere(sw < 0)[0, 0])
            raise FnnValueError(f"sample_weight[{i}] = {sw[i]} is negative; weights must be >= 0")
        w = w * sw
    if class_weight is not None:
        if not isinstance(class_weight, dict) or not class_weight:
            raise FnnTypeError("class_weight must be a non-empty dict {class label: weight}, e.g. {0: 1.0, 1: 5.0}")
        if loss.targets == REAL:
            raise FnnValueError("class_weight needs a classification loss; for regression use sample_weight")
        k = model.output_dim
        n_classes = 2 if k == 1 else k
        if loss.targets == BINARY and k > 1:
            raise FnnValueError(
                "class_weight is for one label per sample; with several sigmoid outputs (multi-label) use sample_weight"
            )
        table = np.ones(n_classes)
        for label, weight in class_weight.items():
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < n_classes:
                raise FnnValueError(
                    f"class_weight key {label!r} is not a class label of this model (0..{n_classes - 1})"
                )
            table[int(label)] = _validate.real(weight, f"class_weight[{label}]", low=0)
        if k == 1:
            labels = np.asarray(y[:, 0] > 0.5, np.int64)
        else:
            labels = np.asarray(y) if y.ndim == 1 else np.argmax(np.asarray(y), axis=1)
        w = w * table[labels]
    if not (w > 0).any():
        raise FnnValueError("every sample has weight 0: nothing to train on")
    return w


def warn_if_one_class_per_row(loss, t, stacklevel: int = 3) -> None:
    """Several sigmoid outputs with binary CE learn independent yes/no labels (multi-label); rows that
    are all one-hot suggest one class per row, which softmax learns. Say so once per call. loss: a
    fnn.losses.Loss (its targets kind and name)."""
    if loss.targets != BINARY or t.ndim != 2 or t.shape[1] < 2 or not _validate.is_concrete(t):
        return
    values = np.asarray(t)
    if np.all((values == 0) | (values == 1)) and np.all(values.sum(axis=1) == 1):
        warnings.warn(
            f"every target row is one-hot over {t.shape[1]} columns, but {loss.name} on "
            f"{t.shape[1]} sigmoid outputs trains {t.shape[1]} independent yes/no labels (multi-label: "
            "metrics and predict_classes per column). For one class per row use "
            f"Dense({t.shape[1]}, activation='softmax') with categorical_cross_entropy.",
            UserWarning,
            stacklevel=stacklevel,
        )
