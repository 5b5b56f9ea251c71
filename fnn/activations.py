"""Activations, each beside its hand-written derivative.

Elementwise activations have `*_deriv(z)`, the elementwise f'(z). Softmax is not elementwise:
it has `softmax_jacobian(z)` (..., k, k) and, like every activation, a `vjp(z, g)` that maps
∂L/∂f(z) to ∂L/∂z without building the Jacobian.

NaN in, NaN out, for every function here and its derivative: a NaN must never come out as a
plausible 0 or 1, or NaN params would give believable predictions.

`ACTIVATIONS` is the registry: one `Activation` record per name, which `get(name)` looks up
(Keras' and PyTorch's names are `ALIASES`). A user's activation is an `Activation(fn, deriv)` too,
accepted wherever a name is; a bare callable is accepted as `Activation(fn)`, without a derivative:
jax.grad (fit, fnn.objective) differentiates it, fnn.backprop refuses it naming the fix.
`Activation.check()` compares a derivative with central differences (fnn.gradcheck).

Records compare equal when their functions are the same objects (and hash so): a model is a static
argument of the compiled programs, so the same function gives the same program, and two different
lambdas never share one.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from fnn.errors import FnnTypeError, FnnValueError

__all__ = [
    "ACTIVATIONS",
    "ALIASES",
    "LEAKY_SLOPE",
    "RELU_FAMILY",
    "SELU_ALPHA",
    "SELU_SCALE",
    "Activation",
    "ActivationLike",
    "canonical",
    "canonical_name",
    "elu",
    "elu_deriv",
    "gelu",
    "gelu_deriv",
    "gelu_tanh",
    "gelu_tanh_deriv",
    "get",
    "hard_tanh",
    "hard_tanh_deriv",
    "leaky_relu",
    "leaky_relu_deriv",
    "linear",
    "linear_deriv",
    "mish",
    "mish_deriv",
    "relu",
    "relu_deriv",
    "selu",
    "selu_deriv",
    "sigmoid",
    "sigmoid_deriv",
    "softmax",
    "softmax_jacobian",
    "softmax_vjp",
    "softplus",
    "softplus_deriv",
    "swish",
    "swish_deriv",
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


SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017, as jax.nn.selu and Keras
SELU_SCALE = 1.0507009873554804934193349852946
_FLAT = 40.0  # past |z| = 40, φ(z) and σ(−2u(z)) are 0 even in float64: the terms they scale use z clipped here


def _zero_at_minus_inf(z: Array, value: Array) -> Array:
    """`value`, except 0 at z = −inf, where z·(a factor that is 0 there) would be −inf·0 = NaN."""
    return jnp.where(z == -jnp.inf, jnp.zeros_like(z), value)


def _limits(z: Array, value: Array, low: float, high: float) -> Array:
    """`value`, except `low` at z = −inf and `high` at +inf, where its formula would give inf·0 = NaN."""
    return jnp.where(z == -jnp.inf, jnp.full_like(z, low), jnp.where(z == jnp.inf, jnp.full_like(z, high), value))


def _normal_cdf(z: Array) -> Array:
    # erfc, not 1 + erf: Φ keeps its relative precision deep in the left tail (Φ(−30) = 4.9e-198)
    return 0.5 * jax.scipy.special.erfc(-z / math.sqrt(2.0))


def gelu(z: Array) -> Array:
    """z Φ(z), Φ the standard normal CDF (the exact form: Keras' "gelu", torch's GELU()), elementwise.

    jax.nn.gelu defaults to the tanh approximation, which is "gelu_tanh" here."""
    return _zero_at_minus_inf(z, z * _normal_cdf(z))


def gelu_deriv(z: Array) -> Array:
    """Φ(z) + z φ(z), elementwise; φ the standard normal density."""
    c = jnp.clip(z, -_FLAT, _FLAT)
    return _normal_cdf(z) + c * jnp.exp(-0.5 * c * c) / math.sqrt(2 * math.pi)


_GELU_C = math.sqrt(2 / math.pi)


def _gelu_u(z: Array) -> Array:
    return _GELU_C * (z + 0.044715 * z**3)


def gelu_tanh(z: Array) -> Array:
    """z (1 + tanh(u)) / 2, u = √(2/π)(z + 0.044715 z³): GELU's tanh approximation (jax.nn.gelu's
    default, torch's GELU(approximate="tanh")), computed as z σ(2u), exact in both tails."""
    return _zero_at_minus_inf(z, z * jax.nn.sigmoid(2 * _gelu_u(z)))


def gelu_tanh_deriv(z: Array) -> Array:
    """σ(2u) + 2 z σ(2u) σ(−2u) u′(z), u′ = √(2/π)(1 + 3·0.044715 z²), elementwise."""
    c = jnp.clip(z, -_FLAT, _FLAT)  # z³ overflows for huge z, where this term is 0 anyway
    u = _gelu_u(c)
    du = _GELU_C * (1 + 3 * 0.044715 * c * c)
    return jax.nn.sigmoid(2 * _gelu_u(z)) + 2 * c * jax.nn.sigmoid(2 * u) * jax.nn.sigmoid(-2 * u) * du


def _nonpositive(z: Array) -> Array:
    # where, not minimum: jax.grad of minimum(z, 0) is ½ at 0; the exp of a large positive z would overflow
    return jnp.where(z > 0, jnp.zeros_like(z), z)


def elu(z: Array) -> Array:
    """z for z > 0, exp(z) − 1 below (α = 1: Keras' and torch's default), elementwise."""
    return jnp.where(z > 0, z, jnp.expm1(_nonpositive(z)))


def elu_deriv(z: Array) -> Array:
    """1 for z > 0, exp(z) below; 1 from both sides at 0."""
    return _nan_through(z, jnp.where(z > 0, jnp.ones_like(z), jnp.exp(_nonpositive(z))))


def selu(z: Array) -> Array:
    """λ z for z > 0, λ α (exp(z) − 1) below, λ = SELU_SCALE, α = SELU_ALPHA (jax.nn.selu), elementwise."""
    return SELU_SCALE * jnp.where(z > 0, z, SELU_ALPHA * jnp.expm1(_nonpositive(z)))


def selu_deriv(z: Array) -> Array:
    """λ for z > 0, λ α exp(z) for z <= 0; λ α at 0, matching jax.grad(jax.nn.selu)."""
    return _nan_through(z, SELU_SCALE * jnp.where(z > 0, jnp.ones_like(z), SELU_ALPHA * jnp.exp(_nonpositive(z))))


def softplus(z: Array) -> Array:
    """log(1 + exp(z)), elementwise, as logaddexp(z, 0): no overflow for any z, exact in both tails."""
    return jnp.logaddexp(z, 0.0)


def softplus_deriv(z: Array) -> Array:
    """σ(z), elementwise."""
    return jax.nn.sigmoid(z)


def swish(z: Array) -> Array:
    """z σ(z) (also "silu"; Keras' and torch's SiLU), elementwise."""
    return _zero_at_minus_inf(z, z * jax.nn.sigmoid(z))


def swish_deriv(z: Array) -> Array:
    """σ(z) (1 + z σ(−z)), elementwise; σ(−z), not 1 − σ(z), so that nothing cancels for large z."""
    return _limits(z, jax.nn.sigmoid(z) * (1 + z * jax.nn.sigmoid(-z)), 0.0, 1.0)


def mish(z: Array) -> Array:
    """z tanh(softplus(z)) (Misra 2019), elementwise."""
    return _zero_at_minus_inf(z, z * jnp.tanh(softplus(z)))


def mish_deriv(z: Array) -> Array:
    """tanh(s) + z sech²(s) σ(z), s = softplus(z), elementwise."""
    s = softplus(z)
    e = jnp.exp(-2 * s)  # s >= 0, so e is in (0, 1]: sech² s = 4e / (1 + e)², without 1 − tanh² s cancelling
    return _limits(z, jnp.tanh(s) + z * (4 * e / (1 + e) ** 2) * jax.nn.sigmoid(z), 0.0, 1.0)


def hard_tanh(z: Array) -> Array:
    """z clipped to [−1, 1] (jax.nn.hard_tanh, torch's Hardtanh), elementwise; NaN in, NaN out."""
    one = jnp.ones_like(z)
    return jnp.where(z > 1, one, jnp.where(z < -1, -one, z))


def hard_tanh_deriv(z: Array) -> Array:
    """1 on [−1, 1], 0 outside; 1 at ±1, matching jax.grad(jax.nn.hard_tanh)."""
    return _nan_through(z, (jnp.abs(z) <= 1).astype(z.dtype))


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


@dataclasses.dataclass(frozen=True, repr=False)
class Activation:
    """An activation beside its derivative: `fnn.Activation(fn, deriv)`, accepted wherever a name is.

    fn: z -> f(z), (..., k) -> (..., k). deriv: the elementwise f′(z), or None: then jax.grad
    differentiates fn (fit, fnn.objective) and fnn.backprop refuses the layer. name: fn's __name__
    by default. backward: (z, g = ∂L/∂f(z)) -> ∂L/∂z; by default g · deriv(z). elementwise=False is
    for an activation that mixes a row (softmax, whose `deriv` is its Jacobian); it needs `backward`.

    Equal (and equal-hashing) exactly when the functions are the same objects: the same function
    reuses a compiled program, two lambdas never share one.

    Example:
        >>> cube = fnn.Activation(lambda z: z**3, lambda z: 3 * z**2, name="cube")
        >>> fnn.Dense(4, activation=cube).activation
        Activation(name='cube')
        >>> cube.check().ok  # deriv against central differences of fn (fnn.gradcheck)
        True
    """

    fn: Callable[[Array], Array]
    deriv: Callable[[Array], Array] | None = None
    name: str = ""
    backward: Callable[[Array, Array], Array] | None = None
    elementwise: bool = True

    def __post_init__(self):
        if not callable(self.fn):
            raise FnnTypeError(
                f"Activation fn must be callable (z -> f(z)), got {type(self.fn).__name__} {self.fn!r:.40}"
            )
        for field in ("deriv", "backward"):
            value = getattr(self, field)
            if value is not None and not callable(value):
                raise FnnTypeError(
                    f"Activation {field} must be callable or None, got {type(value).__name__} {value!r:.40}; "
                    "pass the derivative as a function, e.g. fnn.Activation(jnp.sin, jnp.cos)"
                )
        if not isinstance(self.name, str):
            raise FnnTypeError(f"Activation name must be a str, got {type(self.name).__name__} {self.name!r:.40}")
        if not isinstance(self.elementwise, bool):
            raise FnnTypeError(f"Activation elementwise must be True or False, got {self.elementwise!r:.40}")
        if not self.elementwise and self.backward is None and self.deriv is not None:
            raise FnnValueError(
                "an Activation that is not elementwise needs backward=(z, g) -> ∂L/∂z: g · deriv(z) "
                "is its chain rule only elementwise"
            )
        if not self.name:
            object.__setattr__(self, "name", getattr(self.fn, "__name__", type(self.fn).__name__))

    def __repr__(self) -> str:
        return (
            f"Activation(name={self.name!r})" if self.has_derivative else f"Activation(name={self.name!r}, deriv=None)"
        )

    def __str__(self) -> str:
        return self.name

    @property
    def has_derivative(self) -> bool:
        """Can fnn.backprop run through it (a deriv or a backward was given)?"""
        return self.deriv is not None or self.backward is not None

    def vjp(self, z: Array, g: Array) -> Array:
        """∂L/∂z from g = ∂L/∂f(z), (..., k) -> (..., k), without building a Jacobian."""
        if self.backward is not None:
            return self.backward(z, g)
        if self.deriv is None:
            raise FnnValueError(
                f"activation {self.name!r} has no derivative, so the hand-written chain rule cannot pass "
                "through it; give one, fnn.Activation(f, df), or differentiate with jax.grad"
            )
        return g * self.deriv(z)

    def check(self, z=None, tolerance: float | None = None):
        """fnn.gradcheck of the derivative against central differences of fn at points z.

        z: default a grid from −4 to 4 through the kinks 0 and ±1, and ±30. It checks vjp(z, r)
        against the gradient of Σ r·fn(z) for fixed random r, so a row-mixing backward is checked
        too. Returns the fnn.numerical.GradCheck (its .ok, .max_relative_error).
        """
        from fnn import numerical  # imports fnn.activations' neighbours, not this module: no cycle at import

        if not self.has_derivative:
            raise FnnValueError(f"activation {self.name!r} has no derivative to check; pass one: fnn.Activation(f, df)")
        if z is None:
            z = np.concatenate([np.linspace(-4.0, 4.0, 17), [-30.0, 30.0]])
        z = jnp.asarray(z)
        r = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, size=z.shape), z.dtype)
        return numerical.gradcheck(
            lambda p: jnp.sum(r * self.fn(p)), z, grad_fn=lambda p: self.vjp(p, r), tolerance=tolerance
        )


ActivationLike = str | Activation  # what a model holds per layer: a registry name, or a user's Activation

ACTIVATIONS: dict[str, Activation] = {
    name: Activation(fn, deriv, name)
    for name, fn, deriv in [
        ("linear", linear, linear_deriv),
        ("relu", relu, relu_deriv),
        ("leaky_relu", leaky_relu, leaky_relu_deriv),
        ("sigmoid", sigmoid, sigmoid_deriv),
        ("tanh", tanh, tanh_deriv),
        ("gelu", gelu, gelu_deriv),
        ("gelu_tanh", gelu_tanh, gelu_tanh_deriv),
        ("elu", elu, elu_deriv),
        ("selu", selu, selu_deriv),
        ("softplus", softplus, softplus_deriv),
        ("swish", swish, swish_deriv),
        ("mish", mish, mish_deriv),
        ("hard_tanh", hard_tanh, hard_tanh_deriv),
    ]
}
ACTIVATIONS["softmax"] = Activation(softmax, softmax_jacobian, "softmax", softmax_vjp, elementwise=False)

ALIASES = {  # Keras' and PyTorch's names for the same functions
    "silu": "swish",
    "hardtanh": "hard_tanh",
    "gelu_approximate": "gelu_tanh",
    "identity": "linear",
}

RELU_FAMILY = frozenset({"relu", "leaky_relu"})

_CALLABLE_HINT = "or a callable z -> f(z) (fnn.Activation(f, df) for fnn.backprop)"


def canonical_name(name: str | None) -> str:
    """The registry name of an activation: None is "linear", aliases map to their entry, unknown names are refused."""
    if name is None:
        return "linear"
    if not isinstance(name, str):
        raise FnnTypeError(
            f"activation must be a name (str) or None, got {type(name).__name__} {name!r:.60}; "
            f"choose one of {sorted(ACTIVATIONS)}, {_CALLABLE_HINT}"
        )
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        raise FnnValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)} or None, {_CALLABLE_HINT}"
        )
    return key


def canonical(activation) -> ActivationLike:
    """What a layer keeps: the registry name for a name, None, a registry record or function; a user's
    Activation as it is; any other callable as Activation(fn), without a derivative."""
    if activation is None or isinstance(activation, str):
        return canonical_name(activation)
    if isinstance(activation, Activation):
        return next((name for name, act in ACTIVATIONS.items() if act == activation), activation)
    known = next((name for name, act in ACTIVATIONS.items() if act.fn is activation), None)
    if known is not None:  # fnn.activations.tanh itself: its registry entry, derivative included
        return known
    if callable(activation):
        return Activation(typing.cast(Callable[[Array], Array], activation))
    return canonical_name(activation)


def get(activation) -> Activation:
    """The Activation for a name (None is "linear"), a user's Activation, or a callable."""
    key = canonical(activation)
    return key if isinstance(key, Activation) else ACTIVATIONS[key]
