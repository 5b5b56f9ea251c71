"""Adaptive optimizers with optax's semantics: adamw, rmsprop, adagrad, lion (re-exported by fnn.optim).

Each takes optax's argument names and defaults and takes the same steps as its optax namesake
(`fnn.optim.rmsprop(1e-2)` and `optax.rmsprop(1e-2)` agree to rounding), except that the learning
rate has Keras' default 1e-3, which is what `optimizer="rmsprop"` runs with. As with fnn's other
optimizers, every number (learning rate and a schedule's numbers, betas, decay, eps, weight decay)
is an array in the state, so a new number compiles nothing; the flags (centered, nesterov, a
mask) are the optimizer's kind. The moments follow fnn.optim's dtype rule (the params' dtype,
float32 for half precision), so optax's mu_dtype is not taken.

The states are built with fnn.optim's helpers, so the numbers' and moments' dtypes follow one rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from fnn import _validate
from fnn._optim_state import Optimizer, count0, frozen, wide, zeros
from fnn._optim_state import hyper as numbers_in_state
from fnn.errors import FnnTypeError, FnnValueError
from fnn.schedules import Bound, Schedule
from fnn.schedules import parts as _learning_rate

__all__ = [
    "AdagradState",
    "AdamWState",
    "LionState",
    "RmspropState",
    "adagrad",
    "adamw",
    "is_elementwise",
    "lion",
    "rmsprop",
]

Array = jax.Array
Params = Any


# `count` shadows tuple.count, as in fnn.optim's states (and optax's): it names a leaf of saved checkpoints.
class AdamWState(NamedTuple):
    count: Array | np.ndarray  # pyright: ignore[reportIncompatibleMethodOverride]  # steps taken, int32 ()
    mu: Params  # first moment, shaped like the params
    nu: Params  # second moment
    hyper: dict  # learning_rate, b1, b2, eps, eps_root, weight_decay


class RmspropState(NamedTuple):
    count: Array | np.ndarray  # pyright: ignore[reportIncompatibleMethodOverride]
    nu: Params  # mean of g², shaped like the params (starts at initial_scale)
    mu: Params  # mean of g when centered, else None
    trace: Params  # the momentum trace of the steps when momentum is given, else None
    hyper: dict  # learning_rate, decay, eps (and momentum)


class AdagradState(NamedTuple):
    count: Array | np.ndarray  # pyright: ignore[reportIncompatibleMethodOverride]
    sum_of_squares: Params  # Σ g², shaped like the params (starts at initial_accumulator_value)
    hyper: dict  # learning_rate, eps


class LionState(NamedTuple):
    count: Array | np.ndarray  # pyright: ignore[reportIncompatibleMethodOverride]
    mu: Params  # the b2 average of g
    hyper: dict  # learning_rate, b1, b2, weight_decay


# --------------------------------------------------------------------------- shared pieces
def _full(params, value: float):
    """value everywhere, shaped like params, in the optimizer's dtype; made on the host for concrete params,
    as fnn.optim's zeros are (no program to compile)."""
    if not value:
        return zeros(params)

    def full(p):
        dtype = wide(jnp.result_type(p))
        if isinstance(p, Tracer):
            return jnp.full(jnp.shape(p), value, dtype)
        if isinstance(p, np.ndarray):
            return np.full(p.shape, value, dtype)
        return jax.device_put(np.full(np.shape(p), value, dtype))

    return jax.tree.map(full, params)


def _make(init, update, numbers: dict, init_options: dict, **options) -> Optimizer:
    """An fnn optimizer: init binds the numbers (kept in the state) and its own options, update only the kind."""
    hyper = tuple(sorted(frozen(**numbers).items()))
    return Optimizer(Bound(init, hyper=hyper, **init_options), Bound(update, **options))


def _fraction(name: str, value) -> float:
    return _validate.real(value, name, low=0, high=1, high_open=True)


def _positive(name: str, value) -> float:
    return _validate.real(value, name, low=0, low_open=True)


def _no_mu_dtype(mu_dtype) -> None:
    if mu_dtype is not None:
        raise FnnValueError(
            f"mu_dtype={mu_dtype!r} is not taken: fnn keeps the moments in the params' dtype (float32 for "
            "float16/bfloat16 params); leave mu_dtype=None"
        )


def _check_mask(mask):
    """A mask as the optimizer's kind (hashable): None, a callable params -> tree of bools, or a tree of
    bools with the params' structure or a prefix of it, kept as (treedef, leaves)."""
    if mask is None or callable(mask):
        return mask
    leaves, treedef = jax.tree.flatten(mask)
    bad = [leaf for leaf in leaves if not isinstance(leaf, (bool, np.bool_))]
    if bad or not leaves:
        raise FnnTypeError(
            "mask must be None, a function params -> tree of bools, or a tree of bools shaped like the params "
            f"(True: decay that leaf), e.g. tuple(fnn.DenseParams(w=True, b=False) for _ in params); got "
            f"{'a ' + type(bad[0]).__name__ + ' leaf' if bad else 'an empty tree'}"
        )
    return (treedef, tuple(bool(leaf) for leaf in leaves))


def _decay_flags(mask, params):
    """A bool per params leaf: decay it or not (optax's `masked`: the mask tree may be a prefix of the params)."""
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    tree = mask(params) if callable(mask) else jax.tree.unflatten(*mask)
    if callable(mask):
        _check_mask(tree)
    try:
        return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), tree, params)
    except (ValueError, TypeError) as e:
        raise FnnValueError(
            "the weight-decay mask does not fit the params: it must have the params' structure, or a prefix "
            f"of it, with a bool at each leaf ({str(e).splitlines()[0]})"
        ) from None


def _needs_params(params, name: str) -> None:
    if params is None:
        raise FnnValueError(f"{name}'s weight decay needs the params: call update(grads, state, params)")


def _with_decay(updates, params, flags, rate):
    """u + rate·θ where the mask says so (decoupled weight decay, scaled by the learning rate after)."""
    return jax.tree.map(lambda u, p, f: u + rate * p.astype(u.dtype) if f else u, updates, params, flags)


def _numbers(learning_rate, **numbers) -> tuple[Callable, dict[str, Any]]:
    """(the learning rate's kind, every number the state keeps: the rate's and the others)."""
    kind, lr = _learning_rate(learning_rate)
    return kind, dict(learning_rate=lr, **numbers)


def _steps(updates, lr, grads):
    """−η u, in the gradients' dtype (the moments of half-precision params are float32)."""
    return jax.tree.map(lambda u, g: (-lr * u).astype(g.dtype), updates, grads)


# --------------------------------------------------------------------------- adamw
def _adamw_init(params, *, hyper, mask):
    _decay_flags(mask, params)  # a mask that does not fit the params is refused here, on the host
    return AdamWState(count0(), zeros(params), zeros(params), numbers_in_state(params, hyper))


def _adamw_update(grads, state, params=None, *, schedule, nesterov, mask):
    _needs_params(params, "adamw")
    hyper = state.hyper
    b1, b2, eps, eps_root = hyper["b1"], hyper["b2"], hyper["eps"], hyper["eps_root"]
    count = state.count + 1
    lr = schedule(state.count, **hyper["learning_rate"])
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g.astype(m.dtype), state.mu, grads)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g.astype(v.dtype)), state.nu, grads)

    def scaled(m, v, g):
        t = count.astype(m.dtype)  # in the moments' dtype, as fnn.optim.adam (no float64 under x64)
        m_hat = m / (1 - b1**t)
        if nesterov:  # optax's NAdamW: β1 m / (1 − β1^(t+1)) + (1 − β1) g / (1 − β1^t)
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g.astype(m.dtype) / (1 - b1**t)
        return m_hat / (jnp.sqrt(v / (1 - b2**t) + eps_root) + eps)

    updates = jax.tree.map(scaled, mu, nu, grads)
    updates = _with_decay(updates, params, _decay_flags(mask, grads), hyper["weight_decay"])
    return _steps(updates, lr, grads), AdamWState(count, mu, nu, hyper)


def adamw(
    learning_rate: float | Schedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: None = None,
    weight_decay: float = 1e-4,
    mask: Any | Callable[[Params], Any] | None = None,
    *,
    nesterov: bool = False,
) -> Optimizer:
    """Adam with decoupled weight decay (Loshchilov & Hutter), as optax.adamw:
    Δθ = −η (m̂ / (√(v̂ + ε_root) + ε) + λ θ), m̂, v̂ Adam's bias-corrected moments, λ = weight_decay.

    mask: which params decay: a tree of bools shaped like the params (or a prefix of it), or a
    function params -> such a tree; None decays all. nesterov=True is optax's nadamw. mu_dtype is
    there for optax's positions only: the moments' dtype is fnn's (the params', float32 for half precision).

    Example:
        >>> opt = fnn.optim.adamw(1e-3, weight_decay=1e-2)
        >>> no_bias_decay = fnn.optim.adamw(mask=lambda p: tuple(fnn.DenseParams(True, False) for _ in p))
    """
    _no_mu_dtype(mu_dtype)
    kind, numbers = _numbers(
        learning_rate,
        b1=_fraction("b1", b1),
        b2=_fraction("b2", b2),
        eps=_positive("eps", eps),
        eps_root=_validate.real(eps_root, "eps_root", low=0),
        weight_decay=_validate.real(weight_decay, "weight_decay", low=0),
    )
    mask = _check_mask(mask)
    return _make(
        _adamw_init, _adamw_update, numbers, dict(mask=mask), schedule=kind, nesterov=bool(nesterov), mask=mask
    )


# --------------------------------------------------------------------------- rmsprop
def _rmsprop_init(params, *, hyper, initial_scale, centered, momentum):
    return RmspropState(
        count0(),
        _full(params, initial_scale),
        zeros(params) if centered else None,
        zeros(params) if momentum else None,
        numbers_in_state(params, hyper),
    )


def _rmsprop_update(grads, state, params=None, *, schedule, centered, momentum, nesterov, eps_in_sqrt, bias_correction):
    hyper = state.hyper
    decay, eps = hyper["decay"], hyper["eps"]
    count = state.count + 1
    lr = schedule(state.count, **hyper["learning_rate"])
    wide = jax.tree.map(lambda g, v: g.astype(v.dtype), grads, state.nu)
    nu = jax.tree.map(lambda v, g: decay * v + (1 - decay) * jnp.square(g), state.nu, wide)
    mu = jax.tree.map(lambda m, g: decay * m + (1 - decay) * g, state.mu, wide) if centered else None

    def scaled(g, v, m=None):
        if bias_correction:
            c = 1 - decay ** count.astype(v.dtype)
            v, m = v / c, None if m is None else m / c
        if m is not None:  # centered: the variance of g, not its raw second moment
            v = v - jnp.square(m)
        return g * (jax.lax.rsqrt(v + eps) if eps_in_sqrt else 1 / (jnp.sqrt(v) + eps))

    updates = jax.tree.map(scaled, wide, nu, *([mu] if centered else []))
    steps = jax.tree.map(lambda u: -lr * u, updates)  # optax scales by the rate before its momentum trace
    trace = state.trace
    if momentum:
        beta = hyper["momentum"]
        trace = jax.tree.map(lambda s, t: s + beta * t, steps, state.trace)
        steps = jax.tree.map(lambda s, t: s + beta * t, steps, trace) if nesterov else trace
    steps = jax.tree.map(lambda s, g: s.astype(g.dtype), steps, grads)
    return steps, RmspropState(count, nu, mu, trace, hyper)


def rmsprop(
    learning_rate: float | Schedule = 1e-3,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> Optimizer:
    """RMSProp (Hinton), as optax.rmsprop: ν ← ρ ν + (1 − ρ) g², Δθ = −η g / √(ν + ε) (ρ = decay; with
    eps_in_sqrt=False, −η g / (√ν + ε)). centered: ν − μ² in place of ν, μ ← ρ μ + (1 − ρ) g (the variance
    of g). momentum: a trace t ← Δθ + momentum · t of those steps, then Δθ = t (nesterov: Δθ + momentum · t).
    ν starts at initial_scale; bias_correction divides ν (and μ) by 1 − ρᵗ.

    Example:
        >>> opt = fnn.optim.rmsprop(1e-2, centered=True, momentum=0.9)
    """
    if momentum is not None:
        momentum = _fraction("momentum", momentum)
    kind, numbers = _numbers(learning_rate, decay=_fraction("decay", decay), eps=_positive("eps", eps))
    if momentum is not None:
        numbers["momentum"] = momentum
    init_options = dict(
        initial_scale=_validate.real(initial_scale, "initial_scale", low=0),
        centered=bool(centered),
        momentum=momentum is not None,
    )
    return _make(
        _rmsprop_init,
        _rmsprop_update,
        numbers,
        init_options,
        schedule=kind,
        centered=bool(centered),
        momentum=momentum is not None,
        nesterov=bool(nesterov),
        eps_in_sqrt=bool(eps_in_sqrt),
        bias_correction=bool(bias_correction),
    )


# --------------------------------------------------------------------------- adagrad
def _adagrad_init(params, *, hyper, initial_accumulator_value):
    return AdagradState(count0(), _full(params, initial_accumulator_value), numbers_in_state(params, hyper))


def _adagrad_update(grads, state, params=None, *, schedule):
    hyper = state.hyper
    eps = hyper["eps"]
    lr = schedule(state.count, **hyper["learning_rate"])
    wide = jax.tree.map(lambda g, s: g.astype(s.dtype), grads, state.sum_of_squares)
    total = jax.tree.map(lambda s, g: s + jnp.square(g), state.sum_of_squares, wide)
    # a zero sum (no gradient yet, initial value 0) scales by 0, not by 1/√ε
    updates = jax.tree.map(lambda g, s: g * jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0), wide, total)
    return _steps(updates, lr, grads), AdagradState(state.count + 1, total, hyper)


def adagrad(
    learning_rate: float | Schedule = 1e-3, initial_accumulator_value: float = 0.1, eps: float = 1e-7
) -> Optimizer:
    """Adagrad (Duchi et al.), as optax.adagrad: s ← s + g², Δθ = −η g / √(s + ε); s starts at
    initial_accumulator_value.

    Example:
        >>> opt = fnn.optim.adagrad(0.1)
    """
    kind, numbers = _numbers(learning_rate, eps=_positive("eps", eps))
    start = _validate.real(initial_accumulator_value, "initial_accumulator_value", low=0)
    return _make(_adagrad_init, _adagrad_update, numbers, dict(initial_accumulator_value=start), schedule=kind)


# --------------------------------------------------------------------------- lion
def _lion_init(params, *, hyper, mask):
    _decay_flags(mask, params)
    return LionState(count0(), zeros(params), numbers_in_state(params, hyper))


def _lion_update(grads, state, params=None, *, schedule, mask):
    _needs_params(params, "lion")
    hyper = state.hyper
    b1, b2 = hyper["b1"], hyper["b2"]
    lr = schedule(state.count, **hyper["learning_rate"])
    wide = jax.tree.map(lambda g, m: g.astype(m.dtype), grads, state.mu)
    updates = jax.tree.map(lambda g, m: jnp.sign((1 - b1) * g + b1 * m), wide, state.mu)
    mu = jax.tree.map(lambda g, m: b2 * m + (1 - b2) * g, wide, state.mu)
    updates = _with_decay(updates, params, _decay_flags(mask, grads), hyper["weight_decay"])
    return _steps(updates, lr, grads), LionState(state.count + 1, mu, hyper)


def lion(
    learning_rate: float | Schedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.99,
    mu_dtype: None = None,
    weight_decay: float = 1e-3,
    mask: Any | Callable[[Params], Any] | None = None,
) -> Optimizer:
    """Lion (Chen et al. 2023), as optax.lion: Δθ = −η (sign(β1 m + (1 − β1) g) + λ θ), then
    m ← β2 m + (1 − β2) g. Every step has size η per coordinate: take η 3–10× below Adam's.
    mask, mu_dtype: as adamw's.

    Example:
        >>> opt = fnn.optim.lion(1e-4)
    """
    _no_mu_dtype(mu_dtype)
    kind, numbers = _numbers(
        learning_rate,
        b1=_fraction("b1", b1),
        b2=_fraction("b2", b2),
        weight_decay=_validate.real(weight_decay, "weight_decay", low=0),
    )
    mask = _check_mask(mask)
    return _make(_lion_init, _lion_update, numbers, dict(mask=mask), schedule=kind, mask=mask)


# --------------------------------------------------------------------------- elementwise?
def is_elementwise(update) -> bool:
    """Are these updates blind to the tree (fnn.optim.is_elementwise)? All are, except adamw and lion
    with a mask, which picks leaves."""
    if not isinstance(update, Bound):
        return False
    if update.fn in (_adamw_update, _lion_update):
        return dict(update.kwargs)["mask"] is None
    return update.fn in (_rmsprop_update, _adagrad_update)
