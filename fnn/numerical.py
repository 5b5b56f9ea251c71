"""Numerical derivatives by central differences, over a whole parameter pytree.

`numerical_gradient` differentiates any scalar function of a params tree; `gradcheck` compares an
analytic gradient (jax.grad's, or fnn.backprop's by hand) with it, entry by entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["GradCheck", "gradcheck", "numerical_gradient"]


def _check(f, params, h, caller: str) -> float:
    """Refuse a non-callable f, a step that is not a finite positive number and non-float params."""
    if not callable(f):
        raise FnnTypeError(f"f must be callable, got {type(f).__name__} {f!r:.40}")
    h = _validate.real(h, "h", low=0, low_open=True)
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise FnnValueError(
            f"params has no array leaves ({type(params).__name__} {params!r:.40}): nothing to differentiate"
        )
    for leaf in leaves:
        dtype = np.asarray(leaf).dtype
        if not np.issubdtype(dtype, np.floating):
            raise FnnTypeError(f"{caller} needs floating-point params, got a leaf of dtype {dtype}")
    return h


def numerical_gradient(f: Callable, params, *args, h: float = 1e-6):
    """(f(θ + h e_i) − f(θ − h e_i)) / 2h for every scalar θ_i of the pytree `params`.

    f(params, *args) must return a scalar. Costs 2 evaluations per parameter: for small models
    and for checking. Use float64 (jax_enable_x64) for an error of O(h²) rather than rounding.
    """
    h = _check(f, params, h, "numerical_gradient")
    leaves, treedef = jax.tree.flatten(params)
    flat = [np.asarray(leaf) for leaf in leaves]
    f = jax.jit(f)

    def call(values):
        out = f(jax.tree.unflatten(treedef, [jnp.asarray(v) for v in values]), *args)
        if jnp.shape(out) != ():
            raise FnnValueError(f"f must return a scalar, got shape {jnp.shape(out)}")
        return float(out)

    grads = []
    for i, leaf in enumerate(flat):
        g = np.zeros_like(leaf)
        for j in np.ndindex(leaf.shape):
            plus = [v.copy() for v in flat]
            minus = [v.copy() for v in flat]
            plus[i][j] += h
            minus[i][j] -= h
            g[j] = (call(plus) - call(minus)) / (2 * h)
        grads.append(jnp.asarray(g))
    return jax.tree.unflatten(treedef, grads)


class GradCheck(NamedTuple):
    """Largest relative error between an analytic and a numerical gradient, and where it is."""

    max_relative_error: float
    leaf_index: int  # position in jax.tree.leaves(params)
    ok: bool


def gradcheck(
    f: Callable, params, *args, grad_fn: Callable | None = None, h: float = 1e-6, tolerance: float = 1e-6
) -> GradCheck:
    """Compare grad_fn(params, *args) (default jax.grad(f)) with central differences.

    Error per entry: |a − n| / max(|a|, |n|, 1) (relative for large entries, absolute for small);
    the result holds the largest over the tree.

    Example:
        >>> fnn.gradcheck(fnn.objective(model, "mse"), params, x, y).ok
        True
    """
    h = _check(f, params, h, "gradcheck")
    if grad_fn is not None and not callable(grad_fn):
        raise FnnTypeError(f"grad_fn must be callable or None, got {type(grad_fn).__name__} {grad_fn!r:.40}")
    tolerance = _validate.real(tolerance, "tolerance", low=0)
    value = f(params, *args)  # once eagerly, so a bad argument is refused before anything is traced
    if jnp.shape(value) != ():
        raise FnnValueError(f"f must return a scalar, got shape {jnp.shape(value)}")
    analytic = (grad_fn or jax.grad(f))(params, *args)
    numeric = numerical_gradient(f, params, *args, h=h)
    a_leaves, n_leaves = jax.tree.leaves(analytic), jax.tree.leaves(numeric)
    if len(a_leaves) != len(n_leaves):
        raise FnnValueError("grad_fn returned a tree of another structure than params")
    worst, where = 0.0, 0
    for i, (a, n) in enumerate(zip(a_leaves, n_leaves)):
        a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
        if a.shape != n.shape:
            raise FnnValueError(f"grad_fn leaf {i} has shape {a.shape}, params leaf has {n.shape}")
        scale = np.maximum(np.maximum(np.abs(a), np.abs(n)), 1.0)
        err = float(np.max(np.abs(a - n) / scale)) if a.size else 0.0
        if not np.isfinite(err) or err > worst:  # a NaN anywhere is a failure, never a pass
            if not np.isfinite(worst):
                continue
            worst, where = err, i
    return GradCheck(worst, where, bool(np.isfinite(worst) and worst <= tolerance))
