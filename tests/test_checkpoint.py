"""fnn.checkpoint: exact round trips, the documented file layout, atomic saves, refused inputs.

Every damaged or hostile file (truncated, bit-flipped, foreign, forged, newer) must raise CheckpointError naming
the file, never a raw json/safetensors/numpy exception, never a wrong tree; loading never unpickles, imports a
module or runs a constructor named in a file; a model stored with the params is checked and rebuilt.
"""

import ast
import collections
import dataclasses
import doctest
import enum
import errno
import hashlib
import json
import os
import pathlib
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import _tree_codec, checkpoint
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnError, FnnTypeError, FnnValueError
from fnn.layers import DenseParams

SHA_KEY = b'"fnn_sha256":"'


class AdamLikeState(NamedTuple):
    count: int
    mu: tuple
    nu: tuple


@pytest.fixture(autouse=True)
def _skip_fsync(request, monkeypatch):
    """fsync only costs time here; the tests that check it ask for real_fsync."""
    if "real_fsync" not in request.fixturenames:
        monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.fixture
def real_fsync():
    pass


def _params(dtype=jnp.float32, seed=0):
    rng = np.random.default_rng(seed)  # numpy, not jax.random: no compilation per shape
    w1, b1, w2 = (jnp.asarray(rng.standard_normal(shape), dtype) for shape in [(3, 4), (4,), (4, 2)])
    return DenseParams(w=w1, b=b1), DenseParams(w=w2, b=jnp.zeros((2,), dtype))


def _state():
    return {
        "params": _params(),
        "opt": AdamLikeState(3, _params(seed=1), _params(seed=2)),
        "position": {"epoch": 4, "key": jax.random.key(7), "history": {"loss": [0.9, 0.5, 0.25]}},
    }


def assert_identical(got, want, path="", classes=True):
    """Same node types (NamedTuples by name and fields unless classes), dict keys, dtypes, shapes and bytes
    (dicts in any order: load with like= gives like's treedef, whose dicts JAX rebuilds in sorted order)."""
    if isinstance(want, tuple) and hasattr(want, "_fields") and not classes:
        assert type(got).__name__ == type(want).__name__ and got._fields == want._fields, path
    else:
        assert type(got) is type(want), f"{path}: {type(got)} is not {type(want)}"
    if isinstance(want, jax.Array) and jnp.issubdtype(want.dtype, jax.dtypes.prng_key):
        assert str(got.dtype) == str(want.dtype) and got.shape == want.shape, path
        assert_identical(jax.random.key_data(got), jax.random.key_data(want), path)
    elif isinstance(want, (jax.Array, np.ndarray, np.generic)):
        assert (got.dtype, got.shape) == (want.dtype, want.shape), path
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), path
    elif isinstance(want, dict):
        assert sorted(got) == sorted(want), path
        for k in want:
            assert_identical(got[k], want[k], f"{path}[{k!r}]", classes)
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_identical(g, w, f"{path}[{i}]", classes)
    elif type(want) is float:
        assert got.hex() == want.hex(), path  # bit-exact, -0.0 and nan included
    else:
        assert got == want, path


def _round_trip(tmp_path, tree, **kwargs):
    return checkpoint.load(checkpoint.save(tmp_path / "t.ckpt", tree, **kwargs))


def _split(data: bytes) -> tuple[dict, bytes]:
    """A file's safetensors header (parsed) and its tensor bytes."""
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _seal(header: dict, buffer: bytes) -> bytes:
    """The file for this header and buffer, padded as safetensors pads, with a correct fnn_sha256."""
    meta = {"fnn_sha256": "0" * 64, **{k: v for k, v in header.get("__metadata__", {}).items() if k != "fnn_sha256"}}
    text = json.dumps(
        {"__metadata__": meta, **{k: v for k, v in header.items() if k != "__metadata__"}}, separators=(",", ":")
    ).encode()
    text += b" " * (-len(text) % 8)
    data = len(text).to_bytes(8, "little") + text + buffer
    at = data.index(SHA_KEY) + len(SHA_KEY)
    return data[:at] + hashlib.sha256(data).hexdigest().encode() + data[at + 64 :]


def _rewrite(path, change):
    """Edit a file and re-seal it with a correct sha256. `change` gets {"tree", "model", "metadata" (parsed JSON,
    when present), "meta" (the other metadata strings), "tensors" (the safetensors entries)}."""
    header, buffer = _split(path.read_bytes())
    meta = dict(header.pop("__metadata__"))
    h = {k: json.loads(meta.pop(f"fnn_{k}")) for k in ("tree", "model", "metadata") if f"fnn_{k}" in meta}
    h |= {"meta": meta, "tensors": header}
    change(h)
    meta = {**h["meta"], **{f"fnn_{k}": json.dumps(h[k]) for k in ("tree", "model", "metadata") if k in h}}
    path.write_bytes(_seal({"__metadata__": meta, **h["tensors"]}, buffer))


def _craft(path, tree_record, tensors=None, buffer=b"", **meta):
    """A file with a valid sha256 that fnn did not write: what a forger, not a disk fault, makes."""
    meta = {"fnn_format": "fnn-checkpoint", "fnn_format_version": "3", "fnn_tree": json.dumps(tree_record), **meta}
    path.write_bytes(_seal({"__metadata__": meta, **(tensors or {})}, buffer))
    return path


# ------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_round_trip_params_tuple_of_dense_params(tmp_path, dtype):
    params = _params(dtype)
    loaded = _round_trip(tmp_path, params)  # without model=: namedtuple stand-ins of the same name and fields
    assert_identical(loaded, params, classes=False)
    assert all(type(p) is not DenseParams and p._fields == ("w", "b") for p in loaded)
    model = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(2)])
    with_model = _round_trip(tmp_path, params, model=model)
    assert_identical(with_model, params)  # the params saved with model= are DenseParams again
    assert jax.tree.structure(with_model) == jax.tree.structure(params)


def test_round_trip_optimizer_state_namedtuple_becomes_a_standin_of_its_name(tmp_path):
    state = AdamLikeState(count=3, mu=_params(), nu=_params(jnp.float64))
    loaded = _round_trip(tmp_path, state)
    assert_identical(loaded, state, classes=False)
    assert type(loaded) is not AdamLikeState and type(loaded).__name__ == "AdamLikeState"
    assert loaded.count == 3 and type(loaded).__module__ == "fnn.checkpoint"
    assert type(_round_trip(tmp_path, state)) is type(loaded)  # one stand-in per name and fields: loads agree


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_round_trip_training_position_with_typed_key(tmp_path, impl):
    position = {"epoch": 4, "key": jax.random.key(7, impl=impl), "history": {"loss": [0.9, 0.5]}}
    loaded = _round_trip(tmp_path, position)
    assert_identical(loaded, position)
    assert str(jax.random.key_impl(loaded["key"])) == impl


def test_round_trip_batch_of_keys_and_a_whole_training_state(tmp_path):
    tree = {**_state(), "keys": jax.random.wrap_key_data(jnp.arange(10, dtype=jnp.uint32).reshape(5, 2))}
    assert_identical(_round_trip(tmp_path, tree), tree, classes=False)
    assert_identical(checkpoint.load(tmp_path / "t.ckpt", like=tree), tree)


def test_round_trip_python_scalars_keep_their_types_and_bits(tmp_path):
    tree = [True, False, 0, -3, 2**80, -(2**200), 0.1, -0.0, 5e-324, 1e308, "", 'λ→∞ "q" \ud800', None]
    loaded = _round_trip(tmp_path, tree)
    assert_identical(loaded, tree)
    assert [type(x) for x in loaded] == [type(x) for x in tree]


def test_round_trip_containers_order_and_empties(tmp_path):
    tree = {"b": 1, "a": {"z": (), "y": [], "x": {}}, "c": (None, [None]), "": ((),)}
    loaded = _round_trip(tmp_path, tree)
    assert_identical(loaded, tree)
    assert list(loaded) == ["b", "a", "c", ""] and list(loaded["a"]) == ["z", "y", "x"]


@pytest.mark.parametrize("root", [(), [], {}, None, 3, 2.5, "s", True, jnp.arange(3), np.arange(2.0)])
def test_round_trip_a_bare_root(tmp_path, root):
    assert_identical(_round_trip(tmp_path, root), root)


DTYPES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_every_dtype_bit_exact_jax_and_numpy(tmp_path, dtype):
    raw = np.random.default_rng(0).integers(0, 256, size=2 * 3 * 16, dtype=np.uint8)
    values = raw[: jnp.dtype(dtype).itemsize * 6].view(jnp.dtype(dtype))  # arbitrary bit patterns
    if dtype == "bool":
        values = raw[:6] % 2 == 1
    elif jnp.issubdtype(jnp.dtype(dtype), jnp.inexact):
        values = np.where(np.isfinite(values), values, 0).astype(jnp.dtype(dtype))
    values = values.reshape(2, 3)
    tree = {
        "jax": jnp.asarray(values),
        "numpy": values,
        "zero_d": jnp.asarray(values[1, 2]),
        "empty": np.zeros((0, 3), jnp.dtype(dtype)),
        "scalar": values[0, 0],
    }
    loaded = _round_trip(tmp_path, tree)
    assert_identical({k: v for k, v in loaded.items() if k != "scalar"}, {k: tree[k] for k in tree if k != "scalar"})
    assert type(loaded["scalar"]) is np.ndarray and loaded["scalar"].shape == ()  # without like, a 0-d array
    assert_identical(checkpoint.load(tmp_path / "t.ckpt", like=tree), tree)  # like=: a numpy scalar again
    loaded["numpy"][0, 0] = loaded["numpy"][1, 1]  # numpy results are writable


def test_round_trip_non_contiguous_and_big_endian_numpy(tmp_path):
    transposed, big_endian = np.arange(6.0).reshape(2, 3).T, np.arange(4, dtype=">i4")
    loaded = _round_trip(tmp_path, [transposed, big_endian])
    np.testing.assert_array_equal(loaded[0], transposed)
    np.testing.assert_array_equal(loaded[1], big_endian)
    assert loaded[1].dtype == np.int32 and loaded[1].dtype.isnative


def test_round_trip_non_finite_when_allowed(tmp_path):
    tree = {"w": jnp.array([np.nan, np.inf, -np.inf, 1.0]), "loss": [float("nan"), float("-inf")]}
    assert_identical(_round_trip(tmp_path, tree, allow_non_finite=True), tree)


def test_save_returns_the_path_and_saving_again_loads_the_same(tmp_path):
    first = checkpoint.save(str(tmp_path / "a.ckpt"), _state())
    assert first == tmp_path / "a.ckpt" and isinstance(first, pathlib.Path)
    assert_identical(checkpoint.load(first), checkpoint.load(checkpoint.save(tmp_path / "b.ckpt", _state())))


def test_metadata_round_trip(tmp_path):
    metadata = {"lr": 0.1, "layers": [2, 8, 1], "note": "baseline", "nested": {"ok": True, "x": None}}
    path = checkpoint.save(tmp_path / "m.ckpt", _params(), metadata=metadata)
    assert checkpoint.read_metadata(path) == metadata
    assert checkpoint.read_metadata(checkpoint.save(tmp_path / "n.ckpt", ())) is None


# --------------------------------------------------------------------------------------- like


class Hyper(NamedTuple):
    lr: float
    steps: int


class TrainLike(NamedTuple):
    params: tuple
    key: jax.Array
    step: int
    hyper: dict
    schedule: Hyper


def test_like_rebuilds_a_namedtuple_state_with_a_typed_key_hyperparameters_and_ints(tmp_path):
    state = TrainLike(
        _params(jnp.float64), jax.random.key(3), 17, {"b1": 0.9, "warmup": 100, "name": "adam"}, Hyper(1e-3, 50)
    )
    path = checkpoint.save(tmp_path / "s.ckpt", state)
    loaded = checkpoint.load(path, like=state)
    assert_identical(loaded, state)  # like's classes: TrainLike, Hyper, DenseParams
    assert jax.tree.structure(loaded) == jax.tree.structure(state)
    structs = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if isinstance(x, jax.Array) else x
    template = jax.tree.map(structs, state._replace(step=0, hyper={"b1": 0.0, "warmup": 0, "name": ""}))
    assert_identical(checkpoint.load(path, like=template), state)


def test_like_may_be_shape_dtype_structs_and_picks_the_array_kind(tmp_path):
    tree = {"p": _params(), "n": np.arange(3), "key": jax.random.key(0)}
    path = checkpoint.save(tmp_path / "t.ckpt", tree)
    like = jax.eval_shape(lambda: {"p": _params(), "n": jnp.arange(3), "key": jax.random.key(0)})
    loaded = checkpoint.load(path, like=like)
    assert isinstance(loaded["p"][0].w, jax.Array) and isinstance(loaded["n"], jax.Array)
    assert type(loaded["p"][0]) is DenseParams
    as_numpy = checkpoint.load(
        path, like={"p": jax.tree.map(np.asarray, _params()), "n": np.arange(3), "key": jax.random.key(0)}
    )
    assert type(as_numpy["p"][0].w) is np.ndarray
    as_numpy["p"][0].w[0, 0] = 1.0  # a buffer the caller may write to


def _like_error(tmp_path, tree, like):
    path = checkpoint.save(tmp_path / "t.ckpt", tree)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path, like=like)
    assert str(path) in str(info.value)
    return str(info.value)


def test_like_wrong_shape_names_leaf_and_both_shapes_without_casting(tmp_path):
    like = (DenseParams(w=jnp.zeros((4, 3), jnp.float32), b=jnp.zeros(4, jnp.float32)),) + _params()[1:]
    message = _like_error(tmp_path, _params(), like)
    assert "[0].w" in message and "(3, 4)" in message and "(4, 3)" in message and "does not cast" in message
    message = _like_error(tmp_path, _params(jnp.float32), _params(jnp.float64))
    assert "[0].w" in message and "float32" in message and "float64" in message


@pytest.mark.parametrize(
    "saved, like, words",
    [
        ({"a": 1, "b": 2}, {"a": 1}, ["<root>", "['a', 'b']", "['a']"]),
        ({"h": {"a": 1}}, {"h": {"a": 1, "loss": []}}, ["['h']", "'loss'"]),
        ([1, 2, 3], [1, 2], ["<root>", "list [0, 1, 2]", "list [0, 1]"]),
        ((1, 2), [1, 2], ["tuple", "list"]),
        ({"e": 4}, {"e": 4.0}, ["['e']", "int", "float"]),
        ({"e": True}, {"e": 1}, ["['e']", "bool", "int"]),
        ({"e": None}, {"e": jnp.zeros(())}, ["['e']", "NoneType"]),
        ({"e": None}, {"e": ()}, ["['e']", "NoneType", "tuple"]),
        ({"x": jnp.zeros(2)}, {"x": 0.0}, ["['x']", "float"]),
        (DenseParams(1, 2), (1, 2), ["DenseParams", "tuple"]),
        (DenseParams(1, 2), AdamLikeState(1, 2, 3), ["DenseParams", "AdamLikeState"]),
        ({"k": jax.random.key(0)}, {"k": jax.random.key(0, impl="rbg")}, ["['k']", "key<fry>", "key<rbg>"]),
        ({"k": jax.random.key(0)}, {"k": jnp.zeros(2, jnp.uint32)}, ["['k']", "key<fry>", "uint32"]),
        ({"x": jnp.zeros(2, jnp.int32)}, {"x": np.zeros(2, np.int64)}, ["['x']", "int32", "int64"]),
        ({"a": [1]}, {"a": [object()]}, ["['a'][0]", "object"]),
    ],
)
def test_like_wrong_structure_is_named(tmp_path, saved, like, words):
    message = _like_error(tmp_path, saved, like)
    for word in words:
        assert word in message, (word, message)


# ---------------------------------------------------------------------- NamedTuples: never looked up


class _Trap(tuple):
    """A NamedTuple-like class whose constructor load must never run."""

    _fields = ("a", "b")

    def __new__(cls, *args):
        raise AssertionError("load ran a constructor named in a file")


def test_load_never_imports_a_module_named_in_a_file(tmp_path):
    name = "jax.experimental.jax2tf"
    assert name not in sys.modules
    record = {
        "type": "namedtuple",
        "name": "jax2tf",
        "module": name,
        "qualname": f"{name}.jax2tf",
        "keys": ["a"],
        "items": [1],
    }
    path = _craft(tmp_path / "f.ckpt", record)
    loaded = checkpoint.load(path)
    assert loaded == (1,) and type(loaded).__module__ == "fnn.checkpoint" and name not in sys.modules
    with pytest.raises(CheckpointError):
        checkpoint.load(_craft(tmp_path / "g.ckpt", {"type": name, "items": []}))
    assert name not in sys.modules


NAMED_MODULES = ["jax.experimental.jax2tf", "jax.experimental.sparse", "json.tool", "xml.dom.minidom"]
LOAD_FORGED = textwrap.dedent("""
    import importlib.util, json, sys
    import safetensors, safetensors.numpy  # fnn's own dependency, imported on first use
    from fnn import checkpoint
    from fnn.errors import CheckpointError
    checkpoint.load(sys.argv[1])  # genuine files first: what JAX imports on a first use is not counted
    checkpoint.load(sys.argv[2], with_model=True)
    before = set(sys.modules)
    refused = 0
    for path in sys.argv[3:]:
        for call in (checkpoint.load, checkpoint.read_architecture, checkpoint.read_metadata,
                     lambda p: checkpoint.load(p, with_model=True)):
            try:
                call(path)
            except CheckpointError:
                refused += 1
    new = sorted(set(sys.modules) - before)
    names = %r
    imported = [m in sys.modules for m in names]
    print(json.dumps({"new": new, "refused": refused, "imported": imported,
                      "importable": [importlib.util.find_spec(m) is not None for m in names]}))
""")


@pytest.mark.slow  # a fresh process: `make test-slow` (CI runs it after make test)
def test_load_imports_no_module_a_file_names_anywhere_in_a_fresh_process(tmp_path, relu_file):
    """Every place a file holds a name: a NamedTuple's name, module and qualname, a node's type, an array's dtype
    and kind, a key's impl, a layer's class, activation and initializer, the loss and the format name."""
    files = []
    for i, module in enumerate(NAMED_MODULES):
        leaf = module.rsplit(".", 1)[-1]
        forged = [
            {
                "type": "namedtuple",
                "name": leaf,
                "module": module,
                "qualname": f"{module}.{leaf}",
                "keys": ["a"],
                "items": [1],
            },
            {"type": module, "items": []},
            {"type": "namedtuple", "name": module, "keys": ["a"], "items": [1]},
            {"type": "array", "kind": "numpy", "dtype": module, "shape": [1], "tensor": "w"},
            {"type": "array", "kind": module, "dtype": "float32", "shape": [1], "tensor": "w"},
            {"type": "array", "kind": "key", "dtype": "uint32", "shape": [2], "tensor": "w", "impl": module},
        ]
        for j, record in enumerate(forged):
            files.append(
                _craft(
                    tmp_path / f"f{i}-{j}.ckpt",
                    record,
                    {"w": {"dtype": "U32", "shape": [2], "data_offsets": [0, 8]}},
                    bytes(8),
                )
            )
        files.append(_craft(tmp_path / f"fmt{i}.ckpt", None, fnn_format=module))
        for j, field in enumerate(["class", "activation", "kernel_init", "loss"]):
            path = tmp_path / f"m{i}-{j}.ckpt"
            path.write_bytes(relu_file[0].read_bytes())

            def change(h, field=field, module=module):
                if field == "class":
                    h["model"]["layers"][0]["class"] = module
                elif field == "loss":
                    h["model"]["loss"] = module
                else:
                    h["model"]["layers"][0]["config"][field] = module

            _rewrite(path, change)
            files.append(path)
    code = LOAD_FORGED % (NAMED_MODULES,)
    tree = {"key": jax.random.key(3), "w": jnp.ones(2, jnp.float32), "n": np.arange(3), "s": AdamLikeState(1, (), ())}
    genuine = [checkpoint.save(tmp_path / "genuine.ckpt", tree), relu_file[0]]  # no float64: x64 is off there
    args = [sys.executable, "-c", code, *map(str, genuine + files)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["importable"] == [True] * len(NAMED_MODULES)  # so their absence below means something
    assert report["new"] == [] and report["imported"] == [False] * len(NAMED_MODULES)
    assert report["refused"] >= len(files)  # most are refused; none imports anything on the way


def test_a_forged_class_name_never_runs_a_constructor(tmp_path):
    record = {"type": "namedtuple", "name": "_Trap", "module": __name__, "keys": ["a", "b"], "items": [1, 2]}
    loaded = checkpoint.load(_craft(tmp_path / "f.ckpt", record))
    assert type(loaded) is not _Trap and tuple(loaded) == (1, 2)
    for name in ["system", "eval", "__import__"]:
        assert tuple(checkpoint.load(_craft(tmp_path / "f.ckpt", {**record, "name": name}))) == (1, 2)


@pytest.mark.parametrize(
    "name, keys",
    [("not valid", ["a"]), ("P", ["a b"]), ("P", ["_x"]), ("P", ["a", "a"]), ("class", ["a"]), ("P", [1]), (3, ["a"])],
)
def test_invalid_namedtuple_names_and_fields_are_malformed(tmp_path, name, keys):
    record = {"type": "namedtuple", "name": name, "keys": keys, "items": [0] * len(keys)}
    with pytest.raises(CheckpointError, match="malformed header"):
        checkpoint.load(_craft(tmp_path / "f.ckpt", record))


def test_save_refuses_a_namedtuple_load_could_not_rebuild(tmp_path):
    renamed = collections.namedtuple("P", ["a", "def"], rename=True)  # fields ("a", "_1")
    with pytest.raises(FnnTypeError, match=r"\['x'\] is a NamedTuple that load could not rebuild"):
        checkpoint.save(tmp_path / "t.ckpt", {"x": renamed(1, 2)})
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------- save: bad input


@pytest.mark.parametrize("path", [None, 3, b"run.ckpt", ["run.ckpt"]])
def test_save_and_load_refuse_a_path_of_the_wrong_type(path):
    for call in (
        lambda: checkpoint.save(path, _params()),
        lambda: checkpoint.load(path),
        lambda: checkpoint.read_metadata(path),
        lambda: checkpoint.read_architecture(path),
    ):
        with pytest.raises(FnnTypeError, match=r"str or os.PathLike"):
            call()


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    "leaf, where",
    [
        ({"opt": [1, np.array([object()], dtype=object)]}, r"\['opt'\]\[1\] is an object array"),
        ({"opt": [1, object()]}, r"\['opt'\]\[1\] has unsupported type object"),
        ((DenseParams(w={1, 2}, b=0),), r"\[0\]\.w has unsupported type set"),
        ({"s": np.array(["a", "b"])}, r"\['s'\] is an array of dtype <U1"),
        ({"d": np.array(["2020-01-01"], dtype="datetime64[D]")}, r"\['d'\]"),
        ({"c": 1 + 2j}, r"\['c'\] has unsupported type complex"),
        ({"b": b"bytes"}, r"\['b'\] has unsupported type bytes"),
        ({"e": Color.RED}, r"\['e'\] has unsupported type Color"),
        ({"o": collections.OrderedDict(a=1)}, r"\['o'\] has unsupported type OrderedDict"),
        ({1: 2}, r"tree dict <root> has key 1 of type int"),
        ({"x": {None: 2}}, r"tree dict \['x'\] has key None"),
        ({"f": lambda: 0}, r"\['f'\]"),
    ],
)
def test_save_refuses_unsupported_leaves_naming_the_path(tmp_path, leaf, where):
    with pytest.raises(FnnTypeError, match=where):
        checkpoint.save(tmp_path / "t.ckpt", leaf)
    assert os.listdir(tmp_path) == []


def test_save_refuses_a_traced_value():
    @jax.jit
    def f(x):
        checkpoint.save("never.ckpt", {"x": x})
        return x

    with pytest.raises(FnnTypeError, match=r"\['x'\] is a traced value"):
        f(jnp.ones(2))


@pytest.mark.parametrize(
    "tree, where",
    [
        (
            (DenseParams(w=jnp.array([[1.0, jnp.nan]]), b=jnp.zeros(2)),),
            r"\[0\]\.w has 1 non-finite value\(s\), nan at \(0, 1\)",
        ),
        ({"m": np.array([1.0, np.inf], np.float32)}, r"\['m'\] has 1 .* inf at \(1,\)"),
        ({"z": jnp.array([1 + 1j, complex(0, np.inf)])}, r"\['z'\]"),
        ({"history": {"loss": [0.5, float("nan")]}}, r"\['history'\]\['loss'\]\[1\] is the non-finite float nan"),
        ({"bf": jnp.array([-jnp.inf], jnp.bfloat16)}, r"\['bf'\]"),
    ],
)
def test_save_refuses_non_finite_values_naming_the_leaf(tmp_path, tree, where):
    with pytest.raises(FnnValueError, match=where + ".*allow_non_finite"):
        checkpoint.save(tmp_path / "t.ckpt", tree)
    assert os.listdir(tmp_path) == []


def test_save_refuses_a_directory_a_tree_containing_itself_and_a_huge_int(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(FnnValueError, match="is a directory"):
        checkpoint.save(tmp_path / "dir", _params())
    loop = [1]
    loop.append(loop)
    with pytest.raises(FnnValueError, match=r"tree node \[1\] contains itself"):
        checkpoint.save(tmp_path / "t.ckpt", loop)
    with pytest.raises(FnnValueError, match=r"tree leaf \['n'\] is an int of 20001 bits"):
        checkpoint.save(tmp_path / "t.ckpt", {"n": 2**20000})
    assert os.listdir(tmp_path) == ["dir"] and os.listdir(tmp_path / "dir") == []


def test_save_refuses_trees_too_deep_or_too_big_naming_where_before_recursing_or_writing(tmp_path):
    deep = 0
    for _ in range(400):
        deep = [deep]
    with pytest.raises(FnnValueError, match=r"\[0\]\[0\]\[0\].* past a checkpoint's 64 levels"):
        checkpoint.save(tmp_path / "t.ckpt", deep)
    assert_identical(_round_trip(tmp_path, deep_64 := [[[[[[1]]]]]]), deep_64)
    with pytest.raises(FnnValueError, match="100,000 nodes"):
        checkpoint.save(tmp_path / "t.ckpt", list(range(10**6)))
    with pytest.raises(FnnValueError, match="100,000 nodes"):
        checkpoint.save(tmp_path / "t.ckpt", {str(i): None for i in range(10**6)})


def _nested(depth, wrap):
    tree = 0
    for _ in range(depth):
        tree = wrap(tree)
    return tree


@pytest.mark.parametrize(
    "wrap", [lambda t: [t], lambda t: {"k": t}, lambda t: (t,), lambda t: AdamLikeState(t, (), ())]
)
def test_the_depth_limit_is_exactly_what_load_reads(tmp_path, wrap):
    """64 levels below the root save and load (from a deep stack too); 65 are refused before anything is written."""
    deepest = _nested(64, wrap)
    path = checkpoint.save(tmp_path / "t.ckpt", deepest)

    def load_from_depth(depth):
        return checkpoint.load(path) if depth == 0 else load_from_depth(depth - 1)

    assert_identical(load_from_depth(sys.getrecursionlimit() - 400), deepest, classes=False)
    for depth in (65, 400, 5000):
        with pytest.raises(FnnValueError, match=r"is past a checkpoint's 64 levels below the root; flatten the tree"):
            checkpoint.save(tmp_path / "u.ckpt", _nested(depth, wrap))
    assert os.listdir(tmp_path) == ["t.ckpt"]


def test_too_many_nodes_says_the_limit_and_the_fix(tmp_path):
    with pytest.raises(FnnValueError, match=r"past a checkpoint's 100,000 nodes; store numbers as arrays"):
        checkpoint.save(tmp_path / "t.ckpt", [0.5] * 10**6)
    leaves = list(range(99_999))  # the root and 99,999 leaves: the most that fit
    assert checkpoint.load(checkpoint.save(tmp_path / "t.ckpt", leaves)) == leaves


@pytest.mark.parametrize("wrap", [lambda t: [t], lambda t: {"k": t}])
def test_metadata_deeper_than_load_reads_is_refused(tmp_path, wrap):
    path = checkpoint.save(tmp_path / "t.ckpt", (), metadata={"m": _nested(63, wrap)})
    assert checkpoint.read_metadata(path) == {"m": _nested(63, wrap)}
    for depth in (64, 400, 5000):
        with pytest.raises(FnnValueError, match=r"^metadata\['m'\]\['k'\]|^metadata\['m'\]\[0\]"):
            checkpoint.save(tmp_path / "u.ckpt", (), metadata={"m": _nested(depth, wrap)})
    with pytest.raises(FnnValueError, match=r"is past a checkpoint's 64 levels below the root; flatten it"):
        checkpoint.save(tmp_path / "u.ckpt", (), metadata={"m": _nested(5000, wrap)})
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(FnnValueError, match=r"metadata.*(contains itself|64 levels)"):
        checkpoint.save(tmp_path / "u.ckpt", (), metadata=loop)
    assert os.listdir(tmp_path) == ["t.ckpt"]


HEADER_FIX = r"more than a header holds \(100,000,000 bytes, safetensors' limit\); store long text as a uint8 array"


def test_a_header_over_safetensors_limit_is_refused_before_writing_with_the_limit_and_the_fix(tmp_path):
    """Whether the size is plain from the tree (checked before serializing) or only safetensors' writer finds it
    (a character that JSON escapes, and safetensors escapes again: 15 MB of text, a 105 MB header)."""
    with pytest.raises(FnnValueError, match=HEADER_FIX):
        checkpoint.save(tmp_path / "u.ckpt", {"note": "x" * _tree_codec.MAX_HEADER})
    with pytest.raises(FnnValueError, match=HEADER_FIX):
        checkpoint.save(tmp_path / "u.ckpt", (), metadata={"note": "\x01" * 15_000_000})
    assert os.listdir(tmp_path) == []


# two 100 MB headers: about 5 s, in the default run
@pytest.mark.slow  # seconds of real I/O or fresh processes: make test-slow runs it
def test_save_writes_the_largest_header_load_and_safetensors_read_and_refuses_one_byte_more(tmp_path):
    """safetensors' MAX_HEADER_SIZE (10**8 bytes, checked by its writer and its reader) is fnn's limit both ways:
    a header of exactly 10**8 bytes saves and loads in fnn and in safetensors; one byte more is refused by save."""
    from safetensors.numpy import load_file

    empty = checkpoint.save(tmp_path / "t.ckpt", {"note": ""}).read_bytes()
    unpadded = len(empty[8 : 8 + int.from_bytes(empty[:8], "little")].rstrip(b" "))
    longest = {"note": "x" * (_tree_codec.MAX_HEADER - unpadded)}
    path = checkpoint.save(tmp_path / "t.ckpt", longest)
    assert int.from_bytes(path.read_bytes()[:8], "little") == _tree_codec.MAX_HEADER == 100_000_000
    assert checkpoint.load(path) == longest and load_file(path) == {}
    del longest
    with pytest.raises(FnnValueError, match=HEADER_FIX):
        checkpoint.save(tmp_path / "u.ckpt", {"note": "x" * (_tree_codec.MAX_HEADER - unpadded + 1)})
    assert os.listdir(tmp_path) == ["t.ckpt"]


@pytest.mark.parametrize(
    "metadata, error, match",
    [
        ([1], FnnTypeError, "must be a dict"),
        ({"a": (1, 2)}, FnnTypeError, "tuples or non-str keys"),
        ({"a": {2: 1}}, FnnTypeError, "tuples or non-str keys"),
        ({"lr": float("nan")}, FnnValueError, "not JSON"),
        ({"x": np.float32(1)}, FnnTypeError, "float32"),
        ({"n": 2**20000}, FnnValueError, "not JSON"),
    ],
)
def test_save_refuses_non_json_metadata(tmp_path, metadata, error, match):
    with pytest.raises(error, match=match):
        checkpoint.save(tmp_path / "t.ckpt", (), metadata=metadata)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------ the safetensors layout


def _small_tree():
    return {
        "p": (DenseParams(w=jnp.arange(6.0).reshape(2, 3), b=jnp.ones(3, jnp.float32)),),
        "key": jax.random.key(3),
        "epoch": 2,
        "lr": 0.5,
        "name": "x",
        "none": None,
        "n": np.arange(3, dtype=np.int32),
    }


@pytest.fixture
def small(tmp_path):
    """A small checkpoint with every kind of node, its bytes and its tree."""
    path = checkpoint.save(tmp_path / "small.ckpt", _small_tree())
    return path, path.read_bytes(), _small_tree()


def test_file_layout_is_safetensors_as_documented(small):
    _, data, tree = small
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__")
    assert n % 8 == 0 and all(type(v) is str for v in meta.values())
    assert set(meta) == {"fnn_sha256", "fnn_format", "fnn_format_version", "fnn_tree"}
    assert meta["fnn_format"] == "fnn-checkpoint" and meta["fnn_format_version"] == "3"
    at = data.index(SHA_KEY) + len(SHA_KEY)
    zeroed = data[:at] + b"0" * 64 + data[at + 64 :]
    assert data[at : at + 64].decode() == meta["fnn_sha256"] == hashlib.sha256(zeroed).hexdigest()
    assert header == {
        "p.0.w": {"dtype": "F64", "shape": [2, 3], "data_offsets": header["p.0.w"]["data_offsets"]},
        "p.0.b": {"dtype": "F32", "shape": [3], "data_offsets": header["p.0.b"]["data_offsets"]},
        "key": {"dtype": "U32", "shape": [2], "data_offsets": header["key"]["data_offsets"]},
        "n": {"dtype": "I32", "shape": [3], "data_offsets": header["n"]["data_offsets"]},
    }
    buffer = data[8 + n :]
    begin, end = header["p.0.w"]["data_offsets"]
    assert buffer[begin:end] == np.arange(6.0).astype("<f8").tobytes()
    structure = json.loads(meta["fnn_tree"])
    assert structure["keys"] == list(tree) and structure["items"][2:6] == [
        2,
        {"type": "float", "value": "0x1.0000000000000p-1"},
        "x",
        None,
    ]
    assert structure["items"][0]["items"][0] == {
        "type": "namedtuple",
        "keys": ["w", "b"],
        "name": "DenseParams",
        "items": [
            {"type": "array", "kind": "jax", "dtype": "float64", "shape": [2, 3], "tensor": "p.0.w"},
            {"type": "array", "kind": "jax", "dtype": "float32", "shape": [3], "tensor": "p.0.b"},
        ],
    }
    assert structure["items"][1] == {
        "type": "array",
        "kind": "key",
        "dtype": "uint32",
        "shape": [2],
        "tensor": "key",
        "impl": "threefry2x32",
    }


def test_tensor_names_are_tree_paths_with_unsafe_characters_escaped(tmp_path):
    one = np.ones(1, np.float32)
    tree = {
        "a.b": one,
        "a": {"b": one},
        "": one,
        "λ ": one,
        "__metadata__": one,
        "%": one,
        "l": [one, (one, None)],
        "nt": DenseParams(w=one, b=one),
        "s": 3,
    }
    path = checkpoint.save(tmp_path / "t.ckpt", tree)
    names = set(_split(path.read_bytes())[0]) - {"__metadata__"}
    assert names == {"a%2Eb", "a.b", "%", "%CE%BB%20", "%5F_metadata__", "%25", "l.0", "l.1.0", "nt.w", "nt.b"}
    assert_identical(checkpoint.load(path), tree, classes=False)
    lone = checkpoint.save(tmp_path / "r.ckpt", np.arange(2)).read_bytes()
    assert set(_split(lone)[0]) == {"__metadata__", "root"}


def test_complex_arrays_are_stored_as_real_pairs(tmp_path):
    tree = {"c64": np.array([1 + 2j, 3 - 4j], np.complex64), "c128": jnp.asarray(5 + 6j, jnp.complex128)}
    header, buffer = _split(checkpoint.save(tmp_path / "c.ckpt", tree).read_bytes())
    assert (header["c64"]["dtype"], header["c64"]["shape"]) == ("F32", [2, 2])
    assert (header["c128"]["dtype"], header["c128"]["shape"]) == ("F64", [2])
    begin, end = header["c64"]["data_offsets"]
    assert np.frombuffer(buffer[begin:end], "<f4").tolist() == [1, 2, 3, -4]
    assert_identical(checkpoint.load(tmp_path / "c.ckpt"), tree)


def test_the_safetensors_package_reads_every_array_by_name(tmp_path):
    import safetensors
    import safetensors.numpy as st

    tree = {
        "params": _params(jnp.float64),
        "key": jax.random.key(5),
        "mask": np.array([True, False]),
        "step": jnp.asarray(7, jnp.int32),
        "z": np.array([1 + 2j], np.complex64),
        "empty": np.zeros((0, 3), np.float32),
        "epoch": 3,
    }
    path = checkpoint.save(tmp_path / "t.ckpt", tree)
    params = tree["params"]
    expected = {
        "params.0.w": params[0].w,
        "params.0.b": params[0].b,
        "params.1.w": params[1].w,
        "params.1.b": params[1].b,
        "key": jax.random.key_data(tree["key"]),
        "mask": tree["mask"],
        "step": tree["step"],
        "z": np.array([[1.0, 2.0]], np.float32),
        "empty": tree["empty"],
    }
    got = st.load_file(str(path))
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        want = np.asarray(want)
        assert (got[name].dtype, got[name].shape, got[name].tobytes()) == (want.dtype, want.shape, want.tobytes())
    with safetensors.safe_open(str(path), framework="np") as f:
        assert json.loads(f.metadata()["fnn_tree"])["keys"][-1] == "epoch"
    every = {name: np.zeros((2, 1), jnp.dtype(name)) for name in DTYPES}  # bfloat16 too, which numpy lacks
    parsed = dict(safetensors.deserialize(checkpoint.save(tmp_path / "d.ckpt", every).read_bytes()))
    codes = dict(zip(DTYPES, "BOOL I8 I16 I32 I64 U8 U16 U32 U64 F16 BF16 F32 F64 F32 F64".split()))  # noqa: SIM905
    for name in DTYPES:
        pair = [2] if name.startswith("complex") else []
        assert (parsed[name]["dtype"], parsed[name]["shape"]) == (codes[name], [2, 1, *pair]), name
        assert bytes(parsed[name]["data"]) == every[name].tobytes(), name


def test_a_safetensors_file_fnn_did_not_write_is_refused(tmp_path):
    import safetensors.numpy as st

    path = tmp_path / "foreign.safetensors"
    for metadata in [None, {"format": "np"}]:
        st.save_file({"w": np.ones((2, 3), np.float32)}, str(path), metadata=metadata)
        for read in (checkpoint.load, checkpoint.read_metadata, checkpoint.read_architecture):
            with pytest.raises(CheckpointError, match=r"safetensors file without fnn metadata.*load_file"):
                read(path)


# ------------------------------------------------------------------- load: damaged and foreign files


def test_load_never_unpickles(small, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load must not unpickle or use np.load")

    for target, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (np, "load")]:
        monkeypatch.setattr(target, name, refuse)
    assert_identical(checkpoint.load(small[0]), small[2], classes=False)


def _flip(path, i, mask):
    # In place, without truncating: rewriting a whole file costs an ext4 flush per case.
    with open(path, "r+b") as f:
        f.seek(i)
        byte = f.read(1)[0]
        f.seek(i)
        f.write(bytes([byte ^ mask]))


def test_every_truncation_is_a_checkpoint_error(small):
    path, data, _ = small
    for n in reversed(range(len(data))):
        os.truncate(path, n)
        with pytest.raises(CheckpointError, match=str(path)):
            checkpoint.load(path)
    assert len(data) > 300 and path.stat().st_size == 0


def test_every_flipped_bit_is_a_checkpoint_error(small):
    path, data, _ = small
    for i in range(len(data)):
        for bit in (i % 8, 7 - i % 8):
            _flip(path, i, 1 << bit)
            with pytest.raises(CheckpointError):
                checkpoint.load(path)
            _flip(path, i, 1 << bit)
    assert path.read_bytes() == data


def test_flips_and_cuts_across_a_larger_payload(tmp_path):
    tree = {"w": jnp.asarray(np.random.default_rng(1).normal(size=(256, 128)))}
    path = checkpoint.save(tmp_path / "big.ckpt", tree)
    size = path.stat().st_size
    for i in np.linspace(200, size - 1, 200).astype(int):  # the header's end, then the tensor bytes
        _flip(path, i, 0x80)
        with pytest.raises(CheckpointError, match="corrupt: sha256"):
            checkpoint.load(path)
        _flip(path, i, 0x80)
    assert_identical(checkpoint.load(path), tree)
    for n in np.linspace(size - 1, 0, 200).astype(int):
        os.truncate(path, n)
        with pytest.raises(CheckpointError, match=r"truncated|corrupt|empty|not an fnn checkpoint"):
            checkpoint.load(path)


def test_trailing_bytes_are_a_checkpoint_error(small):
    path, data, _ = small
    path.write_bytes(data + b"\0")
    with pytest.raises(CheckpointError, match="corrupt: sha256"):
        checkpoint.load(path)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"is empty \(0 bytes\), not an fnn checkpoint"),
        (b"\x10\x00\x00", "not an fnn checkpoint"),
        (np.random.default_rng(0).bytes(4096), "not an fnn checkpoint: it does not start with a safetensors header"),
        (b"hello world\n" * 10, "not an fnn checkpoint"),
        (b"FNN-CHECKPOINT\n" + b"\xff" * 100, "not an fnn checkpoint"),  # format version 1: no longer read
        ((2**63).to_bytes(8, "little") + b"{}", "not an fnn checkpoint"),  # a header length past any limit
        ((99_000_000).to_bytes(8, "little") + b'{"__metadata__":', "truncated"),
        ((8).to_bytes(8, "little"), "truncated"),
        ((8).to_bytes(8, "little") + b'{"a":{} ', "safetensors file without fnn metadata"),
        ((40).to_bytes(8, "little") + b"{" + SHA_KEY + b"0" * 25, "corrupt: sha256"),
        ((40).to_bytes(8, "little") + b'{"__metadata__":{"fnn_sha255":"0000000"}', "corrupt: it has no fnn_sha256"),
        (b"PK\x03\x04" + bytes(60), r"it looks like a zip/\.npz archive"),
        (b"\x89HDF\r\n\x1a\n" + bytes(60), "it looks like HDF5"),
    ],
)
def test_garbage_and_empty_files(tmp_path, content, match):
    path = tmp_path / "g.ckpt"
    path.write_bytes(content)
    for read in (checkpoint.load, checkpoint.read_metadata, checkpoint.read_architecture):
        with pytest.raises(CheckpointError, match=match):
            read(path)


@pytest.mark.parametrize(
    "start, size, match",
    [
        ((99_999_992).to_bytes(8, "little") + b"{", 0, "truncated"),  # the header bound itself
        ((2**40).to_bytes(8, "little") + b"{", 2**30, "not an fnn checkpoint"),
        (b"\x80\x04\x95", 2**30, "pickle"),
    ],
)
def test_lengths_and_leading_bytes_are_checked_before_the_file_is_read(tmp_path, start, size, match):
    import tracemalloc

    path = tmp_path / "g.ckpt"
    path.write_bytes(start)
    os.truncate(path, max(size, len(start)))  # a sparse 1 GiB file costs no disk
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=match):
            checkpoint.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


class _Boom:
    """Unpickling this creates a directory: the marker that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_pickles_of_every_protocol_npy_and_npz_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    files = [(tmp_path / f"p{protocol}.ckpt", "") for protocol in range(pickle.HIGHEST_PROTOCOL + 1)]
    for (path, _), protocol in zip(files, range(pickle.HIGHEST_PROTOCOL + 1)):
        path.write_bytes(pickle.dumps({"params": _Boom(marker)}, protocol=protocol))
    np.save(tmp_path / "obj.npy", np.array([_Boom(marker), 1], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "obj.npz", a=np.array([_Boom(marker)], dtype=object))
    files += [(tmp_path / "obj.npy", r"\.npy"), (tmp_path / "obj.npz", "zip")]
    for path, looks in files:
        with pytest.raises(CheckpointError, match=f"not an fnn checkpoint.*{looks}"):
            checkpoint.load(path)
        assert not marker.exists()
    with pytest.raises(CheckpointError, match="it looks like a pickle; fnn never unpickles"):
        checkpoint.load(files[2][0])


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(
        CheckpointNotFoundError, match=r"no checkpoint at .*nope\.ckpt: the file does not exist"
    ) as info:
        checkpoint.load(tmp_path / "nope.ckpt")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(CheckpointError, match="is a directory"):
        checkpoint.load(tmp_path)


@pytest.mark.parametrize(
    "version, match",
    [
        ("4", "upgrade fnn"),
        ("10", "upgrade fnn"),
        ("2", "reads 3|not 'fnn"),
        ("1", "not 'fnn"),
        ("x", "'x'"),
        ("9" * 5000, "upgrade fnn"),
    ],
)
def test_other_format_versions_are_refused(small, version, match):
    path = small[0]
    _rewrite(path, lambda h: h["meta"].update(fnn_format_version=version))
    with pytest.raises(CheckpointError, match=match):
        checkpoint.load(path)


def _w(h):
    return h["tree"]["items"][0]["items"][0]["items"][0]


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h["meta"].update(fnn_format="other-format"),
        lambda h: h["meta"].pop("fnn_format"),
        lambda h: h["meta"].pop("fnn_format_version"),
        lambda h: h.update(tree=None),
        lambda h: h.update(tree=[1, 2]),
        lambda h: h.update(tree={"type": "pickle", "value": "x"}),
        lambda h: _w(h).update(dtype="object"),
        lambda h: _w(h).update(dtype=["F32"]),
        lambda h: _w(h).update(shape=[2, -3]),
        lambda h: _w(h).update(shape=[3, 2]),  # the same size: only the tensor's shape tells
        lambda h: _w(h).update(shape="2,3"),
        lambda h: _w(h).update(kind="torch"),
        lambda h: _w(h).update(tensor="n"),
        lambda h: _w(h).update(tensor=["p.0.w"]),
        lambda h: _w(h).pop("tensor"),
        lambda h: h["tree"]["items"][1].update(impl="nope"),
        lambda h: h["tree"]["items"][1].update(impl=None),
        lambda h: h["tree"]["items"][3].update(value="0xnope"),
        lambda h: h["tree"]["items"][3].update(value=1.5),
        lambda h: h["tree"].update(keys=["a"]),
        lambda h: h["tree"]["items"][0]["items"][0].update(keys=["w", "not valid"]),
        lambda h: h["tree"]["items"][0]["items"][0].update(keys=["w"]),
        lambda h: h["tree"]["items"][0].update(items=7),
        lambda h: h["tensors"]["p.0.w"].update(dtype="F32"),
        lambda h: h["tensors"]["p.0.b"].update(data_offsets=[49, 61]),
        lambda h: h["tensors"]["n"].update(shape=[3.0]),
        lambda h: h["tensors"].update(x=h["tensors"].pop("n")),
        lambda h: h["tensors"].update(extra={"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}),
        lambda h: h["tensors"]["n"].update(dtype="C64"),
    ],
)
def test_malformed_headers_with_a_valid_checksum(small, change):
    path = small[0]
    _rewrite(path, change)
    with pytest.raises(CheckpointError, match=str(path)):
        checkpoint.load(path)


def test_malformed_metadata_strings_with_a_valid_checksum(small):
    path, data, _ = small
    header, buffer = _split(data)
    load, metadata, architecture = checkpoint.load, checkpoint.read_metadata, checkpoint.read_architecture
    with_model = lambda path: checkpoint.load(path, with_model=True)
    for change, reads in [
        ({"fnn_tree": "{"}, [load]),
        ({"fnn_tree": "[" * 100_000}, [load]),
        ({"fnn_tree": 3}, [load]),
        ({"fnn_metadata": "[1"}, [load, metadata, architecture]),
        ({"fnn_metadata": 1.5}, [metadata]),
        ({"fnn_model": "7"}, [with_model, architecture]),
        ({"fnn_model": "{}"}, [architecture]),
    ]:
        path.write_bytes(_seal({**header, "__metadata__": {**header["__metadata__"], **change}}, buffer))
        for read in reads:
            with pytest.raises(CheckpointError, match="malformed"):
                read(path)


def test_bad_utf8_in_a_header_with_a_valid_checksum(tmp_path):
    text = b'{"__metadata__":{"fnn_sha256":"' + b"0" * 64 + b'","fnn_format":"\xff\xfe"}}'
    text += b" " * (-len(text) % 8)
    data = len(text).to_bytes(8, "little") + text
    at = data.index(SHA_KEY) + len(SHA_KEY)
    path = tmp_path / "u.ckpt"
    path.write_bytes(data[:at] + hashlib.sha256(data).hexdigest().encode() + data[at + 64 :])
    with pytest.raises(CheckpointError, match="malformed header: UnicodeDecodeError"):
        checkpoint.load(path)


@pytest.mark.parametrize(
    "shape, words",
    [
        ([0, 2**62], "more than 2**63 - 1 bytes"),
        ([2**62, 0], "more than 2**63 - 1 bytes"),
        ([0, 2**61, 8], "more than 2**63 - 1 bytes"),
        ([2**32, 2**32, 0], "more than 2**63 - 1 bytes"),
        ([0, 2**63 - 1], "more than 2**63 - 1 bytes"),
        ([0, 2**64 - 1], "more than 2**63 - 1 bytes"),
        ([1] * 65, "65 dimensions, more than 64"),
        ([0] * 65, "65 dimensions, more than 64"),
        ([1] * 10_000, "10000 dimensions, more than 64"),
        ([-1], "a dimension that is not an int >= 0"),
        ([1.0], "a dimension that is not an int >= 0"),
        ([True], "a dimension that is not an int >= 0"),
        ("3", "not a list of dimensions"),
    ],
)
def test_huge_shapes_with_a_valid_digest_are_checkpoint_errors(tmp_path, shape, words):
    """A shape no array can have is refused by name, before numpy, JAX or safetensors see it or allocate."""
    record = {"type": "array", "kind": "jax", "dtype": "float32", "shape": shape, "tensor": "root"}
    tensors = {"root": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}
    path = _craft(tmp_path / "h.ckpt", record, tensors)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            checkpoint.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(f"{path} is corrupt or forged: tensor 'root' declares shape ") and words in message
    assert message.endswith("which no array can have; fnn.save never writes one")
    assert not re.search(r"ValueError|SafetensorError|TypeError|numpy|maximum supported", message)
    assert len(message) < 400 and peak < 2**20


@pytest.mark.parametrize("shape", [[0, 2**40], [2**20, 0, 2**30], [1] * 64, [0] * 64])
def test_the_largest_shapes_fnn_accepts_load_as_empty_or_tiny_arrays(tmp_path, shape):
    nbytes = 0 if 0 in shape else 4
    record = {"type": "array", "kind": "numpy", "dtype": "float32", "shape": shape, "tensor": "root"}
    tensors = {"root": {"dtype": "F32", "shape": shape, "data_offsets": [0, nbytes]}}
    loaded = checkpoint.load(_craft(tmp_path / "h.ckpt", record, tensors, bytes(nbytes)))
    assert loaded.shape == tuple(shape) and loaded.dtype == np.float32


def test_a_shape_in_the_tree_that_differs_from_its_tensor_is_refused(tmp_path):
    record = {"type": "array", "kind": "numpy", "dtype": "float32", "shape": [0, 2**62], "tensor": "root"}
    tensors = {"root": {"dtype": "F32", "shape": [0, 4], "data_offsets": [0, 0]}}
    path = _craft(tmp_path / "h.ckpt", record, tensors)
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))} is corrupt or forged: tensor 'root' declares"):
        checkpoint.load(path)


def test_a_deeply_nested_forged_tree_is_a_checkpoint_error(tmp_path):
    path = _craft(tmp_path / "d.ckpt", None)
    header, buffer = _split(path.read_bytes())
    header["__metadata__"]["fnn_tree"] = '{"type":"list","items":[' * 50_000 + "[]" + "]}" * 50_000
    path.write_bytes(_seal(header, buffer))
    with pytest.raises(CheckpointError, match="malformed header: RecursionError"):
        checkpoint.load(path)


# ------------------------------------------------------------------- the model stored with the params

RELU = fnn.Sequential(
    [fnn.Dense(4, activation="relu"), fnn.Dense(4, activation="relu"), fnn.Dense(1, activation="sigmoid")]
)


def _model_params(model, input_dim=2, dtype=np.float32, seed=0):
    """Params that fit `model`, from numpy (model.init would compile a program per shape)."""
    rng = np.random.default_rng(seed)
    return tuple(
        DenseParams(w=jnp.asarray(rng.standard_normal(shape), dtype), b=jnp.zeros(shape[1], dtype))
        for shape in model.shapes(input_dim)
    )


@pytest.fixture
def relu_file(tmp_path):
    """RELU's params saved with the model (and a loss), and the params."""
    params = _model_params(RELU)
    return checkpoint.save(tmp_path / "relu.ckpt", params, model=RELU, loss="bce"), params


def test_the_stored_architecture_holds_every_dense_field_and_where_the_params_are(relu_file):
    path, _ = relu_file
    record = json.loads(_split(path.read_bytes())[0]["__metadata__"]["fnn_model"])
    assert record["layers"][1] == {"class": "Dense", "config": dataclasses.asdict(RELU.layers[1])}
    assert [list(layer["config"]) for layer in record["layers"]] == [
        [f.name for f in dataclasses.fields(fnn.Dense)]
    ] * 3
    assert {k: record[k] for k in ("input_dim", "dtype", "loss", "params_at")} == {
        "input_dim": 2,
        "dtype": "float32",
        "loss": "binary_cross_entropy",
        "params_at": "",
    }


def test_load_with_the_same_model_and_with_model_round_trip(relu_file):
    path, params = relu_file
    assert_identical(checkpoint.load(path, model=RELU), params)
    loaded, model = checkpoint.load(path, with_model=True)
    assert model == RELU and type(model) is fnn.Sequential and hash(model) == hash(RELU)
    assert_identical(loaded, params)
    like = jax.eval_shape(lambda: params)
    assert_identical(checkpoint.load(path, like, model=RELU, with_model=True)[0], params)
    assert checkpoint.read_architecture(path) == (RELU, 2, "float32", "binary_cross_entropy")


def test_only_the_params_saved_with_the_model_become_dense_params(tmp_path):
    params = _model_params(RELU, dtype=np.float64)
    state = {"step": 1, "opt": AdamLikeState(0, params, params), "params": params, "spare": params}
    path = checkpoint.save(tmp_path / "s.ckpt", state, model=RELU)
    assert checkpoint.read_architecture(path).input_dim == 2
    assert json.loads(_split(path.read_bytes())[0]["__metadata__"]["fnn_model"])["params_at"] == "['opt'].mu"
    loaded = checkpoint.load(path)
    assert all(type(p) is DenseParams for p in loaded["opt"].mu)  # the first tuple of DenseParams, depth first
    assert all(type(p) is not DenseParams for p in loaded["opt"].nu + loaded["params"] + loaded["spare"])


def _other(change_layer=None, **fields):
    layers = list(RELU.layers)
    layers[change_layer] = dataclasses.replace(layers[change_layer], **fields)
    return fnn.Sequential(layers)


@pytest.mark.parametrize(
    "other, first_difference",
    [
        (_other(1, activation="tanh"), "layer 1 activation: the file has 'relu', this model has 'tanh'"),
        (
            fnn.Sequential(
                [fnn.Dense(4, activation="tanh"), fnn.Dense(4, activation="tanh"), fnn.Dense(1, activation="tanh")]
            ),
            "layer 0 activation: the file has 'relu', this model has 'tanh'",
        ),
        (_other(0, units=5), "layer 0 units: the file has 4, this model has 5"),
        (fnn.Sequential(RELU.layers[:2]), "layer count: the file has 3, this model has 2"),
        (fnn.Sequential(RELU.layers + (fnn.Dense(1),)), "layer count: the file has 3, this model has 4"),
        (_other(2, kernel_init="he_normal"), "layer 2 kernel_init: the file has None, this model has 'he_normal'"),
        (_other(1, bias_init=0.1), "layer 1 bias_init: the file has 0.0, this model has 0.1"),
        (_other(0, input_dim=2), "layer 0 input_dim: the file has None, this model has 2"),
    ],
)
def test_load_refuses_another_model_naming_the_first_difference(relu_file, other, first_difference):
    path, _ = relu_file
    with pytest.raises(CheckpointError, match="was saved for another model: " + first_difference):
        checkpoint.load(path, model=other)
    with pytest.raises(CheckpointError, match=first_difference):
        checkpoint.load(path, model=other, with_model=True)


def test_relu_params_never_predict_silently_through_a_tanh_model(relu_file):
    path, _ = relu_file
    tanh = _other(0, activation="tanh")
    tanh.apply(checkpoint.load(path), np.ones((1, 2), np.float32))  # the shapes alone fit: the danger
    with pytest.raises(FnnValueError, match="layer 0 activation: the file has 'relu', this model has 'tanh'"):
        checkpoint.load(path, model=tanh)


def test_a_file_without_a_model_loads_and_refuses_model_checks(tmp_path):
    path = checkpoint.save(tmp_path / "p.ckpt", _params())
    assert checkpoint.read_architecture(path) is None
    assert "fnn_model" not in _split(path.read_bytes())[0]["__metadata__"]
    for kwargs in [{"model": RELU}, {"with_model": True}]:
        with pytest.raises(CheckpointError, match="stores no model to check or rebuild"):
            checkpoint.load(path, **kwargs)


def test_save_with_a_model_needs_dense_params_that_fit_it(tmp_path):
    flat = {"format": "fnn-fit", "state": {"theta": jnp.zeros(33), "epoch": jnp.asarray(3)}}
    with pytest.raises(FnnValueError, match=r"first DenseParams \(at nowhere\) are not model='s"):
        checkpoint.save(tmp_path / "run.ckpt", flat, model=RELU)
    declared = fnn.Sequential([fnn.Dense(3, activation="relu", input_dim=2), fnn.Dense(1)])
    path = checkpoint.save(tmp_path / "d.ckpt", _model_params(declared), model=declared)
    assert checkpoint.read_architecture(path) == (declared, 2, "float32", None)
    assert os.listdir(tmp_path) == ["d.ckpt"]


def test_fields_the_file_lacks_count_as_defaults_and_unknown_ones_are_named(relu_file):
    path, _ = relu_file
    _rewrite(path, lambda h: [layer["config"].pop("input_dim") for layer in h["model"]["layers"]])
    assert checkpoint.load(path, with_model=True)[1] == RELU  # as a file from before Dense had it
    checkpoint.load(path, model=RELU)
    _rewrite(path, lambda h: h["model"]["layers"][2]["config"].update(dropout=0.5))
    with pytest.raises(CheckpointError, match=r"layer 2 dropout: the file has 0.5, this model has 'no such field"):
        checkpoint.load(path, model=RELU)
    with pytest.raises(CheckpointError, match=r"cannot rebuild .*dropout.*upgrade fnn"):
        checkpoint.load(path, with_model=True)


@dataclasses.dataclass(frozen=True)
class Scaled(fnn.Dense):
    scale: float = 2.0


@dataclasses.dataclass(frozen=True)
class Tagged(fnn.Dense):
    tags: tuple = ("a",)


def test_dense_subclasses_are_recorded_by_class_and_every_field(tmp_path):
    model = fnn.Sequential([Scaled(3, scale=0.5), fnn.Dense(1)])
    path = checkpoint.save(tmp_path / "s.ckpt", _model_params(model), model=model)
    with pytest.raises(CheckpointError, match="layer 0 class: the file has 'Scaled', this model has 'Dense'"):
        checkpoint.load(path, model=fnn.Sequential([fnn.Dense(3), fnn.Dense(1)]))
    with pytest.raises(CheckpointError, match=r"layer 0 scale: the file has 0.5, this model has 2.0"):
        checkpoint.load(path, model=fnn.Sequential([Scaled(3), fnn.Dense(1)]))
    checkpoint.load(path, model=model)
    with pytest.raises(CheckpointError, match="classes this fnn does not have: upgrade fnn"):
        checkpoint.load(path, with_model=True)
    tagged = fnn.Sequential([Tagged(1)])
    with pytest.raises(FnnTypeError, match="fnn_model is not JSON: it holds tuples"):
        checkpoint.save(tmp_path / "t.ckpt", _model_params(tagged), model=tagged)
    assert not (tmp_path / "t.ckpt").exists()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"model": "relu"}, FnnTypeError, "model must be a fnn.Sequential, got str"),
        ({"model": RELU.layers[0]}, FnnTypeError, "model must be a fnn.Sequential, got Dense"),
        ({"model": []}, FnnTypeError, "model must be a fnn.Sequential, got list"),
        ({"loss": "mse"}, FnnValueError, "pass model= too"),
        ({"model": RELU, "loss": "hinge"}, FnnValueError, "hinge"),
        ({"model": RELU, "loss": 3}, FnnTypeError, "loss must be a name"),
        ({"model": RELU, "loss": "categorical_cross_entropy"}, FnnValueError, "softmax"),
        ({"model": _other(0, units=5)}, FnnValueError, r"at <root>\) are not model='s \[\(\(2, 5\), \(5,\)\)"),
        ({"model": fnn.Sequential(RELU.layers[:2])}, FnnValueError, "are not model='s"),
    ],
)
def test_save_refuses_a_bad_model_argument_before_touching_disk(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        checkpoint.save(tmp_path / "t.ckpt", _model_params(RELU), **kwargs)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"model": "relu"}, FnnTypeError, "model must be a fnn.Sequential, got str"),
        ({"model": [fnn.Dense(1)]}, FnnTypeError, "model must be a fnn.Sequential, got list"),
        ({"with_model": 1}, FnnTypeError, "with_model must be True or False, got int 1"),
    ],
)
def test_load_refuses_bad_model_arguments(relu_file, kwargs, error, match):
    with pytest.raises(error, match=match):
        checkpoint.load(relu_file[0], **kwargs)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(layers=[]),
        lambda m: m.update(layers="Dense"),
        lambda m: m["layers"][1].pop("class"),
        lambda m: m["layers"][1].update(config=[4]),
        lambda m: m["layers"][1]["config"].update(units=[4]),
        lambda m: m["layers"][1]["config"].update(units=0),
        lambda m: m["layers"][1]["config"].pop("units"),
        lambda m: m.pop("input_dim"),
        lambda m: m.pop("layers"),
    ],
)
def test_a_malformed_model_record_with_a_valid_checksum(relu_file, change):
    path, _ = relu_file
    _rewrite(path, lambda h: change(h["model"]))
    for call in (lambda: checkpoint.load(path, with_model=True), lambda: checkpoint.read_architecture(path)):
        with pytest.raises(CheckpointError, match=str(path)):
            call()


@pytest.mark.slow  # a fresh process: `make test-slow` (CI runs it after make test)
def test_checkpoint_imports_no_training_module_and_safetensors_only_on_use():
    top = [
        node
        for node in ast.parse(pathlib.Path(checkpoint.__file__).read_text()).body
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    imported = {alias.name for node in top for alias in node.names} | {
        node.module for node in top if isinstance(node, ast.ImportFrom) and node.module
    }
    training = {"engine", "train", "trainer", "callbacks", "sweep", "stream", "lr_finder"}
    assert not imported & (training | {f"fnn.{m}" for m in training} | {"safetensors", "safetensors.numpy"})
    code = "import sys, fnn; print('safetensors' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


# ----------------------------------------------------------------------------- atomic save


def test_save_fsyncs_the_file_before_replacing(tmp_path, monkeypatch, real_fsync):
    synced, real = [], os.fsync

    def spy(fd):
        synced.append(os.fstat(fd).st_size)
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    path = checkpoint.save(tmp_path / "run.ckpt", _params())
    assert synced == [path.stat().st_size]


def _old_checkpoint(tmp_path):
    path = checkpoint.save(tmp_path / "run.ckpt", {"params": _params(), "epoch": 1})
    return path, path.read_bytes()


def _assert_old_checkpoint_intact(path, old_bytes):
    assert path.read_bytes() == old_bytes
    assert checkpoint.load(path)["epoch"] == 1
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind


def test_a_new_file_is_owner_only_and_an_overwritten_one_keeps_its_mode(tmp_path, real_fsync):
    path, _ = _old_checkpoint(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    checkpoint.save(path, {"params": _params(), "epoch": 2})
    assert checkpoint.load(path)["epoch"] == 2
    assert os.listdir(tmp_path) == ["run.ckpt"] and path.stat().st_mode & 0o777 == 0o640


class _FailingWrites:
    """os.fdopen's file, whose `fail_at`-th write raises `error` (None: writes, then calls `after`)."""

    def __init__(self, f, fail_at, error, after=None):
        self.f, self.fail_at, self.error, self.after, self.writes = f, fail_at, error, after, 0

    def write(self, data):
        self.writes += 1
        if self.writes == self.fail_at and self.error is not None:
            raise self.error
        n = self.f.write(data)
        if self.writes == self.fail_at and self.after is not None:
            self.after(self)
        return n

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def _fail_writes(monkeypatch, fail_at, error=None, after=None):
    real = os.fdopen
    monkeypatch.setattr(checkpoint.os, "fdopen", lambda *a, **k: _FailingWrites(real(*a, **k), fail_at, error, after))


@pytest.mark.parametrize("fail_at", [1, 2])
def test_a_failing_write_leaves_the_old_checkpoint_and_names_only_the_users_path(tmp_path, monkeypatch, fail_at):
    path, old = _old_checkpoint(tmp_path)
    _fail_writes(monkeypatch, fail_at, OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".fnn-x.tmp")))
    with pytest.raises(CheckpointError, match=r"cannot save to .*run.ckpt: No space left on device") as info:
        checkpoint.save(path, {"params": _params(), "epoch": 2})
    assert ".fnn-" not in str(info.value) and str(tmp_path) in str(info.value)
    monkeypatch.undo()
    _assert_old_checkpoint_intact(path, old)


def test_a_failing_replace_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path, old = _old_checkpoint(tmp_path)

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.os, "replace", fail)
    with pytest.raises(CheckpointError, match=r"cannot save to .*: disk full"):
        checkpoint.save(path, {"params": _params(), "epoch": 2})
    monkeypatch.undo()
    _assert_old_checkpoint_intact(path, old)


@pytest.mark.parametrize("target", ["fsync", "replace", "write"])
def test_an_interrupt_leaves_the_old_checkpoint(tmp_path, monkeypatch, target):
    path, old = _old_checkpoint(tmp_path)

    def interrupt(*args):
        raise KeyboardInterrupt

    if target == "write":
        _fail_writes(monkeypatch, 2, KeyboardInterrupt())
    else:
        monkeypatch.setattr(checkpoint.os, target, interrupt)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"params": _params(), "epoch": 2})
    monkeypatch.undo()
    _assert_old_checkpoint_intact(path, old)


def test_a_refused_tree_leaves_the_old_checkpoint(tmp_path):
    path, old = _old_checkpoint(tmp_path)
    with pytest.raises(FnnValueError):
        checkpoint.save(path, {"params": _params(), "epoch": 2, "loss": float("nan")})
    _assert_old_checkpoint_intact(path, old)


@pytest.mark.parametrize("length", [242, 250, 255])
def test_long_file_names_save_and_load(tmp_path, length):
    path = checkpoint.save(tmp_path / ("n" * length), {"epoch": 1})
    assert checkpoint.load(path) == {"epoch": 1} and os.listdir(tmp_path) == [path.name]


def test_a_name_too_long_a_missing_folder_and_a_read_only_folder_are_fnn_errors(tmp_path, monkeypatch):
    too_long = tmp_path / ("n" * 256)
    with pytest.raises(CheckpointError, match=f"cannot save to {too_long}: File name too long; .*shorter"):
        checkpoint.save(too_long, {"epoch": 1})
    missing = tmp_path / "no" / "such" / "run.ckpt"
    with pytest.raises(CheckpointError, match=f"cannot save to {missing}: No such file or directory; .*folder that"):
        checkpoint.save(missing, {"epoch": 1})
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.geteuid() == 0:  # root writes anywhere: make the OS refuse as a read-only file system would

            def read_only(*args, **kwargs):
                raise OSError(errno.EROFS, "Read-only file system", str(locked / ".fnn-abc.tmp"))

            monkeypatch.setattr(checkpoint.tempfile, "mkstemp", read_only)
        with pytest.raises(CheckpointError, match=f"cannot save to {locked / 'run.ckpt'}: .*you may write to") as info:
            checkpoint.save(locked / "run.ckpt", {"epoch": 1})
        assert ".fnn-" not in str(info.value)
    finally:
        os.chmod(locked, 0o700)
    assert os.listdir(locked) == [] and os.listdir(tmp_path) == ["locked"]


@pytest.mark.parametrize(
    "name, words",
    [
        ("n" * 256, r"its name is 256 bytes, more than the 255 this file system allows: choose a shorter name"),
        ("é" * 128, r"its name is 256 bytes, more than the 255"),  # 128 characters, 2 bytes each
    ],
)
def test_a_name_over_name_max_is_refused_before_anything_is_written(tmp_path, monkeypatch, name, words):
    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", lambda *a, **k: pytest.fail("a temporary file was made"))
    path = tmp_path / name
    with pytest.raises(CheckpointError, match=f"cannot save to {path}: File name too long; {words}") as info:
        checkpoint.save(path, {"epoch": 1})
    assert ".fnn-" not in str(info.value) and ".tmp" not in str(info.value) and os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["n" * 255, "é" * 127 + "n", "n" * 200 + ".fnn-checkpoint.safetensors"[:55]])
def test_every_valid_name_saves_whatever_its_length(tmp_path, name):
    path = checkpoint.save(tmp_path / name, {"epoch": 1})
    assert checkpoint.load(path) == {"epoch": 1} and os.listdir(tmp_path) == [name]


def test_a_missing_folder_is_named_with_the_fix_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", lambda *a, **k: pytest.fail("a temporary file was made"))
    missing = tmp_path / "runs" / "run.ckpt"
    fix = f"the folder {tmp_path / 'runs'} does not exist: create it first"
    with pytest.raises(CheckpointError, match=f"cannot save to {missing}: No such file or directory; {fix}"):
        checkpoint.save(missing, {"epoch": 1})
    (tmp_path / "file").write_bytes(b"")
    inside_a_file = tmp_path / "file" / "run.ckpt"
    with pytest.raises(
        CheckpointError, match=f"cannot save to {inside_a_file}: Not a directory; .*{tmp_path / 'file'} is a file"
    ):
        checkpoint.save(inside_a_file, {"epoch": 1})
    assert sorted(os.listdir(tmp_path)) == ["file"]


@pytest.mark.parametrize(
    "code, strerror, fix",
    [
        (errno.EROFS, "Read-only file system", "{folder} is on a read-only file system: save to a folder you may"),
        (errno.EACCES, "Permission denied", "you may not write to {folder}: save to a folder you may write to"),
        (errno.EPERM, "Operation not permitted", "you may not write to {folder}: save to a folder you may write to"),
        (errno.ENOSPC, "No space left on device", "the disk holding {folder} is full: free space or save elsewhere"),
        (errno.EDQUOT, "Disk quota exceeded", "the disk holding {folder} is full: free space or save elsewhere"),
    ],
)
@pytest.mark.parametrize("where", ["mkstemp", "write", "replace"])
def test_os_refusals_name_the_users_path_and_the_fix_never_the_temporary_file(
    tmp_path, monkeypatch, code, strerror, fix, where
):
    path, old = _old_checkpoint(tmp_path)
    error = OSError(code, strerror, str(tmp_path / ".fnn-0123abcd.tmp"))

    def refuse(*args, **kwargs):
        raise error

    if where == "write":
        _fail_writes(monkeypatch, 1, error)
    else:
        monkeypatch.setattr(checkpoint.tempfile if where == "mkstemp" else checkpoint.os, where, refuse)
    want = f"cannot save to {path}: {strerror}; {fix.format(folder=tmp_path)}"
    with pytest.raises(CheckpointError, match="^" + re.escape(want)) as info:
        checkpoint.save(path, {"params": _params(), "epoch": 2})
    assert ".fnn-" not in str(info.value) and ".tmp" not in str(info.value)
    monkeypatch.undo()
    _assert_old_checkpoint_intact(path, old)


READ_ONLY_SAVE = textwrap.dedent("""
    import os, sys
    from fnn import checkpoint
    from fnn.errors import CheckpointError
    folder = sys.argv[1]
    try:
        checkpoint.save(os.path.join(folder, "run.ckpt"), {"epoch": 1})
    except CheckpointError as e:
        print(e)
    print(sorted(os.listdir(folder)))
""")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting needs root")
@pytest.mark.slow  # seconds of real I/O or fresh processes: make test-slow runs it
def test_a_real_read_only_file_system_is_an_fnn_error_even_for_root(tmp_path):
    """Root ignores a folder's mode, not a read-only mount: a private tmpfs, mounted read-only for one process."""
    folder = tmp_path / "ro"
    folder.mkdir()
    script = f'mount -t tmpfs -o ro,size=64k fnn-ro "$1" || exit 77; exec {sys.executable} -c "$2" "$1"'
    try:
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(folder), READ_ONLY_SAVE],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except FileNotFoundError:
        pytest.skip("no unshare(1) here")
    if done.returncode == 77 or "unshare failed" in done.stderr:
        pytest.skip(f"mounting is not permitted here: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    want = f"cannot save to {folder / 'run.ckpt'}: Read-only file system; {folder} is on a read-only file system"
    assert done.stdout.splitlines() == [want + ": save to a folder you may write to", "[]"]
    assert os.listdir(folder) == []  # the mount was private to that process, and is gone with it


KILLED_SAVE = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from fnn import checkpoint
    real = os.fdopen
    class Slow:
        def __init__(self, f):
            self.f, self.writes = f, 0
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.f.close()
        def __getattr__(self, name):
            return getattr(self.f, name)
        def write(self, data):
            n = self.f.write(data)
            self.writes += 1
            if self.writes == 1:  # the header is in the temporary file, the arrays are not
                self.f.flush()
                print("writing", flush=True)
                time.sleep(60)
            return n
    os.fdopen = lambda *a, **k: Slow(real(*a, **k))
    checkpoint.save(sys.argv[1], {"a": np.ones(2_000_000), "b": np.full(2_000_000, 2.0)})
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.slow  # seconds of real I/O or fresh processes: make test-slow runs it
def test_save_killed_mid_write_leaves_the_old_checkpoint(tmp_path, real_fsync):
    path, old = _old_checkpoint(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = proc.stdout.readline()
        assert line == b"writing\n", proc.stderr.read().decode()
        temporary = [name for name in os.listdir(tmp_path) if name != path.name]
        assert len(temporary) == 1 and temporary[0].startswith(".fnn-") and temporary[0].endswith(".tmp")
        assert 0 < (tmp_path / temporary[0]).stat().st_size < 1000
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == old and checkpoint.load(path)["epoch"] == 1
    checkpoint.save(path, {"epoch": 5})  # the stale temporary file does not get in the way
    assert checkpoint.load(path) == {"epoch": 5}


# ----------------------------------------------------------------------------- docstrings


def test_docstring_examples_run(monkeypatch):
    monkeypatch.setattr(fnn, "save", checkpoint.save, raising=False)
    monkeypatch.setattr(fnn, "load", checkpoint.load, raising=False)
    globs = {"fnn": fnn, "jax": jax, "jnp": jnp, "np": np}
    result = doctest.testmod(checkpoint, extraglobs=globs, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0


def test_every_error_is_an_fnn_error():
    assert issubclass(CheckpointError, FnnError) and issubclass(CheckpointNotFoundError, FnnError)


def test_float64_leaves_with_x64_disabled_are_refused_not_cast(small):
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(
            CheckpointError, match=r"small\.ckpt: p\.0\.w is float64, float32 in JAX: enable jax_enable_x64"
        ):
            checkpoint.load(small[0])
    finally:
        jax.config.update("jax_enable_x64", True)
