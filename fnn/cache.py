"""JAX's persistent compilation cache, on by default: each program compiles once per machine.

`import fnn` points JAX's persistent compilation cache at a folder of fnn's own and lets it keep
every program, however small (JAX's default keeps only programs that took a second or more to
compile). A fresh process that runs a program compiled before, by any process on the machine,
loads the compiled executable from disk instead of compiling it again. While it is on, this
holds for every program the process compiles, fnn's or not. The folder is

    $FNN_CACHE_DIR                  if set
    $XDG_CACHE_HOME/fnn/jax         else, if XDG_CACHE_HOME is set
    ~/Library/Caches/fnn/jax        on macOS
    %LOCALAPPDATA%\\fnn\\jax          on Windows
    ~/.cache/fnn/jax                otherwise

Environment variables, read on `import fnn`:

    FNN_CACHE_DIR=/some/path        keep the cache there instead
    FNN_CACHE=off                   no cache (also 0, false, no; case-insensitive)

A cache configured in JAX itself (`jax.config.update("jax_compilation_cache_dir", ...)` before
`import fnn`, or JAX_COMPILATION_CACHE_DIR) is left exactly as it is, thresholds included, and
so is JAX's cache switched off (jax_enable_compilation_cache=False): fnn then configures nothing
and `directory()` is None. A folder fnn cannot write to leaves the cache off with one
RuntimeWarning, never an error.

The folder holds compiled executables (`<key>-cache` files, compressed; the key hashes the
program, the JAX/XLA versions, the compile options and the device) and, on GPU, XLA's autotuning
results (JAX's jax_persistent_cache_enable_xla_caches default, which fnn keeps; it adds nothing
on CPU). Nothing is evicted: `clear()` empties the folder, and deleting it by hand is safe too.
Like any JAX compilation cache the folder is trusted: whoever can write to it can run code in
your processes.

Example:
    >>> import tempfile
    >>> folder = fnn.cache.enable(tempfile.mkdtemp())  # `import fnn` did this with ~/.cache/fnn/jax
    >>> info = fnn.cache.info()  # "files" counts the programs kept, "bytes" their size
    >>> info["enabled"], info["directory"] == folder, sorted(info)
    (True, True, ['bytes', 'directory', 'enabled', 'files'])
    >>> fnn.cache.disable()
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import shutil
import sys
import tempfile
import warnings

import jax
from jax.experimental.compilation_cache import compilation_cache as jax_compilation_cache

from fnn.errors import FnnValueError

_CacheInterface: type = object  # the base of fnn's file cache: JAX's interface, where this JAX has it
try:  # private: where JAX makes its file cache, and the interface that cache implements
    from jax._src import compilation_cache as _jax_cache_internals
    from jax._src.compilation_cache_interface import CacheInterface

    _CacheInterface = CacheInterface
except ImportError:  # another JAX: its own cache is used as it is
    _jax_cache_internals = None

__all__ = ["clear", "configure", "default_directory", "directory", "disable", "enable", "info"]

_OFF_VALUES = ("off", "0", "false", "no")
_ON_VALUES = ("on", "1", "true", "yes", "")

# What JAX writes into a cache folder; clear() deletes these and nothing else, so a mistaken
# FNN_CACHE_DIR (a home folder, say) loses no other file.
_ENTRY_SUFFIXES = ("-cache", "-atime")
_XLA_ENTRIES = ("xla_gpu_per_fusion_autotune_cache_dir", "xla_gpu_kernel_cache_file")
_TEMP_SUFFIX = ".fnn-tmp"

_directory: pathlib.Path | None = None  # the folder fnn configured; None while it configured none
_saved_min_compile_time: float | None = None  # JAX's threshold before fnn set it, for disable()


def default_directory() -> pathlib.Path:
    """Where the cache lives unless moved: FNN_CACHE_DIR, else the platform's user cache folder."""
    if os.environ.get("FNN_CACHE_DIR"):
        return _absolute(os.environ["FNN_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec says to ignore a relative path
        base = pathlib.Path(xdg)
    elif sys.platform == "darwin":
        base = pathlib.Path.home() / "Library" / "Caches"
    elif sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = pathlib.Path(os.environ["LOCALAPPDATA"])
    else:
        base = pathlib.Path.home() / ".cache"
    return base / "fnn" / "jax"


def directory() -> pathlib.Path | None:
    """The folder fnn's cache writes to now; None if it is off or the cache in use is not fnn's."""
    if _directory is not None and _setting("jax_compilation_cache_dir") == str(_directory):
        return _directory
    return None


def info() -> dict:
    """{"directory": Path | None, "enabled": bool, "files": int, "bytes": int} of fnn's cache.

    `files` counts compiled programs; `bytes` is everything clear() would delete.
    """
    folder = directory()
    entries = _entries(folder) if folder is not None else []
    return {
        "directory": folder,
        "enabled": folder is not None,
        "files": sum(1 for p in entries if p.name.endswith("-cache")),
        "bytes": sum(_size(p) for p in entries),
    }


def clear() -> int:
    """Delete the entries of fnn's cache folder (the folder stays); returns the bytes freed.

    A cache configured in JAX outside fnn is refused: fnn never deletes a folder it did not pick.
    With the cache off there is nothing to delete and clear() returns 0.
    """
    folder = directory()
    if folder is None:
        foreign = _setting("jax_compilation_cache_dir")
        if foreign:
            raise FnnValueError(
                f"JAX's compilation cache at {foreign} was configured outside fnn, so "
                "fnn.cache.clear() leaves it alone; delete its files yourself if you mean to"
            )
        return 0
    freed = 0
    for path in _entries(folder):
        size = _size(path)
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:  # another process deleted it first
            continue
        freed += size
    return freed


def enable(path: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Cache compiled programs in `path` (default: `default_directory()`); returns the folder.

    A folder that cannot be written leaves the cache off, with one RuntimeWarning; returns None.
    Refused (FnnValueError) while a cache configured in JAX outside fnn is in use.
    """
    global _directory, _saved_min_compile_time
    foreign = _setting("jax_compilation_cache_dir")
    if foreign and foreign != str(_directory):
        raise FnnValueError(
            f"JAX's compilation cache is already configured at {foreign}; fnn will not replace "
            'it. To use fnn\'s instead, unset it first: jax.config.update("jax_compilation_cache_dir", '
            "None)"
        )
    if not _setting("jax_enable_compilation_cache"):
        raise FnnValueError(
            "JAX's compilation cache is switched off (jax_enable_compilation_cache=False); "
            'turn it on first with jax.config.update("jax_enable_compilation_cache", True)'
        )
    folder = default_directory() if path is None else _absolute(path)
    problem = _unwritable(folder)
    if problem:
        disable()
        warnings.warn(
            f"fnn's compilation cache is off: cannot write to {folder} ({problem}). Set FNN_CACHE_DIR "
            "to a writable folder to keep compiled programs between runs, or FNN_CACHE=off to "
            "silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    _install_atomic_writes()
    if _saved_min_compile_time is None:
        _saved_min_compile_time = _setting("jax_persistent_cache_min_compile_time_secs")
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        # fnn's programs compile in well under JAX's 1 s threshold, but a fresh process runs
        # dozens of them. jax_persistent_cache_min_entry_size_bytes stays at JAX's 0: any size.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    _directory = folder
    jax_compilation_cache.reset_cache()  # JAX opens its cache once, at the next compile: this folder
    return folder


def disable() -> None:
    """Turn fnn's cache off for the rest of the process; its files stay, and a JAX cache
    configured outside fnn is left as it is."""
    global _directory, _saved_min_compile_time
    if directory() is not None:
        jax.config.update("jax_compilation_cache_dir", None)
        jax_compilation_cache.reset_cache()
    if _saved_min_compile_time is not None:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", _saved_min_compile_time)
        _saved_min_compile_time = None
    _directory = None


def configure() -> pathlib.Path | None:
    """What `import fnn` runs: enable(), unless FNN_CACHE is off or JAX's cache is set up (or
    switched off) outside fnn."""
    setting = os.environ.get("FNN_CACHE", "").strip().lower()
    if (
        setting in _OFF_VALUES
        or _setting("jax_compilation_cache_dir")
        or os.environ.get("JAX_COMPILATION_CACHE_DIR")
        or not _setting("jax_enable_compilation_cache")
    ):
        return None
    if setting not in _ON_VALUES:
        warnings.warn(
            f"FNN_CACHE={os.environ['FNN_CACHE']!r} is not one of on/off (or 1/0, true/false, yes/no); "
            "the compilation cache stays on",
            RuntimeWarning,
            stacklevel=2,
        )
    try:
        return enable()
    except RuntimeError as e:  # pathlib found no home folder
        warnings.warn(
            f"fnn's compilation cache is off: {e}. Set FNN_CACHE_DIR to a writable folder, or "
            "FNN_CACHE=off to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


# --------------------------------------------------------------------------- helpers
def _setting(name: str):
    """JAX's current value of the config option `name` (jax.config makes these attributes at run
    time, so a type checker cannot see them)."""
    return getattr(jax.config, name)


def _absolute(path: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(os.path.abspath(os.path.expanduser(path)))  # a later chdir moves nothing


def _unwritable(folder: pathlib.Path) -> str | None:
    """Why `folder` cannot hold the cache (it is created if missing), or None if it can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, suffix=_TEMP_SUFFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    return None


def _entries(folder: pathlib.Path) -> list[pathlib.Path]:
    try:
        children = list(folder.iterdir())
    except OSError:
        return []
    return [p for p in children if p.name.endswith(_ENTRY_SUFFIXES + (_TEMP_SUFFIX,)) or p.name in _XLA_ENTRIES]


def _size(path: pathlib.Path) -> int:
    try:
        if path.is_dir() and not path.is_symlink():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


# --------------------------------------------------------------------------- atomic entries
# JAX's own file cache (jax._src.lru_cache.LRUCache, jax 0.10) writes an entry with a plain
# Path.write_bytes into its final name, with no lock unless a size limit is set (which needs the
# filelock package). A process reading while another writes can see half an entry, and a
# process killed mid-write leaves a truncated one that JAX never rewrites (its put skips keys
# already on disk) and warns about in every later run. So fnn's own folder gets the cache below:
# JAX's layout, each entry written to a temporary file and renamed onto its name with
# os.replace, which is atomic: a reader sees no entry or a whole one, and two processes writing
# one key both succeed (they compiled the same program). It plugs in through JAX's private
# factory get_file_cache; a JAX without it keeps its own cache.
class _AtomicFileCache(_CacheInterface):
    def __init__(self, path: str):
        self._path = pathlib.Path(path)
        self._path.mkdir(parents=True, exist_ok=True)
        self._warned = False

    def get(self, key: str) -> bytes | None:
        try:
            return (self._path / f"{key}-cache").read_bytes()
        except OSError:  # missing or unreadable: a miss either way
            return None

    def put(self, key: str, value: bytes) -> None:
        # Written even over an existing entry: JAX writes only after a read failed, so a corrupt
        # entry (a disk error, say) heals at the next compile instead of warning forever.
        temp = self._path / f".{key}.{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"
        try:
            # os.open with 0o666, as JAX's write_bytes: the umask decides who may read the entry
            with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
                f.write(value)
            os.replace(temp, self._path / f"{key}-cache")
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if not self._warned:  # once, not once per program (JAX's own cache warns every time)
                self._warned = True
                warnings.warn(
                    f"fnn's compilation cache could not write to {self._path} ({type(e).__name__}: "
                    f"{e.strerror or e}); programs still run but are not kept. Set FNN_CACHE_DIR to a "
                    "writable folder, or FNN_CACHE=off.",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def clear(self) -> None:  # JAX's interface; fnn.cache.clear() is the one to call
        pass


class _AtomicFileCacheFactory:
    """JAX's get_file_cache(path) -> (cache, path), giving fnn's folder the atomic cache above."""

    fnn_atomic = True  # marks JAX's factory as replaced already (a reloaded fnn.cache must not wrap it twice)

    def __init__(self, original):
        self.original = original

    def __call__(self, path: str):
        if (
            _directory is not None
            and path == str(_directory)
            and _setting("jax_compilation_cache_max_size") == -1
            and not _setting("jax_compilation_cache_check_contents")
        ):
            return _AtomicFileCache(path), path
        return self.original(path)  # any other folder, a size limit or content checks: JAX's own cache


def _install_atomic_writes() -> None:
    if _jax_cache_internals is None:
        return
    original = getattr(_jax_cache_internals, "get_file_cache", None)
    if original is None or getattr(original, "fnn_atomic", False):
        return
    _jax_cache_internals.get_file_cache = _AtomicFileCacheFactory(original)
