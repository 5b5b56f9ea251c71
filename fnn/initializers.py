"""Weight initializers: (key, shape, dtype) -> Array, for a (fan_in, fan_out) matrix.

Glorot (Xavier) keeps the variance of signals and gradients alike for tanh/sigmoid/linear
layers: Var = 2 / (fan_in + fan_out). He keeps it for ReLU layers, which zero half their
input: Var = 2 / fan_in. fnn.Dense starts every layer from Glorot-uniform unless its kernel_init
names another: on held-out data (experiments/initializers.py) He before ReLU layers did no better.

`INITIALIZERS` is the registry `get(name)` looks up; `draw_many` draws a whole network's weights
with one call to the random generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from fnn import _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = [
    "INITIALIZERS",
    "Initializer",
    "draw_many",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "zeros",
]

Array = jax.Array
Initializer = Callable[..., Array]


def _fans(shape) -> tuple[int, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise FnnValueError(f"initializers take a (fan_in, fan_out) shape, got {shape!r}")
    return (
        _validate.integer(shape[0], "fan_in (shape[0])", minimum=1),
        _validate.integer(shape[1], "fan_out (shape[1])", minimum=1),
    )


# Every initializer is a transform of U(0, 1) draws, so a whole network can be drawn with one call
# to the random generator (see `draw_many`): its compilation, not the arithmetic, is what costs.
def _unit(key, shape, dtype):
    """U(0, 1) with 0 excluded, so the normal inverse CDF below stays finite."""
    return jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)


def _glorot(fan_in, fan_out):
    return 2.0 / (fan_in + fan_out)


def _he(fan_in, fan_out):
    return 2.0 / fan_in


_RULES = {  # name -> (distribution, variance(fan_in, fan_out))
    "glorot_uniform": ("uniform", _glorot),
    "glorot_normal": ("normal", _glorot),
    "he_uniform": ("uniform", _he),
    "he_normal": ("normal", _he),
    "zeros": ("zeros", None),
}


def _transform(name: str, u: Array, shape) -> Array:
    """U(0, 1) draws u (size of shape) -> the named initializer's values of `shape`."""
    kind, variance = _RULES[name]
    u = u.reshape(shape)
    if kind == "zeros":
        return jnp.zeros_like(u)
    var = variance(*_fans(shape))
    if kind == "uniform":
        return (2 * u - 1) * math.sqrt(3.0 * var)  # U(−a, a) has variance a² / 3
    return math.sqrt(var) * jax.scipy.special.ndtri(u)  # the inverse normal CDF of U(0, 1) is N(0, 1)


def _draw(name, key, shape, dtype):
    key = _validate.key(key)
    _fans(shape)
    return _transform(name, _unit(key, (math.prod(shape),), dtype), shape)


def glorot_uniform(key: Array, shape, dtype=jnp.float32) -> Array:
    """U(−a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    return _draw("glorot_uniform", key, shape, dtype)


def glorot_normal(key: Array, shape, dtype=jnp.float32) -> Array:
    """N(0, 2 / (fan_in + fan_out))."""
    return _draw("glorot_normal", key, shape, dtype)


def he_uniform(key: Array, shape, dtype=jnp.float32) -> Array:
    """U(−a, a) with a = sqrt(6 / fan_in)."""
    return _draw("he_uniform", key, shape, dtype)


def he_normal(key: Array, shape, dtype=jnp.float32) -> Array:
    """N(0, 2 / fan_in)."""
    return _draw("he_normal", key, shape, dtype)


def zeros(key: Array, shape, dtype=jnp.float32) -> Array:
    """All zeros (the key is accepted for a uniform signature and ignored)."""
    del key
    return jnp.zeros(shape, dtype)


def draw_many(key: Array, names, shapes, dtype=jnp.float32) -> list[Array]:
    """One array per (initializer name, shape), all from a single U(0, 1) draw split into slices.

    Each slice is a disjoint part of one random stream, so no two arrays share values.
    """
    sizes = [math.prod(shape) for shape in shapes]
    u = _unit(key, (max(sum(sizes), 1),), dtype)
    out, at = [], 0
    for name, shape, size in zip(names, shapes, sizes):
        get(name)
        out.append(_transform(name, u[at : at + size], shape))
        at += size
    return out


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
        raise FnnTypeError(
            f"initializer must be a name (str), got {type(name).__name__}; choose one of {sorted(INITIALIZERS)}"
        )
    if name not in INITIALIZERS:
        raise FnnValueError(f"unknown initializer {name!r}; choose one of {sorted(INITIALIZERS)}")
    return INITIALIZERS[name]
