"""The codec of fnn's checkpoint: a pytree as a JSON structure plus named tensors, and the limits save and load share.

`Encoder` checks each node and records it (Python leaves as values, containers as objects of type, name, keys and
items, arrays as kind, dtype, shape and the name of their tensor); `decoder` is json.loads' object_hook back;
`match` fits a decoded tree to a template. Nothing here reads a class or a module from a file: a NamedTuple comes
back as a collections.namedtuple of its recorded name and fields.
"""

from __future__ import annotations

import collections
import functools
import json
import math
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate
from fnn.errors import CheckpointError, FnnTypeError, FnnValueError
from fnn.layers import DenseParams

# The limits save and load share, so that save refuses what load could not read back. MAX_HEADER is safetensors'
# MAX_HEADER_SIZE, which its writer and its reader both enforce; save refuses a tree or metadata deeper than
# MAX_DEPTH levels below its root (load reads them from any reasonable stack depth); MAX_DIMS and MAX_BYTES are
# numpy's own limits, past which no array save is given can be: load refuses such a shape before allocating.
MAX_HEADER, MAX_DEPTH, MAX_NODES, MAX_INT_BITS = 100_000_000, 64, 100_000, 13_000  # ints JSON reads back
MAX_DIMS, MAX_BYTES = 64, 2**63 - 1  # an array's bytes, counted as numpy counts them: its non-zero dimensions
DTYPES = "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 bfloat16 float32 float64 complex64 complex128"
CODES = dict(zip(DTYPES.split(), "BOOL I8 I16 I32 I64 U8 U16 U32 U64 F16 BF16 F32 F64 F32 F64".split()))  # noqa: SIM905
ITEMSIZE = {"BOOL": 1, "I8": 1, "U8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4}
ITEMSIZE |= {"I64": 8, "U64": 8, "F64": 8}
SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
dumps = functools.partial(json.dumps, separators=(",", ":"), allow_nan=False)


def children(x: Any) -> tuple[str, list, list, list]:
    """A container's type, keys (dict keys, fields or indices), children and paths' steps; "" for a leaf."""
    fields = getattr(type(x), "_fields", None)
    if isinstance(x, tuple) and isinstance(fields, tuple) and len(fields) == len(x):
        return "namedtuple", list(fields), list(x), [f".{f}" for f in fields]
    if type(x) not in (tuple, list, dict):
        return "", [], [], []
    keys = list(x) if type(x) is dict else list(range(len(x)))
    return type(x).__name__, keys, list(x.values() if type(x) is dict else x), [f"[{k!r}]" for k in keys]


@functools.lru_cache(maxsize=256)
def standin(name: str, fields: tuple) -> type:
    """A namedtuple of a recorded name and fields, one per pair so loads agree: never a class looked up."""
    return collections.namedtuple(name, fields, module="fnn.checkpoint")  # the module that loads them


def nested_too_deep(value: Any, root: str) -> str | None:
    """Where JSON-like `value` first nests past MAX_DEPTH levels below its root (a loop does too), or None."""
    stack: list[tuple[Any, int, tuple]] = [(value, 0, ())]  # (value, depth, (parent's steps, step)): no recursion
    while stack:
        x, depth, steps = stack.pop()
        if depth > MAX_DEPTH:
            path = []
            while steps:
                steps, step = steps
                path.append(step)
            return root + "".join(reversed(path))
        children = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, (list, tuple)) else ()
        stack.extend((v, depth + 1, (steps, f"[{k!r}]")) for k, v in children)
    return None


def header_too_big() -> FnnValueError:
    fix = "store long text as a uint8 array (np.frombuffer(text.encode(), np.uint8)) and many numbers as one array"
    where = "the tree's structure, its Python leaves and the metadata"
    return FnnValueError(f"{where} take more than a header holds ({MAX_HEADER:,} bytes, safetensors' limit); {fix}")


def check_shape(file: pathlib.Path, tensor: Any, shape: Any, itemsize: int) -> None:
    """Refuse a shape no array can have before numpy, JAX or safetensors meets it (to raise, or to allocate)."""
    if type(shape) is not list:
        why = "not a list of dimensions"
    elif len(shape) > MAX_DIMS:
        why = f"of {len(shape)} dimensions, more than {MAX_DIMS}"
    elif not all(type(d) is int and d >= 0 for d in shape):
        why = "with a dimension that is not an int >= 0"
    elif math.prod(d for d in shape if d) * itemsize > MAX_BYTES:  # numpy's count: an empty array's too
        why = "of more than 2**63 - 1 bytes"
    else:
        return
    show = repr(shape) if type(shape) is not list or len(shape) <= 8 else f"[{', '.join(map(repr, shape[:4]))}, …]"
    show = show if len(show) <= 120 else show[:100] + "…"
    what = f"tensor {str(tensor)[:100]!r} declares shape {show}, {why}"
    raise CheckpointError(f"{file} is corrupt or forged: {what}, which no array can have; fnn.save never writes one")


class Encoder:
    """Checks each node, records the structure, collects the tensors and finds the model's params if asked."""

    def __init__(self, allow_non_finite: bool, find_params: bool):
        self.allow_non_finite, self.nodes, self.tensors, self.on_path = allow_non_finite, 0, {}, set()
        self.params: tuple[str, Any] | None = None if find_params else ("", None)

    def node(self, x: Any, path: str = "", parts: tuple = ()) -> Any:
        where, self.nodes = path or "<root>", self.nodes + 1
        if len(parts) > MAX_DEPTH:
            raise FnnValueError(
                f"tree node {where} is past a checkpoint's {MAX_DEPTH} levels below the root; flatten the tree"
            )
        if self.nodes > MAX_NODES:
            fix = "store numbers as arrays (np.asarray of a list, np.stack of many arrays) to save fewer, larger leaves"
            raise FnnValueError(f"tree node {where} is past a checkpoint's {MAX_NODES:,} nodes; {fix}")
        if x is None or type(x) in (bool, str) or (type(x) is int and x.bit_length() <= MAX_INT_BITS):
            return x
        if type(x) is float and (self.allow_non_finite or np.isfinite(x)):
            return {"type": "float", "value": x.hex()}  # hex: exact, and JSON has no nan/inf
        if type(x) in (int, float):
            what = f"the non-finite float {x}" if type(x) is float else f"an int of {int(x).bit_length()} bits"
            raise FnnValueError(f"tree leaf {where} is {what}; pass allow_non_finite=True or a str to save it")
        if isinstance(x, (jax.Array, np.ndarray, np.generic)):
            return self.array(x, where, parts)
        kind, keys, values, steps = children(x)
        if not kind or id(x) in self.on_path:
            what = "contains itself" if kind else f"has unsupported type {type(x).__qualname__}; see fnn.save"
            raise (FnnValueError if kind else FnnTypeError)(f"tree {'node' if kind else 'leaf'} {where} {what}")
        if odd := [k for k in keys if type(k) is not str] if kind == "dict" else []:
            raise FnnTypeError(f"tree dict {where} has key {odd[0]!r} of type {type(odd[0]).__name__}; use str keys")
        node: dict[str, Any] = {"type": kind} | ({"keys": keys} if kind in ("dict", "namedtuple") else {})
        if kind == "namedtuple":
            try:
                node["name"] = standin(type(x).__name__, tuple(keys)).__name__
            except (TypeError, ValueError) as e:
                raise FnnTypeError(f"tree node {where} is a NamedTuple that load could not rebuild: {e}") from None
        if self.params is None and kind in ("tuple", "list") and values and all(type(p) is DenseParams for p in values):
            self.params, node["params"] = (path, values), True
        self.on_path.add(id(x))
        node["items"] = [self.node(v, path + s, (*parts, str(k))) for k, v, s in zip(keys, values, steps)]
        self.on_path.discard(id(x))
        return node

    def array(self, x: Any, where: str, parts: tuple) -> dict:
        if not _validate.is_concrete(x):
            raise FnnTypeError(f"tree leaf {where} is a traced value; save concrete arrays, outside jit/grad/vmap")
        key = isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
        a = np.asarray(jax.random.key_data(x) if key else x, order="C")  # C order; 0-d stays 0-d
        if a.dtype.name not in CODES:  # byte order apart: '>f4' and '<f4' are both float32
            what = "an object array" if a.dtype.kind == "O" else "an array"
            raise FnnTypeError(f"tree leaf {where} is {what} of dtype {a.dtype}; a checkpoint holds {DTYPES}")
        if not self.allow_non_finite and jnp.issubdtype(a.dtype, jnp.inexact) and not (ok := np.isfinite(a)).all():
            i, count = tuple(int(j) for j in np.argwhere(~ok)[0]), int((~ok).sum())
            raise FnnValueError(f"tree leaf {where} has {count} non-finite value(s), {a[i]} at {i}: allow_non_finite?")
        escape = lambda c: c if c in SAFE else "".join(f"%{b:02X}" for b in c.encode(errors="surrogatepass"))
        name = ".".join("".join(map(escape, part)) or "%" for part in parts) or "root"  # "%" alone is no escape
        name = "%5F_metadata__" if name == "__metadata__" else name  # escapes are injective and never hold "."
        self.tensors[name] = a.reshape(-1).view(np.real(a).dtype).reshape(*a.shape, 2) if a.dtype.kind == "c" else a
        kind = "key" if key else "jax" if isinstance(x, jax.Array) else "numpy"
        node = {"type": "array", "kind": kind, "dtype": a.dtype.name, "shape": list(a.shape), "tensor": name}
        return node | ({"impl": str(jax.random.key_impl(x))} if key else {})


def decoder(file: pathlib.Path, tensors: dict, final: bool) -> Callable[[dict], Any]:
    """json.loads' object_hook for fnn_tree; final: arrays of the kind saved, else numpy (for `like` to choose)."""

    def hook(node: dict) -> Any:
        kind = node["type"]
        if kind == "float":
            return float.fromhex(node["value"])
        if kind == "namedtuple":
            return standin(node["name"], tuple(node["keys"]))._make(node["items"])
        if kind in ("tuple", "list", "dict"):  # the params saved with the model come back as DenseParams
            items, keys = node["items"], node.get("keys", ())
            items = [DenseParams._make(p) for p in items] if node.get("params") else items
            return dict(zip(keys, items, strict=True)) if kind == "dict" else tuple(items) if kind == "tuple" else items
        name, shape, kind, entry = node["dtype"], node["shape"], node["kind"], tensors.pop(node["tensor"])  # once
        code = CODES[name]  # a KeyError for a dtype fnn never writes: a malformed header
        check_shape(file, node["tensor"], shape, jnp.dtype(name).itemsize)
        stored = [entry["dtype"], *entry["shape"]] == [code, *shape, *[2] * name.startswith("complex")]
        if kind not in ("jax", "numpy", "key") or not stored:
            raise ValueError(f"leaf {node['tensor']} does not match its tensor")
        dtype = jnp.dtype(name)  # jnp knows bfloat16 by name; numpy alone does not
        a = np.frombuffer(entry["data"], dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(shape)
        if kind == "key":
            return jax.random.wrap_key_data(jax.device_put(a), impl=str(node["impl"]))
        x = a if not final or kind == "numpy" else jax.device_put(a)  # not jnp.asarray: no program to compile
        if x.dtype != a.dtype:  # with x64 off JAX makes 64-bit arrays 32-bit: refuse, never cast
            raise CheckpointError(f"{file}: {node['tensor']} is {a.dtype}, {x.dtype} in JAX: enable jax_enable_x64")
        return x

    return hook


def match(loaded: Any, like: Any, path: str, file: pathlib.Path, leaves: list) -> None:
    """Refuse any difference from `like`; collect the leaves (numpy where like has numpy) in like's leaf order."""
    (kind, keys, values, steps), (theirs, their_keys, their_values, _) = children(like), children(loaded)
    same = theirs == kind and sorted(map(str, their_keys)) == sorted(map(str, keys))
    same = same and bool(kind or type(loaded) is type(like))
    if array := hasattr(like, "dtype") and hasattr(loaded, "dtype"):
        same = (tuple(loaded.shape), str(loaded.dtype)) == (tuple(like.shape), str(like.dtype))
    if not same:
        show = lambda x, k: f"{type(x).__name__} {getattr(x, 'shape', k or '')} {getattr(x, 'dtype', '')}".strip()
        what = f"is {show(loaded, their_keys)} but like has {show(like, keys)}" + "; load does not cast" * array
        raise CheckpointError(f"{file}: checkpoint node {path or '<root>'} {what}")
    if not kind and like is not None:  # a leaf (None is none to JAX); arrays come decoded as numpy
        jax_array = isinstance(loaded, np.ndarray) and not isinstance(like, (np.ndarray, np.generic))
        leaves.append(loaded[()] if isinstance(like, np.generic) else jax.device_put(loaded) if jax_array else loaded)
    got, items = dict(zip(their_keys, their_values)), list(zip(keys, values, steps))
    for k, w, s in sorted(items, key=lambda item: item[0]) if kind == "dict" else items:  # JAX sorts dict keys
        match(got[k], w, path + s, file, leaves)
