"""Inference: evaluate, predict and predict_classes, sharing one compiled program.

One program per (model, loss) computes the outputs, the loss and the metric of a batch of rows;
`predict` and `predict_classes` use it with the model's default loss, so predicting and
evaluating the same rows compile once between them. Rows go through in chunks of CHUNK (memory
does not grow with the row count); the last chunk is padded (weight 0) to a few bucket sizes
(powers of two), so a new number of rows rarely compiles anew. Under the caller's jax.jit, vmap
or grad (traced x or params) predict, predict_classes, predict_proba and activations_of compute
their outputs directly, with no host step; evaluate, whose results are Python floats, refuses.

Nothing here imports the training modules: inference needs only the model, the loss and the
targets (fnn.models, fnn.losses, fnn.targets).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _compile, _validate, activations, layers, losses, models, targets
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["CHUNK", "bucket_rows", "evaluate", "padded", "predict", "predict_classes", "program"]

Array = jax.Array


CHUNK = 16384  # rows per compiled call at most: inference memory does not grow with the row count
CHUNK_BYTES = 1 << 26  # and fewer where a row is wide (10,000 classes): about 64 MiB of inputs and outputs


def bucket_rows(n: int) -> int:
    """A row count rounded up to few distinct sizes, so inference and training on new sizes reuse
    compiled programs: powers of two from 8 up to 65,536, then multiples of a sixteenth of the
    power of two below (at most 6.25% of padding where the rows' bytes matter).

    Example:
        >>> [fnn.inference.bucket_rows(n) for n in (1, 9, 100, 70_000, 200_000)]
        [8, 16, 128, 73728, 204800]
    """
    if n <= 65536:
        return max(8, 1 << max(n - 1, 0).bit_length())
    step = 1 << (n.bit_length() - 5)
    return -(-n // step) * step


def _forward(model: models.Sequential, params, x):
    """(n, n_in) -> (n, n_out) outputs; no checks. A NaN in x or params gives NaN rows."""
    return activations.get(model.output_activation).fn(layers.mlp_logits(model.activations, params, x))


@_compile.jit(static_argnums=0)
def _outputs(model: models.Sequential, params, x):
    """(outputs, are all of x finite?): the check in the same program, one pass less on the host."""
    return _forward(model, params, x), jnp.all(jnp.isfinite(x))


def _traced(params, *arrays) -> bool:
    """Is any of params or the arrays a tracer (under the caller's jit, vmap or grad)? Then no host
    step may read them: the outputs are computed directly, and NaN in gives NaN out."""
    return not all(map(_validate.is_concrete, [*jax.tree.leaves(params), *arrays]))


@_compile.jit(static_argnums=(0, 1))
def program(model: models.Sequential, loss: losses.Loss, params, x, y, w, m):
    """(outputs (n, k), Σ w·loss, Σ m·metric, Σ m) over a chunk of rows; m marks the real rows (1)
    and the padding (0), w is m times the rows' weights. One program per (model, loss) and shapes."""
    logits = layers.mlp_logits(model.activations, params, x)
    out = activations.get(model.output_activation).fn(logits)
    z = logits if loss.from_logits else out
    value = jnp.sum(w * loss.per_sample(z, y))
    metric = jnp.sum(m * loss.metric.per_sample(z, y, loss.from_logits))
    return out, value, metric, jnp.sum(m)


def _aligned(shape, dtype, align: int = 64) -> np.ndarray:
    """Zeros in a host buffer that jax on a CPU takes without a copy (64-byte aligned)."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.zeros(size + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start : start + size].view(dtype).reshape(shape)


def padded(a, rows: int, dtype=None) -> np.ndarray:
    """a (n, ...) with zero rows appended up to `rows`, in one aligned host copy: what
    jax.device_put then takes as it is on a CPU. With rows = n and the dtype a's own, a itself."""
    a = np.asarray(a)
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    if a.shape[0] == rows:
        return a.astype(dtype, copy=False)
    out = _aligned((rows,) + a.shape[1:], dtype)
    out[: a.shape[0]] = a
    return out


def _chunks(n: int, width: int):
    """(start, stop, padded rows) of each compiled call over n rows of `width` numbers in and out:
    full chunks (a power of two), then the rest padded to its bucket."""
    size = CHUNK
    while size > 8 and size * width * 4 > CHUNK_BYTES:
        size //= 2
    for start in range(0, n, size):
        stop = min(start + size, n)
        yield start, stop, size if stop - start == size else bucket_rows(stop - start)


def evaluate(
    model: models.Sequential, params, x, y, *, loss: losses.LossLike = None, sample_weight=None, class_weight=None
) -> dict:
    """{"loss": float, metric: float} over all of (x, y), in compiled chunks of CHUNK rows (memory
    does not grow with n); the metric is the loss's (accuracy, mse, or label_accuracy for several
    sigmoid outputs). sample_weight (n,) and class_weight {label: weight} weigh the loss as fit and
    Keras do, the mean of w·loss over the rows; the metric is over the rows, unweighted.

    Example:
        >>> fnn.evaluate(model, params, x, y, loss="binary_cross_entropy")  # untrained: about chance
        {'loss': 0.72, 'accuracy': 0.53}
    """
    models.check_params(model, params)
    if _traced(params, x, y, sample_weight):
        raise FnnTypeError(
            "evaluate returns Python floats, read on the host, so it cannot run under jax.jit, jax.vmap or "
            "jax.grad (its params or data are traced here); for a traced loss use "
            "fnn.objective(model, loss)(params, x, y), and fnn.predict for the outputs"
        )
    record = models.resolve_loss(model, loss)
    x, y = models.prepare(model, record, params, x, y, host=True)
    losses.warn_if_one_class_per_row(record, y)
    w = targets.sample_weights(model, record, y, sample_weight, class_weight)
    dtype = np.dtype(params[0][0].dtype)
    y = np.asarray(y)
    totals = []
    for start, stop, rows in _chunks(x.shape[0], x.shape[1] + 2 * model.output_dim):
        m = padded(np.ones(stop - start, dtype), rows, dtype)
        wc = m if w is None else padded(w[start:stop], rows, dtype)
        xc, yc = padded(x[start:stop], rows, dtype), padded(y[start:stop], rows, y.dtype)
        totals.append(program(model, record, params, xc, yc, wc, m)[1:])
    value, metric, count = np.sum(np.asarray(jax.device_get(totals), np.float64), axis=0)
    return {"loss": float(value / count), record.metric.name: float(metric / count)}


def predict(model: models.Sequential, params, x) -> Array:
    """The network's outputs, (n, n_out) (probabilities for sigmoid/softmax); a (n_in,) example -> (n_out,).
    Under jax.jit, vmap or grad (traced x or params) computed directly: a NaN in x gives its row NaN."""
    models.check_params(model, params)
    x, single = _validate.features(x, "x", params[0][0].shape[0], allow_single=True, finite=False)
    if _traced(params, x):
        _validate.check_finite(x, "x")  # a concrete x under a transformation of params is still read
        out = _forward(model, params, _validate.cast(x, params[0][0].dtype, "x"))
        return out[0] if single else out
    x = _validate.cast(x, params[0][0].dtype, "x", host=True)
    dtype = np.dtype(params[0][0].dtype)
    chunks = list(_chunks(x.shape[0], x.shape[1] + model.output_dim))
    if len(chunks) == 1:
        ((start, stop, rows),) = chunks
        out, ok = _outputs(model, params, padded(x, rows, dtype))
        finite = [ok]
        out = jax.device_put(np.asarray(out)[:stop]) if rows > stop else out  # a host slice: no program to compile
    else:  # each chunk's outputs straight into one aligned host array, which becomes the result uncopied
        host = _aligned((x.shape[0], model.output_dim), dtype)
        finite = []
        for start, stop, rows in chunks:
            part, ok = _outputs(model, params, padded(x[start:stop], rows, dtype))
            host[start:stop] = np.asarray(part)[: stop - start]
            finite.append(ok)
        out = jax.device_put(host)
    if not all(jax.device_get(finite)):
        _validate.check_finite(x, "x")  # names the first NaN or inf
    return out[0] if single else out


def predict_classes(model: models.Sequential, params, x) -> Array:
    """Class labels: (n,) ints for one sigmoid unit (p > 0.5) or softmax (argmax); for k sigmoid units
    (multi-label: k independent yes/no labels) (n, k) 0/1, one column per label. Under jax.jit, vmap
    or grad a row whose outputs are NaN gets label -1 (no class), never a plausible one."""
    act = models.check_model(model).output_activation
    if act not in ("sigmoid", "softmax"):
        raise FnnValueError(
            f"predict_classes needs a sigmoid or softmax output, the model's is {act!r}; use predict for regression"
        )
    probs = predict(model, params, x)
    if not _validate.is_concrete(probs):
        return _traced_classes(act, model.output_dim, probs)
    probs = np.asarray(probs)
    if act == "softmax":
        return _validate.device(np.argmax(probs, axis=-1))
    labels = (probs > 0.5).astype(np.int32)
    return _validate.device(labels[..., 0] if model.output_dim == 1 else labels)


def _traced_classes(act, k: int, probs: Array) -> Array:
    """predict_classes' labels from traced outputs; -1 where the outputs are NaN."""
    if act == "softmax":
        return jnp.where(jnp.all(jnp.isfinite(probs), axis=-1), jnp.argmax(probs, axis=-1), -1)
    labels = jnp.where(jnp.isfinite(probs), (probs > 0.5).astype(jnp.int32), -1)
    return labels[..., 0] if k == 1 else labels


# --------------------------------------------------------------------------- probabilities and layer outputs
__all__ += ["activations_of", "predict_proba"]

_PROBABILITIES = ("sigmoid", "softmax")


def predict_proba(model: models.Sequential, params, x) -> Array:
    """Class probabilities, as Keras' predict gives them: (n, 1) P(y = 1) for one sigmoid unit, (n, k)
    for softmax (rows sum to 1) or k sigmoid units (one per label); a (n_in,) example -> (k,).
    Refused for other output layers, whose outputs are not probabilities.

    Example:
        >>> fnn.predict_proba(model, params, x[:2]).shape
        (2, 1)
    """
    act = models.check_model(model).output_activation
    if act not in _PROBABILITIES:
        raise FnnValueError(
            f"predict_proba needs a sigmoid or softmax output layer, the model's is {act!r}: its outputs are "
            "not probabilities. Use fnn.predict for regression, or end the model with "
            "Dense(1, activation='sigmoid') (two classes) or Dense(k, activation='softmax') (k classes)"
        )
    return predict(model, params, x)


@_compile.jit(static_argnums=0)
def _layer_outputs(names: tuple[str, ...], params, x):
    outputs, a = [], x
    for name, p in zip(names, params):
        a = activations.get(name).fn(layers.dense_apply(p, a))
        outputs.append(a)
    return outputs


def activations_of(model: models.Sequential, params, x) -> list[Array]:
    """Every layer's output, first layer first: a list of (n, units) arrays (after each activation; the
    last is predict's output). A (n_in,) example gives (units,) arrays. Under jax.jit, vmap or grad
    (traced x or params) computed directly, unpadded; a NaN in x gives NaN rows.

    Example:
        >>> [a.shape for a in fnn.activations_of(model, params, x)]
        [(64, 4), (64, 1)]
    """
    models.check_params(model, params)
    x, single = _validate.features(x, "x", params[0][0].shape[0], allow_single=True)
    if _traced(params, x):
        outputs = _layer_outputs(model.activations, params, _validate.cast(x, params[0][0].dtype, "x"))
        return [a[0] if single else a for a in outputs]
    x = np.asarray(_validate.cast(x, params[0][0].dtype, "x"))
    n = x.shape[0]
    rows = np.zeros((bucket_rows(n), x.shape[1]), x.dtype)  # padded to a bucket: few sizes, few programs
    rows[:n] = x
    outputs = [np.asarray(a)[:n] for a in _layer_outputs(model.activations, params, rows)]
    return [_validate.device(a[0] if single else a) for a in outputs]
