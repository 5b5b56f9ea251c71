"""fnn.checkpoint: exact round trips, the documented file layout, atomic saves, refused inputs.

Every damaged file (truncated, bit-flipped, foreign, newer) must raise CheckpointError, never a
raw zipfile/json/numpy/struct exception and never a wrong tree.
"""
import collections
import doctest
import enum
import hashlib
import json
import os
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

MAGIC = b"FNN-CHECKPOINT\n"
PREFIX = len(MAGIC) + 16  # magic, then header and payload lengths as two uint64


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


def _rewrite_header(path, change):
    """Edit the JSON header in place and re-seal the file with a correct sha256."""
    data = path.read_bytes()
    header_size, payload_size = struct.unpack_from("<QQ", data, len(MAGIC))
    header = json.loads(data[PREFIX:PREFIX + header_size])
    change(header)
    new = json.dumps(header).encode()
    body = MAGIC + struct.pack("<QQ", len(new), payload_size) + new + \
        data[PREFIX + header_size:PREFIX + header_size + payload_size]
    path.write_bytes(body + hashlib.sha256(body).digest())


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


# ------------------------------------------------------------------- load: damaged and foreign files

@pytest.fixture
def small(tmp_path):
    """A small checkpoint with every kind of node, and its bytes."""
    tree = {"p": (DenseParams(w=jnp.arange(6.0).reshape(2, 3), b=jnp.ones(3, jnp.float32)),),
            "key": jax.random.key(3), "epoch": 2, "lr": 0.5, "name": "x", "none": None,
            "n": np.arange(3, dtype=np.int32)}
    path = checkpoint.save(tmp_path / "small.ckpt", tree)
    return path, path.read_bytes(), tree


def test_file_layout_matches_the_documented_format(small):
    path, data, tree = small
    assert data.startswith(MAGIC)
    header_size, payload_size = struct.unpack_from("<QQ", data, len(MAGIC))
    assert len(data) == PREFIX + header_size + payload_size + 32
    assert data[-32:] == hashlib.sha256(data[:-32]).digest()
    header = json.loads(data[PREFIX:PREFIX + header_size])
    assert header["format"] == "fnn-checkpoint" and header["format_version"] == 1
    assert header["fnn_version"] == fnn.__version__ and header["jax_version"] == jax.__version__
    w = header["tree"]["items"][0]["items"][0]["items"][0]
    assert w == {"type": "array", "kind": "jax", "dtype": "float64", "shape": [2, 3]}
    payload = data[PREFIX + header_size:-32]
    expected = [np.arange(6.0), np.ones(3, np.float32), np.asarray(jax.random.key_data(tree["key"])),
                np.arange(3, dtype=np.int32)]
    assert payload == b"".join(a.astype(a.dtype.newbyteorder("<")).tobytes() for a in expected)


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
    for i in np.linspace(PREFIX, size - 1, 200).astype(int):
        _flip(path, i, 0x80)
        with pytest.raises(CheckpointError, match="corrupt: sha256"):
            checkpoint.load(path)
        _flip(path, i, 0x80)
    assert_identical(checkpoint.load(path), tree)
    for n in np.linspace(size - 1, 0, 200).astype(int):
        os.truncate(path, n)
        with pytest.raises(CheckpointError, match="truncated|empty"):
            checkpoint.load(path)


def test_a_flipped_payload_bit_is_reported_as_a_checksum_mismatch(small, tmp_path):
    path, data, _ = small
    flipped = bytearray(data)
    flipped[-40] ^= 1  # inside the last array's bytes
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
    (np.random.default_rng(0).bytes(4096), "not an fnn checkpoint"),
    (b"hello world\n" * 10, "not an fnn checkpoint"),
    (MAGIC + b"\xff" * 100, "truncated|corrupt"),
])
def test_garbage_and_empty_files(tmp_path, content, match):
    path = tmp_path / "g.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        checkpoint.load(path)
    with pytest.raises(CheckpointError, match=match):
        checkpoint.read_metadata(path)


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
    _rewrite_header(path, lambda h: h.update(format_version=2, fnn_version="9.0"))
    with pytest.raises(CheckpointError, match="format version 2.*fnn 9.0.*upgrade fnn"):
        checkpoint.load(path)


@pytest.mark.parametrize("change, match", [
    (lambda h: h.update(format="other-format"), "format 'other-format'"),
    (lambda h: h.pop("format"), "format None"),
    (lambda h: h.update(format_version="1"), "invalid format version"),
    (lambda h: h.update(format_version=0), "invalid format version"),
    (lambda h: h.update(tree=None), "malformed"),
    (lambda h: h.update(tree={"type": "pickle", "value": "x"}), "unknown type 'pickle'"),
    (lambda h: h["tree"]["items"][0]["items"][0]["items"][0].update(dtype="object"), r"\['p'\]\[0\]\.w"),
    (lambda h: h["tree"]["items"][0]["items"][0]["items"][0].update(shape=[2, -3]), "malformed"),
    (lambda h: h["tree"]["items"][0]["items"][0]["items"][0].update(shape=[1, 3]), "payload"),
    (lambda h: h["tree"]["items"][0]["items"][0]["items"][0].update(shape=[3, 3]), "runs past"),
    (lambda h: h["tree"]["items"][0]["items"][0]["items"][0].update(kind="torch"), "kind 'torch'"),
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
