"""Weight initializers: (key, shape, dtype) -> Array, for a (fan_in, fan_out) matrix.

Glorot (Xavier) keeps the variance of signals and gradients alike for tanh/sigmoid/linear
layers: Var = 2 / (fan_in + fan_out). He keeps it for ReLU layers, which zero half their
input: Var = 2 / fan_in.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from fnn.errors import FnnTypeError, FnnValueError

Array = jax.Array
Initializer = Callable[..., Array]


def _fans(shape) -> tuple[int, int]:
    if len(shape) != 2:
        raise FnnValueError(f"initializers take a (fan_in, fan_out) shape, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _uniform(key, shape, dtype, variance):
    limit = math.sqrt(3.0 * variance)  # Var(U(-a, a)) = a² / 3
    return jax.random.uniform(key, shape, dtype, -limit, limit)


def _normal(key, shape, dtype, variance):
    return math.sqrt(variance) * jax.random.normal(key, shape, dtype)


def glorot_uniform(key: Array, shape, dtype=jnp.float32) -> Array:
    """U(−a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return _uniform(key, shape, dtype, 2.0 / (fan_in + fan_out))


def glorot_normal(key: Array, shape, dtype=jnp.float32) -> Array:
    """N(0, 2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    return _normal(key, shape, dtype, 2.0 / (fan_in + fan_out))


def he_uniform(key: Array, shape, dtype=jnp.float32) -> Array:
    """U(−a, a) with a = sqrt(6 / fan_in)."""
    fan_in, _ = _fans(shape)
    return _uniform(key, shape, dtype, 2.0 / fan_in)


def he_normal(key: Array, shape, dtype=jnp.float32) -> Array:
    """N(0, 2 / fan_in)."""
    fan_in, _ = _fans(shape)
    return _normal(key, shape, dtype, 2.0 / fan_in)


def zeros(key: Array, shape, dtype=jnp.float32) -> Array:
    """All zeros (the key is accepted for a uniform signature and ignored)."""
    del key
    return jnp.zeros(shape, dtype)


INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "zeros": zeros,
}


def get(name: str) -> Initializer:
    """The initializer registered under `name`."""
    if not isinstance(name, str):
        raise FnnTypeError(f"initializer must be a name (str), got {type(name).__name__}; "
                           f"choose one of {sorted(INITIALIZERS)}")
    if name not in INITIALIZERS:
        raise FnnValueError(f"unknown initializer {name!r}; choose one of {sorted(INITIALIZERS)}")
    return INITIALIZERS[name]
