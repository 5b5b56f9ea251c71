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
    """(n,): the loss's metric per sample; with extra metrics (rows, n): a row per metric, two (the
    parts of a metric with a figure (precision, recall, auc: metrics.Metric.parts)."""
    first = spec.loss.metric.per_sample(out, t, spec.loss.from_logits)
    if not spec.metrics:
        return first
    rows = [m.per_sample(out, t, spec.loss.from_logits) for m in spec.metrics]
    return jnp.concatenate([first[None]] + [r if m.parts > 1 else r[None] for m, r in zip(spec.metrics, rows)])


def row_sums(m: Array, h: Array) -> Array:
    """Σ_rows m·h: () for hits (n,), (rows,) for hits (rows, n)."""
    return jnp.sum(jnp.broadcast_to(m, h.shape) * h, axis=-1)


def _figures(spec: Spec, names, sums: Array, weight: Array) -> dict:
    """Each metric's figure from the sums: its mean (sum / weight), or its figure of its parts' sums."""
    if sums.ndim == 0:
        return {names[0]: sums / weight}
    figures, i = {}, 0
    for name, metric in zip(names, (spec.loss.metric,) + tuple(spec.metrics)):
        part = sums[i : i + metric.parts]
        figures[name] = part[0] / weight if metric.figure is None else metric.figure(part)
        i += metric.parts
    return figures


def epoch_logs(spec: Spec, state: TrainState, data: Data, params) -> dict:
    """name -> the epoch's figure. val_loss is the mean of w·loss over the real validation rows
    (w: data.w_val, Keras' weighting) plus the regularization penalty, as in Keras (never any
    dropout); the validation metrics are unweighted means over them."""
    s, names = state.sums, metric_names(spec)
    logs = {"loss": s.loss / s.weight, **_figures(spec, names, jnp.asarray(s.metric), s.weight)}
    if data.x_val is not None:
        x_val, y_val = jnp.asarray(data.x_val), jnp.asarray(data.y_val)
        out = models.network_output(spec.model, spec.loss, params, x_val)
        per, h = spec.loss.per_sample(out, y_val), hits(spec, out, y_val)
        rows = jnp.arange(per.shape[0])
        real = jnp.ones_like(per) if data.n_val is None else (rows < data.n_val).astype(per.dtype)
        w = real if data.w_val is None else real * jnp.asarray(data.w_val, per.dtype)
        count = jnp.maximum(jnp.sum(real), 1)
        logs["val_loss"] = models.with_penalty(spec.model, params, jnp.sum(w * per) / count)  # Keras adds it too
        logs.update(_figures(spec, tuple(f"val_{n}" for n in names), row_sums(real, h), count))
    return logs
