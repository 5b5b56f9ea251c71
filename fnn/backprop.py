"""Backpropagation by hand: the chain rule applied from the output back, one layer at a time.

No jax.grad, vjp, jvp or linear_transpose here. For a network z_l = a_{l-1} @ w_l + b_l,
a_l = f_l(z_l), with a_0 = x:

    δ_L = ∂L/∂z_L                  (ŷ − y)/n for the fused pairs, else f_L'ᵀ · ∂L/∂a_L
    ∂L/∂w_l = a_{l-1}ᵀ δ_l,  ∂L/∂b_l = Σ_batch δ_l
    δ_{l-1} = f_{l-1}'ᵀ · (δ_l w_lᵀ)   (elementwise product for all but softmax)

The deltas δ_l (batch, n_l) are the error signals: where they vanish, nothing upstream learns.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from fnn import _validate, activations, layers, losses, models
from fnn.layers import DenseParams

__all__ = [
    "Backward",
    "Forward",
    "backward",
    "dead_units",
    "deltas",
    "dense_vjp",
    "forward",
    "gradient_norms",
    "gradients",
    "mlp_backward",
]

Array = jax.Array


class Forward(NamedTuple):
    """What the backward pass needs from the forward pass, one entry per layer."""

    inputs: tuple[Array, ...]  # a_{l-1}: (batch, n_in) of each layer
    preactivations: tuple[Array, ...]  # z_l: (batch, n_out) of each layer
    output: Array  # a_L: (batch, n_out)


class Backward(NamedTuple):
    """The result of backprop: loss, gradients (same tree as params), per-layer deltas and norms."""

    loss: Array  # scalar
    grads: tuple[DenseParams, ...]
    deltas: tuple[Array, ...]  # δ_l = ∂L/∂z_l: (batch, n_out) of each layer
    grad_norms: tuple[Array, ...]  # ‖(∂L/∂w_l, ∂L/∂b_l)‖₂ of each layer


def forward(activation_names, params, x: Array) -> Forward:
    """Run the network keeping each layer's input a_{l-1} and pre-activation z_l."""
    inputs, zs = [], []
    a = x
    for name, p in zip(activation_names, params):
        inputs.append(a)
        z = layers.dense_apply(p, a)
        zs.append(z)
        a = activations.get(name).fn(z)
    return Forward(tuple(inputs), tuple(zs), a)


def dense_vjp(params: DenseParams, a: Array, delta: Array) -> tuple[DenseParams, Array]:
    """Backward of dense_apply: δ = ∂L/∂z (batch, n_out) -> (∂L/∂params, ∂L/∂a (batch, n_in))."""
    return DenseParams(w=a.T @ delta, b=delta.sum(axis=0)), delta @ params.w.T


def mlp_backward(
    activation_names, params, fwd: Forward, g_out: Array, from_logits: bool
) -> tuple[tuple[DenseParams, ...], tuple[Array, ...]]:
    """Walk back from g_out = ∂L/∂a_L (or ∂L/∂z_L if from_logits): -> (grads, deltas), first layer first."""
    n = len(params)
    grads: list[DenseParams] = []  # last layer first, as the walk goes
    deltas: list[Array] = []
    g = g_out
    for l in reversed(range(n)):
        z = fwd.preactivations[l]
        if l == n - 1 and from_logits:
            delta = g
        else:
            delta = activations.get(activation_names[l]).vjp(z, g)
        grad, g = dense_vjp(params[l], fwd.inputs[l], delta)
        grads.append(grad)
        deltas.append(delta)
    return tuple(reversed(grads)), tuple(reversed(deltas))


def backward(model: models.Sequential, loss: str, params, x: ArrayLike, y: ArrayLike) -> Backward:
    """Loss, gradients, deltas and per-layer gradient norms by the hand-written chain rule.

    Example:
        >>> out = fnn.backprop.backward(model, "binary_cross_entropy", params, x, y)
        >>> [d.shape for d in out.deltas]  # one (batch, units) error signal per layer
        [(64, 4), (64, 1)]
    """
    spec = models.resolve_loss(model, loss)
    x, y = models.prepare(model, spec, params, x, y)
    return _backward(model, spec, params, x, y)


def _backward(model, spec: losses.Loss, params, x, y) -> Backward:
    names = model.activations
    fwd = forward(names, params, x)
    out = fwd.preactivations[-1] if spec.from_logits else fwd.output
    loss = losses.value(spec, out, y)
    grads, deltas = mlp_backward(names, params, fwd, losses.grad(spec, out, y), spec.from_logits)
    norms = tuple(jnp.sqrt(jnp.sum(g.w**2) + jnp.sum(g.b**2)) for g in grads)
    return Backward(loss, grads, deltas, norms)


def gradients(model: models.Sequential, loss: str, params, x: ArrayLike, y: ArrayLike):
    """∂loss/∂params by hand; the same tree (tuple of DenseParams) as jax.grad(fnn.objective(...))."""
    grads = backward(model, loss, params, x, y).grads
    return jax.tree.unflatten(jax.tree.structure(params), jax.tree.leaves(grads))


def deltas(model: models.Sequential, loss: str, params, x: ArrayLike, y: ArrayLike) -> tuple[Array, ...]:
    """Each layer's error signal δ_l = ∂L/∂z_l, (batch, units_l)."""
    return backward(model, loss, params, x, y).deltas


def gradient_norms(model: models.Sequential, loss: str, params, x: ArrayLike, y: ArrayLike) -> tuple[Array, ...]:
    """Each layer's ‖∂L/∂(w_l, b_l)‖₂: where these vanish, the layers below stop learning."""
    return backward(model, loss, params, x, y).grad_norms


def dead_units(model: models.Sequential, params, x: ArrayLike) -> tuple[Array, ...]:
    """Per layer, a (units,) bool mask of ReLU units that output 0 for every sample of x (so pass no signal)."""
    models.check_params(model, params)
    x, _ = _validate.features(x, "x", params[0][0].shape[0])
    fwd = forward(model.activations, params, jnp.asarray(x, params[0][0].dtype))
    return tuple(
        jnp.all(z <= 0, axis=0) if name == "relu" else jnp.zeros(z.shape[1], bool)
        for name, z in zip(model.activations, fwd.preactivations)
    )
