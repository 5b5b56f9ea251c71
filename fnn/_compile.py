"""How fnn compiles its own programs: `jax.jit` with XLA options for fnn's programs alone.

XLA:CPU's newer fusion emitters cost fnn's training run dearly on CPU (jaxlib 0.10, one run on a
2-core machine, the 784-1024-1024-10 network): compiling took 3.4 s and raised the process's peak
memory by 120 MB, against 1.0 s and 6 MB with `xla_cpu_use_fusion_emitters=False`, and a step took
21 ms against 10 ms; small networks ran within ±8% either way. So fnn's programs are compiled
with that option — passed per program (jit's compiler_options), never set globally: other code
in the process compiles as JAX configures it. A jaxlib that no longer knows the option compiles
fnn's programs without it (the first compile that refuses it switches every program back).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["OPTIONS", "jit"]

OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}
_refused: list[bool] = [False]


@functools.cache
def _on_cpu() -> bool:
    return jax.default_backend() == "cpu"


class _Program:
    """jax.jit(fun, compiler_options=OPTIONS), falling back to plain jax.jit if XLA refuses them."""

    def __init__(self, fun: Callable, kwargs: dict):
        self._with = jax.jit(fun, compiler_options=OPTIONS, **kwargs)
        self._without = jax.jit(fun, **kwargs)
        functools.update_wrapper(self, fun)

    @property
    def _jit(self):
        return self._without if _refused[0] or not _on_cpu() else self._with

    def __call__(self, *args, **kwargs):
        try:
            return self._jit(*args, **kwargs)
        except Exception as e:  # an XLA that no longer has the option: compile as JAX does
            if _refused[0] or not any(name in str(e) for name in OPTIONS):
                raise
            _refused[0] = True
            return self._without(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._jit.lower(*args, **kwargs)


def jit(fun: Callable | None = None, **kwargs) -> Any:
    """jax.jit for fnn's programs (see the module docstring); usable as a decorator with jit's keywords."""
    if fun is None:
        return lambda f: _Program(f, kwargs)
    return _Program(fun, kwargs)
