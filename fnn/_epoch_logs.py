"""An epoch's figures inside the compiled run: the loss, the loss's metric and the extra metrics
(fit's metrics=), on the training rows (sums over the epoch's accepted steps) and on the
validation rows (the params at the end of the epoch). Traced; shared by every entry point."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fnn import models

Array = jax.Array
Spec = TrainState = Data = Any  # fnn.engine's records (engine imports this module, not the reverse)


def metric_names(spec: Spec) -> tuple[str, ...]:
    """The loss's metric, then the extra metrics, in order."""
    return (spec.loss.metric.name,) + tuple(m.name for m in spec.metrics)


def hits(spec: Spec, out: Array, t: Array) -> Array:
    """(n,): the loss's metric per sample; with extra metrics (1 + k, n), one row per metric_names."""
    first = spec.loss.metric.per_sample(out, t, spec.loss.from_logits)
    if not spec.metrics:
        return first
    return jnp.stack([first] + [m.per_sample(out, t, spec.loss.from_logits) for m in spec.metrics])


def row_sums(m: Array, h: Array) -> Array:
    """Σ_rows m·h: () for hits (n,), (1 + k,) for hits (1 + k, n)."""
    return jnp.sum(jnp.broadcast_to(m, h.shape) * h, axis=-1)


def _named(names, values: Array) -> dict:
    return {names[0]: values} if values.ndim == 0 else {name: values[i] for i, name in enumerate(names)}


def epoch_logs(spec: Spec, state: TrainState, data: Data, params) -> dict:
    """name -> the epoch's figure. val_loss is the mean of w·loss over the real validation rows
    (w: data.w_val, Keras' weighting); the validation metrics are unweighted means over them."""
    s, names = state.sums, metric_names(spec)
    logs = {"loss": s.loss / s.weight, **_named(names, jnp.asarray(s.metric) / s.weight)}
    if data.x_val is not None:
        x_val, y_val = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
        out = models.network_output(spec.model, spec.loss, params, x_val)
        per, h = spec.loss.per_sample(out, y_val), hits(spec, out, y_val)
        rows = jnp.arange(per.shape[0])
        real = jnp.ones_like(per) if data.n_val is None else (rows < data.n_val).astype(per.dtype)
        w = real if data.w_val is None else real * jnp.asarray(data.w_val, per.dtype)
        count = jnp.maximum(jnp.sum(real), 1)
        logs["val_loss"] = jnp.sum(w * per) / count
        logs.update(_named(tuple(f"val_{n}" for n in names), row_sums(real, h) / count))
    return logs
