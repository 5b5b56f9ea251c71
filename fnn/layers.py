"""Dense layers as pure functions: parameters in, arrays out; the network is their composition.

A network's params are `tuple[DenseParams, ...]`, one entry per layer. Its static configuration
(units, activation names or fnn.Activation records) lives in `fnn.models.Dense`/`Sequential`, never in the params.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from fnn import activations, initializers

__all__ = [
    "SMALL_LAYER",
    "DenseParams",
    "dense_apply",
    "dense_init",
    "dropout_apply",
    "dropout_key",
    "dropout_masks",
    "mlp_apply",
    "mlp_logits",
]

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


Masks = Sequence[Array | None] | None  # each layer's input dropout mask (dropout_masks), or None: no dropout


def dropout_key(key: ArrayLike, epoch: ArrayLike, step: ArrayLike) -> Array:
    """The dropout key of one training step: the run's key folded with the epoch and the step, so a
    step draws the same masks however the run is split into calls (10 + 10 epochs == 20)."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, 0x0D0), epoch), step)


def _hash32(x: Array) -> Array:
    """lowbias32 (C. Wellons' integer hash, near-ideal avalanche): uint32 -> uint32, 7 integer ops."""
    x = (x ^ (x >> 16)) * jnp.uint32(0x7FEB352D)
    x = (x ^ (x >> 15)) * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def dropout_masks(key: Array, rates: Sequence[float | None], params: Sequence[DenseParams], batch: int) -> tuple:
    """Inverted-dropout masks for each layer's input, (batch, n_in) of 0 (dropped, probability rate) and
    1/(1 − rate) (kept), in the params' dtype; None where the layer has no dropout (rate None or 0).

    Each unit's uint32 draw, compared with rate·2³², is a counter-based hash of its index keyed by two
    words drawn from key: two rounds of _hash32, 14 integer ops fused into the mask, where threefry's
    bits cost on a CPU as much as a matmul of the same size (W2 of experiments/bench.py: 1.4× a step
    without dropout with threefry, 1.0× with this; tests/test_dropout.py checks the draws' statistics).
    Not for cryptography."""
    seed = jax.random.bits(key, (2,), jnp.uint32)
    masks, start = [], 0
    for rate, p in zip(rates, params):
        if not rate:
            masks.append(None)
            continue
        shape = (batch, p.w.shape[0])
        index = jnp.arange(batch * shape[1], dtype=jnp.uint32).reshape(shape) + jnp.uint32(start)
        start += batch * shape[1]
        draws = _hash32(_hash32(index ^ seed[0]) ^ seed[1])
        keep = draws >= jnp.uint32(min(round(rate * 2**32), 2**32 - 1))
        masks.append(keep.astype(p.w.dtype) * jnp.asarray(1.0 / (1.0 - rate), p.w.dtype))
    return tuple(masks)


def dropout_apply(a: Array, mask: Array) -> Array:
    """a · mask: a dropped unit is 0 (a NaN stays NaN: it is never hidden as a plausible 0)."""
    return a * mask


def _inputs(a: Array, masks: Masks, layer: int) -> Array:
    mask = None if masks is None else masks[layer]
    return a if mask is None else dropout_apply(a, mask)


def mlp_apply(
    activation_names: Sequence[activations.ActivationLike],
    params: Sequence[DenseParams],
    x: Array,
    small: bool = False,
    masks: Masks = None,
) -> Array:
    """(batch, n_in) -> (batch, n_out): activation_l(a @ w_l + b_l), layer after layer; masks (training
    only): each layer's input dropout mask from dropout_masks."""
    a = x
    for l, (name, p) in enumerate(zip(activation_names, params)):
        a = activations.get(name).fn(dense_apply(p, _inputs(a, masks, l), small))
    return a


def mlp_logits(
    activation_names: Sequence[activations.ActivationLike],
    params: Sequence[DenseParams],
    x: Array,
    small: bool = False,
    masks: Masks = None,
) -> Array:
    """Like mlp_apply but returns the last layer's pre-activation z (the logits)."""
    a = x
    last = len(params) - 1
    for l, (name, p) in enumerate(zip(activation_names[:-1], params[:-1])):
        a = activations.get(name).fn(dense_apply(p, _inputs(a, masks, l), small))
    return dense_apply(params[-1], _inputs(a, masks, last), small)
