"""The points an optimizer visits on a function of a vector: the compiled core of fnn.optim.trajectory.

One lax.scan of θ ← θ + update(∇f(θ)), ∇f from jax.grad. The program is compiled per (update,
f, steps, d, dtype): an optimizer's numbers live in its state, so sgd(0.1) and sgd(0.3) on one f
share it. This module imports nothing from fnn.optim (optim re-exports it): the optimizer comes
in already checked.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _compile, _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["run"]


@_compile.jit(static_argnums=(0, 1, 2))
def _scan(update, f, steps: int, state, start):
    """((steps, d), (steps + 1,)): the point after each step, and f at the start and at each of them."""

    def step(carry, _):
        x, state = carry
        value, grads = jax.value_and_grad(f)(x)
        updates, state = update(grads, state, x)
        x = (x + updates).astype(x.dtype)  # apply_updates for a single leaf
        return (x, state), (x, value)

    (last, _), (xs, values) = jax.lax.scan(step, (start, state), None, length=steps)
    return xs, jnp.concatenate([values, f(last)[None]])


def _start(start) -> np.ndarray:
    start = _validate.array(start, "start")
    if np.ndim(start) != 1 or np.size(start) == 0:
        raise FnnValueError(
            f"start must be a 1-d point (d,), e.g. [-1.5, 2.0] for a function of two variables, "
            f"got shape {tuple(np.shape(start))}"
        )
    _validate.check_finite(start, "start")
    start = np.asarray(start)
    if not jnp.issubdtype(start.dtype, jnp.floating):
        return start.astype(jnp.result_type(float))
    # half precision runs in float32: a step below its spacing (2⁻⁸ relative in bfloat16) would round away
    return start.astype(np.float32) if start.dtype.itemsize < 4 else start


def _check_f(f: Callable[[Any], Any], start: np.ndarray) -> None:
    """f must map a (d,) point to a real scalar, in jax.numpy (it is differentiated and compiled)."""
    if not callable(f):
        raise FnnTypeError(
            f"f must be a function of a point (d,) -> scalar, e.g. lambda p: (p ** 2).sum(), got {type(f).__name__}"
        )
    try:
        out = jax.eval_shape(f, jax.ShapeDtypeStruct(start.shape, start.dtype))
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError) as e:
        raise FnnTypeError(
            f"f must be written with jax.numpy (jnp.sin, not np.sin; no float() or if on values): "
            f"it is differentiated with jax.grad. {type(e).__name__}: {str(e).splitlines()[0]}"
        ) from None
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if shape != () or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise FnnValueError(
            f"f must return a real scalar for a point of shape {start.shape}, got "
            f"{'a ' + str(dtype) + ' array of shape ' + str(shape) if shape is not None else type(out).__name__}; "
            "sum the terms, e.g. lambda p: (p ** 2).sum()"
        )


def run(optimizer, f: Callable[[Any], Any], start, steps: int) -> np.ndarray:
    """(steps + 1, d) points, row 0 the start; optimizer: an fnn Optimizer (already checked).
    Rows from the first point where it or f is not finite on are NaN, with a RuntimeWarning naming that step."""
    start = _start(start)
    _check_f(f, start)
    steps = _validate.integer(steps, "steps", minimum=1)
    state = optimizer.init(start)
    xs, values = _scan(optimizer.update, f, steps, state, _validate.device(start))
    path = np.concatenate([start[None, :], np.asarray(xs)]).astype(start.dtype)
    values = np.asarray(values)
    if not np.isfinite(values[0]):
        raise FnnValueError(
            f"f is not finite at the start {start.tolist()} (f = {values[0]}); start where f is defined"
        )
    bad = ~(np.isfinite(path).all(axis=1) & np.isfinite(values))
    if bad.any():
        k = int(np.argmax(bad))
        path[k:] = np.nan
        warnings.warn(
            f"trajectory diverged at step {k} of {steps}: the point after it, or f there, is not finite (the "
            f"point before it was {path[k - 1].tolist()}); rows {k} to {steps} are NaN. Take a smaller "
            f"learning rate, or clip the gradients with fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0), ...)",
            RuntimeWarning,
            stacklevel=3,
        )
    return path
