"""Activations, each beside its hand-written derivative.

Elementwise activations have `*_deriv(z)`, the elementwise f'(z). Softmax is not elementwise:
it has `softmax_jacobian(z)` (..., k, k) and, like every activation, a `vjp(z, g)` that maps
∂L/∂f(z) to ∂L/∂z without building the Jacobian.

NaN in, NaN out, for every function here and its derivative: a NaN must never come out as a
plausible 0 or 1, or NaN params would give believable predictions.

`ACTIVATIONS` is the registry: one `Activation` record per name, which `get(name)` looks up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnn.errors import FnnTypeError, FnnValueError

__all__ = [
    "ACTIVATIONS",
    "LEAKY_SLOPE",
    "RELU_FAMILY",
    "Activation",
    "canonical_name",
    "get",
    "leaky_relu",
    "leaky_relu_deriv",
    "linear",
    "linear_deriv",
    "relu",
    "relu_deriv",
    "sigmoid",
    "sigmoid_deriv",
    "softmax",
    "softmax_jacobian",
    "softmax_vjp",
    "tanh",
    "tanh_deriv",
]

Array = jax.Array

LEAKY_SLOPE = 0.01  # as jax.nn.leaky_relu


def linear(z: Array) -> Array:
    """Identity."""
    return z


def _nan_through(z: Array, value: Array) -> Array:
    """`value`, except NaN where z is NaN (a derivative's comparisons alone would map NaN to 0 or 1)."""
    return jnp.where(jnp.isnan(z), z, value)


def linear_deriv(z: Array) -> Array:
    """1, elementwise."""
    return _nan_through(z, jnp.ones_like(z))


def relu(z: Array) -> Array:
    """max(z, 0), elementwise; NaN in, NaN out."""
    # z <= 0 is False for NaN, so a NaN passes through; not 0.0 * z, which turns -inf into NaN
    return jnp.where(z <= 0, jnp.zeros_like(z), z)


def relu_deriv(z: Array) -> Array:
    """d relu/dz, elementwise. 0 at z == 0, matching jax.grad(jax.nn.relu)."""
    return _nan_through(z, (z > 0).astype(z.dtype))


def leaky_relu(z: Array) -> Array:
    """z for z >= 0, 0.01 z below, elementwise (jax.nn.leaky_relu)."""
    return jnp.where(z >= 0, z, LEAKY_SLOPE * z)


def leaky_relu_deriv(z: Array) -> Array:
    """1 for z >= 0, 0.01 below; 1 at z == 0, matching jax.grad(jax.nn.leaky_relu)."""
    return _nan_through(z, jnp.where(z >= 0, jnp.ones_like(z), jnp.full_like(z, LEAKY_SLOPE)))


def sigmoid(z: Array) -> Array:
    """1 / (1 + exp(-z)), elementwise; finite and exact in both tails."""
    return jax.nn.sigmoid(z)


def sigmoid_deriv(z: Array) -> Array:
    """σ(z)(1 − σ(z)), elementwise."""
    s = sigmoid(z)
    return s * (1 - s)


def tanh(z: Array) -> Array:
    """tanh(z), elementwise."""
    return jnp.tanh(z)


def tanh_deriv(z: Array) -> Array:
    """1 − tanh(z)², elementwise."""
    t = jnp.tanh(z)
    return 1 - t * t


def softmax(z: Array) -> Array:
    """exp(z) / Σ exp(z) over the last axis; the max is subtracted first so exp never overflows."""
    e = jnp.exp(z - jax.lax.stop_gradient(z.max(axis=-1, keepdims=True)))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_jacobian(z: Array) -> Array:
    """∂softmax(z)_i/∂z_j = s_i (δ_ij − s_j): (..., k) -> (..., k, k)."""
    s = softmax(z)
    k = s.shape[-1]
    eye = jnp.broadcast_to(jnp.eye(k, dtype=s.dtype), s.shape[:-1] + (k, k))
    return s[..., :, None] * (eye - s[..., None, :])


def softmax_vjp(z: Array, g: Array) -> Array:
    """gᵀ J = s ⊙ (g − ⟨g, s⟩) over the last axis: ∂L/∂s (..., k) -> ∂L/∂z (..., k)."""
    s = softmax(z)
    return s * (g - (g * s).sum(axis=-1, keepdims=True))


class Activation(NamedTuple):
    """An activation, its derivative, and the backward map used by backprop."""

    name: str
    fn: Callable[[Array], Array]
    deriv: Callable[[Array], Array]  # elementwise f'(z); the Jacobian for softmax
    vjp: Callable[[Array, Array], Array]  # (z, ∂L/∂f(z)) -> ∂L/∂z
    elementwise: bool


def _elementwise(name, fn, deriv) -> Activation:
    return Activation(name, fn, deriv, lambda z, g: g * deriv(z), True)


ACTIVATIONS: dict[str, Activation] = {
    "linear": _elementwise("linear", linear, linear_deriv),
    "relu": _elementwise("relu", relu, relu_deriv),
    "leaky_relu": _elementwise("leaky_relu", leaky_relu, leaky_relu_deriv),
    "sigmoid": _elementwise("sigmoid", sigmoid, sigmoid_deriv),
    "tanh": _elementwise("tanh", tanh, tanh_deriv),
    "softmax": Activation("softmax", softmax, softmax_jacobian, softmax_vjp, False),
}

RELU_FAMILY = frozenset({"relu", "leaky_relu"})


def canonical_name(name: str | None) -> str:
    """The registry name of an activation: None means "linear"; unknown names are refused."""
    if name is None:
        return "linear"
    if not isinstance(name, str):
        raise FnnTypeError(
            f"activation must be a name (str) or None, got {type(name).__name__} {name!r}; "
            f"choose one of {sorted(ACTIVATIONS)}"
        )
    key = name.lower()
    if key not in ACTIVATIONS:
        raise FnnValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)} or None")
    return key


def get(name: str | None) -> Activation:
    """The Activation registered under `name` (None is "linear")."""
    return ACTIVATIONS[canonical_name(name)]
