"""fnn's compiled programs kept whole on disk: a warm process traces, lowers and compiles nothing.

JAX's persistent cache (fnn.cache) is keyed by the lowered program, so a fresh process still
traces and lowers each program before it finds the executable (0.2 s of a warm seed-example
fit). This store keys the executable by what fnn knows before tracing, `key(...)`:

- the program (fnn's function, by module and name) and its static arguments (a run's Spec, a
  model), encoded by `_encode`: numbers, strings, dtypes, tuples, NamedTuples, dataclasses, every
  attribute of fnn's own objects, and fnn's module-level functions; anything else (a user's
  function, a closure, a mesh) and the call is not stored: jax.jit runs it as always;
- each dynamic argument's tree structure, shape, dtype and weak type (a tracer: not stored);
- jit's keywords and XLA options; JAX's configuration (x64, rank promotion, precision, ...);
- fnn's source (a hash of every fnn/*.py), the jax and jaxlib versions, the backend's platform
  and version, the device kind and count, and the CPU (model and flags);

and keeps `jax.experimental.serialize_executable.serialize(compiled)` with its trees and the XLA
compile options JAX built for it (XLA:CPU finds its kernels by them), pickled, in
fnn's cache folder through `fnn._cache_store.Store`: verified by digest before a byte is
unpickled, 0600 files in a folder only its user can write, bounded with the rest of the cache
(and counted and cleared by fnn.cache). A damaged entry is a miss: the program is traced,
lowered and compiled as before, and the entry replaced. The executable is the one JAX would
compile for the same program and options, so results are bitwise those of jax.jit.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pathlib
import pickle
import platform
import sys
import threading
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.core import Tracer

__all__ = ["KEY_PREFIX", "compiled", "cpu_identity", "jax_versions", "key", "source_hash", "static_numbers"]

KEY_PREFIX = "fnn-exe-"
_JIT_KEYWORDS = {"static_argnums", "donate_argnums"}  # the only ones a stored program may use
_REFUSED = object()
_memory: dict[Any, Any] = {}  # this process: a call's signature -> its executable (tracers never reach it)


@functools.cache
def source_hash() -> str:
    """sha256 over fnn's source files (names and bytes): a changed fnn changes every key."""
    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(__file__).parent.rglob("*.py")):
        digest.update(path.name.encode() + b"\x00" + path.read_bytes() + b"\x00")
    return digest.hexdigest()


@functools.cache
def jax_versions() -> str:
    import importlib.metadata

    try:
        jaxlib = importlib.metadata.version("jaxlib")
    except importlib.metadata.PackageNotFoundError:
        jaxlib = "unknown"
    return f"jax {jax.__version__} jaxlib {jaxlib} {jax.devices()[0].client.platform_version}"


@functools.cache
def cpu_identity() -> str:
    """The machine an executable was compiled for: XLA:CPU compiles for the host's instructions."""
    lines = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                name = line.split(":", 1)[0].strip()
                if name in ("model name", "flags", "Features", "CPU part") and line not in lines:
                    lines.append(line)
                if not line.strip() and lines:
                    break  # the first processor's block is enough
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()} {sys.platform} " + "".join(lines)


def _backend() -> str:
    devices = jax.devices()
    client = devices[0].client
    return f"{jax.default_backend()} {client.platform_version} {devices[0].device_kind} x{len(devices)}"


def _config() -> str:
    values = jax.config.values
    skip = ("cache", "log", "explain", "dump", "traceback")  # never change what a program computes
    settings = sorted((k, repr(v)) for k, v in values.items() if not any(s in k for s in skip))
    env = [(k, os.environ.get(k)) for k in ("XLA_FLAGS", "JAX_DISABLE_MOST_OPTIMIZATIONS", "JAX_PLATFORMS")]
    return repr((settings, env))


class _Refused(Exception):
    """This value does not say everything the program depends on: the call is not stored."""


def _encode(value: Any, depth: int = 0) -> str:
    """A stable text for a static argument (the same in every process), or _Refused."""
    if depth > 40:
        raise _Refused
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, np.dtype):
        return f"dtype:{value.str}:{value.name}"
    kind = type(value)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(value, type) and value.__module__.split(".")[0] in ("numpy", "jax", "ml_dtypes"):
        return f"type:{value.__module__}.{value.__qualname__}"  # jnp.float32, np.float64 ...
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple
        return name + "(" + ",".join(_encode(v, depth + 1) for v in value) + ")"
    if isinstance(value, (tuple, list)):
        return name + "[" + ",".join(_encode(v, depth + 1) for v in value) + "]"
    if callable(value) and hasattr(value, "__code__"):  # a plain function: fnn's own, module level
        qualname = getattr(value, "__qualname__", "")
        if not value.__module__.startswith("fnn.") or "<" in qualname or value.__closure__:
            raise _Refused
        return f"fn:{value.__module__}.{qualname}"
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return name + "{" + ",".join(f"{k}={_encode(value[k], depth + 1)}" for k in sorted(value)) + "}"
    if isinstance(value, (dict, frozenset)) or kind.__module__ == "builtins":
        raise _Refused  # an order that may differ, or a builtin object: not worth the risk
    if not kind.__module__.startswith("fnn."):
        raise _Refused
    if dataclasses.is_dataclass(value):
        fields = [getattr(value, f.name) for f in dataclasses.fields(value)]
        return name + "(" + ",".join(_encode(v, depth + 1) for v in fields) + ")"
    state = dict(getattr(value, "__dict__", {}))
    for klass in kind.__mro__:  # every slot too (fnn.schedules' records): more than equality looks at is safe
        for slot in getattr(klass, "__slots__", ()):
            if slot not in ("__weakref__", "__dict__") and hasattr(value, slot):
                state[slot] = getattr(value, slot)
    if not state:
        raise _Refused
    return name + "{" + ",".join(f"{k}={_encode(state[k], depth + 1)}" for k in sorted(state)) + "}"


def _leaf(x: Any) -> str:
    if isinstance(x, Tracer):
        raise _Refused  # called inside another trace: the outer program is what compiles
    sharding = getattr(x, "sharding", None)
    if sharding is not None and len(sharding.device_set) != 1:
        raise _Refused
    if sharding is not None and next(iter(sharding.device_set)) != jax.devices()[0]:
        raise _Refused
    aval = jax.typeof(x)
    return f"{aval}{'~' if getattr(aval, 'weak_type', False) else ''}"


def key(fun: Callable, static: tuple, dynamic: tuple, kwargs: dict, jit_kwargs: dict, options: dict) -> str:
    """The store's key for one call (see the module docstring); raises _Refused if it cannot be made."""
    if set(jit_kwargs) - _JIT_KEYWORDS or jax.config.values.get("jax_disable_jit"):
        raise _Refused
    leaves, tree = jax.tree.flatten((dynamic, kwargs))
    parts = [
        _encode(fun),
        "|".join(_encode(s) for s in static),
        str(tree),
        ",".join(_leaf(x) for x in leaves),
        repr(sorted(jit_kwargs.items())),
        repr(sorted(options.items())),
        _config(),
        source_hash(),
        jax_versions(),
        _backend(),
        cpu_identity(),
    ]
    return KEY_PREFIX + hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _store():
    from fnn import _cache_store, cache

    folder = cache.directory()
    return None if folder is None else _cache_store.Store(folder, cache.max_bytes())


def static_numbers(static_argnums, n_args: int) -> set[int]:
    """The positions of a call's static arguments (jit's static_argnums, negative ones too)."""
    numbers = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums or ())
    return {n % n_args for n in numbers if -n_args <= n < n_args}


def _split(args: tuple, static_argnums) -> tuple[tuple, tuple]:
    numbers = static_numbers(static_argnums, len(args))
    return tuple(a for i, a in enumerate(args) if i in numbers), tuple(
        a for i, a in enumerate(args) if i not in numbers
    )


def compiled(jitted, fun: Callable, args: tuple, kwargs: dict, jit_kwargs: dict, options: dict):
    """The executable for this call, from this process, the store, or compiled (and stored);
    None where the call cannot be stored (then jax.jit runs it as always)."""
    from fnn import cache

    # Opt-in (FNN_EXECUTABLES=on) until a known fault is mended: a warm process of the playground
    # loaded a run that XLA:CPU then refused ("Function slice_bitcast_fusion not found").
    if os.environ.get("FNN_EXECUTABLES", "off") != "on" or cache.directory() is None:
        return None
    static, dynamic = _split(args, jit_kwargs.get("static_argnums"))
    try:  # this process's own signature first: what jax.jit's cache looks at, without the texts
        leaves, tree = jax.tree.flatten((dynamic, kwargs))
        signature = tuple(_quick_leaf(x) for x in leaves)
        quick = (id(jitted), static, tree, signature, _trace_context())
        found = _memory.get(quick)
    except Exception:  # unhashable: the full key decides
        quick, found = None, None
    if found is not None:
        return None if found is _REFUSED else found
    try:
        name = key(fun, static, dynamic, kwargs, jit_kwargs, options)
    except (_Refused, TypeError, ValueError, AttributeError):
        if quick is not None:
            _memory[quick] = _REFUSED  # asked again (a loop under a trace, say): refused at once
        return None
    store = _store()
    payload = store.get(name) if store is not None else None
    if payload is not None:
        try:
            found = _load(payload)
        except Exception:  # an entry of another jaxlib's format, say: compiled again, replaced
            found = None
    if found is None:
        found, compile_options = _compile(jitted, args, kwargs)
        if store is not None and compile_options is not None:
            try:
                entry = (*_serialize(found), compile_options.SerializeAsString())
                store.put(name, pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
            except Exception:  # an executable XLA cannot serialize: it runs, and is not kept
                pass
    if quick is not None:
        _memory[quick] = found
    return found


def _quick_leaf(x) -> tuple:
    """What tells one argument from another within this process (the key's `_leaf`, cheaper)."""
    return (
        type(x),
        getattr(x, "shape", None),
        getattr(x, "dtype", None),
        getattr(x, "weak_type", None),
        (getattr(x, "sharding", None) if isinstance(x, jax.Array) else None),
    )


def _trace_context():
    """JAX's configuration that a trace depends on (what its own jit cache keys on), or the
    public settings where a JAX lacks it."""
    try:
        from jax._src import config

        return config.trace_context()
    except (ImportError, AttributeError):
        return _config()


def _serialize(executable) -> tuple:
    from jax.experimental import serialize_executable

    return serialize_executable.serialize(executable)


def _compile(jitted, args: tuple, kwargs: dict):
    """jitted.lower(...).compile(), and the XLA compile options JAX built for it (None where JAX
    reused a compilation of its own and built none): an executable loads only with its options
    (XLA:CPU finds its kernels by them; loaded with others, a program fails at its first run)."""
    try:
        from jax._src.interpreters import pxla
    except ImportError:  # another JAX: compiled as always, not stored
        return jitted.lower(*args, **kwargs).compile(), None
    built = []
    original = getattr(pxla, "create_compile_options", None)
    if original is None:
        return jitted.lower(*args, **kwargs).compile(), None

    thread = threading.get_ident()

    def create_compile_options(*a, **k):
        options = original(*a, **k)
        if threading.get_ident() == thread:  # another thread's compile is not this program's
            built.append(options)
        return options

    pxla.create_compile_options = create_compile_options
    try:
        executable = jitted.lower(*args, **kwargs).compile()
    finally:
        pxla.create_compile_options = original
    return executable, (built[-1] if len(built) == 1 else None)


def _load(payload: bytes):
    """A stored executable, loaded with the compile options it was built with."""
    import io

    from jax._src.lib import xla_client  # pyright: ignore[reportPrivateImportUsage]
    from jax.experimental import serialize_executable

    blob, in_tree, out_tree, options = pickle.loads(payload)  # verified by its digest: fnn wrote it
    compile_options = xla_client.CompileOptions.ParseFromString(options)
    device = jax.devices()[0]

    class Unpickler(serialize_executable._JaxPjrtUnpickler):
        def persistent_load(self, pid):
            if pid[0] == "exec":
                return self.backend.deserialize_executable(pid[1], self.execution_devices, compile_options)
            return super().persistent_load(pid)

    unloaded, args_info_flat, no_kwargs = Unpickler(io.BytesIO(blob), device.client, [device]).load()
    return jax.stages.Compiled(unloaded.load(), [], in_tree.unflatten(args_info_flat), out_tree, no_kwargs=no_kwargs)
