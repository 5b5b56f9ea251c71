"""How fnn compiles its own programs: `jax.jit` with XLA options chosen per program.

XLA:CPU's newer fusion emitters cost small programs dearly and pay off on large ones (jaxlib 0.10,
a 2-core machine, each figure from one interleaved run):
- compiling the seed's 2-4-6-6-4-1 training run took 1.25 s and raised peak memory by 171 MB with
  them, 0.82 s and 30 MB with `xla_cpu_use_fusion_emitters=False`, while a step differed by 2 µs;
- on the 784-1024-1024-10 network an Adam step took 8.4 ms with them and 10.8 ms without (the
  older emitters do not vectorise Adam's square root and division: 2.6 ms against 0.8 ms per
  update of its 1.9 M parameters); SGD + momentum steps differ by 5%.
So fnn's programs compile with that option (`OPTIONS`) unless the program says it is large (a
`large(*args)` predicate given to `jit`: fnn's training runs of at least `LARGE_PARAMS`
parameters), in which case they compile as JAX configures them. Options are passed per program
(jit's compiler_options), never set globally. A jaxlib that no longer knows the option compiles
fnn's programs without it (the first compile that refuses it switches every program back).

A SIGINT that arrives while a program is traced, compiled or dispatched is held and delivered
right after (`deferred_interrupts`): a KeyboardInterrupt raised inside XLA's compiler left the
process to crash at exit (rc 139), while one raised after it is an ordinary Python exception.
Only the call is covered, never the wait for its result: a run still hears Ctrl-C at once.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax

from fnn import _executables

try:  # JAX's own test for "inside a transformation"; a JAX without it: look for tracers in the arguments
    from jax._src.core import trace_state_clean as _trace_state_clean
except ImportError:  # pragma: no cover
    _trace_state_clean = None

__all__ = ["LARGE_PARAMS", "OPTIONS", "deferred_interrupts", "jit", "param_count"]

OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}
LARGE_PARAMS = 1 << 16  # a training run over at least this many parameters compiles as JAX does
_refused: list[bool] = [False]


@functools.cache
def _on_cpu() -> bool:
    return jax.default_backend() == "cpu"


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT for the duration of the block, then hand the last one held to the handler that
    was in place (Python's raises KeyboardInterrupt; a run's stops it). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN, SIG_DFL or a handler set outside Python: left as it is
        yield
        return
    held: list = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            previous(signal.SIGINT, held[-1])


def _nested(args, kwargs) -> bool:
    """Called inside the user's jit, vmap or grad? Then the program is inlined into theirs, whose
    options apply: JAX refuses compiler_options on an inner jit (which is no sign of an old XLA)."""
    if _trace_state_clean is not None:
        return not _trace_state_clean()
    from jax.core import Tracer

    return any(isinstance(leaf, Tracer) for leaf in jax.tree.leaves((args, kwargs)))


def param_count(tree) -> int:
    """The number of entries in a tree's array leaves (from their shapes: nothing is read)."""
    return sum(int(getattr(leaf, "size", 0)) for leaf in jax.tree.leaves(tree))


class _Program:
    """jax.jit(fun, compiler_options=OPTIONS), or plain jax.jit for a large program or when XLA refuses them."""

    def __init__(self, fun: Callable, kwargs: dict, large: Callable[..., bool] | None = None):
        self._with = jax.jit(fun, compiler_options=OPTIONS, **kwargs)
        self._without = jax.jit(fun, **kwargs)
        self._large = large
        self._fun, self._kwargs = fun, kwargs
        functools.update_wrapper(self, fun)

    def _jit(self, args=(), kwargs=None):
        if (
            _refused[0]
            or not _on_cpu()
            or _nested(args, kwargs)
            or (self._large is not None and self._large(*args, **(kwargs or {})))
        ):
            return self._without
        return self._with

    def __call__(self, *args, **kwargs):
        with deferred_interrupts():
            try:
                jitted = self._jit(args, kwargs)
                options = OPTIONS if jitted is self._with else {}
                executable = _executables.compiled(jitted, self._fun, args, kwargs, self._kwargs, options)
                if executable is None:
                    return jitted(*args, **kwargs)
                static = set(_executables.static_numbers(self._kwargs.get("static_argnums"), len(args)))
                return executable(*(a for i, a in enumerate(args) if i not in static), **kwargs)
            except Exception as e:  # an XLA that no longer has the option: compile as JAX does
                if _refused[0] or not any(name in str(e) for name in OPTIONS):
                    raise
                _refused[0] = True
                return self._without(*args, **kwargs)

    def lower(self, *args, **kwargs):
        with deferred_interrupts():
            return self._jit(args, kwargs).lower(*args, **kwargs)


def jit(fun: Callable | None = None, *, large: Callable[..., bool] | None = None, **kwargs) -> Any:
    """jax.jit for fnn's programs (see the module docstring); usable as a decorator with jit's keywords.
    large(*args, **kwargs) -> bool: does this call's program compile as JAX configures it?"""
    if fun is None:
        return lambda f: _Program(f, kwargs, large)
    return _Program(fun, kwargs, large)
