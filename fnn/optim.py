"""Optimizers written out, as (init, update) pairs over parameter pytrees.

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)        # θ ← θ + Δθ

`update` returns the step Δθ, never new params; all memory lives in the state. Learning rates
take a number or a schedule (step -> rate). Transforms (clip_by_global_norm, add_weight_decay)
have the same shape and compose with `chain`. Optimizers built with the same hyperparameters
compare equal, so `fnn.fit` reuses its compiled program across calls.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from fnn import _validate
from fnn.errors import FnnTypeError, FnnValueError

Array = jax.Array
Params = Any
State = Any
Schedule = Callable[[Array], Array]


class _Bound:
    """fn with keyword hyperparameters bound; equal by value so jit caches on it (unlike closures)."""

    __slots__ = ("fn", "kwargs", "__weakref__")

    def __init__(self, fn, **kwargs):
        self.fn = fn
        self.kwargs = tuple(sorted(kwargs.items()))

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **dict(self.kwargs), **kwargs)

    def __eq__(self, other):
        return type(other) is _Bound and self.fn is other.fn and self.kwargs == other.kwargs

    def __hash__(self):
        return hash((self.fn, self.kwargs))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs)
        return f"{self.fn.__name__.lstrip('_')}({args})"


class Optimizer(NamedTuple):
    """Two pure functions: gradients in, updates out (never params); all memory in the state."""

    init: Callable[[Params], State]
    update: Callable[..., tuple[Params, State]]  # (grads, state, params=None) -> (updates, state)


# --------------------------------------------------------------------------- schedules
def _constant(step, value):
    del step
    return value  # a Python float stays weakly typed: the params' dtype decides the precision


def _exponential(step, init_value, decay_rate, transition_steps, staircase, end_value):
    t = step / transition_steps
    if staircase:
        t = jnp.floor(t)
    rate = init_value * decay_rate ** t
    if end_value is not None:
        rate = jnp.maximum(rate, end_value) if decay_rate < 1 else jnp.minimum(rate, end_value)
    return rate


def _cosine(step, init_value, decay_steps, alpha):
    t = jnp.minimum(step, decay_steps) / decay_steps
    return init_value * ((1 - alpha) * 0.5 * (1 + jnp.cos(math.pi * t)) + alpha)


def constant(value: float) -> Schedule:
    """step -> value."""
    return _Bound(_constant, value=_validate.real(value, "learning_rate", low=0, low_open=True))


def exponential_decay(init_value: float, decay_rate: float, transition_steps: int = 1,
                      staircase: bool = False, end_value: float | None = None) -> Schedule:
    """step -> init_value · decay_rate^(step / transition_steps), floored at end_value if given."""
    init_value = _validate.real(init_value, "init_value", low=0, low_open=True)
    decay_rate = _validate.real(decay_rate, "decay_rate", low=0, low_open=True)
    transition_steps = _validate.integer(transition_steps, "transition_steps", minimum=1)
    if end_value is not None:
        end_value = _validate.real(end_value, "end_value", low=0)
    return _Bound(_exponential, init_value=init_value, decay_rate=decay_rate,
                  transition_steps=transition_steps, staircase=bool(staircase), end_value=end_value)


def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    """step -> init_value · ((1 − alpha) · ½(1 + cos(π · min(step, decay_steps) / decay_steps)) + alpha)."""
    init_value = _validate.real(init_value, "init_value", low=0, low_open=True)
    decay_steps = _validate.integer(decay_steps, "decay_steps", minimum=1)
    alpha = _validate.real(alpha, "alpha", low=0, high=1)
    return _Bound(_cosine, init_value=init_value, decay_steps=decay_steps, alpha=alpha)


def _rate(schedule, count):
    return schedule(count)


# --------------------------------------------------------------------------- optimizers
class SgdState(NamedTuple):
    count: Array  # steps taken, int32 ()


class MomentumState(NamedTuple):
    count: Array
    velocity: Params  # Δθ, shaped like the params


class AdamState(NamedTuple):
    count: Array
    mu: Params  # first moment, shaped like the params
    nu: Params  # second moment


def _zeros(params):
    return jax.tree.map(jnp.zeros_like, params)


def _count0():
    return jnp.zeros((), jnp.int32)


def _scale(tree, factor):
    return jax.tree.map(lambda t: (factor * t).astype(t.dtype), tree)


def _sgd_init(params):
    return SgdState(_count0())


def _sgd_update(grads, state, params=None, *, schedule):
    lr = _rate(schedule, state.count)
    return _scale(grads, -lr), SgdState(state.count + 1)


def sgd(learning_rate: float | Schedule) -> Optimizer:
    """Δθ = −η ∇L.

    Example:
        >>> opt = fnn.optim.sgd(0.1)
    """
    return Optimizer(_Bound(_sgd_init), _Bound(_sgd_update, schedule=_learning_rate(learning_rate)))


def _momentum_init(params):
    return MomentumState(_count0(), _zeros(params))


def _momentum_update(grads, state, params=None, *, schedule, beta, nesterov):
    lr = _rate(schedule, state.count)
    velocity = jax.tree.map(lambda v, g: (beta * v - lr * g).astype(v.dtype), state.velocity, grads)
    if nesterov:  # look ahead: step along the new velocity once more, from the current gradient
        updates = jax.tree.map(lambda v, g: (beta * v - lr * g).astype(v.dtype), velocity, grads)
    else:
        updates = velocity
    return updates, MomentumState(state.count + 1, velocity)


def momentum(learning_rate: float | Schedule, momentum: float = 0.9) -> Optimizer:
    """Δθ ← α Δθ − η ∇L, then θ ← θ + Δθ (α = momentum; α = 0 is plain SGD).

    Example:
        >>> opt = fnn.optim.momentum(learning_rate=0.1, momentum=0.9)
    """
    return _heavy_ball(learning_rate, momentum, nesterov=False)


def nesterov(learning_rate: float | Schedule, momentum: float = 0.9) -> Optimizer:
    """v ← α v − η ∇L;  Δθ = α v − η ∇L (Nesterov's look-ahead, in the Sutskever form).

    Example:
        >>> opt = fnn.optim.nesterov(learning_rate=0.1, momentum=0.9)
    """
    return _heavy_ball(learning_rate, momentum, nesterov=True)


def _heavy_ball(learning_rate, momentum, nesterov: bool) -> Optimizer:
    beta = _validate.real(momentum, "momentum", low=0, high=1, high_open=True)
    return Optimizer(_Bound(_momentum_init), _Bound(_momentum_update, schedule=_learning_rate(learning_rate),
                                                    beta=beta, nesterov=nesterov))


def _adam_init(params):
    return AdamState(_count0(), _zeros(params), _zeros(params))


def _adam_update(grads, state, params=None, *, schedule, b1, b2, eps):
    count = state.count + 1
    lr = _rate(schedule, state.count)
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)

    def step(m, v):
        # bias corrections for the zero start, in the params' dtype: an int32 count would promote
        # to float64 under jax_enable_x64, and float32 runs would then depend on that flag
        t = count.astype(m.dtype)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        return (-lr * (m / c1) / (jnp.sqrt(v / c2) + eps)).astype(m.dtype)

    updates = jax.tree.map(step, mu, nu)
    return updates, AdamState(count, mu, nu)


def adam(learning_rate: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;  Δθ = −η m̂ / (√v̂ + ε), m̂ = m/(1 − β1ᵗ), v̂ = v/(1 − β2ᵗ).

    Example:
        >>> opt = fnn.optim.adam(1e-3)
    """
    b1 = _validate.real(b1, "b1", low=0, high=1, high_open=True)
    b2 = _validate.real(b2, "b2", low=0, high=1, high_open=True)
    eps = _validate.real(eps, "eps", low=0, low_open=True)
    return Optimizer(_Bound(_adam_init), _Bound(_adam_update, schedule=_learning_rate(learning_rate),
                                                b1=b1, b2=b2, eps=eps))


def _learning_rate(learning_rate) -> Schedule:
    if callable(learning_rate):
        return learning_rate
    return constant(_validate.real(learning_rate, "learning_rate", low=0, low_open=True))


# --------------------------------------------------------------------------- transforms
class EmptyState(NamedTuple):
    pass


def _empty_init(params):
    return EmptyState()


def global_norm(tree) -> Array:
    """sqrt(Σ over every leaf of Σ x²)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def _clip_update(grads, state, params=None, *, max_norm):
    norm = global_norm(grads)
    factor = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-30))
    return _scale(grads, factor), state


def clip_by_global_norm(max_norm: float) -> Optimizer:
    """g ← g · min(1, max_norm / ‖g‖), ‖g‖ over the whole tree. Chain it before an optimizer."""
    max_norm = _validate.real(max_norm, "max_norm", low=0, low_open=True)
    return Optimizer(_Bound(_empty_init), _Bound(_clip_update, max_norm=max_norm))


def _decay_update(grads, state, params=None, *, rate):
    if params is None:
        raise FnnValueError("add_weight_decay needs the params: call update(grads, state, params)")
    return jax.tree.map(lambda g, p: g + rate * p, grads, params), state


def add_weight_decay(rate: float) -> Optimizer:
    """g ← g + rate · θ for every parameter (L2 decay, as PyTorch's weight_decay). Chain it before
    an optimizer; before adam it is L2, not AdamW's decoupled decay."""
    rate = _validate.real(rate, "weight decay rate", low=0)
    return Optimizer(_Bound(_empty_init), _Bound(_decay_update, rate=rate))


class ChainState(NamedTuple):
    states: tuple


def _chain_init(params, *, parts):
    return ChainState(tuple(p.init(params) for p in parts))


def _chain_update(grads, state, params=None, *, parts):
    states = []
    for part, s in zip(parts, state.states):
        grads, s = part.update(grads, s, params)
        states.append(s)
    return grads, ChainState(tuple(states))


def chain(*parts: Optimizer) -> Optimizer:
    """Apply transforms left to right, e.g. chain(clip_by_global_norm(1.0), momentum(0.1)).

    Example:
        >>> opt = fnn.optim.chain(fnn.optim.add_weight_decay(1e-4), fnn.optim.adam(1e-3))
    """
    if not parts:
        raise FnnValueError("chain needs at least one optimizer or transform")
    for i, p in enumerate(parts):
        check_optimizer(p, f"chain part {i}")
    return Optimizer(_Bound(_chain_init, parts=tuple(parts)), _Bound(_chain_update, parts=tuple(parts)))


def check_optimizer(opt, name: str = "optimizer") -> Optimizer:
    """Refuse anything that is not an (init, update) pair."""
    if not (isinstance(opt, tuple) and len(opt) == 2 and callable(opt[0]) and callable(opt[1])):
        raise FnnTypeError(f"{name} must be an fnn.optim.Optimizer (init, update), e.g. "
                           f"fnn.optim.momentum(learning_rate=0.1), got {type(opt).__name__}")
    return Optimizer(*opt)


def apply_updates(params: Params, updates: Params) -> Params:
    """θ + Δθ leaf by leaf, keeping each leaf's dtype; returns a new tree."""
    return jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates)
