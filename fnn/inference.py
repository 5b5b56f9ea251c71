"""Inference: evaluate, predict and predict_classes, sharing one compiled program.

One program per (model, loss) computes the outputs, the loss and the metric of a batch of rows;
`predict` and `predict_classes` use it with the model's default loss, so predicting and
evaluating the same rows compile once between them. Rows are padded (weight 0) to a few bucket
sizes (powers of two), so a new number of rows rarely compiles anew.

Nothing here imports the training modules: inference needs only the model, the loss and the
targets (fnn.models, fnn.losses, fnn.targets).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _compile, _validate, activations, layers, losses, models, targets
from fnn.errors import FnnValueError

__all__ = ["bucket_rows", "evaluate", "predict", "predict_classes", "program"]

Array = jax.Array


def bucket_rows(n: int) -> int:
    """A row count rounded up to few distinct sizes (powers of two, then multiples of 65,536), so
    inference on new sizes reuses compiled programs.

    Example:
        >>> [fnn.inference.bucket_rows(n) for n in (1, 9, 100, 70_000)]
        [8, 16, 128, 131072]
    """
    if n <= 65536:
        return max(8, 1 << max(n - 1, 0).bit_length())
    return -(-n // 65536) * 65536


@_compile.jit(static_argnums=(0, 1))
def program(model: models.Sequential, loss: losses.Loss, params, x, y, w):
    """(outputs (n, k), weighted mean loss, weighted mean metric); one program per (model, loss) and
    shapes, in jit's own cache."""
    logits = layers.mlp_logits(model.activations, params, x)
    out = activations.get(model.output_activation).fn(logits)
    z = logits if loss.from_logits else out
    total = jnp.sum(w)
    value = jnp.sum(w * loss.per_sample(z, y)) / total
    metric = jnp.sum(w * loss.metric.per_sample(z, y, loss.from_logits)) / total
    return out, value, metric


def _padded(a: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows,) + a.shape[1:], a.dtype)
    out[: a.shape[0]] = a
    return out


def _run(model, loss, params, x, y=None, w=None):
    """Pad the rows to their bucket, run the program, cut the padding off again (on the host)."""
    dtype = np.dtype(params[0][0].dtype)
    n = x.shape[0]
    rows = bucket_rows(n)
    xp = _padded(np.asarray(x, dtype), rows)
    yp = np.zeros((rows, model.output_dim), dtype) if y is None else _padded(np.asarray(y, dtype), rows)
    wp = _padded(np.ones(n, dtype) if w is None else np.asarray(w, dtype), rows)
    out, value, metric = program(model, loss, params, xp, yp, wp)
    return out, value, metric, n


def evaluate(
    model: models.Sequential, params, x, y, *, loss: losses.LossLike = None, sample_weight=None, class_weight=None
) -> dict:
    """{"loss": float, metric: float} over all of (x, y); the metric is the loss's (accuracy, mse, or
    label_accuracy for several sigmoid outputs). sample_weight (n,) and class_weight {label: weight}:
    a weighted mean, as in fit.

    Example:
        >>> fnn.evaluate(model, params, x, y, loss="binary_cross_entropy")  # untrained: about chance
        {'loss': 0.72, 'accuracy': 0.53}
    """
    models.check_params(model, params)
    record = models.resolve_loss(model, loss)
    x, y = models.prepare(model, record, params, x, y)
    losses.warn_if_one_class_per_row(record, y)
    w = targets.sample_weights(model, record, y, sample_weight, class_weight)
    _, value, metric, _ = _run(model, record, params, x, y, w)
    return {"loss": float(value), record.metric.name: float(metric)}


def predict(model: models.Sequential, params, x) -> Array:
    """The network's outputs, (n, n_out) (probabilities for sigmoid/softmax); a (n_in,) example -> (n_out,)."""
    models.check_params(model, params)
    x, single = _validate.features(x, "x", params[0][0].shape[0], allow_single=True)
    x = _validate.cast(x, params[0][0].dtype, "x")
    out, _, _, n = _run(model, models.resolve_loss(model, None), params, x)
    out = np.asarray(out)[:n]
    return _validate.device(out[0] if single else out)


def predict_classes(model: models.Sequential, params, x) -> Array:
    """Class labels: (n,) ints for one sigmoid unit (p > 0.5) or softmax (argmax); for k sigmoid units
    (multi-label: k independent yes/no labels) (n, k) 0/1, one column per label."""
    act = models.check_model(model).output_activation
    if act not in ("sigmoid", "softmax"):
        raise FnnValueError(
            f"predict_classes needs a sigmoid or softmax output, the model's is {act!r}; use predict for regression"
        )
    probs = np.asarray(predict(model, params, x))
    if act == "softmax":
        return _validate.device(np.argmax(probs, axis=-1))
    labels = (probs > 0.5).astype(np.int32)
    return _validate.device(labels[..., 0] if model.output_dim == 1 else labels)
