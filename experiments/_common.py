"""Helpers shared by the experiment scripts: arguments, output folder, summary, plots, circles set-up.

Every script is `main(argv=None) -> dict`: it parses `--out DIR --seed N --quick`, writes PNG
plots, a `summary.txt` and a `summary.json` into DIR, prints the summary, and returns its key
numbers. summary.json holds the figures the summary reports, as numbers (rounded only in the
text): every table's rows and whatever the script records; run twice on the same machine, its
"figures" are bitwise the same, while its "timings" (wall-clock seconds) are not.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from typing import NamedTuple, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import jax  # noqa: E402

import fnn  # noqa: E402

__all__ = ["plt", "parser", "output_dir", "Summary", "plain", "plot_history", "savefig", "first_epoch_below",
           "circles_data", "circles_model", "circles_init", "circles_fit", "circles_optimizer", "CirclesConfig",
           "CIRCLES_QUICK", "CIRCLES_LAYERS", "LayerReport", "layer_report", "layer_names", "bar_groups"]


# --------------------------------------------------------------------------- arguments and outputs
def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The arguments every experiment takes: --out (default results/<name>), --seed, --quick."""
    p = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=description)
    p.add_argument("--out", default=os.path.join("results", name), help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a much smaller run, for the tests")
    return p


def output_dir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


def plain(value):
    """value as JSON: numpy scalars and arrays as Python numbers and lists, NaN and ±inf as None.

    Anything else that is not a string becomes its str().

    >>> plain({"a": np.float32(0.5), "b": (np.int64(2), float("nan"))})
    {'a': 0.5, 'b': [2, None]}
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.ndarray, jax.Array)):
        return plain(np.asarray(value).tolist())
    return value if value is None or isinstance(value, str) else str(value)  # e.g. a dtype: its name


class Summary:
    """Lines of text collected while the experiment runs, written to <out>/summary.txt and printed.

    The figures behind the text go to <out>/summary.json: `record(name, value)` for a figure,
    `record_time(name, seconds)` for a wall-clock time, and every `table` its rows.
    """

    def __init__(self, title: str):
        self.lines = [title, "=" * len(title)]
        self.title = title
        self.figures: dict = {}  # reproducible: the same run on the same machine gives the same bits
        self.timings: dict = {}  # wall-clock seconds: they differ from run to run
        self.start = time.perf_counter()  # create it first thing in main: the runtime counts from here

    def add(self, line: str = "") -> None:
        self.lines.append(line)

    def record(self, name: str, value):
        """Keep a figure for summary.json under `name` (a number, string, or list/dict of them); returns value."""
        self.figures[name] = plain(value)
        return value

    def record_time(self, name: str, seconds):
        """Keep a wall-clock time (or a list/dict of them) for summary.json's timings; returns it."""
        self.timings[name] = plain(seconds)
        return seconds

    def table(self, header: Sequence[str], rows: Sequence[Sequence], fmt: Sequence[str], name: str | None = None,
              timing: Sequence[str] = ()) -> None:
        """A fixed-width table: one format spec per column, e.g. ('{:>6d}', '{:.3f}').

        Its rows also go to summary.json as a list of {header: value} under `name` (default
        table1, table2, ... in order); the columns named in `timing` go to the timings instead.
        """
        cells = [list(header)] + [[f.format(v) for f, v in zip(fmt, row)] for row in rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
        for c in cells:
            self.add("  ".join(s.rjust(w) for s, w in zip(c, widths)))
        name = name or f"table{sum(k.startswith('table') for k in self.figures) + 1}"
        self.record(name, [{h: v for h, v in zip(header, row) if h not in timing} for row in rows])
        if timing:
            self.record_time(name, [{h: v for h, v in zip(header, row) if h in timing} for row in rows])

    def write(self, out: str) -> str:
        seconds = time.perf_counter() - self.start
        self.add()
        self.add(f"runtime: {seconds:.1f} s")
        self.record_time("runtime", seconds)
        text = "\n".join(self.lines) + "\n"
        with open(os.path.join(out, "summary.txt"), "w") as f:
            f.write(text)
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump(self.json(), f, indent=1, allow_nan=False)
            f.write("\n")
        print(text, end="")
        return text

    def json(self) -> dict:
        """What summary.json holds: the title, the command, the versions, the figures and the timings."""
        import jaxlib

        script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0].endswith(".py") else None
        return {"title": self.title, "script": script, "argv": sys.argv[1:] if script else None,
                "environment": {"python": platform.python_version(), "jax": jax.__version__,
                                "jaxlib": jaxlib.__version__, "numpy": np.__version__,
                                "machine": platform.machine(), "cpus": os.cpu_count()},
                "figures": self.figures, "timings": self.timings}


def savefig(fig, out: str, name: str) -> str:
    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- training curves
def plot_history(history: dict, out: str, name: str, title: str, val_label: str = "validation",
                 log_loss: bool = False) -> str:
    """fnn.plot.history (loss and the metric per epoch, train and validation) saved as <out>/<name>."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    loss_ax, metric_ax = fnn.plot.history(history, ax, val_label=val_label)
    if log_loss:
        loss_ax.set_yscale("log")
    if metric_ax is not None and metric_ax.get_ylabel() == "mse":
        metric_ax.set_yscale("log")
    ax.set_title(title)
    return savefig(fig, out, name)


def first_epoch_below(losses: Sequence[float], threshold: float) -> int | None:
    """The first 1-based epoch whose loss is <= threshold, or None if none is."""
    hits = np.flatnonzero(np.asarray(losses) <= threshold)
    return int(hits[0]) + 1 if hits.size else None


# --------------------------------------------------------------------------- the circles problem
CIRCLES_LAYERS = (4, 6, 6, 4)  # the seed network 2-4-6-6-4-1


def circles_data(n_train: int, n_test: int, noise: float, seed: int, factor: float = 0.5):
    """Two concentric circles (sklearn's make_circles, else fnn.data.circles): float32 x, int32 y."""
    n = n_train + n_test
    try:
        from sklearn.datasets import make_circles
    except ImportError:
        x, y = fnn.data.circles(jax.random.key(seed), n, noise=noise, factor=factor)
        x, y = np.asarray(x), np.asarray(y)
    else:
        x, y = make_circles(n, noise=noise, factor=factor, random_state=seed)  # already shuffled
    x, y = x.astype(np.float32), y.astype(np.int32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def circles_model(hidden: Sequence[int] = CIRCLES_LAYERS) -> fnn.Sequential:
    """ReLU hidden layers, one sigmoid output (Glorot-uniform weights, fnn's default)."""
    return fnn.Sequential([fnn.Dense(u, activation="relu") for u in hidden] + [fnn.Dense(1, activation="sigmoid")])


def circles_init(model: fnn.Sequential, seed: int, hidden_bias: float = 0.0, input_dim: int = 2):
    """model.init with every hidden layer's biases starting at `hidden_bias` (Dense's bias_init).

    A small positive bias puts each ReLU on its active side for more of the inputs at the start,
    so fewer of the 4-unit layers begin (or soon end up) dead.
    """
    last = len(model.layers) - 1
    start = fnn.Sequential([layer if i == last else dataclasses.replace(layer, bias_init=hidden_bias)
                            for i, layer in enumerate(model.layers)])
    return start.init(jax.random.key(seed), input_dim)


class CirclesConfig(NamedTuple):
    """The circles defaults, chosen so that the 4-unit ReLU layers train reliably over seeds."""

    n_train: int = 1000
    n_test: int = 500
    noise: float = 0.05
    learning_rate: float = 0.02
    momentum: float = 0.9
    epochs: int = 150
    batch_size: int = 32
    hidden_bias: float = 0.1


CIRCLES_QUICK = CirclesConfig(n_train=500, n_test=250, epochs=60)


def circles_optimizer(cfg: CirclesConfig) -> fnn.optim.Optimizer:
    return fnn.optim.momentum(cfg.learning_rate, cfg.momentum)


def circles_fit(model, params, data, cfg: CirclesConfig, shuffle_seed: int, optimizer=None,
                **fit_kwargs) -> fnn.FitResult:
    """fnn.fit on the circles training set, the test set as validation data (for the curves only).

    fit_kwargs go to fnn.fit as they are (e.g. callbacks=[fnn.callbacks.Snapshots(every=k)])."""
    x_train, y_train, x_test, y_test = data
    return fnn.fit(model, params, x_train, y_train, loss="binary_cross_entropy",
                   optimizer=circles_optimizer(cfg) if optimizer is None else optimizer,
                   epochs=cfg.epochs, batch_size=cfg.batch_size, key=jax.random.key(shuffle_seed),
                   validation_data=(x_test, y_test), **fit_kwargs)


# --------------------------------------------------------------------------- per-layer diagnostics
LayerReport = fnn.plot.LayerStats  # per layer: units, dead, mean_abs_delta, grad_norm; and the loss


def layer_report(model: fnn.Sequential, params, x, y, loss: str = "binary_cross_entropy") -> LayerReport:
    """fnn.plot.layer_stats: backprop's δ, gradient norms and dead units, a few numbers per layer."""
    return fnn.plot.layer_stats(model, params, x, y, loss)


def layer_names(model: fnn.Sequential) -> list[str]:
    return [f"{i + 1}: {layer.units} {layer.activation}" for i, layer in enumerate(model.layers)]


def bar_groups(ax, groups: dict, labels: Sequence[str], ylabel: str, log: bool = True, floor: float = 1e-12):
    """fnn.plot.grouped_bars: one group per layer, one bar per entry of `groups` (name -> values)."""
    return fnn.plot.grouped_bars(groups, labels, ax, ylabel=ylabel, log=log, floor=floor)
