"""Callbacks: policies of a run as objects, with Keras' names where Keras has one.

Two kinds. A `Rule` runs inside the compiled program at the end of every epoch: EarlyStopping,
TerminateOnNaN, ReduceLROnPlateau, TargetLoss, Snapshots, StepLoss, Sharpness, and any user subclass. Its
numbers (patience, factor, thresholds) live in its state, so changing them compiles nothing; its
kind (class and static options such as `monitor`) is the program's structure. A host `Callback`
(ModelCheckpoint, CSVLogger, LambdaCallback, ProgressBar) runs in Python between compiled calls,
and sees every epoch's logs in order.

A rule of your own: `init(self, params) -> state` and `update(self, state, epoch, logs, params) ->
(state, stop)`, where logs holds the epoch's figures as arrays (`logs["loss"]`, `logs["accuracy"]`,
`logs["val_loss"]`, ...). Keep its numbers in the state and they stay runtime values; `static` names
the attributes `update` reads from `self` (by default all of them: each new value compiles anew):

    >>> class StopAtAccuracy(fnn.callbacks.Rule):
    ...     reason = "accuracy_reached"
    ...     static = ()  # no attribute is structure: update reads its number from the state
    ...     def __init__(self, target=0.99):
    ...         self.target = target
    ...     def init(self, params):
    ...         return jnp.asarray(self.target)
    ...     def update(self, state, epoch, logs, params):
    ...         return state, logs["accuracy"] >= state
    >>> result = fnn.fit(model, params, x, y, optimizer=fnn.optim.adam(0.05), epochs=500,
    ...                  callbacks=[StopAtAccuracy(0.8)])
    >>> result.stop_reason, result.history["accuracy"][-1] >= 0.8
    ('accuracy_reached', True)
"""

from __future__ import annotations

import csv
import math
import os
import sys
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate, optim, surface
from fnn.errors import FnnTypeError, FnnValueError
from fnn.rules import (
    Callback,
    EarlyStopping,
    ReduceLROnPlateau,
    Rule,
    Snapshots,
    StepLoss,
    TargetLoss,
    TerminateOnNaN,
    final_params,
)

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "LambdaCallback",
    "ModelCheckpoint",
    "ProgressBar",
    "ReduceLROnPlateau",
    "Rule",
    "Sharpness",
    "Snapshots",
    "StepLoss",
    "TargetLoss",
    "TerminateOnNaN",
    "final_params",
]


# --------------------------------------------------------------------------- compiled: the loss surface
class SharpnessState(NamedTuple):
    every: Any  # int32
    iterations: Any  # int32: power-iteration steps
    key: Any  # uint32 key data: every measurement starts from the same random vector


class Sharpness(Rule):
    """Record the sharpness (the largest Hessian eigenvalue, fnn.sharpness) of the training loss on
    the run's whole training data (every real row, with its sample weight) at the params that end
    every `every`-th epoch (epochs every, 2·every, …: the ones Snapshots(every) keeps), inside the
    compiled run: history["sharpness"], NaN on the epochs between. fnn.sharpness(fnn.objective(model,
    loss), params, x, y, iterations=iterations, key=key) gives the same number for those params (on a
    stream of batches the rows are not kept, and it records NaN). Each measurement costs `iterations`
    Hessian-vector products over the data; every, iterations and key are runtime values.

    Example:
        >>> result = fnn.fit(model, params, x, y, epochs=4, callbacks=[fnn.callbacks.Sharpness(every=2)])
        >>> [bool(np.isnan(s)) for s in result.history["sharpness"]]
        [True, False, True, False]
    """

    reason = "sharpness"
    static = ()
    log_names = ("sharpness",)

    def __init__(self, every: int = 1, iterations: int = 20, key: Any = 0):
        self.every = _validate.count(every, "Sharpness every", minimum=1)
        self.iterations = _validate.count(iterations, "Sharpness iterations", minimum=1)
        self.key = np.asarray(jax.random.key_data(_validate.key(key)))

    def init(self, params):
        return SharpnessState(np.asarray(self.every, np.int32), np.asarray(self.iterations, np.int32), self.key)

    def on_epoch(self, state: SharpnessState, view):
        nan = jnp.full((), jnp.nan, optim.dtype_of(view.params))
        if view.objective is None:
            return state, jnp.zeros((), bool), view._replace(logs=dict(view.logs, sharpness=nan))
        key = jax.random.wrap_key_data(state.key)

        def measure(params):
            return surface.power_iteration(view.objective, params, key, state.iterations).astype(nan.dtype)

        due = (view.epoch + 1) % state.every == 0
        value = jax.lax.cond(due, measure, lambda params: nan, view.params)
        return state, jnp.zeros((), bool), view._replace(logs=dict(view.logs, sharpness=value))


# --------------------------------------------------------------------------- host callbacks
class LambdaCallback(Callback):
    """Host functions as a callback, as Keras': on_epoch_end(epoch, logs), on_train_begin(logs),
    on_train_end(logs). Batch-level hooks are not offered: the run has no Python per batch."""

    def __init__(self, on_epoch_end=None, on_train_begin=None, on_train_end=None, **others):
        if others:
            raise FnnValueError(
                f"LambdaCallback takes on_epoch_end, on_train_begin and on_train_end; got "
                f"{sorted(others)} (batch-level hooks would need Python per batch, which the "
                "compiled run never runs: record per-step figures with fnn.callbacks.StepLoss)"
            )
        for name, fn in (
            ("on_epoch_end", on_epoch_end),
            ("on_train_begin", on_train_begin),
            ("on_train_end", on_train_end),
        ):
            if fn is not None and not callable(fn):
                raise FnnTypeError(f"LambdaCallback {name} must be callable, got {type(fn).__name__}")
        self._epoch_end, self._begin, self._end = on_epoch_end, on_train_begin, on_train_end

    def on_train_begin(self, state):
        if self._begin is not None:
            self._begin({})

    def on_epoch_end(self, epoch, logs):
        if self._epoch_end is not None:
            self._epoch_end(epoch, logs)

    def on_train_end(self, state, history):
        if self._end is not None:
            self._end(history.last_logs())


class CSVLogger(Callback):
    """One row per epoch (epoch, then every logged figure) in a CSV file, as Keras' CSVLogger."""

    def __init__(self, filename, separator: str = ",", append: bool = False):
        if not isinstance(filename, (str, os.PathLike)):
            raise FnnTypeError(f"CSVLogger filename must be a path, got {type(filename).__name__}")
        self.filename, self.separator, self.append = os.fspath(filename), separator, bool(append)
        self._file = None
        self._writer: Any = None

    def on_train_begin(self, state):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        try:
            self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        except OSError as e:
            raise FnnValueError(f"CSVLogger cannot write {self.filename}: {e.strerror or e}") from None
        self._writer, self._header = None, exists

    def on_epoch_end(self, epoch, logs):
        if self._file is None:
            return
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, ["epoch", *logs], delimiter=self.separator)
            if not self._header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **logs})
        self._file.flush()

    def on_train_end(self, state, history):
        if self._file is not None:
            self._file.close()
            self._file = None


class ModelCheckpoint(Callback):
    """Save the whole TrainState (with the model, for `fnn.load(path, like=state)` or
    `fit(initial_state=path)`) every `every` epochs and when the run ends or is interrupted.
    `path` may hold "{epoch}" (e.g. "run-{epoch:03d}.ckpt"). Saves are atomic."""

    def __init__(self, path, every: int | None = None):
        if not isinstance(path, (str, os.PathLike)):
            raise FnnTypeError(f"ModelCheckpoint path must be a str or os.PathLike, got {type(path).__name__}")
        self.path = os.fspath(path)
        self.every = None if every is None else _validate.count(every, "every", minimum=1)
        self.model: Any = None  # set by the Trainer
        self.loss: str | None = None
        self.saved: list[str] = []

    def next_stop(self, epoch):
        return None if self.every is None else (epoch // self.every + 1) * self.every

    def save(self, state, history=None) -> str:
        from fnn import checkpoint  # on use: saving is the only thing that needs the file format

        path = self.path.format(epoch=int(state.epoch))
        meta = None if history is None else {"history": {k: [float(v) for v in vals] for k, vals in history.items()}}
        checkpoint.save(path, state, model=self.model, loss=self.loss, metadata=meta, allow_non_finite=True)
        self.saved.append(path)
        return path

    def on_state(self, state, epoch, step, history):
        if self.every is not None and epoch % self.every == 0 and step == 0 and epoch > 0:
            self.save(state, history)

    def on_train_end(self, state, history):
        if not self.saved or self.saved[-1] != self.path.format(epoch=int(state.epoch)) or self.every is None:
            self.save(state, history.history)


class ProgressBar(Callback):
    """What verbose=1 (a bar on a terminal, a line per epoch elsewhere) and verbose=2 (a line per
    epoch) print: "compiling…" and its time, then each epoch's figures and time (compiling excluded).
    Between compiled calls only: it costs the run nothing inside the program."""

    def __init__(self, verbose: int = 1, epochs: int | None = None, stream=None):
        self.verbose, self.epochs, self.stream = verbose, epochs, stream
        self._first = 0
        self._carry = 0.0  # seconds spent in the epoch under way
        self._epoch_seconds = 0.0
        self._compiling = False

    @property
    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def _terminal(self) -> bool:
        return self.verbose == 1 and hasattr(self._out, "isatty") and self._out.isatty()

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def on_train_begin(self, state):
        self._first, self._carry = int(state.epoch), 0.0
        if self._terminal():
            self._compiling = True
            self._write("compiling…")

    def on_compiled(self, seconds):
        if self._terminal():
            self._write(f"\rcompiled in {seconds:.2f} s\n")
        else:
            self._write(f"compiled in {seconds:.2f} s\n")
        self._compiling = False

    def on_call(self, seconds, epochs, steps, first):
        if self._compiling:  # the program came from memory: nothing was compiled
            self._write("\r\x1b[K")
            self._compiling = False
        if epochs:
            self._epoch_seconds = (self._carry + seconds) / epochs
            self._carry = 0.0
        else:
            self._carry += seconds

    def on_progress(self, epoch, step, steps):
        if self._terminal() and steps:
            self._write(f"\repoch {epoch + 1}/{self.epochs or '?'} - step {step}/{steps}\x1b[K")

    def on_epoch_end(self, epoch, logs):
        seconds = self._epoch_seconds
        total = self.epochs or epoch + 1
        parts = " - ".join(f"{k} {v:.4f}" for k, v in logs.items())
        timing = f"{seconds * 1e3:.2f} ms/epoch" if seconds < 1 else f"{seconds:.2f} s/epoch"
        done = epoch + 1
        last = done >= total
        if not self._terminal():
            every = 1 if self.verbose >= 2 else max(1, math.ceil(total / 100))  # long runs: about 100 lines
            if last or done % every == 0 or done == self._first + 1:
                self._write(f"epoch {done}/{total} - {parts} - {timing}\n")
            return
        width = 20
        filled = int(width * done / total)
        bar = "=" * filled + (">" if filled < width else "") + "." * max(0, width - filled - 1)
        self._write(f"\repoch {done}/{total} [{bar}] {parts} - {timing}\x1b[K" + ("\n" if last else ""))

    def on_train_end(self, state, history):
        if self._terminal() and history.epoch and history.epoch[-1] + 1 < (self.epochs or 0):
            self._write("\n")
