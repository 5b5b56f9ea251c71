"""What fnn's optimizers are made of: the (init, update) pair, and the numbers and moments in their
states (in the params' dtype; float32 for half-precision params). Shared by fnn.optim and the
adaptive optimizers of fnn._adaptive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

Array = jax.Array
Params = Any
State = Any


class Optimizer(NamedTuple):
    """Two pure functions: gradients in, updates out (never params); all memory in the state."""

    init: Callable[[Params], State]
    update: Callable[..., tuple[Params, State]]  # (grads, state, params=None) -> (updates, state)


# --------------------------------------------------------------------------- numbers in the state
def wide(dtype):
    """The dtype an optimizer keeps and computes state in for params of `dtype`: float32 for float16 and
    bfloat16 (as mixed-precision training does: float16 flushes eps=1e-8 to 0, bfloat16 rounds 0.999 to 1),
    the params' own dtype otherwise."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4 else dtype


def dtype_of(params):
    """The dtype of the optimizer's numbers and moments: the params' floating dtype, float32 for half precision."""
    for leaf in jax.tree.leaves(params):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            return wide(jnp.result_type(leaf))
    return jnp.result_type(float)


def hyper(params, numbers: tuple) -> dict:
    """The optimizer's numbers as arrays of the params' dtype: {name: array or {name: array}}."""
    dtype = dtype_of(params)

    def cast(v):
        return jnp.asarray(v, dtype) if isinstance(v, Tracer) else np.asarray(v, dtype)

    return {k: {n: cast(x) for n, x in v} if isinstance(v, tuple) else cast(v) for k, v in numbers}


def frozen(**numbers) -> dict:
    """Hashable form of the numbers (dicts as sorted item tuples), for Bound."""
    return {k: tuple(sorted(v.items())) if isinstance(v, dict) else v for k, v in numbers.items()}


def zeros(params):
    """Zeros shaped like params; made on the host when the params are concrete (no program to compile)."""

    def zero(p):
        dtype = wide(jnp.result_type(p))
        if isinstance(p, Tracer):
            return jnp.zeros(jnp.shape(p), dtype)
        if isinstance(p, np.ndarray):  # host params, host state: the caller transfers the whole tree at once
            return np.zeros(p.shape, dtype)
        return jax.device_put(np.zeros(np.shape(p), dtype))

    return jax.tree.map(zero, params)


def count0():
    return np.zeros((), np.int32)


def scale(tree, factor):
    return jax.tree.map(lambda t: (factor * t).astype(t.dtype), tree)
