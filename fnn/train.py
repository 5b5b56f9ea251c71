"""fit: the Keras-style facade over Trainer — check on the host, `Trainer.run`, return a FitResult.

Every policy is a callback (fnn.callbacks): early stopping, the non-finite guard, learning-rate
reduction, a target loss, snapshots, checkpoints, logs. `initial_state=` continues a run (a
TrainState, or the path of a ModelCheckpoint file); as in Keras (`initial_epoch`), `epochs` then
counts the whole run. With y=None, x may be a stream of batches (fnn.stream).
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate, losses, models, stream
from fnn import callbacks as _callbacks
from fnn._driver import spans_processes, verbosity
from fnn.engine import TrainState
from fnn.errors import FnnTypeError, FnnValueError
from fnn.history import DivergenceInfo, History
from fnn.trainer import Trainer

__all__ = ["FitResult", "fit"]


class FitResult(NamedTuple):
    """What `fit` returns. history maps each name to one float per epoch run.

    params: the params the run returns (EarlyStopping(restore_best_weights=True): the best epoch's;
    after a divergence: TerminateOnNaN's fallback); state: the TrainState to continue from.
    rejected_steps: non-finite steps skipped (TerminateOnNaN(max_bad_steps)); first_rejected:
    (epoch, step) of the first. snapshots: with Snapshots(every=k), the params at epoch 0 and every
    k epochs (each leaf with a leading snapshot axis), snapshot_epochs the epoch counts."""

    params: Any
    opt_state: Any
    history: dict
    stop_reason: str
    epochs_run: int
    best_epoch: int | None
    divergence: DivergenceInfo | None
    rejected_steps: int = 0
    first_rejected: tuple | None = None
    snapshots: Any = None
    snapshot_epochs: tuple | None = None
    state: TrainState | None = None


def fit(
    model: models.Sequential,
    params,
    x,
    y=None,
    *,
    loss: losses.LossLike = None,
    optimizer=None,
    epochs: int = 100,
    batch_size: int = 32,
    key=None,
    validation_data=None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    sample_weight=None,
    class_weight=None,
    callbacks: Any = (),
    verbose: Any = "auto",
    devices=None,
    initial_state=None,
    metrics: Any = (),
) -> FitResult:
    """Train `params` on (x, y) with mini-batch gradient steps; returns the params and the history.

    x: (n, n_in); y: targets in any form the loss accepts. loss: a name (Keras' names too), a record
    (fnn.losses.huber_loss(delta=2.0)) or a callable loss(pred, y) -> (n,) per-sample losses; None
    pairs it with the output layer. optimizer: an fnn.optim optimizer, a name ("adam", "sgd",
    "momentum", "nesterov") or a user's (init, update) pair; None is adam(1e-3) (with
    initial_state: the state's own optimizer numbers). key: a PRNG key or an int seed (shuffling,
    validation_split). Every sample counts each epoch (the last batch may be partial).
    callbacks: fnn.callbacks objects (EarlyStopping, TerminateOnNaN, ReduceLROnPlateau, TargetLoss,
    Snapshots, ModelCheckpoint, CSVLogger, LambdaCallback, your own Rule). verbose: 0, 1 (a bar
    on a terminal), 2 (a line per epoch), or "auto" (1 on a terminal, else 0). sample_weight (n,)
    and class_weight {label: weight} weight each sample's loss: a batch's loss is the mean of
    w·loss over its rows, as in Keras (the metric stays unweighted). devices=jax.devices() (or a Mesh
    with a "data" axis) splits every batch across them. initial_state: a TrainState or a
    ModelCheckpoint path to continue; epochs then counts the whole run. metrics: Keras' names
    ("accuracy"/"acc", "mae"/"mean_absolute_error", "mse"/"mean_squared_error"; for a binary loss
    "precision", "recall", "auc"), each recorded per epoch over the epoch's rows, unweighted
    (history["mae"], with validation data "val_mae"). validation_data: (x_val, y_val) or (x_val,
    y_val, sample_weight_val): val_loss is then the mean of w·loss over the validation rows, as
    Keras weighs. Counts (epochs, batch_size, a callback's patience) take whole floats (10.0);
    verbose takes True/False (1/0).

    Compiles once per structure (model, loss, optimizer kind, shapes, batch size, the compiled
    callbacks' kinds, devices); every number is a runtime value. Ctrl-C stops the run at the end
    of its epoch and returns what was trained (stop_reason "interrupted"); twice aborts.

    Example:
        >>> result = fnn.fit(model, params, x, y, loss="binary_crossentropy", optimizer="adam", epochs=5, key=1)
        >>> result.stop_reason, len(result.history["loss"])
        ('epochs', 5)
    """
    given_optimizer = optimizer is not None
    trainer = Trainer(
        model,
        loss=loss,
        optimizer=optimizer,
        batch_size=batch_size,
        shuffle=shuffle,
        callbacks=callbacks,
        devices=devices,
        metrics=metrics,
    )
    epochs = _validate.count(epochs, "epochs", minimum=0)
    level = verbosity(verbose)
    state = _start(trainer, params, key, initial_state, given_optimizer)
    done = int(state.epoch)
    if done > epochs:
        raise FnnValueError(
            f"initial_state has already run {done} epochs, more than epochs={epochs}; pass "
            f"epochs >= {done} (with initial_state, epochs counts the whole run, as Keras' "
            "initial_epoch does)"
        )
    if y is None and stream.is_stream(x):
        unsupported = dict(
            validation_split=validation_split or None,
            devices=devices,
            sample_weight=sample_weight,
            class_weight=class_weight,
        )
        given = [k for k, v in unsupported.items() if v is not None]
        if given:
            raise FnnValueError(
                f"{', '.join(given)} cannot be used with a stream of batches; the stream decides "
                "the order and split of the data"
            )
        state, history = stream.run(
            trainer, state, x, epochs=epochs - done, validation_data=validation_data, verbose=level
        )
        return _result(trainer, state, history)
    if y is None:
        raise FnnValueError("y is None: pass targets, or pass x as a stream of (x, y) batches")
    if validation_split:
        if validation_data is not None:
            raise FnnValueError("pass validation_data or validation_split, not both")
        if trainer.mesh is not None and spans_processes(trainer.mesh):
            raise FnnValueError(
                "validation_split is not available across processes: pass each process's share of "
                "the validation set as validation_data"
            )
        fraction = _validate.real(validation_split, "validation_split", low=0, high=1, low_open=True, high_open=True)
        x, y, sample_weight, validation_data = _split(model, trainer, state, x, y, sample_weight, fraction)
    data = trainer.data(
        state, x, y, validation_data=validation_data, sample_weight=sample_weight, class_weight=class_weight
    )
    host = list(trainer.host)
    if level:
        host.append(_callbacks.ProgressBar(level, epochs=epochs))
    state, history = trainer.drive(state, data, epochs - done, host)
    if spans_processes(trainer.mesh):  # results are replicated: continue with this process's copy
        state = jax.tree.map(lambda a: jax.device_put(np.asarray(jax.device_get(a))) if not _is_key(a) else a, state)
    return _result(trainer, state, history)


def _is_key(a) -> bool:
    return hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jax.dtypes.prng_key)


def _start(trainer: Trainer, params, key, initial_state, given_optimizer: bool) -> TrainState:
    """The state a fit starts from: a fresh one, or initial_state (a TrainState or a checkpoint path)
    with the passed optimizer's numbers (its moments and step count kept)."""
    if initial_state is None:
        return trainer.init(params, 0 if key is None else key)
    fresh = trainer.init(params, 0 if key is None else key)
    if isinstance(initial_state, (str, os.PathLike)):
        from fnn import checkpoint

        if checkpoint.read_architecture(initial_state) is not None:
            checkpoint.load(initial_state, model=trainer.model)  # refuses another model, naming the difference
        state = checkpoint.load(initial_state, like=fresh)
    elif isinstance(initial_state, TrainState):
        state = initial_state
    else:
        raise FnnTypeError(
            f"initial_state must be a fnn.TrainState or the path of a ModelCheckpoint file, got "
            f"{type(initial_state).__name__}"
        )
    trainer.check_state(state)
    if key is not None:
        state = state._replace(key=_validate.key(key))
    if given_optimizer:
        from fnn import optim

        try:
            opt_state = optim.with_hyperparameters_of(state.opt_state, fresh.opt_state)
        except (TypeError, ValueError):
            opt_state = state.opt_state
        state = state._replace(opt_state=opt_state)
    return state


def _split(model, trainer: Trainer, state: TrainState, x, y, sample_weight, fraction: float):
    """Hold out a random `fraction` of the rows (drawn with split(key)[0]) as validation data."""
    x, _ = _validate.features(x, "x", state.params[0][0].shape[0])
    y = _validate.array(y, "y")
    _validate.same_length(x, y)
    n = x.shape[0]
    n_val = math.floor(n * fraction)
    if n_val < 1 or n - n_val < 1:
        raise FnnValueError(
            f"validation_split={fraction} of {n} samples leaves an empty training or validation "
            "set; use a fraction that keeps at least one sample on each side"
        )
    perm = np.asarray(jax.random.permutation(jax.random.split(state.key)[0], n))
    val, train = perm[:n_val], perm[n_val:]
    x, y = np.asarray(x), np.asarray(y)
    if sample_weight is not None:
        w = np.asarray(_validate.array(sample_weight, "sample_weight"))
        if w.shape != (n,):
            raise FnnValueError(f"sample_weight must have one weight per sample, shape ({n},), got {w.shape}")
        return x[train], y[train], w[train], (x[val], y[val], w[val])  # Keras weighs the held-out rows too
    return x[train], y[train], sample_weight, (x[val], y[val])


def _result(trainer: Trainer, state: TrainState, history: History) -> FitResult:
    params = _callbacks.final_params(trainer.rules, state.callbacks, state.params)
    snapshots = epochs = None
    if any(isinstance(r, _callbacks.Snapshots) for r in trainer.rules):
        kept = history.records.get("snapshots", [])
        if kept:
            snapshots = jax.device_put(jax.tree.map(lambda *a: np.stack(a), *kept))
        else:
            snapshots = jax.tree.map(lambda p: np.zeros((0,) + p.shape, p.dtype), jax.device_get(state.params))
        epochs = tuple(history.records.get("snapshot_epochs", []))
    full = dict(history.history)
    if "step_loss" in history.records:
        full["step_loss"] = history.records["step_loss"]
    return FitResult(
        params,
        state.opt_state,
        full,
        history.stop_reason,
        int(state.epoch),
        history.best_epoch,
        history.divergence,
        history.rejected_steps,
        history.first_rejected,
        snapshots,
        epochs,
        state,
    )
