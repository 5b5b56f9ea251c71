"""The learning-rate range test (Smith, "Cyclical Learning Rates for Training Neural Networks",
2015/2017), compiled as one program.

From `min_lr`, the rate grows exponentially every step up to `max_lr` while the network trains on
random mini-batches; the loss, smoothed, first falls, then blows up. The run stops early once the
smoothed loss exceeds `diverge` times its best. The suggestion follows fastai's "valley" rule: the
longest stretch of steps over which the smoothed loss keeps falling, and a rate inside it (the
steepest-descent rule picks the noisy first steps on small networks; min/10 overshoots when dying
ReLU units flatten the curve).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate, engine, models, optim
from fnn.errors import FnnTypeError, FnnValueError

Array = jax.Array


class LRFindResult(NamedTuple):
    """rates, losses (smoothed, bias-corrected) and raw_losses per step run; suggestion: a rate."""

    rates: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    stopped_early: bool  # the loss blew up before max_lr


class _Loop(NamedTuple):
    params: Any
    opt_state: Any
    step: Array
    average: Array  # exponential moving average of the loss
    best: Array  # best bias-corrected average so far
    done: Array
    raw: Array  # (steps,) losses, nan where not run


@functools.lru_cache(maxsize=16)
def _compiled(config: engine.RunConfig, steps: int):
    """run(params, opt_state, x, y, key, smoothing, diverge) -> _Loop: the whole range test, one program."""
    objective = engine.batch_objective(config)

    def run(params, opt_state, x, y, key, smoothing, diverge):
        n = x.shape[0]

        def body(loop: _Loop) -> _Loop:
            idx = jax.random.randint(jax.random.fold_in(key, loop.step), (config.batch_size,), 0, n)
            (loss, _), grads = jax.value_and_grad(objective, has_aux=True)(loop.params, x[idx], y[idx], None)
            updates, opt_state = config.update(grads, loop.opt_state, loop.params)
            params = optim.apply_updates(loop.params, updates)
            average = smoothing * loop.average + (1 - smoothing) * loss
            smoothed = average / (1 - smoothing ** (loop.step + 1).astype(average.dtype))
            blown = ~jnp.isfinite(smoothed) | (smoothed > diverge * loop.best)
            return _Loop(params, opt_state, loop.step + 1, average, jnp.minimum(loop.best, smoothed),
                         blown | (loop.step + 1 >= steps), loop.raw.at[loop.step].set(loss))

        dtype = x.dtype
        start = _Loop(params, opt_state, jnp.zeros((), jnp.int32), jnp.zeros((), dtype), jnp.full((), jnp.inf, dtype),
                      jnp.zeros((), bool), jnp.full((steps,), jnp.nan, dtype))
        return jax.lax.while_loop(lambda loop: ~loop.done, body, start)

    return jax.jit(run)


def lr_find(model: models.Sequential, params, x, y, *, loss: str | None = None,
            optimizer: Callable[[Any], optim.Optimizer] = optim.adam, min_lr: float = 1e-5, max_lr: float = 10.0,
            steps: int = 150, batch_size: int = 32, key=None, smoothing: float = 0.98,
            diverge: float = 4.0) -> LRFindResult:
    """The learning-rate range test: `steps` steps at rates growing from min_lr to max_lr.

    optimizer: learning_rate -> Optimizer (fnn's optimizers take the growing rate as a schedule).
    Returns the rates, the smoothed and raw losses per step, and `suggestion` (the valley rule, see
    the module docstring). Train with `optimizer(suggestion)`. Memory: `steps` losses.

    Example:
        >>> found = fnn.lr_find(model, params, x, y, optimizer=fnn.optim.adam)
        >>> result = fnn.fit(model, params, x, y, optimizer=fnn.optim.adam(found.suggestion))
    """
    if not callable(optimizer) or isinstance(optimizer, tuple):
        raise FnnTypeError("optimizer must be a function learning_rate -> Optimizer, e.g. fnn.optim.adam")
    min_lr = _validate.real(min_lr, "min_lr", low=0, low_open=True)
    max_lr = _validate.real(max_lr, "max_lr", low=0, low_open=True)
    if max_lr <= min_lr:
        raise FnnValueError(f"max_lr ({max_lr}) must be larger than min_lr ({min_lr})")
    steps = _validate.integer(steps, "steps", minimum=5)
    batch_size = _validate.integer(batch_size, "batch_size", minimum=1)
    smoothing = _validate.real(smoothing, "smoothing", low=0, high=1, high_open=True)
    diverge = _validate.real(diverge, "diverge", low=1, low_open=True)
    key = jax.random.key(0) if key is None else _validate.key(key)
    factor = (max_lr / min_lr) ** (1.0 / (steps - 1))
    opt = optim.check_optimizer(optimizer(optim.exponential_decay(min_lr, factor)), "optimizer(schedule)")
    record = models.resolve_loss(model, loss)
    x, y = models.prepare(model, record, params, x, y)
    config = engine.configure(model, record, opt, x.shape[1], batch_size=min(batch_size, x.shape[0]), shuffle=True,
                              validate=False, target_loss=None, patience=None,
                              restore_best=False, verbose=0)
    theta = config.layout.flatten(params, x.dtype)
    out = _compiled(config, steps)(theta, opt.init(theta), x, y, key, np.asarray(smoothing, x.dtype),
                                   np.asarray(diverge, x.dtype))
    n = int(out.step)
    raw = np.asarray(out.raw)[:n].astype(np.float64)
    rates = min_lr * factor ** np.arange(n)
    average, smoothed = 0.0, np.empty(n)
    for i, value in enumerate(raw):
        average = smoothing * average + (1 - smoothing) * value
        smoothed[i] = average / (1 - smoothing ** (i + 1))
    return LRFindResult(rates, smoothed, raw, valley(rates, smoothed), n < steps)


def valley(rates: np.ndarray, smoothed: np.ndarray) -> float:
    """fastai's "valley" rule: the longest stretch over which the smoothed loss keeps falling (a
    longest decreasing subsequence), and the rate a half of that stretch's first two thirds in."""
    keep = np.isfinite(smoothed)
    rates, smoothed = rates[keep], smoothed[keep]
    if rates.size < 3:
        raise FnnValueError("the loss blew up within the first steps: lower min_lr")
    n = smoothed.size
    longest = np.ones(n, np.int64)  # longest[i]: the longest decreasing run of points ending at i
    start, end = 0, 0
    for i in range(1, n):
        before = longest[:i][smoothed[:i] > smoothed[i]]
        if before.size:
            longest[i] = before.max() + 1
        if longest[i] > longest[end]:
            end = i
            start = end - longest[end]
    third = (end - start) / 3
    return float(rates[max(0, start + int(third) + int(third / 2))])
