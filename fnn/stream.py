"""Training on data that does not fit in memory: a stream of mini-batches instead of arrays.

`fit(model, params, batches, None, ...)` reads (x_batch, y_batch) pairs from `batches` each
epoch — a function epoch -> iterable (e.g. a generator reading files), or a re-iterable such as
a list. Batches are checked on the host, stacked `chunk` at a time and put on the device
while the previous chunk trains: one compiled scan per chunk, not one dispatch per batch, and
the host prepares the next chunk while the device computes. Use arrays when the data fits in
memory (the whole run is then one program, with on-device shuffling); use a stream when it
does not, or when batches are made on the fly.
"""
from __future__ import annotations

import functools
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate, models, train
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
def _chunk_fn(config: train._Config, layout: train._Layout):
    def chunk(carry, xs, ys, ws, epoch):
        carry, _ = jax.lax.scan(train._step_fn(config, layout, epoch), carry, (xs, ys, ws))
        return carry

    return jax.jit(chunk)


@functools.lru_cache(maxsize=32)
def _end_fn(config: train._Config, layout: train._Layout):
    return jax.jit(functools.partial(train._end_epoch, config, layout))


def fit_stream(model, params, batches, *, loss=None, optimizer=None, epochs=100, validation_data=None,
               target_loss=None, patience=None, min_delta=0.0, restore_best=True, max_bad_steps=0, verbose=0,
               chunk: int = CHUNK) -> train.FitResult:
    """fit on a stream of (x_batch, y_batch) pairs; see the module docstring. Returns a FitResult."""
    spec, optimizer, epochs, verbose, max_bad_steps, target_loss, patience, min_delta = train._check_settings(
        model, params, loss, optimizer, epochs, verbose, max_bad_steps, target_loss, patience, min_delta)
    chunk = _validate.integer(chunk, "chunk", minimum=1)
    if not (callable(batches) or hasattr(batches, "__iter__")):
        raise FnnTypeError("batches must be a function epoch -> iterable of (x, y), or an iterable of (x, y)")
    dtype = params[0][0].dtype
    n_in = params[0][0].shape[0]
    if validation_data is not None:
        xv, yv = train._validation(model, spec, params, validation_data)
    else:
        xv = jnp.zeros((0, n_in), dtype)
        yv = jnp.zeros((0, model.output_dim), dtype)
    layout = train._Layout.of(model, n_in)
    theta = layout.flatten([[jnp.asarray(leaf, dtype) for leaf in p] for p in params])
    config = None
    state = None
    target = jnp.asarray(jnp.inf if target_loss is None else target_loss, dtype)
    total = jnp.asarray(epochs, jnp.int32)
    for epoch in range(epochs):
        carry = None
        pending: list = []
        index = 0
        for item in _epoch_batches(batches, epoch, epochs):
            xb, yb = _batch(model, spec, params, item, index)
            if config is None:  # the first batch fixes the batch size the program is compiled for
                config = train._Config(model=model, spec=spec, optimizer=optimizer, batch_size=xb.shape[0],
                                       shuffle=False, capacity=train._bucket(epochs), validate=xv.shape[0] > 0,
                                       target=target_loss is not None, patience=patience, min_delta=min_delta,
                                       keep_best=patience is not None and bool(restore_best),
                                       max_bad_steps=max_bad_steps, verbose=verbose)
                state = train._initial_state(config, theta, optimizer.init(theta), dtype)
            if xb.shape[0] > config.batch_size:
                raise FnnValueError(f"batch {index} has {xb.shape[0]} samples, more than the first batch's "
                                    f"{config.batch_size}; make the first batch the largest")
            pending.append((xb, yb))
            index += 1
            if len(pending) == chunk:
                carry = _train_chunk(config, layout, state, carry, pending, chunk, epoch)
                pending = []
        if config is None:
            raise FnnValueError(f"the batches of epoch {epoch} were empty; the stream must yield (x, y) pairs")
        if pending or carry is None:
            carry = _train_chunk(config, layout, state, carry, pending, chunk, epoch)
        state = _end_fn(config, layout)(state, carry, xv, yv, target, total)
        if bool(state.stopped):
            break
    if config is None:  # epochs == 0
        config = train._Config(model=model, spec=spec, optimizer=optimizer, batch_size=1, shuffle=False,
                               capacity=1, validate=False, target=False, patience=None, min_delta=0.0,
                               keep_best=False, max_bad_steps=0, verbose=0)
        state = train._initial_state(config, theta, optimizer.init(theta), dtype)
    return train._result(config, layout, state, None)


def _batch(model, spec, params, item, index):
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise FnnTypeError(f"batch {index} must be a pair (x, y), got {type(item).__name__}")
    try:
        x, y = models.prepare(model, spec, params, *item)
    except (ValueError, TypeError) as e:
        raise type(e)(f"batch {index}: {e}") from None
    return np.asarray(x), np.asarray(y)


def _train_chunk(config, layout, state, carry, pending, chunk, epoch):
    """Pad the chunk to `chunk` full-size batches (padding masked out), put it on the device, train it."""
    bs = config.batch_size
    d, k = layout.shapes[0][0], config.model.output_dim
    dtype = np.dtype(state.best.dtype)
    xs = np.zeros((chunk, bs, d), dtype)
    ys = np.zeros((chunk, bs, k), dtype)
    ws = np.zeros((chunk, bs), dtype)
    for i, (xb, yb) in enumerate(pending):
        xs[i, :len(xb)], ys[i, :len(yb)], ws[i, :len(xb)] = xb, yb, 1
    xs, ys, ws = jax.device_put((xs, ys, ws))  # asynchronous: the host goes on while this trains
    if carry is None:
        carry = train._start_epoch(state)
    return _chunk_fn(config, layout)(carry, xs, ys, ws, jnp.asarray(epoch, jnp.int32))
