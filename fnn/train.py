"""fit: every input checked on the host, then the engine's compiled run; checkpoint and resume.

`fit` runs the whole training — epochs, on-device shuffling, the optimizer steps, history and the
stopping rules — as the engine's one compiled program (see fnn.engine), compiled once per
structure: a new learning rate, momentum, target_loss, patience or number of epochs reuses it.
With a checkpoint the run leaves the device every `checkpoint_every` epochs to save, then
re-enters the same program. With y=None, x is a stream of batches (fnn.stream).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fnn import _validate, engine, losses, models, stream
from fnn import checkpoint as ckpt
from fnn.engine import FitResult
from fnn.errors import FnnTypeError, FnnValueError

Array = jax.Array

__all__ = ["fit", "FitResult"]


class Setup(NamedTuple):
    """A checked fit: its config, numbers, data, starting state and what the host loop needs."""

    config: engine.RunConfig
    settings: engine.Settings
    data: engine.Data
    state: engine.State
    marks: list  # which optimizer-state leaves hold a whole θ (flat layout)
    key: Array
    history: dict | None  # what a resumed run had recorded
    checkpoint_every: int | None


def fit(model: models.Sequential, params, x, y, *, loss: str | None = None, optimizer=None,
        epochs: int = 100, batch_size: int = 32, key=None, validation_data=None,
        validation_split: float = 0.0, target_loss: float | None = None, patience: int | None = None,
        min_delta: float = 0.0, restore_best: bool = True, max_bad_steps: int = 0, shuffle: bool = True,
        verbose: int = 0, checkpoint=None, checkpoint_every: int | None = None, resume=None,
        devices=None, opt_state=None, sample_weight=None, class_weight=None,
        record_every: int | None = None) -> FitResult:
    """Train `params` on (x, y) with mini-batch gradient steps; returns new params and the history.

    x: (n, n_in); y: targets in any form the loss accepts. loss: a name (Keras' names too, e.g.
    "binary_crossentropy"); None pairs it with the output layer (sigmoid: binary CE, softmax:
    categorical CE, else mse). optimizer: an fnn.optim optimizer, a name ("adam", "sgd",
    "momentum", "nesterov", with their usual defaults) or a user's (init, update) pair; None is
    adam(1e-3). key: a PRNG key or an int seed. Every sample counts each epoch (the last batch may
    be partial). Stops after `epochs`, when the training loss reaches `target_loss`, when the
    monitored loss (val_loss, else loss) has not improved by `min_delta` for `patience` epochs
    (then, with `restore_best`, the best params are returned), or at a non-finite loss, gradient
    or update (after `max_bad_steps` skipped ones in a row; skipped steps are left out of the
    figures and counted in the result): the result then holds the params that the epoch with the
    lowest finite training loss started from. opt_state continues a run with its optimizer state (e.g. a previous
    result.opt_state). sample_weight (n,) and class_weight {label: weight} weight each sample's
    loss (a weighted mean). record_every=k keeps the params every k epochs inside the run
    (memory: epochs / k copies of the params) as result.snapshots. checkpoint=path saves the
    run's whole state every `checkpoint_every` epochs (default: at the end); resume=path continues
    such a run (epochs counts the whole run). devices=jax.devices() (or a Mesh with a "data" axis)
    splits every batch across the devices, params replicated. With y=None, x may be a stream of
    (x_batch, y_batch) pairs for data larger than memory (see fnn.stream).

    Compiles once per structure (model, loss, optimizer kind, shapes, batch size, which stopping
    rules are on, verbose on/off, record_every, devices); every number — learning rate and the
    other hyperparameters, target_loss, patience, min_delta, max_bad_steps, epochs — is a runtime
    value. A user-written (init, update) pair is cached by its update function's identity: build
    it once and reuse it.

    Example:
        >>> result = fnn.fit(model, params, x, y, loss="binary_crossentropy", optimizer="adam", epochs=50, key=1)
        >>> result.history["loss"][-1], result.stop_reason
    """
    if y is None and stream.is_stream(x):
        unsupported = dict(key=key, validation_split=validation_split or None, checkpoint=checkpoint, resume=resume,
                           devices=devices, opt_state=opt_state, sample_weight=sample_weight,
                           class_weight=class_weight, record_every=record_every)
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
    setup = prepare(model, params, x, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                    key=key, validation_data=validation_data, validation_split=validation_split,
                    target_loss=target_loss, patience=patience, min_delta=min_delta, restore_best=restore_best,
                    max_bad_steps=max_bad_steps, shuffle=shuffle, verbose=verbose, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every, resume=resume, devices=devices, opt_state=opt_state,
                    sample_weight=sample_weight, class_weight=class_weight, record_every=record_every)
    config, data = setup.config, setup.data
    outcome = engine.Outcome(setup.state, setup.history or {k: [] for k in config.history_names}, [], [])
    done = int(setup.state.epoch)
    while done < epochs and not bool(outcome.state.stopped):
        until = min(done + (setup.checkpoint_every or epochs), epochs)
        outcome = engine.train(config, outcome.state, data, setup.settings, until, outcome.history,
                               outcome.snapshots, outcome.snapshot_epochs)
        done = int(outcome.state.epoch)
        if checkpoint is not None:
            ckpt.save(checkpoint, _checkpoint_tree(outcome, setup.key), allow_non_finite=True, model=model,
                      input_dim=config.layout.shapes[0][0], dtype=data.x.dtype, loss=config.loss.name)
    if engine.spans_processes(config.mesh):  # results are replicated: continue with this process's copy
        outcome = outcome._replace(state=jax.tree.map(jnp.asarray, jax.device_get(outcome.state)))
    return engine.result(config, outcome, setup.marks,
                         lambda state, epoch, step: engine.diagnose(config, data, state, epoch, step))


def prepare(model, params, x, y, *, loss, optimizer, epochs, batch_size, key, validation_data, validation_split,
            target_loss, patience, min_delta, restore_best, max_bad_steps, shuffle, verbose, checkpoint,
            checkpoint_every, resume, devices=None, opt_state=None, sample_weight=None, class_weight=None,
            record_every=None) -> Setup:
    """Check every argument of fit on the host and build the run's config, numbers, data and state."""
    loss, optimizer, epochs, verbose, max_bad_steps, target_loss, patience, min_delta = engine.check_settings(
        model, params, loss, optimizer, epochs, verbose, max_bad_steps, target_loss, patience, min_delta)
    batch_size = _validate.integer(batch_size, "batch_size", minimum=1)
    record_every = 0 if record_every is None else _validate.integer(record_every, "record_every", minimum=1)
    saved = None
    if resume is not None:
        if ckpt.read_architecture(resume) is not None:  # refuses another model, naming the first difference
            saved = ckpt.load(resume, model=model, input_dim=params[0][0].shape[0], dtype=params[0][0].dtype)
        else:
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

    x, y = models.prepare(model, loss, params, x, y)
    losses.warn_if_one_class_per_row(loss, y, stacklevel=4)  # the caller of fit
    dtype = x.dtype
    w = sample_weights(model, loss, y, sample_weight, class_weight)
    if opt_state is not None:
        tree = tuple(models.DenseParams(np.asarray(p[0], dtype), np.asarray(p[1], dtype)) for p in params)
        engine.check_opt_state(optimizer.init(tree), opt_state)
    if validation_data is not None:
        if validation_split:
            raise FnnValueError("pass validation_data or validation_split, not both")
        xv, yv = engine.validation(model, loss, params, validation_data)
    elif validation_split:
        fraction = _validate.real(validation_split, "validation_split", low=0, high=1, low_open=True, high_open=True)
        x, y, w, xv, yv = _split_validation(key, x, y, w, fraction)
    else:
        xv, yv = (jax.device_put(np.zeros((0,) + a.shape[1:], a.dtype)) for a in (x, y))  # nothing to compile
    validate = xv.shape[0] > 0

    mesh = _mesh(devices)
    if engine.spans_processes(mesh):
        if validation_split:
            raise FnnValueError("validation_split is not available across processes: pass each process's "
                                "share of the validation set as validation_data")
        if w is not None:
            raise FnnValueError("sample_weight and class_weight are not available across processes yet")
        # Each process passed its own rows: together they form the global, sample-sharded data.
        rows = NamedSharding(mesh, PartitionSpec("data"))
        x, y, xv, yv = (jax.make_array_from_process_local_data(rows, np.asarray(a)) for a in (x, y, xv, yv))
    batch_size = min(batch_size, x.shape[0])
    if mesh is not None and batch_size % mesh.shape["data"]:
        n = mesh.shape["data"]
        raise FnnValueError(f"batch_size {batch_size} is not divisible by the {n} devices it is split over; "
                            f"use a multiple of {n}")
    config = engine.configure(model, loss, optimizer, x.shape[1], batch_size=batch_size, shuffle=shuffle,
                              validate=validate, target_loss=target_loss, patience=patience,
                              restore_best=restore_best, verbose=verbose, record_every=record_every, mesh=mesh)
    layout = config.layout
    settings = engine.settings(dtype, target_loss=target_loss, patience=patience, min_delta=min_delta,
                               max_bad_steps=max_bad_steps, epochs=epochs, verbose=verbose)
    # Nothing in the run writes to its inputs, so the caller's params stay as they are either way.
    theta = layout.flatten(params, dtype)
    start = optimizer.init(theta)  # made on the host for fnn's optimizers: nothing to compile
    marks = layout.state_marks(start)
    if opt_state is not None:
        start = layout.flatten_state(opt_state, start, dtype)
    state = engine.initial_state(config, theta, start, dtype)
    history = None
    if saved is not None:
        state, history = _resume_state(saved, state, epochs)
    data = engine.Data(x, y, None if w is None else _validate.device(w, dtype), xv, yv, key)
    if engine.spans_processes(mesh):  # the same host values on every process become one replicated array
        state, rest = _replicate(mesh, (state, (settings, data.key)))
        settings, data = rest[0], data._replace(key=rest[1])
    else:
        state, settings = engine.to_device(mesh, (state, settings))
        if mesh is not None:
            data = engine.to_device(mesh, data)
    return Setup(config, settings, data, state, marks, key, history, checkpoint_every)


def sample_weights(model, loss, y, sample_weight, class_weight):
    """(n,) per-sample weights from sample_weight and class_weight (None when neither is given)."""
    if sample_weight is None and class_weight is None:
        return None
    n = y.shape[0]
    w = np.ones(n, np.float64)
    if sample_weight is not None:
        sw = np.asarray(_validate.array(sample_weight, "sample_weight"), np.float64)
        if sw.shape != (n,):
            raise FnnValueError(f"sample_weight must have one weight per sample, shape ({n},), got {sw.shape}")
        _validate.check_finite(sw, "sample_weight")
        if (sw < 0).any():
            i = int(np.argwhere(sw < 0)[0, 0])
            raise FnnValueError(f"sample_weight[{i}] = {sw[i]} is negative; weights must be >= 0")
        w = w * sw
    if class_weight is not None:
        if not isinstance(class_weight, dict) or not class_weight:
            raise FnnTypeError("class_weight must be a non-empty dict {class label: weight}, e.g. {0: 1.0, 1: 5.0}")
        if loss.metric.name == "mse":
            raise FnnValueError("class_weight needs a classification loss; for regression use sample_weight")
        k = model.output_dim
        n_classes = 2 if k == 1 else k
        if loss.name == "binary_cross_entropy" and k > 1:
            raise FnnValueError("class_weight is for one label per sample; with several sigmoid outputs "
                                "(multi-label) use sample_weight")
        table = np.ones(n_classes)
        for label, weight in class_weight.items():
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < n_classes:
                raise FnnValueError(f"class_weight key {label!r} is not a class label of this model (0..{n_classes - 1})")
            table[int(label)] = _validate.real(weight, f"class_weight[{label}]", low=0)
        labels = np.asarray(y[:, 0] > 0.5, np.int64) if k == 1 else np.argmax(np.asarray(y), axis=1)
        w = w * table[labels]
    if not (w > 0).any():
        raise FnnValueError("every sample has weight 0: nothing to train on")
    return w


def _split_validation(key, x, y, w, fraction):
    n = x.shape[0]
    n_val = int(math.floor(n * fraction))
    if n_val < 1 or n - n_val < 1:
        raise FnnValueError(f"validation_split={fraction} of {n} samples leaves an empty training or validation "
                            "set; use a fraction that keeps at least one sample on each side")
    perm = np.asarray(jax.random.permutation(jax.random.split(key)[0], n))
    val, train = perm[:n_val], perm[n_val:]
    return x[train], y[train], None if w is None else w[train], x[val], y[val]


def _replicate(mesh, tree):
    """Each process's identical copy of `tree` as global arrays replicated over the mesh."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def one(leaf):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(one(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        value = np.asarray(jax.device_get(leaf))
        return jax.make_array_from_callback(value.shape, replicated, lambda index: value[index])

    return jax.tree.map(one, tree)


def _mesh(devices):
    """None, or a 1-d data-parallel Mesh over `devices` (a list of jax devices or a Mesh with a "data" axis)."""
    if devices is None:
        return None
    if isinstance(devices, Mesh):
        if "data" not in devices.axis_names:
            raise FnnValueError(f"devices= Mesh needs an axis named 'data' to split batches over, it has "
                                f"{devices.axis_names}")
        return devices
    devices = list(devices) if isinstance(devices, (list, tuple)) else None
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise FnnTypeError("devices must be a non-empty list of jax devices (e.g. jax.devices()) or a Mesh")
    return Mesh(np.array(devices), ("data",))


# --------------------------------------------------------------------------- checkpoints
FORMAT = "fnn-fit"


def _checkpoint_tree(outcome: engine.Outcome, key) -> dict:
    history = {k: np.asarray(v, np.float64) for k, v in outcome.history.items()}
    return {"format": FORMAT, "version": 2, "state": outcome.state._asdict(), "history": history, "key": key}


def _resume_state(saved, fresh: engine.State, epochs: int):
    """The saved run's state, checked against the state this fit would start from."""
    if saved.get("version") != 2 or "history" not in saved:
        raise FnnValueError("the checkpoint to resume was written by an older fnn whose run state differs; "
                            "start the run anew (its params can be loaded with fnn.load)")
    state = saved["state"]
    done = int(state["epoch"])
    if done > epochs:
        raise FnnValueError(f"the checkpoint has already run {done} epochs, more than epochs={epochs}; pass "
                            f"epochs >= {done} (epochs counts the whole run, resumed epochs included)")
    expected = fresh._asdict()
    if jax.tree.structure(expected) != jax.tree.structure(state):
        raise FnnValueError("the checkpoint to resume was saved by a run of another kind (model, optimizer, "
                            "validation or stopping settings differ); resume with the same settings")
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(expected)[0], jax.tree.leaves(state)):
        if jnp.shape(a) != jnp.shape(b):
            raise FnnValueError(f"the checkpoint's state{jax.tree_util.keystr(path)} has shape {jnp.shape(b)}, this "
                                f"run expects {jnp.shape(a)}: it was saved by a run of another model or optimizer")
    restored = jax.tree.map(lambda a, b: np.asarray(b, np.asarray(a).dtype) if not _is_key(a) else b,
                            expected, state)
    history = {k: [float(v) for v in np.asarray(h)] for k, h in saved["history"].items()}
    return engine.State(**restored), history


def _is_key(a) -> bool:
    return hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jax.dtypes.prng_key)

