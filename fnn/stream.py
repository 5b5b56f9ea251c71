"""Training on data that does not fit in memory: the engine fed from a stream of mini-batches.

`fit(model, params, batches, None, ...)` reads (x_batch, y_batch) pairs from `batches` each
epoch — a function epoch -> iterable (e.g. a generator reading files), or a re-iterable such as
a list. Batches are checked on the host, stacked `chunk` at a time and put on the device
while the previous chunk trains: one compiled scan of the engine's step per chunk, not one
dispatch per batch, and the host prepares the next chunk while the device computes. Use arrays
when the data fits in memory (the whole run is then one program, with on-device shuffling); use
a stream when it does not, or when batches are made on the fly. Every epoch must yield batches.
"""
from __future__ import annotations

import functools
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate, engine, models
from fnn.errors import FnnTypeError, FnnValueError

CHUNK = 8  # batches per compiled call


def is_stream(x) -> bool:
    """True for a function or a non-array iterable of batches."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return False
    if isinstance(x, (list, tuple)) and x and not isinstance(x[0], (tuple, list)):
        return False  # a nested list of numbers is array data
    return callable(x) or hasattr(x, "__iter__")


def _epoch_batches(batches, epoch: int, epochs: int) -> Iterable:
    if callable(batches):
        return batches(epoch)
    if iter(batches) is batches and epochs > 1:
        raise FnnValueError("a one-shot iterator of batches can serve one epoch only; pass a function "
                            "epoch -> iterable of (x, y) batches, or a list")
    return batches


@functools.lru_cache(maxsize=32)
def _steps(config: engine.RunConfig):
    """steps(carry, xs, ys, ws, epoch, settings) -> carry: the engine's step over a chunk of batches."""

    def steps(carry, xs, ys, ws, epoch, settings):
        carry, _ = jax.lax.scan(engine.make_step(config, settings, epoch), carry, (xs, ys, ws))
        return carry

    return jax.jit(steps)


@functools.lru_cache(maxsize=32)
def _end(config: engine.RunConfig):
    return jax.jit(functools.partial(engine.end_epoch, config))


@functools.lru_cache(maxsize=32)
def _start(dtype):
    return jax.jit(functools.partial(engine.start_epoch, dtype=dtype))


def fit_stream(model, params, batches, *, loss=None, optimizer=None, epochs=100, validation_data=None,
               target_loss=None, patience=None, min_delta=0.0, restore_best=True, max_bad_steps=0, verbose=0,
               chunk: int = CHUNK) -> engine.FitResult:
    """fit on a stream of (x_batch, y_batch) pairs; see the module docstring. Returns a FitResult."""
    loss, optimizer, epochs, verbose, max_bad_steps, target_loss, patience, min_delta = engine.check_settings(
        model, params, loss, optimizer, epochs, verbose, max_bad_steps, target_loss, patience, min_delta)
    chunk = _validate.integer(chunk, "chunk", minimum=1)
    if not (callable(batches) or hasattr(batches, "__iter__")):
        raise FnnTypeError("batches must be a function epoch -> iterable of (x, y), or an iterable of (x, y)")
    dtype = params[0][0].dtype
    n_in = params[0][0].shape[0]
    if validation_data is not None:
        xv, yv = engine.validation(model, loss, params, validation_data)
    else:
        xv = jnp.zeros((0, n_in), dtype)
        yv = jnp.zeros((0, model.output_dim), dtype)
    data = engine.Data(xv[:0], yv[:0], None, xv, yv, jax.random.key(0))  # only the validation rows are used
    numbers = engine.settings(dtype, target_loss=target_loss, patience=patience, min_delta=min_delta,
                              max_bad_steps=max_bad_steps, epochs=epochs, verbose=verbose)

    def configure(batch_size):
        return engine.configure(model, loss, optimizer, n_in, batch_size=batch_size, shuffle=False,
                                validate=xv.shape[0] > 0, target_loss=target_loss, patience=patience,
                                restore_best=restore_best, verbose=verbose)

    config, state = None, None
    history = {}
    engine.PROGRESS.start()
    for epoch in range(epochs):
        carry, pending, index = None, [], 0
        for item in _epoch_batches(batches, epoch, epochs):
            xb, yb = _batch(model, loss, params, item, index)
            if config is None:  # the first batch fixes the batch size the program is compiled for
                config = configure(xb.shape[0])
                theta = config.layout.flatten(params, dtype)
                state = engine.initial_state(config, theta, optimizer.init(theta), dtype)
                history = {k: [] for k in config.history_names}
            if xb.shape[0] > config.batch_size:
                raise FnnValueError(f"batch {index} has {xb.shape[0]} samples, more than the first batch's "
                                    f"{config.batch_size}; make the first batch the largest")
            pending.append((xb, yb))
            index += 1
            if len(pending) == chunk:
                carry = _train_chunk(config, state, carry, pending, chunk, epoch, numbers)
                pending = []
        if index == 0:
            raise FnnValueError(f"the batches of epoch {epoch} were empty; the stream must yield (x, y) pairs "
                                "every epoch (a generator is used up after one epoch: pass a function "
                                "epoch -> iterable instead)")
        if pending:
            carry = _train_chunk(config, state, carry, pending, chunk, epoch, numbers)
        state, values = _end(config)(numbers, state, carry, data)
        for k, v in jax.device_get(values).items():
            history[k].append(float(v))
        if bool(state.stopped):
            break
    if config is None:  # epochs == 0
        config = configure(1)
        theta = config.layout.flatten(params, dtype)
        state = engine.initial_state(config, theta, optimizer.init(theta), dtype)
        history = {k: [] for k in config.history_names}
    marks = config.layout.state_marks(optimizer.init(config.layout.flatten(params, dtype)))
    return engine.result(config, engine.Outcome(state, history, [], []), marks)


def _batch(model, loss, params, item, index):
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise FnnTypeError(f"batch {index} must be a pair (x, y), got {type(item).__name__}")
    try:
        x, y = models.prepare(model, loss, params, *item)
    except (ValueError, TypeError) as e:
        raise type(e)(f"batch {index}: {e}") from None
    return np.asarray(x), np.asarray(y)


def _train_chunk(config, state, carry, pending, chunk, epoch, numbers):
    """Pad the chunk to `chunk` full-size batches (padding weighted 0), put it on the device, train it."""
    bs = config.batch_size
    d, k = config.layout.shapes[0][0], config.model.output_dim
    dtype = np.dtype(state.guard.last_loss.dtype)
    xs = np.zeros((chunk, bs, d), dtype)
    ys = np.zeros((chunk, bs, k), dtype)
    ws = np.zeros((chunk, bs), dtype)
    for i, (xb, yb) in enumerate(pending):
        xs[i, :len(xb)], ys[i, :len(yb)], ws[i, :len(xb)] = xb, yb, 1
    xs, ys, ws = jax.device_put((xs, ys, ws))  # asynchronous: the host goes on while this trains
    if carry is None:
        carry = _start(dtype)(state)
    return _steps(config)(carry, xs, ys, ws, np.asarray(epoch, np.int32), numbers)
