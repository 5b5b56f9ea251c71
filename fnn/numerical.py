"""Numerical derivatives by central differences, over a whole parameter pytree.

`numerical_gradient` differentiates any scalar function of a params tree; `gradcheck` compares an
analytic gradient (jax.grad's, or fnn.backprop's by hand) with it, entry by entry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _compile, _validate
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["CHECK_TOLERANCE", "DEFAULTS", "GradCheck", "gradcheck", "numerical_gradient"]


# (h, tolerance) by the params' least precise float, for differences taken in that dtype. They lose about eps/h
# to rounding and h² to truncation, so float32 needs a far larger step than float64; on the seed's 2-4-6-6-4-1
# tanh network (binary cross-entropy, 64 points) float32 at h=5e-3 errs by 2e-5 with the right gradient and by
# 6e-4 with a tanh derivative 1% off, but ReLU kinks lie within 5e-3 of most weights. So gradcheck takes its
# differences in float64 (jax.enable_x64, params and array arguments cast) whenever f runs there, and compares
# them with the gradient in the params' own dtype at CHECK_TOLERANCE; these steps are its fallback.
DEFAULTS = {"float64": (1e-6, 1e-6), "float32": (5e-3, 2e-4), "float16": (1e-1, 3e-2), "bfloat16": (1e-1, 5e-2)}
CHECK_TOLERANCE = {"float64": 1e-6, "float32": 1e-4, "float16": 2e-2, "bfloat16": 5e-2}


def _dtype(params) -> str:
    """The name of the least precise floating dtype among the params' leaves."""
    names = {np.asarray(leaf).dtype.name for leaf in jax.tree.leaves(params)}
    return max(names & set(DEFAULTS), key=lambda n: DEFAULTS[n][0], default="float64")  # the largest step


def _check(f, params, h, caller: str) -> float:
    """Refuse a non-callable f, a step that is not a finite positive number and non-float params."""
    if not callable(f):
        raise FnnTypeError(f"f must be callable, got {type(f).__name__} {f!r:.40}")
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise FnnValueError(
            f"params has no array leaves ({type(params).__name__} {params!r:.40}): nothing to differentiate"
        )
    for leaf in leaves:
        dtype = np.asarray(leaf).dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            raise FnnTypeError(f"{caller} needs floating-point params, got a leaf of dtype {dtype}")
    return DEFAULTS[_dtype(params)][0] if h is None else _validate.real(h, "h", low=0, low_open=True)


class _Differences:
    """f at params with one scalar moved: the evaluations central differences are made of."""

    def __init__(self, f: Callable, params, args: tuple):
        leaves, self.treedef = jax.tree.flatten(params)
        self.flat = [np.asarray(leaf) for leaf in leaves]
        self.f, self.args, self.seen = _compile.jit(f), args, {}

    def at(self, i: int, j: tuple, step: float) -> float:
        """f with entry j of leaf i moved by `step` (each evaluated once: a kink check reuses the gradient's)."""
        if (i, j, step) not in self.seen:
            self.seen[i, j, step] = self._call(i, j, step)
        return self.seen[i, j, step]

    def _call(self, i: int, j: tuple, step: float) -> float:
        values = [v.copy() if k == i else v for k, v in enumerate(self.flat)]
        values[i][j] += step
        out = self.f(jax.tree.unflatten(self.treedef, [jnp.asarray(v) for v in values]), *self.args)
        if jnp.shape(out) != ():
            raise FnnValueError(f"f must return a scalar, got shape {jnp.shape(out)}")
        return float(out)

    def central(self, i: int, j: tuple, h: float) -> float:
        return (self.at(i, j, h) - self.at(i, j, -h)) / (2 * h)

    def gradient(self, h: float):
        """The central difference of every scalar of the params, as their tree."""
        grads = [np.zeros_like(leaf) for leaf in self.flat]
        for i, g in enumerate(grads):
            for j in np.ndindex(g.shape):
                g[j] = self.central(i, j, h)
        return jax.tree.unflatten(self.treedef, [jnp.asarray(g) for g in grads])


def numerical_gradient(f: Callable, params, *args, h: float | None = None):
    """(f(θ + h e_i) − f(θ − h e_i)) / 2h for every scalar θ_i of the pytree `params`.

    f(params, *args) must return a scalar. Costs 2 evaluations per parameter: for small models and for checking.
    h defaults by the params' dtype (`DEFAULTS`: 1e-6 in float64, 5e-3 in float32); float64 gives an error of
    O(h²) rather than rounding.
    """
    h = _check(f, params, h, "numerical_gradient")
    return _Differences(f, params, args).gradient(h)


class GradCheck(NamedTuple):
    """Largest relative error between an analytic and a numerical gradient, and where it is; `kinks` counts the
    entries left out because their central difference straddles a kink of f (a ReLU's pre-activation within h of
    0), where a difference cannot check a derivative."""

    max_relative_error: float
    leaf_index: int  # position in jax.tree.leaves(params)
    ok: bool
    kinks: int = 0
    dtype: str = "float64"  # the dtype the differences were taken in


def _is_float_array(a) -> bool:
    """A floating array to widen; a PRNG key (a Dropout's masks: gradcheck(f, params, x, y, key)) stays as it is."""
    if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        return False
    return bool(jnp.issubdtype(np.asarray(a).dtype, jnp.floating))


def _in_float64(f: Callable, params, args: tuple, h: float | None):
    """f's central differences with params and floating array arguments cast to float64 (under jax.enable_x64):
    -> (gradient, (h, _Differences in float64)), or (None, None) where f does not run in float64."""
    wide = lambda a: np.asarray(a, np.float64) if _is_float_array(a) else a
    step = DEFAULTS["float64"][0] if h is None else h
    try:
        with jax.enable_x64(True):
            params64 = jax.tree.map(wide, params)
            args64 = tuple(
                jax.tree.map(wide, a) if hasattr(a, "dtype") or isinstance(a, (list, tuple)) else a for a in args
            )
            d = _Differences(f, params64, args64)
            grads = d.gradient(step)
    except Exception:  # f is not written for float64: differences in the params' own dtype instead
        return None, None
    return grads, (step, d)


def _straddles_a_kink(d: _Differences, i: int, j: tuple, h: float, analytic: float, tolerance: float) -> bool:
    """Does entry (i, j)'s error at step h come from a kink within h, not from a wrong derivative?

    With a kink at distance δ and slopes L, R either side, the central difference is exact once the step is under
    δ, and the slope jump J(s) = (f(θ+s) − 2f(θ) + f(θ−s)) / s stays near R − L as s shrinks while δ < s/3; for a
    smooth f, J(s) ≈ s·f'' halves with s. So: a kink if the difference at h/2 or h/4 agrees with `analytic`, or if
    J(h/2) ≥ 0.6·J(h) with J(h) as large as the error (J(h) = 2·error exactly at a kink)."""
    f0 = d.at(i, j, 0.0)
    plus, minus = d.at(i, j, h), d.at(i, j, -h)
    for step in (h / 2, h / 4):
        central = d.central(i, j, step)
        if abs(analytic - central) / max(abs(analytic), abs(central), 1.0) <= tolerance:
            return True
    jump, half = abs(plus - 2 * f0 + minus) / h, abs(d.at(i, j, h / 2) - 2 * f0 + d.at(i, j, -h / 2)) / (h / 2)
    error = abs(analytic - (plus - minus) / (2 * h))
    return jump >= error and half >= 0.6 * jump


def gradcheck(
    f: Callable,
    params,
    *args,
    grad_fn: Callable | None = None,
    h: float | None = None,
    tolerance: float | None = None,
) -> GradCheck:
    """Compare grad_fn(params, *args) (default jax.grad(f)) with central differences.

    Error per entry: |a − n| / max(|a|, |n|, 1) (relative for large entries, absolute for small); the result holds
    the largest over the tree. The differences are taken in float64 (h=1e-6) wherever f runs there, params and
    floating array arguments cast under jax.enable_x64, so a float32 gradient is checked against the true one at
    tolerance 1e-4 (`CHECK_TOLERANCE`): a right float32 gradient of the seed network passes, a tanh derivative 1%
    off fails. Where f does not run in float64, h and tolerance default by the params' dtype (`DEFAULTS`). An
    entry over the tolerance whose difference straddles a kink of f (a ReLU's pre-activation within h of 0) is
    left out of the verdict and counted in `GradCheck.kinks`; `GradCheck.dtype` says where differences were taken.

    Example:
        >>> fnn.gradcheck(fnn.objective(model, "mse"), params, x, y).ok
        True
    """
    _check(f, params, 1.0 if h is None else h, "gradcheck")
    if grad_fn is not None and not callable(grad_fn):
        raise FnnTypeError(f"grad_fn must be callable or None, got {type(grad_fn).__name__} {grad_fn!r:.40}")
    if tolerance is not None:
        tolerance = _validate.real(tolerance, "tolerance", low=0)
    value = f(params, *args)  # once eagerly, so a bad argument is refused before anything is traced
    if jnp.shape(value) != ():
        raise FnnValueError(f"f must return a scalar, got shape {jnp.shape(value)}")
    analytic = (grad_fn or jax.grad(f))(params, *args)
    own = _dtype(params)
    numeric, wide = _in_float64(f, params, args, h) if own != "float64" else (None, None)
    if wide is None:
        h = DEFAULTS[own][0] if h is None else h
        d, dtype = _Differences(f, params, args), own
        numeric = d.gradient(h)
        tolerance = DEFAULTS[own][1] if tolerance is None else tolerance
    else:
        (h, d), dtype = wide, "float64"
        tolerance = CHECK_TOLERANCE[own] if tolerance is None else tolerance
    a_leaves, n_leaves = jax.tree.leaves(analytic), jax.tree.leaves(numeric)
    if len(a_leaves) != len(n_leaves):
        raise FnnValueError("grad_fn returned a tree of another structure than params")
    worst, where, kinks = 0.0, 0, 0
    with jax.enable_x64(True) if wide is not None else contextlib.nullcontext():  # d runs f as it was built
        for i, (a, n) in enumerate(zip(a_leaves, n_leaves)):
            a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
            if a.shape != n.shape:
                raise FnnValueError(f"grad_fn leaf {i} has shape {a.shape}, params leaf has {n.shape}")
            err = np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1.0)
            for j in zip(*np.nonzero(np.isfinite(err) & (err > tolerance))):
                if _straddles_a_kink(d, i, tuple(int(k) for k in j), h, float(a[j]), tolerance):
                    err[j], kinks = 0.0, kinks + 1
            top = float(np.max(err)) if a.size else 0.0
            if not np.isfinite(top) or top > worst:  # a NaN anywhere is a failure, never a pass
                if not np.isfinite(worst):
                    continue
                worst, where = top, i
    return GradCheck(worst, where, bool(np.isfinite(worst) and worst <= tolerance), kinks, dtype)
