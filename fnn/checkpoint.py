"""Save and load pytrees (params, optimizer states, training positions) as one checkpoint file.

This module owns fnn's file format: a safetensors file (format "fnn-checkpoint", version 3, written and parsed by
the `safetensors` package, imported on first use) whose metadata holds fnn_sha256 (of the file with these 64 hex
digits as "0"s), fnn_format, fnn_format_version, fnn_tree (JSON: Python leaves as values, other nodes as objects
of type, name, keys, items, or kind, dtype, shape, tensor), fnn_model and fnn_metadata. Loading never unpickles,
imports, or looks up a class by a name from the file.

    N        8 bytes   uint64, little-endian: the length of the header
    header   N bytes   JSON: {"__metadata__": {str: str}, "<tensor>": {"dtype", "shape", "data_offsets"}, …}
    buffer             the tensors' bytes, C order, little-endian: an array is the tensor named by its path
                       ("params.0.w"; bytes but A-Z a-z 0-9 _ - as %XX), a typed key its uint32 key data
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import functools
import hashlib
import json
import math
import os
import pathlib
import stat
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate, models
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnError, FnnTypeError, FnnValueError
from fnn.layers import DenseParams

__all__ = ["FORMAT", "FORMAT_VERSION", "Architecture", "load", "read_architecture", "read_metadata", "save"]

FORMAT, FORMAT_VERSION = "fnn-checkpoint", 3  # 3: a NamedTuple is recorded by name and fields, never by module
_SHA = b'"fnn_sha256":"'
# The limits save and load share, so that save refuses what load could not read back. _MAX_HEADER is safetensors'
# MAX_HEADER_SIZE, which its writer and its reader both enforce; save refuses a tree or metadata deeper than
# _MAX_DEPTH levels below its root (load reads them from any reasonable stack depth); _MAX_DIMS and _MAX_BYTES are
# numpy's own limits, past which no array save is given can be: load refuses such a shape before allocating.
_MAX_HEADER, _MAX_DEPTH, _MAX_NODES, _MAX_INT_BITS = 100_000_000, 64, 100_000, 13_000  # ints JSON reads back
_MAX_DIMS, _MAX_BYTES = 64, 2**63 - 1  # an array's bytes, counted as numpy counts them: its non-zero dimensions
_DTYPES = "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 bfloat16 float32 float64 complex64 complex128"
_CODES = dict(zip(_DTYPES.split(), "BOOL I8 I16 I32 I64 U8 U16 U32 U64 F16 BF16 F32 F64 F32 F64".split()))  # noqa: SIM905
_ITEMSIZE = {"BOOL": 1, "I8": 1, "U8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4}
_ITEMSIZE |= {"I64": 8, "U64": 8, "F64": 8}
_FOREIGN = {b"\x80": "a pickle", b"\x93NUMPY": "a .npy file", b"PK\x03\x04": "a zip/.npz archive", b"\x89HDF": "HDF5"}
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_json = functools.partial(json.dumps, separators=(",", ":"), allow_nan=False)


class Architecture(NamedTuple):
    """What `save(..., model=)` records beside the params; see `read_architecture`."""

    model: models.Sequential
    input_dim: int  # the params' input width
    dtype: str  # the params' dtype, e.g. "float32"
    loss: str | None  # the loss name given to save, canonical, or None


def _children(x: Any) -> tuple[str, list, list, list]:
    """A container's type, keys (dict keys, fields or indices), children and paths' steps; "" for a leaf."""
    fields = getattr(type(x), "_fields", None)
    if isinstance(x, tuple) and isinstance(fields, tuple) and len(fields) == len(x):
        return "namedtuple", list(fields), list(x), [f".{f}" for f in fields]
    if type(x) not in (tuple, list, dict):
        return "", [], [], []
    keys = list(x) if type(x) is dict else list(range(len(x)))
    return type(x).__name__, keys, list(x.values() if type(x) is dict else x), [f"[{k!r}]" for k in keys]


@functools.lru_cache(maxsize=256)
def _standin(name: str, fields: tuple) -> type:
    """A namedtuple of a recorded name and fields, one per pair so loads agree: never a class looked up."""
    return collections.namedtuple(name, fields, module=__name__)


def _path_arg(path: Any, what: str) -> pathlib.Path:
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise FnnTypeError(f"{what} path must be a str or os.PathLike, got {type(path).__name__} {path!r:.60}")
    return pathlib.Path(path)


def _nested_too_deep(value: Any, root: str) -> str | None:
    """Where JSON-like `value` first nests past _MAX_DEPTH levels below its root (a loop does too), or None."""
    stack: list[tuple[Any, int, tuple]] = [(value, 0, ())]  # (value, depth, (parent's steps, step)): no recursion
    while stack:
        x, depth, steps = stack.pop()
        if depth > _MAX_DEPTH:
            path = []
            while steps:
                steps, step = steps
                path.append(step)
            return root + "".join(reversed(path))
        children = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, (list, tuple)) else ()
        stack.extend((v, depth + 1, (steps, f"[{k!r}]")) for k, v in children)
    return None


def _name_max(folder: pathlib.Path) -> int:
    """The longest file name, in bytes, that `folder`'s file system takes (NAME_MAX; 255 where none says)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no such folder
        return 255


def _save_error(path: pathlib.Path, e: OSError) -> CheckpointError:
    """A save's OSError as the user's path, the reason and its fix; never the temporary file's name."""
    folder, code = path.parent, e.errno
    why = e.strerror or (str(e) if e.filename is None else type(e).__name__)
    if code == errno.ENAMETOOLONG and (n := len(os.fsencode(path.name))) > (limit := _name_max(folder)):
        fix = f"its name is {n} bytes, more than the {limit} this file system allows: choose a shorter name"
    elif code == errno.ENAMETOOLONG:
        fix = f"the path is {len(os.fsencode(path))} bytes, more than this system allows: save to a shorter path"
    elif code == errno.ENOENT:
        fix = f"the folder {folder} does not exist: create it first (os.makedirs), or save into a folder that exists"
    elif code == errno.ENOTDIR:
        files = (p for p in (*reversed(folder.parents), folder) if os.path.exists(p) and not os.path.isdir(p))
        fix = f"{next(files, folder)} is a file, not a folder: save into a folder"
    elif code == errno.EROFS:
        fix = f"{folder} is on a read-only file system: save to a folder you may write to"
    elif code in (errno.EACCES, errno.EPERM):
        fix = f"you may not write to {folder}: save to a folder you may write to, or change its permissions"
    elif code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        fix = f"the disk holding {folder} is full: free space or save elsewhere"
    else:
        fix = f"save into a folder that exists, you may write to and has room ({folder})"
    return CheckpointError(f"cannot save to {path}: {why}; {fix}")


def _header_too_big() -> FnnValueError:
    fix = "store long text as a uint8 array (np.frombuffer(text.encode(), np.uint8)) and many numbers as one array"
    where = "the tree's structure, its Python leaves and the metadata"
    return FnnValueError(f"{where} take more than a header holds ({_MAX_HEADER:,} bytes, safetensors' limit); {fix}")


def _check_shape(file: pathlib.Path, tensor: Any, shape: Any, itemsize: int) -> None:
    """Refuse a shape no array can have before numpy, JAX or safetensors meets it (to raise, or to allocate)."""
    if type(shape) is not list:
        why = "not a list of dimensions"
    elif len(shape) > _MAX_DIMS:
        why = f"of {len(shape)} dimensions, more than {_MAX_DIMS}"
    elif not all(type(d) is int and d >= 0 for d in shape):
        why = "with a dimension that is not an int >= 0"
    elif math.prod(d for d in shape if d) * itemsize > _MAX_BYTES:  # numpy's count: an empty array's too
        why = "of more than 2**63 - 1 bytes"
    else:
        return
    show = repr(shape) if type(shape) is not list or len(shape) <= 8 else f"[{', '.join(map(repr, shape[:4]))}, …]"
    show = show if len(show) <= 120 else show[:100] + "…"
    what = f"tensor {str(tensor)[:100]!r} declares shape {show}, {why}"
    raise CheckpointError(f"{file} is corrupt or forged: {what}, which no array can have; fnn.save never writes one")


class _Encoder:
    """Checks each node, records the structure, collects the tensors and finds the model's params if asked."""

    def __init__(self, allow_non_finite: bool, find_params: bool):
        self.allow_non_finite, self.nodes, self.tensors, self.on_path = allow_non_finite, 0, {}, set()
        self.params: tuple[str, Any] | None = None if find_params else ("", None)

    def node(self, x: Any, path: str = "", parts: tuple = ()) -> Any:
        where, self.nodes = path or "<root>", self.nodes + 1
        if len(parts) > _MAX_DEPTH:
            raise FnnValueError(
                f"tree node {where} is past a checkpoint's {_MAX_DEPTH} levels below the root; flatten the tree"
            )
        if self.nodes > _MAX_NODES:
            fix = "store numbers as arrays (np.asarray of a list, np.stack of many arrays) to save fewer, larger leaves"
            raise FnnValueError(f"tree node {where} is past a checkpoint's {_MAX_NODES:,} nodes; {fix}")
        if x is None or type(x) in (bool, str) or (type(x) is int and x.bit_length() <= _MAX_INT_BITS):
            return x
        if type(x) is float and (self.allow_non_finite or np.isfinite(x)):
            return {"type": "float", "value": x.hex()}  # hex: exact, and JSON has no nan/inf
        if type(x) in (int, float):
            what = f"the non-finite float {x}" if type(x) is float else f"an int of {int(x).bit_length()} bits"
            raise FnnValueError(f"tree leaf {where} is {what}; pass allow_non_finite=True or a str to save it")
        if isinstance(x, (jax.Array, np.ndarray, np.generic)):
            return self.array(x, where, parts)
        kind, keys, values, steps = _children(x)
        if not kind or id(x) in self.on_path:
            what = "contains itself" if kind else f"has unsupported type {type(x).__qualname__}; see fnn.save"
            raise (FnnValueError if kind else FnnTypeError)(f"tree {'node' if kind else 'leaf'} {where} {what}")
        if odd := [k for k in keys if type(k) is not str] if kind == "dict" else []:
            raise FnnTypeError(f"tree dict {where} has key {odd[0]!r} of type {type(odd[0]).__name__}; use str keys")
        node: dict[str, Any] = {"type": kind} | ({"keys": keys} if kind in ("dict", "namedtuple") else {})
        if kind == "namedtuple":
            try:
                node["name"] = _standin(type(x).__name__, tuple(keys)).__name__
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
        if a.dtype.name not in _CODES:  # byte order apart: '>f4' and '<f4' are both float32
            what = "an object array" if a.dtype.kind == "O" else "an array"
            raise FnnTypeError(f"tree leaf {where} is {what} of dtype {a.dtype}; a checkpoint holds {_DTYPES}")
        if not self.allow_non_finite and jnp.issubdtype(a.dtype, jnp.inexact) and not (ok := np.isfinite(a)).all():
            i, count = tuple(int(j) for j in np.argwhere(~ok)[0]), int((~ok).sum())
            raise FnnValueError(f"tree leaf {where} has {count} non-finite value(s), {a[i]} at {i}: allow_non_finite?")
        escape = lambda c: c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode(errors="surrogatepass"))
        name = ".".join("".join(map(escape, part)) or "%" for part in parts) or "root"  # "%" alone is no escape
        name = "%5F_metadata__" if name == "__metadata__" else name  # escapes are injective and never hold "."
        self.tensors[name] = a.reshape(-1).view(np.real(a).dtype).reshape(*a.shape, 2) if a.dtype.kind == "c" else a
        kind = "key" if key else "jax" if isinstance(x, jax.Array) else "numpy"
        node = {"type": "array", "kind": kind, "dtype": a.dtype.name, "shape": list(a.shape), "tensor": name}
        return node | ({"impl": str(jax.random.key_impl(x))} if key else {})

    def model(self, model: models.Sequential, loss: str | None) -> dict:
        """The record of `model` and the loss, and of the params found: their path, input width and dtype."""
        models.check_model(model)
        where, params = self.params or ("nowhere", ())
        dims = [np.shape(params[0].w)[0] if params and np.ndim(params[0].w) == 2 else "n"]
        dims += [layer.units for layer in model.layers]
        want = [((dims[i], dims[i + 1]), (dims[i + 1],)) for i in range(len(model.layers))]
        floats = all(jnp.issubdtype(jnp.result_type(leaf), jnp.floating) for p in params for leaf in p)
        if [(np.shape(p.w), np.shape(p.b)) for p in params] != want or not floats:
            raise FnnValueError(f"the tree's first DenseParams (at {where or '<root>'}) are not model='s {want}")
        layers = [{"class": type(layer).__name__, "config": dataclasses.asdict(layer)} for layer in model.layers]
        loss, dtype = None if loss is None else models.resolve_loss(model, loss).name, np.asarray(params[0].w).dtype
        return {"layers": layers, "input_dim": dims[0], "dtype": dtype.name, "loss": loss, "params_at": where}


def save(
    path: str | os.PathLike,
    tree: Any,
    *,
    model: models.Sequential | None = None,
    loss: str | None = None,
    metadata: dict | None = None,
    allow_non_finite: bool = False,
) -> pathlib.Path:
    """Write `tree` to `path` atomically (a temporary file beside it, fsynced, `os.replace`d onto it); returns the
    path. model: a fnn.Sequential stored with the tree's first tuple of DenseParams (which must fit it); loss: its
    loss name; metadata: a JSON dict. Refused, naming the node: leaves but numeric arrays, typed keys and Python
    scalars; containers but tuples, lists, str-keyed dicts, NamedTuples, None; tracers; non-finite values (unless
    allow_non_finite); trees over 64 levels or 100,000 nodes; metadata over 64 levels; a header (the structure,
    Python leaves, metadata) over safetensors' 100,000,000 bytes: all that load could not read back. Complex arrays
    are stored as (real, imaginary) pairs. The temporary file's name is short and fixed (.fnn-XXXXXXXX.tmp), so any
    name the folder takes works; an OSError (a missing folder, a read-only or full disk, a name over the file
    system's NAME_MAX) is a CheckpointError naming `path` and the fix.

    Example:
        >>> path = fnn.save(__import__("tempfile").mkdtemp() + "/run.ckpt", {"w": jnp.ones(3), "epoch": 4})
        >>> fnn.load(path)["epoch"], path.name
        (4, 'run.ckpt')
    """
    path, encoder, tmp = _path_arg(path, "save"), _Encoder(allow_non_finite, find_params=model is not None), None
    if os.path.isdir(path):
        raise FnnValueError(f"cannot save to {path}: it is a directory; give a file name inside it")
    if metadata is not None and type(metadata) is not dict:
        raise FnnTypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    if model is None and loss is not None:
        raise FnnValueError("loss= is stored with the model: pass model= too")
    try:  # before any work: a folder that is missing or a file, a name over the file system's limit
        if not stat.S_ISDIR(os.stat(path.parent).st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        if len(os.fsencode(path.name)) > _name_max(path.parent):
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
    except OSError as e:
        raise _save_error(path, e) from None
    meta = {"fnn_sha256": "0" * 64, "fnn_format": FORMAT, "fnn_format_version": str(FORMAT_VERSION)}
    meta["fnn_tree"] = _json(encoder.node(tree))
    records = {"fnn_model": None if model is None else encoder.model(model, loss), "fnn_metadata": metadata}
    if metadata is not None and (where := _nested_too_deep(metadata, "metadata")):
        raise FnnValueError(f"{where} is past a checkpoint's {_MAX_DEPTH} levels below the root; flatten it")
    for name, value in ((name, value) for name, value in records.items() if value is not None):
        try:  # JSON that reads back the same: JSON would turn tuples into lists and int keys into str
            if json.loads(text := _json(value)) != value:
                raise TypeError("it holds tuples or non-str keys, which JSON would change")
        except (TypeError, ValueError, RecursionError) as e:
            raise (FnnTypeError if isinstance(e, TypeError) else FnnValueError)(f"{name} is not JSON: {e}") from None
        meta[name] = text
    from safetensors.numpy import save as safetensors_save

    if sum(len(k) + len(v) for k, v in meta.items()) + sum(map(len, encoder.tensors)) > _MAX_HEADER:
        raise _header_too_big()  # at least this many bytes (all ASCII): refused before serializing
    try:
        data = safetensors_save(encoder.tensors, metadata=meta)
    except Exception as e:  # SafetensorError: its writer refuses a header its reader would (MAX_HEADER_SIZE)
        if "too large" not in str(e).lower() and "toolarge" not in str(e).lower():
            raise
        raise _header_too_big() from None
    if (n := int.from_bytes(data[:8], "little")) > _MAX_HEADER:  # a safetensors whose writer does not check
        raise _header_too_big()
    at = data.index(_SHA, 8, 8 + n) + len(_SHA)  # safetensors may order the metadata keys as it likes
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fnn-", suffix=".tmp")  # short: any valid name fits
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(OSError, AttributeError):  # mkstemp makes it owner-only; keep an old file's mode
                os.fchmod(f.fileno(), path.stat().st_mode & 0o7777)
            f.write(data[:at] + hashlib.sha256(data).hexdigest().encode() + data[at + 64 : 8 + n])
            f.write(memoryview(data)[8 + n :])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:  # KeyboardInterrupt too: never leave the temporary file behind
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if not isinstance(e, OSError):
            raise
        raise _save_error(path, e) from None
    return path


@contextlib.contextmanager
def _reading(path: pathlib.Path) -> Iterator[None]:
    try:
        yield
    except FnnError:
        raise
    except Exception as e:  # from a malformed file: JSON, UTF-8, SafetensorError, a missing key, a wrong type…
        raise CheckpointError(f"{path} has a malformed header: {type(e).__name__}: {e}") from None


def _read(path: pathlib.Path) -> tuple[dict, bytes]:
    """The checked metadata (fnn_model and fnn_metadata parsed) and the bytes of the file at `path`."""
    try:
        with open(path, "rb") as f:
            size, head = os.fstat(f.fileno()).st_size, f.read(9)
            n = int.from_bytes(head[:8], "little")
            shaped = size >= 8 and 2 <= n <= _MAX_HEADER and head[8:9] in (b"{", b"")  # as safetensors opens
            data = head + f.read() if shaped and size >= 8 + n else b""  # only then: lengths never size a read
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"no checkpoint at {path}: the file does not exist") from None
    except OSError as e:
        raise CheckpointError(f"cannot load {path}: {'it is a directory' if path.is_dir() else e.strerror}") from None
    at = data.find(_SHA, 8, 8 + n) + len(_SHA)  # anywhere in the header: keys come in any order
    if not shaped:
        looks = "".join(f" (it looks like {w}; fnn never unpickles)" for k, w in _FOREIGN.items() if head.startswith(k))
        what = f"not an fnn checkpoint: it does not start with a safetensors header{looks}"
        raise CheckpointError(f"{path} is {what if size else 'empty (0 bytes), not an fnn checkpoint'}")
    if not data or at < len(_SHA):
        what = "a safetensors file without fnn metadata; see safetensors.numpy.load_file"
        what = "corrupt: it has no fnn_sha256" if b'"fnn_' in data[8 : 8 + n] else what
        raise CheckpointError(f"{path} is {what if data else f'truncated: {size} bytes of a header of {8 + n}'}")
    digest = hashlib.sha256(data[:at] + b"0" * 64 + data[at + 64 :]).hexdigest()
    if digest != (recorded := data[at : at + 64].decode("ascii", "replace")) or at + 64 > 8 + n:
        raise CheckpointError(f"{path} is corrupt: sha256 of its {size} bytes is {digest:.16}…, not {recorded:.16}…")
    with _reading(path):
        header = json.loads(data[8 : 8 + n])
        meta = header["__metadata__"]
        if (meta.get("fnn_sha256"), meta.get("fnn_format"), meta.get("fnn_format_version")) != (digest, FORMAT, "3"):
            version = str(meta.get("fnn_format_version"))
            newer = ": upgrade fnn to load it" if version.isdecimal() and int(version[:9]) > FORMAT_VERSION else ""
            raise CheckpointError(f"{path} has format {meta.get('fnn_format')!r} {version!r}, not {FORMAT!r} 3{newer}")
        for name, entry in header.items():  # before safetensors reads them
            if name != "__metadata__":
                _check_shape(path, name, entry.get("shape"), _ITEMSIZE.get(entry.get("dtype"), 1))
        return meta | {k: json.loads(meta[k]) for k in ("fnn_model", "fnn_metadata") if k in meta}, data


def _decoder(file: pathlib.Path, tensors: dict, final: bool) -> Callable[[dict], Any]:
    """json.loads' object_hook for fnn_tree; final: arrays of the kind saved, else numpy (for `like` to choose)."""

    def hook(node: dict) -> Any:
        kind = node["type"]
        if kind == "float":
            return float.fromhex(node["value"])
        if kind == "namedtuple":
            return _standin(node["name"], tuple(node["keys"]))._make(node["items"])
        if kind in ("tuple", "list", "dict"):  # the params saved with the model come back as DenseParams
            items, keys = node["items"], node.get("keys", ())
            items = [DenseParams._make(p) for p in items] if node.get("params") else items
            return dict(zip(keys, items, strict=True)) if kind == "dict" else tuple(items) if kind == "tuple" else items
        name, shape, kind, entry = node["dtype"], node["shape"], node["kind"], tensors.pop(node["tensor"])  # once
        code = _CODES[name]  # a KeyError for a dtype fnn never writes: a malformed header
        _check_shape(file, node["tensor"], shape, jnp.dtype(name).itemsize)
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


def _match(loaded: Any, like: Any, path: str, file: pathlib.Path, leaves: list) -> None:
    """Refuse any difference from `like`; collect the leaves (numpy where like has numpy) in like's leaf order."""
    (kind, keys, values, steps), (theirs, their_keys, their_values, _) = _children(like), _children(loaded)
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
        _match(got[k], w, path + s, file, leaves)


def _first_difference(record: Any, model: models.Sequential) -> str | None:
    """The layer count, or the first layer class or field that differs; a field the file lacks is its default."""
    if len(record["layers"]) != len(model.layers):
        return f"layer count: the file has {len(record['layers'])}, this model has {len(model.layers)}"
    for i, (saved, layer) in enumerate(zip(record["layers"], model.layers)):
        defaults = {f.name: f.default for f in dataclasses.fields(layer) if f.default is not dataclasses.MISSING}
        theirs = {"class": saved["class"], **defaults, **saved["config"]}
        ours = {"class": type(layer).__name__, **dataclasses.asdict(layer)}
        for name in [*ours, *theirs]:
            a, b = theirs.get(name, "no value"), ours.get(name, f"no such field in {type(layer).__name__}")
            if type(a) is not type(b) or a != b:
                return f"layer {i} {name}: the file has {a!r}, this model has {b!r}"
    return None


def _rebuild(record: Any, path: pathlib.Path) -> Architecture:
    if {saved["class"] for saved in record["layers"]} != {"Dense"}:
        raise CheckpointError(f"{path} records layers of classes this fnn does not have: upgrade fnn to load them")
    try:
        layers = [models.Dense(**saved["config"]) for saved in record["layers"]]
    except (TypeError, ValueError) as e:  # fnn's own errors subclass these
        raise CheckpointError(f"{path} records a layer that this fnn cannot rebuild ({e}): upgrade fnn") from None
    return Architecture(models.Sequential(layers), record["input_dim"], record["dtype"], record["loss"])


def load(
    path: str | os.PathLike, like: Any = None, *, model: models.Sequential | None = None, with_model: bool = False
) -> Any:
    """The tree saved at `path`; with with_model=True, (tree, the fnn.Sequential saved with it).

    Without `like`, the file's structure: a NamedTuple comes back as a collections.namedtuple of its recorded name
    and fields, the params saved with model= as fnn.DenseParams. With `like` (leaves may be ShapeDtypeStructs),
    like's treedef with the file's leaves, numpy where like has numpy; any difference in structure, keys, fields,
    leaf kind, shape or dtype raises CheckpointError naming the node. model: refuse another model's file. A shape
    no array can have (over 64 dimensions or 2**63 - 1 bytes) is a CheckpointError before anything is allocated.

    Example:
        >>> relu = fnn.Sequential([fnn.Dense(3, activation="relu"), fnn.Dense(1)])
        >>> path = fnn.save(__import__("tempfile").mkdtemp() + "/run", relu.init(jax.random.key(0), 2), model=relu)
        >>> params, model = fnn.load(path, with_model=True)
        >>> model == relu, type(params[0]) is fnn.DenseParams
        (True, True)
        >>> fnn.load(path, model=fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1)]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        fnn.errors.CheckpointError: ... layer 0 activation: the file has 'relu', this model has 'tanh'
    """
    path = _path_arg(path, "load")
    if model is not None:
        models.check_model(model)
    if type(with_model) is not bool:
        raise FnnTypeError(f"with_model must be True or False, got {type(with_model).__name__} {with_model!r}")
    meta, data = _read(path)
    if (record := meta.get("fnn_model")) is None and (model is not None or with_model):
        raise CheckpointError(f"{path} stores no model to check or rebuild (it was saved without model=)")
    import safetensors

    with _reading(path):
        if model is not None and (difference := _first_difference(record, model)):
            raise CheckpointError(f"{path} was saved for another model: {difference}")
        tensors = dict(safetensors.deserialize(data))  # what safetensors.numpy.load calls; it would map no BF16
        tree = json.loads(meta["fnn_tree"], object_hook=_decoder(path, tensors, final=like is None))
        if tensors:
            raise CheckpointError(f"{path} has a malformed header: tensors {list(tensors)[:3]} are not in the tree")
        if like is not None:
            _match(tree, like, "", path, leaves := [])
            tree = jax.tree.unflatten(jax.tree.structure(like), leaves)
        return (tree, _rebuild(record, path).model) if with_model else tree


def read_metadata(path: str | os.PathLike) -> dict | None:
    """The `metadata` dict given to `save` (None if none was), after verifying the whole file.

    Example:
        >>> fnn.checkpoint.read_metadata(fnn.save(__import__("tempfile").mkdtemp() + "/m", (), metadata={"lr": 1}))
        {'lr': 1}
    """
    return _read(_path_arg(path, "read_metadata"))[0].get("fnn_metadata")


def read_architecture(path: str | os.PathLike) -> Architecture | None:
    """What `save(..., model=)` stored, Architecture(model, input_dim, dtype, loss), or None; verifies the file.

    Example:
        >>> model = fnn.Sequential([fnn.Dense(1, activation="sigmoid")])
        >>> path = fnn.save(__import__("tempfile").mkdtemp() + "/m", model.init(jax.random.key(0), 2), model=model)
        >>> fnn.checkpoint.read_architecture(path)[1:]
        (2, 'float32', None)
    """
    record = _read(path := _path_arg(path, "read_architecture"))[0].get("fnn_model")
    with _reading(path):
        return None if record is None else _rebuild(record, path)
