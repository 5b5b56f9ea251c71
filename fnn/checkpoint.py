"""Save and load pytrees (params, optimizer states, training positions) as one checkpoint file.

A tree is built from tuples, lists, dicts with str keys, NamedTuples and None, with leaves that
are arrays (jax or numpy, numeric dtypes), JAX typed PRNG keys, or Python bool/int/float/str.
`save(..., model=model)` also stores the model's architecture, which `load(..., model=other)`
checks and `load(..., with_model=True)` rebuilds.

The file is a safetensors file (format "fnn-checkpoint", version 2; integers little-endian):

    N           8 bytes   uint64, length of the header
    header      N bytes   JSON, padded with spaces to a multiple of 8 bytes:
                          {"__metadata__": {"fnn_sha256": …, "fnn_format": "fnn-checkpoint",
                                            "fnn_format_version": "2", "fnn_version": …,
                                            "jax_version": …, "fnn_tree": …,
                                            "fnn_model": … (if saved with a model),
                                            "fnn_metadata": … (if saved with metadata)},
                           "<tensor name>": {"dtype": "F32", "shape": [2, 3],
                                             "data_offsets": [begin, end]}, …}
    buffer                each array leaf's bytes, C order, little-endian, in tree order

Each array leaf is one tensor, named by its path in the tree: dict keys, NamedTuple fields and
list indices joined by "." (e.g. "params.0.w"; a lone array leaf is "root"), any character other
than A-Z a-z 0-9 _ - written as %XX of its UTF-8 bytes. A typed PRNG key is stored as its uint32
key data ("U32"), the impl recorded in fnn_tree; complex arrays as F32/F64 with a trailing axis of
2 (real, imaginary), since safetensors has no complex128. fnn_tree (the structure, each array leaf
with its dtype, shape and tensor name), fnn_model and fnn_metadata are JSON texts. fnn_sha256 is
the sha256 of the whole file with its own 64 hex digits replaced by "0"s, so a change to any byte
(the tensors, the metadata, the offsets, the padding) is caught; being the first key, it sits at
a fixed offset, and `load` checks it before parsing anything. fnn_model is

    {"layers": [{"class": "Dense", "config": {every dataclass field of the layer}}, …],
     "input_dim": n_in, "dtype": "float32", "loss": "mse" or null}

Any safetensors reader opens the file (e.g. `safetensors.numpy.load_file(path)` gives the arrays
by tensor name); `load` refuses a safetensors file without fnn's metadata, as it cannot rebuild a
tree from it or verify its bytes.

Files of format version 1 (the layout below, before safetensors) are still read:

    magic      15 bytes   b"FNN-CHECKPOINT\\n"
    H, P       16 bytes   uint64 lengths of the header and the payload
    header      H bytes   UTF-8 JSON: format, format_version, fnn_version, jax_version,
                          metadata, tree
    payload     P bytes   each array leaf's bytes, C order, little-endian, in tree order
    digest     32 bytes   sha256 of every byte before it

The file holds no pickle and `load` never unpickles or evaluates anything from it. A NamedTuple
is recorded by module, qualname and fields; `load` looks the class up without running code (see
`load`). `save` writes a temporary file beside the target, fsyncs it, then `os.replace`s it onto
the target, so a crash leaves either the old checkpoint or the new one, never a mixture (a stale
`.<name>.*.tmp` file may remain after a hard kill). A new file keeps mkstemp's owner-only mode;
an overwritten one keeps the mode it had.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import importlib
import json
import math
import os
import pathlib
import struct
import sys
import tempfile
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnTypeError, FnnValueError

FORMAT = "fnn-checkpoint"
FORMAT_VERSION = 2
MAGIC = b"FNN-CHECKPOINT\n"  # format version 1 only
_LENGTHS = struct.Struct("<QQ")
_PREFIX = len(MAGIC) + _LENGTHS.size
_DIGEST = hashlib.sha256().digest_size
_HEADER_LENGTH = struct.Struct("<Q")
_SHA_AT = b'{"__metadata__":{"fnn_sha256":"'  # the header's fixed opening; the digest follows it
_SHA_HEX = 2 * _DIGEST
_MAX_HEADER = 100_000_000  # bytes; the safetensors reference reader refuses larger headers too
_DTYPES = frozenset({
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
})
_SAFETENSORS_DTYPES = {
    "bool": "BOOL", "int8": "I8", "int16": "I16", "int32": "I32", "int64": "I64", "uint8": "U8",
    "uint16": "U16", "uint32": "U32", "uint64": "U64", "float16": "F16", "bfloat16": "BF16",
    "float32": "F32", "float64": "F64", "complex64": "F32", "complex128": "F64",
}
_FOREIGN = {  # leading bytes of files people mistake for checkpoints: named in the error
    b"\x80": "a pickle", b"\x93NUMPY": "a numpy .npy file (possibly pickled)",
    b"PK\x03\x04": "a zip/.npz archive", b"\x89HDF": "an HDF5 file",
}
_SUPPORTED = ("tuple, list, dict (str keys), NamedTuple, None, numeric arrays, typed PRNG keys, "
              "bool, int, float or str")
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class Architecture(NamedTuple):
    """What `save(..., model=)` records beside the params; see `read_architecture`."""
    model: Any  # fnn.Sequential
    input_dim: int  # the params' input width
    dtype: str  # the params' dtype, e.g. "float32"
    loss: str | None  # the loss name given to save, canonical, or None


def _where(path: str) -> str:
    return path or "<root>"


def _path_arg(path, what: str) -> pathlib.Path:
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise FnnTypeError(f"{what} path must be a str or os.PathLike, got {type(path).__name__} "
                           f"{path!r:.60}")
    return pathlib.Path(path)


def _fnn_version() -> str:
    fnn = sys.modules.get("fnn")  # fnn/__init__ imports this module: read it, never import it
    version = getattr(fnn, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        import importlib.metadata
        return importlib.metadata.version("fnn")
    except Exception:  # not installed, or metadata unreadable: the version is informational
        return "unknown"


def _is_namedtuple_class(cls) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple) and isinstance(
        getattr(cls, "_fields", None), tuple)


def _build(cls: type, items) -> tuple:
    # tuple.__new__ fills a NamedTuple without calling a constructor a subclass may override.
    return tuple.__new__(cls, items)


def _name_part(key: str) -> str:
    """One path component of a tensor name: safe characters kept, every other byte as %XX.

    Injective, and never containing ".", so names of different leaves never collide; the empty
    key is "%", which escaping never produces.
    """
    if key == "":
        return "%"
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
                   for c in key)


def _tensor_name(parts: tuple) -> str:
    if not parts:
        return "root"  # the tree is this one leaf, so no other name can clash with it
    name = ".".join(parts)
    return "%5F" + name[1:] if name == "__metadata__" else name  # the header's reserved key


# ---------------------------------------------------------------- save: tree -> header + arrays

class _Encoder:
    """One pass over the tree: validates every leaf and collects the host arrays in order.

    named: give each array node the name of its tensor, as format version 2 does; without it the
    nodes are those of format version 1.
    """

    def __init__(self, allow_non_finite: bool, named: bool = True):
        self.allow_non_finite = allow_non_finite
        self.named = named
        self.arrays: list[np.ndarray] = []
        self.names: list[str] = []  # each array's tensor name and shape, when named
        self.shapes: list[list[int]] = []
        self.on_path: set[int] = set()  # ids of the containers above the current node

    def node(self, x, path: str, parts: tuple = ()) -> dict:
        if x is None:
            return {"type": "none"}
        if type(x) in (bool, int, str):
            return {"type": type(x).__name__, "value": x}
        if type(x) is float:
            if not self.allow_non_finite and not math.isfinite(x):
                raise FnnValueError(f"tree leaf {_where(path)} is the non-finite float {x}; "
                                    "pass allow_non_finite=True to save it anyway")
            return {"type": "float", "value": x.hex()}  # hex: exact, and JSON has no nan/inf
        if isinstance(x, jax.core.Tracer):
            raise FnnTypeError(f"tree leaf {_where(path)} is a traced value; save concrete "
                               "arrays, outside jit/grad/vmap")
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = self.array(jax.random.key_data(x), path, parts)
            return {"type": "key", "impl": str(jax.random.key_impl(x)), **data}
        if isinstance(x, (jax.Array, np.ndarray, np.generic)):
            kind = "jax" if isinstance(x, jax.Array) else (
                "numpy" if isinstance(x, np.ndarray) else "numpy_scalar")
            return {"type": "array", "kind": kind, **self.array(x, path, parts)}
        if type(x) in (tuple, list, dict) or (isinstance(x, tuple) and _is_namedtuple_class(type(x))):
            if id(x) in self.on_path:
                raise FnnValueError(f"tree node {_where(path)} contains itself")
            self.on_path.add(id(x))
            try:
                return self.container(x, path, parts)
            finally:
                self.on_path.discard(id(x))
        raise FnnTypeError(f"tree leaf {_where(path)} has unsupported type {type(x).__qualname__}; "
                           f"a checkpoint holds {_SUPPORTED}")

    def container(self, x, path: str, parts: tuple) -> dict:
        if type(x) is dict:
            for k in x:
                if type(k) is not str:
                    raise FnnTypeError(f"tree dict {_where(path)} has key {k!r} of type "
                                       f"{type(k).__name__}; checkpoint dict keys must be str")
            return {"type": "dict", "keys": list(x),
                    "items": [self.node(v, f"{path}[{k!r}]", parts + (_name_part(k),))
                              for k, v in x.items()]}
        if type(x) in (tuple, list):
            return {"type": type(x).__name__,
                    "items": [self.node(v, f"{path}[{i}]", parts + (str(i),)) for i, v in enumerate(x)]}
        cls = type(x)
        return {"type": "namedtuple", "module": cls.__module__, "qualname": cls.__qualname__,
                "fields": list(cls._fields),
                "items": [self.node(v, f"{path}.{f}", parts + (_name_part(f),))
                          for f, v in zip(cls._fields, x)]}

    def array(self, x, path: str, parts: tuple) -> dict:
        a = np.asarray(x)
        name = a.dtype.name  # byte order apart: '>f4' and '<f4' are both float32
        if name not in _DTYPES:
            what = "an object array" if a.dtype.kind == "O" else "an array"
            raise FnnTypeError(f"tree leaf {_where(path)} is {what} of dtype {a.dtype}; a checkpoint "
                               f"stores arrays of dtype {', '.join(sorted(_DTYPES))}")
        if not self.allow_non_finite and jnp.issubdtype(a.dtype, jnp.inexact):
            bad = ~np.isfinite(a)
            if bad.any():
                index = tuple(int(i) for i in np.argwhere(bad)[0])
                raise FnnValueError(
                    f"tree leaf {_where(path)} contains {int(bad.sum())} non-finite value(s), the "
                    f"first {a[index]} at index {index}; pass allow_non_finite=True to save it anyway")
        # Little-endian on disk whatever the host, so files move between machines.
        self.arrays.append(np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False)))
        node = {"dtype": name, "shape": list(a.shape)}
        if self.named:
            self.names.append(_tensor_name(parts))
            self.shapes.append(node["shape"])  # ascontiguousarray made 0-d arrays 1-d
            node["tensor"] = self.names[-1]
        return node


def _safetensors_entry(dtype_name: str, shape: list, begin: int, end: int) -> dict:
    pair = [2] if dtype_name.startswith("complex") else []  # (real, imaginary) on a last axis
    return {"dtype": _SAFETENSORS_DTYPES[dtype_name], "shape": list(shape) + pair,
            "data_offsets": [begin, end]}


def _check_metadata(value, path: str = "metadata") -> None:
    if value is None or type(value) in (bool, int, str):
        return
    if type(value) is float:
        if not math.isfinite(value):
            raise FnnValueError(f"{path} is the non-finite float {value}; metadata is strict JSON")
        return
    if type(value) is list:
        for i, v in enumerate(value):
            _check_metadata(v, f"{path}[{i}]")
        return
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise FnnTypeError(f"{path} has key {k!r} of type {type(k).__name__}; "
                                   "metadata keys must be str")
            _check_metadata(v, f"{path}[{k!r}]")
        return
    raise FnnTypeError(f"{path} has type {type(value).__name__}; metadata holds JSON values only "
                       "(dict with str keys, list, str, int, finite float, bool, None)")


# ---------------------------------------------------------------- the model beside the params

def _float_dtype(dtype, what: str) -> str:
    return _validate.float_dtype(dtype, what).name


def _params_in(tree, path: str = ""):
    """(path, params) of the first tuple/list of DenseParams in `tree`, depth first, or None."""
    from fnn import models  # on use: fnn.models and this module never import each other on load

    if type(tree) in (tuple, list) and tree and all(type(p) is models.DenseParams for p in tree):
        return path, tree
    if type(tree) is dict:
        children = ((f"{path}[{k!r}]", v) for k, v in tree.items())
    elif isinstance(tree, tuple) and _is_namedtuple_class(type(tree)):
        children = ((f"{path}.{f}", v) for f, v in zip(type(tree)._fields, tree))
    elif type(tree) in (tuple, list):
        children = ((f"{path}[{i}]", v) for i, v in enumerate(tree))
    else:
        return None
    for child_path, child in children:
        found = _params_in(child, child_path)
        if found is not None:
            return found
    return None


def _misfit(model, params) -> str | None:
    """How `params` fail to fit `model` (shapes and dtypes, not values), or None."""
    if len(params) != len(model.layers):
        return f"{len(params)} layer entries for a model of {len(model.layers)} layers"
    dims = (jnp.shape(params[0].w)[:1] or (None,)) + tuple(layer.units for layer in model.layers)
    for i, (p, n_in, n_out) in enumerate(zip(params, dims[:-1], dims[1:])):
        if (jnp.shape(p.w), jnp.shape(p.b)) != ((n_in, n_out), (n_out,)):
            return (f"params[{i}] has w {jnp.shape(p.w)} and b {jnp.shape(p.b)}, layer {i} of the model "
                    f"calls for ({n_in}, {n_out}) and ({n_out},)")
        if not all(jnp.issubdtype(jnp.result_type(leaf), jnp.floating) for leaf in p):
            return f"params[{i}] is not floating point"
    return None


def _architecture(tree, model, input_dim, dtype, loss) -> dict:
    """The JSON record of `model` with its params' input width and dtype (read off the tree's
    first tuple of DenseParams, which must fit the model, or given), and the loss name."""
    from fnn import models

    models.check_model(model)
    found = _params_in(tree)
    if found is not None:
        where, params = found
        misfit = _misfit(model, params)
        if misfit is not None:
            raise FnnValueError(f"the params at tree node {_where(where)} do not fit model=: {misfit}")
        for name, given, value in (("input_dim", input_dim, int(jnp.shape(params[0].w)[0])),
                                   ("dtype", dtype, jnp.dtype(jnp.result_type(params[0].w)).name)):
            if given is not None and given != value:
                raise FnnValueError(f"{name}={given!r} but the params at tree node {_where(where)} have "
                                    f"{name} {value!r}")
        input_dim, dtype = int(jnp.shape(params[0].w)[0]), jnp.dtype(jnp.result_type(params[0].w)).name
    declared = getattr(model.layers[0], "input_dim", None)  # Dense(..., input_dim=n), where it exists
    if input_dim is None:
        input_dim = declared
    if input_dim is None or dtype is None:
        raise FnnValueError("save(model=...) records the params' input width and dtype, and the tree "
                            "holds no tuple of DenseParams to read them from; pass input_dim= and dtype=")
    if declared is not None and declared != input_dim:
        raise FnnValueError(f"the params take {input_dim} inputs but model= declares "
                            f"Dense(..., input_dim={declared}) on its first layer")
    layers = []
    for i, layer in enumerate(model.layers):
        config = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}
        for name, value in config.items():
            if not (value is None or type(value) in (bool, int, str)
                    or (type(value) is float and math.isfinite(value))):
                raise FnnTypeError(f"model layer {i} field {name!r} is {value!r} of type "
                                   f"{type(value).__name__}; a checkpoint stores None, bool, int, "
                                   "finite float or str fields")
        layers.append({"class": type(layer).__name__, "config": config})
    if loss is not None:
        if type(loss) is not str:
            raise FnnTypeError(f"loss must be a loss name (str) or None, got {type(loss).__name__}")
        loss = models.resolve_loss(model, loss).name
    return {"layers": layers, "input_dim": int(input_dim), "dtype": dtype, "loss": loss}


def _read_architecture(record, path) -> dict:
    """The model record of the file, checked field by field; a CheckpointError if malformed."""
    def bad(what):
        return CheckpointError(f"{path} has a malformed header: its model record {what}")

    if type(record) is not dict:
        raise bad("is not a JSON object")
    layers = record.get("layers")
    if type(layers) is not list or not layers:
        raise bad("has no layers")
    for i, layer in enumerate(layers):
        if type(layer) is not dict or type(layer.get("class")) is not str \
                or type(layer.get("config")) is not dict:
            raise bad(f"has a malformed layer {i}")
        for name, value in layer["config"].items():
            if not (value is None or type(value) in (bool, int, float, str)):
                raise bad(f"has layer {i} field {name!r} of JSON type {type(value).__name__}")
    input_dim, dtype, loss = record.get("input_dim"), record.get("dtype"), record.get("loss")
    if type(input_dim) is not int or input_dim < 1:
        raise bad(f"has input_dim {input_dim!r}")
    if dtype not in _DTYPES or not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise bad(f"has dtype {dtype!r}")
    if loss is not None and type(loss) is not str:
        raise bad(f"has loss {loss!r}")
    return record


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def _first_difference(record: dict, model, input_dim, dtype) -> str | None:
    """The first way the file's architecture differs from what the caller expects, or None.

    Order: the layer count, the input width, each layer's class and fields (layer 0 first, fields
    in Dense's order, then any the file has that Dense lacks), the dtype. A field absent from the
    file (saved before Dense had it) counts as its default.
    """
    layers = record["layers"]
    if model is not None and len(layers) != len(model.layers):
        return f"layer count: the file has {len(layers)}, this model has {len(model.layers)}"
    if input_dim is not None and record["input_dim"] != input_dim:
        return f"input width: the file has {record['input_dim']}, input_dim={input_dim} was given"
    for i, (saved, layer) in enumerate(zip(layers, model.layers if model is not None else ())):
        cls = type(layer).__name__
        if saved["class"] != cls:
            return f"layer {i} class: the file has {saved['class']!r}, this model has {cls!r}"
        fields = {f.name: f for f in dataclasses.fields(layer)}
        for name, f in fields.items():
            if name in saved["config"]:
                theirs = saved["config"][name]
            elif f.default is not dataclasses.MISSING:
                theirs = f.default
            else:
                return f"layer {i} {name}: the file has no value, this model has {getattr(layer, name)!r}"
            if not _same(theirs, getattr(layer, name)):
                return f"layer {i} {name}: the file has {theirs!r}, this model has {getattr(layer, name)!r}"
        for name in saved["config"]:
            if name not in fields:
                return (f"layer {i} {name}: the file has {saved['config'][name]!r}, this model's {cls} "
                        "has no such field")
    if dtype is not None and record["dtype"] != dtype:
        return f"dtype: the file has {record['dtype']}, dtype={dtype} was given"
    return None


def _rebuild(record: dict, path) -> Architecture:
    from fnn import models

    layers = []
    for i, saved in enumerate(record["layers"]):
        if saved["class"] != "Dense":
            raise CheckpointError(f"{path} records layer {i} of class {saved['class']!r}, which this fnn "
                                  "does not have; upgrade fnn to load its model")
        known = {f.name for f in dataclasses.fields(models.Dense)}
        unknown = [name for name in saved["config"] if name not in known]
        if unknown:
            raise CheckpointError(f"{path} records layer {i} field(s) {unknown} that this fnn's Dense does "
                                  "not have; upgrade fnn to load its model")
        try:
            layers.append(models.Dense(**saved["config"]))
        except (TypeError, ValueError) as e:  # fnn's own errors subclass these
            raise CheckpointError(f"{path} records a layer {i} that cannot be rebuilt: {e}") from None
    return Architecture(models.Sequential(layers), record["input_dim"], record["dtype"], record["loss"])


# ---------------------------------------------------------------- save: the file on disk

def _write(f, hasher, data) -> None:
    f.write(data)
    hasher.update(data)


def _fsync_directory(directory: pathlib.Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory, hence best effort.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def save(path, tree, *, model=None, input_dim: int | None = None, dtype=None, loss: str | None = None,
         allow_non_finite: bool = False, metadata: dict | None = None) -> pathlib.Path:
    """Write `tree` to `path` atomically, replacing any file there; returns the path.

    model: a fnn.Sequential whose architecture (every Dense field), input width and params dtype
    are stored with the tree, for `load(path, model=...)` to check and `load(path,
    with_model=True)` to rebuild. The input width and dtype are read off the tree's first tuple
    of DenseParams (depth first), which must fit the model; a tree without one (a flat parameter
    vector, say) needs input_dim= and dtype=. loss: a loss name stored with the model.
    metadata: an optional JSON dict (str keys) stored in the header; see `read_metadata`.
    Raises FnnTypeError for an unsupported leaf and FnnValueError for a non-finite float (unless
    allow_non_finite) or a directory at `path`, naming the offending leaf, before touching disk.

    Example:
        >>> import os, tempfile, jax.numpy as jnp
        >>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
        >>> params = (fnn.DenseParams(w=jnp.ones((2, 3)), b=jnp.zeros(3)),)
        >>> fnn.save(path, {"params": params, "epoch": 4}).name
        'run.ckpt'
        >>> model = fnn.Sequential([fnn.Dense(3, activation="tanh")])
        >>> fnn.save(path, params, model=model, loss="mse").name
        'run.ckpt'
    """
    path = _path_arg(path, "save")
    if path.is_dir():
        raise FnnValueError(f"cannot save to {path}: it is a directory; give a file name inside it")
    if metadata is not None and type(metadata) is not dict:
        raise FnnTypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    _check_metadata(metadata)
    if model is None and (input_dim, dtype, loss) != (None, None, None):
        raise FnnValueError("input_dim=, dtype= and loss= describe the model saved with the params: "
                            "pass model= too")
    if input_dim is not None:
        input_dim = _validate.integer(input_dim, "input_dim", minimum=1)
    if dtype is not None:
        dtype = _float_dtype(dtype, "dtype")
    encoder = _Encoder(allow_non_finite)
    fnn_header = {"fnn_sha256": "0" * _SHA_HEX, "fnn_format": FORMAT,
                  "fnn_format_version": str(FORMAT_VERSION), "fnn_version": _fnn_version(),
                  "jax_version": jax.__version__, "fnn_tree": _json(encoder.node(tree, ""))}
    if model is not None:
        fnn_header["fnn_model"] = _json(_architecture(tree, model, input_dim, dtype, loss))
    if metadata is not None:
        fnn_header["fnn_metadata"] = _json(metadata)
    header, offset = {"__metadata__": fnn_header}, 0
    for name, shape, a in zip(encoder.names, encoder.shapes, encoder.arrays):
        header[name] = _safetensors_entry(a.dtype.name, shape, offset, offset + a.nbytes)
        offset += a.nbytes
    header_bytes = _json(header).encode("ascii")  # json.dumps escapes every non-ASCII character
    header_bytes += b" " * (-len(header_bytes) % 8)  # so the buffer starts 8-byte aligned
    assert header_bytes.startswith(_SHA_AT + b"0" * _SHA_HEX + b'"')

    directory = path.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(OSError, AttributeError):  # keep an overwritten file's mode
                os.fchmod(f.fileno(), path.stat().st_mode & 0o7777)
            hasher = hashlib.sha256()  # of the file as written: its digest field still all "0"s
            _write(f, hasher, _HEADER_LENGTH.pack(len(header_bytes)))
            _write(f, hasher, header_bytes)
            for a in encoder.arrays:
                _write(f, hasher, a.reshape(-1).view(np.uint8))
            f.seek(_HEADER_LENGTH.size + len(_SHA_AT))
            f.write(hasher.hexdigest().encode("ascii"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
    return path


# ---------------------------------------------------------------- load: file -> header + tree

def _field(node: dict, name: str, kind, path: str):
    value = node.get(name)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise CheckpointError(f"malformed header: node {_where(path)} has no valid {name!r}")
    return value


_standins: dict[tuple, type] = {}  # one stand-in class per recorded type, so loads agree


def _namedtuple_class(module: str, qualname: str, fields: tuple, path: str) -> type:
    """The recorded NamedTuple class if it can be found without running code, else a stand-in.

    Only a module already imported, or a public submodule of an imported package, is consulted;
    attributes are read from __dict__s, so no __getattr__ or import side effect of a name taken
    from the file runs. A class qualifies only if it is a tuple subclass with the same _fields.
    """
    parts = module.split(".")
    mod = sys.modules.get(module)
    if mod is None and parts[0] in sys.modules and not any(p.startswith("_") for p in parts):
        with contextlib.suppress(Exception):  # not importable: fall through to a stand-in
            mod = importlib.import_module(module)
    obj: Any = mod
    for part in qualname.split("."):
        obj = vars(obj).get(part) if hasattr(obj, "__dict__") else None
    if _is_namedtuple_class(obj) and tuple(obj._fields) == fields:
        return obj
    key = (module, qualname, fields)
    if key not in _standins:
        try:
            _standins[key] = collections.namedtuple(qualname.rpartition(".")[2], fields)
        except ValueError as e:
            raise CheckpointError(f"malformed header: node {_where(path)} records NamedTuple "
                                  f"{qualname!r} with fields {fields}: {e}") from None
    return _standins[key]


class _Decoder:
    """The tree from its header nodes; array bytes are read in order from one payload."""

    def __init__(self, payload: memoryview):
        self.payload = payload
        self.offset = 0

    def node(self, node, path: str):
        if not isinstance(node, dict):
            raise CheckpointError(f"malformed header: node {_where(path)} is not a JSON object")
        kind = node.get("type")
        if kind == "none":
            return None
        if kind in ("bool", "int", "str"):
            return _field(node, "value", {"bool": bool, "int": int, "str": str}[kind], path)
        if kind == "float":
            try:
                return float.fromhex(_field(node, "value", str, path))
            except ValueError:
                raise CheckpointError(f"malformed header: float at {_where(path)}") from None
        if kind == "array":
            a = self.array(node, path)
            variant = node.get("kind")
            if variant == "numpy":
                return a
            if variant == "numpy_scalar" and a.shape == ():
                return a[()]
            if variant == "jax":
                return _to_jax(a, path)
            raise CheckpointError(f"malformed header: array {_where(path)} has kind {variant!r}")
        if kind == "key":
            data = _to_jax(self.array(node, path), path)
            try:
                return jax.random.wrap_key_data(data, impl=_field(node, "impl", str, path))
            except (ValueError, TypeError) as e:
                raise CheckpointError(f"checkpoint key {_where(path)} cannot be rebuilt: {e}") from None
        if kind in ("tuple", "list"):
            items = _field(node, "items", list, path)
            items = [self.node(v, f"{path}[{i}]") for i, v in enumerate(items)]
            return tuple(items) if kind == "tuple" else items
        if kind == "dict":
            keys, values = _field(node, "keys", list, path), _field(node, "items", list, path)
            if len(keys) != len(values) or not all(type(k) is str for k in keys) or \
                    len(set(keys)) != len(keys):
                raise CheckpointError(f"malformed header: dict {_where(path)} has bad keys")
            return {k: self.node(v, f"{path}[{k!r}]") for k, v in zip(keys, values)}
        if kind == "namedtuple":
            fields = tuple(_field(node, "fields", list, path))
            items = _field(node, "items", list, path)
            if len(fields) != len(items) or not all(type(f) is str for f in fields):
                raise CheckpointError(f"malformed header: NamedTuple {_where(path)} has bad fields")
            cls = _namedtuple_class(_field(node, "module", str, path),
                                    _field(node, "qualname", str, path), fields, path)
            return _build(cls, (self.node(v, f"{path}.{f}") for f, v in zip(fields, items)))
        raise CheckpointError(f"malformed header: node {_where(path)} has unknown type {kind!r}")

    def array(self, node: dict, path: str) -> np.ndarray:
        name, shape = _field(node, "dtype", str, path), _field(node, "shape", list, path)
        if name not in _DTYPES or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"malformed header: array {_where(path)} has dtype {name!r}, "
                                  f"shape {shape!r}")
        dtype = jnp.dtype(name)  # jnp knows bfloat16 by name; numpy alone does not
        count = math.prod(shape)
        start = self.take(node, path, name, shape, count * dtype.itemsize)
        if name == "bool" and count and np.frombuffer(self.payload, np.uint8, count, start).max() > 1:
            raise CheckpointError(f"checkpoint leaf {_where(path)} is a bool array holding bytes "
                                  "other than 0 and 1")
        a = np.frombuffer(self.payload, dtype.newbyteorder("<"), count, start)
        return a.astype(dtype).reshape(shape)  # astype copies: the result owns writable memory

    def take(self, node: dict, path: str, dtype: str, shape: list, nbytes: int) -> int:
        """Where in the payload the array at `path` starts, after checking its bytes are there."""
        start, end = self.offset, self.offset + nbytes
        if end > len(self.payload):
            raise CheckpointError(f"malformed header: array {_where(path)} runs past the payload")
        self.offset = end
        return start

    def finish(self, path) -> None:
        if self.offset != len(self.payload):
            raise CheckpointError(f"{path} has a malformed header: its arrays take {self.offset} "
                                  f"bytes of a {len(self.payload)}-byte payload")


class _TensorDecoder(_Decoder):
    """The same, each array's bytes found through its safetensors entry (format version 2)."""

    def __init__(self, payload: memoryview, tensors: dict):
        super().__init__(payload)
        self.tensors = tensors
        self.used: set[str] = set()

    def take(self, node: dict, path: str, dtype: str, shape: list, nbytes: int) -> int:
        name = node.get("tensor")
        entry = self.tensors.get(name) if type(name) is str else None
        if type(entry) is not dict:
            raise CheckpointError(f"malformed header: array {_where(path)} names tensor {name!r}, which "
                                  "the safetensors header does not have")
        if name in self.used:
            raise CheckpointError(f"malformed header: arrays share tensor {name!r}")
        self.used.add(name)
        start, end = self.offset, self.offset + nbytes
        want = _safetensors_entry(dtype, shape, start, end)
        if entry != want or [type(v) for v in entry["shape"] + entry["data_offsets"]] != \
                [int] * (len(want["shape"]) + 2):
            raise CheckpointError(f"malformed header: tensor {name!r} is {entry} in the safetensors header "
                                  f"but the tree's array {_where(path)} calls for {want}")
        if end > len(self.payload):
            raise CheckpointError(f"malformed header: array {_where(path)} runs past the payload")
        self.offset = end
        return start

    def finish(self, path) -> None:
        super().finish(path)
        extra = sorted(set(self.tensors) - self.used)
        if extra:
            raise CheckpointError(f"{path} has a malformed header: tensors {extra[:5]} are not in the tree")


def _layout(path, head: bytes, size: int) -> int:
    """The format version a file of `size` bytes opening with `head` is laid out in (1 or 2), or a
    CheckpointError for all that its first bytes and size can show, so nothing more is read first."""
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not an fnn checkpoint")
    if head.startswith(MAGIC):
        if size >= _PREFIX + _DIGEST:
            header_size, payload_size = _LENGTHS.unpack_from(head, len(MAGIC))
            if size != _PREFIX + header_size + payload_size + _DIGEST:
                raise _size_error(path, size, _PREFIX + header_size + payload_size + _DIGEST)
        return 1
    if size < len(MAGIC) and MAGIC.startswith(head):
        raise CheckpointError(f"{path} is truncated: {size} bytes, shorter than the magic line")
    if size < _HEADER_LENGTH.size:
        raise CheckpointError(f"{path} is truncated or not an fnn checkpoint: {size} bytes, shorter than "
                              "the header length field")
    (header_size,) = _HEADER_LENGTH.unpack_from(head)
    if header_size <= _MAX_HEADER and (size == _HEADER_LENGTH.size or head[_HEADER_LENGTH.size] == ord("{")):
        if size < _HEADER_LENGTH.size + header_size:
            raise CheckpointError(f"{path} is truncated (or its length fields are corrupt): it has {size} "
                                  f"bytes but its header alone calls for {_HEADER_LENGTH.size + header_size}")
        return 2
    looks = next((what for lead, what in _FOREIGN.items() if head.startswith(lead)), None)
    hint = f" (it looks like {looks}; fnn never unpickles)" if looks else ""
    raise CheckpointError(f"{path} is not an fnn checkpoint: it does not start with {MAGIC!r} nor with a "
                          f"safetensors header{hint}")


def _read_verified(path: pathlib.Path) -> tuple[dict, _Decoder]:
    """The checked header and the decoder of the file at `path`; every failure a CheckpointError.

    The header is the version-1 JSON header, or its version-2 equivalent rebuilt from the
    safetensors metadata (with "model" added when the file has one).
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"no checkpoint at {path}: the file does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"cannot load {path}: it is a directory, not a checkpoint file") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(_PREFIX)
        layout = _layout(path, head, size)  # before reading on: a length field never sizes a read
        data = head + f.read()
    if len(data) != size:
        raise CheckpointError(f"{path} changed while it was read ({size} bytes, then {len(data)})")
    return _read_version_1(path, data) if layout == 1 else _read_safetensors(path, data)


def _size_error(path, n: int, expected: int) -> CheckpointError:
    problem = "truncated (or its length fields are corrupt)" if n < expected else "corrupt (trailing bytes)"
    return CheckpointError(f"{path} is {problem}: it has {n} bytes but its length fields call for "
                           f"{expected}")


def _check_version(path, header: dict, version, layout: int) -> None:
    """Refuse another format, an invalid or newer version, or a version its layout does not have."""
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {header.get('format')!r}, not {FORMAT!r}")
    if type(version) is not int or version < 1:
        raise CheckpointError(f"{path} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {version} (written by fnn {header.get('fnn_version')}); this "
            f"fnn reads up to version {FORMAT_VERSION}: upgrade fnn to load it")
    if version != layout:
        raise CheckpointError(f"{path} has an invalid format version {version} for a file laid out as "
                              f"version {layout}")


def _read_version_1(path, data: bytes) -> tuple[dict, _Decoder]:
    n = len(data)
    if n < _PREFIX + _DIGEST:
        raise CheckpointError(f"{path} is truncated: {n} bytes, shorter than the fixed fields")
    header_size, payload_size = _LENGTHS.unpack_from(data, len(MAGIC))  # _layout checked the sum
    body = memoryview(data)[:n - _DIGEST]
    digest = hashlib.sha256(body).digest()
    if digest != data[n - _DIGEST:]:
        raise CheckpointError(f"{path} is corrupt: sha256 of its contents is {digest.hex()[:16]}… but "
                              f"the file records {data[n - _DIGEST:].hex()[:16]}…")
    try:
        header = json.loads(bytes(body[_PREFIX:_PREFIX + header_size]).decode("utf-8"))
    except (ValueError, RecursionError) as e:  # ValueError covers JSON and UTF-8 errors
        raise CheckpointError(f"{path} has a malformed header: {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a malformed header: a JSON {type(header).__name__}")
    _check_version(path, header, header.get("format_version"), 1)
    header.pop("model", None)  # version 1 never stored a model
    return header, _Decoder(body[_PREFIX + header_size:])


def _expected_size(header_bytes) -> int | None:
    """The file size a safetensors header calls for, if it parses; for messages only."""
    with contextlib.suppress(Exception):
        header = json.loads(bytes(header_bytes).decode("utf-8"))
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
        if all(type(end) is int for end in ends):
            return _HEADER_LENGTH.size + len(header_bytes) + max(ends, default=0)
    return None


def _read_safetensors(path, data: bytes) -> tuple[dict, _Decoder]:
    n, start = len(data), _HEADER_LENGTH.size
    (header_size,) = _HEADER_LENGTH.unpack_from(data)  # _layout checked it against the size
    view = memoryview(data)
    header_bytes = view[start:start + header_size]
    if bytes(header_bytes[:len(_SHA_AT)]) != _SHA_AT:
        if b'"fnn_' in bytes(header_bytes):
            raise CheckpointError(f"{path} is corrupt: its header does not open with {_SHA_AT!r} as fnn "
                                  "writes it")
        raise CheckpointError(f"{path} is a safetensors file without fnn metadata, not an fnn checkpoint "
                              "(fnn.load reads only files written by fnn.save); open it with "
                              "safetensors.numpy.load_file")
    at = start + len(_SHA_AT)
    recorded = bytes(view[at:at + _SHA_HEX])
    hasher = hashlib.sha256(view[:at])
    hasher.update(b"0" * _SHA_HEX)
    hasher.update(view[at + _SHA_HEX:])
    if hasher.hexdigest().encode("ascii") != recorded:
        expected = _expected_size(header_bytes)
        if expected is not None and expected != n:
            raise _size_error(path, n, expected)
        actual, recorded = hasher.hexdigest(), recorded.decode("ascii", "replace")
        first = next((i for i, (a, b) in enumerate(zip(actual, recorded)) if a != b), 0)
        shown = max(16, first + 8)  # enough to see where they part
        raise CheckpointError(f"{path} is corrupt: sha256 of its contents is {actual[:shown]}… but the "
                              f"file records {recorded[:shown]}…")
    try:
        header = json.loads(bytes(header_bytes).decode("utf-8"))
    except (ValueError, RecursionError) as e:  # ValueError covers JSON and UTF-8 errors
        raise CheckpointError(f"{path} has a malformed header: {e}") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if type(meta) is not dict or not all(type(v) is str for v in meta.values()):
        raise CheckpointError(f"{path} has a malformed header: no __metadata__ of str values")
    version = meta.get("fnn_format_version")
    if isinstance(version, str) and version.isascii() and version.isdigit():
        version = int(version)
    fnn_header = {"format": meta.get("fnn_format"), "format_version": version,
                  "fnn_version": meta.get("fnn_version"), "jax_version": meta.get("jax_version")}
    _check_version(path, fnn_header, version, 2)
    for key, name in (("tree", "fnn_tree"), ("metadata", "fnn_metadata"), ("model", "fnn_model")):
        if name not in meta:
            continue
        try:
            fnn_header[key] = json.loads(meta[name])
        except (ValueError, RecursionError) as e:
            raise CheckpointError(f"{path} has a malformed header: {name}: {e}") from None
    tensors = {name: entry for name, entry in header.items() if name != "__metadata__"}
    return fnn_header, _TensorDecoder(view[start + header_size:], tensors)


def _to_jax(a: np.ndarray, path: str) -> jax.Array:
    x = jax.device_put(a)  # a plain transfer (jnp.asarray would compile a small program per shape)
    if x.dtype != a.dtype:  # with x64 off jax would turn 64-bit leaves into 32-bit ones
        raise FnnValueError(f"checkpoint leaf {_where(path)} has dtype {a.dtype} but JAX made it "
                            f"{x.dtype}; enable jax_enable_x64 before loading it")
    return x


def _describe(x) -> str:
    if x is None or type(x) in (bool, int, float, str):
        return type(x).__name__
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"an array of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, tuple) and _is_namedtuple_class(type(x)):
        return f"a NamedTuple {type(x).__name__} with fields {tuple(x._fields)}"
    if isinstance(x, (tuple, list, dict)):
        return f"a {type(x).__name__} of {len(x)} items"
    return f"a {type(x).__qualname__}"


def _match(loaded, like, path: str):
    """`loaded` in the containers of `like`, after checking it matches like node for node."""
    where = _where(path)
    if like is None or type(like) in (bool, int, float, str):
        if type(loaded) is not type(like):
            raise CheckpointError(f"checkpoint leaf {where} is {_describe(loaded)} but like has "
                                  f"{_describe(like)}")
        return loaded
    if hasattr(like, "shape") and hasattr(like, "dtype"):  # arrays, keys, jax.ShapeDtypeStruct
        if not (hasattr(loaded, "shape") and hasattr(loaded, "dtype")):
            raise CheckpointError(f"checkpoint leaf {where} is {_describe(loaded)} but like has "
                                  f"{_describe(like)}")
        if tuple(loaded.shape) != tuple(like.shape) or str(loaded.dtype) != str(like.dtype):
            raise CheckpointError(f"checkpoint leaf {where} has shape {tuple(loaded.shape)} and dtype "
                                  f"{loaded.dtype} but like has shape {tuple(like.shape)} and dtype "
                                  f"{like.dtype}; load does not cast")
        if isinstance(like, (np.ndarray, np.generic)):  # np.array copies: writable, like load's
            return np.array(loaded) if isinstance(like, np.ndarray) else np.asarray(loaded)[()]
        return _to_jax(np.asarray(loaded), path) if isinstance(loaded, np.ndarray) else loaded
    if isinstance(like, tuple) and _is_namedtuple_class(type(like)):
        fields = tuple(type(like)._fields)
        if not (isinstance(loaded, tuple) and _is_namedtuple_class(type(loaded))
                and tuple(loaded._fields) == fields):
            raise CheckpointError(f"checkpoint node {where} is {_describe(loaded)} but like has "
                                  f"{_describe(like)}")
        items = (_match(v, w, f"{path}.{f}") for f, v, w in zip(fields, loaded, like))
        return _build(type(like), items)
    if type(like) in (tuple, list):
        if type(loaded) is not type(like) or len(loaded) != len(like):
            raise CheckpointError(f"checkpoint node {where} is {_describe(loaded)} but like has "
                                  f"{_describe(like)}")
        items = [_match(v, w, f"{path}[{i}]") for i, (v, w) in enumerate(zip(loaded, like))]
        return tuple(items) if type(like) is tuple else items
    if type(like) is dict:
        if type(loaded) is not dict:
            raise CheckpointError(f"checkpoint node {where} is {_describe(loaded)} but like has "
                                  f"{_describe(like)}")
        missing = [k for k in like if k not in loaded]
        extra = [k for k in loaded if k not in like]
        if missing or extra:
            raise CheckpointError(f"checkpoint dict {where} does not have like's keys: missing "
                                  f"{missing}, unexpected {extra}")
        return {k: _match(loaded[k], w, f"{path}[{k!r}]") for k, w in like.items()}
    raise FnnTypeError(f"like has {_describe(like)} at {where}; like holds {_SUPPORTED}, or "
                       "jax.ShapeDtypeStruct leaves")


def load(path, like=None, *, model=None, input_dim: int | None = None, dtype=None,
         with_model: bool = False):
    """The tree saved at `path`, checked against `like` and the stored model if asked.

    Without `like` the structure comes from the file: jax arrays come back as jax arrays, numpy
    arrays and scalars as numpy, typed keys as typed keys, Python leaves as the same types. A
    NamedTuple class is taken from an already imported module (or a public submodule of an
    imported package) only if it is a tuple subclass with the recorded fields; otherwise a
    collections.namedtuple stand-in with the recorded name and fields is used.
    With `like` (a tree of the expected structure, leaves may be jax.ShapeDtypeStruct) the result
    has like's containers and NamedTuple classes and like's array kind (numpy or jax); any
    difference in structure, keys, leaf type, shape or dtype raises CheckpointError naming the
    leaf. A missing file raises CheckpointNotFoundError; anything unreadable, truncated, corrupt,
    of another format or of a newer format version raises CheckpointError.

    model, input_dim, dtype: each one given is checked against the architecture stored by
    `save(..., model=)`; the first difference (in this order: layer count, input width, each
    layer's class and fields from layer 0 on, dtype) raises CheckpointError (a FnnValueError)
    naming it, as does a file stored without a model. with_model=True returns (tree, model), the
    fnn.Sequential rebuilt from the file; `read_architecture` also gives the input width, dtype
    and loss.

    Example:
        >>> import os, tempfile, jax.numpy as jnp
        >>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
        >>> tree = fnn.load(fnn.save(path, {"w": jnp.zeros(3), "epoch": 4}))
        >>> tree["w"].shape, tree["epoch"]
        ((3,), 4)
        >>> fnn.load(path, like={"w": jnp.zeros(2), "epoch": 0})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        fnn.errors.CheckpointError: checkpoint leaf ['w'] has shape (3,) ... like has shape (2,)...
        >>> relu = fnn.Sequential([fnn.Dense(3, activation="relu"), fnn.Dense(1)])
        >>> params = relu.init(jax.random.key(0), input_dim=2)
        >>> params, model = fnn.load(fnn.save(path, params, model=relu), with_model=True)
        >>> model == relu
        True
        >>> tanh = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1)])
        >>> fnn.load(path, model=tanh)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        fnn.errors.CheckpointError: ... layer 0 activation: the file has 'relu', this model has 'tanh'
    """
    path = _path_arg(path, "load")
    if model is not None:
        from fnn import models

        models.check_model(model)
    if input_dim is not None:
        input_dim = _validate.integer(input_dim, "input_dim", minimum=1)
    if dtype is not None:
        dtype = _float_dtype(dtype, "dtype")
    if type(with_model) is not bool:
        raise FnnTypeError(f"with_model must be True or False, got {type(with_model).__name__} "
                           f"{with_model!r}")
    header, decoder = _read_verified(path)
    architecture = None
    if with_model or (model, input_dim, dtype) != (None, None, None):
        if header.get("model") is None:
            raise CheckpointError(f"{path} stores no model to check or rebuild (it was saved without "
                                  "model=); load it without model=, input_dim=, dtype= and with_model=")
        record = _read_architecture(header["model"], path)
        difference = _first_difference(record, model, input_dim, dtype)
        if difference is not None:
            raise CheckpointError(f"{path} was saved for another model: {difference}")
        if with_model:
            architecture = _rebuild(record, path)
    try:
        tree = decoder.node(header.get("tree"), "")
    except RecursionError:
        raise CheckpointError(f"{path} has a malformed header: the tree is nested too deeply") from None
    decoder.finish(path)
    tree = tree if like is None else _match(tree, like, "")
    return (tree, architecture.model) if with_model else tree


def read_metadata(path) -> dict | None:
    """The `metadata` dict given to `save` (None if none was), after verifying the whole file.

    Example:
        >>> import os, tempfile
        >>> path = fnn.save(os.path.join(tempfile.mkdtemp(), "m.ckpt"), (), metadata={"lr": 0.1})
        >>> fnn.checkpoint.read_metadata(path)
        {'lr': 0.1}
    """
    header, _ = _read_verified(_path_arg(path, "read_metadata"))
    metadata = header.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(f"{path} has a malformed header: metadata is not a JSON object")
    return metadata


def read_architecture(path) -> Architecture | None:
    """What `save(..., model=)` stored: Architecture(model, input_dim, dtype, loss), the model
    rebuilt as a fnn.Sequential; None for a file saved without a model. Verifies the whole file.

    Example:
        >>> import os, tempfile
        >>> model = fnn.Sequential([fnn.Dense(1, activation="sigmoid")])
        >>> params = model.init(jax.random.key(0), input_dim=2)
        >>> path = fnn.save(os.path.join(tempfile.mkdtemp(), "m.ckpt"), params, model=model,
        ...                 loss="binary_cross_entropy")
        >>> fnn.checkpoint.read_architecture(path)[1:]
        (2, 'float32', 'binary_cross_entropy')
    """
    path = _path_arg(path, "read_architecture")
    header, _ = _read_verified(path)
    if header.get("model") is None:
        return None
    return _rebuild(_read_architecture(header["model"], path), path)
