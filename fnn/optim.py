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

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from fnn import _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = [
    "OPTIMIZERS",
    "AdamState",
    "Bound",
    "ChainState",
    "MomentumState",
    "Optimizer",
    "Params",
    "Schedule",
    "SgdState",
    "State",
    "TransformState",
    "adam",
    "add_weight_decay",
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
    "is_elementwise",
    "learning_rate",
    "momentum",
    "nesterov",
    "set_hyperparameters",
    "sgd",
    "with_hyperparameters_of",
]

Array = jax.Array
Params = Any
State = Any


class Bound:
    """fn with keyword options bound; equal by value (unlike a closure), so jit caches on it."""

    __slots__ = ("__weakref__", "fn", "kwargs")

    def __init__(self, fn, **kwargs):
        self.fn = fn
        self.kwargs = tuple(sorted(kwargs.items()))

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **dict(self.kwargs), **kwargs)

    def __eq__(self, other):
        return type(other) is Bound and self.fn is other.fn and self.kwargs == other.kwargs

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
class Schedule:
    """step -> rate: a formula (its kind) and its numbers. Called directly it uses its own numbers;
    inside an optimizer the numbers come from the optimizer's state (`at`), so a new number is no
    new program."""

    __slots__ = ("formula", "numbers", "options")

    def __init__(self, formula, numbers: dict, **options):
        self.formula = formula
        self.numbers = dict(numbers)
        self.options = tuple(sorted(options.items()))

    def __call__(self, step):
        return self.at(step, self.numbers)

    def at(self, step, numbers: dict):
        return self.formula(step, **numbers, **dict(self.options))

    @property
    def kind(self) -> Bound:
        return Bound(self.formula, **dict(self.options))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in list(self.numbers.items()) + list(self.options))
        return f"{self.formula.__name__.lstrip('_')}({args})"


def _constant(step, value):
    del step
    return value


def _exponential(step, init_value, decay_rate, transition_steps, end_value=None, *, staircase, floored):
    t = step / transition_steps
    if staircase:
        t = jnp.floor(t)
    rate = init_value * decay_rate**t
    if floored:
        assert end_value is not None  # exponential_decay floors exactly when it was given an end_value
        rate = jnp.where(decay_rate < 1, jnp.maximum(rate, end_value), jnp.minimum(rate, end_value))
    return rate


def _cosine(step, init_value, decay_steps, alpha):
    t = jnp.minimum(step, decay_steps) / decay_steps
    return init_value * ((1 - alpha) * 0.5 * (1 + jnp.cos(math.pi * t)) + alpha)


def constant(value: float) -> Schedule:
    """step -> value."""
    return Schedule(_constant, dict(value=_validate.real(value, "learning_rate", low=0, low_open=True)))


def exponential_decay(
    init_value: float,
    decay_rate: float,
    transition_steps: int = 1,
    staircase: bool = False,
    end_value: float | None = None,
) -> Schedule:
    """step -> init_value · decay_rate^(step / transition_steps), floored at end_value if given."""
    numbers = dict(
        init_value=_validate.real(init_value, "init_value", low=0, low_open=True),
        decay_rate=_validate.real(decay_rate, "decay_rate", low=0, low_open=True),
        transition_steps=_validate.integer(transition_steps, "transition_steps", minimum=1),
    )
    if end_value is not None:
        numbers["end_value"] = _validate.real(end_value, "end_value", low=0)
    return Schedule(_exponential, numbers, staircase=bool(staircase), floored=end_value is not None)


def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    """step -> init_value · ((1 − alpha) · ½(1 + cos(π · min(step, decay_steps) / decay_steps)) + alpha)."""
    return Schedule(
        _cosine,
        dict(
            init_value=_validate.real(init_value, "init_value", low=0, low_open=True),
            decay_steps=_validate.integer(decay_steps, "decay_steps", minimum=1),
            alpha=_validate.real(alpha, "alpha", low=0, high=1),
        ),
    )


def _learning_rate(learning_rate) -> tuple[Callable, dict]:
    """(the rate's kind, its numbers): kind(step, **numbers) is the rate at a step."""
    if isinstance(learning_rate, Schedule):
        return learning_rate.kind, learning_rate.numbers
    if callable(learning_rate):  # a user's own step -> rate function: its numbers are its own
        return Bound(_user_schedule, schedule=learning_rate), {}
    return Bound(_constant), dict(value=_validate.real(learning_rate, "learning_rate", low=0, low_open=True))


def _user_schedule(step, *, schedule):
    return schedule(step)


# --------------------------------------------------------------------------- numbers in the state
def _dtype_of(params):
    """The params' floating dtype: the optimizer's numbers are kept (and computed) in it."""
    for leaf in jax.tree.leaves(params):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            return jnp.result_type(leaf)
    return jnp.result_type(float)


def _hyper(params, numbers: tuple) -> dict:
    """The optimizer's numbers as arrays of the params' dtype: {name: array or {name: array}}."""
    dtype = _dtype_of(params)

    def cast(v):
        return jnp.asarray(v, dtype) if isinstance(v, Tracer) else np.asarray(v, dtype)

    return {k: {n: cast(x) for n, x in v} if isinstance(v, tuple) else cast(v) for k, v in numbers}


def _frozen(**numbers) -> dict:
    """Hashable form of the numbers (dicts as sorted item tuples), for Bound."""
    return {k: tuple(sorted(v.items())) if isinstance(v, dict) else v for k, v in numbers.items()}


def _zeros(params):
    """Zeros shaped like params; made on the host when the params are concrete (no program to compile)."""

    def zero(p):
        if isinstance(p, Tracer):
            return jnp.zeros_like(p)
        if isinstance(p, np.ndarray):  # host params, host state: the caller transfers the whole tree at once
            return np.zeros(p.shape, p.dtype)
        return jax.device_put(np.zeros(np.shape(p), jnp.result_type(p)))

    return jax.tree.map(zero, params)


def _count0():
    return np.zeros((), np.int32)


def _scale(tree, factor):
    return jax.tree.map(lambda t: (factor * t).astype(t.dtype), tree)


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
        updates = jax.tree.map(lambda v, g: (beta * v - lr * g).astype(v.dtype), velocity, grads)
    else:
        updates = velocity
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
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)

    def step(m, v):
        # bias corrections for the zero start, in the params' dtype: an int32 count would promote
        # to float64 under jax_enable_x64, and float32 runs would then depend on that flag
        t = count.astype(m.dtype)
        c1, c2 = 1 - b1**t, 1 - b2**t
        return (-lr * (m / c1) / (jnp.sqrt(v / c2) + eps)).astype(m.dtype)

    updates = jax.tree.map(step, mu, nu)
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
    """sqrt(Σ over every leaf of Σ x²)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


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
    return update.fn in (_sgd_update, _momentum_update, _adam_update, _clip_update, _decay_update)


def _named(state) -> bool:
    """Is `state` a NamedTuple (a state record), as opposed to a plain tuple or list of them?"""
    return isinstance(state, tuple) and hasattr(state, "_fields")


def _substates(state):
    """Every sub-state holding numbers (a NamedTuple with a `hyper` field), depth first."""
    if _named(state) and "hyper" in state._fields:
        yield state
    if isinstance(state, (tuple, list)):
        for item in state:
            yield from _substates(item)


def _as(value, like):
    if isinstance(value, Tracer) or isinstance(like, Tracer):
        return jnp.asarray(value, jnp.result_type(like))
    return np.asarray(value, jnp.result_type(like))


def hyperparameters(opt_state) -> dict:
    """The numbers an fnn optimizer state runs with: {name: value}; a constant learning rate is its
    value, a schedule's numbers a dict. Sub-states of a chain are merged in order.

    Example:
        >>> opt = fnn.optim.adam(1e-3)
        >>> {k: float(v) for k, v in fnn.optim.hyperparameters(opt.init(params)).items()}
        {'b1': 0.9, 'b2': 0.999, 'eps': 1e-08, 'learning_rate': 0.001}
    """
    numbers: dict = {}
    for sub in _substates(opt_state):
        for name, value in sub.hyper.items():
            numbers[name] = value["value"] if name == "learning_rate" and set(value) == {"value"} else value
    if not numbers and not list(_substates(opt_state)):
        raise FnnTypeError(
            "this optimizer state keeps no hyperparameters (only fnn.optim's optimizers keep their "
            "numbers in their state)"
        )
    return numbers


def learning_rate(opt_state):
    """The constant learning rate an fnn optimizer state runs with (refused for a schedule)."""
    for sub in _substates(opt_state):
        rate = sub.hyper.get("learning_rate")
        if rate is not None:
            if set(rate) != {"value"}:
                raise FnnValueError(
                    f"the learning rate is a schedule ({sorted(rate)}), not one number; "
                    "use a constant learning rate, or change the schedule's numbers with "
                    "set_hyperparameters(opt_state, learning_rate={...})"
                )
            return rate["value"]
    raise FnnValueError(
        "this optimizer state has no learning_rate (only fnn.optim's optimizers keep their rate in "
        "their state); use e.g. fnn.optim.adam(1e-3)"
    )


_RANGES = {  # (low, high, low_open, high_open) of each number fnn's optimizers keep; others: finite
    "learning_rate": (0, None, True, False),
    "init_value": (0, None, True, False),
    "decay_rate": (0, None, True, False),
    "end_value": (0, None, False, False),
    "momentum": (0, 1, False, True),
    "b1": (0, 1, False, True),
    "b2": (0, 1, False, True),
    "eps": (0, None, True, False),
    "max_norm": (0, None, True, False),
    "rate": (0, None, False, False),
    "alpha": (0, 1, False, False),
    "transition_steps": (1, None, False, False),
    "decay_steps": (1, None, False, False),
}


def _checked(name: str, value):
    """A concrete number checked against its range (a traced one, inside a compiled run, passes)."""
    if isinstance(value, Tracer):
        return value
    low, high, low_open, high_open = _RANGES.get(name, (None, None, False, False))
    return _validate.real(value, name, low=low, high=high, low_open=low_open, high_open=high_open)


def set_hyperparameters(opt_state, **numbers):
    """The same state with new numbers, e.g. set_hyperparameters(state, learning_rate=1e-4): every
    sub-state holding that name gets it (a schedule's learning rate takes a dict of its numbers).
    Moments and step counts are kept; the new numbers compile nothing (they are values in the state).

    Example:
        >>> state = fnn.optim.adam(1e-3).init(params)
        >>> float(fnn.optim.learning_rate(fnn.optim.set_hyperparameters(state, learning_rate=0.01)))
        0.01
    """
    found: set = set()

    def replace(state):
        if _named(state) and "hyper" in state._fields:
            hyper = dict(state.hyper)
            for name, value in numbers.items():
                if name not in hyper:
                    continue
                found.add(name)
                old = hyper[name]
                if isinstance(old, dict):
                    given = value if isinstance(value, dict) else {"value": value}
                    if not set(given) <= set(old):
                        raise FnnValueError(
                            f"{name} here is {'a constant' if set(old) == {'value'} else 'a schedule'} "
                            f"with numbers {sorted(old)}; got {sorted(given)}"
                        )
                    hyper[name] = {
                        k: _as(
                            _checked(k if name == "learning_rate" and k != "value" else name, given[k])
                            if k in given
                            else v,
                            v,
                        )
                        for k, v in old.items()
                    }
                else:
                    hyper[name] = _as(_checked(name, value), old)
            state = state._replace(hyper=hyper)
        if _named(state):
            return type(state)(*(replace(item) if isinstance(item, (tuple, list)) else item for item in state))
        if isinstance(state, (tuple, list)):
            return type(state)(replace(item) for item in state)
        return state

    out = replace(opt_state)
    missing = sorted(set(numbers) - found)
    if missing:
        have = sorted({name for sub in _substates(opt_state) for name in sub.hyper})
        raise FnnValueError(
            f"this optimizer state has no hyperparameter {', '.join(map(repr, missing))}; it has {have}"
        )
    return out


def with_hyperparameters_of(opt_state, fresh):
    """opt_state (moments, counts) with every number taken from `fresh`, a new state of the same
    optimizer kind: what continuing a run with a newly passed optimizer means."""

    def graft(state, new):
        if _named(state):
            items = [graft(a, b) if isinstance(a, (tuple, list)) else a for a, b in zip(state, new)]
            state = type(state)(*items)
            return state._replace(hyper=new.hyper) if "hyper" in state._fields else state
        if isinstance(state, (tuple, list)):
            return type(state)(graft(a, b) for a, b in zip(state, new))
        return state

    return graft(opt_state, fresh)
