"""Input checks shared by the public entry points.

Every check runs on shapes and, for concrete arrays, on values, before anything is traced, so a
bad input raises an fnn error that names the argument, what was expected and what was received.
Under a transformation (jit, grad, vmap) values are tracers: only shapes are checked then.
"""

from __future__ import annotations

import functools
import math
import numbers
import typing
import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from fnn import _compile
from fnn.errors import FnnTypeError, FnnValueError

__all__ = [
    "all_finite",
    "array",
    "cast",
    "check_finite",
    "device",
    "features",
    "float_dtype",
    "integer",
    "is_concrete",
    "key",
    "real",
    "same_length",
]

Array = jax.Array


def is_concrete(a) -> bool:
    """False for a tracer (under jit, grad or vmap), whose values cannot be read."""
    return not isinstance(a, Tracer)


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
            raise FnnTypeError(
                f"{name} must be a numeric array (rectangular, real), got {type(a).__name__}: {e}"
            ) from None
    dtype = _dtype_of(a, name)
    if dtype.kind in "USOVMm" and not jnp.issubdtype(dtype, jnp.floating):  # bfloat16's kind is "V"
        raise FnnTypeError(
            f"{name} must have a numeric dtype (float or int), got dtype {dtype}; "
            "encode strings or objects as numbers first"
        )
    if dtype.kind == "c":
        raise FnnTypeError(f"{name} has complex dtype {dtype}; fnn trains on real numbers only")
    return a


def host_finite(values: np.ndarray) -> bool:
    """Are all of a host float array's values finite? Looked at in blocks of rows, so no temporary
    grows with the array."""
    if values.size == 0:
        return True
    flat = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(-1, 1)
    step = max(1, (1 << 20) // max(1, flat.shape[1]))
    return all(np.isfinite(flat[i : i + step]).all() for i in range(0, flat.shape[0], step))


def check_finite(a, name: str) -> None:
    """Refuse NaN or ±inf in a concrete array, naming the first offending row and value."""
    if not is_concrete(a):
        return
    values = np.asarray(a)
    if values.dtype.kind not in "fc" or host_finite(values):
        return
    bad = ~np.isfinite(values)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = values[index]
        where = f"row {index[0]}" + (f", column {index[1]}" if len(index) > 1 else "") if index else "its value"
        raise FnnValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s); the first is {value} at {where}; "
            "remove or impute NaN/inf before using it"
        )


@functools.cache
def _host_is_the_device() -> bool:
    """True when jax computes on the CPU: its arrays are then already in host memory."""
    return all(d.platform == "cpu" for d in jax.devices())


@_compile.jit
def _all_finite_on_device(leaves) -> Array:
    return jnp.all(jnp.stack([jnp.isfinite(leaf).all() for leaf in leaves]))


# Weak references to the last leaves found finite. A jax array never changes, so predicting
# again with the same params, or checking them a second time within one fit, costs one identity
# test per leaf; numpy arrays can be written to, so params holding any are checked every time.
_last_finite: tuple[weakref.ref, ...] = ()


def _all_finite_on_host(arrays) -> bool:
    flat = [np.ravel(np.asarray(a)) for a in arrays]
    if len({a.dtype for a in flat}) > 1:  # concatenating would promote, copying every leaf: one pass each
        return all(np.isfinite(a).all() for a in flat)
    return not flat or bool(np.isfinite(np.concatenate(flat)).all())


def all_finite(leaves: list) -> bool:
    """True if no leaf (concrete arrays) holds NaN or ±inf: one reduction over all the leaves and
    at most one device-to-host transfer (numpy over one concatenation for leaves in host memory,
    one compiled reduction, whose single bool comes back, for leaves on an accelerator)."""
    global _last_finite
    if len(leaves) == len(_last_finite) and all(ref() is leaf for ref, leaf in zip(_last_finite, leaves)):
        return True
    host, device = [], []
    for leaf in leaves:
        (host if _host_is_the_device() or isinstance(leaf, np.ndarray) else device).append(leaf)
    finite = _all_finite_on_host(host) and (not device or bool(_all_finite_on_device(tuple(device))))
    if finite and all(isinstance(leaf, jax.Array) for leaf in leaves):
        _last_finite = tuple(map(weakref.ref, leaves))
    return finite


def features(x, name: str = "x", n_features: int | None = None, allow_single: bool = False, finite: bool = True):
    """Check a (n, d) input; with allow_single a (d,) example is accepted. Returns (x, single).
    finite=False leaves the NaN/inf check to the caller (predict does it inside its program)."""
    x = array(x, name)
    shape = tuple(x.shape)  # as given, for the messages
    single = False
    if x.ndim == 1 and allow_single:
        single = True
        x = x[None, :]
    if x.ndim != 2:
        expect = (
            "(n_samples, n_features) or a single example (n_features,)" if allow_single else "(n_samples, n_features)"
        )
        hint = f" ({_reshape_advice(name, x.shape[0], n_features)})" if x.ndim == 1 else ""
        raise FnnValueError(f"{name} must be 2-d {expect}, got shape {tuple(x.shape)}{hint}")
    if x.shape[0] == 0:
        raise FnnValueError(f"{name} has 0 samples (shape {tuple(x.shape)}); pass at least one row")
    if x.shape[1] == 0:
        raise FnnValueError(f"{name} has 0 features (shape {tuple(x.shape)})")
    if n_features is not None and x.shape[1] != n_features:
        raise FnnValueError(
            f"{name} has {x.shape[1]} features (shape {shape}) but the model's first layer expects {n_features}"
        )
    if finite:
        check_finite(x, name)
    return x, single


def _reshape_advice(name: str, length: int, n_features: int | None) -> str:
    """How to make a 1-d input of `length` entries 2-d, given what the model expects (if known)."""
    column = f"reshape a single feature column with {name}.reshape(-1, 1)"
    example = f"one example of {length} features is {name}.reshape(1, -1)"
    if n_features == 1:
        return column
    if n_features is not None and length == n_features:
        return f"the model expects {n_features} features: {example}"
    if n_features is not None:
        return f"the model expects {n_features} features: {column}, or {example}"
    return f"{column}, or {example}"


def same_length(x, y, xname: str = "x", yname: str = "y") -> None:
    if x.ndim == 0:
        raise FnnValueError(f"{xname} must have one entry per sample, got a scalar")
    if y.ndim == 0:
        raise FnnValueError(f"{yname} must have one entry per sample, got a scalar")
    if x.shape[0] != y.shape[0]:
        raise FnnValueError(f"{xname} and {yname} have different numbers of samples: {x.shape[0]} and {y.shape[0]}")


def integer(value: Any, name: str, minimum: int = 1) -> int:
    """A Python/numpy integer >= minimum (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise FnnTypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise FnnValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def count(value: Any, name: str, minimum: int = 1) -> int:
    """A count (epochs, batch_size, patience...): an integer >= minimum, or a whole float (10.0 is 10,
    as Keras takes it); 10.5, nan and bools are refused."""
    if isinstance(value, (float, np.floating)):
        if not (np.isfinite(value) and float(value).is_integer()):
            hint = f"pass {math.floor(value)} or {math.ceil(value)}" if np.isfinite(value) else "pass an integer"
            raise FnnTypeError(
                f"{name} must be an integer >= {minimum}, got float {float(value)!r}, which is not a whole "
                f"number; {hint} (a whole float such as 10.0 is taken as 10)"
            )
        value = int(value)
    return integer(value, name, minimum)


def real(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in the stated interval (a traced value, as in fnn.sweep, passes unchecked)."""
    if isinstance(value, Tracer):
        return typing.cast(float, value)  # traced (a number fnn.sweep vmaps over): it stands for the float
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


_MAX_SEED = 2**32 - 1  # larger seeds wrap around without jax_enable_x64: 2**32 would be seed 0


def key(k, name: str = "key"):
    """A JAX PRNG key: a typed key (jax.random.key), a legacy uint32 (2,) key, or an integer seed
    in [0, 2**32 - 1], which becomes jax.random.key(seed)."""
    expected = f"{name} must be a JAX PRNG key such as jax.random.key(0), or an integer seed >= 0"
    if isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
        if not 0 <= k <= _MAX_SEED:
            raise FnnValueError(
                f"{name} as an integer seed must be in [0, 2**32 - 1], got {int(k)}; "
                f"pass a seed such as 0, or a key made with jax.random.key"
            )
        return jax.random.key(int(k))
    if k is None:
        raise FnnTypeError(f"{expected}, got None")
    if isinstance(k, (bool, np.bool_)):
        raise FnnTypeError(f"{expected}, got bool {k!r}")
    if not hasattr(k, "dtype"):
        raise FnnTypeError(f"{expected}, got {type(k).__name__}")
    if jnp.issubdtype(k.dtype, jax.dtypes.prng_key):
        if k.shape != ():
            raise FnnValueError(f"{name} must be a single key (shape ()), got a batch of shape {k.shape}")
        return k
    if k.dtype == jnp.uint32 and k.shape == (2,):
        return jax.random.wrap_key_data(k)
    raise FnnTypeError(f"{expected}, got an array of dtype {k.dtype} and shape {tuple(k.shape)}")


def float_dtype(dtype, name: str = "dtype"):
    """A floating numpy/jax dtype, or an fnn error naming `name`."""
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        raise FnnTypeError(f"{name} must be a floating dtype, got {dtype!r}") from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise FnnTypeError(f"{name} must be a floating dtype, got {dtype}")
    return dtype


def device(a, dtype=None):
    """A host array as a jax array: a plain transfer. (jnp.asarray of a NumPy array binds a primitive
    that compiles a small program per shape and dtype: on a cold start those add up.)"""
    return jax.device_put(np.asarray(a, dtype))


def cast(a, dtype, name: str, host: bool = False) -> Any:
    """`a` as a jax array of the params' dtype, refusing values that overflow it (e.g. 1e39 in float32).
    host=True: a host array stays one (no copy when it has that dtype already), for the caller to pad."""
    if not is_concrete(a):
        return jnp.asarray(a, dtype)
    if isinstance(a, jax.Array) and a.dtype == jnp.dtype(dtype):
        return a  # already a jax array of that dtype: checked as it was made
    with np.errstate(over="ignore"):  # an overflow is reported below, by row
        out = np.asarray(a, dtype)
    if np.asarray(a).dtype.kind == "f" and out.dtype != np.asarray(a).dtype and not host_finite(out):
        check_finite(a, name)  # a NaN or inf given is named as such; what is left overflowed
        bad = np.argwhere(~np.isfinite(out))[0]
        raise FnnValueError(
            f"{name} has a value too large for the params' dtype {jnp.dtype(dtype).name} at row "
            f"{int(bad[0])}: {np.asarray(a)[tuple(bad)]}; scale the data (e.g. standardize it)"
        )
    return out if host else device(out)
