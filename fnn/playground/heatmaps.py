"""Pictures of a network over the plane: every unit's activation on an n×n grid, as bytes.

`pictures(model, kind, params, grid_inputs, train_inputs)`: every layer's activations on the grid
(fnn.activations_of, its compiled program), each unit quantised to uint8 on its own [lo, hi], and
which units are dead (constant on every training point). fnn.activations_of is called as it is,
not inside a jax.jit of ours: a program of fnn's traced inside another jit makes fnn compile every
later program without its XLA:CPU option (fnn._compile), which changes their rounding, and the
exported script, in a fresh process, would no longer match the session bit for bit. Row-major grids, row 0
at the lowest x2, so a value v on [lo, hi] is the byte round(255·(v − lo)/(hi − lo)).
"""

from __future__ import annotations

import base64

import jax
import jax.numpy as jnp
import numpy as np

import fnn

__all__ = ["GRID", "feature_matrix", "grid_of", "pictures", "quantise"]

GRID = 50


def feature_matrix(plane, names) -> np.ndarray:
    """(m, 2) points (x1, x2) -> (m, len(names)) float32 input features, in the order of `names`.

    Example:
        >>> from fnn.playground import heatmaps
        >>> heatmaps.feature_matrix(np.array([[2.0, 3.0]]), ["x1", "x1*x2", "x2^2"])
        array([[2., 6., 9.]], dtype=float32)
    """
    p = np.asarray(plane, np.float64)
    x1, x2 = p[:, 0], p[:, 1]
    table = {
        "x1": lambda: x1,
        "x2": lambda: x2,
        "x1^2": lambda: x1 * x1,
        "x2^2": lambda: x2 * x2,
        "x1*x2": lambda: x1 * x2,
        "sin(x1)": lambda: np.sin(x1),
        "sin(x2)": lambda: np.sin(x2),
    }
    return np.stack([table[n]() for n in names], axis=1).astype(np.float32)


def grid_of(points, n: int = GRID) -> tuple[tuple[float, float], tuple[float, float], np.ndarray]:
    """The square-celled view around `points` (m, 2), 10% margin: (x1 range, x2 range, (n·n, 2) grid
    points, row-major with x1 fastest and row 0 at the lowest x2)."""
    p = np.asarray(points, np.float64)
    lo, hi = p.min(axis=0), p.max(axis=0)
    centre, half = (lo + hi) / 2, max(float(np.max(hi - lo)) / 2 * 1.1, 1e-3)
    r1 = (float(centre[0] - half), float(centre[0] + half))
    r2 = (float(centre[1] - half), float(centre[1] + half))
    g1, g2 = np.meshgrid(np.linspace(*r1, n), np.linspace(*r2, n))
    return r1, r2, np.stack([g1.ravel(), g2.ravel()], axis=1)


def quantise(v, lo, hi):
    """v on [lo, hi] -> uint8 round(255·(v − lo)/(hi − lo)), clipped; 0 where hi == lo. Columns of
    v (m, k) with lo, hi (1, k), or all three scalars or (m,); NumPy in, NumPy out (nothing to
    compile), JAX (traced inside `pictures`' program) in, JAX out.

    Example:
        >>> from fnn.playground import heatmaps
        >>> heatmaps.quantise(np.array([-1.0, 0.0, 1.0]), -1.0, 1.0)
        array([  0, 128, 255], dtype=uint8)
    """
    xp = jnp if any(isinstance(a, jax.Array) for a in (v, lo, hi)) else np
    span = xp.asarray(hi) - xp.asarray(lo)
    scaled = xp.where(span > 0, (v - lo) / xp.where(span > 0, span, 1), 0.0)
    return xp.round(255 * xp.clip(scaled, 0, 1)).astype(xp.uint8)


def _maps(model, kind: str, params, grid_inputs, train_inputs, out_range):
    """(units, dead, output) as uint8 arrays: fnn.activations_of's compiled program on the grid and
    the training points, quantised here with NumPy."""
    grid = [np.asarray(a) for a in fnn.activations_of(model, params, grid_inputs)]
    train = [np.asarray(a) for a in fnn.activations_of(model, params, train_inputs)]
    units = []
    for a in [np.asarray(grid_inputs), *grid[:-1]]:
        lo, hi = a.min(axis=0, keepdims=True), a.max(axis=0, keepdims=True)
        units.append((quantise(a, lo, hi).T, lo[0], hi[0]))
    dead = [np.all(t == t[:1], axis=0) for t in train[:-1]]
    out = grid[-1]
    if kind == "binary":
        output = (quantise(out[:, 0], 0.0, 1.0), None)
    elif kind == "classes":
        output = (np.argmax(out, axis=1).astype(np.uint8), quantise(out.max(axis=1), 0.0, 1.0))
    else:
        output = (quantise(out[:, 0], out_range[0], out_range[1]), None)
    return units, dead, output


def _b64(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, np.uint8).tobytes()).decode("ascii")


def pictures(model, kind: str, params, grid_inputs, train_inputs, out_range=(0.0, 1.0)) -> tuple[list, dict]:
    """The Update's "layers" (inputs first, then each hidden layer's units) and "output".

    kind: "binary" (p(class 1) on [0, 1]), "classes" (argmax class, and the max probability as
    "confidence") or "regression" (the value on out_range)."""
    units, dead, output = _maps(model, kind, params, grid_inputs, train_inputs, out_range)
    layers = []
    for index, (data, lo, hi) in enumerate(units):
        biases = None if index == 0 else np.asarray(params[index - 1].b)
        rows = []
        for j in range(data.shape[0]):
            rows.append(
                {
                    "lo": float(lo[j]),
                    "hi": float(hi[j]),
                    "data": _b64(data[j]),
                    "dead": bool(dead[index - 1][j]) if index else False,
                    "bias": None if biases is None else float(biases[j]),
                }
            )
        layers.append({"name": "input" if index == 0 else f"dense_{index}", "units": rows})
    lo, hi = (0.0, 1.0) if kind != "regression" else (float(out_range[0]), float(out_range[1]))
    out = {"kind": kind, "lo": lo, "hi": hi, "data": _b64(output[0])}
    if kind == "classes":
        out["confidence"] = _b64(output[1])
    return layers, out
