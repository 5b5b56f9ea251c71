"""Training on data that does not fit in memory: the engine's step and epoch end, fed from a stream.

`fit(model, params, batches, None, ...)` reads (x_batch, y_batch) pairs from `batches` each
epoch — a function epoch -> iterable (e.g. a generator reading files), or a re-iterable such as
a list. Batches are checked on the host, stacked `chunk` at a time and put on the device while
the previous chunk trains: one compiled scan of the engine's step per chunk (`engine.train_steps`),
then the engine's `end_epoch` (figures, validation, every compiled callback). The state is the
same TrainState as every other run's. Use arrays when the data fits in memory (the whole run is
then one program, with on-device shuffling); use a stream when it does not. A stream that fails
in a later epoch raises `StreamError`, which carries the state and history of the epochs trained.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import jax
import numpy as np

from fnn import _compile, _validate, engine, models
from fnn.engine import Data, TrainState
from fnn.errors import FnnTypeError, FnnValueError

__all__ = ["CHUNK", "StreamError", "StreamTypeError", "is_stream", "run"]

CHUNK = 8  # batches per compiled call


class StreamError(FnnValueError):
    """A stream's batch failed in epoch `epoch`; `state` and `history` hold what was trained before it."""

    def __init__(self, message: str, state=None, history=None, epoch: int = 0):
        super().__init__(message)
        self.state, self.history, self.epoch = state, history, epoch


class StreamTypeError(StreamError, FnnTypeError):
    """A StreamError whose cause was a wrong type: caught by `except TypeError` as the cause would be."""


def is_stream(x) -> bool:
    """True for a function or a non-array iterable of batches."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return False
    if isinstance(x, (list, tuple)) and x and not isinstance(x[0], (tuple, list)):
        return False  # a nested list of numbers is array data
    return callable(x) or hasattr(x, "__iter__")


def _epoch_batches(batches, epoch: int, epochs: int) -> Iterable[Any]:
    if callable(batches):
        return cast(Iterable[Any], batches(epoch))
    if iter(batches) is batches and epochs > 1:
        raise FnnValueError(
            "a one-shot iterator of batches can serve one epoch only; pass a function "
            "epoch -> iterable of (x, y) batches, or a list"
        )
    return batches


@_compile.jit(static_argnums=0, large=engine.is_large)
def _steps(spec: engine.Spec, state: TrainState, xs, ys, ws) -> TrainState:
    return engine.train_steps(spec, state, (xs, ys, ws, ws))  # a stream's weights only mark its rows


@_compile.jit(static_argnums=0, large=engine.is_large)
def _end(spec: engine.Spec, state: TrainState, data: Data):
    return engine.end_epoch(spec, state, data)


def run(
    trainer, state: TrainState, batches, *, epochs: int, validation_data=None, verbose: int = 0, chunk: int = CHUNK
):
    """`epochs` more epochs of `trainer` from `state` on a stream of (x, y) batches: -> (state, History)."""
    from fnn import callbacks as fnn_callbacks
    from fnn._driver import Interrupts
    from fnn.history import History

    chunk = _validate.integer(chunk, "chunk", minimum=1)
    if not (callable(batches) or hasattr(batches, "__iter__")):
        raise FnnTypeError("batches must be a function epoch -> iterable of (x, y), or an iterable of (x, y)")
    params = state.params
    xv = yv = None
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise FnnTypeError("validation_data must be a pair (x_val, y_val)")
        xv, yv = models.prepare(trainer.model, trainer.loss, params, *validation_data, xname="x_val", yname="y_val")
    dtype = np.dtype(params[0][0].dtype)
    n_in = params[0][0].shape[0]
    data = Data(
        np.zeros((0, n_in), dtype), np.zeros((0, trainer.model.output_dim), dtype), None, np.zeros((), np.int32), xv, yv
    )
    spec = None
    names = trainer.spec.log_names(xv is not None)
    for rule in trainer.rules:
        rule.check(names, state.opt_state)
    history = History(names)
    host = list(trainer.host) + (
        [fnn_callbacks.ProgressBar(verbose, epochs=int(state.epoch) + epochs)] if verbose else []
    )
    for c in host:
        c.on_train_begin(state)
    with Interrupts() as interrupts:
        for _ in range(epochs):
            epoch = int(state.epoch)
            pending, index = [], 0
            try:
                for item in _epoch_batches(batches, epoch, epochs):
                    xb, yb = _batch(trainer, params, item, index)
                    if spec is None:  # the first batch fixes the batch size the program is compiled for
                        spec = trainer.spec._replace(batch_size=xb.shape[0])
                    if xb.shape[0] > spec.batch_size:
                        raise FnnValueError(
                            f"batch {index} has {xb.shape[0]} samples, more than the first batch's "
                            f"{spec.batch_size}; make the first batch the largest"
                        )
                    pending.append((xb, yb))
                    index += 1
                    if len(pending) == chunk:
                        state = _train_chunk(spec, state, pending, chunk)
                        pending = []
                if index == 0:
                    raise FnnValueError(
                        f"the batches of epoch {epoch} were empty; the stream must yield (x, y) pairs "
                        "every epoch (a generator is used up after one epoch: pass a function "
                        "epoch -> iterable instead)"
                    )
            except (ValueError, TypeError) as e:
                trained = (
                    ""
                    if not history.epoch
                    else f"; the {len(history.epoch)} epoch(s) before it are kept in this error's .state and .history"
                )
                raise (StreamTypeError if isinstance(e, TypeError) else StreamError)(
                    f"epoch {epoch}: {e}{trained}", state if history.epoch else None, history, epoch
                ) from None
            if pending:
                state = _train_chunk(spec, state, pending, chunk)
            assert spec is not None
            state, logs, stopped, reason = _end(spec, state, data)
            logs = {k: float(v) for k, v in jax.device_get(logs).items()}
            history.epoch.append(epoch)
            for k, v in logs.items():
                history.history[k].append(v)
            for c in host:
                c.on_epoch_end(epoch, logs)
            if bool(stopped):
                history.stop_reason = trainer.rules[int(reason) - 1].reason
                break
            if interrupts.count:
                history.stop_reason = "interrupted"
                break
    trainer.finish(history, state)
    for c in host:
        c.on_train_end(state, history)
    return state, history


def _batch(trainer, params, item, index):
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise FnnTypeError(f"batch {index} must be a pair (x, y), got {type(item).__name__}")
    try:
        x, y = models.prepare(trainer.model, trainer.loss, params, *item)
    except (ValueError, TypeError) as e:
        raise type(e)(f"batch {index}: {e}") from None
    y = np.asarray(y)
    if y.ndim == 1:  # class labels: one-hot here, so every batch of a stream has one form (batches are small)
        y = np.eye(trainer.model.output_dim, dtype=np.asarray(x).dtype)[y]
    return np.asarray(x), y


def _train_chunk(spec, state, pending, chunk):
    """Pad the chunk to `chunk` full-size batches (padding weighted 0), put it on the device, train it."""
    bs = spec.batch_size
    d, k = pending[0][0].shape[1], pending[0][1].shape[1]
    dtype = pending[0][0].dtype
    xs = np.zeros((chunk, bs, d), dtype)
    ys = np.zeros((chunk, bs, k), dtype)
    ws = np.zeros((chunk, bs), dtype)
    for i, (xb, yb) in enumerate(pending):
        xs[i, : len(xb)], ys[i, : len(yb)], ws[i, : len(xb)] = xb, yb, 1
    xs, ys, ws = jax.device_put((xs, ys, ws))  # asynchronous: the host goes on while this trains
    return _steps(spec, state, xs, ys, ws)
