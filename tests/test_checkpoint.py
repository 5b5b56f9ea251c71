"""fnn.checkpoint: exact round trips, the documented file layout, atomic saves, refused inputs.

Every damaged file (truncated, bit-flipped, foreign, newer) must raise CheckpointError, never a
raw zipfile/json/numpy/struct exception and never a wrong tree; files of format version 1 (before
safetensors) still load; a model stored with the params is checked and rebuilt.
"""
import ast
import collections
import dataclasses
import doctest
import enum
import hashlib
import json
import os
import pathlib
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import checkpoint
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnTypeError, FnnValueError
from fnn.layers import DenseParams

SHA_AT = b'{"__metadata__":{"fnn_sha256":"'
PREFIX = 8 + len(SHA_AT)  # the fixed opening: the header length, then the header up to the digest
MAGIC = b"FNN-CHECKPOINT\n"  # format version 1
PREFIX_V1 = len(MAGIC) + 16  # magic, then header and payload lengths as two uint64
_KEYS = {"format": "fnn_format", "format_version": "fnn_format_version", "fnn_version": "fnn_version",
         "jax_version": "jax_version", "tree": "fnn_tree", "metadata": "fnn_metadata", "model": "fnn_model"}
_JSON_KEYS = ("tree", "metadata", "model")


class AdamLikeState(NamedTuple):
    count: int
    mu: tuple
    nu: tuple


@pytest.fixture
def real_fsync():
    """Requested by the tests that keep os.fsync; all others skip it, as it only costs time."""


@pytest.fixture(autouse=True)
def _skip_fsync(request, monkeypatch):
    if "real_fsync" not in request.fixturenames:
        monkeypatch.setattr(os, "fsync", lambda fd: None)


def _params(dtype=jnp.float32, seed=0):
    rng = np.random.default_rng(seed)  # numpy, not jax.random: no compilation per shape
    w1, b1, w2 = (jnp.asarray(rng.standard_normal(shape), dtype) for shape in [(3, 4), (4,), (4, 2)])
    return DenseParams(w=w1, b=b1), DenseParams(w=w2, b=jnp.zeros((2,), dtype))


def _position():
    return {"epoch": 4, "key": jax.random.key(7), "history": {"loss": [0.9, 0.5, 0.25]}}


def _state():
    return {"params": _params(), "opt": AdamLikeState(3, _params(seed=1), _params(seed=2)),
            "position": _position()}


def assert_identical(got, want, path=""):
    """Same types node for node, same dtypes and shapes, same bytes; jax stays jax, numpy numpy."""
    assert type(got) is type(want), f"{path}: {type(got)} is not {type(want)}"
    if isinstance(want, jax.Array) and jnp.issubdtype(want.dtype, jax.dtypes.prng_key):
        assert str(got.dtype) == str(want.dtype) and got.shape == want.shape, path
        assert_identical(jax.random.key_data(got), jax.random.key_data(want), path)
    elif isinstance(want, (jax.Array, np.ndarray, np.generic)):
        assert (got.dtype, got.shape) == (want.dtype, want.shape), path
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), path
    elif isinstance(want, dict):
        assert list(got) == list(want), path
        for k in want:
            assert_identical(got[k], want[k], f"{path}[{k!r}]")
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_identical(g, w, f"{path}[{i}]")
    elif type(want) is float:
        assert got.hex() == want.hex(), path  # bit-exact, -0.0 and nan included
    else:
        assert got == want, path


def _round_trip(tmp_path, tree, **kwargs):
    return checkpoint.load(checkpoint.save(tmp_path / "t.ckpt", tree, **kwargs))


def _split(data: bytes) -> tuple[dict, bytes]:
    """A version-2 file's safetensors header (parsed) and its tensor bytes."""
    (n,) = struct.unpack_from("<Q", data)
    return json.loads(data[8:8 + n]), data[8 + n:]


def _seal(header: dict, buffer: bytes) -> bytes:
    """The file for this safetensors header and buffer: padded, with fnn_sha256 recomputed."""
    meta = {"fnn_sha256": "0" * 64, **{k: v for k, v in header["__metadata__"].items() if k != "fnn_sha256"}}
    text = json.dumps({"__metadata__": meta, **{k: v for k, v in header.items() if k != "__metadata__"}},
                      separators=(",", ":")).encode()
    data = struct.pack("<Q", len(text + b" " * (-len(text) % 8))) + text + b" " * (-len(text) % 8) + buffer
    assert data[:PREFIX].endswith(SHA_AT)
    return data[:PREFIX] + hashlib.sha256(data).hexdigest().encode() + data[PREFIX + 64:]


def _rewrite_header(path, change):
    """Edit the fnn header in place and re-seal the file with a correct sha256.

    `change` gets the header as format version 1 had it (format, format_version, fnn_version,
    jax_version, metadata, tree), plus "model" and, for version 2, "tensors": the safetensors
    entries by name. A key it removes is left out of the file.
    """
    data = path.read_bytes()
    if data.startswith(MAGIC):
        header_size, payload_size = struct.unpack_from("<QQ", data, len(MAGIC))
        header = json.loads(data[PREFIX_V1:PREFIX_V1 + header_size])
        change(header)
        new = json.dumps(header).encode()
        body = MAGIC + struct.pack("<QQ", len(new), payload_size) + new + \
            data[PREFIX_V1 + header_size:PREFIX_V1 + header_size + payload_size]
        path.write_bytes(body + hashlib.sha256(body).digest())
        return
    header, buffer = _split(data)
    meta = header["__metadata__"]
    h = {k: json.loads(meta[name]) if k in _JSON_KEYS else meta[name]
         for k, name in _KEYS.items() if name in meta}
    h["format_version"] = int(h["format_version"])
    h["tensors"] = {k: v for k, v in header.items() if k != "__metadata__"}
    change(h)
    new_meta = {"fnn_sha256": meta["fnn_sha256"]}
    for k, name in _KEYS.items():
        if k in h:
            value = h[k]
            new_meta[name] = json.dumps(value) if k in _JSON_KEYS else str(value)
    path.write_bytes(_seal({"__metadata__": new_meta, **h["tensors"]}, buffer))


def _save_version_1(path, tree, metadata=None):
    """`tree` in format version 1, as fnn wrote it before safetensors (tests only: save writes 2)."""
    encoder = checkpoint._Encoder(allow_non_finite=False, named=False)
    header = {"format": "fnn-checkpoint", "format_version": 1, "fnn_version": "0.1.0",
              "jax_version": jax.__version__, "metadata": metadata, "tree": encoder.node(tree, "")}
    header_bytes = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    payload = b"".join(a.tobytes() for a in encoder.arrays)
    body = MAGIC + struct.pack("<QQ", len(header_bytes), len(payload)) + header_bytes + payload
    path.write_bytes(body + hashlib.sha256(body).digest())
    return path


# ------------------------------------------------------------------------------------ round trips

@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_round_trip_params_tuple_of_dense_params(tmp_path, dtype):
    params = _params(dtype)
    loaded = _round_trip(tmp_path, params)
    assert_identical(loaded, params)
    assert all(type(layer) is DenseParams for layer in loaded)
    assert jax.tree.structure(loaded) == jax.tree.structure(params)


def test_round_trip_optimizer_state_namedtuple_keeps_its_class(tmp_path):
    state = AdamLikeState(count=3, mu=_params(), nu=_params(jnp.float64))
    loaded = _round_trip(tmp_path, state)
    assert_identical(loaded, state)
    assert type(loaded) is AdamLikeState and loaded.count == 3


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_round_trip_training_position_with_typed_key(tmp_path, impl):
    position = {"epoch": 4, "key": jax.random.key(7, impl=impl), "history": {"loss": [0.9, 0.5]}}
    loaded = _round_trip(tmp_path, position)
    assert_identical(loaded, position)
    assert str(jax.random.key_impl(loaded["key"])) == impl


def test_round_trip_batch_of_keys_and_a_whole_training_state(tmp_path):
    keys = jax.random.wrap_key_data(jnp.arange(10, dtype=jnp.uint32).reshape(5, 2))
    tree = {**_state(), "keys": keys}
    assert_identical(_round_trip(tmp_path, tree), tree)


def test_round_trip_python_scalars_keep_their_types(tmp_path):
    tree = [True, False, 0, -3, 2**80, 0.1, -0.0, 5e-324, 1e308, "", "λ→∞ \"q\" \ud800", None]
    loaded = _round_trip(tmp_path, tree)
    assert_identical(loaded, tree)
    assert [type(x) for x in loaded] == [type(x) for x in tree]


def test_round_trip_containers_order_and_empties(tmp_path):
    tree = {"b": 1, "a": {"z": (), "y": [], "x": {}}, "c": (None, [None]), "": ((),)}
    loaded = _round_trip(tmp_path, tree)
    assert_identical(loaded, tree)
    assert list(loaded) == ["b", "a", "c", ""] and list(loaded["a"]) == ["z", "y", "x"]


@pytest.mark.parametrize("root", [(), [], {}, None, 3, jnp.arange(3), np.float32(2.5)])
def test_round_trip_a_bare_root(tmp_path, root):
    assert_identical(_round_trip(tmp_path, root), root)


DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "bfloat16", "float32", "float64", "complex64", "complex128"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_every_dtype_bit_exact_jax_and_numpy(tmp_path, dtype):
    raw = np.random.default_rng(0).integers(0, 256, size=2 * 3 * 16, dtype=np.uint8)
    values = raw[:jnp.dtype(dtype).itemsize * 6].view(jnp.dtype(dtype))  # arbitrary bit patterns
    if dtype == "bool":
        values = raw[:6] % 2 == 1
    elif jnp.issubdtype(jnp.dtype(dtype), jnp.inexact):
        values = np.where(np.isfinite(values), values, 0).astype(jnp.dtype(dtype))
    values = values.reshape(2, 3)
    tree = {"jax": jnp.asarray(values), "numpy": values, "scalar": values[0, 0],
            "zero_d": jnp.asarray(values[1, 2]), "empty": np.zeros((0, 3), jnp.dtype(dtype))}
    loaded = _round_trip(tmp_path, tree)
    assert_identical(loaded, tree)
    assert isinstance(loaded["jax"], jax.Array) and type(loaded["numpy"]) is np.ndarray
    loaded["numpy"][0, 0] = loaded["numpy"][1, 1]  # numpy results own writable memory


def test_round_trip_non_contiguous_and_big_endian_numpy(tmp_path):
    transposed = np.arange(6.0).reshape(2, 3).T
    big_endian = np.arange(4, dtype=">i4")
    loaded = _round_trip(tmp_path, [transposed, big_endian])
    np.testing.assert_array_equal(loaded[0], transposed)
    np.testing.assert_array_equal(loaded[1], big_endian)
    assert loaded[1].dtype == np.int32 and loaded[1].dtype.isnative


def test_round_trip_non_finite_when_allowed(tmp_path):
    tree = {"w": jnp.array([np.nan, np.inf, -np.inf, 1.0]), "loss": [float("nan"), float("-inf")]}
    assert_identical(_round_trip(tmp_path, tree, allow_non_finite=True), tree)


def test_save_returns_path_and_same_tree_gives_same_bytes(tmp_path):
    first = checkpoint.save(str(tmp_path / "a.ckpt"), _state())
    second = checkpoint.save(tmp_path / "b.ckpt", _state())
    assert first == tmp_path / "a.ckpt" and isinstance(first, type(second))
    assert first.read_bytes() == second.read_bytes()


def test_metadata_round_trip(tmp_path):
    metadata = {"lr": 0.1, "layers": [2, 8, 1], "note": "baseline", "nested": {"ok": True, "x": None}}
    path = checkpoint.save(tmp_path / "m.ckpt", _params(), metadata=metadata)
    assert checkpoint.read_metadata(path) == metadata
    assert checkpoint.read_metadata(checkpoint.save(tmp_path / "n.ckpt", ())) is None


# ---------------------------------------------------------------------- NamedTuple lookup on load

Ghost = collections.namedtuple("Ghost", "a b", module="fnn_tests_no_such_module")


def test_missing_namedtuple_class_becomes_a_standin_with_same_name_and_fields(tmp_path):
    loaded = _round_trip(tmp_path, Ghost(1, jnp.ones(2)))
    assert type(loaded) is not Ghost and type(loaded).__name__ == "Ghost"
    assert loaded._fields == ("a", "b") and loaded.a == 1
    again = _round_trip(tmp_path, Ghost(2, jnp.ones(2)))
    assert type(again) is type(loaded)  # one stand-in per recorded type, so loads agree


def test_class_with_other_fields_is_not_used(tmp_path):
    path = checkpoint.save(tmp_path / "t.ckpt", _params())
    _rewrite_header(path, lambda h: h["tree"]["items"][0].update(fields=["w", "bias"]))
    loaded = checkpoint.load(path)
    assert type(loaded[0]) is not DenseParams and loaded[0]._fields == ("w", "bias")
    assert type(loaded[1]) is DenseParams


@pytest.mark.parametrize("module, qualname", [("builtins", "tuple"), ("os", "system"),
                                              ("fnn.checkpoint", "_Encoder.node")])
def test_named_object_that_is_not_a_namedtuple_is_never_used(tmp_path, module, qualname):
    path = checkpoint.save(tmp_path / "t.ckpt", DenseParams(1, 2))
    _rewrite_header(path, lambda h: h["tree"].update(module=module, qualname=qualname))
    loaded = checkpoint.load(path)
    assert type(loaded).__name__ == qualname.split(".")[-1] and tuple(loaded) == (1, 2)
    assert type(loaded).__bases__ == (tuple,) and type(loaded).__module__ == "fnn.checkpoint"


def test_load_imports_only_public_submodules_of_imported_packages(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    side_effect = f"open({str(marker)!r}, 'a').write(__name__ + ' ')\n"
    package = tmp_path / "fnn_ckpt_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "public.py").write_text(
        "from typing import NamedTuple\nclass P(NamedTuple):\n    a: int\n    b: int\n")
    (package / "_private.py").write_text(side_effect + "from fnn_ckpt_pkg.public import P\n")
    (tmp_path / "fnn_ckpt_toplevel.py").write_text(side_effect + "from fnn_ckpt_pkg.public import P\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ["fnn_ckpt_pkg", "fnn_ckpt_pkg.public", "fnn_ckpt_pkg._private", "fnn_ckpt_toplevel"]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    import fnn_ckpt_pkg  # noqa: F401 -- the package is loaded, its submodules are not

    path = checkpoint.save(tmp_path / "t.ckpt", DenseParams(1, 2))
    for module in ["fnn_ckpt_toplevel", "fnn_ckpt_pkg._private"]:
        _rewrite_header(path, lambda h: h["tree"].update(module=module, qualname="P", fields=["a", "b"]))
        loaded = checkpoint.load(path)
        assert type(loaded).__module__ == "fnn.checkpoint" and module not in sys.modules
    assert not marker.exists()
    _rewrite_header(path, lambda h: h["tree"].update(module="fnn_ckpt_pkg.public"))
    loaded = checkpoint.load(path)
    assert type(loaded) is sys.modules["fnn_ckpt_pkg.public"].P and loaded == (1, 2)


# --------------------------------------------------------------------------------------- like

def test_like_matching_returns_like_classes(tmp_path):
    state = _state()
    loaded = checkpoint.load(checkpoint.save(tmp_path / "t.ckpt", state), like=_state())
    assert_identical(loaded, state)
    assert jax.tree.structure(loaded) == jax.tree.structure(state)


def test_like_may_be_shape_dtype_structs_and_picks_the_array_kind(tmp_path):
    tree = {"p": _params(), "n": np.arange(3), "key": jax.random.key(0)}
    path = checkpoint.save(tmp_path / "t.ckpt", tree)
    like = jax.eval_shape(lambda: {"p": _params(), "n": jnp.arange(3), "key": jax.random.key(0)})
    loaded = checkpoint.load(path, like=like)
    assert isinstance(loaded["p"][0].w, jax.Array) and isinstance(loaded["n"], jax.Array)
    as_numpy = checkpoint.load(path, like={"p": jax.tree.map(np.asarray, _params()),
                                           "n": np.arange(3), "key": jax.random.key(0)})
    assert type(as_numpy["p"][0].w) is np.ndarray
    as_numpy["p"][0].w[0, 0] = 1.0  # a copy the caller may write to


def _like_error(tmp_path, tree, like):
    path = checkpoint.save(tmp_path / "t.ckpt", tree)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path, like=like)
    return str(info.value)


def test_like_wrong_shape_names_leaf_and_both_shapes(tmp_path):
    like = (DenseParams(w=jnp.zeros((4, 3), jnp.float32), b=jnp.zeros(4, jnp.float32)),) + _params()[1:]
    message = _like_error(tmp_path, _params(), like)
    assert "[0].w" in message and "(3, 4)" in message and "(4, 3)" in message


def test_like_wrong_dtype_names_leaf_and_both_dtypes_without_casting(tmp_path):
    message = _like_error(tmp_path, _params(jnp.float32), _params(jnp.float64))
    assert "[0].w" in message and "float32" in message and "float64" in message


@pytest.mark.parametrize("saved, like, words", [
    ({"a": 1, "b": 2}, {"a": 1}, ["<root>", "unexpected ['b']"]),
    ({"h": {"a": 1}}, {"h": {"a": 1, "loss": []}}, ["['h']", "missing ['loss']"]),
    ([1, 2, 3], [1, 2], ["<root>", "list of 3", "list of 2"]),
    ((1, 2), [1, 2], ["tuple", "list"]),
    ({"e": 4}, {"e": 4.0}, ["['e']", "int", "float"]),
    ({"e": True}, {"e": 1}, ["['e']", "bool", "int"]),
    ({"e": None}, {"e": jnp.zeros(())}, ["['e']", "NoneType"]),
    ({"x": jnp.zeros(2)}, {"x": 0.0}, ["['x']", "float"]),
    (DenseParams(1, 2), (1, 2), ["DenseParams", "tuple"]),
    (DenseParams(1, 2), AdamLikeState(1, 2, 3), ["DenseParams", "AdamLikeState"]),
    ({"k": jax.random.key(0)}, {"k": jax.random.key(0, impl="rbg")}, ["['k']", "key<fry>", "key<rbg>"]),
    ({"k": jax.random.key(0)}, {"k": jnp.zeros(2, jnp.uint32)}, ["['k']", "key<fry>", "uint32"]),
    ({"x": jnp.zeros(2, jnp.int32)}, {"x": np.zeros(2, np.int64)}, ["['x']", "int32", "int64"]),
])
def test_like_wrong_structure_is_named(tmp_path, saved, like, words):
    message = _like_error(tmp_path, saved, like)
    for word in words:
        assert word in message, (word, message)


def test_like_with_an_unsupported_leaf_is_a_type_error(tmp_path):
    path = checkpoint.save(tmp_path / "t.ckpt", {"a": [1]})
    with pytest.raises(FnnTypeError, match=r"\['a'\]\[0\]"):
        checkpoint.load(path, like={"a": [object()]})


# ---------------------------------------------------------------------------- save: bad input

@pytest.mark.parametrize("path", [None, 3, b"run.ckpt", ["run.ckpt"]])
def test_save_and_load_refuse_a_path_of_the_wrong_type(path):
    with pytest.raises(FnnTypeError, match="str or os.PathLike"):
        checkpoint.save(path, _params())
    with pytest.raises(FnnTypeError, match="str or os.PathLike"):
        checkpoint.load(path)
    with pytest.raises(FnnTypeError, match="str or os.PathLike"):
        checkpoint.read_metadata(path)


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize("leaf, where", [
    ({"opt": [1, np.array([object()], dtype=object)]}, r"\['opt'\]\[1\].*object"),
    ({"opt": [1, object()]}, r"\['opt'\]\[1\].*object"),
    ((DenseParams(w={1, 2}, b=0),), r"\[0\]\.w.*set"),
    ({"s": np.array(["a", "b"])}, r"\['s'\].*dtype"),
    ({"d": np.array(["2020-01-01"], dtype="datetime64[D]")}, r"\['d'\]"),
    ({"c": 1 + 2j}, r"\['c'\].*complex"),
    ({"b": b"bytes"}, r"\['b'\].*bytes"),
    ({"e": Color.RED}, r"\['e'\].*Color"),
    ({"o": collections.OrderedDict(a=1)}, r"\['o'\].*OrderedDict"),
    ({1: 2}, r"<root>.*key 1 of type int"),
    ({"f": lambda: 0}, r"\['f'\]"),
])
def test_save_refuses_unsupported_leaves_naming_the_path(tmp_path, leaf, where):
    with pytest.raises(FnnTypeError, match=where):
        checkpoint.save(tmp_path / "t.ckpt", leaf)
    assert os.listdir(tmp_path) == []


def test_save_refuses_a_traced_value():
    @jax.jit
    def f(x):
        checkpoint.save("never.ckpt", {"x": x})
        return x
    with pytest.raises(FnnTypeError, match=r"\['x'\].*traced"):
        f(jnp.ones(2))


@pytest.mark.parametrize("tree, where", [
    ((DenseParams(w=jnp.array([[1.0, jnp.nan]]), b=jnp.zeros(2)),), r"\[0\]\.w .*nan at index \(0, 1\)"),
    ({"m": np.array([1.0, np.inf], np.float32)}, r"\['m'\] .*inf at index \(1,\)"),
    ({"z": jnp.array([1 + 1j, complex(0, np.inf)])}, r"\['z'\]"),
    ({"history": {"loss": [0.5, float("nan")]}}, r"\['history'\]\['loss'\]\[1\] .*nan"),
    ({"bf": jnp.array([-jnp.inf], jnp.bfloat16)}, r"\['bf'\]"),
])
def test_save_refuses_non_finite_values_naming_the_leaf(tmp_path, tree, where):
    with pytest.raises(FnnValueError, match=where + ".*allow_non_finite=True"):
        checkpoint.save(tmp_path / "t.ckpt", tree)
    assert os.listdir(tmp_path) == []


def test_save_refuses_a_directory_and_a_tree_containing_itself(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(FnnValueError, match="is a directory"):
        checkpoint.save(tmp_path / "dir", _params())
    loop = [1]
    loop.append(loop)
    with pytest.raises(FnnValueError, match=r"\[1\] contains itself"):
        checkpoint.save(tmp_path / "t.ckpt", loop)
    assert os.listdir(tmp_path) == ["dir"] and os.listdir(tmp_path / "dir") == []


@pytest.mark.parametrize("metadata, error, match", [
    ([1], FnnTypeError, "must be a dict"),
    ({"a": (1, 2)}, FnnTypeError, r"metadata\['a'\] has type tuple"),
    ({"a": {2: 1}}, FnnTypeError, "key 2"),
    ({"lr": float("nan")}, FnnValueError, r"metadata\['lr'\].*non-finite"),
    ({"x": np.float32(1)}, FnnTypeError, "float32"),
])
def test_save_refuses_non_json_metadata(tmp_path, metadata, error, match):
    with pytest.raises(error, match=match):
        checkpoint.save(tmp_path / "t.ckpt", (), metadata=metadata)


# ------------------------------------------------------------------------ the safetensors layout

def _small_tree():
    return {"p": (DenseParams(w=jnp.arange(6.0).reshape(2, 3), b=jnp.ones(3, jnp.float32)),),
            "key": jax.random.key(3), "epoch": 2, "lr": 0.5, "name": "x", "none": None,
            "n": np.arange(3, dtype=np.int32)}


# _small_tree() in format version 1, header and payload byte for byte as fnn 0.1.0 wrote them.
SMALL_V1_HEADER = (
    '{"format":"fnn-checkpoint","format_version":1,"fnn_version":"0.1.0","jax_version":"0.10.2",'
    '"metadata":{"lr":0.5},"tree":{"type":"dict","keys":["p","key","epoch","lr","name","none","n"],'
    '"items":[{"type":"tuple","items":[{"type":"namedtuple","module":"fnn.layers","qualname":"DenseParams",'
    '"fields":["w","b"],"items":[{"type":"array","kind":"jax","dtype":"float64","shape":[2,3]},'
    '{"type":"array","kind":"jax","dtype":"float32","shape":[3]}]}]},'
    '{"type":"key","impl":"threefry2x32","dtype":"uint32","shape":[2]},{"type":"int","value":2},'
    '{"type":"float","value":"0x1.0000000000000p-1"},{"type":"str","value":"x"},{"type":"none"},'
    '{"type":"array","kind":"numpy","dtype":"int32","shape":[3]}]}}')
SMALL_PAYLOAD = (np.arange(6.0).astype("<f8").tobytes() + np.ones(3, "<f4").tobytes()
                 + np.array([0, 3], "<u4").tobytes() + np.arange(3, dtype="<i4").tobytes())


@pytest.fixture
def small_v2(tmp_path):
    """A small checkpoint with every kind of node, and its bytes."""
    path = checkpoint.save(tmp_path / "small.ckpt", _small_tree())
    return path, path.read_bytes(), _small_tree()


@pytest.fixture
def small_v1(tmp_path):
    """The same tree in format version 1, as fnn 0.1.0 wrote it (metadata {"lr": 0.5})."""
    header = SMALL_V1_HEADER.encode()
    body = MAGIC + struct.pack("<QQ", len(header), len(SMALL_PAYLOAD)) + header + SMALL_PAYLOAD
    path = tmp_path / "small.ckpt"
    path.write_bytes(body + hashlib.sha256(body).digest())
    return path, path.read_bytes(), _small_tree()


@pytest.fixture(params=["small_v2", "small_v1"])
def small(request):
    """Either of them: every damaged-file check holds for both formats."""
    return request.getfixturevalue(request.param)


def test_file_layout_is_safetensors_as_documented(small_v2):
    path, data, tree = small_v2
    (n,) = struct.unpack_from("<Q", data)
    text = data[8:8 + n]
    assert n % 8 == 0 and text.startswith(SHA_AT) and text.rstrip(b" ").endswith(b"}")
    header = json.loads(text)
    meta = header.pop("__metadata__")
    assert list(meta)[0] == "fnn_sha256" and all(type(v) is str for v in meta.values())
    assert set(meta) == {"fnn_sha256", "fnn_format", "fnn_format_version", "fnn_version", "jax_version",
                         "fnn_tree"}
    assert meta["fnn_format"] == "fnn-checkpoint" and meta["fnn_format_version"] == "2"
    assert meta["fnn_version"] == fnn.__version__ and meta["jax_version"] == jax.__version__
    zeroed = data[:PREFIX] + b"0" * 64 + data[PREFIX + 64:]
    assert data[PREFIX:PREFIX + 64].decode() == meta["fnn_sha256"] == hashlib.sha256(zeroed).hexdigest()
    assert list(header.items()) == [  # tree order, contiguous, offsets relative to the buffer
        ("p.0.w", {"dtype": "F64", "shape": [2, 3], "data_offsets": [0, 48]}),
        ("p.0.b", {"dtype": "F32", "shape": [3], "data_offsets": [48, 60]}),
        ("key", {"dtype": "U32", "shape": [2], "data_offsets": [60, 68]}),
        ("n", {"dtype": "I32", "shape": [3], "data_offsets": [68, 80]}),
    ]
    assert data[8 + n:] == SMALL_PAYLOAD
    structure = json.loads(meta["fnn_tree"])
    assert structure["items"][0]["items"][0]["items"][0] == {
        "type": "array", "kind": "jax", "dtype": "float64", "shape": [2, 3], "tensor": "p.0.w"}
    assert structure["items"][1] == {"type": "key", "impl": "threefry2x32", "dtype": "uint32", "shape": [2],
                                     "tensor": "key"}


def test_tensor_names_are_tree_paths_with_unsafe_characters_escaped(tmp_path):
    one = np.ones(1, np.float32)
    tree = {"a.b": one, "a": {"b": one}, "": one, "λ ": one, "__metadata__": one, "%": one,
            "l": [one, (one, None)], "nt": DenseParams(w=one, b=one), "s": 3}
    path = checkpoint.save(tmp_path / "t.ckpt", tree)
    names = list(_split(path.read_bytes())[0])[1:]
    assert names == ["a%2Eb", "a.b", "%", "%CE%BB%20", "%5F_metadata__", "%25", "l.0", "l.1.0", "nt.w",
                     "nt.b"]
    assert_identical(checkpoint.load(path), tree)
    lone = checkpoint.save(tmp_path / "r.ckpt", np.arange(2)).read_bytes()
    assert list(_split(lone)[0]) == ["__metadata__", "root"]


def test_complex_arrays_are_stored_as_real_pairs(tmp_path):
    tree = {"c64": np.array([1 + 2j, 3 - 4j], np.complex64), "c128": jnp.asarray(5 + 6j, jnp.complex128)}
    header, buffer = _split(checkpoint.save(tmp_path / "c.ckpt", tree).read_bytes())
    assert header["c64"] == {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    assert header["c128"] == {"dtype": "F64", "shape": [2], "data_offsets": [16, 32]}
    assert np.frombuffer(buffer[:16], "<f4").tolist() == [1, 2, 3, -4]
    assert_identical(checkpoint.load(tmp_path / "c.ckpt"), tree)


def test_the_safetensors_package_reads_every_array_by_name(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    safetensors = pytest.importorskip("safetensors")
    tree = {"params": _params(jnp.float64), "key": jax.random.key(5), "mask": np.array([True, False]),
            "step": jnp.asarray(7, jnp.int32), "z": np.array([1 + 2j], np.complex64),
            "empty": np.zeros((0, 3), np.float32), "epoch": 3}
    path = checkpoint.save(tmp_path / "t.ckpt", tree)
    params = tree["params"]
    expected = {"params.0.w": params[0].w, "params.0.b": params[0].b, "params.1.w": params[1].w,
                "params.1.b": params[1].b, "key": jax.random.key_data(tree["key"]), "mask": tree["mask"],
                "step": tree["step"], "z": np.array([[1.0, 2.0]], np.float32), "empty": tree["empty"]}
    got = st.load_file(str(path))
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        want = np.asarray(want)
        assert (got[name].dtype, got[name].shape) == (want.dtype, want.shape), name
        assert got[name].tobytes() == want.tobytes(), name
    with safetensors.safe_open(str(path), framework="np") as f:
        meta = f.metadata()
    assert meta["fnn_format"] == "fnn-checkpoint" and json.loads(meta["fnn_tree"])["keys"][-1] == "epoch"


def test_the_safetensors_parser_accepts_every_dtype(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    tree = {name: np.zeros((2, 1), jnp.dtype(name)) for name in DTYPES}
    data = checkpoint.save(tmp_path / "t.ckpt", tree).read_bytes()
    parsed = dict(safetensors.deserialize(data))  # the reference parser: offsets, sizes, dtypes
    codes = dict(zip(DTYPES, ["BOOL", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64",
                              "F16", "BF16", "F32", "F64", "F32", "F64"]))
    for name in DTYPES:
        pair = [2] if name.startswith("complex") else []
        assert parsed[name]["dtype"] == codes[name] and parsed[name]["shape"] == [2, 1] + pair, name
        assert bytes(parsed[name]["data"]) == tree[name].tobytes(), name


def test_a_safetensors_file_fnn_did_not_write_is_refused(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "foreign.safetensors"
    for metadata in [None, {"format": "np"}]:
        st.save_file({"w": np.ones((2, 3), np.float32)}, str(path), metadata=metadata)
        for read in (checkpoint.load, checkpoint.read_metadata):
            with pytest.raises(CheckpointError, match="safetensors file without fnn metadata.*"
                                                      "safetensors.numpy.load_file"):
                read(path)


# ------------------------------------------------------------------------- format version 1

def test_a_version_1_file_still_loads(small_v1):
    path, data, tree = small_v1
    assert_identical(checkpoint.load(path), tree)
    assert checkpoint.read_metadata(path) == {"lr": 0.5} and checkpoint.read_architecture(path) is None
    assert_identical(checkpoint.load(path, like=_small_tree()), tree)
    with pytest.raises(CheckpointError, match="stores no model"):
        checkpoint.load(path, model=fnn.Sequential([fnn.Dense(3)]))
    checkpoint.save(path, checkpoint.load(path))  # saving again writes version 2
    assert not path.read_bytes().startswith(MAGIC) and _split(path.read_bytes())[1] == SMALL_PAYLOAD
    assert_identical(checkpoint.load(path), tree)


def test_every_kind_of_node_in_a_version_1_file_loads(tmp_path):
    tree = {**_state(), "scalars": [True, 2**80, -0.0, "λ", None, np.float32(2.5)], "empty": ((), [], {}),
            "bf": jnp.array([1.5], jnp.bfloat16), "c": np.array([1 + 2j])}
    path = _save_version_1(tmp_path / "old.ckpt", tree, metadata={"note": "v1"})
    assert_identical(checkpoint.load(path), tree)
    assert checkpoint.read_metadata(path) == {"note": "v1"}


# ------------------------------------------------------------------- load: damaged and foreign files

def test_load_never_unpickles(small, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load must not unpickle or use np.load")
    for target, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (np, "load")]:
        monkeypatch.setattr(target, name, refuse)
    assert_identical(checkpoint.load(small[0]), small[2])


def _flip(path, i, mask):
    # In place, without truncating: rewriting a whole file costs an ext4 flush per test case.
    with open(path, "r+b") as f:
        f.seek(i)
        byte = f.read(1)[0]
        f.seek(i)
        f.write(bytes([byte ^ mask]))


def test_every_truncation_is_a_checkpoint_error(small):
    path, data, _ = small
    for n in reversed(range(len(data))):
        os.truncate(path, n)
        with pytest.raises(CheckpointError):
            checkpoint.load(path)
    assert len(data) > 300 and path.stat().st_size == 0


def test_every_flipped_byte_is_a_checkpoint_error(small):
    path, data, _ = small
    for i in range(len(data)):
        _flip(path, i, 1 << (i % 8))
        with pytest.raises(CheckpointError):
            checkpoint.load(path)
        _flip(path, i, 1 << (i % 8))
    assert path.read_bytes() == data


def test_flips_across_a_larger_payload_fail_the_checksum(tmp_path):
    tree = {"w": jnp.asarray(np.random.default_rng(1).normal(size=(256, 128)))}
    path = checkpoint.save(tmp_path / "big.ckpt", tree)
    size = path.stat().st_size
    for i in np.linspace(PREFIX, size - 1, 200).astype(int):  # the digest, the header, the tensors
        _flip(path, i, 0x80)
        with pytest.raises(CheckpointError, match="corrupt: sha256"):
            checkpoint.load(path)
        _flip(path, i, 0x80)
    assert_identical(checkpoint.load(path), tree)
    for n in np.linspace(size - 1, 0, 200).astype(int):
        os.truncate(path, n)
        with pytest.raises(CheckpointError, match="truncated|empty"):
            checkpoint.load(path)


def test_a_flipped_payload_bit_is_reported_as_a_checksum_mismatch(small):
    path, data, _ = small
    flipped = bytearray(data)
    flipped[-40] ^= 1  # inside the last arrays' bytes
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupt: sha256"):
        checkpoint.load(path)


def test_trailing_bytes_are_a_checkpoint_error(small):
    path, data, _ = small
    path.write_bytes(data + b"\0")
    with pytest.raises(CheckpointError, match="trailing bytes"):
        checkpoint.load(path)


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"FNN-CHE", "truncated"),
    (b"\x10\x00\x00", "truncated"),
    (np.random.default_rng(0).bytes(4096), "not an fnn checkpoint"),
    (b"hello world\n" * 10, "not an fnn checkpoint"),
    (MAGIC + b"\xff" * 100, "truncated|corrupt"),
    (struct.pack("<Q", 2**63) + b"{}", "not an fnn checkpoint"),  # a header length past any limit
    (struct.pack("<Q", 99_000_000) + b'{"__metadata__":', "truncated"),
    (struct.pack("<Q", 8) + b'{"a":{} ', "safetensors file without fnn metadata"),
    (struct.pack("<Q", 40) + SHA_AT + b"0" * 9, "corrupt: sha256"),
    (struct.pack("<Q", 40) + b'{"__metadata__":{"fnn_sha255":"0000000"}', "corrupt: its header"),
])
def test_garbage_and_empty_files(tmp_path, content, match):
    path = tmp_path / "g.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        checkpoint.load(path)
    with pytest.raises(CheckpointError, match=match):
        checkpoint.read_metadata(path)


@pytest.mark.parametrize("start, size, match", [
    (struct.pack("<Q", 99_999_992) + SHA_AT + b"0" * 64 + b'"}}', 0, "truncated"),  # the header bound
    (struct.pack("<Q", 2**40) + b"{", 2**30, "not an fnn checkpoint"),
    (MAGIC + struct.pack("<QQ", 10, 2**40), 2**30, "length fields call for"),
    (b"\x80\x04\x95", 2**30, "pickle"),
])
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


def test_pickles_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    raw = tmp_path / "raw.ckpt"
    raw.write_bytes(pickle.dumps({"params": _Boom(marker)}))
    npy = tmp_path / "obj.npy"
    np.save(npy, np.array([_Boom(marker), 1], dtype=object), allow_pickle=True)
    npz = tmp_path / "obj.npz"
    np.savez(npz, a=np.array([_Boom(marker)], dtype=object))
    for path, looks in [(raw, "pickle"), (npy, r"\.npy"), (npz, "zip")]:
        with pytest.raises(CheckpointError, match=f"not an fnn checkpoint.*{looks}"):
            checkpoint.load(path)
        assert not marker.exists()


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="does not exist") as info:
        checkpoint.load(tmp_path / "nope.ckpt")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(CheckpointError, match="is a directory"):
        checkpoint.load(tmp_path)


def test_newer_format_version_says_to_upgrade(small):
    path = small[0]
    _rewrite_header(path, lambda h: h.update(format_version=3, fnn_version="9.0"))
    with pytest.raises(CheckpointError, match="format version 3.*fnn 9.0.*upgrade fnn"):
        checkpoint.load(path)


def _w(h):
    return h["tree"]["items"][0]["items"][0]["items"][0]


@pytest.mark.parametrize("change, match", [
    (lambda h: h.update(format="other-format"), "format 'other-format'"),
    (lambda h: h.pop("format"), "format None"),
    (lambda h: h.update(format_version="x"), "invalid format version"),
    (lambda h: h.update(format_version=0), "invalid format version"),
    (lambda h: h.update(format_version=2 if "tensors" not in h else 1),  # the other layout's version
     "invalid format version . for a file"),
    (lambda h: h.update(tree=None), "malformed"),
    (lambda h: h.update(tree={"type": "pickle", "value": "x"}), "unknown type 'pickle'"),
    (lambda h: _w(h).update(dtype="object"), r"\['p'\]\[0\]\.w"),
    (lambda h: _w(h).update(shape=[2, -3]), "malformed"),
    (lambda h: _w(h).update(kind="torch"), "kind 'torch'"),
    (lambda h: h["tree"]["items"][1].update(impl="nope"), "key \\['key'\\] cannot be rebuilt"),
    (lambda h: h["tree"]["items"][2].update(value=2.5), r"\['epoch'\]"),
    (lambda h: h["tree"]["items"][3].update(value="0xnope"), r"\['lr'\]"),
    (lambda h: h["tree"].update(keys=["a"]), "bad keys"),
    (lambda h: h["tree"]["items"][0]["items"][0].update(fields=["w", "not valid"]), "fields"),
])
def test_malformed_headers_with_a_valid_checksum(small, change, match):
    path = small[0]
    _rewrite_header(path, change)
    with pytest.raises(CheckpointError, match=match):
        checkpoint.load(path)


def _last_tensor(h, size):
    """Make the last array ("n", int32) hold `size` values in the tree and the safetensors header."""
    h["tree"]["items"][6]["shape"] = [size]
    if "tensors" in h:
        h["tensors"]["n"].update(shape=[size], data_offsets=[68, 68 + 4 * size])


@pytest.mark.parametrize("change, match", [
    (lambda h: _last_tensor(h, 2), "arrays take .* bytes of a .*-byte payload"),
    (lambda h: _last_tensor(h, 4), "runs past the payload"),
])
def test_arrays_not_filling_the_payload_exactly(small, change, match):
    path = small[0]
    _rewrite_header(path, change)
    with pytest.raises(CheckpointError, match=match):
        checkpoint.load(path)


@pytest.mark.parametrize("change, match", [
    (lambda h: _w(h).update(shape=[3, 2]), "tensor 'p.0.w' is .* calls for"),  # same size: v1 cannot tell
    (lambda h: h["tensors"]["p.0.w"].update(dtype="F32"), "tensor 'p.0.w' is .* calls for"),
    (lambda h: h["tensors"]["p.0.b"].update(data_offsets=[49, 61]), "tensor 'p.0.b' is .* calls for"),
    (lambda h: h["tensors"]["n"].update(shape=[3.0]), "tensor 'n' is .* calls for"),
    (lambda h: h["tensors"].update(x=h["tensors"].pop("n")),
     "names tensor 'n', which the safetensors header"),
    (lambda h: h["tensors"].update(extra={"dtype": "F32", "shape": [0], "data_offsets": [80, 80]}),
     r"tensors \['extra'\] are not in the tree"),
    (lambda h: h["tree"]["items"][6].update(tensor="key"), "arrays share tensor 'key'"),
])
def test_tree_and_safetensors_entries_that_disagree(small_v2, change, match):
    path = small_v2[0]
    _rewrite_header(path, change)
    with pytest.raises(CheckpointError, match=match):
        checkpoint.load(path)


def test_malformed_safetensors_metadata_with_a_valid_checksum(small_v2):
    path, data, _ = small_v2
    header, buffer = _split(data)
    cases = [({"fnn_format_version": 2}, "no __metadata__ of str values"),
             ({"fnn_format_version": "2.0"}, "invalid format version '2.0'"),
             ({"fnn_tree": "{"}, "malformed header: fnn_tree"),
             ({"fnn_metadata": "[1"}, "malformed header: fnn_metadata")]
    for change, match in cases:
        path.write_bytes(_seal({**header, "__metadata__": {**header["__metadata__"], **change}}, buffer))
        with pytest.raises(CheckpointError, match=match):
            checkpoint.load(path)
    path.write_bytes(_seal(header, buffer[:68] + bytes([2]) + buffer[69:]))  # a bool can only be 0 or 1
    _rewrite_header(path, lambda h: (h["tree"]["items"][6].update(dtype="bool", shape=[12]),
                                     h["tensors"]["n"].update(dtype="BOOL", shape=[12])))
    with pytest.raises(CheckpointError, match=r"\['n'\] is a bool array holding bytes other than 0 and 1"):
        checkpoint.load(path)


def test_malformed_metadata_with_a_valid_checksum(small):
    path = small[0]
    _rewrite_header(path, lambda h: h.update(metadata=[1]))
    with pytest.raises(CheckpointError, match="metadata is not a JSON object"):
        checkpoint.read_metadata(path)


def test_float64_leaf_with_x64_disabled_is_refused_not_cast(small):
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(FnnValueError, match=r"\['p'\]\[0\]\.w .*float64.*jax_enable_x64"):
            checkpoint.load(small[0])
    finally:
        jax.config.update("jax_enable_x64", True)


# ------------------------------------------------------------------- the model stored with the params

HAS_INPUT_DIM = "input_dim" in {f.name for f in dataclasses.fields(fnn.Dense)}
RELU = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(4, activation="relu"),
                       fnn.Dense(1, activation="sigmoid")])


def _model_params(model, input_dim=2, dtype=np.float32, seed=0):
    """Params that fit `model`, from numpy (model.init would compile a program per shape)."""
    rng = np.random.default_rng(seed)
    return tuple(DenseParams(w=jnp.asarray(rng.standard_normal(shape), dtype), b=jnp.zeros(shape[1], dtype))
                 for shape in model.shapes(input_dim))


@pytest.fixture
def relu_file(tmp_path):
    """RELU's params saved with the model (and a loss), and the params."""
    params = _model_params(RELU)
    return checkpoint.save(tmp_path / "relu.ckpt", params, model=RELU, loss="bce"), params


def test_the_stored_architecture_holds_every_dense_field(relu_file):
    path, _ = relu_file
    record = json.loads(_split(path.read_bytes())[0]["__metadata__"]["fnn_model"])
    fields = [f.name for f in dataclasses.fields(fnn.Dense)]
    assert [list(layer["config"]) for layer in record["layers"]] == [fields] * 3
    assert record["layers"][1] == {"class": "Dense", "config": {
        name: getattr(RELU.layers[1], name) for name in fields}}
    assert {k: record[k] for k in ("input_dim", "dtype", "loss")} == {
        "input_dim": 2, "dtype": "float32", "loss": "binary_cross_entropy"}


def test_load_with_the_same_model_and_with_model_round_trip(relu_file):
    path, params = relu_file
    assert_identical(checkpoint.load(path, model=RELU, input_dim=2, dtype=jnp.float32), params)
    loaded, model = checkpoint.load(path, with_model=True)
    assert model == RELU and type(model) is fnn.Sequential and hash(model) == hash(RELU)
    assert_identical(loaded, params)
    like = jax.eval_shape(lambda: params)
    assert_identical(checkpoint.load(path, like, model=RELU, with_model=True)[0], params)
    assert checkpoint.read_architecture(path) == (RELU, 2, "float32", "binary_cross_entropy")


def _other(change_layer=None, **fields):
    layers = list(RELU.layers)
    layers[change_layer] = dataclasses.replace(layers[change_layer], **fields)
    return fnn.Sequential(layers)


@pytest.mark.parametrize("other, kwargs, first_difference", [
    (_other(1, activation="tanh"), {},
     "layer 1 activation: the file has 'relu', this model has 'tanh'"),
    (fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(4, activation="tanh"),
                     fnn.Dense(1, activation="tanh")]),
     {}, "layer 0 activation: the file has 'relu', this model has 'tanh'"),
    (_other(0, units=5), {}, "layer 0 units: the file has 4, this model has 5"),
    (fnn.Sequential(RELU.layers[:2]), {}, "layer count: the file has 3, this model has 2"),
    (fnn.Sequential(RELU.layers + (fnn.Dense(1),)), {"input_dim": 3},
     "layer count: the file has 3, this model has 4"),
    (RELU, {"input_dim": 3}, "input width: the file has 2, input_dim=3 was given"),
    (_other(2, units=2, activation="softmax"), {"input_dim": 3}, "input width"),
    (RELU, {"dtype": jnp.float64}, "dtype: the file has float32, dtype=float64 was given"),
    (_other(2, kernel_init="he_normal"), {"dtype": "float64"},
     "layer 2 kernel_init: the file has None, this model has 'he_normal'"),
    (_other(1, bias_init=0.1), {}, "layer 1 bias_init: the file has 0.0, this model has 0.1"),
    *([(_other(0, input_dim=2), {}, "layer 0 input_dim: the file has None, this model has 2")]
      if HAS_INPUT_DIM else []),
    (None, {"input_dim": 5}, "input width: the file has 2, input_dim=5 was given"),
])
def test_load_refuses_another_model_naming_the_first_difference(relu_file, other, kwargs, first_difference):
    path, _ = relu_file
    with pytest.raises(FnnValueError, match="was saved for another model: " + first_difference):
        checkpoint.load(path, model=other, **kwargs)
    with pytest.raises(CheckpointError, match=first_difference):
        checkpoint.load(path, model=other, with_model=True, **kwargs)


def test_relu_params_never_predict_silently_through_a_tanh_model(relu_file):
    path, params = relu_file
    tanh = fnn.Sequential([dataclasses.replace(layer, activation="tanh") if layer.activation == "relu"
                           else layer for layer in RELU.layers])
    tanh.apply(checkpoint.load(path), np.ones((1, 2), np.float32))  # the shapes alone fit: the danger
    with pytest.raises(FnnValueError, match="layer 0 activation: the file has 'relu', this model has 'tanh'"):
        checkpoint.load(path, model=tanh)


def test_a_file_without_a_model_loads_as_before_and_refuses_model_checks(tmp_path):
    path = checkpoint.save(tmp_path / "p.ckpt", _params())
    assert_identical(checkpoint.load(path), _params())
    assert checkpoint.read_architecture(path) is None
    assert "fnn_model" not in _split(path.read_bytes())[0]["__metadata__"]
    for kwargs in [{"model": RELU}, {"with_model": True}, {"input_dim": 3}, {"dtype": "float32"}]:
        with pytest.raises(CheckpointError, match="stores no model to check or rebuild"):
            checkpoint.load(path, **kwargs)


def test_a_run_state_saves_with_a_model_given_its_input_width_and_dtype(tmp_path):
    flat = {"format": "fnn-fit", "state": {"params": jnp.zeros(33, jnp.float64), "epoch": jnp.asarray(3)},
            "key": jax.random.key(0)}
    with pytest.raises(FnnValueError, match="holds no tuple of DenseParams .* pass input_dim= and dtype="):
        checkpoint.save(tmp_path / "run.ckpt", flat, model=RELU, dtype="float64")
    path = checkpoint.save(tmp_path / "run.ckpt", flat, model=RELU, input_dim=2, dtype=jnp.float64,
                           loss="mse")
    assert checkpoint.read_architecture(path) == (RELU, 2, "float64", "mse")
    assert_identical(checkpoint.load(path, model=RELU, input_dim=2), flat)
    state = {"params": _model_params(RELU, input_dim=3, dtype=np.float64), "epoch": 1}
    path = checkpoint.save(tmp_path / "s.ckpt", state, model=RELU)
    assert checkpoint.read_architecture(path).input_dim == 3


@pytest.mark.skipif(not HAS_INPUT_DIM, reason="no Dense.input_dim")
def test_a_declared_input_width_is_used_and_checked(tmp_path):
    declared = fnn.Sequential([fnn.Dense(3, activation="relu", input_dim=2), fnn.Dense(1)])
    path = checkpoint.save(tmp_path / "d.ckpt", {"theta": jnp.zeros(13)}, model=declared, dtype="float32")
    assert checkpoint.read_architecture(path) == (declared, 2, "float32", None)
    wider = _model_params(fnn.Sequential([fnn.Dense(3), fnn.Dense(1)]), input_dim=3)
    with pytest.raises(FnnValueError, match=r"take 3 inputs but model= declares Dense\(.*input_dim=2\)"):
        checkpoint.save(tmp_path / "e.ckpt", wider, model=declared)
    with pytest.raises(FnnValueError, match="take 4 inputs"):
        checkpoint.save(tmp_path / "e.ckpt", {"theta": jnp.zeros(13)}, model=declared, input_dim=4,
                        dtype="float32")
    assert not (tmp_path / "e.ckpt").exists()


def test_fields_the_file_lacks_count_as_defaults_and_unknown_ones_are_named(relu_file):
    path, params = relu_file
    newest = [f.name for f in dataclasses.fields(fnn.Dense)][-1]  # e.g. input_dim, added last
    _rewrite_header(path, lambda h: [layer["config"].pop(newest) for layer in h["model"]["layers"]])
    assert checkpoint.load(path, with_model=True)[1] == RELU  # as a file from before Dense had it
    checkpoint.load(path, model=RELU)
    _rewrite_header(path, lambda h: h["model"]["layers"][2]["config"].update(dropout=0.5))
    with pytest.raises(CheckpointError, match="layer 2 dropout: the file has 0.5, this model's Dense has no"):
        checkpoint.load(path, model=RELU)
    with pytest.raises(CheckpointError, match=r"layer 2 field\(s\) \['dropout'\] .* upgrade fnn"):
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
    with pytest.raises(CheckpointError, match="layer 0 scale: the file has 0.5, this model has 2.0"):
        checkpoint.load(path, model=fnn.Sequential([Scaled(3), fnn.Dense(1)]))
    checkpoint.load(path, model=model)
    with pytest.raises(CheckpointError, match="layer 0 of class 'Scaled', which this fnn does not have"):
        checkpoint.load(path, with_model=True)
    tagged = fnn.Sequential([Tagged(1)])
    with pytest.raises(FnnTypeError, match="layer 0 field 'tags' is \\('a',\\) of type tuple"):
        checkpoint.save(tmp_path / "t.ckpt", _model_params(tagged), model=tagged)
    assert not (tmp_path / "t.ckpt").exists()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"model": "relu"}, FnnTypeError, "model must be a fnn.Sequential, got str"),
    ({"model": RELU.layers[0]}, FnnTypeError, "model must be a fnn.Sequential, got Dense"),
    ({"input_dim": 2}, FnnValueError, "pass model= too"),
    ({"loss": "mse"}, FnnValueError, "pass model= too"),
    ({"model": RELU, "input_dim": 0}, FnnValueError, "input_dim must be an integer >= 1"),
    ({"model": RELU, "input_dim": 3}, FnnValueError, "input_dim=3 but the params at tree node <root> have "
                                                     "input_dim 2"),
    ({"model": RELU, "dtype": "float64"}, FnnValueError, "dtype='float64' but the params .* have dtype "
                                                        "'float32'"),
    ({"model": RELU, "dtype": "int32"}, FnnTypeError, "dtype must be a floating dtype, got int32"),
    ({"model": RELU, "dtype": "nope"}, FnnTypeError, "dtype must be a floating dtype"),
    ({"model": RELU, "loss": "hinge"}, FnnValueError, "hinge"),
    ({"model": RELU, "loss": 3}, FnnTypeError, "loss must be a loss name"),
    ({"model": RELU, "loss": "categorical_cross_entropy"}, FnnValueError, "softmax"),
    ({"model": _other(0, units=5)}, FnnValueError,
     r"params at tree node <root> do not fit model=: params\[0\] has w \(2, 4\) .* calls for \(2, 5\)"),
    ({"model": fnn.Sequential(RELU.layers[:2])}, FnnValueError, "3 layer entries for a model of 2 layers"),
])
def test_save_refuses_a_bad_model_argument_before_touching_disk(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        checkpoint.save(tmp_path / "t.ckpt", _model_params(RELU), **kwargs)
    assert os.listdir(tmp_path) == []


def test_save_checks_the_first_params_in_the_tree_even_if_non_finite(tmp_path):
    bad = jax.tree.map(np.array, _model_params(RELU))  # writable numpy copies
    bad[0].w[0, 0] = np.nan
    tree = {"step": 1, "opt": AdamLikeState(0, bad, bad),
            "params": (DenseParams(jnp.ones((2, 9)), jnp.ones(9)),)}
    path = checkpoint.save(tmp_path / "t.ckpt", tree, model=RELU, allow_non_finite=True)
    assert checkpoint.read_architecture(path).input_dim == 2  # found in opt.mu, first in tree order


@pytest.mark.parametrize("kwargs, error, match", [
    ({"model": "relu"}, FnnTypeError, "model must be a fnn.Sequential, got str"),
    ({"model": [fnn.Dense(1)]}, FnnTypeError, "model must be a fnn.Sequential, got list"),
    ({"with_model": 1}, FnnTypeError, "with_model must be True or False, got int 1"),
    ({"input_dim": 2.0}, FnnTypeError, "input_dim must be an integer"),
    ({"input_dim": -1}, FnnValueError, "input_dim must be an integer >= 1"),
    ({"dtype": "int8"}, FnnTypeError, "dtype must be a floating dtype"),
])
def test_load_refuses_bad_model_arguments(relu_file, kwargs, error, match):
    with pytest.raises(error, match=match):
        checkpoint.load(relu_file[0], **kwargs)


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(layers=[]), "has no layers"),
    (lambda m: m.update(layers="Dense"), "has no layers"),
    (lambda m: m["layers"][1].pop("class"), "malformed layer 1"),
    (lambda m: m["layers"][1]["config"].update(units=[4]), "layer 1 field 'units' of JSON type list"),
    (lambda m: m.update(input_dim=0), "input_dim 0"),
    (lambda m: m.update(input_dim=True), "input_dim True"),
    (lambda m: m.update(dtype="int32"), "dtype 'int32'"),
    (lambda m: m.update(loss=1), "loss 1"),
    (lambda m: m["layers"][1]["config"].update(units=0), "layer 1 that cannot be rebuilt: Dense units"),
    (lambda m: m["layers"][1]["config"].pop("units"), "layer 1 that cannot be rebuilt"),
])
def test_a_malformed_model_record_with_a_valid_checksum(relu_file, change, match):
    path, _ = relu_file
    _rewrite_header(path, lambda h: change(h["model"]))
    with pytest.raises(CheckpointError, match=match):
        checkpoint.load(path, with_model=True)
    with pytest.raises(CheckpointError, match=match):
        checkpoint.read_architecture(path)


def test_checkpoint_and_models_never_import_each_other_at_import_time():
    for module, other in [(checkpoint, "models"), (fnn.models, "checkpoint")]:
        top = [node for node in ast.parse(pathlib.Path(module.__file__).read_text()).body
               if isinstance(node, (ast.Import, ast.ImportFrom))]
        imported = [alias.name for node in top for alias in node.names]
        imported += [node.module for node in top if isinstance(node, ast.ImportFrom) and node.module]
        assert not any(other in name for name in imported), (module.__name__, imported)


# ----------------------------------------------------------------------------- atomic save

def test_save_fsyncs_the_file_and_its_directory(tmp_path, monkeypatch, real_fsync):
    synced, real = [], os.fsync

    def spy(fd):
        synced.append(os.fstat(fd).st_ino)
        real(fd)
    monkeypatch.setattr(os, "fsync", spy)
    path = checkpoint.save(tmp_path / "run.ckpt", _params())
    assert synced == [path.stat().st_ino, tmp_path.stat().st_ino]


def _old_checkpoint(tmp_path):
    path = checkpoint.save(tmp_path / "run.ckpt", {"params": _params(), "epoch": 1})
    return path, path.read_bytes()


def _assert_old_checkpoint_intact(path, old_bytes):
    assert path.read_bytes() == old_bytes
    assert checkpoint.load(path)["epoch"] == 1
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind


def test_overwrite_replaces_leaves_no_temp_file_and_keeps_the_mode(tmp_path, real_fsync):
    path, _ = _old_checkpoint(tmp_path)
    os.chmod(path, 0o640)
    checkpoint.save(path, {"params": _params(), "epoch": 2})
    assert checkpoint.load(path)["epoch"] == 2
    assert os.listdir(tmp_path) == ["run.ckpt"] and (path.stat().st_mode & 0o777) == 0o640


def test_failing_replace_leaves_the_old_checkpoint(tmp_path, monkeypatch, real_fsync):
    path, old = _old_checkpoint(tmp_path)

    def fail(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(checkpoint.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"params": _params(), "epoch": 2})
    monkeypatch.undo()
    _assert_old_checkpoint_intact(path, old)


def test_failing_halfway_through_the_arrays_leaves_the_old_checkpoint(tmp_path, monkeypatch, real_fsync):
    path, old = _old_checkpoint(tmp_path)
    real_write, calls = checkpoint._write, []

    def write_then_fail(f, hasher, data):
        calls.append(1)
        if len(calls) == 4:  # prefix, header, one array written, then the next fails
            raise OSError("device error")
        real_write(f, hasher, data)
    monkeypatch.setattr(checkpoint, "_write", write_then_fail)
    with pytest.raises(OSError, match="device error"):
        checkpoint.save(path, {"params": _params(), "epoch": 2})
    assert len(calls) == 4
    _assert_old_checkpoint_intact(path, old)


def test_interrupt_during_fsync_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path, old = _old_checkpoint(tmp_path)

    def interrupt(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(checkpoint.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"params": _params(), "epoch": 2})
    monkeypatch.undo()
    _assert_old_checkpoint_intact(path, old)


def test_refused_tree_leaves_the_old_checkpoint(tmp_path, real_fsync):
    path, old = _old_checkpoint(tmp_path)
    with pytest.raises(FnnValueError):
        checkpoint.save(path, {"params": _params(), "epoch": 2, "loss": float("nan")})
    _assert_old_checkpoint_intact(path, old)


KILLED_SAVE = textwrap.dedent("""
    import sys, time
    import numpy as np
    from fnn import checkpoint
    real_write, calls = checkpoint._write, []
    def write_slowly(f, hasher, data):
        real_write(f, hasher, data)
        calls.append(1)
        if len(calls) == 3:  # prefix, header and the first 16 MB array are in the temp file
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
    checkpoint._write = write_slowly
    big = {"a": np.ones(2_000_000), "b": np.full(2_000_000, 2.0), "c": np.zeros(2_000_000)}
    checkpoint.save(sys.argv[1], big)
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_save_killed_mid_write_leaves_the_old_checkpoint(tmp_path, real_fsync):
    path, old = _old_checkpoint(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        assert line == b"writing\n", proc.stderr.read().decode()
        temporary = [name for name in os.listdir(tmp_path) if name != path.name]
        assert len(temporary) == 1 and (tmp_path / temporary[0]).stat().st_size > 16_000_000
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
    result = doctest.testmod(checkpoint, extraglobs={"fnn": fnn}, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0
