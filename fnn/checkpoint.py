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

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import pathlib
import stat
import tempfile
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _tree_codec, models
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnError, FnnTypeError, FnnValueError

__all__ = ["FORMAT", "FORMAT_VERSION", "Architecture", "load", "read_architecture", "read_metadata", "save"]

FORMAT, FORMAT_VERSION = "fnn-checkpoint", 3  # 3: a NamedTuple is recorded by name and fields, never by module
_SHA = b'"fnn_sha256":"'
_FOREIGN = {b"\x80": "a pickle", b"\x93NUMPY": "a .npy file", b"PK\x03\x04": "a zip/.npz archive", b"\x89HDF": "HDF5"}


class Architecture(NamedTuple):
    """What `save(..., model=)` records beside the params; see `read_architecture`."""

    model: models.Sequential
    input_dim: int  # the params' input width
    dtype: str  # the params' dtype, e.g. "float32"
    loss: str | None  # the loss name given to save, canonical, or None


def _path_arg(path: Any, what: str) -> pathlib.Path:
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise FnnTypeError(f"{what} path must be a str or os.PathLike, got {type(path).__name__} {path!r:.60}")
    return pathlib.Path(path)


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


def _model_record(encoder: _tree_codec.Encoder, model: models.Sequential, loss: str | None) -> dict:
    """The record of `model` and the loss, and of the params found: their path, input width and dtype."""
    models.check_model(model)
    for i, act in enumerate(model.activations):
        if not isinstance(act, str):  # a user's fnn.Activation: functions, which a file cannot hold
            raise FnnValueError(
                f"layer {i}'s activation {act.name!r} is a user's function, which a checkpoint cannot store; "
                "save the params without model= and rebuild the model in code to load them (fnn.load(path, like=))"
            )
    where, params = encoder.params or ("nowhere", ())
    dims = [np.shape(params[0].w)[0] if params and np.ndim(params[0].w) == 2 else "n"]
    dims += [layer.units for layer in model.layers]
    want = [((dims[i], dims[i + 1]), (dims[i + 1],)) for i in range(len(model.layers))]
    floats = all(jnp.issubdtype(jnp.result_type(leaf), jnp.floating) for p in params for leaf in p)
    if [(np.shape(p.w), np.shape(p.b)) for p in params] != want or not floats:
        raise FnnValueError(f"the tree's first DenseParams (at {where or '<root>'}) are not model='s {want}")
    layers = [{"class": type(layer).__name__, "config": dataclasses.asdict(layer)} for layer in model.stack]
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
    path, encoder, tmp = (
        _path_arg(path, "save"),
        _tree_codec.Encoder(allow_non_finite, find_params=model is not None),
        None,
    )
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
    meta["fnn_tree"] = _tree_codec.dumps(encoder.node(tree))
    records = {"fnn_model": None if model is None else _model_record(encoder, model, loss), "fnn_metadata": metadata}
    if metadata is not None and (where := _tree_codec.nested_too_deep(metadata, "metadata")):
        raise FnnValueError(f"{where} is past a checkpoint's {_tree_codec.MAX_DEPTH} levels below the root; flatten it")
    for name, value in ((name, value) for name, value in records.items() if value is not None):
        try:  # JSON that reads back the same: JSON would turn tuples into lists and int keys into str
            if json.loads(text := _tree_codec.dumps(value)) != value:
                raise TypeError("it holds tuples or non-str keys, which JSON would change")
        except (TypeError, ValueError, RecursionError) as e:
            raise (FnnTypeError if isinstance(e, TypeError) else FnnValueError)(f"{name} is not JSON: {e}") from None
        meta[name] = text
    from safetensors.numpy import save as safetensors_save

    if sum(len(k) + len(v) for k, v in meta.items()) + sum(map(len, encoder.tensors)) > _tree_codec.MAX_HEADER:
        raise _tree_codec.header_too_big()  # at least this many bytes (all ASCII): refused before serializing
    try:
        data = safetensors_save(encoder.tensors, metadata=meta)
    except Exception as e:  # SafetensorError: its writer refuses a header its reader would (MAX_HEADER_SIZE)
        if "too large" not in str(e).lower() and "toolarge" not in str(e).lower():
            raise
        raise _tree_codec.header_too_big() from None
    if (n := int.from_bytes(data[:8], "little")) > _tree_codec.MAX_HEADER:  # a safetensors whose writer does not check
        raise _tree_codec.header_too_big()
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
            shaped = size >= 8 and 2 <= n <= _tree_codec.MAX_HEADER and head[8:9] in (b"{", b"")  # as safetensors opens
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
                _tree_codec.check_shape(path, name, entry.get("shape"), _tree_codec.ITEMSIZE.get(entry.get("dtype"), 1))
        return meta | {k: json.loads(meta[k]) for k in ("fnn_model", "fnn_metadata") if k in meta}, data


def _first_difference(record: Any, model: models.Sequential) -> str | None:
    """The layer count, or the first layer class or field that differs; a field the file lacks is its default."""
    stack = model.stack  # Dropout layers included
    if len(record["layers"]) != len(stack):
        return f"layer count: the file has {len(record['layers'])}, this model has {len(stack)}"
    for i, (saved, layer) in enumerate(zip(record["layers"], stack)):
        defaults = {f.name: f.default for f in dataclasses.fields(layer) if f.default is not dataclasses.MISSING}
        theirs = {"class": saved["class"], **defaults, **saved["config"]}
        ours = {"class": type(layer).__name__, **dataclasses.asdict(layer)}
        for name in [*ours, *theirs]:
            a, b = theirs.get(name, "no value"), ours.get(name, f"no such field in {type(layer).__name__}")
            if type(a) is not type(b) or a != b:
                return f"layer {i} {name}: the file has {a!r}, this model has {b!r}"
    return None


def _rebuild(record: Any, path: pathlib.Path) -> Architecture:
    classes = {"Dense": models.Dense, "Dropout": models.Dropout}
    found = {saved["class"] for saved in record["layers"]}
    if "Dense" not in found or not found <= set(classes):
        raise CheckpointError(f"{path} records layers of classes this fnn does not have: upgrade fnn to load them")
    try:
        model = models.Sequential([classes[saved["class"]](**saved["config"]) for saved in record["layers"]])
    except (TypeError, ValueError) as e:  # fnn's own errors subclass these
        raise CheckpointError(f"{path} records a layer that this fnn cannot rebuild ({e}): upgrade fnn") from None
    return Architecture(model, record["input_dim"], record["dtype"], record["loss"])


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
        tree = json.loads(meta["fnn_tree"], object_hook=_tree_codec.decoder(path, tensors, final=like is None))
        if tensors:
            raise CheckpointError(f"{path} has a malformed header: tensors {list(tensors)[:3]} are not in the tree")
        if like is not None:
            _tree_codec.match(tree, like, "", path, leaves := [])
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
