"""The host side of a run: Ctrl-C, waiting for the device without going deaf to signals, pacing
the compiled calls by time, the compile time JAX reports, devices, and the checks of a Trainer's
arguments. Nothing here is traced."""

from __future__ import annotations

import concurrent.futures
import signal
import threading
import warnings
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import monitoring
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fnn import _validate, optim
from fnn import callbacks as fnn_callbacks
from fnn.errors import FnnTypeError, FnnValueError

CALL_SECONDS = 0.25  # the host hands control back about this often
FIRST_CALL_STEPS = 8  # the first call (which may compile) runs at most this many steps


class Interrupts:
    """SIGINT during a run: the first sets a flag (the run stops at the end of its epoch), a second
    raises KeyboardInterrupt. Outside the main thread signals cannot be caught: nothing changes."""

    def __init__(self):
        self.count = 0
        self._previous: Any = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


_waiter = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fnn-wait")


def wait(tree) -> None:
    """Block until a result is ready. The blocking happens on a helper thread and the main thread
    waits on a lock, which signals interrupt: Ctrl-C is heard at once, not when the device finishes."""
    _waiter.submit(jax.block_until_ready, tree).result()


class Pace:
    """How many steps the next call runs so that it lasts about CALL_SECONDS: a call costs a + b·steps
    (a: the epoch's shuffle, recomputed by each call, and the dispatch), fitted to the last two calls
    after the first (which also pays for its first run). Where a alone nears CALL_SECONDS (the
    shuffle of millions of rows, say), a call steps for as long as its overhead: about 2a."""

    def __init__(self):
        self.calls: list[tuple[int, float]] = []
        self.first = True

    def took(self, steps: int, seconds: float) -> None:
        if self.first:
            self.first = False
        elif steps:
            self.calls = [*self.calls[-1:], (steps, seconds)]

    def next(self) -> int:
        if self.first:
            return FIRST_CALL_STEPS
        if not self.calls:
            return FIRST_CALL_STEPS * 4
        (s1, t1), (s2, t2) = self.calls[0], self.calls[-1]
        if s1 != s2 and t2 > t1:
            b = (t2 - t1) / (s2 - s1)
            a = max(t1 - b * s1, 0.0)
        else:
            a, b = 0.0, t2 / s2
        wanted = max(CALL_SECONDS - a, a) / max(b, 1e-9)
        return int(max(1, min(wanted, 4 * s2)))  # grow at most 4× a call: the fit may be off


# --------------------------------------------------------------------------- the trainer
# --------------------------------------------------------------------------- devices
def mesh(devices):
    """None, or a 1-d data-parallel Mesh over `devices` (a list of jax devices or a Mesh with a "data" axis)."""
    if devices is None:
        return None
    if isinstance(devices, Mesh):
        if "data" not in devices.axis_names:
            raise FnnValueError(
                f"devices= Mesh needs an axis named 'data' to split batches over, it has {devices.axis_names}"
            )
        return devices
    devices = list(devices) if isinstance(devices, (list, tuple)) else None
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise FnnTypeError("devices must be a non-empty list of jax devices (e.g. jax.devices()) or a Mesh")
    if len(set(devices)) != len(devices):
        raise FnnValueError(f"devices lists a device more than once ({devices}); pass each device once")
    return Mesh(np.array(devices), ("data",))


def spans_processes(mesh) -> bool:
    return mesh is not None and any(d.process_index != jax.process_index() for d in mesh.devices.flat)


def verbosity(verbose) -> int:
    """0, 1 or 2 from verbose=0/1/2, True/False or "auto" (1 on a terminal, as Keras' "auto", else 0)."""
    if verbose == "auto":
        import sys

        return 1 if hasattr(sys.stdout, "isatty") and sys.stdout.isatty() else 0
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    return min(_validate.count(verbose, "verbose", minimum=0), 2)


# --------------------------------------------------------------------------- compile time, as JAX reports it
_COMPILE_EVENTS = frozenset(  # tracing, lowering and compiling: what a first call spends before it runs
    f"/jax/core/compile/{name}_duration" for name in ("jaxpr_trace", "jaxpr_to_mlir_module", "backend_compile")
)
compile_seconds = [0.0]  # the seconds JAX has spent tracing, lowering and compiling, so far


def _on_duration(event: str, seconds: float, **kwargs: Any) -> None:
    if event in _COMPILE_EVENTS:
        compile_seconds[0] += seconds


monitoring.register_event_duration_secs_listener(cast(Any, _on_duration))


def replicate(mesh, tree):
    """Each process's identical copy of `tree` as global arrays replicated over the mesh."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def one(leaf):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(one(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        value = np.asarray(jax.device_get(leaf))
        return jax.make_array_from_callback(value.shape, replicated, lambda index: value[index])

    return jax.tree.map(one, tree)


_SEEN_CODE: dict = {}  # code object of a user's update function -> the function object last seen with it
_WARNED: set = set()


def warn_if_rebuilt(update) -> None:
    """A user's update is part of the program's structure (by identity): the same code arriving as a
    new closure compiles anew. Say so once."""
    code = getattr(update, "__code__", None)
    if code is None or code in _WARNED:
        return
    seen = _SEEN_CODE.get(code)
    _SEEN_CODE[code] = update
    if seen is not None and seen is not update:
        _WARNED.add(code)
        warnings.warn(
            f"the optimizer's update function {getattr(update, '__qualname__', update)!r} is a new function object "
            "with the same code as an earlier one: each new one compiles the run anew. Build the optimizer once "
            "and reuse it (fnn's own optimizers keep their numbers in their state and never recompile for a new "
            "number).",
            RuntimeWarning,
            stacklevel=4,
        )


def has_numbers(opt_state) -> bool:
    try:
        optim.hyperparameters(opt_state)
        return True
    except (FnnTypeError, FnnValueError):
        return False


def check_callbacks(items) -> list:
    if isinstance(items, fnn_callbacks.Callback):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise FnnTypeError(f"callbacks must be a list of fnn.callbacks objects, got {type(items).__name__}")
    for i, c in enumerate(items):
        if isinstance(c, type) and issubclass(c, fnn_callbacks.Callback):
            raise FnnTypeError(f"callbacks[{i}] is the class {c.__name__}, not an instance: write {c.__name__}(...)")
        if not isinstance(c, fnn_callbacks.Callback):
            raise FnnTypeError(
                f"callbacks[{i}] must be an fnn.callbacks object (a Rule for the compiled run, or a "
                f"Callback for the host), got {type(c).__name__} {c!r:.60}"
            )
    return list(items)


def check_opt_state(expected, opt_state):
    """Refuse an opt_state unlike `expected` (the optimizer's fresh state for these params), naming
    the first difference."""
    want, want_def = jax.tree_util.tree_flatten_with_path(expected)
    got = jax.tree.leaves(opt_state)
    if jax.tree.structure(opt_state) != want_def:
        raise FnnValueError(
            f"opt_state does not fit the optimizer and params: expected a state of structure "
            f"{want_def}, got {jax.tree.structure(opt_state)}; pass the opt_state of a run "
            "with the same optimizer kind and model (e.g. result.opt_state)"
        )
    for (path, w), g in zip(want, got):
        shape = tuple(np.shape(g))
        if shape != tuple(np.shape(w)):
            raise FnnValueError(
                f"opt_state{jax.tree_util.keystr(path)} has shape {shape}, expected "
                f"{tuple(np.shape(w))} for these params; pass the opt_state of a run of the same model"
            )
        if _validate.is_concrete(g) and not np.isfinite(np.asarray(g, np.float64)).all():
            raise FnnValueError(
                f"opt_state{jax.tree_util.keystr(path)} contains non-finite values; the state is "
                "unusable: start a fresh optimizer state"
            )
    return opt_state
