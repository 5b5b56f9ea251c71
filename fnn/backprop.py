"""Backpropagation by hand: the chain rule applied from the output back, one layer at a time.

No jax.grad, vjp, jvp or linear_transpose here. For a network z_l = a_{l-1} @ w_l + b_l,
a_l = f_l(z_l), with a_0 = x:

    δ_L = ∂L/∂z_L                  (ŷ − y)/n for the fused pairs, else f_L'ᵀ · ∂L/∂a_L
    ∂L/∂w_l = a_{l-1}ᵀ δ_l,  ∂L/∂b_l = Σ_batch δ_l
    δ_{l-1} = f_{l-1}'ᵀ · (δ_l w_lᵀ)   (elementwise product for all but softmax)

With a Dropout before layer l its input is a_{l-1}·m_l (m_l: 0 or 1/(1 − rate), fnn.layers.dropout_masks)
and ∂L/∂a_{l-1} = m_l · ∂L/∂(a_{l-1}·m_l) (dropout_vjp): given a key, the same masks as jax.grad of
fnn.objective(model, loss)(params, x, y, key). A regularizer adds its penalty to L and its hand-written
gradient (fnn.regularizers: 2λw, λ·sign(w)) to ∂L/∂w_l or ∂L/∂b_l.

The deltas δ_l (batch, n_l) are the error signals: where they vanish, nothing upstream learns.
Every layer needs a hand-written derivative and the loss a hand-written gradient: a bare callable
activation or a callable loss is refused, naming the layer and the fix (jax.grad handles both).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from fnn import _validate, activations, layers, losses, models
from fnn.errors import FnnValueError
from fnn.layers import DenseParams

__all__ = [
    "Backward",
    "Forward",
    "LayerTrace",
    "backward",
    "dead_units",
    "deltas",
    "dense_vjp",
    "dropout_vjp",
    "forward",
    "gradient_norms",
    "gradients",
    "mlp_backward",
    "penalty_grads",
    "trace",
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


def forward(activation_names, params, x: Array, masks=None) -> Forward:
    """Run the network keeping each layer's input a_{l-1} (after its dropout mask, if masks are given:
    fnn.layers.dropout_masks) and pre-activation z_l."""
    inputs, zs = [], []
    a = x
    for l, (name, p) in enumerate(zip(activation_names, params)):
        if masks is not None and masks[l] is not None:
            a = layers.dropout_apply(a, masks[l])
        inputs.append(a)
        z = layers.dense_apply(p, a)
        zs.append(z)
        a = activations.get(name).fn(z)
    return Forward(tuple(inputs), tuple(zs), a)


def dense_vjp(params: DenseParams, a: Array, delta: Array) -> tuple[DenseParams, Array]:
    """Backward of dense_apply: δ = ∂L/∂z (batch, n_out) -> (∂L/∂params, ∂L/∂a (batch, n_in))."""
    return DenseParams(w=a.T @ delta, b=delta.sum(axis=0)), delta @ params.w.T


def dropout_vjp(mask: Array, g: Array) -> Array:
    """Backward of layers.dropout_apply: g = ∂L/∂(a·mask) -> ∂L/∂a = mask · g (batch, n)."""
    return mask * g


def mlp_backward(
    activation_names, params, fwd: Forward, g_out: Array, from_logits: bool, masks=None
) -> tuple[tuple[DenseParams, ...], tuple[Array, ...]]:
    """Walk back from g_out = ∂L/∂a_L (or ∂L/∂z_L if from_logits): -> (grads, deltas), first layer first.
    masks: the dropout masks the forward pass applied (None: none)."""
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
        if masks is not None and masks[l] is not None:
            g = dropout_vjp(masks[l], g)
        grads.append(grad)
        deltas.append(delta)
    return tuple(reversed(grads)), tuple(reversed(deltas))


def backward(model: models.Sequential, loss: str, params, x: ArrayLike, y: ArrayLike, key=None) -> Backward:
    """Loss, gradients, deltas and per-layer gradient norms by the hand-written chain rule.

    The loss and gradients include the layers' regularization penalties; key (a PRNG key or an int
    seed) draws the Dropout masks as fnn.objective(model, loss)(params, x, y, key) does (None: no dropout).

    Example:
        >>> out = fnn.backprop.backward(model, "binary_cross_entropy", params, x, y)
        >>> [d.shape for d in out.deltas]  # one (batch, units) error signal per layer
        [(64, 4), (64, 1)]
    """
    spec = _by_hand(model, loss)
    x, y = models.prepare(model, spec, params, x, y)
    return _backward(model, spec, params, x, y, None if key is None else _validate.key(key))


def _by_hand(model: models.Sequential, loss) -> losses.Loss:
    """The resolved loss, once every layer and the loss are known to have hand-written derivatives."""
    spec = models.resolve_loss(model, loss)
    for i, layer in enumerate(model.layers):
        act = activations.get(layer.activation)
        if not act.has_derivative:
            raise FnnValueError(
                f"layer {i}, Dense({layer.units}, activation={act.name}), has no hand-written derivative, which "
                "fnn.backprop needs; pass activation=fnn.Activation(f, df) with its derivative df, or "
                "differentiate with jax.grad(fnn.objective(model, loss)), as fit does"
            )
    if spec.grad is None:
        raise FnnValueError(
            f"loss {spec.name!r} is a callable without a hand-written gradient, which fnn.backprop needs; "
            "differentiate with jax.grad(fnn.objective(model, loss)), as fit does"
        )
    return spec


def _masks(model: models.Sequential, params, x: Array, key):
    if key is None or not model.has_dropout:
        return None
    return layers.dropout_masks(key, model.dropout, params, x.shape[0])


def penalty_grads(model: models.Sequential, params, grads) -> tuple[DenseParams, ...]:
    """grads plus each regularizer's hand-written gradient on its layer's w or b."""
    out = []
    for layer, p, g in zip(model.layers, params, grads):
        kernel, bias = layer.regularizers
        w = g.w if kernel is None else g.w + kernel.grad(p.w)
        b = g.b if bias is None else g.b + bias.grad(p.b)
        out.append(DenseParams(w, b))
    return tuple(out)


def _backward(model, spec: losses.Loss, params, x, y, key=None) -> Backward:
    names = model.activations
    masks = _masks(model, params, x, key)
    fwd = forward(names, params, x, masks)
    out = fwd.preactivations[-1] if spec.from_logits else fwd.output
    loss = models.with_penalty(model, params, losses.value(spec, out, y))
    grads, deltas = mlp_backward(names, params, fwd, losses.grad(spec, out, y), spec.from_logits, masks)
    grads = penalty_grads(model, params, grads)
    norms = tuple(jnp.sqrt(jnp.sum(g.w**2) + jnp.sum(g.b**2)) for g in grads)
    return Backward(loss, grads, deltas, norms)


def gradients(model: models.Sequential, loss: str, params, x: ArrayLike, y: ArrayLike, key=None):
    """∂loss/∂params by hand; the same tree (tuple of DenseParams) as jax.grad(fnn.objective(...)) (key:
    the Dropout masks' key, as in backward)."""
    grads = backward(model, loss, params, x, y, key).grads
    return jax.tree.unflatten(jax.tree.structure(params), jax.tree.leaves(grads))


def deltas(model: models.Sequential, loss: str, params, x: ArrayLike, y: ArrayLike, key=None) -> tuple[Array, ...]:
    """Each layer's error signal δ_l = ∂L/∂z_l, (batch, units_l)."""
    return backward(model, loss, params, x, y, key).deltas


def gradient_norms(
    model: models.Sequential, loss: str, params, x: ArrayLike, y: ArrayLike, key=None
) -> tuple[Array, ...]:
    """Each layer's ‖∂L/∂(w_l, b_l)‖₂: where these vanish, the layers below stop learning."""
    return backward(model, loss, params, x, y, key).grad_norms


def dead_units(model: models.Sequential, params, x: ArrayLike) -> tuple[Array, ...]:
    """Per layer, a (units,) bool mask of ReLU units that output 0 for every sample of x (so pass no signal)."""
    models.check_params(model, params)
    x, _ = _validate.features(x, "x", params[0][0].shape[0])
    fwd = forward(model.activations, params, jnp.asarray(x, params[0][0].dtype))
    return tuple(
        jnp.all(z <= 0, axis=0) if name == "relu" else jnp.zeros(z.shape[1], bool)
        for name, z in zip(model.activations, fwd.preactivations)
    )


class LayerTrace(NamedTuple):
    """One layer's part in one forward and backward pass: z = a_in @ w + b, a_out = f(z)."""

    a_in: Array  # (batch, n_in): the layer's input (x for the first layer)
    z: Array  # (batch, n_out): a_in @ w + b
    a_out: Array  # (batch, n_out): f(z), the next layer's a_in
    delta: Array  # (batch, n_out): ∂L/∂z
    grad_w: Array  # (n_in, n_out): ∂L/∂w = a_inᵀ δ (+ the kernel regularizer's gradient), stored for the update
    grad_b: Array  # (n_out,): ∂L/∂b = Σ_batch δ, stored for the update
    grad_a_in: Array  # (batch, n_in): ∂L/∂a_in = δ wᵀ, passed back to the layer before


def trace(model: models.Sequential, loss: str, params, x: ArrayLike, y: ArrayLike) -> tuple[LayerTrace, ...]:
    """Every number of one forward and backward pass, one LayerTrace per layer, first layer first.

    x: one example (n_in,) (then y is that example's target: a label, or (n_out,)) or a batch
    (batch, n_in). L is the mean-over-batch loss fnn trains with, so grad_w and grad_b are
    jax.grad of fnn.objective(model, loss); the arrays keep a leading batch axis even for one example.

    Example:
        >>> layers = fnn.backprop.trace(model, "binary_cross_entropy", params, x[0], y[0])
        >>> [(t.a_in.shape, t.grad_w.shape) for t in layers]
        [((1, 2), (2, 4)), ((1, 4), (4, 1))]
        >>> bool(jnp.allclose(layers[1].a_in, layers[0].a_out))  # a layer's output is the next one's input
        True
    """
    spec = _by_hand(model, loss)
    models.check_params(model, params)
    x, single = _validate.features(x, "x", params[0][0].shape[0], allow_single=True)  # (n_in,) -> (1, n_in)
    if single:
        target = np.asarray(_validate.array(y, "y"))
        y = target.reshape(1) if target.ndim == 0 else target.reshape(1, -1) if target.ndim == 1 else target
    x, y = models.prepare(model, spec, params, x, y)
    return _trace(model, spec, params, x, y)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _trace(model, spec: losses.Loss, params, x, y) -> tuple[LayerTrace, ...]:
    names = model.activations
    fwd = forward(names, params, x)
    out = fwd.preactivations[-1] if spec.from_logits else fwd.output
    grads, deltas = mlp_backward(names, params, fwd, losses.grad(spec, out, y), spec.from_logits)
    grads = penalty_grads(model, params, grads)
    outputs = fwd.inputs[1:] + (fwd.output,)
    return tuple(
        LayerTrace(a_in, z, a_out, delta, grad.w, grad.b, dense_vjp(p, a_in, delta)[1])
        for p, a_in, z, a_out, delta, grad in zip(params, fwd.inputs, fwd.preactivations, outputs, deltas, grads)
    )
