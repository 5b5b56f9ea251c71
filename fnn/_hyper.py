"""The numbers an fnn optimizer state runs with: read them, set them, or graft them from a fresh state.

fnn's optimizers keep their hyperparameters (learning rate, momentum, betas, eps, a schedule's numbers) as arrays
in a `hyper` field of each sub-state, so changing one is a new value, never a new program. fnn.optim re-exports
`hyperparameters`, `learning_rate`, `set_hyperparameters` and `with_hyperparameters_of`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from fnn import _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["hyperparameters", "learning_rate", "set_hyperparameters", "with_hyperparameters_of"]


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
    "eps_root": (0, None, False, False),
    "decay": (0, 1, False, True),
    "weight_decay": (0, None, False, False),
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
