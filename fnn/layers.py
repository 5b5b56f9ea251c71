"""Dense layers as pure functions: parameters in, arrays out; the network is their composition.

A network's params are `tuple[DenseParams, ...]`, one entry per layer. Its static configuration
(units, activation names or fnn.Activation records) lives in `fnn.models.Dense`/`Sequential`, never in the params.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnn import activations, initializers

__all__ = ["SMALL_LAYER", "DenseParams", "dense_apply", "dense_init", "mlp_apply", "mlp_logits"]

Array = jax.Array


class DenseParams(NamedTuple):
    """One fully connected layer, z = a @ w + b."""

    w: Array  # (n_in, n_out)
    b: Array  # (n_out,)


def dense_init(
    key: Array, n_in: int, n_out: int, kernel_init: str = "glorot_uniform", dtype=jnp.float32
) -> DenseParams:
    """w from the named initializer (fan_in = n_in, fan_out = n_out), b zero."""
    w = initializers.get(kernel_init)(key, (n_in, n_out), dtype)
    return DenseParams(w=w, b=jnp.zeros((n_out,), dtype))


SMALL_LAYER = 256  # n_in · n_out at or below which `small=True` avoids a matmul call


def dense_apply(params: DenseParams, a: Array, small: bool = False) -> Array:
    """(batch, n_in) -> (batch, n_out): the pre-activation z = a @ w + b.

    With small=True a layer of at most SMALL_LAYER weights is computed as Σ_i a_i w_i (a broadcast
    product and a sum): for the tiny layers of a network like 2-4-6-6-4-1 a matmul call costs more
    than its arithmetic, while the sum fuses with the activation and the rest of the step.
    """
    n_in, n_out = params.w.shape
    if small and n_in * n_out <= SMALL_LAYER:
        return jnp.sum(a[:, :, None] * params.w[None, :, :], axis=1) + params.b[None, :]
    return a @ params.w + params.b[None, :]


def mlp_apply(
    activation_names: Sequence[activations.ActivationLike], params: Sequence[DenseParams], x: Array, small: bool = False
) -> Array:
    """(batch, n_in) -> (batch, n_out): activation_l(a @ w_l + b_l), layer after layer."""
    a = x
    for name, p in zip(activation_names, params):
        a = activations.get(name).fn(dense_apply(p, a, small))
    return a


def mlp_logits(
    activation_names: Sequence[activations.ActivationLike], params: Sequence[DenseParams], x: Array, small: bool = False
) -> Array:
    """Like mlp_apply but returns the last layer's pre-activation z (the logits)."""
    a = x
    for name, p in zip(activation_names[:-1], params[:-1]):
        a = activations.get(name).fn(dense_apply(p, a, small))
    return dense_apply(params[-1], a, small)
