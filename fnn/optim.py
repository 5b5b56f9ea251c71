"""Optimizers written out, as (init, update) pairs over parameter pytrees.

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)        # θ ← θ + Δθ

`update` returns the step Δθ, never new params; all memory lives in the state — and so do the
numbers: an optimizer's hyperparameters (learning rate, momentum, betas, eps, clip norm, decay
rate, a schedule's parameters) are arrays in its state, in the params' dtype, as optax's
`inject_hyperparams` keeps them. `update` is a function of the optimizer's kind alone, so
`adam(1e-3)` and `adam(3e-2)` have equal `update`s and `fnn.fit` runs both with one compiled
program. Learning rates take a number or a schedule (step -> rate). Transforms
(clip_by_global_norm, add_weight_decay) have the same shape and compose with `chain`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _adaptive, _trajectory, _validate
from fnn._adaptive import AdagradState, AdamWState, LionState, RmspropState, adagrad, adamw, lion, rmsprop
from fnn._hyper import hyperparameters, learning_rate, set_hyperparameters, with_hyperparameters_of
from fnn.errors import FnnTypeError, FnnValueError
from fnn.schedules import Bound, Schedule, constant, cosine_decay, exponential_decay
from fnn.schedules import parts as _learning_rate

__all__ = [
    "OPTIMIZERS",
    "AdagradState",
    "AdamState",
    "AdamWState",
    "Bound",
    "ChainState",
    "LionState",
    "MasterState",
    "MomentumState",
    "Optimizer",
    "Params",
    "RmspropState",
    "Schedule",
    "SgdState",
    "State",
    "TransformState",
    "adagrad",
    "adam",
    "adamw",
    "add_weight_decay",
    "apply_step",
    "apply_updates",
    "chain",
    "check_optimizer",
    "clip_by_global_norm",
    "constant",
    "cosine_decay",
    "dtype_of",
    "exponential_decay",
    "get",
    "global_norm",
    "hyperparameters",
    "init_state",
    "is_elementwise",
    "learning_rate",
    "lion",
    "momentum",
    "nesterov",
    "rmsprop",
    "set_hyperparameters",
    "sgd",
    "trajectory",
    "with_hyperparameters_of",
]

from fnn._optim_state import Array, Optimizer, Params, State
from fnn._optim_state import count0 as _count0
from fnn._optim_state import dtype_of as _dtype_of
from fnn._optim_state import frozen as _frozen
from fnn._optim_state import hyper as _hyper
from fnn._optim_state import scale as _scale
from fnn._optim_state import wide as _wide
from fnn._optim_state import zeros as _zeros


# --------------------------------------------------------------------------- optimizers
# `count` shadows tuple.count, as in optax's states; it stays: it names a leaf of saved checkpoints.
# A fresh state's count is a host array (nothing to compile), a stepped one a jax array.
class SgdState(NamedTuple):
    count: Array | np.ndarray  # pyright: ignore[reportIncompatibleMethodOverride]  # steps taken, int32 ()
    hyper: dict  # learning_rate


class MomentumState(NamedTuple):
    count: Array | np.ndarray  # pyright: ignore[reportIncompatibleMethodOverride]
    velocity: Params  # Δθ, shaped like the params
    hyper: dict  # learning_rate, momentum


class AdamState(NamedTuple):
    count: Array | np.ndarray  # pyright: ignore[reportIncompatibleMethodOverride]
    mu: Params  # first moment, shaped like the params
    nu: Params  # second moment
    hyper: dict  # learning_rate, b1, b2, eps


def _sgd_init(params, *, hyper):
    return SgdState(_count0(), _hyper(params, hyper))


def _sgd_update(grads, state, params=None, *, schedule):
    lr = schedule(state.count, **state.hyper["learning_rate"])
    return _scale(grads, -lr), SgdState(state.count + 1, state.hyper)


def _optimizer(init, update, numbers: dict, **options) -> Optimizer:
    """An fnn optimizer: init binds the numbers (stored in the state), update only the kind."""
    return Optimizer(Bound(init, hyper=tuple(sorted(_frozen(**numbers).items()))), Bound(update, **options))


def sgd(learning_rate: float | Schedule = 0.01) -> Optimizer:
    """Δθ = −η ∇L.

    Example:
        >>> opt = fnn.optim.sgd(0.1)
    """
    kind, lr = _learning_rate(learning_rate)
    return _optimizer(_sgd_init, _sgd_update, dict(learning_rate=lr), schedule=kind)


def _momentum_init(params, *, hyper):
    return MomentumState(_count0(), _zeros(params), _hyper(params, hyper))


def _momentum_update(grads, state, params=None, *, schedule, nesterov):
    hyper = state.hyper
    lr, beta = schedule(state.count, **hyper["learning_rate"]), hyper["momentum"]
    velocity = jax.tree.map(lambda v, g: (beta * v - lr * g).astype(v.dtype), state.velocity, grads)
    if nesterov:  # look ahead: step along the new velocity once more, from the current gradient
        updates = jax.tree.map(lambda v, g: (beta * v - lr * g).astype(g.dtype), velocity, grads)
    else:  # in the gradients' dtype: the velocity of half-precision params is float32
        updates = jax.tree.map(lambda v, g: v.astype(g.dtype), velocity, grads)
    return updates, MomentumState(state.count + 1, velocity, hyper)


def momentum(learning_rate: float | Schedule = 0.01, momentum: float = 0.9) -> Optimizer:
    """Δθ ← α Δθ − η ∇L, then θ ← θ + Δθ (α = momentum; α = 0 is plain SGD).

    Example:
        >>> opt = fnn.optim.momentum(learning_rate=0.1, momentum=0.9)
    """
    return _heavy_ball(learning_rate, momentum, nesterov=False)


def nesterov(learning_rate: float | Schedule = 0.01, momentum: float = 0.9) -> Optimizer:
    """v ← α v − η ∇L;  Δθ = α v − η ∇L (Nesterov's look-ahead, in the Sutskever form).

    Example:
        >>> opt = fnn.optim.nesterov(learning_rate=0.1, momentum=0.9)
    """
    return _heavy_ball(learning_rate, momentum, nesterov=True)


def _heavy_ball(learning_rate, momentum, nesterov: bool) -> Optimizer:
    beta = _validate.real(momentum, "momentum", low=0, high=1, high_open=True)
    kind, lr = _learning_rate(learning_rate)
    return _optimizer(
        _momentum_init, _momentum_update, dict(learning_rate=lr, momentum=beta), schedule=kind, nesterov=nesterov
    )


def _adam_init(params, *, hyper):
    return AdamState(_count0(), _zeros(params), _zeros(params), _hyper(params, hyper))


def _adam_update(grads, state, params=None, *, schedule):
    hyper = state.hyper
    b1, b2, eps = hyper["b1"], hyper["b2"], hyper["eps"]
    count = state.count + 1
    lr = schedule(state.count, **hyper["learning_rate"])
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g.astype(m.dtype), state.mu, grads)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g.astype(v.dtype)), state.nu, grads)

    def step(m, v, g):
        # bias corrections for the zero start, in the moments' dtype: an int32 count would promote
        # to float64 under jax_enable_x64, and float32 runs would then depend on that flag
        t = count.astype(m.dtype)
        c1, c2 = 1 - b1**t, 1 - b2**t
        return (-lr * (m / c1) / (jnp.sqrt(v / c2) + eps)).astype(g.dtype)

    updates = jax.tree.map(step, mu, nu, grads)
    return updates, AdamState(count, mu, nu, hyper)


def adam(learning_rate: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;  Δθ = −η m̂ / (√v̂ + ε), m̂ = m/(1 − β1ᵗ), v̂ = v/(1 − β2ᵗ).

    Example:
        >>> opt = fnn.optim.adam(1e-3)
    """
    b1 = _validate.real(b1, "b1", low=0, high=1, high_open=True)
    b2 = _validate.real(b2, "b2", low=0, high=1, high_open=True)
    eps = _validate.real(eps, "eps", low=0, low_open=True)
    kind, lr = _learning_rate(learning_rate)
    return _optimizer(_adam_init, _adam_update, dict(learning_rate=lr, b1=b1, b2=b2, eps=eps), schedule=kind)


# --------------------------------------------------------------------------- transforms
class TransformState(NamedTuple):
    hyper: dict  # the transform's numbers


def _transform_init(params, *, hyper):
    return TransformState(_hyper(params, hyper))


def global_norm(tree) -> Array:
    """sqrt(Σ over every leaf of Σ x²), summed in float32 at least (a float16 sum of squares overflows at 65504)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(_wide(x.dtype)))) for x in jax.tree.leaves(tree)))


def _clip_update(grads, state, params=None):
    norm = global_norm(grads)
    factor = jnp.minimum(1.0, state.hyper["max_norm"] / jnp.maximum(norm, 1e-30))
    return _scale(grads, factor), state


def clip_by_global_norm(max_norm: float) -> Optimizer:
    """g ← g · min(1, max_norm / ‖g‖), ‖g‖ over the whole tree. Chain it before an optimizer."""
    max_norm = _validate.real(max_norm, "max_norm", low=0, low_open=True)
    return _optimizer(_transform_init, _clip_update, dict(max_norm=max_norm))


def _decay_update(grads, state, params=None):
    if params is None:
        raise FnnValueError("add_weight_decay needs the params: call update(grads, state, params)")
    rate = state.hyper["rate"]
    return jax.tree.map(lambda g, p: (g + rate * p).astype(g.dtype), grads, params), state


def add_weight_decay(rate: float) -> Optimizer:
    """g ← g + rate · θ for every parameter (L2 decay, as PyTorch's weight_decay). Chain it before
    an optimizer; before adam it is L2, not AdamW's decoupled decay."""
    rate = _validate.real(rate, "weight decay rate", low=0)
    return _optimizer(_transform_init, _decay_update, dict(rate=rate))


class ChainState(NamedTuple):
    states: tuple


def _chain_init(params, *, parts):
    return ChainState(tuple(p.init(params) for p in parts))


def _chain_update(grads, state, params=None, *, parts):
    states = []
    for part, s in zip(parts, state.states):
        grads, s = part(grads, s, params)
        states.append(s)
    return grads, ChainState(tuple(states))


def chain(*parts: Optimizer) -> Optimizer:
    """Apply transforms left to right, e.g. chain(clip_by_global_norm(1.0), momentum(0.1)).

    Example:
        >>> opt = fnn.optim.chain(fnn.optim.add_weight_decay(1e-4), fnn.optim.adam(1e-3))
    """
    if not parts:
        raise FnnValueError("chain needs at least one optimizer or transform")
    parts = tuple(check_optimizer(p, f"chain part {i}") for i, p in enumerate(parts))
    return Optimizer(
        Bound(_chain_init, parts=parts),
        Bound(_chain_update, parts=tuple(p.update for p in parts)),
    )


# --------------------------------------------------------------------------- by name, and checks
OPTIMIZERS = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adam": adam}


def get(name: str) -> Optimizer:
    """An optimizer by name with its usual defaults: sgd (0.01), momentum and nesterov (0.01, 0.9),
    adam (1e-3, 0.9, 0.999, 1e-8), as Keras' `optimizer="adam"`."""
    key = name.lower()
    if key not in OPTIMIZERS:
        raise FnnValueError(
            f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}, or pass "
            "fnn.optim.adam(learning_rate=...) and friends"
        )
    return OPTIMIZERS[key]()


def check_optimizer(opt, name: str = "optimizer") -> Optimizer:
    """An Optimizer from an optimizer name, an Optimizer, or a user's (init, update) pair."""
    if isinstance(opt, str):
        return get(opt)
    if isinstance(opt, Optimizer):
        return opt
    if not (isinstance(opt, tuple) and len(opt) == 2 and callable(opt[0]) and callable(opt[1])):
        raise FnnTypeError(
            f"{name} must be an fnn.optim.Optimizer (init, update) or a name such as 'adam', e.g. "
            f"fnn.optim.momentum(learning_rate=0.1), got {type(opt).__name__}"
        )
    return Optimizer(*opt)


def apply_updates(params: Params, updates: Params) -> Params:
    """θ + Δθ leaf by leaf, keeping each leaf's dtype; returns a new tree."""
    return jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates)


# --------------------------------------------------------------------------- half precision
class MasterState(NamedTuple):
    """A float32 copy of half-precision params beside the optimizer's own state (mixed precision:
    an update far below the params' spacing, 2⁻⁸ relative in bfloat16, is kept, not rounded away)."""

    master: Params
    inner: State


def _half(params) -> bool:
    return any(_wide(jnp.result_type(leaf)) != jnp.result_type(leaf) for leaf in jax.tree.leaves(params))


def init_state(opt: Optimizer, params: Params) -> State:
    """opt.init(params); for float16/bfloat16 params a MasterState whose float32 master copy the
    optimizer steps (its moments are float32 then too), as mixed-precision training does.

    Example:
        >>> state = fnn.optim.init_state(fnn.optim.adam(1e-3), params)
    """
    opt = check_optimizer(opt)
    if not _half(params):
        return opt.init(params)

    def wide(p):  # host params stay on the host (the caller transfers the whole state at once)
        return (np if isinstance(p, np.ndarray) else jnp).asarray(p, _wide(jnp.result_type(p)))

    master = jax.tree.map(wide, params)
    return MasterState(master, opt.init(master))


def apply_step(update, grads: Params, state: State, params: Params) -> tuple[Params, State]:
    """One optimizer step: (params + Δθ, new state), Δθ from update(grads, state, params); with a
    MasterState the step is taken on the float32 master copy and the params are its rounding."""
    if not isinstance(state, MasterState):
        updates, state = update(grads, state, params)
        return apply_updates(params, updates), state
    wide = jax.tree.map(lambda g, m: g.astype(m.dtype), grads, state.master)
    updates, inner = update(wide, state.inner, state.master)
    master = apply_updates(state.master, updates)
    return jax.tree.map(lambda m, p: m.astype(p.dtype), master, params), MasterState(master, inner)


# --------------------------------------------------------------------------- numbers of a state
dtype_of = _dtype_of


def is_elementwise(update) -> bool:
    """Does this update treat every parameter alike whatever leaf it sits in (element by element, or
    through whole-tree quantities such as the global norm)? fnn's own optimizers and transforms do,
    so the compiled run may hand them the params as one flat vector; any other update sees the tree."""
    if not isinstance(update, Bound):
        return False
    if update.fn is _chain_update:
        return all(is_elementwise(part) for part in dict(update.kwargs)["parts"])
    if update.fn in (_sgd_update, _momentum_update, _adam_update, _clip_update, _decay_update):
        return True
    return _adaptive.is_elementwise(update)


# --------------------------------------------------------------------------- a path through a function
def trajectory(optimizer, f: Callable[[Any], Any], start, steps: int) -> np.ndarray:
    """The points an optimizer visits minimising f: (steps + 1, d), row 0 the start (d,).

    θ ← θ + update(∇f(θ)) with ∇f from jax.grad, all steps one compiled lax.scan. f: (d,) -> scalar,
    in jax.numpy. The program is compiled once per optimizer kind, f, steps and start's shape: its
    numbers are values, so trajectory(sgd(0.1), f, ...) and trajectory(sgd(0.3), f, ...) share it.
    A run that diverges is not stopped: the rows from the first point where it or f is not finite
    on are NaN, and a RuntimeWarning names that step. A float16 or bfloat16 start runs in float32.

    Example:
        >>> bowl = lambda p: 0.5 * (p[..., 0] ** 2 + 10 * p[..., 1] ** 2)
        >>> path = fnn.optim.trajectory(fnn.optim.momentum(0.05, 0.9), bowl, [1.0, 1.0], steps=200)
        >>> path.shape, path[0].tolist()
        ((201, 2), [1.0, 1.0])
        >>> bool(abs(path[-1]).max() < 1e-3)
        True
    """
    return _trajectory.run(check_optimizer(optimizer), f, start, steps)


# --------------------------------------------------------------------------- adaptive optimizers
# adamw, rmsprop, adagrad and lion live in fnn/_adaptive.py; by name they run with Keras' default
# learning rate, 1e-3, and optax's other defaults.
OPTIMIZERS.update(adamw=adamw, rmsprop=rmsprop, adagrad=adagrad, lion=lion)
