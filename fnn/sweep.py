"""Many runs of the engine as one compiled program: learning rates × seeds, vmapped.

Each (learning rate, seed) pair is exactly the run `fnn.fit` would do with
`params=model.init(jax.random.key(seed), n_in)`, `key=jax.random.key(seed)` and
`optimizer=optimizer(learning_rate)`; the runs are stacked on one leading axis and trained
together, each with its own stopping state, so one diverging run neither stops nor poisons the
others. The learning rates live in the optimizer states, so a sweep over other rates (or another
momentum) runs the same compiled program.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate, engine, models, optim, train
from fnn.errors import FnnTypeError, FnnValueError
from fnn.layers import DenseParams

Array = jax.Array


class SweepResult(NamedTuple):
    """Stacked results: every params leaf and history array leads with (n_rates, n_seeds)."""

    learning_rates: tuple[float, ...]
    seeds: tuple[int, ...]
    params: Any  # tuple of DenseParams, leaves (n_rates, n_seeds, ...)
    history: dict  # name -> (n_rates, n_seeds, epochs) numpy array, nan after a run stopped
    stop_reasons: tuple  # (n_rates, n_seeds) nested tuple of fit's stop_reason strings
    epochs_run: np.ndarray  # (n_rates, n_seeds) ints
    score: np.ndarray  # (n_rates, n_seeds): the returned params' val_loss (else loss); nan if diverged
    snapshots: Any = None  # with record_every=k: leaves (n_rates, n_seeds, epochs // k, ...), nan after a stop
    snapshot_epochs: tuple | None = None

    def run(self, rate_index: int, seed_index: int):
        """The params of one run, as fit returns them."""
        return jax.tree.map(lambda leaf: leaf[rate_index, seed_index], self.params)

    def best(self):
        """(learning_rate, seed, params) of the run with the lowest score (validation loss if given)."""
        if np.all(np.isnan(self.score)):
            raise FnnValueError("every run of the sweep diverged; try smaller learning rates")
        i, j = np.unravel_index(np.nanargmin(self.score), self.score.shape)
        return self.learning_rates[i], self.seeds[j], self.run(i, j)


def sweep(model: models.Sequential, x, y, *, optimizer: Callable[[Any], optim.Optimizer],
          learning_rates: Sequence[float], seeds: Sequence[int] = (0,), loss: str | None = None,
          epochs: int = 100, batch_size: int = 32, validation_data=None, target_loss: float | None = None,
          patience: int | None = None, min_delta: float = 0.0, restore_best: bool = True,
          max_bad_steps: int = 0, shuffle: bool = True, record_every: int | None = None) -> SweepResult:
    """Train len(learning_rates) × len(seeds) networks in one compiled call.

    optimizer: learning_rate -> Optimizer, e.g. `lambda lr: fnn.optim.momentum(lr, 0.9)`; it must
    build optimizers of one kind for every rate (fnn's own do: the rate is a number in the state).
    The other arguments are fit's.

    Example:
        >>> runs = fnn.sweep(model, x, y, optimizer=lambda lr: fnn.optim.momentum(lr, 0.9),
        ...                  learning_rates=[0.01, 0.1, 1.0], seeds=[0, 1], epochs=50)
        >>> runs.history["loss"].shape
        (3, 2, 50)
    """
    if not callable(optimizer) or isinstance(optimizer, tuple):
        raise FnnTypeError("optimizer must be a function learning_rate -> Optimizer, "
                           "e.g. lambda lr: fnn.optim.momentum(lr, 0.9)")
    rates = _sequence(learning_rates, "learning_rates")
    rates = tuple(_validate.real(r, f"learning_rates[{i}]", low=0, low_open=True) for i, r in enumerate(rates))
    seeds = tuple(_validate.integer(s, f"seeds[{i}]", minimum=0) for i, s in enumerate(_sequence(seeds, "seeds")))
    models.check_model(model)
    xs, _ = _validate.features(x, "x")
    n_in = xs.shape[1]
    opts = [optim.check_optimizer(optimizer(r), f"optimizer(learning_rates[{i}])") for i, r in enumerate(rates)]
    if any(o.update != opts[0].update for o in opts):
        raise FnnValueError("optimizer(learning_rate) built optimizers of different kinds for different rates; "
                            "a sweep needs one kind whose numbers differ (e.g. lambda lr: fnn.optim.adam(lr)); "
                            "for a hand-written optimizer, build its update function once and reuse it")
    params0 = model.init(jax.random.key(seeds[0]), n_in)
    setup = train.prepare(model, params0, x, y, loss=loss, optimizer=opts[0], epochs=epochs, batch_size=batch_size,
                          key=jax.random.key(seeds[0]), validation_data=validation_data, validation_split=0.0,
                          target_loss=target_loss, patience=patience, min_delta=min_delta,
                          restore_best=restore_best, max_bad_steps=max_bad_steps, shuffle=shuffle, verbose=0,
                          checkpoint=None, checkpoint_every=None, resume=None, record_every=record_every)
    epochs = _validate.integer(epochs, "epochs", minimum=0)
    config = setup.config._replace(small_layers=False)  # batched over runs, matmuls beat the broadcast sums
    layout, data = config.layout, setup.data
    dtype = data.x.dtype
    starts = [layout.flatten(model.init(jax.random.key(s), n_in, dtype), dtype) for s in seeds]
    # Runs in seed-major order (run = seed_index · n_rates + rate_index): the runs of one seed share
    # its key, so each epoch's shuffle is computed once per seed, not once per run.
    states = [engine.initial_state(config, theta, opt.init(theta), dtype) for theta in starts for opt in opts]
    states = jax.tree.map(lambda *leaves: np.stack([np.asarray(a) for a in leaves]), *states)
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    outcome = _train(config, len(seeds), jax.device_put(states), data._replace(key=keys), setup.settings, epochs)
    return _result(config, outcome, rates, seeds, epochs)


@functools.lru_cache(maxsize=16)
def compiled(config: engine.RunConfig, n_seeds: int):
    """The engine's run vmapped over rates (sharing a key) inside a vmap over seeds; states carry one
    leading runs axis, seed-major; data and numbers are shared."""
    run = engine.make_run(config)
    over_rates = jax.vmap(run, in_axes=(0, None, None, None))
    data_axes = engine.Data(x=None, y=None, w=None, x_val=None, y_val=None, key=0)
    over_seeds = jax.vmap(over_rates, in_axes=(0, data_axes, None, None))

    def runs(state, data, settings, stop_epoch):
        state = jax.tree.map(lambda a: a.reshape((n_seeds, -1) + a.shape[1:]), state)
        out = over_seeds(state, data, settings, stop_epoch)
        return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), out)

    return jax.jit(runs)


class _Outcome(NamedTuple):
    state: engine.State  # every leaf with a leading runs axis
    history: dict  # name -> (runs, epochs)
    snapshots: Any  # params (layout form) with leading (runs, epochs // k), or None


def _train(config, n_seeds, state, data, settings, epochs) -> _Outcome:
    """Call the vmapped run until every run has done `epochs` epochs or stopped; one sync per CHUNK."""
    runs = compiled(config, n_seeds)
    n_runs = state.epoch.shape[0]
    dtype = np.dtype(data.x.dtype)
    history = {k: np.full((n_runs, epochs), np.nan, dtype) for k in config.history_names}
    k = config.record_every
    snapshots = None
    if k:
        snapshots = jax.tree.map(lambda p: np.full((p.shape[0], epochs // k) + p.shape[1:], np.nan, p.dtype),
                                 jax.device_get(state.params))
    done = np.asarray(state.epoch)
    while ((done < epochs) & ~np.asarray(state.stopped)).any():
        state, record = runs(state, data, settings, np.asarray(epochs, np.int32))
        now = np.asarray(state.epoch)
        host = jax.device_get(record)
        for i in range(n_runs):
            for name, h in history.items():
                h[i, done[i]:now[i]] = host.history[name][i, :now[i] - done[i]]
            if k:
                first, n = done[i] // k, int(host.n_snapshots[i])
                jax.tree.map(lambda out, got, i=i: out.__setitem__((i, slice(first, first + n)), got[i, :n]),
                             snapshots, host.snapshots)
        done = now
    return _Outcome(state, history, snapshots)


def _sequence(values, name):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise FnnTypeError(f"{name} must be a list, got {type(values).__name__}")
    values = list(np.asarray(values).tolist()) if hasattr(values, "shape") else list(values)
    if not values:
        raise FnnValueError(f"{name} must not be empty")
    return values


def _result(config, outcome: _Outcome, rates, seeds, epochs) -> SweepResult:
    shape = (len(rates), len(seeds))

    def rate_major(a):  # seed-major runs -> rate-major
        a = np.asarray(a)
        return np.swapaxes(a.reshape((len(seeds), len(rates)) + a.shape[1:]), 0, 1).reshape(a.shape)

    outcome = jax.tree.map(rate_major, jax.device_get(outcome))
    host = outcome.state
    reason = np.asarray(host.reason)
    run = np.asarray(host.epoch)
    diverged = reason == engine.NON_FINITE
    theta = host.params
    keep = np.zeros(run.shape, bool)
    at = run - 1
    for rule, rule_state in zip(config.rules, host.rules[1:]):
        if isinstance(rule, engine.EarlyStopping):
            keep = np.asarray(rule_state[1]) >= 0
            if rule.keep_best:
                theta = _where(keep, rule_state[3], theta)
                at = np.where(keep, np.asarray(rule_state[1]), at)
    theta = _where(diverged, host.rules[0][2], theta)  # as fit: the params its best-scoring epoch started from
    params = _grid(config.layout.unflatten(theta), shape)
    history = {k: h.reshape(shape + (epochs,)) for k, h in outcome.history.items()}
    monitor = outcome.history["val_loss" if config.validate else "loss"]
    score = np.take_along_axis(monitor, np.maximum(at, 0)[:, None], axis=-1)[:, 0] if epochs else np.full(run.shape,
                                                                                                        np.nan)
    score = np.where(diverged | (run == 0), np.nan, score)
    reasons = np.asarray(engine.STOP_REASONS)[reason].reshape(shape)
    snapshots, snapshot_epochs = None, None
    if config.record_every:
        k = config.record_every
        snapshots = _grid(config.layout.unflatten(outcome.snapshots), shape)
        snapshot_epochs = tuple(range(k, epochs // k * k + 1, k))
    return SweepResult(tuple(rates), tuple(seeds), params, history, tuple(tuple(r) for r in reasons.tolist()),
                       run.reshape(shape), score.reshape(shape), snapshots, snapshot_epochs)


def _grid(params, shape):
    """Host params with a leading runs axis -> device params with leading (n_rates, n_seeds) axes."""
    return jax.device_put(tuple(DenseParams(w.reshape(shape + w.shape[1:]), b.reshape(shape + b.shape[1:]))
                                for w, b in params))


def _where(take, new, old):
    """Per run (leading axis): new where take, else old."""
    return jax.tree.map(lambda a, b: np.where(take.reshape(take.shape + (1,) * (np.ndim(a) - 1)), a, b), new, old)
