"""The playground's data: built-in 2-D data sets, deterministic in their seed, and CSV files.

Every built-in set is a pair of NumPy arrays, x (n, 2) float32 and y (n,): int32 class labels for
classification, float32 values for regression. `circles` is the seed's (fnn.data.circles: radius 1
and 0.5, Gaussian noise); the others follow TensorFlow Playground's definitions (src/dataset.ts),
with its coordinates divided by 5 so that every set has the circles' scale (TensorFlow Playground's
radius 5 becomes 1) and its noise (0..0.5, a fraction of that scale). `gaussians` and `spiral` take
2..10 classes (Playground's two, generalised: centres, arms, evenly around the origin).

A CSV file (`parse_csv`) has one row per example and its label in the last column. Two feature
columns are the plane as they are; with more, the plane is the first two principal components of
the standardised columns (`Data.basis`), and a point of the plane maps back to the features with
the other components at their mean (0), as `Data.features_of` does.
"""

from __future__ import annotations

import csv
import io
import math
from typing import NamedTuple, NoReturn

import numpy as np

from fnn.errors import FnnValueError

__all__ = ["BUILTIN", "MAX_CLASSES", "MAX_ROWS", "REGRESSION", "Data", "generate", "load", "parse_csv", "split"]

BUILTIN = ("circles", "xor", "gaussians", "spiral", "moons", "plane", "multi-gaussian")
REGRESSION = frozenset({"plane", "multi-gaussian"})
MULTICLASS = frozenset({"gaussians", "spiral"})  # the sets that take classes=2..10
MAX_CLASSES = 10
MAX_ROWS = 100_000
SCALE = 5.0  # TensorFlow Playground's radius: its coordinates / SCALE are the seed circles' scale


class Data(NamedTuple):
    """A split data set: x (n, d) float32 features and y (n,) labels (int32) or values (float32).

    plane_*: (n, 2) the points as drawn; basis: None where the features are the plane, else the
    (2, d) principal axes that made the plane from the (standardised) features.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    problem: str  # "classification" or "regression"
    classes: int  # 2..10; 0 for regression
    plane_train: np.ndarray
    plane_test: np.ndarray
    basis: np.ndarray | None = None

    def features_of(self, plane: np.ndarray) -> np.ndarray:
        """(m, 2) points of the plane -> (m, d) features: the components beyond two at their mean."""
        if self.basis is None:
            return np.asarray(plane, np.float32)
        return (np.asarray(plane, np.float64) @ self.basis).astype(np.float32)


def _circles(rng, n, noise):
    # fnn.data.circles' construction (make_circles: outer radius 1, label 0; inner 0.5, label 1)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = 0.5 * np.stack([np.cos(t_in), np.sin(t_in)], axis=1)
    x = np.concatenate([outer, inner]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n_out, np.int32), np.ones(n_in, np.int32)])
    return x, y


def _xor(rng, n, noise):
    x = rng.uniform(-5, 5, (n, 2))
    x += np.where(x > 0, 0.3, -0.3)  # Playground's padding off the axes
    shifted = x + rng.uniform(-5, 5, (n, 2)) * noise
    y = (shifted[:, 0] * shifted[:, 1] >= 0).astype(np.int32)
    return x / SCALE, y


def _gaussians(rng, n, noise, k):
    variance = 0.5 + noise * (4 - 0.5) / 0.5  # Playground's scale: noise 0..0.5 -> variance 0.5..4
    y = np.arange(n, dtype=np.int32) % k
    angle = np.pi * 5 / 4 + 2 * np.pi * y / k  # k = 2: class 0 at (-2, -2), class 1 at (2, 2), as Playground
    centres = 2 * math.sqrt(2) * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x = centres + math.sqrt(variance) * rng.standard_normal((n, 2))
    return x / SCALE, y


def _spiral(rng, n, noise, k):
    y = np.arange(n, dtype=np.int32) % k
    per_arm = n / k
    i = np.arange(n) // k  # the point's place along its arm
    r = i / per_arm * 5
    t = 1.75 * i / per_arm * 2 * np.pi + np.pi + 2 * np.pi * y / k  # k = 2: Playground's arms 0 and π
    x = np.stack([r * np.sin(t), r * np.cos(t)], axis=1) + rng.uniform(-1, 1, (n, 2)) * noise
    return x / SCALE, y


def _moons(rng, n, noise):
    # scikit-learn's make_moons, centred on the origin
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], axis=1)
    x = np.concatenate([outer, inner]) - np.array([0.5, 0.25]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n_out, np.int32), np.ones(n_in, np.int32)])
    return x, y


def _plane(rng, n, noise):
    x = rng.uniform(-6, 6, (n, 2))
    shifted = x + rng.uniform(-6, 6, (n, 2)) * noise
    return x / SCALE, ((shifted[:, 0] + shifted[:, 1]) / 10).astype(np.float32)


_BUMPS = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))


def _multi_gaussian(rng, n, noise):
    x = rng.uniform(-6, 6, (n, 2))
    shifted = x + rng.uniform(-6, 6, (n, 2)) * noise
    label = np.zeros(n)
    for cx, cy, sign in _BUMPS:  # the bump largest in absolute value, as Playground
        d = np.hypot(shifted[:, 0] - cx, shifted[:, 1] - cy)
        value = sign * np.clip(1 - d / 2, 0, 1)
        label = np.where(np.abs(value) > np.abs(label), value, label)
    return x / SCALE, label.astype(np.float32)


def generate(name: str, n_points: int = 1000, noise: float = 0.1, classes: int = 2, seed: int = 0):
    """A built-in data set: (x (n, 2) float32, y (n,) int32 labels or float32 values), in seed order.

    Example:
        >>> from fnn.playground import datasets
        >>> x, y = datasets.generate("spiral", 300, noise=0.1, classes=3, seed=1)
        >>> x.shape, sorted(set(y.tolist()))
        ((300, 2), [0, 1, 2])
    """
    if name not in BUILTIN:
        raise FnnValueError(f"unknown dataset {name!r}; choose one of {list(BUILTIN)} (or upload a CSV file)")
    rng = np.random.default_rng(seed)
    if name in MULTICLASS:
        x, y = {"gaussians": _gaussians, "spiral": _spiral}[name](rng, n_points, noise, classes)
    else:
        make = {
            "circles": _circles,
            "xor": _xor,
            "moons": _moons,
            "plane": _plane,
            "multi-gaussian": _multi_gaussian,
        }[name]
        x, y = make(rng, n_points, noise)
    return np.asarray(x, np.float32), np.asarray(y)


def split(x, y, train_fraction: float, seed: int = 0):
    """Shuffle with the seed, then (x_train, y_train, x_test, y_test), train_fraction of the rows first."""
    n = len(x)
    n_train = min(max(round(n * train_fraction), 1), n - 1)
    perm = np.random.default_rng([seed, 1]).permutation(n)  # a stream of its own: the data's draws are kept
    return x[perm[:n_train]], y[perm[:n_train]], x[perm[n_train:]], y[perm[n_train:]]


def load(
    name: str, n_points: int = 1000, noise: float = 0.1, classes: int = 2, seed: int = 0, train_fraction: float = 0.5
) -> Data:
    """A built-in data set, generated and split: the same arguments give the same Data.

    Example:
        >>> from fnn.playground import datasets
        >>> d = datasets.load("circles", 200, seed=3)
        >>> d.x_train.shape, d.x_test.shape, d.problem, d.classes
        ((100, 2), (100, 2), 'classification', 2)
    """
    x, y = generate(name, n_points, noise, classes, seed)
    xt, yt, xv, yv = split(x, y, train_fraction, seed)
    problem = "regression" if name in REGRESSION else "classification"
    k = 0 if problem == "regression" else (classes if name in MULTICLASS else 2)
    return Data(xt, yt, xv, yv, problem, k, xt, xv)


def _reject(message: str) -> NoReturn:
    raise FnnValueError(message)


def parse_csv(text: str, train_fraction: float = 0.5, seed: int = 0) -> Data:
    """CSV text (one example a row, the label last; an optional header row) -> split Data.

    Labels written as integers ("3", not "3.0") make a classification problem of 2..10 classes
    (renumbered 0..k-1 in sorted order); labels with a decimal point, regression. The features are standardised
    (mean 0, std 1 per column), and with more than two the plane is their first two principal
    components.

    Example:
        >>> from fnn.playground import datasets
        >>> d = datasets.parse_csv("a,b,label\\n0,0,0\\n1,0,1\\n0,1,1\\n1,1,0\\n")
        >>> d.problem, d.classes, d.x_train.shape
        ('classification', 2, (2, 2))
    """
    if not isinstance(text, str) or not text.strip():
        _reject("the CSV file is empty; give one example per row, its label in the last column")
    if text.count("\n") > MAX_ROWS + 2:  # refused before parsing a million rows
        _reject(
            f"the CSV file has over {MAX_ROWS:,} rows; the playground takes at most {MAX_ROWS:,}: sample fewer rows"
        )
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and not _numeric(rows[0][0]) and not all(_numeric(c) for c in rows[0]):
        rows = rows[1:]  # a header
    if not rows:
        _reject("the CSV file has a header but no rows; give one example per row, its label in the last column")
    if len(rows) > MAX_ROWS:
        _reject(f"the CSV file has {len(rows):,} rows; the playground takes at most {MAX_ROWS:,}: sample fewer rows")
    width = len(rows[0])
    if width < 2:
        _reject(
            "the CSV file has 1 column; it needs at least 2: one or more feature columns, then the label column last"
        )
    values = np.empty((len(rows), width), np.float64)
    for i, row in enumerate(rows):
        if len(row) != width:
            _reject(
                f"row {i + 1} of the CSV data has {len(row)} columns, the first row {width}; give every row the same"
            )
        for j, cell in enumerate(row):
            try:
                v = float(cell)
            except ValueError:
                _reject(
                    f"row {i + 1}, column {j + 1} of the CSV data is {cell.strip()!r}, not a number; "
                    "every cell must be numeric (a header row is allowed)"
                )
            if not math.isfinite(v):
                _reject(f"row {i + 1}, column {j + 1} of the CSV data is {cell.strip()!r}; every value must be finite")
            values[i, j] = v
    if len(rows) < 2:
        _reject(f"the CSV file has {len(rows)} row; it needs at least 2 (some to train on, some to test)")
    features, labels = values[:, :-1], values[:, -1]
    distinct = np.unique(labels)
    integer = _integer_text(rows) and bool(np.all(labels == np.round(labels)))
    if integer and len(distinct) > MAX_CLASSES:
        _reject(
            f"the label column (the last) has {len(distinct)} classes; the playground takes 2 to {MAX_CLASSES}. "
            "For a number to predict (regression), write the labels with a decimal point, e.g. 3.0"
        )
    if integer and len(distinct) < 2:
        _reject(f"the label column (the last) has only 1 class ({distinct[0]:g}); give at least 2 classes")
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    x = ((features - mean) / np.where(scale > 0, scale, 1.0)).astype(np.float32)
    y = np.searchsorted(distinct, labels).astype(np.int32) if integer else labels.astype(np.float32)
    if x.shape[1] == 2:
        plane, basis = x, None
    elif x.shape[1] == 1:  # one feature: the plane's second axis carries nothing
        plane, basis = np.concatenate([x, np.zeros_like(x)], axis=1), np.array([[1.0], [0.0]])
    else:
        _, _, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)  # x is centred: PCA
        basis = vt[:2]
        plane = (x @ basis.T).astype(np.float32)
    rows_index = np.arange(len(x))
    tr, _, te, _ = split(rows_index, rows_index, train_fraction, seed)
    k = len(distinct) if integer else 0
    return Data(
        x[tr], y[tr], x[te], y[te], "classification" if integer else "regression", k, plane[tr], plane[te], basis
    )


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _integer_text(rows) -> bool:
    """Are the labels written as integers ("3", not "3.0")? A decimal point asks for regression."""
    return all("." not in r[-1] and "e" not in r[-1].lower() for r in rows)
