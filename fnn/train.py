"""Training as one compiled program: fit, evaluate, predict.

`fit` checks every input on the host, then runs the whole training run — epochs, on-device
shuffling, the optimizer steps, history and the stopping rules — as one XLA program: a
`lax.while_loop` over epochs around a `lax.scan` over mini-batches. Compiled programs are cached
by (model, loss, optimizer, shapes, settings), so a second `fit` of the same kind compiles
nothing. With a checkpoint the run leaves the device every `checkpoint_every` epochs to save,
then re-enters the same program.
"""
from __future__ import annotations

import functools
import math
import sys
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fnn import _validate, losses, metrics, models, optim
from fnn.errors import FnnTypeError, FnnValueError

Array = jax.Array

EPOCHS, TARGET_LOSS, EARLY_STOPPING, NON_FINITE = 0, 1, 2, 3
STOP_REASONS = ("epochs", "target_loss", "early_stopping", "non_finite_loss")

# Incremented each time the epoch step is traced: tests use it to prove fit compiles once.
TRACE_COUNT = {"step": 0}


class Divergence(NamedTuple):
    """Where training met a non-finite loss, gradient or update."""

    epoch: int  # 0-based epoch
    step: int  # 0-based mini-batch within that epoch
    loss: float  # the loss of that step (may be nan or inf)
    leaf: str  # the first non-finite gradient leaf, e.g. "[2].w", else "update" or "loss"


class FitResult(NamedTuple):
    """What `fit` returns. history maps each name to one float per epoch run."""

    params: Any
    opt_state: Any
    history: dict
    stop_reason: str
    epochs_run: int
    best_epoch: int | None  # with early stopping: the epoch of the best monitored loss
    divergence: Divergence | None


class _Config(NamedTuple):
    """Everything static about a run: the compiled program is cached on it."""

    model: models.Sequential
    spec: losses.LossSpec
    optimizer: optim.Optimizer
    batch_size: int
    shuffle: bool
    capacity: int  # history length: epochs rounded up to a power of two, so epochs=n needs no new program
    validate: bool
    target: bool
    patience: int | None
    min_delta: float
    keep_best: bool
    max_bad_steps: int
    verbose: int
    mesh: Any = None  # a jax.sharding.Mesh with a "data" axis: each batch is split across its devices
    small_layers: bool = True  # tiny layers as fused sums, not matmul calls (layers.dense_apply)


class _State(NamedTuple):
    """The loop carry; every field is an array, so the state can be checkpointed as it is."""

    params: Array  # θ: every parameter in one flat vector (see _Layout)
    opt_state: Any  # the optimizer's state over θ
    epoch: Array  # epochs completed
    stopped: Array  # bool
    reason: Array  # index into STOP_REASONS
    best: Array  # best monitored loss so far
    best_epoch: Array
    wait: Array  # epochs since the best
    best_params: Any  # θ at the best monitored loss (with restore_best), else ()
    bad_run: Array  # consecutive non-finite steps
    bad_info: Array  # (epoch, step) of the last non-finite step, -1 if none
    bad_loss: Array
    history: dict  # name -> (capacity,) array, nan where not run


def _history_names(spec: losses.LossSpec, validate: bool) -> list[str]:
    metric = metrics.name_for(spec)
    names = ["loss", metric]
    return names + ["val_loss", f"val_{metric}"] if validate else names


FLAT_LIMIT = 4096  # networks with at most this many parameters train on one flat vector


class _Layout(NamedTuple):
    """How the params travel through the compiled run: as one flat vector θ (w row-major, then b,
    layer after layer) for small networks, where one fused pass beats one op per leaf; as the
    tuple of DenseParams otherwise, where slicing θ back into matrices would cost a copy per step."""

    shapes: tuple[tuple[int, int], ...]  # each layer's (n_in, n_out)
    flat: bool

    @classmethod
    def of(cls, model, n_in: int) -> "_Layout":
        shapes = model.shapes(n_in)
        return cls(shapes, sum(i * o + o for i, o in shapes) <= FLAT_LIMIT)

    @property
    def size(self) -> int:
        return sum(i * o + o for i, o in self.shapes)

    def flatten(self, params):
        if not self.flat:
            return tuple(models.DenseParams(*p) for p in params)
        return jnp.concatenate([leaf.reshape(-1) for p in params for leaf in p])

    def unflatten(self, theta) -> tuple:
        if not self.flat:
            return theta
        out, at = [], 0
        for n_in, n_out in self.shapes:
            w = theta[..., at:at + n_in * n_out].reshape(theta.shape[:-1] + (n_in, n_out))
            at += n_in * n_out
            out.append(models.DenseParams(w, theta[..., at:at + n_out]))
            at += n_out
        return tuple(out)

    def unflatten_state(self, state):
        """An optimizer state over θ as the same state over the params tree (θ-sized leaves unflattened)."""
        if not self.flat:
            return state
        return jax.tree.map(lambda leaf: self.unflatten(leaf) if jnp.shape(leaf) == (self.size,) else leaf, state)

    def first_non_finite(self, grads) -> str | None:
        """The name of the first leaf holding a NaN/inf, e.g. "[2].w", or None."""
        named = [(f"[{i}].{n}", leaf) for i, p in enumerate(self.unflatten(grads)) for n, leaf in zip("wb", p)]
        for name, leaf in named:
            if not np.isfinite(np.asarray(leaf)).all():
                return name
        return None


def _select(take, new, old):
    return jax.tree.map(lambda a, b: jnp.where(take, a, b), new, old)


def _all_finite(tree) -> Array:
    """One scalar test: a NaN/inf anywhere makes the sum non-finite."""
    return jnp.isfinite(sum(jnp.sum(leaf) for leaf in jax.tree.leaves(tree)))


def _step_fn(config: _Config, layout: _Layout, epoch):
    """One optimizer step on a mini-batch, on the params as `layout` carries them (see _Layout).
    A non-finite step is not applied."""
    model, spec, opt = config.model, config.spec, config.optimizer

    def step(carry, batch):
        TRACE_COUNT["step"] += 1
        theta, opt_state, bad_run, stopped, info, bad_loss, sums, index = carry
        xb, yb, w = batch

        def batch_loss(th):
            out = models.network_output(model, spec, layout.unflatten(th), xb, small=config.small_layers)
            if w is None:
                return losses.value(spec, out, yb), out
            return jnp.sum(w * losses.per_sample(spec, out, yb)) / jnp.sum(w), out

        (loss, out), grads = jax.value_and_grad(batch_loss, has_aux=True)(theta)
        updates, new_opt_state = opt.update(grads, opt_state, theta)
        new_theta = optim.apply_updates(theta, updates)
        ok = jnp.isfinite(loss) & _all_finite(new_theta)  # a NaN/inf gradient or update shows here
        ran = ~stopped if w is None else ~stopped & (jnp.sum(w) > 0)  # an all-padding batch is no step
        take = ok & ran
        theta = _select(take, new_theta, theta)
        opt_state = _select(take, new_opt_state, opt_state)
        bad = ~ok & ran
        info = jnp.where(bad, jnp.stack([epoch, index]).astype(info.dtype), info)
        bad_loss = jnp.where(bad, loss.astype(bad_loss.dtype), bad_loss)
        bad_run = jnp.where(ran, jnp.where(ok, 0, bad_run + 1), bad_run)
        stopped = stopped | (bad_run > config.max_bad_steps)
        count = jnp.asarray(xb.shape[0], xb.dtype) if w is None else jnp.sum(w)
        hits = metrics.per_sample(spec, jax.lax.stop_gradient(out), yb)
        hits = jnp.sum(hits) if w is None else jnp.sum(w * hits)
        loss_sum, metric_sum, n_sum = sums
        sums = (loss_sum + jnp.where(ran, loss * count, 0.0), metric_sum + jnp.where(ran, hits, 0.0),
                n_sum + jnp.where(ran, count, 0.0))
        return (theta, opt_state, bad_run, stopped, info, bad_loss, sums, index + 1), None

    return step


def _start_epoch(state: _State):
    """The scan carry of an epoch: (θ, opt_state, bad_run, stopped, bad_info, bad_loss, sums, step)."""
    zero = jnp.zeros((), state.best.dtype)
    return (state.params, state.opt_state, state.bad_run, jnp.zeros((), bool), state.bad_info, state.bad_loss,
            (zero, zero, zero), jnp.zeros((), jnp.int32))


def _end_epoch(config: _Config, layout: _Layout, state: _State, carry, xv, yv, target, total) -> _State:
    """Record the epoch's history and apply the stopping rules: divergence, early stopping, target loss."""
    spec, model = config.spec, config.model
    metric = metrics.name_for(spec)
    epoch = state.epoch
    theta, opt_state, bad_run, diverged, info, bad_loss, (loss_sum, metric_sum, n_sum), _ = carry
    loss = loss_sum / n_sum
    values = {"loss": loss, metric: metric_sum / n_sum}
    if config.validate:
        out = models.network_output(model, spec, layout.unflatten(theta), xv)
        values["val_loss"] = losses.value(spec, out, yv)
        values[f"val_{metric}"] = jnp.mean(metrics.per_sample(spec, out, yv))
    history = {k: h.at[epoch].set(values[k].astype(h.dtype)) for k, h in state.history.items()}

    reason, best, best_epoch, wait, best_params = (state.reason, state.best, state.best_epoch, state.wait,
                                                   state.best_params)
    stopped = diverged
    reason = jnp.where(diverged, NON_FINITE, reason)
    if config.patience is not None:
        monitored = values["val_loss"] if config.validate else loss
        improved = (monitored < best - config.min_delta) & ~diverged
        best = jnp.where(improved, monitored.astype(best.dtype), best)
        best_epoch = jnp.where(improved, epoch, best_epoch)
        wait = jnp.where(improved, 0, wait + 1)
        if config.keep_best:
            best_params = _select(improved, theta, best_params)
        early = ~stopped & (wait >= config.patience)
        reason = jnp.where(early, EARLY_STOPPING, reason)
        stopped = stopped | early
    if config.target:
        reached = ~stopped & (loss <= target)
        reason = jnp.where(reached, TARGET_LOSS, reason)
        stopped = stopped | reached
    if config.verbose:
        jax.debug.callback(functools.partial(_report, config.verbose), epoch, total, stopped,
                           {k: values[k] for k in state.history}, ordered=True)
    return _State(theta, opt_state, epoch + 1, stopped, reason, best, best_epoch, wait, best_params, bad_run,
                  info, bad_loss, history)


def _make_run(config: _Config):
    """run(state, data, stop_epoch) -> state: epochs from state.epoch up to stop_epoch (not yet jitted)."""

    def epoch_body(args):
        state, data, stop_epoch = args
        x, y, xv, yv, key, target, total = data
        layout = _Layout.of(config.model, x.shape[1])
        n, bs = x.shape[0], config.batch_size
        n_batches = -(-n // bs)
        pad = n_batches * bs - n
        epoch = state.epoch
        if config.shuffle:
            order = jax.random.permutation(jax.random.fold_in(key, epoch), n)
        else:
            order = jnp.arange(n)
        # The epoch's batches are gathered once, up front; the last is padded and masked if partial.
        idx = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)]).reshape(n_batches, bs)
        mask = (jnp.arange(n_batches * bs) < n).reshape(n_batches, bs).astype(x.dtype) if pad else None
        batches = (x[idx], y[idx], mask)
        if config.mesh is not None:  # split every batch across the devices; XLA all-reduces the gradients
            batches = jax.tree.map(lambda a: jax.lax.with_sharding_constraint(
                a, NamedSharding(config.mesh, PartitionSpec(None, "data"))), batches)
        carry, _ = jax.lax.scan(_step_fn(config, layout, epoch), _start_epoch(state), batches)
        return _end_epoch(config, layout, state, carry, xv, yv, target, total), data, stop_epoch

    def cond(args):
        state, _, stop_epoch = args
        return (state.epoch < stop_epoch) & ~state.stopped

    def run(state, data, stop_epoch):
        state, _, _ = jax.lax.while_loop(cond, epoch_body, (state, data, stop_epoch))
        return state

    return run


@functools.lru_cache(maxsize=64)
def _compiled(config: _Config):
    return jax.jit(_make_run(config))


def _report(verbose: int, epoch, total, stopped, values):
    epoch, total = int(epoch) + 1, int(total)
    parts = "  ".join(f"{k} {float(v):.4f}" for k, v in values.items())
    if verbose >= 2:
        print(f"epoch {epoch}/{total}  {parts}", flush=True)
        return
    width = 20
    done = int(width * epoch / total)
    bar = "=" * done + (">" if done < width else "") + "." * max(0, width - done - 1)
    end = "\n" if (epoch >= total or bool(stopped)) else ""
    sys.stdout.write(f"\repoch {epoch}/{total} [{bar}] {parts}{end}")
    sys.stdout.flush()


def _bucket(epochs: int) -> int:
    return 1 << max(epochs - 1, 0).bit_length()


def _default_loss(model: models.Sequential) -> str:
    act = model.output_activation
    if act == "sigmoid":
        return losses.BINARY_CE
    if act == "softmax":
        return losses.CATEGORICAL_CE
    return losses.MSE


def _initial_state(config: _Config, theta, opt_state, dtype) -> _State:
    names = _history_names(config.spec, config.validate)
    nan = jnp.full((config.capacity,), jnp.nan, dtype)
    best_params = theta if config.keep_best else ()
    return _State(params=theta, opt_state=opt_state, epoch=jnp.zeros((), jnp.int32),
                  stopped=jnp.zeros((), bool), reason=jnp.zeros((), jnp.int32), best=jnp.full((), jnp.inf, dtype),
                  best_epoch=jnp.full((), -1, jnp.int32), wait=jnp.zeros((), jnp.int32), best_params=best_params,
                  bad_run=jnp.zeros((), jnp.int32), bad_info=jnp.full((2,), -1, jnp.int32),
                  bad_loss=jnp.full((), jnp.nan, dtype), history={k: nan for k in names})


def _split_validation(key, x, y, fraction):
    n = x.shape[0]
    n_val = int(math.floor(n * fraction))
    if n_val < 1 or n - n_val < 1:
        raise FnnValueError(f"validation_split={fraction} of {n} samples leaves an empty training or validation "
                            "set; use a fraction that keeps at least one sample on each side")
    perm = np.asarray(jax.random.permutation(key, n))
    val, train = perm[:n_val], perm[n_val:]
    return x[train], y[train], x[val], y[val]


class _Setup(NamedTuple):
    config: _Config
    layout: _Layout
    state: _State
    data: tuple  # (x, y, x_val, y_val, shuffle_key, target_loss, epochs): the run's array arguments
    key: Array
    checkpoint_every: int | None


def _check_settings(model, params, loss, optimizer, epochs, verbose, max_bad_steps, target_loss, patience,
                    min_delta):
    """The checks fit shares with its stream path: (spec, optimizer, epochs, verbose, max_bad_steps,
    target_loss, patience, min_delta), each validated, with the defaults filled in."""
    models.check_params(model, params)
    spec = models.resolve_loss(model, _default_loss(model) if loss is None else loss)
    optimizer = optim.adam(1e-3) if optimizer is None else optim.check_optimizer(optimizer)
    epochs = _validate.integer(epochs, "epochs", minimum=0)
    verbose = _validate.integer(verbose, "verbose", minimum=0)
    max_bad_steps = _validate.integer(max_bad_steps, "max_bad_steps", minimum=0)
    if target_loss is not None:
        target_loss = _validate.real(target_loss, "target_loss")
    if patience is not None:
        patience = _validate.integer(patience, "patience", minimum=1)
    min_delta = _validate.real(min_delta, "min_delta", low=0)
    return spec, optimizer, epochs, verbose, max_bad_steps, target_loss, patience, min_delta


def _validation(model, spec, params, validation_data):
    """validation_data=(x_val, y_val), checked and prepared like the training data."""
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise FnnTypeError("validation_data must be a pair (x_val, y_val)")
    return models.prepare(model, spec, params, *validation_data, xname="x_val", yname="y_val")


def _setup(model, params, x, y, *, loss, optimizer, epochs, batch_size, key, validation_data, validation_split,
           target_loss, patience, min_delta, restore_best, max_bad_steps, shuffle, verbose, checkpoint,
           checkpoint_every, resume, devices=None) -> _Setup:
    """Check every argument of fit on the host and build the run's static config and initial state."""
    spec, optimizer, epochs, verbose, max_bad_steps, target_loss, patience, min_delta = _check_settings(
        model, params, loss, optimizer, epochs, verbose, max_bad_steps, target_loss, patience, min_delta)
    batch_size = _validate.integer(batch_size, "batch_size", minimum=1)
    saved = None
    if resume is not None:
        from fnn import checkpoint as ckpt

        saved = ckpt.load(resume)
        if not isinstance(saved, dict) or saved.get("format") != "fnn-fit":
            raise FnnValueError(f"resume={resume!r} is not a checkpoint written by fit(checkpoint=...)")
        if key is None:
            key = saved["key"]  # the run's own key, so the resumed epochs shuffle as the first ones did
    key = jax.random.key(0) if key is None else _validate.key(key)
    if checkpoint_every is not None:
        checkpoint_every = _validate.integer(checkpoint_every, "checkpoint_every", minimum=1)
        if checkpoint is None:
            raise FnnValueError("checkpoint_every needs checkpoint=path to save to")
    elif checkpoint is not None:
        checkpoint_every = max(epochs, 1)

    x, y = models.prepare(model, spec, params, x, y)
    dtype = x.dtype
    split_key, shuffle_key = jax.random.split(key)
    if validation_data is not None:
        if validation_split:
            raise FnnValueError("pass validation_data or validation_split, not both")
        xv, yv = _validation(model, spec, params, validation_data)
    elif validation_split:
        fraction = _validate.real(validation_split, "validation_split", low=0, high=1, low_open=True, high_open=True)
        x, y, xv, yv = _split_validation(split_key, x, y, fraction)
    else:
        xv, yv = x[:0], y[:0]
    validate = xv.shape[0] > 0

    mesh = _mesh(devices)
    if _spans_processes(mesh):
        if validation_split:
            raise FnnValueError("validation_split is not available across processes: pass each process's "
                                "share of the validation set as validation_data")
        # Each process passed its own rows: together they form the global, sample-sharded data.
        rows = NamedSharding(mesh, PartitionSpec("data"))
        x, y, xv, yv = (jax.make_array_from_process_local_data(rows, np.asarray(a)) for a in (x, y, xv, yv))
    batch_size = min(batch_size, x.shape[0])
    if mesh is not None and batch_size % mesh.shape["data"]:
        n = mesh.shape["data"]
        raise FnnValueError(f"batch_size {batch_size} is not divisible by the {n} devices it is split over; "
                            f"use a multiple of {n}")
    config = _Config(model=model, spec=spec, optimizer=optimizer, batch_size=batch_size,
                     shuffle=bool(shuffle), capacity=_bucket(epochs), validate=validate,
                     target=target_loss is not None, patience=patience, min_delta=min_delta,
                     keep_best=patience is not None and bool(restore_best), max_bad_steps=max_bad_steps,
                     verbose=verbose, mesh=mesh)
    layout = _Layout.of(model, x.shape[1])
    # Nothing in the run writes to its inputs, so the caller's params stay as they are either way.
    theta = layout.flatten([[jnp.asarray(leaf, dtype) for leaf in p] for p in params])
    if saved is not None:
        state = _resume_state(saved, config, theta, optimizer, dtype)
    else:
        state = _initial_state(config, theta, optimizer.init(theta), dtype)
    target = jnp.asarray(jnp.inf if target_loss is None else target_loss, dtype)
    data = (x, y, xv, yv, shuffle_key, target, jnp.asarray(epochs, jnp.int32))
    if _spans_processes(mesh):  # the same host values on every process become one replicated array
        state, rest = _replicate(mesh, (state, data[4:]))
        data = data[:4] + rest
    elif mesh is not None:  # params, optimizer state and data start replicated on every device
        state, data = jax.device_put((state, data), NamedSharding(mesh, PartitionSpec()))
    return _Setup(config, layout, state, data, key, checkpoint_every)


def _replicate(mesh, tree):
    """Each process's identical copy of `tree` as global arrays replicated over the mesh."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def one(leaf):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(one(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        value = np.asarray(jax.device_get(leaf))
        return jax.make_array_from_callback(value.shape, replicated, lambda index: value[index])

    return jax.tree.map(one, tree)


def _spans_processes(mesh) -> bool:
    return mesh is not None and any(d.process_index != jax.process_index() for d in mesh.devices.flat)


def _mesh(devices):
    """None, or a 1-d data-parallel Mesh over `devices` (a list of jax devices or a Mesh with a "data" axis)."""
    if devices is None:
        return None
    if isinstance(devices, Mesh):
        if "data" not in devices.axis_names:
            raise FnnValueError(f"devices= Mesh needs an axis named 'data' to split batches over, it has "
                                f"{devices.axis_names}")
        mesh = devices
    else:
        devices = list(devices) if isinstance(devices, (list, tuple)) else None
        if not devices or not all(isinstance(d, jax.Device) for d in devices):
            raise FnnTypeError("devices must be a non-empty list of jax devices (e.g. jax.devices()) or a Mesh")
        mesh = Mesh(np.array(devices), ("data",))
    return mesh


def fit(model: models.Sequential, params, x, y, *, loss: str | None = None, optimizer: optim.Optimizer | None = None,
        epochs: int = 100, batch_size: int = 32, key: Array | None = None, validation_data=None,
        validation_split: float = 0.0, target_loss: float | None = None, patience: int | None = None,
        min_delta: float = 0.0, restore_best: bool = True, max_bad_steps: int = 0, shuffle: bool = True,
        verbose: int = 0, checkpoint=None, checkpoint_every: int | None = None, resume=None,
        devices=None) -> FitResult:
    """Train `params` on (x, y) with mini-batch gradient steps; returns new params and the history.

    x: (n, n_in); y: targets in any form the loss accepts. loss defaults to the output layer's
    natural pair (sigmoid: binary CE, softmax: categorical CE, else mse); optimizer defaults to
    adam(1e-3). Every sample counts each epoch: the last batch may be partial. Stops after
    `epochs`, when the training loss reaches `target_loss`, when the monitored loss (val_loss,
    else loss) has not improved by `min_delta` for `patience` epochs (then, with `restore_best`,
    the best params are returned), or at the first non-finite loss, gradient or update (after
    `max_bad_steps` skipped ones in a row): the result then holds the last finite params.
    checkpoint=path saves the run's whole state every `checkpoint_every` epochs (default: at the
    end); resume=path continues such a run (epochs counts the whole run). devices=jax.devices()
    (or a Mesh with a "data" axis) splits every batch across the devices, params replicated.
    With y=None, x may be a stream of (x_batch, y_batch) pairs for data larger than memory
    (see fnn.stream); batch_size and shuffling are then the stream's.

    Example:
        >>> result = fnn.fit(model, params, x, y, loss="binary_cross_entropy",
        ...                  optimizer=fnn.optim.momentum(0.1, 0.9), epochs=200, key=jax.random.key(1))
        >>> result.history["loss"][-1], result.stop_reason
    """
    from fnn import stream

    if y is None and stream.is_stream(x):
        unsupported = dict(key=key, validation_split=validation_split or None, checkpoint=checkpoint, resume=resume,
                           devices=devices)
        given = [k for k, v in unsupported.items() if v is not None]
        if given:
            raise FnnValueError(f"{', '.join(given)} cannot be used with a stream of batches; the stream decides "
                                "the order and split of the data")
        return stream.fit_stream(model, params, x, loss=loss, optimizer=optimizer, epochs=epochs,
                                 validation_data=validation_data, target_loss=target_loss, patience=patience,
                                 min_delta=min_delta, restore_best=restore_best, max_bad_steps=max_bad_steps,
                                 verbose=verbose)
    if y is None:
        raise FnnValueError("y is None: pass targets, or pass x as a stream of (x, y) batches")
    setup = _setup(model, params, x, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                   key=key, validation_data=validation_data, validation_split=validation_split,
                   target_loss=target_loss, patience=patience, min_delta=min_delta, restore_best=restore_best,
                   max_bad_steps=max_bad_steps, shuffle=shuffle, verbose=verbose, checkpoint=checkpoint,
                   checkpoint_every=checkpoint_every, resume=resume, devices=devices)
    config, layout, state, data = setup.config, setup.layout, setup.state, setup.data
    run = _compiled(config)
    stop_at = int(state.epoch)
    while epochs > 0 and stop_at < epochs and not bool(state.stopped):
        stop_at = min(stop_at + (setup.checkpoint_every or epochs), epochs)
        state = run(state, data, jnp.asarray(stop_at, jnp.int32))
        if checkpoint is not None:
            from fnn import checkpoint as ckpt

            ckpt.save(checkpoint, _checkpoint_tree(state, setup.key), allow_non_finite=True)
    return _result(config, layout, state, data)


def _checkpoint_tree(state: _State, key) -> dict:
    return {"format": "fnn-fit", "state": state._asdict(), "key": key}


def _resume_state(saved, config: _Config, theta, optimizer, dtype) -> _State:
    fresh = _initial_state(config, theta, optimizer.init(theta), dtype)
    state = saved["state"]
    expected = jax.tree.structure(fresh._asdict())
    got = jax.tree.structure(state)
    if expected != got:
        raise FnnValueError("the checkpoint to resume was saved by a run of another kind (model, optimizer, "
                            "validation or stopping settings differ); resume with the same settings")
    state = dict(state, history={k: _resize(h, config.capacity) for k, h in state["history"].items()})
    if int(state["epoch"]) > config.capacity:
        raise FnnValueError(f"the checkpoint has run {int(state['epoch'])} epochs, more than epochs={config.capacity}")
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(fresh._asdict())[0], jax.tree.leaves(state)):
        if jnp.shape(a) != jnp.shape(b):
            raise FnnValueError(f"the checkpoint's {jax.tree_util.keystr(path)} has shape {jnp.shape(b)}, this run "
                                f"expects {jnp.shape(a)} (epochs or data size differ from the saved run)")
    return jax.tree.map(lambda a, b: jnp.asarray(b, a.dtype), fresh, _State(**state))


def _resize(h, capacity):
    h = np.asarray(h)
    out = np.full((capacity,), np.nan, h.dtype)
    out[:min(capacity, h.shape[0])] = h[:capacity]
    return out


def _result(config: _Config, layout: _Layout, state: _State, data) -> FitResult:
    host = jax.device_get(state)
    if _spans_processes(config.mesh):  # results are replicated: continue with this process's copy
        state = jax.tree.map(jnp.asarray, host)
    n = int(host.epoch)
    history = {k: [float(v) for v in np.asarray(host.history[k])[:n]]
               for k in _history_names(config.spec, config.validate)}
    reason = STOP_REASONS[int(host.reason)]
    theta = state.best_params if config.keep_best and int(host.best_epoch) >= 0 else state.params
    divergence = None
    if reason == STOP_REASONS[NON_FINITE]:
        epoch, step = (int(v) for v in host.bad_info)
        leaf = _diagnose(config, layout, state, data, epoch, step) if data is not None else "a streamed batch"
        divergence = Divergence(epoch, step, float(host.bad_loss), leaf)
        warnings.warn(f"training stopped at epoch {epoch + 1}, step {step}: non-finite loss {divergence.loss} "
                      f"(first non-finite: {leaf}); returning the last finite parameters. "
                      "Try a smaller learning rate.", RuntimeWarning, stacklevel=3)
    best_epoch = int(host.best_epoch) if config.patience is not None and int(host.best_epoch) >= 0 else None
    return FitResult(layout.unflatten(theta), layout.unflatten_state(state.opt_state), history, reason, n,
                     best_epoch, divergence)


def _diagnose(config: _Config, layout: _Layout, state: _State, data, epoch: int, step: int) -> str:
    """Redo the step that stopped training, from the params it started from, to name what broke:
    the first non-finite gradient leaf (e.g. "[2].w"), else "update" or "loss"."""
    x, y, key = data[0], data[1], data[4]
    n, bs = x.shape[0], config.batch_size
    order = jax.random.permutation(jax.random.fold_in(key, epoch), n) if config.shuffle else jnp.arange(n)
    idx = np.asarray(order)[step * bs:(step + 1) * bs]
    spec, model = config.spec, config.model

    def loss_fn(th):
        return losses.value(spec, models.network_output(model, spec, layout.unflatten(th), x[idx]), y[idx])

    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(state.params)
    leaf = layout.first_non_finite(grads)
    if leaf is not None:
        return leaf
    return "update" if np.isfinite(float(loss)) else "loss"


# --------------------------------------------------------------------------- evaluate / predict
@functools.lru_cache(maxsize=64)
def _evaluator(model: models.Sequential, spec: losses.LossSpec):
    @jax.jit
    def evaluate(params, x, y):
        out = models.network_output(model, spec, params, x)
        return losses.value(spec, out, y), jnp.mean(metrics.per_sample(spec, out, y))

    return evaluate


def evaluate(model: models.Sequential, params, x, y, *, loss: str | None = None) -> dict:
    """{"loss": float, "accuracy" or "mse": float} over all of (x, y).

    Example:
        >>> fnn.evaluate(model, params, x, y, loss="binary_cross_entropy")
        {'loss': 0.04, 'accuracy': 0.99}
    """
    models.check_params(model, params)
    spec = models.resolve_loss(model, _default_loss(model) if loss is None else loss)
    x, y = models.prepare(model, spec, params, x, y)
    value, metric = _evaluator(model, spec)(params, x, y)
    return {"loss": float(value), metrics.name_for(spec): float(metric)}


@functools.lru_cache(maxsize=64)
def _predictor(model: models.Sequential):
    return jax.jit(functools.partial(models.layers.mlp_apply, model.activations))


def predict(model: models.Sequential, params, x) -> Array:
    """The network's outputs, (n, n_out) (probabilities for sigmoid/softmax); a (n_in,) example -> (n_out,)."""
    models.check_params(model, params)
    x, single = _validate.features(x, "x", params[0][0].shape[0], allow_single=True)
    out = _predictor(model)(params, _validate.cast(x, params[0][0].dtype, "x"))
    return out[0] if single else out


def predict_classes(model: models.Sequential, params, x) -> Array:
    """Class labels: (n,) ints for one sigmoid unit (p > 0.5) or softmax (argmax); (n, k) 0/1 for k sigmoids."""
    act = models.check_model(model).output_activation
    if act not in ("sigmoid", "softmax"):
        raise FnnValueError(f"predict_classes needs a sigmoid or softmax output, the model's is {act!r}; "
                            "use predict for regression")
    probs = predict(model, params, x)
    if act == "softmax":
        return jnp.argmax(probs, axis=-1)
    labels = (probs > 0.5).astype(jnp.int32)
    return labels[..., 0] if model.output_dim == 1 else labels
