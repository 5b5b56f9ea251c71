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

What import fnn changes in JAX, and why (`disable()` puts each back):
- jax_compilation_cache_dir: the folder above;
- jax_persistent_cache_min_compile_time_secs: 0 (JAX keeps only programs that took 1 s or more;
  fnn's take less, and a fresh process runs dozens), unless the environment sets it;
- jax_persistent_cache_enable_xla_caches: "none", unless the environment sets it. JAX's default
  puts XLA's GPU autotuning results in the cache folder, and the folder's path then enters every
  program's key, on CPU too: a moved or copied cache would miss everything. fnn's key is
  independent of the folder; on GPU, XLA autotunes a new program's fusions again (a compiled
  program is still loaded from the cache, autotuned);
- the file store JAX uses for that folder (through JAX's private `get_file_cache`): fnn's own,
  `fnn._cache_store`. No other folder, and no program's result, is affected.

What the cache guarantees (each tested in a fresh process against a run with the cache off):
- Every entry is verified before JAX reads a byte of it: a sha256 digest over the program's key
  and the entry's bytes. A truncated, zeroed, bit-flipped (compressed or not), random, swapped,
  special (FIFO, device, symlink: never followed, never blocked on) or foreign entry is a miss:
  the program compiles again and the entry is replaced, with at most one RuntimeWarning per
  process naming the file. Results are bitwise those of a run without the cache.
- A folder only its user can write: created 0700, entries 0600. A folder owned by another user,
  writable by group or others, or a symlink, is not used (one warning naming it and the fix),
  because whoever can write it could plant a valid entry: the digest proves integrity, not
  authorship.
- Bounded: FNN_CACHE_MAX_BYTES (default 1 GiB) with least-recently-used eviction after each write.
- `clear()` deletes only fnn's entries, recognised by their format (never by a file name), and
  `info()` counts exactly those.
fnn's own programs are also kept whole, by a key fnn computes before tracing (fnn._executables),
so a warm process loads them without tracing or lowering; the same guarantees hold for them.
Its limits: a JAX without the private hook uses JAX's own file cache (none of the above); the
entry's program is trusted once it is verified, so the folder must stay yours.

Example:
    >>> import tempfile
    >>> folder = fnn.cache.enable(tempfile.mkdtemp())  # `import fnn` did this with ~/.cache/fnn/jax
    >>> info = fnn.cache.info()  # "files" counts the programs kept, "bytes" their size
    >>> info["enabled"], info["directory"] == folder, sorted(info)
    (True, True, ['bytes', 'directory', 'enabled', 'files', 'max_bytes'])
    >>> fnn.cache.disable()
"""

from __future__ import annotations

import os
import pathlib
import stat
import sys
import tempfile
import warnings

import jax
from jax.experimental.compilation_cache import compilation_cache as jax_compilation_cache

from fnn import _cache_store
from fnn.errors import FnnValueError

try:  # private: where JAX makes its file cache
    from jax._src import compilation_cache as _jax_cache_internals
except ImportError:  # another JAX: its own cache is used as it is
    _jax_cache_internals = None

__all__ = [
    "DEFAULT_MAX_BYTES",
    "clear",
    "configure",
    "default_directory",
    "directory",
    "disable",
    "enable",
    "info",
    "max_bytes",
]

_OFF_VALUES = ("off", "0", "false", "no")
_ON_VALUES = ("on", "1", "true", "yes", "")

_TEMP_SUFFIX = ".fnn-tmp"  # the probe that enable() writes to test the folder
DEFAULT_MAX_BYTES = 1 << 30
_XLA_CACHES_OFF = "none"

_directory: pathlib.Path | None = None  # the folder fnn configured; None while it configured none
_saved: dict[str, object] = {}  # JAX's settings before fnn changed them, for disable()


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


def max_bytes() -> int:
    """The cache's bound: FNN_CACHE_MAX_BYTES (an integer number of bytes), else 1 GiB."""
    value = os.environ.get("FNN_CACHE_MAX_BYTES", "").strip()
    if not value:
        return DEFAULT_MAX_BYTES
    try:
        bound = int(float(value))  # 1073741824 or 1e9
    except (ValueError, OverflowError):
        bound = -1
    if bound <= 0:
        warnings.warn(
            f"FNN_CACHE_MAX_BYTES={value!r} is not a positive number of bytes; the cache keeps its "
            f"default bound of {DEFAULT_MAX_BYTES} bytes (1 GiB)",
            RuntimeWarning,
            stacklevel=2,
        )
        return DEFAULT_MAX_BYTES
    return bound


def info() -> dict:
    """{"directory": Path | None, "enabled": bool, "files": int, "bytes": int, "max_bytes": int}.

    `files` counts fnn's entries (compiled programs); `bytes` is exactly what clear() would delete.
    """
    folder = directory()
    found = list(_cache_store.entries(folder)) if folder is not None else []
    return {
        "directory": folder,
        "enabled": folder is not None,
        "files": len(found),
        "bytes": sum(size for _, size, _ in found),
        "max_bytes": max_bytes(),
    }


def clear() -> int:
    """Delete fnn's entries in its cache folder (the folder and any other file stay); returns the
    bytes freed.

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
    for path, size, _ in _cache_store.entries(folder):
        try:
            path.unlink()
        except OSError:  # another process deleted it first
            continue
        freed += size
    return freed


def enable(path: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Cache compiled programs in `path` (default: `default_directory()`); returns the folder.

    A folder that cannot be written leaves the cache off, with one RuntimeWarning; returns None.
    Refused (FnnValueError) while a cache configured in JAX outside fnn is in use.
    """
    global _directory
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
    problem = _unusable(folder)
    if problem:
        disable()
        warnings.warn(
            f"fnn's compilation cache is off: {problem}. Set FNN_CACHE_DIR to a folder of your own "
            "to keep compiled programs between runs, or FNN_CACHE=off to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    _install_store()
    # The settings the module docstring lists; jax_persistent_cache_min_entry_size_bytes stays at
    # JAX's 0 (any size). A setting the environment makes is the user's: left as it is.
    for name, value in (
        ("jax_persistent_cache_min_compile_time_secs", 0.0),
        ("jax_persistent_cache_enable_xla_caches", _XLA_CACHES_OFF),
    ):
        if name.upper() not in os.environ:
            _saved.setdefault(name, _setting(name))
            jax.config.update(name, value)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    _directory = folder
    jax_compilation_cache.reset_cache()  # JAX opens its cache once, at the next compile: this folder
    return folder


def disable() -> None:
    """Turn fnn's cache off for the rest of the process; its files stay, and a JAX cache
    configured outside fnn is left as it is."""
    global _directory
    if directory() is not None:
        jax.config.update("jax_compilation_cache_dir", None)
        jax_compilation_cache.reset_cache()
    for name, value in _saved.items():
        jax.config.update(name, value)
    _saved.clear()
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


def _unusable(folder: pathlib.Path) -> str | None:
    """Why `folder` must not hold the cache (it is created, 0700, if missing), or None if it may."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(folder):
            folder.mkdir(mode=0o700)
        st = os.lstat(folder)
    except OSError as e:
        return f"cannot create {folder} ({type(e).__name__}: {e.strerror or e})"
    if stat.S_ISLNK(st.st_mode):
        return f"{folder} is a symbolic link, which fnn does not follow (point FNN_CACHE_DIR at the folder itself)"
    if not stat.S_ISDIR(st.st_mode):
        return f"{folder} is not a folder"
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return f"{folder} belongs to another user (uid {st.st_uid}), who could plant programs in it"
    if st.st_mode & 0o022 and sys.platform != "win32":
        return (
            f"other users can write to {folder} (mode {stat.S_IMODE(st.st_mode):o}) and could plant programs "
            f"in it (`chmod 700 {folder}` makes it yours alone)"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=folder, suffix=_TEMP_SUFFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"cannot write to {folder} ({type(e).__name__}: {e.strerror or e})"
    return None


# --------------------------------------------------------------------------- fnn's store in JAX
# JAX's own file cache (jax._src.lru_cache.LRUCache, jax 0.10) reads whatever file has the key's
# name and hands it to its decompressor and executable loader: one flipped bit crashed processes
# or changed results. fnn's folder gets fnn._cache_store.Store instead, through JAX's private
# factory get_file_cache; a JAX without it keeps its own cache (and none of the guarantees).
class _StoreFactory:
    """JAX's get_file_cache(path) -> (cache, path), giving fnn's folder fnn's verified store."""

    fnn_store = True  # marks JAX's factory as replaced already (a reloaded fnn.cache must not wrap it twice)

    def __init__(self, original):
        self.original = original

    def __call__(self, path: str):
        if _directory is None or path != str(_directory):
            return self.original(path)  # any other folder: JAX's own cache
        if _setting("jax_compilation_cache_check_contents"):
            return self.original(path)  # JAX's debugging mode that recompiles to compare: its own cache
        bound = max_bytes()
        jax_bound = _setting("jax_compilation_cache_max_size")
        if jax_bound not in (-1, None) and "FNN_CACHE_MAX_BYTES" not in os.environ:
            bound = int(jax_bound)
        return _cache_store.Store(path, bound), path


def _install_store() -> None:
    if _jax_cache_internals is None:
        return
    original = getattr(_jax_cache_internals, "get_file_cache", None)
    if original is None or getattr(original, "fnn_store", False) or getattr(original, "fnn_atomic", False):
        return
    _jax_cache_internals.get_file_cache = _StoreFactory(original)
