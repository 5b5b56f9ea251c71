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
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _compile, _validate, engine, models, optim
from fnn import callbacks as _callbacks
from fnn.errors import FnnTypeError, FnnValueError
from fnn.layers import DenseParams
from fnn.trainer import Trainer

__all__ = ["SweepResult", "sweep"]

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
    snapshots: Any = None  # with Snapshots(every=k): leaves (n_rates, n_seeds, 1 + epochs // k, ...), nan after a stop
    snapshot_epochs: tuple | None = None

    def run(self, rate_index: int, seed_index: int):
        """The params of one run, as fit returns them."""
        return jax.tree.map(lambda leaf: leaf[rate_index, seed_index], self.params)

    def best(self):
        """(learning_rate, seed, params) of the run with the lowest score (validation loss if given)."""
        if np.all(np.isnan(self.score)):
            raise FnnValueError("every run of the sweep diverged; try smaller learning rates")
        i, j = np.unravel_index(np.nanargmin(self.score), self.score.shape)
        return self.learning_rates[i], self.seeds[j], self.run(int(i), int(j))


def sweep(
    model: models.Sequential,
    x,
    y,
    *,
    optimizer: Callable[[Any], optim.Optimizer],
    learning_rates: Sequence[float],
    seeds: Sequence[int] = (0,),
    loss: str | None = None,
    epochs: int = 100,
    batch_size: int = 32,
    validation_data=None,
    shuffle: bool = True,
    callbacks: Any = (),
) -> SweepResult:
    """Train len(learning_rates) × len(seeds) networks in one compiled call.

    optimizer: learning_rate -> Optimizer, e.g. `lambda lr: fnn.optim.momentum(lr, 0.9)`; it must
    build optimizers of one kind for every rate (fnn's own do: the rate is a number in the state).
    callbacks: compiled ones only (EarlyStopping, TerminateOnNaN, TargetLoss, Snapshots, ...), each
    run with its own state. The other arguments are fit's.

    Example:
        >>> runs = fnn.sweep(model, x, y, optimizer=lambda lr: fnn.optim.momentum(lr, 0.9),
        ...                  learning_rates=[0.01, 0.1, 1.0], seeds=[0, 1], epochs=5)
        >>> runs.history["loss"].shape
        (3, 2, 5)
    """
    if not callable(optimizer) or isinstance(optimizer, tuple):
        raise FnnTypeError(
            "optimizer must be a function learning_rate -> Optimizer, e.g. lambda lr: fnn.optim.momentum(lr, 0.9)"
        )
    rates = _sequence(learning_rates, "learning_rates")
    rates = tuple(_validate.real(r, f"learning_rates[{i}]", low=0, low_open=True) for i, r in enumerate(rates))
    seeds = tuple(_validate.integer(s, f"seeds[{i}]", minimum=0) for i, s in enumerate(_sequence(seeds, "seeds")))
    models.check_model(model)
    epochs = _validate.count(epochs, "epochs", minimum=0)
    xs, _ = _validate.features(x, "x")
    n_in = xs.shape[1]
    opts = [optim.check_optimizer(optimizer(r), f"optimizer(learning_rates[{i}])") for i, r in enumerate(rates)]
    if any(o.update != opts[0].update for o in opts):
        raise FnnValueError(
            "optimizer(learning_rate) built optimizers of different kinds for different rates; "
            "a sweep needs one kind whose numbers differ (e.g. lambda lr: fnn.optim.adam(lr)); "
            "for a hand-written optimizer, build its update function once and reuse it"
        )
    trainers = [
        Trainer(model, loss=loss, optimizer=o, batch_size=batch_size, shuffle=shuffle, callbacks=callbacks)
        for o in opts
    ]
    if trainers[0].host:
        raise FnnValueError(
            f"a sweep runs compiled callbacks only; {[type(c).__name__ for c in trainers[0].host]} "
            "run on the host: use fit for them"
        )
    trainer = trainers[0]
    states = [t.init(model.init(jax.random.key(s), n_in), key=jax.random.key(s)) for t in trainers for s in seeds]
    data = trainer.data(states[0], x, y, validation_data=validation_data)
    spec = trainer.spec_for(data)._replace(small_layers=False)  # batched over runs, matmuls beat broadcast sums
    names = spec.log_names(data.x_val is not None)
    for rule in trainer.rules:
        rule.check(names, states[0].opt_state)
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)  # rate-major: run = rate_index · n_seeds + seed
    outcome = _train(spec, stacked, data, epochs, names)
    return _result(trainer, outcome, rates, seeds, epochs, states[0])


@_compile.jit(static_argnums=0)
def _runs(spec: engine.Spec, states, data, epochs, max_steps):
    """The engine's run vmapped over stacked states and their epoch counts; data shared."""
    return jax.vmap(functools.partial(engine.run, spec), in_axes=(0, None, 0, None))(states, data, epochs, max_steps)


class _Outcome(NamedTuple):
    state: engine.TrainState  # every leaf with a leading runs axis
    history: dict  # name -> (runs, epochs)
    records: list  # per run, what its compiled callbacks kept
    reasons: np.ndarray  # per run: 1 + the index of the rule that stopped it, 0 if none


def _train(spec, state, data, epochs, names) -> _Outcome:
    """Call the vmapped run until every run has done `epochs` epochs or stopped; one sync per call."""
    n_runs = state.epoch.shape[0]
    dtype = np.dtype(data.x.dtype)
    history = {k: np.full((n_runs, epochs), np.nan, dtype) for k in names}
    records: list = [{} for _ in range(n_runs)]
    done = np.zeros(n_runs, np.int64)
    stopped = np.zeros(n_runs, bool)
    reasons = np.zeros(n_runs, np.int64)
    limits = [r.max_epochs_per_call() for r in spec.callbacks]
    per_call = min([engine.CHUNK] + [m for m in limits if m])
    if any(isinstance(r, _callbacks.Snapshots) for r in spec.callbacks):
        first = jax.device_get(state.params)
        for i in range(n_runs):
            records[i]["snapshots"] = [jax.tree.map(lambda a, i=i: a[i], first)]
            records[i]["snapshot_epochs"] = [0]
    while ((done < epochs) & ~stopped).any():
        left = np.where(stopped, 0, np.minimum(epochs - done, per_call)).astype(np.int32)  # a stopped run stays
        new, record = _runs(spec, state, data, left, None)
        host = jax.device_get(record)
        ran = np.asarray(host.epochs)
        for i in range(n_runs):
            if stopped[i]:
                continue
            n = int(min(ran[i], epochs - done[i]))
            for name, h in history.items():
                h[i, done[i] : done[i] + n] = host.history[name][i, :n]
            for rule, buffer in zip(spec.callbacks, host.buffers):
                if buffer is not None:
                    rule.collect(records[i], jax.tree.map(lambda a, i=i: a[i], buffer), int(done[i]), n, None)
            stopped[i] = bool(host.stopped[i])
            reasons[i] = int(host.reason[i]) if stopped[i] else 0
        done = done + ran
        state = new
    return _Outcome(state, history, records, reasons)


def _sequence(values, name):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise FnnTypeError(f"{name} must be a list, got {type(values).__name__}")
    values = list(np.asarray(values).tolist()) if hasattr(values, "shape") else list(values)
    if not values:
        raise FnnValueError(f"{name} must not be empty")
    return values


def _result(trainer, outcome: _Outcome, rates, seeds, epochs, first) -> SweepResult:
    shape = (len(rates), len(seeds))
    state = outcome.state
    host = jax.device_get(state)
    run = np.asarray(host.epoch)
    reasons = np.array(["epochs" if r == 0 else trainer.rules[r - 1].reason for r in outcome.reasons], dtype=object)
    diverged = np.array(
        [r > 0 and isinstance(trainer.rules[r - 1], _callbacks.TerminateOnNaN) for r in outcome.reasons], bool
    ).reshape(run.shape)
    params = _callbacks.final_params(trainer.rules, state.callbacks, state.params)
    history = {k: h.reshape(shape + (epochs,)) for k, h in outcome.history.items()}
    monitor = outcome.history["val_loss" if "val_loss" in outcome.history else "loss"]
    at = run - 1
    for rule, rule_state in zip(trainer.rules, host.callbacks):
        if isinstance(rule, _callbacks.EarlyStopping) and rule.restore_best_weights:
            at = np.where(np.asarray(rule_state.best_epoch) >= 0, np.asarray(rule_state.best_epoch), at)
    if epochs:
        score = np.take_along_axis(monitor, np.clip(at, 0, epochs - 1)[:, None], axis=-1)[:, 0]
    else:
        score = np.full(run.shape, np.nan)
    score = np.where(diverged | (run == 0), np.nan, score)
    snapshots = snapshot_epochs = None
    if any(isinstance(r, _callbacks.Snapshots) for r in trainer.rules):
        k = next(r.every for r in trainer.rules if isinstance(r, _callbacks.Snapshots))
        snapshot_epochs = tuple(range(0, epochs // k * k + 1, k))
        slots = len(snapshot_epochs)
        template = jax.device_get(first.params)
        filled = []
        for record in outcome.records:
            kept = record.get("snapshots", [])
            rows = [jax.tree.map(lambda a: np.full(a.shape, np.nan, a.dtype), template)] * slots
            rows = list(kept[:slots]) + rows[len(kept[:slots]) :]
            filled.append(jax.tree.map(lambda *a: np.stack(a), *rows))
        snapshots = _grid(jax.tree.map(lambda *a: np.stack(a), *filled), shape)
    return SweepResult(
        tuple(rates),
        tuple(seeds),
        _grid(jax.device_get(params), shape),
        history,
        tuple(tuple(r) for r in reasons.reshape(shape).tolist()),
        run.reshape(shape),
        score.reshape(shape),
        snapshots,
        snapshot_epochs,
    )


def _grid(params, shape):
    """Host params with a leading runs axis -> device params with leading (n_rates, n_seeds) axes."""
    return jax.device_put(
        tuple(DenseParams(w.reshape(shape + w.shape[1:]), b.reshape(shape + b.shape[1:])) for w, b in params)
    )
