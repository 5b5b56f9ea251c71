"""Many training runs as one compiled program: learning rates × seeds, vmapped.

Each (learning rate, seed) pair is exactly the run `fnn.fit` would do with
`params=model.init(jax.random.key(seed), n_in)` and `key=jax.random.key(seed)`; the runs are
stacked on two leading axes and trained together, each with its own stopping state, so one
diverging run neither stops nor poisons the others.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn import _validate, models, optim, train
from fnn.errors import FnnTypeError, FnnValueError

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
          max_bad_steps: int = 0, shuffle: bool = True) -> SweepResult:
    """Train len(learning_rates) × len(seeds) networks in one compiled call.

    optimizer: learning_rate -> Optimizer, e.g. `lambda lr: fnn.optim.momentum(lr, 0.9)`; it is
    called with a traced rate, so it must not branch on its value. The other arguments are fit's.

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
    first = optim.check_optimizer(optimizer(rates[0]), "optimizer(learning_rates[0])")
    params0 = model.init(jax.random.key(seeds[0]), n_in)
    setup = train._setup(model, params0, x, y, loss=loss, optimizer=first, epochs=epochs, batch_size=batch_size,
                         key=jax.random.key(seeds[0]), validation_data=validation_data, validation_split=0.0,
                         target_loss=target_loss, patience=patience, min_delta=min_delta, restore_best=restore_best,
                         max_bad_steps=max_bad_steps, shuffle=shuffle, verbose=0, checkpoint=None,
                         checkpoint_every=None, resume=None)
    config, layout, data = setup.config, setup.layout, setup.data
    dtype = data[0].dtype
    starts = [layout.flatten(model.init(jax.random.key(s), n_in, dtype)) for s in seeds]
    thetas = jax.tree.map(lambda *leaves: jnp.stack(leaves), *starts)
    shuffle_keys = jnp.stack([jax.random.split(jax.random.key(s))[1] for s in seeds])

    # Batched over models, matmuls beat the broadcast sums that suit one tiny network.
    runs = _compiled(config._replace(optimizer=None, small_layers=False), optimizer, jnp.dtype(dtype))
    states = runs(jnp.asarray(rates, dtype), thetas, shuffle_keys, data, jnp.asarray(epochs, jnp.int32))
    return _result(config, layout, states, rates, seeds, epochs)


@functools.lru_cache(maxsize=16)
def _compiled(config, optimizer, dtype):
    """The vmapped runs, cached on the settings and the optimizer function (by identity)."""

    def one(rate, theta, shuffle_key, data, epochs):
        opt = optimizer(rate)
        cfg = config._replace(optimizer=opt)
        state = train._initial_state(cfg, theta, opt.init(theta), dtype)
        return train._make_run(cfg)(state, data[:4] + (shuffle_key,) + data[5:], epochs)

    over_seeds = jax.vmap(one, in_axes=(None, 0, 0, None, None))
    return jax.jit(jax.vmap(over_seeds, in_axes=(0, None, None, None, None)))


def _sequence(values, name):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise FnnTypeError(f"{name} must be a list, got {type(values).__name__}")
    values = list(np.asarray(values).tolist()) if hasattr(values, "shape") else list(values)
    if not values:
        raise FnnValueError(f"{name} must not be empty")
    return values


def _result(config, layout, states, rates, seeds, epochs) -> SweepResult:
    host = jax.device_get(states)
    keep = config.keep_best & (np.asarray(host.best_epoch) >= 0)
    theta = states.params
    if config.keep_best:
        theta = jax.tree.map(lambda best, last: jnp.where(keep.reshape(keep.shape + (1,) * (best.ndim - 2)), best, last),
                             states.best_params, states.params)
    params = layout.unflatten(theta)
    history = {k: np.asarray(h)[..., :epochs] for k, h in host.history.items()}
    run = np.asarray(host.epoch)
    reasons = tuple(tuple(train.STOP_REASONS[int(r)] for r in row) for row in np.asarray(host.reason))
    monitor = history["val_loss"] if config.validate else history["loss"]
    at = np.where(keep, np.asarray(host.best_epoch), run - 1) if config.keep_best else run - 1
    score = np.take_along_axis(monitor, np.maximum(at, 0)[..., None], axis=-1)[..., 0]
    diverged = np.asarray(host.reason) == train.NON_FINITE
    score = np.where(diverged | (run == 0), np.nan, score)
    return SweepResult(tuple(rates), tuple(seeds), params, history, reasons, run, score)
