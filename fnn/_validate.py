"""Input checks shared by the public entry points.

Every check runs on shapes and, for concrete arrays, on values, before anything is traced, so a
bad input raises an fnn error that names the argument, what was expected and what was received.
Under a transformation (jit, grad, vmap) values are tracers: only shapes are checked then.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.errors import FnnTypeError, FnnValueError


def is_concrete(a) -> bool:
    return not isinstance(a, jax.core.Tracer)


def _dtype_of(a, name):
    if hasattr(a, "dtype"):
        return np.dtype(a.dtype)
    try:
        return np.result_type(a)
    except TypeError as e:
        raise FnnTypeError(f"{name} must be a numeric array, got {type(a).__name__}: {e}") from None


def array(a, name: str):
    """`a` as an array (numpy or jax, as given; lists become numpy), with a numeric real dtype."""
    if a is None:
        raise FnnTypeError(f"{name} must be an array, got None")
    if isinstance(a, (str, bytes)):
        raise FnnTypeError(f"{name} must be a numeric array, got a string {a!r:.40}")
    if not hasattr(a, "dtype") or not hasattr(a, "shape"):
        try:
            a = np.asarray(a)
        except (ValueError, TypeError) as e:
            raise FnnTypeError(f"{name} must be a numeric array (rectangular, real), got "
                               f"{type(a).__name__}: {e}") from None
    dtype = _dtype_of(a, name)
    if dtype.kind in "USOVMm":
        raise FnnTypeError(f"{name} must have a numeric dtype (float or int), got dtype {dtype}; "
                           "encode strings or objects as numbers first")
    if dtype.kind == "c":
        raise FnnTypeError(f"{name} has complex dtype {dtype}; fnn trains on real numbers only")
    return a


def check_finite(a, name: str) -> None:
    """Refuse NaN or ±inf in a concrete array, naming the first offending row and value."""
    if not is_concrete(a):
        return
    values = np.asarray(a)
    if values.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(values)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = values[index]
        where = f"row {index[0]}" + (f", column {index[1]}" if len(index) > 1 else "") if index else "its value"
        raise FnnValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s); the first is {value} at {where}; "
            "remove or impute NaN/inf before using it")


def features(x, name: str = "x", n_features: int | None = None, allow_single: bool = False):
    """Check a (n, d) input; with allow_single a (d,) example is accepted. Returns (x, single)."""
    x = array(x, name)
    shape = tuple(x.shape)  # as given, for the messages
    single = False
    if x.ndim == 1 and allow_single:
        single = True
        x = x[None, :]
    if x.ndim != 2:
        expect = "(n_samples, n_features) or a single example (n_features,)" if allow_single else "(n_samples, n_features)"
        hint = " (reshape a single feature column with x.reshape(-1, 1))" if x.ndim == 1 else ""
        raise FnnValueError(f"{name} must be 2-d {expect}, got shape {tuple(x.shape)}{hint}")
    if x.shape[0] == 0:
        raise FnnValueError(f"{name} has 0 samples (shape {tuple(x.shape)}); pass at least one row")
    if x.shape[1] == 0:
        raise FnnValueError(f"{name} has 0 features (shape {tuple(x.shape)})")
    if n_features is not None and x.shape[1] != n_features:
        raise FnnValueError(f"{name} has {x.shape[1]} features (shape {shape}) but the model's "
                            f"first layer expects {n_features}")
    check_finite(x, name)
    return x, single


def same_length(x, y, xname: str = "x", yname: str = "y") -> None:
    if x.ndim == 0:
        raise FnnValueError(f"{xname} must have one entry per sample, got a scalar")
    if y.ndim == 0:
        raise FnnValueError(f"{yname} must have one entry per sample, got a scalar")
    if x.shape[0] != y.shape[0]:
        raise FnnValueError(f"{xname} and {yname} have different numbers of samples: "
                            f"{x.shape[0]} and {y.shape[0]}")


def integer(value: Any, name: str, minimum: int = 1) -> int:
    """A Python/numpy integer >= minimum (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise FnnTypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise FnnValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def real(value: Any, name: str, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number in the stated interval (a traced value, as in fnn.sweep, passes unchecked)."""
    if isinstance(value, jax.core.Tracer):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if hasattr(value, "shape") and getattr(value, "shape", None) == () and is_concrete(value):
            value = float(value)
        else:
            raise FnnTypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise FnnValueError(f"{name} must be finite, got {value}")
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if low is not None and (value < low or (low_open and value == low)):
        raise FnnValueError(f"{name} must be in {interval}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise FnnValueError(f"{name} must be in {interval}, got {value}")
    return value


def key(k, name: str = "key"):
    """A JAX PRNG key: a typed key (jax.random.key) or a legacy uint32 (2,) key."""
    if k is None or isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        raise FnnTypeError(f"{name} must be a JAX PRNG key such as jax.random.key(0), got {k!r}")
    if not hasattr(k, "dtype"):
        raise FnnTypeError(f"{name} must be a JAX PRNG key such as jax.random.key(0), got {type(k).__name__}")
    if jnp.issubdtype(k.dtype, jax.dtypes.prng_key):
        if k.shape != ():
            raise FnnValueError(f"{name} must be a single key (shape ()), got a batch of shape {k.shape}")
        return k
    if k.dtype == jnp.uint32 and k.shape == (2,):
        return jax.random.wrap_key_data(k)
    raise FnnTypeError(f"{name} must be a JAX PRNG key such as jax.random.key(0), "
                       f"got an array of dtype {k.dtype} and shape {tuple(k.shape)}")


def cast(a, dtype, name: str):
    """`a` as a jax array of the params' dtype, refusing values that overflow it (e.g. 1e39 in float32)."""
    with np.errstate(over="ignore"):  # an overflow is reported below, by row
        out = jnp.asarray(a, dtype)
    if not (is_concrete(a) and is_concrete(out)) or np.asarray(a).dtype.kind != "f":
        return out
    if not np.isfinite(np.asarray(out)).all():
        bad = np.argwhere(~np.isfinite(np.asarray(out)))[0]
        raise FnnValueError(f"{name} has a value too large for the params' dtype {jnp.dtype(dtype).name} at row "
                            f"{int(bad[0])}: {np.asarray(a)[tuple(bad)]}; scale the data (e.g. standardize it)")
    return out
