"""The loss surface around a point: a 2-D slice of it (`landscape`) and its sharpness (`sharpness`).

`landscape` evaluates the loss on a grid params + α·d1 + β·d2 along two random directions,
filter-normalised as Li et al. (2018), "Visualizing the Loss Landscape of Neural Nets": each
unit's column of a random direction is rescaled to the norm of that unit's incoming weights, so
the picture does not depend on how the weights happen to be scaled. The whole grid is one
compiled, vmapped call; a new span or key is a runtime value and compiles nothing.

`sharpness` is the largest Hessian eigenvalue of an objective, by power iteration on
Hessian-vector products (jax.jvp of jax.grad): the quantity Cohen et al. (2021) watch rise to
2/η ("the edge of stability") under gradient descent. fnn.callbacks.Sharpness records it inside
a compiled run; fnn.plot.landscape and fnn.plot.sharpness draw both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from fnn import _compile, _validate, losses, models
from fnn.errors import FnnError, FnnTypeError, FnnValueError
from fnn.layers import DenseParams

__all__ = ["Landscape", "filter_normalize", "landscape", "power_iteration", "project", "sharpness"]

Array = jax.Array


class Landscape(NamedTuple):
    """The loss on a plane through params: losses[i, j] is the loss at params + alphas[i]·d1 + betas[j]·d2."""

    alphas: np.ndarray  # (resolution,) along d1; alphas[resolution // 2] == 0
    betas: np.ndarray  # (resolution,) along d2; betas[resolution // 2] == 0
    losses: np.ndarray  # (resolution, resolution); losses[mid, mid] is the loss at params
    directions: tuple  # (d1, d2): trees shaped like params (tuple of DenseParams)
    path: np.ndarray | None  # (n, 2): each path point's (α, β) in the plane, or None without a path


# --------------------------------------------------------------------------- directions
def filter_normalize(direction, params) -> tuple:
    """Li et al.'s filter normalisation: each column j of a layer's direction w (the incoming
    weights of unit j) is rescaled to ‖params w[:, j]‖; bias directions are set to 0 (biases are
    not perturbed, as their `ignore='biasbn'` option does). Both trees: tuples of DenseParams.

    Example:
        >>> d = fnn.surface.filter_normalize(jax.tree.map(jnp.ones_like, params), params)
        >>> bool(jnp.allclose(jnp.linalg.norm(d[0].w, axis=0), jnp.linalg.norm(params[0].w, axis=0)))
        True
    """

    def unit(d: DenseParams, p: DenseParams) -> DenseParams:
        tiny = jnp.finfo(d.w.dtype).tiny
        scale = jnp.linalg.norm(p.w, axis=0) / jnp.maximum(jnp.linalg.norm(d.w, axis=0), tiny)
        return DenseParams(d.w * scale[None, :], jnp.zeros_like(d.b))

    return tuple(unit(DenseParams(*d), DenseParams(*p)) for d, p in zip(direction, params))


def _random_directions(key, params) -> tuple[tuple, tuple]:
    flat, unravel = ravel_pytree(params)
    k1, k2 = jax.random.split(key)
    draw = [unravel(jax.random.normal(k, flat.shape, flat.dtype)) for k in (k1, k2)]
    return filter_normalize(draw[0], params), filter_normalize(draw[1], params)


def _grid(span, resolution: int, dtype) -> Array:
    """(resolution,) steps from −span with an exact 0 at index resolution // 2 (span at the end when odd)."""
    mid = resolution // 2
    return span * (jnp.arange(resolution, dtype=dtype) - mid) / mid


@_compile.jit(static_argnums=(0, 1, 2))
def _surface(model: models.Sequential, loss: losses.Loss, resolution: int, params, x, y, span, key):
    """(alphas, betas, losses (resolution, resolution), d1, d2): the whole grid in one vmapped program."""
    d1, d2 = _random_directions(key, params)
    steps = _grid(span, resolution, x.dtype)

    def loss_at(a, b):
        point = jax.tree.map(lambda p, u, v: p + a * u + b * v, params, d1, d2)
        out = models.network_output(model, loss, point, x)
        return jnp.mean(loss.per_sample(out, y))  # the mean fnn.evaluate reports

    along_beta = jax.vmap(loss_at, in_axes=(None, 0))
    return steps, steps, jax.vmap(along_beta, in_axes=(0, None))(steps, steps), d1, d2


# --------------------------------------------------------------------------- a path in the plane
def _snapshots(path):
    """A FitResult's snapshots (stacked), a History's (a list), or path itself."""
    if hasattr(path, "snapshots"):
        if path.snapshots is None:
            raise FnnValueError(
                "path has no snapshots; train with fnn.fit(..., callbacks=[fnn.callbacks.Snapshots(every=k)])"
            )
        return path.snapshots
    records = getattr(path, "records", None)
    if isinstance(records, dict) and "snapshots" in records:
        return records["snapshots"]
    return path


def _flat_points(model, params, path) -> np.ndarray:
    """path -> (n, P) float64 points, each raveled as ravel_pytree(params) is: a stacked tree (each
    leaf with a leading axis n, as result.snapshots) or a sequence of params trees."""
    path = _snapshots(path)
    shapes = [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(params)]
    pairs = isinstance(path, (tuple, list)) and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in path)
    leaves = jax.tree.leaves(path) if pairs and len(path) == len(params) else []
    if len(leaves) == len(shapes) and all(np.ndim(a) == len(s) + 1 for a, s in zip(leaves, shapes)):
        got = [tuple(np.shape(a)) for a in leaves]
        if [g[1:] for g in got] != shapes or len({g[0] for g in got}) != 1:
            raise FnnValueError(
                f"path as stacked params (a leading axis of n points, as result.snapshots) must have leaves "
                f"{[('n', *s) for s in shapes]}, got {got}; pass snapshots of a run of these params' model"
            )
        return np.concatenate([np.asarray(a, np.float64).reshape(got[0][0], -1) for a in leaves], axis=1)
    if not isinstance(path, (tuple, list)) or not path:
        raise FnnTypeError(
            "path must be a non-empty sequence of params trees shaped like params, a stacked tree such as "
            f"result.snapshots, or a FitResult with snapshots; got {type(path).__name__}"
        )
    points = []
    for i, point in enumerate(path):
        try:
            models.check_params(model, point)
        except FnnError as e:
            raise type(e)(f"path[{i}] does not fit the params: {e}") from None
        point_leaves = jax.tree.leaves(tuple(DenseParams(*p) for p in point))
        if [tuple(np.shape(a)) for a in point_leaves] != shapes:
            raise FnnValueError(f"path[{i}] is not shaped like params: its leaves must have shapes {shapes}")
        points.append(np.concatenate([np.asarray(a, np.float64).ravel() for a in point_leaves]))
    return np.stack(points)


def project(points: np.ndarray, origin: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """(n, P) flat points -> (n, 2): the least-squares (α, β) of points − origin ≈ α·d1 + β·d2.

    Example:
        >>> d1, d2 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
        >>> fnn.surface.project(np.array([[0.5, 1.0, 7.0]]), np.zeros(3), d1, d2)
        array([[0.5, 0.5]])
    """
    basis = np.stack([d1, d2], axis=1)  # (P, 2)
    coords, *_ = np.linalg.lstsq(basis, (np.asarray(points) - origin).T, rcond=None)
    return coords.T


def landscape(
    model: models.Sequential, loss: str, params, x, y, *, span=1.0, resolution: int = 25, key: Any = 0, path=None
) -> Landscape:
    """The loss (the mean fnn.evaluate reports) on the grid params + α·d1 + β·d2, α, β in [−span, span].

    d1, d2: random normal directions, filter-normalised (see filter_normalize: each unit's incoming
    weights' column has that unit's norm in params; biases are not perturbed, their directions are
    0). resolution (≥ 3) points per axis, with α = β = 0 at index resolution // 2 (odd: symmetric).
    key: a PRNG key or seed for the directions. One compiled program per model, loss, resolution and
    data shape: a new span, key or params compiles nothing.
    path: params along a run (a sequence of params trees, result.snapshots from
    fnn.callbacks.Snapshots, or the FitResult itself): Landscape.path is then each point's (α, β), its
    least-squares projection onto the plane. Random directions in many dimensions are nearly
    orthogonal to a training path, so the projection shows only a part of its movement.

    Example:
        >>> surface = fnn.landscape(model, "binary_cross_entropy", params, x, y, span=0.5, resolution=5)
        >>> surface.losses.shape, bool(surface.losses[2, 2] == surface.losses.min())
        ((5, 5), False)
        >>> round(float(surface.losses[2, 2]), 6) == round(fnn.evaluate(model, params, x, y)["loss"], 6)
        True
    """
    record = models.resolve_loss(model, loss)
    x, y = models.prepare(model, record, params, x, y)
    params = tuple(DenseParams(*p) for p in params)
    span = _validate.real(span, "span", low=0, low_open=True)
    resolution = _validate.integer(resolution, "resolution", minimum=3)
    key = _validate.key(key)
    points = None if path is None else _flat_points(model, params, path)
    dtype = params[0].w.dtype
    alphas, betas, grid, d1, d2 = _surface(model, record, resolution, params, x, y, jnp.asarray(span, dtype), key)
    coords = None
    if points is not None:
        flat = [np.asarray(ravel_pytree(t)[0], np.float64) for t in (params, d1, d2)]
        coords = project(points, *flat)
    return Landscape(np.asarray(alphas), np.asarray(betas), np.asarray(grid), (d1, d2), coords)


# --------------------------------------------------------------------------- sharpness
def power_iteration(fn: Callable[[Any], Array], params, key, iterations) -> Array:
    """The Hessian eigenvalue of largest magnitude of fn at params (a pytree) by `iterations` steps of
    v ← Hv / ‖Hv‖ from a random v; -> the Rayleigh quotient vᵀHv (0-d). Hv is jax.jvp of jax.grad.
    Traceable: jit it, use it inside a compiled run (fnn.callbacks.Sharpness does)."""
    flat, unravel = ravel_pytree(params)

    def hvp(v):
        return jax.jvp(jax.grad(lambda theta: fn(unravel(theta))), (flat,), (v,))[1]

    def unit(v):
        return v / jnp.maximum(jnp.linalg.norm(v), jnp.finfo(v.dtype).tiny)

    def step(_, carry):
        v, _ = carry
        hv = hvp(v)
        return unit(hv), jnp.vdot(v, hv)

    v = unit(jax.random.normal(key, flat.shape, flat.dtype))
    start = (v, jnp.zeros((), flat.dtype))
    return jax.lax.fori_loop(0, iterations, step, start)[1]


@_compile.jit(static_argnums=0)
def _sharpness(objective, params, key, iterations, *args):
    return power_iteration(lambda p: objective(p, *args), params, key, iterations)


def sharpness(objective: Callable[..., Array], params, *args, iterations: int = 20, key: Any = 0) -> Array:
    """The largest Hessian eigenvalue of objective(params, *args) with respect to params (a pytree).

    Power iteration on Hessian-vector products, compiled once per objective (pass the same function
    again to reuse the program; iterations and key are runtime values). Power iteration finds the
    eigenvalue of largest magnitude: near a saddle or maximum that may be a negative one, and it
    converges like (λ₂/λ₁)^(2·iterations), slowly when the top two are close. -> a 0-d array.

    Example:
        >>> float(fnn.sharpness(lambda w: 2 * w ** 2 - 3 * w + 1, jnp.asarray(0.5)))  # P''(w) = 4
        4.0
        >>> s = fnn.sharpness(fnn.objective(model, "binary_cross_entropy"), params, x, y)
    """
    if not callable(objective):
        raise FnnTypeError(
            f"objective must be a function objective(params, *args) -> scalar, got {type(objective).__name__}; "
            "e.g. fnn.objective(model, 'mse')"
        )
    iterations = _validate.integer(iterations, "iterations", minimum=1)
    leaves = jax.tree.leaves(params)
    if not leaves or not all(jnp.issubdtype(jnp.result_type(leaf), jnp.floating) for leaf in leaves):
        raise FnnValueError("params must be a pytree of floating-point arrays (at least one), e.g. model.init(0)")
    return _sharpness(objective, params, _validate.key(key), jnp.asarray(iterations, jnp.int32), *args)
