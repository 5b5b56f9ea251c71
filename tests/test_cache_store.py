"""fnn's verified cache store, in this process: every damaged or planted entry is a miss, with one
warning; the folder must be its user's alone; the cache stays under its bound; clear() and info()
see fnn's entries only. (tests/test_cache_faults.py repeats the damage in fresh processes.)"""
import os
import pathlib
import stat
import warnings

import jax
import jax.numpy as jnp
import pytest

from fnn import _cache_store, cache
from fnn._cache_store import MAGIC, Store

PAYLOAD = bytes(range(256)) * 40  # 10 KB standing in for a compressed executable
KEY, OTHER = "jit_f-" + "a" * 64, "jit_g-" + "b" * 64


def _store(tmp_path, max_bytes=1 << 20) -> Store:
    folder = tmp_path / "store"
    folder.mkdir(mode=0o700, exist_ok=True)
    return Store(folder, max_bytes)


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x10]) + data[index + 1:]


def _damaged(store: Store, how: str) -> None:
    """Leave KEY's entry damaged `how` (after a good put)."""
    path = store._entry(KEY)
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "zeroed":
        path.write_bytes(bytes(len(data)))
    elif how == "flipped payload":
        path.write_bytes(_flip(data, len(data) - 100))
    elif how == "flipped digest":
        path.write_bytes(_flip(data, len(MAGIC) + 3))
    elif how == "random":
        path.write_bytes(os.urandom(len(data)))
    elif how == "swapped":
        store.put(OTHER, PAYLOAD[::-1])
        path.write_bytes(store._entry(OTHER).read_bytes())
    elif how == "longer":
        path.write_bytes(data + b"\x00")
    elif how == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif how == "dev zero":
        path.unlink()
        path.symlink_to("/dev/zero")
    elif how == "symlink loop":
        path.unlink()
        path.symlink_to(path)
    elif how == "symlink to a good entry":
        store.put(OTHER, PAYLOAD)
        path.unlink()
        path.symlink_to(store._entry(OTHER))
    elif how == "a folder":
        path.unlink()
        path.mkdir()
    else:
        raise AssertionError(how)


DAMAGE = ["truncated", "empty", "zeroed", "flipped payload", "flipped digest", "random", "swapped", "longer",
          "fifo", "dev zero", "symlink loop", "symlink to a good entry", "a folder"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_entry_is_a_miss_with_one_warning_and_a_put_replaces_it(tmp_path, how):
    store = _store(tmp_path)
    store.put(KEY, PAYLOAD)
    assert store.get(KEY) == PAYLOAD
    _damaged(store, how)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert store.get(KEY) is None and store.get(KEY) is None  # asked twice: warned once
    assert len(caught) == 1 and issubclass(caught[0].category, RuntimeWarning), [str(w.message) for w in caught]
    assert str(store._entry(KEY)) in str(caught[0].message)
    if how != "a folder":  # a folder of that name cannot be replaced by a file: the key stays a miss
        store.put(KEY, PAYLOAD)
        assert store.get(KEY) == PAYLOAD and not store._entry(KEY).is_symlink()


def test_an_entry_of_another_user_is_a_miss(tmp_path):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    store = _store(tmp_path)
    store.put(KEY, PAYLOAD)
    os.chown(store._entry(KEY), 65534, 65534)
    with pytest.warns(RuntimeWarning, match="another user"):
        assert store.get(KEY) is None


def test_entries_are_private_and_a_missing_key_is_a_silent_miss(tmp_path):
    store = _store(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get(KEY) is None
    store.put(KEY, PAYLOAD)
    assert stat.S_IMODE(store._entry(KEY).stat().st_mode) == 0o600
    assert [p.name for p in store.folder.iterdir()] == [store._entry(KEY).name]  # no temporary file left


def test_the_store_keeps_under_its_bound_and_evicts_the_least_recently_used(tmp_path):
    size = len(MAGIC) + 32 + len(PAYLOAD)
    store = _store(tmp_path, max_bytes=5 * size)
    for i in range(30):
        store.put(f"k{i}", PAYLOAD)
        if i > 3:
            assert store.get("k3") == PAYLOAD  # in use all along: never the least recently used
        found = list(_cache_store.entries(store.folder))
        assert sum(s for _, s, _ in found) <= 5 * size
    kept = sorted(p.name for p, _, _ in _cache_store.entries(store.folder))
    assert kept == sorted(["k3.fnn", "k26.fnn", "k27.fnn", "k28.fnn", "k29.fnn"])
    store.put("huge", bytes(6 * size))  # larger than the whole cache: not kept, nothing evicted for it
    assert store.get("huge") is None and len(list(_cache_store.entries(store.folder))) == 5


# --------------------------------------------------------------------------- fnn.cache on this folder


def _one_warning(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    assert len(caught) == 1, [str(w.message) for w in caught]
    return out, str(caught[0].message)


def test_a_folder_others_can_write_is_not_used(tmp_path, restore_cache):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    out, message = _one_warning(lambda: cache.enable(folder))
    assert out is None and cache.directory() is None and jax.config.jax_compilation_cache_dir is None
    assert str(folder) in message and "chmod 700" in message and "FNN_CACHE_DIR" in message


def test_a_symlinked_folder_is_not_followed(tmp_path, restore_cache):
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    out, message = _one_warning(lambda: cache.enable(tmp_path / "link"))
    assert out is None and "symbolic link" in message


def test_a_folder_of_another_user_is_not_used(tmp_path, restore_cache):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to give a folder to another user")
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    out, message = _one_warning(lambda: cache.enable(folder))
    assert out is None and "another user" in message and str(folder) in message


@pytest.mark.slow  # seconds of real I/O or fresh processes: make test-slow runs it
def test_a_new_folder_is_private_the_cache_is_bounded_and_clear_deletes_only_fnns_entries(
        tmp_path, restore_cache, monkeypatch):
    monkeypatch.setenv("FNN_CACHE_MAX_BYTES", "60000")
    folder = tmp_path / "project-cache"  # the name JAX's own cache would have deleted by
    assert cache.enable(folder) == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert jax.config.jax_persistent_cache_enable_xla_caches == "none"  # the key leaves the path out
    (folder / "src").mkdir()
    (folder / "src" / "thesis.tex").write_text("mine")
    (folder / "notes-cache").write_text("mine too")
    (folder / "fake.fnn").write_bytes(b"not fnn's format")
    for n in range(1, 31):  # 30 structures, each a few KB compiled
        jax.jit(lambda v: jnp.sin(v) * 2 + 1)(jnp.zeros((n, 3))).block_until_ready()
        info = cache.info()
        assert info["bytes"] <= 60000 and info["max_bytes"] == 60000
    assert 1 <= info["files"] < 30  # kept some, evicted the rest
    assert (folder / "fake.fnn").read_bytes() == b"not fnn's format"
    assert cache.clear() == info["bytes"] and cache.info()["files"] == 0
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert left == ["fake.fnn", "notes-cache", "src", "src/thesis.tex"]


def test_a_bound_that_is_not_a_number_warns_and_keeps_the_default(monkeypatch):
    monkeypatch.setenv("FNN_CACHE_MAX_BYTES", "lots")
    out, message = _one_warning(cache.max_bytes)
    assert out == cache.DEFAULT_MAX_BYTES and "FNN_CACHE_MAX_BYTES" in message
    monkeypatch.setenv("FNN_CACHE_MAX_BYTES", "2e9")
    assert cache.max_bytes() == 2 * 10**9
    monkeypatch.setenv("FNN_CACHE_MAX_BYTES", "-5")
    assert _one_warning(cache.max_bytes)[0] == cache.DEFAULT_MAX_BYTES


def test_disable_restores_jaxs_settings(tmp_path, restore_cache):
    before = (jax.config.jax_persistent_cache_min_compile_time_secs, jax.config.jax_persistent_cache_enable_xla_caches)
    cache.enable(tmp_path / "c")
    cache.disable()
    after = (jax.config.jax_persistent_cache_min_compile_time_secs, jax.config.jax_persistent_cache_enable_xla_caches)
    assert after == before
    assert pathlib.Path(tmp_path / "c").is_dir()
