"""Per-layer signals of a network: dead units, the mean |δ| passed back into each layer and each layer's gradient
norm, as numbers (`layer_stats`) and as grouped bars (`layers`, `grouped_bars`). fnn.plot re-exports all four.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _canvas, _compile, backprop, models
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["LayerStats", "grouped_bars", "layer_stats", "layers"]


class LayerStats(NamedTuple):
    """What backprop sees of a network on (x, y), one entry per layer."""

    units: tuple[int, ...]
    dead: tuple[int, ...]  # ReLU units that output 0 for every sample of x
    mean_abs_delta: tuple[float, ...]  # mean over samples and units of |δ_l| = |∂L/∂z_l|
    grad_norm: tuple[float, ...]  # ‖∂L/∂(w_l, b_l)‖₂
    loss: float


@_compile.jit(static_argnums=(0, 1))
def _layer_stats(model, loss, params, x, y):
    back = backprop.backward(model, loss, params, x, y)
    dead = backprop.dead_units(model, params, x)
    return (back.loss, [jnp.sum(d) for d in dead], [jnp.mean(jnp.abs(d)) for d in back.deltas], list(back.grad_norms))


def layer_stats(model: models.Sequential, params, x, y, loss: str) -> LayerStats:
    """fnn.backprop.backward and dead_units on (x, y), reduced to a few numbers per layer.

    Example:
        >>> stats = fnn.plot.layer_stats(model, params, x, y, "binary_cross_entropy")
        >>> stats.dead, stats.mean_abs_delta  # where these are 0, nothing upstream learns
        ((0, 0), (0.0042, 0.0078))
    """
    spec = models.resolve_loss(model, loss)
    x, y = models.prepare(model, spec, params, x, y)  # every check on the host, before tracing
    value, dead, delta, norm = jax.device_get(_layer_stats(model, loss, params, x, y))
    return LayerStats(
        units=tuple(layer.units for layer in model.layers),
        dead=tuple(int(d) for d in dead),
        mean_abs_delta=tuple(float(d) for d in delta),
        grad_norm=tuple(float(g) for g in norm),
        loss=float(value),
    )


def _bar_set(ax, slot: int, n_slots: int, values, label: str, log: bool, floor: float, **style):
    """One bar per group at position slot of n_slots; on a log axis an exact 0 is drawn at floor, marked "0"."""
    values = np.asarray(values, dtype=float)
    width = 0.8 / n_slots
    pos = np.arange(len(values)) + (slot - (n_slots - 1) / 2) * width
    bars = ax.bar(pos, np.maximum(values, floor) if log else values, width, label=label, **style)
    for bar, v in zip(bars, values):
        if log and v == 0:
            ax.text(bar.get_x() + bar.get_width() / 2, floor, "0", ha="center", va="bottom", fontsize=7)
    return bars


def grouped_bars(
    groups: dict,
    labels: Sequence[str],
    ax=None,
    *,
    ylabel: str,
    log: bool = True,
    floor: float = 1e-12,
    xlabel: str = "layer",
):
    """Bars grouped by layer: one group per entry of labels, one bar per entry of groups (name -> values).

    Use it to set several networks side by side (e.g. LayerStats.mean_abs_delta of each); with a
    log axis, an exact 0 is drawn at `floor` and marked "0". Returns one BarContainer per group name.

    Example:
        >>> nets = {"seed 0": params, "seed 1": model.init(1, 2, dtype=jnp.float64)}
        >>> stats = {name: fnn.plot.layer_stats(model, p, x, y, "binary_cross_entropy") for name, p in nets.items()}
        >>> fnn.plot.grouped_bars({k: s.grad_norm for k, s in stats.items()}, ["1", "2"], ylabel="‖grad‖")
        [<BarContainer object of 2 artists>, <BarContainer object of 2 artists>]
    """
    if not isinstance(groups, dict):
        raise FnnTypeError(f"groups must be a dict name -> one value per label, got {type(groups).__name__}")
    if not groups:
        raise FnnValueError("groups is empty; pass at least one name -> values entry")
    labels = list(labels)
    for name, values in groups.items():
        if np.ndim(values) != 1 or len(values) != len(labels):
            raise FnnValueError(
                f"groups[{name!r}] has shape {np.shape(values)}; expected one value per label ({len(labels)})"
            )
    ax = _canvas.axes(ax)
    bars = [_bar_set(ax, i, len(groups), values, name, log, floor) for i, (name, values) in enumerate(groups.items())]
    ax.set_xticks(np.arange(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return bars


def layers(model: models.Sequential, params, x, y, loss: str, ax=None):
    """Per layer: mean |δ| and the gradient norm (log axis, left), the fraction of dead units (right).

    Computed by fnn.plot.layer_stats; a layer whose δ is 0 passes no error signal, so nothing below
    it learns. Returns (delta_bars, grad_norm_bars, dead_bars), one bar per layer each.

    Example:
        >>> delta_bars, norm_bars, dead_bars = fnn.plot.layers(model, params, x, y, "binary_cross_entropy")
    """
    stats = layer_stats(model, params, x, y, loss)
    ax = _canvas.axes(ax)
    floor = 1e-12
    delta_bars = _bar_set(ax, 0, 3, stats.mean_abs_delta, "mean |δ| = mean |∂L/∂z|", True, floor, color="C0")
    norm_bars = _bar_set(ax, 1, 3, stats.grad_norm, "‖∂L/∂(w, b)‖₂", True, floor, color="C1")
    dead_ax = ax.twinx()
    dead = [d / u for d, u in zip(stats.dead, stats.units)]
    dead_bars = _bar_set(dead_ax, 2, 3, dead, "dead units (right axis)", False, floor, color="0.5", hatch="//")
    ax.set_yscale("log")
    # The bars fill the lower 60% of the axes, the legend the top: neither axis knows the other's bars.
    low, high = ax.get_ylim()
    ax.set_ylim(low, low * (high / low) ** (1 / 0.6))
    dead_ax.set_ylim(0, 1 / 0.6)
    dead_ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_xticks(np.arange(len(model.layers)))
    ax.set_xticklabels(
        [f"{i + 1}: {layer.units} {layer.activation}" for i, layer in enumerate(model.layers)], fontsize=8
    )
    ax.set_xlabel("layer")
    ax.set_ylabel("mean |δ|, gradient norm")
    dead_ax.set_ylabel("fraction of units dead")
    ax.grid(alpha=0.3, axis="y")
    bars = (delta_bars, norm_bars, dead_bars)
    dead_ax.legend(bars, [b.get_label() for b in bars], fontsize=7, loc="upper right")
    return bars
