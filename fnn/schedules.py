"""Learning-rate schedules: step -> rate, each a formula (its kind) and its numbers.

A Schedule called directly uses its own numbers; inside an fnn optimizer the numbers live in the optimizer's
state, so a schedule with other numbers runs in the same compiled program. `Bound` is a function with keyword
options bound, equal by value, which is how optimizers and schedules name their kind.

Example:
    >>> s = fnn.schedules.cosine_decay(0.1, decay_steps=10)
    >>> float(s(0)), float(s(10))
    (0.1, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp

from fnn import _validate

__all__ = ["Bound", "Schedule", "constant", "cosine_decay", "exponential_decay", "parts"]


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


def parts(learning_rate) -> tuple[Callable, dict]:
    """A learning rate (a number, a Schedule or a step -> rate function) as (its kind, its numbers):
    kind(step, **numbers) is the rate at a step; the kind is equal for equal formulas, whatever the numbers."""
    if isinstance(learning_rate, Schedule):
        return learning_rate.kind, learning_rate.numbers
    if callable(learning_rate):  # a user's own step -> rate function: its numbers are its own
        return Bound(_user_schedule, schedule=learning_rate), {}
    return Bound(_constant), dict(value=_validate.real(learning_rate, "learning_rate", low=0, low_open=True))


def _user_schedule(step, *, schedule):
    return schedule(step)
