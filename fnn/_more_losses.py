"""Mean absolute error, Huber and binary focal cross-entropy, each beside its gradient ∂L/∂predictions.

Part of fnn.losses (which re-exports every name here and holds their registry records); here so that
module stays readable in one sitting. Means over samples and components, as mse and binary CE.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fnn import _validate, targets

Array = jax.Array

MAE = "mae"
HUBER = "huber"
BINARY_FOCAL = "binary_focal_cross_entropy"


def _pair(pred, y, loss: str):
    return targets.pair(pred, y, targets.BINARY if loss == BINARY_FOCAL else targets.REAL, loss=loss)


# --------------------------------------------------------------------------- mean absolute error, Huber
def _abs(d: Array) -> Array:
    """|d| whose jax.grad is sign(d), 0 at d == 0 (jnp.abs's is 1 there): a subgradient at the minimum."""
    return jnp.where(d > 0, d, jnp.where(d < 0, -d, 0.0 * d))


def mae(pred: Array, y: Array) -> Array:
    """mean(|pred − y|) over samples and components. pred, y: (n, k) (or (n,) for k = 1)."""
    p, t = _pair(pred, y, MAE)
    return jnp.mean(_abs(p - t))


def mae_grad(pred: Array, y: Array) -> Array:
    """∂mae/∂pred = sign(pred − y) / (n k), 0 where pred == y, shaped like pred."""
    p, t = _pair(pred, y, MAE)
    return (jnp.sign(p - t) / p.size).reshape(jnp.shape(pred))


def huber_delta(delta) -> float:
    """delta checked: a finite number > 0 (fnn.losses' records check theirs with it too)."""
    return _validate.real(delta, "huber delta", low=0, low_open=True)


def _huber(d: Array, delta: float) -> Array:
    # ½ m² + δ (|d| − m), m = min(|d|, δ): ½ d² inside, δ (|d| − δ/2) outside, and no d² to overflow
    a = jnp.abs(d)
    m = jnp.minimum(a, delta)
    return 0.5 * m * m + delta * (a - m)


def huber(pred: Array, y: Array, delta: float = 1.0) -> Array:
    """mean over samples and components of ½ d² for |d| <= delta, delta (|d| − delta/2) beyond; d = pred − y."""
    delta = huber_delta(delta)
    p, t = _pair(pred, y, HUBER)
    return jnp.mean(_huber(p - t, delta))


def huber_grad(pred: Array, y: Array, delta: float = 1.0) -> Array:
    """∂huber/∂pred = clip(pred − y, −delta, delta) / (n k), shaped like pred."""
    delta = huber_delta(delta)
    p, t = _pair(pred, y, HUBER)
    return (jnp.clip(p - t, -delta, delta) / p.size).reshape(jnp.shape(pred))


# --------------------------------------------------------------------------- binary focal cross-entropy
def focal_params(gamma, alpha) -> tuple[float, float | None]:
    """(gamma >= 0, alpha None or in [0, 1]) checked."""
    gamma = _validate.real(gamma, "binary_focal gamma", low=0)
    return gamma, None if alpha is None else _validate.real(alpha, "binary_focal alpha", low=0, high=1)


def _focal_parts(z: Array, t: Array, alpha: float | None):
    """CE = softplus(z) − t z, σ(z), σ(−z), q = 1 − p_t (the probability of the wrong answer) and the class weight."""
    s, s_bar = jax.nn.sigmoid(z), jax.nn.sigmoid(-z)
    q = t * s_bar + (1 - t) * s
    w = jnp.ones_like(z) if alpha is None else alpha * t + (1 - alpha) * (1 - t)
    return jnp.logaddexp(0.0, z) - t * z, s, s_bar, q, w


def _focal(z: Array, t: Array, gamma: float, alpha: float | None) -> Array:
    ce, _, _, q, w = _focal_parts(z, t, alpha)
    return w * q**gamma * ce


def _focal_dz(z: Array, t: Array, gamma: float, alpha: float | None) -> Array:
    ce, s, s_bar, q, w = _focal_parts(z, t, alpha)
    # ∂q/∂z = (1 − 2t) σ(z) σ(−z); γ q^(γ−1) is 0 where q = 0 (a sure right answer), never inf·0 for γ < 1
    slope = jnp.where(q > 0, gamma * jnp.where(q > 0, q, 1.0) ** (gamma - 1), 0.0)
    return w * (slope * (1 - 2 * t) * s * s_bar * ce + q**gamma * (s - t))


def sigmoid_binary_focal_cross_entropy(logits: Array, y: Array, gamma: float = 2.0, alpha: float | None = None):
    """mean(w (1 − p_t)^γ CE) from the logits z (Lin et al. 2017; Keras' binary_focal_crossentropy).

    CE = softplus(z) − y z is binary cross-entropy on σ(z), exact for any z; 1 − p_t = y σ(−z) + (1 − y) σ(z)
    down-weights the samples already right, so the rare class's mistakes dominate. alpha: None (no class
    weight, Keras' default) or in [0, 1]: w = alpha for y = 1, 1 − alpha for y = 0. gamma = 0 is binary CE.
    """
    gamma, alpha = focal_params(gamma, alpha)
    z, t = _pair(logits, y, BINARY_FOCAL)
    return jnp.mean(_focal(z, t, gamma, alpha))


def sigmoid_binary_focal_cross_entropy_grad(logits: Array, y: Array, gamma: float = 2.0, alpha: float | None = None):
    """∂/∂z = w [γ q^(γ−1) (1 − 2y) σ(z) σ(−z) CE + q^γ (σ(z) − y)] / (n k), q = 1 − p_t."""
    gamma, alpha = focal_params(gamma, alpha)
    z, t = _pair(logits, y, BINARY_FOCAL)
    return (_focal_dz(z, t, gamma, alpha) / z.size).reshape(jnp.shape(logits))


# --------------------------------------------------------------------------- per sample
def mae_per_sample(pred: Array, t: Array) -> Array:
    """(n,): mean over components of |pred − t|."""
    return jnp.mean(_abs(pred - t), axis=-1)


def huber_per_sample(pred: Array, t: Array, delta: float = 1.0) -> Array:
    """(n,): mean over components of the Huber loss of pred − t."""
    return jnp.mean(_huber(pred - t, delta), axis=-1)


def sigmoid_binary_focal_cross_entropy_per_sample(logits: Array, t: Array, gamma: float = 2.0, alpha=None):
    """(n,): mean over components of w (1 − p_t)^γ CE."""
    return jnp.mean(_focal(logits, t, gamma, alpha), axis=-1)
