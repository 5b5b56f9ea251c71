"""One small training run, the same in this process and in a fresh one, for the reproducibility checks.

Everything is float32 explicitly (params, data), so the run means the same thing whether or not
jax_enable_x64 is on. `in_subprocess` runs it in a new interpreter and saves the result with
fnn.save; `run_in_pieces` and `run_resumed` run it in pieces (Trainer.run calls, fit continuing
from result.state); `same(a, b)` compares two results bitwise.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


BATCH_SIZE = 5
LEARNING_RATE = 0.05


def problem(seed: int = 0):
    """(model, params initialised with key(seed), x, y): 24 float32 points, an XOR of signs."""
    import jax
    import jax.numpy as jnp

    import fnn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    model = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(4, activation="tanh"),
                            fnn.Dense(1, activation="sigmoid")])
    return model, model.init(jax.random.key(seed), 2, dtype=jnp.float32), x, y


def run(seed: int = 0, fit_seed: int = 7, epochs: int = 3):
    """init with key(seed), then fit with key(fit_seed): {"init", "params", "history"}."""
    import jax

    import fnn

    model, params, x, y = problem(seed)
    result = fnn.fit(model, params, x, y, optimizer=fnn.optim.adam(LEARNING_RATE), epochs=epochs,
                     batch_size=BATCH_SIZE, key=jax.random.key(fit_seed))
    return {"init": params, "params": result.params, "history": result.history}


def run_in_pieces(seed: int = 0, fit_seed: int = 7, pieces: tuple[int, ...] = (1, 2)):
    """run(seed, fit_seed, sum(pieces)) again as one Trainer.run call per piece, each continuing the
    TrainState of the last: what the run in one go must equal, bit for bit."""
    import jax

    import fnn

    model, params, x, y = problem(seed)
    trainer = fnn.Trainer(model, optimizer=fnn.optim.adam(LEARNING_RATE), batch_size=BATCH_SIZE)
    state = trainer.init(params, key=jax.random.key(fit_seed))
    history: dict = {}
    for epochs in pieces:
        state, part = trainer.run(state, x, y, epochs=epochs)
        for name, values in part.history.items():
            history.setdefault(name, []).extend(values)
    assert int(state.epoch) == sum(pieces), state.epoch
    return {"init": params, "params": state.params, "history": history}


def run_resumed(seed: int = 0, fit_seed: int = 7, first: int = 1, epochs: int = 3):
    """fit for `first` epochs, then fit(initial_state=result.state, epochs=epochs) (no optimizer or
    key given: the state's own): the run of `epochs` epochs in two fits."""
    import jax

    import fnn

    model, params, x, y = problem(seed)
    one = fnn.fit(model, params, x, y, optimizer=fnn.optim.adam(LEARNING_RATE), epochs=first, batch_size=BATCH_SIZE,
                  key=jax.random.key(fit_seed))
    rest = fnn.fit(model, params, x, y, epochs=epochs, batch_size=BATCH_SIZE, initial_state=one.state)
    assert rest.epochs_run == epochs, rest.epochs_run
    history = {name: one.history[name] + rest.history[name] for name in one.history}
    return {"init": params, "params": rest.params, "history": history}


def same(a, b) -> bool:
    """Bitwise equality of two results: the same leaf paths (e.g. ['params'][0].w), every array leaf
    byte for byte, every float exactly. The containers' classes are not compared: fnn.load without
    `like` rebuilds a NamedTuple such as DenseParams as a stand-in class of the same fields."""
    import jax

    pa, pb = jax.tree_util.tree_flatten_with_path(a)[0], jax.tree_util.tree_flatten_with_path(b)[0]
    if [jax.tree_util.keystr(p) for p, _ in pa] != [jax.tree_util.keystr(p) for p, _ in pb]:
        return False
    for (_, u), (_, v) in zip(pa, pb):
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
