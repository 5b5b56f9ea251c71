"""Save and load pytrees (params, optimizer states, training positions) as one checkpoint file.

A tree is built from tuples, lists, dicts with str keys, NamedTuples and None, with leaves that
are arrays (jax or numpy, numeric dtypes), JAX typed PRNG keys, or Python bool/int/float/str.

File layout (format "fnn-checkpoint", version 1; integers little-endian):

    magic      15 bytes   b"FNN-CHECKPOINT\\n"
    H           8 bytes   uint64, length of the header
    P           8 bytes   uint64, length of the payload
    header      H bytes   UTF-8 JSON: format, format_version, fnn_version, jax_version,
                          metadata, tree (the structure, each array leaf with dtype and shape)
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
import hashlib
import importlib
import json
import math
import os
import pathlib
import struct
import sys
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnTypeError, FnnValueError

FORMAT = "fnn-checkpoint"
FORMAT_VERSION = 1
MAGIC = b"FNN-CHECKPOINT\n"
_LENGTHS = struct.Struct("<QQ")
_PREFIX = len(MAGIC) + _LENGTHS.size
_DIGEST = hashlib.sha256().digest_size
_DTYPES = frozenset({
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
})
_FOREIGN = {  # leading bytes of files people mistake for checkpoints: named in the error
    b"\x80": "a pickle", b"\x93NUMPY": "a numpy .npy file (possibly pickled)",
    b"PK\x03\x04": "a zip/.npz archive", b"\x89HDF": "an HDF5 file",
}
_SUPPORTED = ("tuple, list, dict (str keys), NamedTuple, None, numeric arrays, typed PRNG keys, "
              "bool, int, float or str")


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


# ---------------------------------------------------------------- save: tree -> header + arrays

class _Encoder:
    """One pass over the tree: validates every leaf and collects the host arrays in order."""

    def __init__(self, allow_non_finite: bool):
        self.allow_non_finite = allow_non_finite
        self.arrays: list[np.ndarray] = []
        self.on_path: set[int] = set()  # ids of the containers above the current node

    def node(self, x, path: str) -> dict:
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
            data = self.array(jax.random.key_data(x), path)
            return {"type": "key", "impl": str(jax.random.key_impl(x)), **data}
        if isinstance(x, (jax.Array, np.ndarray, np.generic)):
            kind = "jax" if isinstance(x, jax.Array) else (
                "numpy" if isinstance(x, np.ndarray) else "numpy_scalar")
            return {"type": "array", "kind": kind, **self.array(x, path)}
        if type(x) in (tuple, list, dict) or (isinstance(x, tuple) and _is_namedtuple_class(type(x))):
            if id(x) in self.on_path:
                raise FnnValueError(f"tree node {_where(path)} contains itself")
            self.on_path.add(id(x))
            try:
                return self.container(x, path)
            finally:
                self.on_path.discard(id(x))
        raise FnnTypeError(f"tree leaf {_where(path)} has unsupported type {type(x).__qualname__}; "
                           f"a checkpoint holds {_SUPPORTED}")

    def container(self, x, path: str) -> dict:
        if type(x) is dict:
            for k in x:
                if type(k) is not str:
                    raise FnnTypeError(f"tree dict {_where(path)} has key {k!r} of type "
                                       f"{type(k).__name__}; checkpoint dict keys must be str")
            return {"type": "dict", "keys": list(x),
                    "items": [self.node(v, f"{path}[{k!r}]") for k, v in x.items()]}
        if type(x) in (tuple, list):
            return {"type": type(x).__name__,
                    "items": [self.node(v, f"{path}[{i}]") for i, v in enumerate(x)]}
        cls = type(x)
        return {"type": "namedtuple", "module": cls.__module__, "qualname": cls.__qualname__,
                "fields": list(cls._fields),
                "items": [self.node(v, f"{path}.{f}") for f, v in zip(cls._fields, x)]}

    def array(self, x, path: str) -> dict:
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
        return {"dtype": name, "shape": list(a.shape)}


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


def save(path, tree, *, allow_non_finite: bool = False, metadata: dict | None = None) -> pathlib.Path:
    """Write `tree` to `path` atomically, replacing any file there; returns the path.

    metadata: an optional JSON dict (str keys) stored in the header; see `read_metadata`.
    Raises FnnTypeError for an unsupported leaf and FnnValueError for a non-finite float (unless
    allow_non_finite) or a directory at `path`, naming the offending leaf, before touching disk.

    Example:
        >>> import os, tempfile, jax.numpy as jnp
        >>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
        >>> params = (fnn.DenseParams(w=jnp.ones((2, 3)), b=jnp.zeros(3)),)
        >>> fnn.save(path, {"params": params, "epoch": 4}).name
        'run.ckpt'
    """
    path = _path_arg(path, "save")
    if path.is_dir():
        raise FnnValueError(f"cannot save to {path}: it is a directory; give a file name inside it")
    if metadata is not None and type(metadata) is not dict:
        raise FnnTypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    _check_metadata(metadata)
    encoder = _Encoder(allow_non_finite)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "fnn_version": _fnn_version(),
              "jax_version": jax.__version__, "metadata": metadata,
              "tree": encoder.node(tree, "")}
    header_bytes = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    payload_size = sum(a.nbytes for a in encoder.arrays)

    directory = path.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(OSError, AttributeError):  # keep an overwritten file's mode
                os.fchmod(f.fileno(), path.stat().st_mode & 0o7777)
            hasher = hashlib.sha256()
            _write(f, hasher, MAGIC + _LENGTHS.pack(len(header_bytes), payload_size))
            _write(f, hasher, header_bytes)
            for a in encoder.arrays:
                _write(f, hasher, a.reshape(-1).view(np.uint8))
            f.write(hasher.digest())
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

def _read_verified(path: pathlib.Path) -> tuple[dict, memoryview]:
    """The checked header and payload of the file at `path`; every failure is a CheckpointError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"no checkpoint at {path}: the file does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"cannot load {path}: it is a directory, not a checkpoint file") from None
    n = len(data)
    if n == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not an fnn checkpoint")
    if data[:len(MAGIC)] != MAGIC:
        if n < len(MAGIC) and MAGIC.startswith(data):
            raise CheckpointError(f"{path} is truncated: {n} bytes, shorter than the magic line")
        looks = next((what for lead, what in _FOREIGN.items() if data.startswith(lead)), None)
        hint = f" (it looks like {looks}; fnn never unpickles)" if looks else ""
        raise CheckpointError(f"{path} is not an fnn checkpoint: it does not start with "
                              f"{MAGIC!r}{hint}")
    if n < _PREFIX + _DIGEST:
        raise CheckpointError(f"{path} is truncated: {n} bytes, shorter than the fixed fields")
    header_size, payload_size = _LENGTHS.unpack_from(data, len(MAGIC))
    expected = _PREFIX + header_size + payload_size + _DIGEST
    if n != expected:
        problem = ("truncated (or its length fields are corrupt)" if n < expected
                   else "corrupt (trailing bytes)")
        raise CheckpointError(f"{path} is {problem}: it has {n} bytes but its length fields call for "
                              f"{expected}")
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
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path} has format {header.get('format')!r}, not {FORMAT!r}")
    version = header.get("format_version")
    if type(version) is not int or version < 1:
        raise CheckpointError(f"{path} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {version} (written by fnn {header.get('fnn_version')}); this "
            f"fnn reads up to version {FORMAT_VERSION}: upgrade fnn to load it")
    return header, body[_PREFIX + header_size:]


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
        end = self.offset + count * dtype.itemsize
        if end > len(self.payload):
            raise CheckpointError(f"malformed header: array {_where(path)} runs past the payload")
        a = np.frombuffer(self.payload, dtype.newbyteorder("<"), count, self.offset)
        self.offset = end
        return a.astype(dtype).reshape(shape)  # astype copies: the result owns writable memory


def _to_jax(a: np.ndarray, path: str) -> jax.Array:
    x = jnp.asarray(a)
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


def load(path, like=None):
    """The tree saved at `path`, checked against `like` if given.

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

    Example:
        >>> import os, tempfile, jax.numpy as jnp
        >>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
        >>> tree = fnn.load(fnn.save(path, {"w": jnp.zeros(3), "epoch": 4}))
        >>> tree["w"].shape, tree["epoch"]
        ((3,), 4)
        >>> fnn.load(path, like={"w": jnp.zeros(2), "epoch": 0})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        fnn.errors.CheckpointError: checkpoint leaf ['w'] has shape (3,) ... like has shape (2,)...
    """
    path = _path_arg(path, "load")
    header, payload = _read_verified(path)
    decoder = _Decoder(payload)
    try:
        tree = decoder.node(header.get("tree"), "")
    except RecursionError:
        raise CheckpointError(f"{path} has a malformed header: the tree is nested too deeply") from None
    if decoder.offset != len(payload):
        raise CheckpointError(f"{path} has a malformed header: its arrays take {decoder.offset} "
                              f"bytes of a {len(payload)}-byte payload")
    return tree if like is None else _match(tree, like, "")


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
