"""Small data sets, splitting and scaling, all driven by an explicit key.

`circles` follows scikit-learn's make_circles: an outer circle of radius 1 (label 0) and an
inner one of radius `factor` (label 1), with Gaussian noise; it needs no extra package.

Wherever a key is taken, an integer seed in [0, 2**32 - 1] also works and means
jax.random.key(seed). The numbers are drawn with NumPy, from a generator seeded by the key's
data, so no call compiles anything (eager JAX ops would each compile on first use: seconds in a
fresh process). The same key gives the same data, for a given NumPy version.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from fnn import _validate
from fnn.errors import FnnValueError

__all__ = ["Scaler", "circles", "digits", "scaler", "spiral", "standardize", "train_test_split"]

Array = jax.Array


def _generator(key, name: str = "key") -> np.random.Generator:
    """A NumPy generator seeded from a JAX key (or an integer seed, as jax.random.key(seed))."""
    key = _validate.key(key, name)
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())  # key_data: no compile


def circles(key: Array, n_samples: int = 1000, noise: float = 0.1, factor: float = 0.5):
    """Two concentric circles: x (n, 2) float32, y (n,) int32 in {0, 1}, shuffled.

    Example:
        >>> x, y = fnn.data.circles(jax.random.key(0), 200, noise=0.05)
    """
    rng = _generator(key)
    n = _validate.integer(n_samples, "n_samples", minimum=2)
    noise = _validate.real(noise, "noise", low=0)
    factor = _validate.real(factor, "factor", low=0, high=1, high_open=True)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = factor * np.stack([np.cos(t_in), np.sin(t_in)], axis=1)
    x = np.concatenate([outer, inner]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n_out, np.int32), np.ones(n_in, np.int32)])
    perm = rng.permutation(n)
    return _validate.device(x[perm].astype(np.float32)), _validate.device(y[perm])


def spiral(key: Array, n_samples: int = 600, n_classes: int = 3, noise: float = 0.2):
    """Interleaved spirals, one arm per class: x (n, 2) float32, y (n,) int32 in 0..n_classes-1."""
    rng = _generator(key)
    k = _validate.integer(n_classes, "n_classes", minimum=2)
    n = _validate.integer(n_samples, "n_samples", minimum=k)
    noise = _validate.real(noise, "noise", low=0)
    y = np.arange(n, dtype=np.int32) % k
    r = np.linspace(0.0, 1.0, n)[rng.permutation(n)]
    theta = 4.0 * r + 2 * np.pi * y / k + noise * rng.standard_normal(n)
    x = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)
    return _validate.device(x.astype(np.float32)), _validate.device(y)


def _take(a, index: np.ndarray):
    """a[index], gathered on the host: a jax array comes back as one (no gather to compile)."""
    if isinstance(a, jax.Array):
        return _validate.device(np.asarray(a)[index])
    return a[index]


def train_test_split(key: Array, x, y, test_fraction: float = 0.25):
    """Shuffle with `key`, then split: (x_train, y_train, x_test, y_test); numpy or jax as given."""
    rng = _generator(key)
    x = _validate.array(x, "x")
    y = _validate.array(y, "y")
    _validate.same_length(x, y)
    test_fraction = _validate.real(test_fraction, "test_fraction", low=0, high=1, low_open=True, high_open=True)
    n = x.shape[0]
    n_test = round(n * test_fraction)
    if n_test == 0 or n_test == n:
        raise FnnValueError(f"test_fraction={test_fraction} leaves an empty split of {n} samples")
    perm = rng.permutation(n)
    test, train = perm[:n_test], perm[n_test:]
    return _take(x, train), _take(y, train), _take(x, test), _take(y, test)


def standardize(x_train, *others):
    """Scale columns to mean 0, std 1 using x_train's statistics; returns the arrays in order.

    Every array must be (n, d), finite, with x_train's d columns.
    """
    x_train, _ = _validate.features(x_train, "x_train")
    for i, a in enumerate(others):
        a, _ = _validate.features(a, f"others[{i}]")
        if a.shape[1] != x_train.shape[1]:
            raise FnnValueError(
                f"others[{i}] has {a.shape[1]} features (shape {tuple(a.shape)}) but x_train has {x_train.shape[1]}"
            )
    mean = np.asarray(x_train).mean(axis=0)
    std = np.asarray(x_train).std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple((np.asarray(a) - mean) / std for a in (x_train,) + others)


def _columns(a, name: str, n_columns: int | None = None) -> np.ndarray:
    """`a` as a finite NumPy (n,) or (n, d) array with at least one row (and n_columns columns)."""
    a = np.asarray(_validate.array(a, name))
    if a.ndim not in (1, 2):
        hint = "pass one value per sample" if a.ndim == 0 else f"reshape it, e.g. {name}.reshape(len({name}), -1)"
        raise FnnValueError(f"{name} must be (n,) or (n, d), got shape {a.shape}; {hint}")
    if a.shape[0] == 0 or a.size == 0:
        raise FnnValueError(f"{name} is empty (shape {a.shape}); pass at least one row")
    d = 1 if a.ndim == 1 else a.shape[1]
    if n_columns is not None and d != n_columns:
        raise FnnValueError(
            f"{name} has {d} column(s) (shape {a.shape}) but the scaler was made from "
            f"{n_columns}; use the scaler of the same targets, or make one with "
            "fnn.data.scaler(values)"
        )
    _validate.check_finite(a, name)
    return a


class Scaler(NamedTuple):
    """Column statistics for scaling targets: transform(a) = (a - mean) / scale, inverse undoes it.

    `mean` and `scale` are shaped like one row of the values they came from: () for (n,), (d,) for
    (n, d). NumPy in, NumPy out; a float array keeps its dtype, anything else becomes float64.
    """

    mean: np.ndarray
    scale: np.ndarray

    def _n_columns(self) -> int:
        return int(np.size(self.mean))

    def transform(self, a) -> np.ndarray:
        """(a - mean) / scale, for a (n,) or (n, d) array with the scaler's d columns.

        Example:
            >>> s = fnn.data.scaler(np.array([1.0, 2.0, 3.0]))
            >>> s.transform(np.array([2.0, 4.0]))
            array([0.        , 2.44948974])
        """
        a = _columns(a, "a", self._n_columns())
        return _as_float_like(a, (a - self.mean) / self.scale)

    def inverse(self, a) -> np.ndarray:
        """a * scale + mean: back to the original units (e.g. a model's scaled predictions)."""
        a = _columns(a, "a", self._n_columns())
        return _as_float_like(a, a * self.scale + self.mean)


def _as_float_like(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    return out.astype(a.dtype if a.dtype.kind == "f" else np.float64, copy=False)


def scaler(a) -> Scaler:
    """Column means and standard deviations of a finite (n,) or (n, d) array (a std of 0 becomes 1).

    Example:
        >>> y_train = np.array([10.0, 20.0, 30.0], np.float32)   # regression targets
        >>> s = fnn.data.scaler(y_train)
        >>> s.transform(y_train)                # mean 0, std 1: train on these
        array([-1.2247449,  0.       ,  1.2247449], dtype=float32)
        >>> s.inverse(np.array([[0.5], [1.0]], np.float32))   # a model's (n, 1) outputs, in y's units
        array([[24.082483],
               [28.164967]], dtype=float32)
    """
    a = _columns(a, "a").astype(np.float64)
    mean = a.mean(axis=0)
    std = a.std(axis=0)
    return Scaler(mean=np.asarray(mean), scale=np.asarray(np.where(std > 0, std, 1.0)))


def digits():
    """scikit-learn's bundled 8×8 digits: x (1797, 64) float32 in [0, 1], y (1797,) int32 (needs scikit-learn)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("fnn.data.digits needs scikit-learn: pip install 'fnn[experiments]'") from None
    x, y = load_digits(return_X_y=True)
    return (np.asarray(x) / 16.0).astype(np.float32), np.asarray(y).astype(np.int32)
