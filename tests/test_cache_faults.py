"""A damaged or planted compilation cache, in fresh processes: exit 0 and bitwise the results of a
run with the cache off, whatever was done to the folder, under JAX's zstd and zlib codecs.

Each case copies a cache that a first process filled, damages every entry one way, and runs the
same script again on it. The script prints a digest of everything it computed (model.init,
jax.random keys, a fit's params and history, predict), so any changed number shows.
"""
import concurrent.futures
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import zlib

import pytest

from fnn._cache_store import MAGIC
from fnn._executables import KEY_PREFIX

pytestmark = pytest.mark.slow  # about 30 fresh processes: `make test-slow` (CI runs it after make test)
zstandard = pytest.importorskip("zstandard")

SCRIPT = r"""
import collections, hashlib, json, os, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import jax, jax.monitoring
    import jax._src.compilation_cache as jax_cache
    if sys.argv[1] == "zlib":
        jax_cache.zstandard = None  # JAX's other codec
    events = collections.Counter()
    jax.monitoring.register_event_listener(
        lambda name, **kw: events.update([name.rsplit("/", 1)[-1]]) if "/compilation_cache/" in name else None)
    import numpy as np
    import fnn
    digest = hashlib.sha256()
    def add(tree):
        for leaf in jax.tree.leaves(tree):
            digest.update(np.asarray(leaf).tobytes())
    add([jax.random.key_data(jax.random.key(1)), jax.random.key_data(jax.random.key(2))])
    x, y = fnn.data.circles(jax.random.key(0), 64, noise=0.05)
    model = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
    params = model.init(jax.random.key(0), input_dim=2)
    add(params)
    result = fnn.fit(model, params, x, y, epochs=3, batch_size=16, verbose=0)
    add([result.params, result.history["loss"], fnn.predict(model, result.params, x)])
print("RESULT " + json.dumps({"digest": digest.hexdigest(), "events": dict(events),
                              "warnings": [str(w.message) for w in caught]}))
"""


def run(codec: str, folder: pathlib.Path | None) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if folder is None:
        env["FNN_CACHE"] = "off"
    else:
        env.update(FNN_CACHE="on", FNN_CACHE_DIR=str(folder))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, codec], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (codec, folder, proc.returncode, proc.stderr[-3000:])
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _codec(name: str):
    if name == "zstd":
        return zstandard.ZstdDecompressor().decompress, zstandard.ZstdCompressor().compress
    return zlib.decompress, zlib.compress


def damage(folder: pathlib.Path, how: str, codec: str, rng: random.Random) -> None:
    """Do `how` to every entry of `folder`."""
    paths = sorted(p for p in folder.iterdir() if p.is_file())
    assert paths, "the first process wrote no entry"
    header = len(MAGIC) + 32
    for k, path in enumerate(paths):
        data = path.read_bytes()
        if how == "truncated":
            new = data[: rng.randrange(1, len(data))]
        elif how == "zero":
            new = b""
        elif how == "compressed bit":  # one random bit of the compressed executable
            i = rng.randrange(header, len(data))
            new = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
        elif how == "decompressed bit" and path.name.startswith(KEY_PREFIX):  # fnn's whole programs: not compressed
            i = rng.randrange(header, len(data))
            new = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
        elif how == "decompressed bit":  # one bit of the executable itself, recompressed: a valid stream
            decompress, compress = _codec(codec)
            inner = bytearray(decompress(data[header:]))
            inner[rng.randrange(len(inner))] ^= 1 << rng.randrange(8)
            new = data[:header] + compress(bytes(inner))
        elif how == "random":
            new = os.urandom(len(data))
        elif how == "swapped":
            new = paths[(k + 1) % len(paths)].read_bytes()
        elif how in ("fifo", "dev zero", "symlink loop"):
            path.unlink()
            if how == "fifo":
                os.mkfifo(path)
            else:
                path.symlink_to("/dev/zero" if how == "dev zero" else path)
            continue
        else:
            raise AssertionError(how)
        path.write_bytes(new)


KINDS = ["truncated", "zero", "compressed bit", "decompressed bit", "random", "swapped", "fifo", "dev zero",
         "symlink loop"]


@pytest.mark.parametrize("codec", ["zstd", "zlib"])
def test_a_damaged_cache_gives_the_results_of_no_cache(tmp_path, codec):
    reference = run(codec, None)
    filled = tmp_path / "filled"
    first = run(codec, filled)
    assert first["digest"] == reference["digest"] and not first["warnings"]
    assert first["events"].get("cache_misses", 0) > 0
    rng = random.Random(codec)
    cases = []
    for how in KINDS:
        folder = tmp_path / how.replace(" ", "-") / "cache"
        shutil.copytree(filled, folder)
        damage(folder, how, codec, rng)
        cases.append((how, folder))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda case: run(codec, case[1]), cases))
    for (how, folder), out in zip(cases, outs):
        assert out["digest"] == reference["digest"], how
        cache_warnings = [w for w in out["warnings"] if "cache" in w]
        assert len(cache_warnings) <= 1, (how, cache_warnings)
        # every kind is found, a valid stream with a changed executable too: the digest covers bytes and key
        assert len(cache_warnings) == 1 and str(folder) in cache_warnings[0], (how, out["warnings"])
        again = run(codec, folder)  # the entries were replaced: a clean hit, no warning
        assert again["digest"] == reference["digest"] and not again["warnings"], how
        assert again["events"].get("cache_misses", 0) == 0, (how, again["events"])


def test_a_planted_or_shared_folder_is_not_used_and_a_moved_cache_hits(tmp_path):
    reference = run("zstd", None)
    filled = tmp_path / "filled" / "cache"
    run("zstd", filled)
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(filled, moved)
    out = run("zstd", moved)
    assert out["digest"] == reference["digest"] and not out["warnings"]
    assert out["events"].get("cache_misses", 0) == 0 and out["events"]["cache_hits"] > 0  # the key has no path
    shared = tmp_path / "shared" / "cache"
    shutil.copytree(moved, shared)
    shared.chmod(0o1777)  # like /tmp: anyone could have planted these entries
    out = run("zstd", shared)
    assert out["digest"] == reference["digest"]
    assert len(out["warnings"]) == 1 and "chmod 700" in out["warnings"][0] and "cache_hits" not in out["events"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        theirs = tmp_path / "theirs" / "cache"
        shutil.copytree(moved, theirs)
        for path in [theirs, *theirs.iterdir()]:
            os.chown(path, 65534, 65534)
        out = run("zstd", theirs)
        assert out["digest"] == reference["digest"]
        assert len(out["warnings"]) == 1 and "another user" in out["warnings"][0]
