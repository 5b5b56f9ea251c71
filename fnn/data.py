"""Small data sets, splitting and scaling, all driven by an explicit key.

`circles` follows scikit-learn's make_circles: an outer circle of radius 1 (label 0) and an
inner one of radius `factor` (label 1), with Gaussian noise; it needs no extra package.

Wherever a key is taken, an integer seed in [0, 2**32 - 1] also works and means
jax.random.key(seed). The numbers are drawn with NumPy, from a generator seeded by the key's
data, so no call compiles anything (eager JAX ops would each compile on first use: seconds in a
fresh process). The same key gives the same data, for a given NumPy version.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate
from fnn.errors import FnnTypeError, FnnValueError

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


def _is_key(a) -> bool:
    """Is `a` what fnn's key-first train_test_split starts with: an integer seed or a typed JAX key?"""
    if isinstance(a, (bool, np.bool_)):
        return False
    if isinstance(a, (int, np.integer)):
        return True
    dtype = getattr(a, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def train_test_split(
    *arrays: Any,
    test_size: float | None = None,
    train_size: float | None = None,
    random_state: Any = None,
    shuffle: bool = True,
    stratify: Any = None,
    test_fraction: float | None = None,
):
    """Split arrays into train and test rows, as scikit-learn's train_test_split does.

    `train_test_split(a, b, ..., test_size=0.25)` returns [a_train, a_test, b_train, b_test, ...].
    test_size and train_size: a fraction in (0, 1) (the test count rounded up, the train count
    down, as scikit-learn does) or a count of rows; when both are None the test set is a quarter,
    when one is None it is the rest. random_state: an int seed (meaning jax.random.key(seed)), a
    JAX key, or None for fresh randomness. shuffle=False takes the first rows for training, the
    next for testing. stratify: labels (n,) (or rows (n, k)) whose class proportions both sets
    keep, each class's count as scikit-learn allots it (ties broken at random). Rows of every array
    stay together; numpy or jax arrays come back as given, lists as numpy.

    fnn's key-first form `train_test_split(key, x, y, test_fraction=0.25)` still works and returns
    (x_train, y_train, x_test, y_test), the test count round(n * test_fraction).

    Example:
        >>> x, y = np.arange(20.0).reshape(10, 2), np.array([0, 1] * 5)
        >>> x_train, x_test, y_train, y_test = fnn.data.train_test_split(x, y, test_size=0.2, random_state=0,
        ...                                                              stratify=y)
        >>> x_train.shape, x_test.shape, sorted(y_test.tolist())   # one of each class in the test rows
        ((8, 2), (2, 2), [0, 1])
    """
    if arrays and _is_key(arrays[0]):
        sklearn_style = dict(test_size=test_size, train_size=train_size, random_state=random_state, stratify=stratify)
        given = [name for name, v in sklearn_style.items() if v is not None] + ([] if shuffle is True else ["shuffle"])
        if given:
            raise FnnTypeError(
                f"train_test_split(key, x, y, test_fraction=...) takes no {', '.join(given)}; "
                "for scikit-learn's arguments pass the arrays first: "
                "train_test_split(x, y, test_size=0.25, random_state=0)"
            )
        if len(arrays) == 4 and test_fraction is None and np.ndim(arrays[3]) == 0:  # (key, x, y, 0.25)
            arrays, test_fraction = arrays[:3], arrays[3]
        if len(arrays) != 3:
            raise FnnTypeError(
                f"train_test_split(key, x, y, test_fraction=0.25) takes a key and two arrays, got {len(arrays) - 1} "
                "array(s) after the key; for any number of arrays use train_test_split(*arrays, random_state=key)"
            )
        return _key_split(*arrays, test_fraction=0.25 if test_fraction is None else test_fraction)
    if test_fraction is not None:
        raise FnnTypeError(
            "test_fraction goes with the key-first form train_test_split(key, x, y, test_fraction=...); "
            "with the arrays first, as in scikit-learn, pass test_size="
        )
    if not arrays:
        raise FnnValueError("train_test_split needs at least one array to split, e.g. train_test_split(x, y)")
    arrays = tuple(_rows(a, f"arrays[{i}]") for i, a in enumerate(arrays))
    n = arrays[0].shape[0]
    for i, a in enumerate(arrays[1:], 1):
        if a.shape[0] != n:
            raise FnnValueError(
                f"train_test_split's arrays have different numbers of samples: arrays[0] has {n}, arrays[{i}] "
                f"has {a.shape[0]}; pass arrays with one row per sample, all of one length"
            )
    n_train, n_test = _split_sizes(n, test_size, train_size)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise FnnTypeError(f"shuffle must be True or False, got {type(shuffle).__name__} {shuffle!r}")
    if stratify is not None and not shuffle:
        raise FnnValueError(
            "stratify needs shuffle=True (a stratified split draws its rows at random), as in scikit-learn"
        )
    if not shuffle:
        train, test = np.arange(n_train), np.arange(n_train, n_train + n_test)
    else:
        rng = np.random.default_rng() if random_state is None else _generator(random_state, "random_state")
        if stratify is None:
            perm = rng.permutation(n)
            test, train = perm[:n_test], perm[n_test : n_test + n_train]
        else:
            train, test = _stratified(_labels(stratify, n), n_train, n_test, rng)
    return [part for a in arrays for part in (_take(a, train), _take(a, test))]


def _rows(a, name: str):
    """`a` as an array with a leading sample axis (lists become numpy; any dtype)."""
    if a is None or isinstance(a, (str, bytes)):
        raise FnnTypeError(f"{name} must be an array with one row per sample, got {type(a).__name__}")
    if not hasattr(a, "shape"):
        a = np.asarray(a)
    if len(a.shape) == 0:
        raise FnnValueError(f"{name} must have one entry per sample, got a scalar")
    return a


def _size(value, name: str, n: int) -> float | int | None:
    """A split size: None, a fraction in (0, 1), or a count in [1, n - 1]."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise FnnTypeError(
            f"{name} must be a fraction in (0, 1) or a count of samples, got {type(value).__name__} {value!r}"
        )
    if isinstance(value, (int, np.integer)):
        if not 1 <= value <= n - 1:
            raise FnnValueError(
                f"{name}={int(value)} as a count of samples must be in [1, {n - 1}] for {n} samples; "
                "pass a smaller count or a fraction in (0, 1)"
            )
        return int(value)
    value = float(value)
    if not 0 < value < 1:  # NaN fails this too
        raise FnnValueError(f"{name}={value} as a fraction must be in (0, 1); pass e.g. 0.25, or a count of samples")
    return value


def _split_sizes(n: int, test_size, train_size) -> tuple[int, int]:
    """(n_train, n_test) as scikit-learn counts them: a test fraction rounds up, a train one down."""
    test = _size(test_size, "test_size", n)
    train = _size(train_size, "train_size", n)
    if test is None and train is None:
        test = 0.25
    if isinstance(test, float) and isinstance(train, float) and test + train > 1:
        raise FnnValueError(f"test_size + train_size = {test + train:g} is over 1; make one of them smaller")
    n_test = math.ceil(test * n) if isinstance(test, float) else test
    n_train = math.floor(train * n) if isinstance(train, float) else train
    n_train = n - n_test if n_train is None and n_test is not None else n_train
    n_test = n - n_train if n_test is None and n_train is not None else n_test
    assert n_train is not None and n_test is not None
    if n_train + n_test > n:
        raise FnnValueError(
            f"train_size and test_size ask for {n_train} + {n_test} = {n_train + n_test} samples but there are "
            f"{n}; make one of them smaller"
        )
    if n_train == 0:
        raise FnnValueError(f"test_size={test_size} of {n} samples leaves no training samples; make test_size smaller")
    return n_train, n_test


def _labels(stratify, n: int) -> np.ndarray:
    """The class index of every row of `stratify` ((n,) labels, or (n, k) rows each one class)."""
    labels = np.asarray(stratify)
    if labels.ndim not in (1, 2):
        raise FnnValueError(f"stratify must be labels of shape (n,) or (n, k), got shape {labels.shape}")
    if labels.shape[0] != n:
        raise FnnValueError(
            f"stratify has {labels.shape[0]} labels but the arrays have {n} samples; pass one label per row"
        )
    _, index = np.unique(labels, axis=0, return_inverse=True)
    return index.reshape(-1)


def _allot(counts: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """How many of n_draws each class gets: floor of its share, then one more to the largest
    remainders, ties broken at random (scikit-learn's approximate mode of the hypergeometric)."""
    continuous = counts / counts.sum() * n_draws
    out = np.floor(continuous).astype(np.int64)
    need = n_draws - int(out.sum())
    remainder = continuous - out
    for value in np.unique(remainder)[::-1]:
        if need <= 0:
            break
        tied = np.flatnonzero(remainder == value)
        take = rng.choice(tied, size=min(len(tied), need), replace=False)
        out[take] += 1
        need -= len(take)
    return out


def _stratified(classes: np.ndarray, n_train: int, n_test: int, rng: np.random.Generator):
    """(train, test) row indices with each class in the proportion it has in `classes`."""
    counts = np.bincount(classes)
    if counts.min() < 2:
        rare = np.flatnonzero(counts < 2)
        raise FnnValueError(
            f"stratify: {len(rare)} class(es) have a single member, too few to be in both sets; "
            "every class needs at least 2 rows (merge or drop the rare classes, or split without stratify)"
        )
    for n_set, name in ((n_train, "train"), (n_test, "test")):
        if n_set < len(counts):
            raise FnnValueError(
                f"stratify: the {name} set of {n_set} samples cannot hold one of each of the {len(counts)} "
                f"classes; make {name}_size at least {len(counts)}"
            )
    n_i = _allot(counts, n_train, rng)
    t_i = _allot(counts - n_i, n_test, rng)
    train, test = [], []
    for c in range(len(counts)):
        rows = rng.permutation(np.flatnonzero(classes == c))
        train.append(rows[: n_i[c]])
        test.append(rows[n_i[c] : n_i[c] + t_i[c]])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _key_split(key: Array, x, y, test_fraction: float = 0.25):
    """fnn's key-first split: shuffle with `key`, then (x_train, y_train, x_test, y_test)."""
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


def _constant(var: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    """Columns whose variance is rounding error only (scikit-learn's test): they scale by 1, not 1/tiny."""
    eps = np.finfo(var.dtype if var.dtype.kind == "f" else np.float64).eps
    return var <= n * eps * var + (n * mean * eps) ** 2


def standardize(x_train, *others):
    """Scale columns to mean 0, std 1 with x_train's statistics, as StandardScaler().fit_transform does.

    `standardize(x)` returns the standardised x; `standardize(x_train, x_test, ...)` returns a
    tuple of every array scaled by x_train's means and stds. Every array is (n, d), finite, with
    x_train's d columns; a constant column becomes 0 (its scale is 1, as in scikit-learn).

    Example:
        >>> fnn.data.standardize(np.array([[1.0, 5.0], [3.0, 5.0]]))
        array([[-1.,  0.],
               [ 1.,  0.]])
    """
    x_train, _ = _validate.features(x_train, "x_train" if others else "x")
    for i, a in enumerate(others):
        a, _ = _validate.features(a, f"others[{i}]")
        if a.shape[1] != x_train.shape[1]:
            raise FnnValueError(
                f"others[{i}] has {a.shape[1]} features (shape {tuple(a.shape)}) but x_train has {x_train.shape[1]}"
            )
    host = np.asarray(x_train)
    mean = host.mean(axis=0)
    std = host.std(axis=0)
    std = np.where((std > 0) & ~_constant(std**2, mean, host.shape[0]), std, 1.0)
    scaled = tuple((np.asarray(a) - mean) / std for a in (x_train,) + others)
    return scaled if others else scaled[0]


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
