"""One small training run, the same in this process and in a fresh one, for the reproducibility checks.

Everything is float32 explicitly (params, data), so the run means the same thing whether or not
jax_enable_x64 is on. `in_subprocess` runs it in a new interpreter and saves the result with
fnn.save; `same(a, b)` compares two results bitwise.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def run(seed: int = 0, fit_seed: int = 7, epochs: int = 3):
    """init with key(seed), then fit with key(fit_seed): {"init", "params", "history"}."""
    import jax
    import jax.numpy as jnp

    import fnn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    model = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(4, activation="tanh"),
                            fnn.Dense(1, activation="sigmoid")])
    params = model.init(jax.random.key(seed), 2, dtype=jnp.float32)
    result = fnn.fit(model, params, x, y, optimizer=fnn.optim.adam(0.05), epochs=epochs, batch_size=5,
                     key=jax.random.key(fit_seed))
    return {"init": params, "params": result.params, "history": result.history}


def same(a, b) -> bool:
    """Bitwise equality of two results: every array leaf byte for byte, every float exactly."""
    import jax

    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if jax.tree.structure(a) != jax.tree.structure(b) or len(la) != len(lb):
        return False
    for u, v in zip(la, lb):
        u, v = np.asarray(u), np.asarray(v)
        if u.dtype != v.dtype or u.shape != v.shape or u.tobytes() != v.tobytes():
            return False
    return True


def in_subprocess(path: str, x64: bool, seed: int = 0, fit_seed: int = 7, timeout: float = 120) -> dict:
    """run() in a fresh interpreter, saved to `path` with fnn.save; returns it loaded.

    The child sets jax_enable_x64 = x64 and takes this process's XLA optimisation setting (the
    compiled code, hence the bits, depend on it); everything else starts afresh.
    """
    import jax

    import fnn

    quick = jax.config.read("jax_disable_most_optimizations")
    code = (f"import sys; sys.path.insert(0, {HERE!r}); import jax; "
            f"jax.config.update('jax_enable_x64', {bool(x64)}); "
            f"jax.config.update('jax_disable_most_optimizations', {bool(quick)}); "
            f"import fnn, _repro; fnn.save({str(path)!r}, _repro.run({seed}, {fit_seed}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          cwd=os.path.dirname(HERE))
    if done.returncode != 0:
        raise RuntimeError(f"the subprocess failed:\n{done.stderr[-3000:]}")
    return fnn.load(path)
