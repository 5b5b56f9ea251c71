"""Small data sets and splitting, all driven by an explicit key.

`circles` follows scikit-learn's make_circles: an outer circle of radius 1 (label 0) and an
inner one of radius `factor` (label 1), with Gaussian noise; it needs no extra package.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate
from fnn.errors import FnnValueError

Array = jax.Array


def circles(key: Array, n_samples: int = 1000, noise: float = 0.1, factor: float = 0.5):
    """Two concentric circles: x (n, 2) float32, y (n,) int32 in {0, 1}, shuffled.

    Example:
        >>> x, y = fnn.data.circles(jax.random.key(0), 200, noise=0.05)
    """
    key = _validate.key(key)
    n = _validate.integer(n_samples, "n_samples", minimum=2)
    noise = _validate.real(noise, "noise", low=0)
    factor = _validate.real(factor, "factor", low=0, high=1, high_open=True)
    n_out = n // 2
    n_in = n - n_out
    k_angle_out, k_angle_in, k_noise, k_perm = jax.random.split(key, 4)
    t_out = jnp.linspace(0, 2 * jnp.pi, n_out, endpoint=False)
    t_in = jnp.linspace(0, 2 * jnp.pi, n_in, endpoint=False)
    outer = jnp.stack([jnp.cos(t_out), jnp.sin(t_out)], axis=1)
    inner = factor * jnp.stack([jnp.cos(t_in), jnp.sin(t_in)], axis=1)
    x = jnp.concatenate([outer, inner]) + noise * jax.random.normal(k_noise, (n, 2))
    y = jnp.concatenate([jnp.zeros(n_out, jnp.int32), jnp.ones(n_in, jnp.int32)])
    perm = jax.random.permutation(k_perm, n)
    return x[perm].astype(jnp.float32), y[perm]


def spiral(key: Array, n_samples: int = 600, n_classes: int = 3, noise: float = 0.2):
    """Interleaved spirals, one arm per class: x (n, 2) float32, y (n,) int32 in 0..n_classes-1."""
    key = _validate.key(key)
    k = _validate.integer(n_classes, "n_classes", minimum=2)
    n = _validate.integer(n_samples, "n_samples", minimum=k)
    noise = _validate.real(noise, "noise", low=0)
    y = jnp.arange(n) % k
    r = jnp.linspace(0.0, 1.0, n)[jax.random.permutation(key, n)]
    theta = 4.0 * r + 2 * jnp.pi * y / k + noise * jax.random.normal(jax.random.fold_in(key, 1), (n,))
    x = jnp.stack([r * jnp.sin(theta), r * jnp.cos(theta)], axis=1)
    return x.astype(jnp.float32), y.astype(jnp.int32)


def train_test_split(key: Array, x, y, test_fraction: float = 0.25):
    """Shuffle with `key`, then split: (x_train, y_train, x_test, y_test); numpy or jax as given."""
    key = _validate.key(key)
    x = _validate.array(x, "x")
    y = _validate.array(y, "y")
    _validate.same_length(x, y)
    test_fraction = _validate.real(test_fraction, "test_fraction", low=0, high=1, low_open=True, high_open=True)
    n = x.shape[0]
    n_test = int(round(n * test_fraction))
    if n_test == 0 or n_test == n:
        raise FnnValueError(f"test_fraction={test_fraction} leaves an empty split of {n} samples")
    perm = np.asarray(jax.random.permutation(key, n))
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]


def standardize(x_train, *others):
    """Scale columns to mean 0, std 1 using x_train's statistics; returns the arrays in order.

    Every array must be (n, d), finite, with x_train's d columns.
    """
    x_train, _ = _validate.features(x_train, "x_train")
    for i, a in enumerate(others):
        a, _ = _validate.features(a, f"others[{i}]")
        if a.shape[1] != x_train.shape[1]:
            raise FnnValueError(f"others[{i}] has {a.shape[1]} features (shape {tuple(a.shape)}) but x_train has "
                                f"{x_train.shape[1]}")
    mean = np.asarray(x_train).mean(axis=0)
    std = np.asarray(x_train).std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple((np.asarray(a) - mean) / std for a in (x_train,) + others)


def digits():
    """scikit-learn's bundled 8×8 digits: x (1797, 64) float32 in [0, 1], y (1797,) int32 (needs scikit-learn)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("fnn.data.digits needs scikit-learn: pip install 'fnn[experiments]'") from None
    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int32)
