"""The matplotlib side of fnn's pictures: pyplot imported on first use, and the axes to draw into."""

from __future__ import annotations

from fnn.errors import FnnTypeError

__all__ = ["axes", "pyplot"]

MISSING = "fnn.plot needs matplotlib: pip install 'fnn[experiments]' (or pip install matplotlib)"


def pyplot():
    """matplotlib.pyplot, imported on first use so that `import fnn` never needs matplotlib."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(MISSING) from e
    return plt


def axes(ax):
    """`ax`, or the axes of a new figure when ax is None."""
    plt = pyplot()
    if ax is None:
        return plt.subplots()[1]
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise FnnTypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()) or None, got {type(ax).__name__}")
    return ax
