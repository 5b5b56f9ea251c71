"""Numerical derivatives by central differences, over a whole parameter pytree."""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn.errors import FnnTypeError, FnnValueError


def numerical_gradient(f: Callable, params, *args, h: float = 1e-6):
    """(f(θ + h e_i) − f(θ − h e_i)) / 2h for every scalar θ_i of the pytree `params`.

    f(params, *args) must return a scalar. Costs 2 evaluations per parameter: for small models
    and for checking. Use float64 (jax_enable_x64) for an error of O(h²) rather than rounding.
    """
    if not (isinstance(h, (int, float)) and h > 0):
        raise FnnValueError(f"h must be a positive step, got {h!r}")
    leaves, treedef = jax.tree.flatten(params)
    flat = [np.asarray(leaf) for leaf in leaves]
    for leaf in flat:
        if not np.issubdtype(leaf.dtype, np.floating):
            raise FnnTypeError(f"numerical_gradient needs floating-point params, got a leaf of dtype {leaf.dtype}")
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


def gradcheck(f: Callable, params, *args, grad_fn: Callable | None = None, h: float = 1e-6,
              tolerance: float = 1e-6) -> GradCheck:
    """Compare grad_fn(params, *args) (default jax.grad(f)) with central differences.

    Error per entry: |a − n| / max(|a|, |n|, 1) (relative for large entries, absolute for small);
    the result holds the largest over the tree.

    Example:
        >>> fnn.gradcheck(fnn.objective(model, "mse"), params, x, y).ok
        True
    """
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
        if err > worst:
            worst, where = err, i
    return GradCheck(worst, where, worst <= tolerance)
