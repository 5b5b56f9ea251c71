"""Compiled callbacks: the `Rule` protocol and the rules fnn ships, run inside the compiled program.

A rule's numbers live in its state (runtime values: changing them compiles nothing); its kind —
the class and its `static` options such as `monitor` — is the program's structure. The engine
calls `on_epoch` at the end of every epoch (by default it calls the user-facing `update`), keeps
the params a stopping rule chooses (`stop_params`) and gives each rule a per-call record buffer
(`buffer`, `record_step`, `record_epoch`, `collect`). Public names are re-exported by fnn.callbacks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate, optim
from fnn.errors import FnnTypeError, FnnValueError

__all__ = [
    "Callback",
    "EarlyStopping",
    "ReduceLROnPlateau",
    "Rule",
    "Snapshots",
    "StepLoss",
    "TargetLoss",
    "TerminateOnNaN",
    "final_params",
]

Array = jax.Array
Leaf = jax.Array | np.ndarray  # state leaves are host arrays until the run moves them


def _none_yet(dtype) -> float:
    """The largest finite number of a dtype: the 'best so far' before any epoch (finite, so a state saves)."""
    return float(np.finfo(dtype).max)


def _freeze(value):
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


class Callback:
    """A host callback: runs in Python between compiled calls. Override what you need."""

    compiled = False

    def on_train_begin(self, state) -> None:
        """Before the first compiled call of `Trainer.run`."""

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """After each epoch, in order (0-based epoch, logs of floats); called once the compiled
        call that ran it has returned."""

    def on_progress(self, epoch: int, step: int, steps: int) -> None:
        """Inside an epoch, between compiled calls: `step` of `steps` batches done."""

    def on_compiled(self, seconds: float) -> None:
        """The run's program was compiled (or loaded from the cache) in `seconds`."""

    def on_call(self, seconds: float, epochs: int, steps: int, first: bool) -> None:
        """A compiled call ran `steps` steps completing `epochs` epochs in `seconds` (compiling excluded)."""

    def on_state(self, state, epoch: int, step: int, history: dict) -> None:
        """After each compiled call, with the state it returned (at `epoch`, `step` of it)."""

    def on_train_end(self, state, history) -> None:
        """After the last call, with the state it returned and the run's History."""

    def next_stop(self, epoch: int) -> int | None:
        """An epoch at which the driver must hand control back (e.g. to save), or None."""
        return None


class Rule(Callback):
    """A compiled callback: `init(params) -> state`, `update(state, epoch, logs, params) -> (state, stop)`.

    Subclasses set `reason` (the run's stop_reason when it stops it). Two rules are the same
    structure when their `static` fields are equal (by default every attribute: numbers read in
    `update` from `self` are baked into the program; numbers read from the state are not)."""

    compiled = True
    reason = "rule"
    log_names: tuple[str, ...] = ()  # log entries the rule adds
    static: tuple[str, ...] | None = None  # the attributes that are structure (None: all of them)

    def init(self, params) -> Any:
        return ()

    def update(self, state, epoch: Array, logs: dict, params) -> tuple[Any, Array]:
        return state, jnp.zeros((), bool)

    # The engine's hooks; a user rule needs none of them.
    def on_epoch(self, state, view):
        """(state, stop, view) from the engine's EpochView; rules that change logs or opt_state override it."""
        state, stop = self.update(state, view.epoch, view.logs, view.params)
        return state, stop, view

    def stop_params(self, state, params):
        """The params a run this rule stops keeps."""
        return params

    def end_params(self, state, params):
        """The params a finished run returns (see final_params)."""
        return params

    def buffer(self, params, chunk: int, max_batches: int) -> Any:
        """A per-call record the rule writes to (None: none)."""
        return None

    def record_step(self, buffer, slot: Array, step: Array, loss: Array, taken: Array):
        return buffer

    def record_epoch(self, buffer, slot: Array, state, logs: dict):
        return buffer

    def collect(self, store: dict, buffer, first_epoch: int, epochs: int, state) -> None:
        """Host side: move a call's record (numpy) into `store`, the run's records."""

    def max_epochs_per_call(self) -> int | None:
        return None

    def check(self, log_names: tuple[str, ...], opt_state) -> None:
        """Refuse a run this rule cannot serve (a monitored name it will not have), naming the fix."""

    def _key(self):
        names = sorted(vars(self)) if self.static is None else self.static
        try:
            key = (type(self), tuple((k, _freeze(getattr(self, k))) for k in names))
            hash(key)
            return key
        except TypeError:
            return (type(self), id(self))

    def __eq__(self, other):
        return isinstance(other, Rule) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def final_params(rules, states, params):
    """The params a finished run returns: each rule's `end_params` in order (EarlyStopping with
    restore_best_weights: the best epoch's, as Keras does at the end of training). Works on
    stacked (vmapped) states too."""
    for rule, state in zip(rules, states):
        params = rule.end_params(state, params)
    return params


def _where(take, new, old):
    return jax.tree.map(
        lambda a, b: jnp.where(jnp.reshape(take, jnp.shape(take) + (1,) * (a.ndim - jnp.ndim(take))), a, b), new, old
    )


def _boolean(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise FnnTypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _monitor(name) -> str:
    if not isinstance(name, str) or not name:
        raise FnnTypeError(f"monitor must be the name of a logged figure such as 'val_loss', got {name!r}")
    return name


def _mode(mode: str, monitor: str) -> float:
    """+1 when smaller is better, -1 when larger is; 'auto' reads the monitored name."""
    if mode not in ("auto", "min", "max"):
        raise FnnValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        larger = any(word in monitor for word in ("acc", "auc", "precision", "recall"))
        return -1.0 if larger else 1.0
    return 1.0 if mode == "min" else -1.0


def _check_monitor(rule, monitor: str, names: tuple[str, ...]) -> None:
    if monitor not in names:
        hint = (
            (
                " (this run has no validation data: pass validation_data= or validation_split=, or monitor "
                f"'{monitor[4:]}')"
            )
            if monitor.startswith("val_")
            else ""
        )
        raise FnnValueError(
            f"{type(rule).__name__} monitors {monitor!r}, which this run does not log{hint}; it logs {list(names)}"
        )


# --------------------------------------------------------------------------- compiled rules
class EarlyState(NamedTuple):
    best: Leaf  # the best monitored value so far, signed so that smaller is better
    best_epoch: Leaf  # int32, -1 before the first counted epoch
    wait: Leaf  # int32 epochs since the last improvement
    patience: Leaf
    min_delta: Leaf
    baseline: Leaf  # signed; inf: none
    start_from_epoch: Leaf
    best_params: Any  # with restore_best_weights, else ()


class EarlyStopping(Rule):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs (Keras' rule: an
    epoch counts as waiting unless it improves; with `baseline`, waiting restarts only past it).
    restore_best_weights: the run returns the params of the best epoch."""

    reason = "early_stopping"
    static = ("monitor", "sign", "restore_best_weights")

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        restore_best_weights: bool = False,
        mode: str = "auto",
        baseline: float | None = None,
        start_from_epoch: int = 0,
    ):
        self.monitor = _monitor(monitor)
        self.patience = _validate.count(patience, "patience", minimum=0)
        self.min_delta = abs(_validate.real(min_delta, "min_delta"))
        self.restore_best_weights = _boolean(restore_best_weights, "restore_best_weights")
        self.sign = _mode(mode, self.monitor)
        self.baseline = None if baseline is None else _validate.real(baseline, "baseline")
        self.start_from_epoch = _validate.count(start_from_epoch, "start_from_epoch", minimum=0)

    def init(self, params):
        dtype = optim.dtype_of(params)
        # the largest finite number stands for 'none yet': a state with no inf saves as it is
        baseline = _none_yet(dtype) if self.baseline is None else self.sign * self.baseline
        return EarlyState(
            np.asarray(_none_yet(dtype), dtype),
            np.asarray(-1, np.int32),
            np.asarray(0, np.int32),
            np.asarray(self.patience, np.int32),
            np.asarray(self.min_delta, dtype),
            np.asarray(baseline, dtype),
            np.asarray(self.start_from_epoch, np.int32),
            params if self.restore_best_weights else (),
        )

    def check(self, log_names, opt_state):
        _check_monitor(self, self.monitor, log_names)

    def update(self, state: EarlyState, epoch, logs, params):
        value = (self.sign * logs[self.monitor]).astype(state.best.dtype)
        counted = epoch >= state.start_from_epoch
        improved = counted & (value < state.best - state.min_delta)
        past_baseline = value < state.baseline - state.min_delta
        wait = jnp.where(counted, jnp.where(improved & past_baseline, 0, state.wait + 1), state.wait)
        # as Keras: the first counted epoch's params are the best until one improves (even on a NaN loss)
        keep = improved | (counted & (state.best_epoch < 0))
        best_params = _where(keep, params, state.best_params) if self.restore_best_weights else ()
        state = state._replace(
            best=jnp.where(improved, value, state.best),
            best_epoch=jnp.where(keep, epoch, state.best_epoch).astype(jnp.int32),
            wait=wait.astype(jnp.int32),
            best_params=best_params,
        )
        return state, counted & ~improved & (wait >= state.patience) & (epoch > 0)

    def stop_params(self, state: EarlyState, params):
        return self.end_params(state, params)

    def end_params(self, state: EarlyState, params):
        if not self.restore_best_weights:
            return params
        return _where(state.best_epoch >= 0, state.best_params, params)


class NaNState(NamedTuple):
    best_loss: Leaf  # the lowest finite training loss of an epoch
    best_epoch: Leaf  # int32: that epoch (0-based), -1 if none
    fallback: Any  # the params that epoch started from


class TerminateOnNaN(Rule):
    """Stop once max_bad_steps + 1 steps in a row had a non-finite loss or gradient (each is skipped,
    never applied, and left out of the figures), or an epoch ends with non-finite params. The run
    then keeps the params that the epoch with the lowest finite training loss started from (its
    loss measured them; the end params of a run blowing up would not deserve it): never those of
    a run blowing up. A run always has one; fnn adds TerminateOnNaN() unless you pass one."""

    reason = "non_finite_loss"
    static = ()

    def __init__(self, max_bad_steps: int = 0):
        self.max_bad_steps = _validate.count(max_bad_steps, "max_bad_steps", minimum=0)

    def init(self, params):
        dtype = optim.dtype_of(params)
        return NaNState(np.asarray(_none_yet(dtype), dtype), np.asarray(-1, np.int32), params)

    def on_epoch(self, state: NaNState, view):
        loss = view.logs["loss"]
        finite_params = jnp.isfinite(sum(jnp.sum(leaf) for leaf in jax.tree.leaves(view.params)))
        better = jnp.isfinite(loss) & (loss < state.best_loss)
        state = NaNState(
            jnp.where(better, loss, state.best_loss).astype(state.best_loss.dtype),
            jnp.where(better, view.epoch, state.best_epoch).astype(jnp.int32),
            _where(better, view.start_params, state.fallback),
        )
        return state, view.halted | ~finite_params, view

    def stop_params(self, state: NaNState, params):
        return state.fallback


class PlateauState(NamedTuple):
    best: Leaf
    wait: Leaf
    cooldown_left: Leaf
    factor: Leaf
    patience: Leaf
    min_delta: Leaf
    min_lr: Leaf
    cooldown: Leaf


class ReduceLROnPlateau(Rule):
    """Multiply the learning rate by `factor` (not below `min_lr`) when `monitor` has not improved
    by `min_delta` for `patience` epochs, then wait `cooldown` epochs; inside the compiled run.
    The history gains `learning_rate`: the rate each epoch trained with. Needs an fnn optimizer
    with a constant learning rate (its rate lives in the optimizer's state)."""

    reason = "reduce_lr"
    static = ("monitor", "sign")
    log_names = ("learning_rate",)

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        min_lr: float = 0.0,
        cooldown: int = 0,
        mode: str = "auto",
    ):
        self.monitor = _monitor(monitor)
        self.factor = _validate.real(factor, "factor", low=0, high=1, low_open=True, high_open=True)
        self.patience = _validate.count(patience, "patience", minimum=0)
        self.min_delta = abs(_validate.real(min_delta, "min_delta"))
        self.min_lr = _validate.real(min_lr, "min_lr", low=0)
        self.cooldown = _validate.count(cooldown, "cooldown", minimum=0)
        self.sign = _mode(mode, self.monitor)

    def init(self, params):
        dtype = optim.dtype_of(params)
        return PlateauState(
            np.asarray(_none_yet(dtype), dtype),
            np.asarray(0, np.int32),
            np.asarray(0, np.int32),
            np.asarray(self.factor, dtype),
            np.asarray(self.patience, np.int32),
            np.asarray(self.min_delta, dtype),
            np.asarray(self.min_lr, dtype),
            np.asarray(self.cooldown, np.int32),
        )

    def check(self, log_names, opt_state):
        _check_monitor(self, self.monitor, log_names)
        try:
            optim.learning_rate(opt_state)
        except FnnValueError as e:
            raise FnnValueError(f"ReduceLROnPlateau changes a constant learning rate inside the run: {e}") from None

    def on_epoch(self, state: PlateauState, view):
        rate = optim.learning_rate(view.opt_state)
        value = (self.sign * view.logs[self.monitor]).astype(state.best.dtype)
        was_cooling = state.cooldown_left > 0
        cooldown_left = jnp.where(was_cooling, state.cooldown_left - 1, state.cooldown_left)
        wait = jnp.where(was_cooling, 0, state.wait)
        improved = value < state.best - state.min_delta
        cooling = cooldown_left > 0
        wait = jnp.where(improved, 0, jnp.where(cooling, wait, wait + 1))
        reduce = ~improved & ~cooling & (wait >= state.patience) & (rate > state.min_lr)
        new_rate = jnp.where(reduce, jnp.maximum(rate * state.factor, state.min_lr), rate).astype(rate.dtype)
        state = state._replace(
            best=jnp.where(improved, value, state.best),
            wait=jnp.where(reduce, 0, wait).astype(jnp.int32),
            cooldown_left=jnp.where(reduce, state.cooldown, cooldown_left).astype(jnp.int32),
        )
        opt_state = optim.set_hyperparameters(view.opt_state, learning_rate=new_rate)
        logs = dict(view.logs, learning_rate=rate)  # the rate this epoch trained with, as Keras logs it
        return state, jnp.zeros((), bool), view._replace(logs=logs, opt_state=opt_state)


class TargetLoss(Rule):
    """Stop once `monitor` (the training loss by default) is at most `value`: the loss is acceptable."""

    reason = "target_loss"
    static = ("monitor",)

    def __init__(self, value: float, monitor: str = "loss"):
        self.value = _validate.real(value, "target loss value")
        self.monitor = _monitor(monitor)

    def init(self, params):
        return np.asarray(self.value, optim.dtype_of(params))

    def check(self, log_names, opt_state):
        _check_monitor(self, self.monitor, log_names)

    def update(self, state, epoch, logs, params):
        return state, logs[self.monitor] <= state


class Snapshots(Rule):
    """Keep the params every `every` epochs inside the compiled run, and those the run started from
    (epoch 0, bitwise, recorded before the first compiled call): `result.snapshots` (leaves with a
    leading snapshot axis), `result.snapshot_epochs`. Memory: one copy of the params per kept epoch.
    For a movie, keep every epoch and let fnn.plot.animate(..., frames="changes") pick the frames
    where the decision boundary moved, rather than guessing here which epochs those will be."""

    reason = "snapshots"
    static = ("every",)
    SLOTS = 32  # snapshots one compiled call keeps at most

    def __init__(self, every: int = 1):
        self.every = _validate.count(every, "every", minimum=1)

    def max_epochs_per_call(self) -> int:
        return self.every * self.SLOTS

    def buffer(self, params, chunk, max_batches):
        slots = jax.tree.map(lambda p: jnp.zeros((self.SLOTS + 1,) + p.shape, p.dtype), params)
        return slots, jnp.zeros((), jnp.int32), jnp.zeros((self.SLOTS + 1,), jnp.int32)

    def record_epoch(self, buffer, slot, state, logs):
        slots, count, epochs = buffer
        # every epoch writes slot `count`; only an epoch that is a multiple of `every` moves past it
        slots = jax.tree.map(lambda s, p: s.at[count].set(p), slots, state.params)
        epochs = epochs.at[count].set(state.epoch)
        return slots, count + (state.epoch % self.every == 0).astype(jnp.int32), epochs

    def collect(self, store, buffer, first_epoch, epochs, state):
        slots, count, numbers = buffer
        kept = store.setdefault("snapshots", [])
        for i in range(int(count)):
            kept.append(jax.tree.map(lambda s, i=i: s[i], slots))
        store.setdefault("snapshot_epochs", []).extend(int(e) for e in numbers[: int(count)])


class StepLoss(Rule):
    """Record every step's loss (before its update) inside the run: history["step_loss"], one
    (batches,) array per epoch; a skipped (non-finite) step records its loss too."""

    reason = "step_loss"
    static = ()

    def buffer(self, params, chunk, max_batches):
        return jnp.zeros((chunk, max_batches), optim.dtype_of(params)), jnp.zeros((chunk, max_batches), bool)

    def record_step(self, buffer, slot, step, loss, taken):
        values, written = buffer
        return values.at[slot, step].set(loss.astype(values.dtype)), written.at[slot, step].set(True)

    def collect(self, store, buffer, first_epoch, epochs, state):
        values, written = (np.asarray(a) for a in buffer)
        rows = store.setdefault("step_loss", [])
        pending = store.pop("step_loss_pending", None)  # an epoch a call ended inside of
        for i in range(min(epochs + 1, len(values))):
            row = values[i][written[i]]
            if i == 0 and pending is not None:
                row = np.concatenate([pending, row])
            if i < epochs:
                rows.append(row)
            elif row.size:
                store["step_loss_pending"] = row
