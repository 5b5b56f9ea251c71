"""Pictures of the loss surface (fnn.surface): a landscape's contours with a run's path, and the
sharpness of a run against the edge of stability. Re-exported by fnn.plot; matplotlib on first use.
"""

from __future__ import annotations

import numpy as np

from fnn import _canvas, _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["landscape", "sharpness"]


def _levels(losses: np.ndarray, count: int = 20) -> np.ndarray:
    """Contour levels for a surface whose loss spans decades around a low centre: log-spaced when
    it does (else the basin is one band), evenly spaced otherwise."""
    finite = losses[np.isfinite(losses)]
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return np.array([lo - 0.5, lo + 0.5]) if lo == hi else np.array([lo, hi])
    if lo > 0 and hi / lo > 10:
        return np.geomspace(lo, hi, count)
    return np.linspace(lo, hi, count)


def landscape(result, ax=None):
    """Filled contours of a Landscape's losses over (α, β), a colourbar labelled "loss", the centre
    (the params it was taken around) marked, and its path (if any) as a line from a start to an end
    marker. Returns (contour set, colourbar, path line or None).

    Example:
        >>> surface = fnn.landscape(model, "binary_cross_entropy", params, x, y, resolution=9)
        >>> contours, colorbar, path = fnn.plot.landscape(surface)
    """
    names = ("alphas", "betas", "losses", "path")
    if not all(hasattr(result, name) for name in names):
        raise FnnTypeError(f"landscape needs the result of fnn.landscape, got {type(result).__name__}")
    alphas, betas, losses = (np.asarray(getattr(result, n), float) for n in names[:3])
    if losses.shape != (alphas.size, betas.size):
        shape = (alphas.size, betas.size)
        raise FnnValueError(f"losses must be (len(alphas), len(betas)) = {shape}, got {losses.shape}")
    if not np.isfinite(losses).any():
        raise FnnValueError("every loss of the landscape is non-finite: take a smaller span")
    ax = _canvas.axes(ax)
    levels = _levels(losses)
    norm = None
    if levels[0] > 0 and levels[-1] / levels[0] > 10:
        from matplotlib.colors import LogNorm

        norm = LogNorm(levels[0], levels[-1])
    # losses[i, j] is at (alphas[i], betas[j]): contourf takes z[row = y, column = x], so transpose
    filled = ax.contourf(alphas, betas, losses.T, levels=levels, cmap="viridis", norm=norm, extend="neither")
    ax.contour(alphas, betas, losses.T, levels=levels, colors="white", linewidths=0.4, alpha=0.5, norm=norm)
    colorbar = ax.figure.colorbar(filled, ax=ax, label="loss")
    if norm is not None:  # labels at 1, 2 and 5 of each decade: a log bar otherwise labels one or two ticks
        from matplotlib.ticker import FormatStrFormatter, LogLocator

        colorbar.set_ticks(LogLocator(subs=(1.0, 2.0, 5.0)))
        colorbar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        colorbar.ax.minorticks_off()
    mid_a, mid_b = alphas[alphas.size // 2], betas[betas.size // 2]
    ax.plot([mid_a], [mid_b], "+", color="white", ms=14, mew=2, label="params (centre)")
    line = None
    if result.path is not None:
        path = np.asarray(result.path, float)
        (line,) = ax.plot(path[:, 0], path[:, 1], ".-", color="C3", lw=1.5, ms=4, label="path")
        ax.plot(path[:1, 0], path[:1, 1], "o", color="C1", mec="white", ms=9, label="start")
        ax.plot(path[-1:, 0], path[-1:, 1], "*", color="C3", mec="white", ms=15, label="end")
    ax.set_xlim(alphas[0], alphas[-1])
    ax.set_ylim(betas[0], betas[-1])
    ax.set_aspect("equal")
    ax.set_xlabel("α (direction 1)")
    ax.set_ylabel("β (direction 2)")
    ax.legend(fontsize=8, loc="upper right", framealpha=0.8)
    return filled, colorbar, line


def sharpness(result, learning_rate, ax=None):
    """history["sharpness"] (fnn.callbacks.Sharpness) per epoch, with the line 2/η: gradient descent
    with step η is unstable along a curvature above it, and full-batch runs hover at it, the edge
    of stability (Cohen et al. 2021). Epochs it was not measured on (NaN) are skipped.
    Returns (sharpness line, 2/η line).

    Example:
        >>> result = fnn.fit(model, params, x, y, optimizer=fnn.optim.sgd(0.5), batch_size=64, epochs=20,
        ...                  callbacks=[fnn.callbacks.Sharpness(every=2)])
        >>> curve, edge = fnn.plot.sharpness(result, learning_rate=0.5)
        >>> edge.get_label()
        '2/η (edge of stability)'
    """
    hist = result.history if hasattr(result, "history") else result
    if not isinstance(hist, dict):
        raise FnnTypeError(f"sharpness needs a FitResult or its history dict, got {type(result).__name__}")
    if "sharpness" not in hist:
        raise FnnValueError(
            f"the history has no 'sharpness' (names: {sorted(hist)}); train with "
            "callbacks=[fnn.callbacks.Sharpness(every=k)]"
        )
    rate = _validate.real(learning_rate, "learning_rate", low=0, low_open=True)
    values = np.asarray(hist["sharpness"], float)
    epochs = np.arange(1, values.size + 1)
    measured = np.isfinite(values)
    if not measured.any():
        raise FnnValueError("history['sharpness'] has no finite value: run at least `every` epochs")
    ax = _canvas.axes(ax)
    (curve,) = ax.plot(epochs[measured], values[measured], "o-", color="C0", ms=3, label="sharpness (top eigenvalue)")
    edge = ax.axhline(2.0 / rate, color="C3", ls="--", label="2/η (edge of stability)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("largest Hessian eigenvalue")
    top = 1.15 * max(2.0 / rate, float(values[measured].max()))
    ax.set_ylim(min(0.0, 1.15 * float(values[measured].min())), top)  # from 0, unless one was negative
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return curve, edge
