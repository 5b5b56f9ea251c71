"""The decision boundary at each snapshot of a run, as an animated GIF: fnn.plot.animate.

Each frame shows the boundary of one snapshot (fnn.callbacks.Snapshots) with a colourbar, titled
with its epoch and its loss on (x, y); the loss curve of all snapshots can stand beside it. Every
snapshot's outputs on the grid and its loss come from one compiled, vmapped call.

Frames by change (`frames="changes"`): a learner's run changes its boundary in the first few
epochs and then sits still, so one frame per snapshot gives a movie of identical frames. With
"changes" a snapshot becomes a frame only when its predicted class differs from the last frame's
on more than CHANGE (1%) of the grid; the first and the last snapshot are always frames. This
picks frames from what the boundary did, so `Snapshots(every=1)` over the whole run and
"changes" give the movie of where it moved, with no guess of which epochs to record.

matplotlib is imported on first use (fnn._canvas), as everywhere in fnn.plot.
"""

from __future__ import annotations

import os
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _boundary, _canvas, _compile, _validate, losses, models
from fnn import layers as _layers
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["CHANGE", "FRAMES", "Movie", "animate", "changed_frames", "film", "movie", "snapshot_outputs"]

CHANGE = 0.01  # frames="changes": a snapshot is a frame when > 1% of the grid changed class since the last frame
FRAMES = ("all", "changes")


@_compile.jit(static_argnums=(0, 1))
def snapshot_outputs(model: models.Sequential, loss: losses.Loss, snapshots, grid, x, t):
    """Every snapshot's outputs on the grid (S, m, n_out) and its loss on (x, t) (S,), one compiled call.

    snapshots: params leaves with a leading axis of S; grid (m, 2); x (n, 2); t the targets as
    `loss` takes them, (n, n_out). The loss is the one fit minimises (fused on logits where it is).
    """

    def one(params):
        out = _layers.mlp_apply(model.activations, params, grid)
        return out, losses.value(loss, models.network_output(model, loss, params, x), t)

    return jax.vmap(one)(snapshots)


def changed_frames(classes, fraction: float = CHANGE) -> np.ndarray:
    """Indices of the snapshots to draw, from each one's predicted class on the grid, (S, m).

    The first is kept; snapshot i then is kept when its classes differ from the last kept one's on
    more than `fraction` of the m grid points; the last is always kept (the end of the run).

    Example:
        >>> classes = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]])
        >>> fnn._movie.changed_frames(classes, fraction=0.2)
        array([0, 1, 3, 4])
    """
    classes = np.asarray(classes)
    if classes.ndim != 2 or classes.shape[0] == 0:
        raise FnnValueError(f"classes must be (snapshots, grid points) with at least one snapshot, got {classes.shape}")
    fraction = _validate.real(fraction, "fraction", low=0, high=1, high_open=True)
    kept = [0]
    for i in range(1, classes.shape[0] - 1):
        if np.mean(classes[i] != classes[kept[-1]]) > fraction:
            kept.append(i)
    if classes.shape[0] > 1:
        kept.append(classes.shape[0] - 1)
    return np.asarray(kept)


class Movie(NamedTuple):
    """What animate draws: every snapshot's figures, and which of them are frames."""

    setup: _boundary.Boundary  # the grid and the labels
    epochs: np.ndarray  # (S,) int: each snapshot's epoch
    losses: np.ndarray  # (S,): each snapshot's loss on (x, y)
    outputs: np.ndarray  # (S, resolution², n_out): each snapshot's outputs on the grid
    frames: np.ndarray  # (F,) int: the snapshots drawn, in order
    loss_name: str  # the loss the losses are, e.g. "binary_cross_entropy"


def movie(model: models.Sequential, result, x, y, resolution: int = 100, frames: str = "all") -> Movie:
    """Check result (its snapshots), (x, y) and the options; compute every snapshot's outputs and
    loss in one call; pick the frames (see the module docstring)."""
    snapshots = getattr(result, "snapshots", None)
    if snapshots is None:
        raise FnnValueError(
            "result has no snapshots of the parameters; train with "
            "fnn.fit(..., callbacks=[fnn.callbacks.Snapshots(every=k)]) to record them every k epochs"
        )
    epochs = getattr(result, "snapshot_epochs", None)
    epochs = [] if epochs is None else [int(e) for e in np.asarray(epochs).reshape(-1)]
    leaves = jax.tree.leaves(snapshots)
    if not epochs or not leaves or any(np.ndim(leaf) == 0 or leaf.shape[0] != len(epochs) for leaf in leaves):
        shapes = sorted({tuple(np.shape(leaf)) for leaf in leaves})
        raise FnnValueError(
            f"result.snapshots must lead with one entry per snapshot epoch: "
            f"{len(epochs)} snapshot_epochs, leaf shapes {shapes}"
        )
    if not isinstance(frames, str) or frames not in FRAMES:
        raise FnnValueError(
            f"frames must be 'all' (one frame per snapshot) or 'changes' (a frame where the boundary "
            f"changed), got {frames!r}"
        )
    first = jax.tree.map(lambda leaf: leaf[0], snapshots)
    setup = _boundary.setup(model, first, x, y, resolution, "animate")
    loss = models.resolve_loss(model, None)
    xs, t = models.prepare(model, loss, first, x, y)
    outputs, values = snapshot_outputs(model, loss, snapshots, jnp.asarray(setup.grid), xs, t)
    outputs = np.asarray(outputs)
    if frames == "all":
        kept = np.arange(len(epochs))
    else:
        classes = outputs[..., 0] > 0.5 if outputs.shape[-1] == 1 else np.argmax(outputs, axis=-1)
        kept = changed_frames(classes)
    return Movie(setup, np.asarray(epochs), np.asarray(values, float), outputs, kept, loss.name)


def film(m: Movie, x, loss_curve: bool = False, size: float = 4.8) -> tuple:
    """A figure for the frames of m, and draw(i) drawing snapshot i into it: -> (figure, draw).

    Left: the boundary with a colourbar (P(y = 1), or the predicted class), titled with the epoch
    and the loss; with loss_curve, right: every snapshot's loss against its epoch (log axis), the
    drawn snapshot marked. The figure is not pyplot's: nothing is left open once it is dropped.
    """
    loss_curve = _boolean(loss_curve, "loss_curve")
    _canvas.pyplot()
    from matplotlib.figure import Figure

    x = np.asarray(x, float)
    n_panels = 2 if loss_curve else 1
    fig = Figure(figsize=(size * (1.2 if n_panels == 1 else 2.2), size), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False, width_ratios=[1.2, 1][:n_panels])[0]
    ax = axes[0]
    name = m.loss_name.replace("_", " ")
    marker = None
    if loss_curve:
        curve_ax = axes[1]
        curve_ax.plot(m.epochs, m.losses, color="C0", lw=1.5, label="each snapshot's loss")
        (marker,) = curve_ax.plot(m.epochs[:1], m.losses[:1], "o", color="C3", ms=8, label="this frame")
        _log_axis(curve_ax, m.losses)
        curve_ax.set_xlabel("epoch")
        curve_ax.set_ylabel(f"{name} on (x, y)")
        curve_ax.set_title("loss at each snapshot")
        curve_ax.grid(alpha=0.3, which="both")
        curve_ax.legend(fontsize=8, loc="upper right")
    colorbar = []

    def draw(i: int):
        for artist in list(ax.collections):  # the last frame's fill, contour and points; the axes stay
            artist.remove()
        filled, _ = _boundary.draw(ax, m.setup, x, m.outputs[i])
        ax.set_title(f"epoch {m.epochs[i]}: loss {m.losses[i]:.4g}")
        if not colorbar:  # once: every frame has the same levels and colours
            k = m.setup.n_classes
            if m.outputs.shape[-1] == 1:
                colorbar.append(fig.colorbar(filled, ax=ax, label="P(y = 1)", ticks=np.linspace(0, 1, 6)))
            else:
                colorbar.append(fig.colorbar(filled, ax=ax, label="predicted class", ticks=np.arange(k)))
            fig.draw_without_rendering()  # lay out once and keep it: a layout per frame costs more than the frame
            fig.set_layout_engine("none")
        if marker is not None:
            marker.set_data(m.epochs[i : i + 1], m.losses[i : i + 1])
        return ax

    return fig, draw


def _log_axis(ax, values: np.ndarray) -> None:
    """A log y axis for values with plain-text labels (0.05: matplotlib's 10⁻² is mathtext, slow to
    draw again every frame), and five labelled ticks where the values stay within a decade."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_yscale("log")
    shown = values[np.isfinite(values) & (values > 0)]
    lo, hi = (float(shown.min()), float(shown.max())) if shown.size else (1.0, 1.0)
    if hi < 10 * lo:  # a log locator finds one tick or none within a decade
        ax.yaxis.set_major_locator(FixedLocator(list(np.geomspace(lo, hi, 5)) if hi > lo else [lo]))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        return
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    few = hi < 1e3 * lo  # label 2 and 5 times a power of ten too, unless that is crowded

    def minor(v, _):
        mantissa = round(v / 10 ** np.floor(np.log10(v)), 6) if v > 0 else 0.0
        return f"{v:g}" if few and mantissa in (2.0, 5.0) else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _boolean(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise FnnTypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _gif_path(path) -> pathlib.Path:
    if not isinstance(path, (str, os.PathLike)):
        raise FnnTypeError(f"path must be a file name (str or pathlib.Path), got {type(path).__name__}")
    path = pathlib.Path(path)
    if path.suffix.lower() != ".gif":
        raise FnnValueError(f"path must end in .gif (animate writes a GIF), got {str(path)!r}")
    if not path.parent.is_dir():
        raise FnnValueError(f"the folder {str(path.parent)!r} of path does not exist; create it first")
    return path


def animate(
    model: models.Sequential,
    result,
    x,
    y,
    path,
    fps: float = 10,
    resolution: int = 100,
    *,
    frames: str = "all",
    loss_curve: bool = False,
) -> pathlib.Path:
    """The decision boundary at each recorded epoch, as an animated GIF.

    result: from fnn.fit(..., callbacks=[fnn.callbacks.Snapshots(every=k)]); result.snapshots is the
    params tree with a leading axis of S snapshots, result.snapshot_epochs the S epochs they belong
    to (the first is epoch 0, the params the run started from). path: a .gif file. Each frame is
    titled with its epoch and the snapshot's loss on (x, y) (the model's loss: binary or
    categorical cross-entropy), with a colourbar of P(y = 1) (one sigmoid unit) or of the class.
    frames: "all", one frame per snapshot, or "changes", a frame only where the predicted class
    changed on more than 1% of the grid since the last frame (the first and last always; use it
    with Snapshots(every=1) over the whole run). loss_curve: the loss of every snapshot against
    its epoch (log axis) beside the boundary, the frame's snapshot marked. Returns the path written.

    Example:
        >>> result = fnn.fit(model, params, x, y, epochs=60, callbacks=[fnn.callbacks.Snapshots(every=1)])
        >>> fnn.plot.animate(model, result, x, y, "boundary.gif", resolution=50, frames="changes", loss_curve=True)
        PosixPath('boundary.gif')
    """
    fps = _validate.real(fps, "fps", low=0, low_open=True)
    path = _gif_path(path)
    _boolean(loss_curve, "loss_curve")
    m = movie(model, result, x, y, resolution, frames)
    fig, draw = film(m, x, loss_curve)
    from matplotlib.animation import PillowWriter

    # matplotlib's stubs say int, but a writer uses any rate (PillowWriter: frames of 1000 / fps ms)
    writer = PillowWriter(fps=fps)  # pyright: ignore[reportArgumentType]
    with writer.saving(fig, str(path), dpi=80):
        for i in m.frames:
            draw(int(i))
            writer.grab_frame()
    return path
