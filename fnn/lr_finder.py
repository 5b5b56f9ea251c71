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

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from fnn import _validate, callbacks, models, optim
from fnn.errors import FnnTypeError, FnnValueError
from fnn.trainer import Trainer

__all__ = ["LRFindResult", "lr_find", "valley"]

Array = jax.Array


class LRFindResult(NamedTuple):
    """rates, losses (smoothed, bias-corrected) and raw_losses per step run; suggestion: a rate."""

    rates: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    stopped_early: bool  # the loss blew up before max_lr


def lr_find(
    model: models.Sequential,
    params,
    x,
    y,
    *,
    loss: str | None = None,
    optimizer: Callable[[Any], optim.Optimizer] = optim.adam,
    min_lr: float = 1e-5,
    max_lr: float = 10.0,
    steps: int = 150,
    batch_size: int = 32,
    key=None,
    smoothing: float = 0.98,
    diverge: float = 4.0,
) -> LRFindResult:
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
    trainer = Trainer(
        model,
        loss=loss,
        optimizer=opt,
        batch_size=batch_size,
        callbacks=[callbacks.StepLoss(), callbacks.TerminateOnNaN()],
    )
    state = trainer.init(params, key=key)
    data = trainer.data(state, x, y)
    per_epoch = -(-int(data.n) // trainer.spec_for(data).batch_size)
    # The rate grows with the optimizer's step count; the run is `steps` steps of shuffled epochs,
    # stopped by the step budget (and early by a non-finite step); its per-step losses are StepLoss'.
    raw: list = []
    store: dict = {"step_loss": []}
    while len(raw) < steps:
        left = steps - len(raw)
        state, record = trainer.train_epochs(state, data, -(-left // per_epoch) + 1, left)
        host = jax.device_get(record)
        trainer.rules[0].collect(store, host.buffers[0], 0, int(host.epochs), None)
        raw = [float(v) for row in store["step_loss"] + [store.get("step_loss_pending", [])] for v in row]
        if bool(host.stopped) or int(host.steps) == 0:
            break
    raw_losses = np.asarray(raw[:steps], np.float64)
    finite = np.isfinite(raw_losses)
    n = int(np.argmin(finite)) if not finite.all() else raw_losses.size
    average, smoothed, best = 0.0, [], np.inf
    for i, value in enumerate(raw_losses[:n]):
        average = smoothing * average + (1 - smoothing) * value
        smoothed.append(average / (1 - smoothing ** (i + 1)))
        blown = smoothed[-1] > diverge * best
        best = min(best, smoothed[-1])
        if blown:
            n = i + 1
            break
    smoothed_losses = np.asarray(smoothed[:n])
    rates = min_lr * factor ** np.arange(n)
    return LRFindResult(rates, smoothed_losses, raw_losses[:n], valley(rates, smoothed_losses), n < steps)


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
