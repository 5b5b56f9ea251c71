"""Pictures of a run: training curves, decision boundaries, per-layer signals, learning-rate sweeps.

matplotlib is imported on first use, not with fnn (install it with `pip install 'fnn[experiments]'`).
Every function draws into `ax` (a new figure when ax is None), returns what it drew and never
calls plt.show(): call it yourself, or save the figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fnn import _boundary, _canvas, _lr_plots, _validate, inference, models
from fnn._inside_plots import chain_rule, network, neurons
from fnn._lr_plots import lr_find
from fnn._movie import animate
from fnn._surface_plots import landscape, sharpness
from fnn.errors import FnnTypeError, FnnValueError
from fnn.signals import LayerStats, grouped_bars, layer_stats, layers

__all__ = [
    "LayerStats",
    "animate",
    "chain_rule",
    "decision_boundary",
    "descent",
    "grouped_bars",
    "history",
    "landscape",
    "layer_stats",
    "layers",
    "learning_rates",
    "lr_find",
    "network",
    "neurons",
    "sharpness",
]

_DIVERGED = "non_finite_loss"  # the stop_reason of a run that met a non-finite loss


# --------------------------------------------------------------------------- training curves
def history(result, ax=None, *, val_label: str = "validation"):
    """Loss (left axis) and the metric (right axis) per epoch, training solid, validation dashed.

    result: a FitResult, or its history dict (name -> one float per epoch: "loss", "accuracy"
    or "mse", and "val_loss", "val_…" with validation data).
    Returns (loss_ax, metric_ax); metric_ax is None when the history has no metric.

    Example:
        >>> result = fnn.fit(model, params, x, y, epochs=50, validation_split=0.2)
        >>> loss_ax, metric_ax = fnn.plot.history(result)
        >>> loss_ax.set_yscale("log")
    """
    hist = result.history if hasattr(result, "history") else result
    if not isinstance(hist, dict):
        raise FnnTypeError(f"history needs a FitResult or its history dict, got {type(result).__name__}")
    if len(hist.get("loss", ())) == 0:
        raise FnnValueError(
            f"the history has no 'loss' entries (names: {sorted(hist)}); "
            "pass the result of fnn.fit after at least one epoch"
        )
    for name, values in hist.items():
        if np.ndim(values) != 1:
            raise FnnValueError(
                f"history[{name!r}] has shape {np.shape(values)}, expected one value per epoch; "
                "for the stacked history of fnn.sweep use fnn.plot.learning_rates"
            )
    ax = _canvas.axes(ax)
    epochs = np.arange(1, len(hist["loss"]) + 1)
    metric = next((k for k in hist if k != "loss" and not k.startswith("val_")), None)
    lines = []

    def curves(target, name, color):
        lines.extend(target.plot(epochs, np.asarray(hist[name], float), color=color, label=f"{name} (train)"))
        if f"val_{name}" in hist:
            lines.extend(
                target.plot(
                    epochs, np.asarray(hist[f"val_{name}"], float), color=color, ls="--", label=f"{name} ({val_label})"
                )
            )
        target.set_ylabel(name, color=color)

    curves(ax, "loss", "C0")
    metric_ax = None
    if metric is not None:
        metric_ax = ax.twinx()
        curves(metric_ax, metric, "C1")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    (metric_ax or ax).legend(lines, [line.get_label() for line in lines], fontsize=8)  # on top of both axes
    return ax, metric_ax


# --------------------------------------------------------------------------- decision boundary
def decision_boundary(model: models.Sequential, params, x, y, ax=None, resolution: int = 200):
    """The model's prediction over a grid around x (n, 2), with the points (x, y) coloured by label.

    One sigmoid unit: the probability, filled in ten bands, and its 0.5 contour. Softmax: the
    predicted class (argmax). y: (n,) labels, (n, 1) or one-hot (n, k).
    Returns (contour set, scatter); pass the contour set to fig.colorbar for a scale.

    Example:
        >>> contours, points = fnn.plot.decision_boundary(model, params, x, y)
        >>> colorbar = contours.figure.colorbar(contours, label="P(y = 1)")
    """
    setup = _boundary.setup(model, params, x, y, resolution, "decision_boundary")
    ax = _canvas.axes(ax)
    outputs = np.asarray(inference.predict(model, params, setup.grid))
    return _boundary.draw(ax, setup, np.asarray(x, float), outputs)


# --------------------------------------------------------------------------- learning-rate sweeps
def _last_finite(runs: np.ndarray) -> np.ndarray:
    """(..., epochs) -> (...): each run's last finite value, NaN if it has none."""
    finite = np.isfinite(runs)
    last = runs.shape[-1] - 1 - np.argmax(finite[..., ::-1], axis=-1)
    value = np.take_along_axis(runs, last[..., None], axis=-1)[..., 0]
    return np.where(finite.any(axis=-1), value, np.nan)


def learning_rates(sweep_result, ax=None, metric: str = "loss", *, chance: float | None = None):
    """history[metric] at the end of each run against the learning rate (log axis): the median over
    seeds as a line, min–max over seeds as a band.

    A run that diverged (stopped on a non-finite loss) is left out of both and counted instead by an
    x at the top of the axes, with "k/n" runs at that rate. metric: any history name ("loss",
    "val_loss", "accuracy", …). chance: a loss drawn as a dashed line labelled "chance level (…)",
    the loss of knowing nothing: ln 2 ≈ 0.693 for binary cross-entropy on a balanced binary task (a
    run that sits there, e.g. with dead ReLUs at a large rate, stalled; it did not diverge).
    Returns (median line, band, diverged markers).

    Example:
        >>> runs = fnn.sweep(model, x, y, optimizer=lambda lr: fnn.optim.momentum(lr, 0.9),
        ...                  learning_rates=[0.01, 0.1, 1.0, 10.0], seeds=[0, 1, 2], epochs=30)
        >>> line, band, diverged = fnn.plot.learning_rates(runs)
    """
    hist = getattr(sweep_result, "history", None)
    rates = getattr(sweep_result, "learning_rates", None)
    if not isinstance(hist, dict) or rates is None:
        raise FnnTypeError(
            f"learning_rates needs a fnn.SweepResult (from fnn.sweep), got {type(sweep_result).__name__}"
        )
    if metric not in hist:
        raise FnnValueError(f"metric {metric!r} is not in the sweep's history; choose one of {sorted(hist)}")
    chance = None if chance is None else _validate.real(chance, "chance")
    rates = np.asarray(rates, float)
    runs = np.asarray(hist[metric], float)
    if runs.ndim != 3 or runs.shape[0] != len(rates):
        raise FnnValueError(
            f"history[{metric!r}] must be (n_rates, n_seeds, epochs) with n_rates = {len(rates)}, "
            f"got shape {runs.shape}"
        )
    last = _last_finite(runs)  # (n_rates, n_seeds)
    reasons = getattr(sweep_result, "stop_reasons", None)
    diverged = ~np.isfinite(last)
    if reasons is not None:  # the last finite value of a diverged run is from before it blew up: not a result
        diverged |= np.asarray(reasons) == _DIVERGED
    final = np.where(diverged, np.nan, last)
    finite = np.isfinite(final)
    some = finite.any(axis=1)
    # Row by row, so that an all-diverged rate is a gap and not a warning.
    low, mid, high = (
        np.array([f(row[ok]) if ok.any() else np.nan for row, ok in zip(final, finite)])
        for f in (np.min, np.median, np.max)
    )
    ax = _canvas.axes(ax)
    n_seeds = runs.shape[1]
    band = ax.fill_between(rates, low, high, where=some, alpha=0.25, color="C0", label=f"min–max over {n_seeds} seeds")
    (line,) = ax.plot(rates, mid, "o-", color="C0", label="median")
    count = diverged.sum(axis=1)
    hit = count > 0
    (markers,) = ax.plot(
        rates[hit],
        np.full(hit.sum(), 0.96),
        "x",
        color="C3",
        ms=8,
        mew=2,
        transform=ax.get_xaxis_transform(),
        label="diverged (runs at that rate)" if hit.any() else "_diverged",
    )
    for r, c in zip(rates[hit], count[hit]):
        ax.annotate(
            f"{c}/{n_seeds}",
            (r, 0.96),
            xycoords=ax.get_xaxis_transform(),
            xytext=(0, -12),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=7,
            color="C3",
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"{metric} at the end of the run")
    ax.grid(alpha=0.3, which="both")
    _lr_plots.chance_line(ax, chance)
    ax.legend(fontsize=8)
    return line, band, markers


# --------------------------------------------------------------------------- descent
def descent(f: Callable[[Any], Any], path, ax=None):
    """f drawn over the range of path (with a margin), and the points path visited: gradient descent
    or ascent on a function of one variable, or of two.

    One variable: f is elementwise, maps an array of x values to f(x) of the same shape; path is
    (steps,) x values, the first one the start. Returns (curve, steps, start, end) lines.

    Two variables: f maps points (..., 2) to values (...); path is (steps, 2) points (as from
    fnn.optim.trajectory), or a dict {label: (steps, 2) path} of several drawn on one axes. Draws
    filled contours of f over the range of all paths (log-spaced where f spans decades), each path
    with its start and end, a colourbar and a legend (label, steps, final f). Returns a
    DescentPaths (fnn._descent_plots): the filled contours, the isolines, the colorbar, the lines,
    starts and ends ({label: Line2D} each), and the grid xs, ys with f's values on it.

    Example:
        >>> P = lambda x: -2 * x ** 2 + 12 * x - 10
        >>> xs = [12.0]
        >>> for _ in range(20):
        ...     xs.append(xs[-1] + 0.1 * (-4 * xs[-1] + 12))  # x ← x + η P'(x)
        >>> curve, steps, start, end = fnn.plot.descent(P, xs)
        >>> bowl = lambda p: 0.5 * (p[..., 0] ** 2 + 10 * p[..., 1] ** 2)
        >>> runs = {name: fnn.optim.trajectory(opt, bowl, [-2.0, 1.0], steps=30)
        ...         for name, opt in [("sgd", fnn.optim.sgd(0.09)), ("momentum", fnn.optim.momentum(0.02, 0.8))]}
        >>> drawn = fnn.plot.descent(bowl, runs)
        >>> sorted(drawn.lines)
        ['momentum', 'sgd']
    """
    try:
        two = isinstance(path, dict) or np.ndim(path) == 2  # points of two variables
    except (ValueError, TypeError):  # ragged or not an array: the checks below name the problem
        two = False
    if two:
        from fnn import _descent_plots

        return _descent_plots.paths(f, path, ax)
    if not callable(f):
        raise FnnTypeError(f"f must be a function of x, e.g. lambda x: x ** 2, got {type(f).__name__}")
    path = _validate.array(path, "path")
    path = np.asarray(path, float)
    if path.ndim != 1 or path.size == 0:
        raise FnnValueError(f"path must be a 1-d sequence of x values (at least one), got shape {path.shape}")
    _validate.check_finite(path, "path")
    lo, hi = path.min(), path.max()
    margin = 0.15 * (hi - lo) if hi > lo else max(1.0, 0.15 * abs(lo))
    xs = np.linspace(lo - margin, hi + margin, 400)

    def values(points):
        out = np.asarray(f(points), float)
        if out.shape != points.shape:
            raise FnnValueError(f"f must be elementwise: f(x) for x of shape {points.shape} returned shape {out.shape}")
        return out

    ax = _canvas.axes(ax)
    fx = values(path)
    name = getattr(f, "__name__", "f")
    name = name if name.isidentifier() else "f"  # a lambda's name is "<lambda>"
    (curve,) = ax.plot(xs, values(xs), color="0.3", lw=1.5, label=f"{name}(x)")
    (steps,) = ax.plot(path, fx, "o-", color="C0", lw=0.7, ms=4, alpha=0.8, label=f"{path.size - 1} steps")
    (start,) = ax.plot(path[:1], fx[:1], "s", color="C2", ms=9, label=f"start x = {path[0]:.4g}")
    (end,) = ax.plot(path[-1:], fx[-1:], "*", color="C3", ms=13, label=f"end x = {path[-1]:.4g}")
    ax.set_xlabel("x")
    ax.set_ylabel(f"{name}(x)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return curve, steps, start, end
