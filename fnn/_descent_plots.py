"""Descent on a function of two variables: f's contours with the paths of one or more optimizers on
top. fnn.plot.descent draws these for a (steps, 2) path or a {label: path} dict; matplotlib on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fnn import _canvas, _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["DescentPaths", "paths"]

RESOLUTION = 200  # grid points per axis of the contours
MARGIN = 0.15  # of the paths' span, on each side
DECADES = 6  # log-spaced levels reach at most this many decades below f's largest value on the grid


class DescentPaths(NamedTuple):
    """What fnn.plot.descent draws for paths of two variables."""

    contours: Any  # the filled QuadContourSet of f over the grid
    isolines: Any  # the line QuadContourSet at the same levels
    colorbar: Any  # the contours' Colorbar, labelled with f
    lines: dict  # label -> Line2D: the path, one marker per point
    starts: dict  # label -> Line2D: the start marker
    ends: dict  # label -> Line2D: the end marker
    xs: np.ndarray  # (RESOLUTION,) the grid's x[0] values
    ys: np.ndarray  # (RESOLUTION,) its x[1] values
    values: np.ndarray  # (RESOLUTION, RESOLUTION) f on the grid, values[i, j] = f([xs[j], ys[i]])


def _paths(path) -> dict[str, np.ndarray]:
    """{label: (steps, 2) float array}, each checked: two columns, at least one row, finite."""
    if isinstance(path, dict):
        if not path:
            raise FnnValueError("paths is an empty dict; pass {label: path} with at least one (steps, 2) path")
        items = list(path.items())
    else:
        items = [("path", path)]
    out = {}
    for label, p in items:
        name = f"path {label!r}" if isinstance(path, dict) else "path"
        p = _validate.array(p, name)
        if np.ndim(p) != 2 or np.shape(p)[1] != 2 or np.shape(p)[0] == 0:
            raise FnnValueError(
                f"{name} must be (steps,) x values for f of one variable or (steps, 2) points for f of two, "
                f"got shape {tuple(np.shape(p))}; for more variables plot two of them, e.g. path[:, :2]"
            )
        p = np.asarray(p, float)
        bad = ~np.isfinite(p).all(axis=1)
        if bad.any():
            k = int(np.argmax(bad))
            raise FnnValueError(
                f"{name} has a non-finite point at row {k} of {len(p)} (the run diverged there?); "
                f"plot the rows before it, path[:{k}], or rerun with a smaller learning rate"
            )
        out[str(label)] = p
    return out


def _values(f, points: np.ndarray, what: str) -> np.ndarray:
    """f(points) for points (..., 2), checked to be (...) real values."""
    out = np.asarray(f(points), float)
    if out.shape == points.shape:
        raise FnnValueError(
            f"f of {what} of shape {points.shape} returned values of that same shape: f looks elementwise, a "
            "function of one variable. For one variable pass path as a 1-d sequence of x values; for two, "
            "write f over the last axis, e.g. lambda p: p[..., 0] ** 2 + 10 * p[..., 1] ** 2"
        )
    if out.shape != points.shape[:-1]:
        raise FnnValueError(
            f"f must map points (..., 2) to values (...): f of {what} of shape {points.shape} returned shape "
            f"{out.shape}; write it over the last axis, e.g. lambda p: p[..., 0] ** 2 + 10 * p[..., 1] ** 2"
        )
    return out


def _levels(values: np.ndarray, count: int = 25) -> tuple[np.ndarray, bool]:
    """Contour levels over the finite values: log-spaced when they are positive and span more than two
    decades (as Rosenbrock's do: else its valley is one band), evenly spaced otherwise. -> (levels, log)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise FnnValueError("f is not finite anywhere on the grid around the paths; check f")
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return np.array([lo - 0.5, lo + 0.5]), False
    if lo >= 0 and hi > 0 and hi / max(lo, hi * 10.0**-DECADES) > 100:
        return np.geomspace(max(lo, hi * 10.0**-DECADES), hi, count), True
    return np.linspace(lo, hi, count), False


def paths(f: Callable[[Any], Any], path, ax=None) -> DescentPaths:
    """Filled contours of f over the range of all paths (with a margin), each path a line with one
    marker per point, its start (square) and end (star) marked; a colourbar labelled with f, and a
    legend with each label, its step count and final f.

    f: maps points (..., 2) to values (...). path: (steps, 2), or {label: (steps, 2)}.
    """
    if not callable(f):
        raise FnnTypeError(
            f"f must be a function of points (..., 2), e.g. lambda p: p[..., 0] ** 2 + p[..., 1] ** 2, "
            f"got {type(f).__name__}"
        )
    found = _paths(path)
    every = np.concatenate(list(found.values()))
    lo, hi = every.min(axis=0), every.max(axis=0)
    margin = np.where(hi > lo, MARGIN * (hi - lo), np.maximum(1.0, MARGIN * np.abs(lo)))
    xs = np.linspace(lo[0] - margin[0], hi[0] + margin[0], RESOLUTION)
    ys = np.linspace(lo[1] - margin[1], hi[1] + margin[1], RESOLUTION)
    gx, gy = np.meshgrid(xs, ys)  # row i at ys[i]: contourf's z[row = y, column = x]
    grid = _values(f, np.stack([gx, gy], axis=-1), "a grid")
    on_path = {label: _values(f, p, f"path {label!r}") for label, p in found.items()}
    lv, log = _levels(grid)
    ax = _canvas.axes(ax)
    norm = None
    if log:
        from matplotlib.colors import LogNorm

        norm = LogNorm(lv[0], lv[-1])
    filled = ax.contourf(gx, gy, grid, levels=lv, cmap="viridis", norm=norm, extend="both" if log else "neither")
    isolines = ax.contour(gx, gy, grid, levels=lv, colors="white", linewidths=0.4, alpha=0.5, norm=norm)
    name = getattr(f, "__name__", "f")
    name = name if name.isidentifier() else "f"  # a lambda's name is "<lambda>"
    colorbar = ax.figure.colorbar(filled, ax=ax, label=f"{name}(x)" + (" (log scale)" if log else ""))
    if log:  # labels at 1, 2 and 5 of each decade: a log bar otherwise labels one or two ticks
        from matplotlib.ticker import FormatStrFormatter, LogLocator

        colorbar.set_ticks(LogLocator(subs=(1.0, 2.0, 5.0)))
        colorbar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        colorbar.ax.minorticks_off()
    lines, starts, ends = {}, {}, {}
    colours = {label: f"C{(i + 1) % 10}" for i, label in enumerate(found)}  # C0 is close to viridis' blues
    for label, p in found.items():
        text = f"{label}: {len(p) - 1} steps, final {name} = {on_path[label][-1]:.3g}"
        (lines[label],) = ax.plot(p[:, 0], p[:, 1], ".-", color=colours[label], lw=1.2, ms=3.5, alpha=0.9, label=text)
    for label, p in found.items():  # markers after every line: on top of them, and last in the legend
        (starts[label],) = ax.plot(p[:1, 0], p[:1, 1], "s", color="white", mec="k", ms=8, label="_start")
    for label, p in found.items():
        (ends[label],) = ax.plot(p[-1:, 0], p[-1:, 1], "*", color=colours[label], mec="k", ms=14, label="_end")
    first = next(iter(found))
    starts[first].set_label("start")
    ends[first].set_label("end (★ in the path's colour)")
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    return DescentPaths(filled, isolines, colorbar, lines, starts, ends, xs, ys, grid)
