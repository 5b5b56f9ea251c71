"""The decision-boundary picture's shared parts: the grid around the data, the labels, one frame's
drawing. fnn.plot.decision_boundary draws one; fnn.plot.animate (fnn._movie) draws one per snapshot.

matplotlib is imported on first use (fnn._canvas), as everywhere in fnn.plot.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fnn import _validate, models
from fnn.errors import FnnValueError

__all__ = ["Boundary", "draw", "setup"]


class Boundary(NamedTuple):
    """What every frame of a decision-boundary picture shares: the grid, the labels, the colours."""

    gx: np.ndarray  # (resolution, resolution) first feature
    gy: np.ndarray  # (resolution, resolution) second feature
    grid: np.ndarray  # (resolution², 2): the points the model is evaluated at
    labels: np.ndarray  # (n,) class of each data point
    n_classes: int  # 2 for one sigmoid unit, else the softmax width


def setup(model, params, x, y, resolution, where: str) -> Boundary:
    models.check_params(model, params)
    n_in = params[0][0].shape[0]
    if n_in != 2:
        raise FnnValueError(
            f"{where} needs a model with exactly 2 input features (x of shape (n, 2)); "
            f"this model takes {n_in}. Plot two features, or use fnn.plot.history instead"
        )
    act, k = model.output_activation, model.output_dim
    if not ((act == "sigmoid" and k == 1) or act == "softmax"):
        raise FnnValueError(
            f"{where} needs a classifier: one sigmoid unit or a softmax output, but the model "
            f"ends in Dense({k}, activation={act!r})"
        )
    x, _ = _validate.features(x, "x", 2)
    x = np.asarray(x, float)
    y = _validate.array(y, "y")
    _validate.check_finite(y, "y")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        labels = np.argmax(y, axis=1)  # one-hot rows
    elif (y.ndim == 2 and y.shape[1] == 1) or y.ndim == 1:
        labels = y.reshape(-1)
    else:
        raise FnnValueError(f"y must be (n,) class labels, (n, 1) or one-hot (n, k), got shape {y.shape}")
    _validate.same_length(x, labels, "x", "y")
    resolution = _validate.integer(resolution, "resolution", minimum=2)
    lo, hi = x.min(axis=0), x.max(axis=0)
    margin = 0.1 * np.where(hi > lo, hi - lo, 1.0)
    gx, gy = np.meshgrid(
        np.linspace(lo[0] - margin[0], hi[0] + margin[0], resolution),
        np.linspace(lo[1] - margin[1], hi[1] + margin[1], resolution),
    )
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(params[0][0].dtype)
    return Boundary(gx, gy, grid, labels, 2 if k == 1 else k)


def draw(ax, setup: Boundary, x, outputs):
    """Filled contour of outputs (resolution², n_out) over the grid, the data on top: (contours, points)."""
    from matplotlib import color_sequences, colormaps
    from matplotlib.colors import ListedColormap

    gx, gy = setup.gx, setup.gy
    points = dict(edgecolors="white", linewidths=0.6, s=16)  # a white rim: visible on a fill of its own colour
    if setup.n_classes == 2 and outputs.shape[1] == 1:
        prob = outputs[:, 0].reshape(gx.shape)
        filled = ax.contourf(gx, gy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
        ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1.2)
        scatter = ax.scatter(x[:, 0], x[:, 1], c=setup.labels, cmap="RdBu_r", vmin=0, vmax=1, **points)
    else:
        k = setup.n_classes
        cmap = ListedColormap(color_sequences["tab10"][:k]) if k <= 10 else colormaps["viridis"].resampled(k)
        cls = np.argmax(outputs, axis=1).reshape(gx.shape)
        filled = ax.contourf(gx, gy, cls, levels=np.arange(k + 1) - 0.5, cmap=cmap, alpha=0.45)
        scatter = ax.scatter(x[:, 0], x[:, 1], c=setup.labels, cmap=cmap, vmin=-0.5, vmax=k - 0.5, **points)
    ax.set_xlim(gx.min(), gx.max())
    ax.set_ylim(gy.min(), gy.max())
    ax.set_xlabel("x[:, 0]")
    ax.set_ylabel("x[:, 1]")
    return filled, scatter
