"""Pictures of the inside of a network: every unit over the input plane, the weights as a graph, and
the numbers of one forward and backward pass. fnn.plot re-exports neurons, network and chain_rule.

matplotlib is imported on first use (fnn._canvas), as everywhere in fnn.plot.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from fnn import _canvas, _validate, backprop, models
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["chain_rule", "network", "neurons"]

DEAD_SPREAD = 1e-6  # a unit whose activation varies by no more than this is drawn as dead
POSITIVE, NEGATIVE = "tab:blue", "tab:red"  # edge colours by the sign of the weight
MAX_WIDTH = 4.0  # points: the line width of a layer's largest |w|
_BOUNDED = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0)}


# --------------------------------------------------------------------------- every unit over the plane
@functools.partial(jax.jit, static_argnums=0)
def _activations(names: tuple[str, ...], params, points):
    """Each layer's a_out on points (m, 2), one compiled call: a tuple of (m, units_l)."""
    fwd = backprop.forward(names, params, points)
    return fwd.inputs[1:] + (fwd.output,)


def _plane(x, resolution: int, dtype):
    """(xs, ys, grid (resolution², 2)): the data's box with a 10% margin, as decision_boundary uses, or [-1, 1]²."""
    if x is None:
        lo, hi = np.full(2, -1.0), np.full(2, 1.0)
    else:
        lo, hi = x.min(axis=0), x.max(axis=0)
        margin = 0.1 * np.where(hi > lo, hi - lo, 1.0)
        lo, hi = lo - margin, hi + margin
    xs, ys = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    gx, gy = np.meshgrid(xs, ys)  # row i is ys[i]: the orientation imshow(origin="lower") draws
    return xs, ys, np.stack([gx.ravel(), gy.ravel()], axis=1).astype(dtype)


def _labels(y, n: int) -> np.ndarray:
    """(n,) class of each point from (n,) labels, (n, 1) or one-hot (n, k) rows."""
    y = _validate.array(y, "y")
    _validate.check_finite(y, "y")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=1)
    elif y.ndim > 2 or y.ndim == 0:
        raise FnnValueError(f"y must be (n,) class labels, (n, 1) or one-hot (n, k), got shape {y.shape}")
    y = y.reshape(-1)
    if y.shape[0] != n:
        raise FnnValueError(f"x and y have different numbers of samples: {n} and {y.shape[0]}")
    return y


def _colour_range(name: object, values: np.ndarray) -> tuple[float, float]:
    """The activation's range when it is bounded, else the layer's values' range (never empty)."""
    if isinstance(name, str) and name in _BOUNDED:  # a user's fnn.Activation: its values' range
        return _BOUNDED[name]
    lo, hi = float(values.min()), float(values.max())
    return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)


def neurons(model: models.Sequential, params, x=None, y=None, *, resolution: int = 60):
    """Every unit's activation a_out = f(z) over the input plane: one small image per unit, one
    column per layer (hidden and output), units stacked as in the network.

    The model must take 2 features. The plane is x's box with a 10% margin, or [-1, 1]² without x;
    x (n, 2) is drawn on top, coloured by y ((n,) labels, (n, 1) or one-hot) when given. A unit whose
    a_out varies by at most 1e-6 over the plane and over x (a ReLU that is 0 everywhere) is titled
    "dead", in grey. Layers and units count from 1 ("layer 1, unit 1" is the first hidden unit).
    Each layer's colour bar is its activation value: fixed at (-1, 1) for tanh, (0, 1) for
    sigmoid/softmax, else the layer's range. Returns the Figure; its image panels come first in
    fig.axes, layer by layer and unit by unit, each image's array the unit's a_out on the
    (resolution, resolution) grid (row i at the i-th x2, column j at the j-th x1).

    Example:
        >>> fig = fnn.plot.neurons(model, params, x, y, resolution=20)
        >>> panels = [ax for ax in fig.axes if ax.images]
        >>> len(panels), panels[0].get_title(), panels[0].images[0].get_array().shape
        (5, 'layer 1, unit 1', (20, 20))
    """
    models.check_params(model, params)
    n_in = params[0][0].shape[0]
    if n_in != 2:
        raise FnnValueError(
            f"neurons draws each unit over the plane of 2 input features, but this model takes {n_in}; "
            "train a model on 2 features (or two of them) to look at its units, or use fnn.plot.network"
        )
    resolution = _validate.integer(resolution, "resolution", minimum=2)
    dtype = params[0][0].dtype
    labels = None
    if x is not None:
        x, _ = _validate.features(x, "x", 2)
        x = np.asarray(x, float)
        labels = None if y is None else _labels(y, x.shape[0])
    elif y is not None:
        raise FnnValueError("y colours the points of x, but x is None; pass x as well (or leave y out)")
    xs, ys, grid = _plane(x, resolution, dtype)
    points = grid if x is None else np.concatenate([grid, x.astype(dtype)])  # one call for the grid and x
    outs = [np.asarray(a, float) for a in jax.device_get(_activations(model.activations, params, points))]
    plt = _canvas.pyplot()
    from matplotlib.gridspec import GridSpec

    units = [layer.units for layer in model.layers]
    rows, cols = max(units), len(units)
    fig = plt.figure(figsize=(1.9 * cols + 0.6, 1.6 * rows + 1.0), layout="constrained")
    cells = GridSpec(rows + 1, cols, figure=fig, height_ratios=[1.0] * rows + [0.08])  # the last row: colour bars
    extent = (xs[0], xs[-1], ys[0], ys[-1])
    images = []
    for l, (name, out) in enumerate(zip(model.activations, outs)):
        vmin, vmax = _colour_range(name, out[: resolution * resolution])
        top = (rows - units[l]) // 2  # centred in its column, as a network is drawn
        for u in range(units[l]):
            ax = fig.add_subplot(cells[top + u, l])
            image = ax.imshow(
                out[: resolution * resolution, u].reshape(resolution, resolution),
                origin="lower",
                extent=extent,
                cmap="RdBu_r",
                vmin=vmin,
                vmax=vmax,
                aspect="auto",
                interpolation="nearest",
            )
            dead = np.ptp(out[:, u]) <= DEAD_SPREAD
            ax.set_title(
                f"layer {l + 1}, unit {u + 1}" + (": dead" if dead else ""),
                fontsize=8,
                color="0.5" if dead else "black",
            )
            if dead:
                for spine in ax.spines.values():
                    spine.set(color="0.6", linestyle="--")
            if x is not None:
                _points(ax, x, labels)
            ax.tick_params(labelsize=6, length=2)
            if u == units[l] - 1:
                ax.set_xlabel("x1", fontsize=7, labelpad=1)
            else:
                ax.set_xticklabels([])
            if l == 0:
                ax.set_ylabel("x2", fontsize=7, labelpad=1)
            else:
                ax.set_yticklabels([])
            images.append(image)
        bar = fig.colorbar(images[-1], cax=fig.add_subplot(cells[rows, l]), orientation="horizontal")
        bar.set_label(f"{name} activation", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    fig.suptitle("each unit's activation f(z) over the input plane (x1, x2)", fontsize=9)
    return fig


def _points(ax, x, labels):
    """The data on a panel: hollow black circles, or class colours edged in black."""
    style = dict(s=7, linewidths=0.4, edgecolors="black")
    if labels is None:
        ax.scatter(x[:, 0], x[:, 1], facecolors="none", **style)
    else:
        ax.scatter(x[:, 0], x[:, 1], c=labels, cmap="tab10", vmin=0, vmax=9, **style)
    ax.set_xlim(ax.images[0].get_extent()[:2])
    ax.set_ylim(ax.images[0].get_extent()[2:])


# --------------------------------------------------------------------------- the weights as a graph
def _heights(n: int) -> np.ndarray:
    """y positions of n units, top to bottom, centred on 0, one apart."""
    return (n - 1) / 2 - np.arange(n)


def network(model: models.Sequential, params, ax=None):
    """The architecture as layers of units (circles), each weight an edge from unit i of one layer
    to unit j of the next, blue for w > 0, red for w < 0, its width proportional to |w|.

    Widths are normalised per layer: each layer's largest |w| is 4 points wide (its value is
    written under the layer), so the widths compare weights within a layer, not across layers.
    Returns the Axes; ax.collections[l] is layer l's LineCollection (0-based), one segment per
    w[i, j] in w.ravel() order.

    Example:
        >>> ax = fnn.plot.network(model, params)
        >>> len(ax.collections[0].get_segments()), len(ax.collections[1].get_segments())  # 2·4 and 4·1 weights
        (8, 4)
    """
    models.check_params(model, params)
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D

    weights = [np.asarray(p[0], float) for p in params]
    sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    if ax is None:
        ax = _canvas.pyplot().subplots(figsize=(1.5 * len(sizes) + 1.0, 0.55 * max(sizes) + 2.2))[1]
    ax = _canvas.axes(ax)
    for l, w in enumerate(weights):
        x0, x1 = l, l + 1
        y0, y1 = _heights(w.shape[0]), _heights(w.shape[1])
        segments = [((x0, y0[i]), (x1, y1[j])) for i in range(w.shape[0]) for j in range(w.shape[1])]
        scale = float(np.abs(w).max()) or 1.0
        colours = [to_rgba(POSITIVE if v >= 0 else NEGATIVE, 0.8) for v in w.ravel()]
        ax.add_collection(
            LineCollection(segments, colors=colours, linewidths=MAX_WIDTH * np.abs(w.ravel()) / scale, zorder=1)
        )
    bottom = -(max(sizes) - 1) / 2 - 0.6
    for l, n in enumerate(sizes):
        heights = _heights(n)
        ax.scatter(np.full(n, l), heights, s=260, facecolors="white", edgecolors="black", linewidths=1.2, zorder=2)
        if l == 0:
            for i, h in enumerate(heights):
                ax.text(0, h, f"x{i + 1}", ha="center", va="center", fontsize=8, zorder=3)
            label = f"input\n{n} features"
        else:
            label = f"layer {l}\n{n} {model.activations[l - 1]}\nmax |w| {np.abs(weights[l - 1]).max():.3g}"
        ax.text(l, bottom, label, ha="center", va="top", fontsize=7.5)
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    ax.set_ylim(bottom - 1.2, (max(sizes) - 1) / 2 + 0.6)
    ax.axis("off")
    ax.legend(
        handles=[
            Line2D([], [], color=POSITIVE, lw=2, label="w > 0"),
            Line2D([], [], color=NEGATIVE, lw=2, label="w < 0"),
        ],
        loc="upper right",
        fontsize=7,
        frameon=False,
        title="width ∝ |w|, per layer",
        title_fontsize=7,
    )
    return ax


# --------------------------------------------------------------------------- one pass, in numbers
def _numbers(a, shown: int = 6) -> str:
    """A vector to 3 significant digits: "[0.123, -4.56]", the first `shown` entries of a longer one."""
    a = np.asarray(a, float).ravel()
    text = ", ".join(f"{v:.3g}" for v in a[:shown])
    return f"[{text}, … ({a.size})]" if a.size > shown else f"[{text}]"


def _matrix(w) -> str:
    """A matrix by its shape, its norm and its first entries (row by row)."""
    w = np.asarray(w, float)
    return f"shape {w.shape}, ‖·‖ = {np.linalg.norm(w):.3g},\n    first {_numbers(w, 4)}"


def _check_trace(trace) -> tuple[backprop.LayerTrace, ...]:
    if not isinstance(trace, Sequence) or not trace or not all(isinstance(t, backprop.LayerTrace) for t in trace):
        raise FnnTypeError(
            f"chain_rule needs the tuple of LayerTrace that fnn.backprop.trace returns, got {type(trace).__name__}; "
            "call fnn.backprop.trace(model, loss, params, x, y) first"
        )
    return tuple(trace)


def chain_rule(trace, ax=None):
    """One forward and backward pass in numbers, from fnn.backprop.trace: per layer (rows, first
    layer on top) a forward box (a_in, z = a_in·W + b, a_out = f(z)) and a backward box (δ = ∂L/∂z,
    ∂L/∂W and ∂L/∂b "stored" for the update, ∂L/∂a_in "passed back" to the layer above), forward
    arrows down the left, backward arrows up the right.

    Numbers to 3 significant digits; vectors longer than 6 and ∂L/∂W by shape, norm and first entries.
    With several examples the per-example rows are the first example's; ∂L/∂W, ∂L/∂b are the batch's.
    Returns the Axes.

    Example:
        >>> layers = fnn.backprop.trace(model, "binary_cross_entropy", params, x[0], y[0])
        >>> ax = fnn.plot.chain_rule(layers)
        >>> [t.get_text().splitlines()[0] for t in ax.texts[:2]]
        ['layer 1 forward', 'layer 1 backward']
    """
    trace = _check_trace(trace)
    n_layers, batch = len(trace), int(np.shape(trace[0].a_in)[0])
    if ax is None:
        plt = _canvas.pyplot()
        ax = plt.figure(figsize=(13, 1.3 * n_layers + 1.2)).add_axes((0.01, 0.01, 0.98, 0.93))
    ax = _canvas.axes(ax)
    ax.axis("off")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    box = dict(boxstyle="round,pad=0.4", linewidth=0.8)
    style: dict[str, Any] = dict(fontsize=7.5, family="monospace", va="center", ha="left", transform=ax.transAxes)
    left, right = 0.0, 0.47  # the forward and backward columns' left edges (axes fraction)
    forward, backward = [], []
    for l, t in enumerate(trace):
        height = 1 - (l + 0.5) / (n_layers + 0.6)
        forward.append(
            ax.text(
                left,
                height,
                "\n".join(
                    [
                        f"layer {l + 1} forward",
                        f"a_in  = {_numbers(t.a_in[0])}",
                        f"z     = a_in·W + b = {_numbers(t.z[0])}",
                        f"a_out = f(z) = {_numbers(t.a_out[0])}",
                    ]
                ),
                bbox=dict(box, facecolor="#e8f0fb", edgecolor="tab:blue"),
                **style,
            )
        )
        backward.append(
            ax.text(
                right,
                height,
                "\n".join(
                    [
                        f"layer {l + 1} backward",
                        f"δ = ∂L/∂z = {_numbers(t.delta[0])}",
                        f"∂L/∂W (stored): {_matrix(t.grad_w)}",
                        f"∂L/∂b (stored) = {_numbers(t.grad_b)}",
                        f"∂L/∂a_in (passed back) = δ·Wᵀ = {_numbers(t.grad_a_in[0])}",
                    ]
                ),
                bbox=dict(box, facecolor="#fdecea", edgecolor="tab:red"),
                **style,
            )
        )
    loss = ax.text(
        0.3,
        0.4 / (n_layers + 0.6),
        "loss L(a_out, y)\nδ of the last layer = ∂L/∂z",
        ha="center",
        va="center",
        fontsize=8,
        transform=ax.transAxes,
        bbox=dict(box, facecolor="0.93", edgecolor="0.4"),
    )
    arrow = dict(arrowstyle="-|>", lw=1.0)
    down, up = left + 0.04, right + 0.04  # x of the arrows: straight down the left, straight up the right
    for boxes, x, color, rising in ((forward, down, "tab:blue", False), (backward, up, "tab:red", True)):
        for above, below in itertools.pairwise(boxes):  # forward runs down the left, backward up the right
            tail, head = ((below, 1), (above, 0)) if rising else ((above, 0), (below, 1))
            ax.annotate(
                "",
                xy=(x, head[1]),
                xycoords=("axes fraction", head[0]),
                xytext=(x, tail[1]),
                textcoords=("axes fraction", tail[0]),
                arrowprops=dict(arrow, color=color),
            )
    ax.annotate(
        "",
        xy=(0, 0.5),
        xycoords=loss,
        xytext=(down, 0),
        textcoords=("axes fraction", forward[-1]),
        arrowprops=dict(arrow, color="tab:blue", connectionstyle="angle,angleA=-90,angleB=180"),
    )
    ax.annotate(
        "",
        xy=(up, 0),
        xycoords=("axes fraction", backward[-1]),
        xytext=(1, 0.5),
        textcoords=loss,
        arrowprops=dict(arrow, color="tab:red", connectionstyle="angle,angleA=0,angleB=-90"),
    )
    which = f"example 1 of {batch}; ∂L/∂W, ∂L/∂b over all {batch}" if batch > 1 else "one example"
    ax.set_title(f"the chain rule, forward ↓ then backward ↑ ({which})", fontsize=9)
    return ax
