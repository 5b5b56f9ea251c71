"""fnn.cache: JAX's persistent compilation cache, configured on `import fnn`.

The cache is process state, read once at import, so each configuration is tried in a fresh
interpreter (the root conftest.py turns it off for this one, and for every subprocess the suite
starts, unless a test says otherwise). Whether a program was compiled or loaded is read from
JAX's own cache events (jax.monitoring), never from timings.
"""
import json
import math
import os
import pathlib
import subprocess
import sys
import warnings

import jax
import pytest

from fnn import _executables, cache
from fnn.errors import FnnValueError

# A tiny fit (or with "jit", one tiny program) in a fresh process; prints one JSON line: JAX's cache events (those of fit alone,
# and of the whole script), fnn.cache.info() and what fnn.cache did.
WORKER = r"""
import collections, json, os, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import jax, jax.monitoring
    events = collections.Counter()
    jax.monitoring.register_event_listener(
        lambda name, **kw: events.update([name.rsplit("/", 1)[-1]]) if "/compilation_cache/" in name else None)
    import fnn
    if "jit" in sys.argv:  # one small program, not a whole fit
        loss = float(jax.jit(lambda v: (v * v).sum())(jax.numpy.arange(3.0)))
        fit_events = collections.Counter()
    else:
        x, y = fnn.data.circles(jax.random.key(0), 16, noise=0.05)
        model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
        params = model.init(jax.random.key(0), input_dim=2)
        before = collections.Counter(events)
        result = fnn.fit(model, params, x, y, epochs=2, batch_size=8, key=jax.random.key(1))
        fit_events = events - before
        loss = float(result.history["loss"][-1])
out = {"fit": dict(fit_events), "all": dict(events), "info": {k: str(v) for k, v in fnn.cache.info().items()},
       "loss": loss, "jax_dir": jax.config.jax_compilation_cache_dir,
       "min_compile_time": jax.config.jax_persistent_cache_min_compile_time_secs,
       "warnings": [str(w.message) for w in caught if "cache" in str(w.message)]}
if "clear" in sys.argv:
    out["bytes_before"] = fnn.cache.info()["bytes"]
    out["freed"] = fnn.cache.clear()
    out["after_clear"] = {k: str(v) for k, v in fnn.cache.info().items()}
if "foreign" in sys.argv:
    for name, call in (("clear", fnn.cache.clear), ("enable", fnn.cache.enable)):
        try:
            call()
        except fnn.FnnValueError as e:
            out[name] = str(e)
print("RESULT " + json.dumps(out))
"""


def run_worker(tmp_path, *args, **env):
    """WORKER in a fresh interpreter with the cache on unless env says otherwise."""
    full = dict(os.environ, JAX_PLATFORMS="cpu", FNN_CACHE="on")
    full.pop("JAX_COMPILATION_CACHE_DIR", None)
    full.update(env)
    proc = subprocess.run([sys.executable, "-c", WORKER, *args], env=full, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def cache_files(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".fnn")) if folder.exists() else []


@pytest.mark.slow  # fresh processes or many examples: `make test-slow`
def test_a_second_process_compiles_nothing_and_clear_empties_the_folder(tmp_path):
    folder = tmp_path / "fnn-cache"
    cold = run_worker(tmp_path, FNN_CACHE_DIR=str(folder))
    assert cold["info"]["directory"] == str(folder) and cold["info"]["enabled"] == "True"
    assert cold["fit"].get("cache_misses", 0) > 0  # fit compiled, and wrote what it compiled
    written = cache_files(folder)
    jax_entries = [name for name in written if not name.startswith(_executables.KEY_PREFIX)]
    assert len(jax_entries) == cold["all"]["cache_misses"] and len(written) == int(cold["info"]["files"])
    assert len(written) > len(jax_entries)  # fnn's programs also kept whole (fnn._executables)
    assert not cold["warnings"] and cold["min_compile_time"] == 0.0

    warm = run_worker(tmp_path, "clear", FNN_CACHE_DIR=str(folder))
    # fit's programs were loaded whole: JAX was asked to compile nothing; every other compile
    # request of the run (JAX's own small programs) was served from the disk cache
    assert warm["fit"].get("compile_requests_use_cache", 0) == 0 and warm["fit"].get("cache_misses", 0) == 0
    assert warm["all"].get("cache_misses", 0) == 0
    assert warm["all"]["cache_hits"] == warm["all"]["compile_requests_use_cache"] > 0
    assert warm["loss"] == cold["loss"]
    # clear(): every entry gone, the bytes it reported freed, the folder kept
    assert warm["freed"] == warm["bytes_before"] > 0
    assert warm["after_clear"]["files"] == "0" and warm["after_clear"]["bytes"] == "0"
    assert folder.is_dir() and list(folder.iterdir()) == []


@pytest.mark.slow  # a fresh process: `make test-slow` (CI runs it after make test)
def test_off_writes_nothing(tmp_path):
    folder = tmp_path / "fnn-cache"
    out = run_worker(tmp_path, "jit", FNN_CACHE="Off", FNN_CACHE_DIR=str(folder))
    assert out["info"] == {"directory": "None", "enabled": "False", "files": "0", "bytes": "0",
                           "max_bytes": str(cache.DEFAULT_MAX_BYTES)}
    assert out["jax_dir"] is None and out["min_compile_time"] == 1.0  # JAX's own settings untouched
    assert out["loss"] == 5.0 and not folder.exists() and not out["warnings"] and "cache_misses" not in out["all"]


@pytest.mark.slow  # a fresh process: `make test-slow` (CI runs it after make test)
def test_unwritable_folder_warns_once_and_fit_still_runs(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    folder = blocker / "jax"  # its parent is a regular file: no user, root included, can create it
    out = run_worker(tmp_path, FNN_CACHE_DIR=str(folder))
    assert len(out["warnings"]) == 1, out["warnings"]
    assert str(folder) in out["warnings"][0] and "FNN_CACHE_DIR" in out["warnings"][0]
    assert out["info"]["enabled"] == "False" and out["jax_dir"] is None
    assert math.isfinite(out["loss"]) and "cache_misses" not in out["all"]  # trained, nothing written


@pytest.mark.slow  # a fresh process: `make test-slow` (CI runs it after make test)
def test_a_cache_configured_in_jax_is_left_alone(tmp_path):
    mine, theirs = tmp_path / "fnn-cache", tmp_path / "jax-cache"
    out = run_worker(tmp_path, "jit", "foreign", FNN_CACHE_DIR=str(mine), JAX_COMPILATION_CACHE_DIR=str(theirs))
    assert out["jax_dir"] == str(theirs) and out["info"]["directory"] == "None"
    assert out["min_compile_time"] == 1.0  # JAX's threshold, not fnn's
    assert not mine.exists() and not out["warnings"]
    assert str(theirs) in out["clear"] and "leaves it alone" in out["clear"]
    assert str(theirs) in out["enable"] and "jax_compilation_cache_dir" in out["enable"]


# --------------------------------------------------------------------------- in this process


def test_enable_disable_and_clear_in_process(tmp_path, restore_cache):
    folder = tmp_path / "c"
    assert cache.enable(folder) == folder and cache.directory() == folder
    assert jax.config.jax_compilation_cache_dir == str(folder)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
    jax.jit(lambda v: v * 3 + 1)(jax.numpy.arange(5.0)).block_until_ready()  # a program nobody compiled yet here
    assert cache.info()["files"] >= 1 and cache.info()["bytes"] > 0
    assert not [p for p in folder.iterdir() if p.name.endswith(".fnn-tmp")]  # no temp file left behind
    (folder / "notes.txt").write_text("mine")  # not an entry: clear() keeps it
    freed = cache.clear()
    assert freed > 0 and cache.info()["files"] == 0 and (folder / "notes.txt").exists()
    cache.disable()
    assert cache.directory() is None and jax.config.jax_compilation_cache_dir is None
    assert cache.info() == {"directory": None, "enabled": False, "files": 0, "bytes": 0,
                            "max_bytes": cache.DEFAULT_MAX_BYTES} and cache.clear() == 0


def test_enable_an_unwritable_folder_warns_once(tmp_path, restore_cache):
    (tmp_path / "f").write_text("")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.enable(tmp_path / "f" / "jax") is None
    assert len(caught) == 1 and issubclass(caught[0].category, RuntimeWarning)
    assert str(tmp_path / "f" / "jax") in str(caught[0].message) and "FNN_CACHE_DIR" in str(caught[0].message)
    assert cache.directory() is None and jax.config.jax_compilation_cache_dir is None


def test_a_jax_cache_set_after_import_is_not_fnns(tmp_path, restore_cache):
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "theirs"))
    assert cache.directory() is None and cache.info()["enabled"] is False
    with pytest.raises(FnnValueError, match="configured outside fnn"):
        cache.clear()
    with pytest.raises(FnnValueError, match=r"already configured at .*theirs"):
        cache.enable(tmp_path / "mine")
    assert not (tmp_path / "mine").exists()


def test_default_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("FNN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.default_directory() == tmp_path / "fnn" / "jax"
    monkeypatch.setenv("FNN_CACHE_DIR", "~/x")
    assert cache.default_directory() == pathlib.Path(os.path.expanduser("~/x"))
    if sys.platform not in ("darwin", "win32"):
        monkeypatch.delenv("FNN_CACHE_DIR")
        monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
        assert cache.default_directory() == pathlib.Path.home() / ".cache" / "fnn" / "jax"
