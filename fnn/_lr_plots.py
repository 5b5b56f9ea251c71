"""Pictures of the learning rate: the range test of fnn.lr_find, and the chance level that
fnn.plot.learning_rates can draw. Re-exported by fnn.plot; matplotlib on first use (fnn._canvas).
"""

from __future__ import annotations

import numpy as np

from fnn import _canvas, _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["chance_line", "lr_find"]

_FIELDS = ("rates", "losses", "raw_losses", "suggestion")


def lr_find(result, ax=None):
    """The range test of fnn.lr_find: the smoothed loss (and, faint, each step's raw loss) against
    the learning rate on a log axis, the suggested rate marked on the smoothed curve and labelled.

    The y range follows the smoothed loss (a raw loss of the last steps can be far above it).
    Returns (smoothed line, raw line, suggestion marker); the marker's one point is
    (result.suggestion, the smoothed loss at that rate).

    Example:
        >>> found = fnn.lr_find(model, params, x, y, steps=30)
        >>> smoothed, raw, marker = fnn.plot.lr_find(found)
        >>> bool(marker.get_xdata()[0] == found.suggestion)
        True
    """
    if not all(hasattr(result, name) for name in _FIELDS):
        raise FnnTypeError(
            f"lr_find needs the result of fnn.lr_find (an LRFindResult), got {type(result).__name__}; "
            "call fnn.lr_find(model, params, x, y) first"
        )
    rates, smoothed, raw = (np.asarray(getattr(result, name), float) for name in _FIELDS[:3])
    if rates.ndim != 1 or rates.size < 2 or smoothed.shape != rates.shape or raw.shape != rates.shape:
        raise FnnValueError(
            "rates, losses and raw_losses must be 1-d, of one length (at least 2), got shapes "
            f"{rates.shape}, {smoothed.shape} and {raw.shape}"
        )
    if not (np.isfinite(rates).all() and (rates > 0).all()):
        raise FnnValueError("rates must be finite and positive: they are drawn on a log axis")
    suggestion = _validate.real(result.suggestion, "suggestion", low=0, low_open=True)
    at = int(np.argmin(np.abs(np.log(rates) - np.log(suggestion))))  # the suggestion is one of the rates
    ax = _canvas.axes(ax)
    (raw_line,) = ax.plot(rates, raw, color="0.6", lw=0.8, alpha=0.7, label="loss of each step (raw)")
    (line,) = ax.plot(rates, smoothed, color="C0", lw=1.8, label="smoothed loss")
    (marker,) = ax.plot(
        [suggestion], [smoothed[at]], "o", color="C3", ms=9, mec="white", label=f"suggestion {suggestion:.3g}"
    )
    ax.axvline(suggestion, color="C3", ls=":", lw=1)
    ax.annotate(
        f"suggested rate {suggestion:.3g}",
        (suggestion, smoothed[at]),
        xytext=(-20, 45),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        color="C3",
        arrowprops=dict(arrowstyle="->", color="C3", lw=0.8),
    )
    finite = smoothed[np.isfinite(smoothed)]
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        pad = 0.1 * (hi - lo) if hi > lo else 0.1 * max(abs(hi), 1.0)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (grows every step)")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return line, raw_line, marker


def chance_line(ax, chance):
    """A dashed horizontal line at the loss `chance`, labelled "chance level (…)", or None for None.

    The loss of a model that knows nothing: ln 2 ≈ 0.693 in binary cross-entropy on a balanced
    binary task (it predicts 0.5 everywhere), ln k for k balanced classes.
    """
    if chance is None:
        return None
    chance = _validate.real(chance, "chance")
    return ax.axhline(chance, color="0.35", ls="--", lw=1.2, label=f"chance level ({chance:.3g})")
