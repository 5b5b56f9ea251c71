"""Trainer: the structure of a run, and the host driver over the pure compiled core (fnn.engine).

    trainer = fnn.Trainer(model, loss="binary_crossentropy", optimizer=fnn.optim.adam(1e-3),
                          callbacks=[fnn.callbacks.EarlyStopping(monitor="loss", patience=10)])
    state = trainer.init(params, key=0)                  # a TrainState: everything a run needs
    state, history = trainer.run(state, x, y, epochs=10) # again and again: 10 + 10 == 20, bitwise

`run` calls the compiled core in pieces sized by time (about a quarter of a second each, at
least one step), so progress is reported, host callbacks run and Ctrl-C is heard between them:
the first SIGINT finishes the current epoch and returns what was trained with stop_reason
"interrupted" (a warning says so), a second raises KeyboardInterrupt at once. The pieces' sizes
are runtime values: nothing recompiles for them. `train_epochs` is the core itself, a pure
function of arrays for your own jit/vmap.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from fnn import _compile, _driver, _validate, engine, inference, losses, metrics, models, optim, targets
from fnn import callbacks as fnn_callbacks
from fnn.engine import Data, Guard, Sums, TrainState
from fnn.errors import FnnTypeError, FnnValueError
from fnn.history import DivergenceInfo, History, divergence, scale_warning
from fnn.layers import DenseParams

__all__ = ["DivergenceInfo", "History", "TrainState", "Trainer"]

# jit's own cache, keyed on the Spec: one mechanism. The driver's calls donate the state they own
# (its buffers are reused in place: no copy of params and optimizer state per call).
_compiled_run = _compile.jit(engine.run, static_argnums=(0,), large=engine.is_large)
_donating_run = _compile.jit(engine.run, static_argnums=(0,), donate_argnums=(1,), large=engine.is_large)


def metrics_of(model: models.Sequential, loss: losses.Loss, names) -> tuple:
    """The extra metrics' records for metrics= (Keras' names), checked against the known ones."""
    if names is None:
        return ()
    return metrics.resolve(names, loss, model.output_activation)


class Trainer:
    """The structure of a run: the model, the loss, the optimizer, the batch size, shuffling, the
    callbacks and the devices. See the module docstring.

    loss: a name (Keras' names too); None pairs it with the output layer. optimizer: an fnn.optim
    optimizer, a name ("adam", "sgd", ...) or a user's (init, update) pair; None is adam(1e-3).
    callbacks: fnn.callbacks objects; a TerminateOnNaN() is added unless one is given.
    metrics: Keras' metric names (fnn.metrics.NAMES), recorded in the history each epoch.
    devices: jax.devices() (or a Mesh with a "data" axis) splits every batch across them.

    Example:
        >>> trainer = fnn.Trainer(model, loss="binary_crossentropy", optimizer=fnn.optim.adam(1e-2))
        >>> state = trainer.init(params, key=0)
        >>> state, history = trainer.run(state, x, y, epochs=3)
        >>> int(state.epoch), len(history["loss"])
        (3, 3)
    """

    def __init__(
        self,
        model: models.Sequential,
        *,
        loss=None,
        optimizer=None,
        batch_size: int = 32,
        shuffle: bool = True,
        callbacks: Any = (),
        devices=None,
        metrics: Any = (),
    ):
        self.model = models.check_model(model)
        self.loss = models.resolve_loss(model, loss)
        self.metrics = metrics_of(self.model, self.loss, metrics)
        self.optimizer = optim.adam(1e-3) if optimizer is None else optim.check_optimizer(optimizer)
        _driver.warn_if_rebuilt(self.optimizer.update)
        self.batch_size = _validate.count(batch_size, "batch_size", minimum=1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise FnnTypeError(f"shuffle must be True or False, got {type(shuffle).__name__} {shuffle!r}")
        self.callbacks = _driver.check_callbacks(callbacks)
        if not any(isinstance(c, fnn_callbacks.TerminateOnNaN) for c in self.callbacks):
            self.callbacks = [fnn_callbacks.TerminateOnNaN(), *self.callbacks]
        self.rules = tuple(c for c in self.callbacks if c.compiled)
        self.host = [c for c in self.callbacks if not c.compiled]
        for c in self.host:
            if isinstance(c, fnn_callbacks.ModelCheckpoint):
                user = [i for i, act in enumerate(self.model.activations) if not isinstance(act, str)]
                if user:  # refused now, not when the first checkpoint is written
                    raise FnnValueError(
                        f"ModelCheckpoint stores the model with the params, but layer {user[0]}'s activation "
                        f"{self.model.activations[user[0]]} is a user's function, which a checkpoint cannot store; "
                        "save result.params after fit with fnn.save(path, params), and rebuild the model in code"
                    )
                # a callable loss (no registry name, no gradient) is not stored: a file cannot hold a function
                c.model, c.loss = self.model, None if self.loss.grad is None else self.loss.name
        self.mesh = _driver.mesh(devices)
        self.spec = engine.Spec(
            self.model, self.loss, self.optimizer.update, self.batch_size, bool(shuffle), self.rules, self.mesh
        )._replace(metrics=self.metrics)

    def __repr__(self):
        return (
            f"Trainer({self.model!r}, loss={self.loss.name!r}, batch_size={self.batch_size}, "
            f"callbacks={self.callbacks!r})"
        )

    # ------------------------------------------------------------------ state
    def init(self, params, key: Any = 0, opt_state=None) -> TrainState:
        """A fresh TrainState for `params` (tuple of DenseParams); key: a PRNG key or an int seed.
        opt_state continues an optimizer state (its moments and counts; the numbers are this
        trainer's optimizer's). Built on the host: nothing compiles."""
        models.check_params(self.model, params)
        dtype = np.dtype(params[0][0].dtype)
        key = _validate.key(key)
        params = tuple(
            DenseParams(*cast(Any, (np.asarray(p[0]), np.asarray(p[1])))) for p in params
        )  # on the host until _place
        fresh = optim.init_state(self.optimizer, params)
        if opt_state is not None:
            _driver.check_opt_state(fresh, opt_state)
            opt_state = optim.with_hyperparameters_of(opt_state, fresh) if _driver.has_numbers(fresh) else opt_state
        else:
            opt_state = fresh
        max_bad = next(c.max_bad_steps for c in self.rules if isinstance(c, fnn_callbacks.TerminateOnNaN))
        zero = np.zeros((), dtype)
        guard = Guard(
            max_bad_steps=np.asarray(max_bad, np.int32),
            bad_run=np.zeros((), np.int32),
            rejected=np.zeros((), np.int32),
            first=np.full((2,), -1, np.int32),
            last=np.full((2,), -1, np.int32),
            last_loss=zero,
            bad_leaf=np.asarray(engine.NO_LEAF, np.int32),
            halted=np.zeros((), bool),
        )
        state = TrainState(
            params=params,
            opt_state=opt_state,
            epoch=np.zeros((), np.int32),
            step=np.zeros((), np.int32),
            key=key,
            callbacks=tuple(r.init(params) for r in self.rules),
            guard=guard,
            sums=Sums(zero, self._metric_zeros(dtype), zero),
            start_params=params,
        )
        return self._place(state)

    def _metric_zeros(self, dtype) -> np.ndarray:
        """Sums.metric's start: one sum for the loss's metric; (rows,) with extra metrics (metrics.sum_rows)."""
        return np.zeros((metrics.sum_rows(self.metrics),) if self.metrics else (), dtype)

    def _place(self, tree):
        if self.mesh is None:  # host arrays: jit's dispatch transfers them (far cheaper than device_put per leaf)
            return tree
        if _driver.spans_processes(self.mesh):
            return _driver.replicate(self.mesh, tree)
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec()))

    def check_state(self, state) -> TrainState:
        """Refuse a state this trainer cannot continue, naming the first difference."""
        if not isinstance(state, TrainState):
            raise FnnTypeError(f"state must be a fnn.TrainState (from trainer.init), got {type(state).__name__}")
        models.check_params(self.model, state.params)
        fresh_rules = tuple(r.init(state.params) for r in self.rules)
        if jax.tree.structure(fresh_rules) != jax.tree.structure(state.callbacks):
            raise FnnValueError(
                "state.callbacks does not fit this trainer's callbacks "
                f"({[type(r).__name__ for r in self.rules]}): continue a state with the trainer "
                "(the same compiled callbacks, in order) that made it"
            )
        _driver.check_opt_state(optim.init_state(self.optimizer, state.params), state.opt_state)
        if np.shape(state.sums.metric) != self._metric_zeros(np.float32).shape:
            raise FnnValueError(
                f"state.sums.metric has shape {np.shape(state.sums.metric)}, but this trainer records "
                f"{metrics.sum_rows(self.metrics)} sums (metrics={[m.name for m in self.metrics]}); continue a state "
                "with the same metrics= that made it, or start from trainer.init"
            )
        return state

    # ------------------------------------------------------------------ data
    def data(self, state, x, y=None, *, validation_data=None, sample_weight=None, class_weight=None) -> Data:
        """Check (x, y) and the validation rows against the model and loss; -> the run's Data arrays."""
        params = state.params
        x, y = models.prepare(self.model, self.loss, params, x, y, host=self.mesh is None)
        losses.warn_if_one_class_per_row(self.loss, y, stacklevel=4)
        if (message := scale_warning(x)) is not None:  # data at 1e-30, or one feature at 1e30, learns nothing
            warnings.warn(message, UserWarning, stacklevel=4)
        dtype = x.dtype
        w = targets.sample_weights(self.model, self.loss, y, sample_weight, class_weight)
        xv = yv = wv = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3)):
                got = f"a sequence of {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else None
                raise FnnTypeError(
                    "validation_data must be a pair (x_val, y_val) or a triple (x_val, y_val, sample_weight_val), "
                    f"got {got or type(validation_data).__name__}"
                )
            x_val, y_val = validation_data[:2]
            xv, yv = models.prepare(
                self.model, self.loss, params, x_val, y_val, xname="x_val", yname="y_val", host=self.mesh is None
            )
            if len(validation_data) == 3 and validation_data[2] is not None:
                wv = targets.sample_weights(self.model, self.loss, yv, validation_data[2], None)
        if self.mesh is not None and _driver.spans_processes(self.mesh):
            if w is not None or wv is not None:
                raise FnnValueError("sample_weight and class_weight are not available across processes yet")
            # Each process passed its own rows: together they form the global, sample-sharded data.
            rows = NamedSharding(self.mesh, PartitionSpec("data"))
            x, y = (jax.make_array_from_process_local_data(rows, np.asarray(a)) for a in (x, y))
            if xv is not None:
                xv, yv = (jax.make_array_from_process_local_data(rows, np.asarray(a)) for a in (xv, yv))
            return Data(x, y, None, _driver.replicate(self.mesh, np.asarray(x.shape[0], np.int32)), xv, yv)
        n = np.asarray(x.shape[0], np.int32)
        n_val = None
        if self.mesh is None:
            # Rows padded to their bucket (weight 0, never trained on), so a notebook looping over data
            # sizes compiles a few programs; one aligned host copy, which jax on a CPU takes as it is.
            rows = inference.bucket_rows(int(n))
            x, y = (jax.device_put(inference.padded(a, rows)) for a in (x, y))
            w = None if w is None else inference.padded(np.asarray(w, dtype), rows)
            if xv is not None:
                n_val, rows = np.asarray(xv.shape[0], np.int32), inference.bucket_rows(xv.shape[0])
                xv, yv = (jax.device_put(inference.padded(a, rows)) for a in (xv, yv))
                n_val = jax.device_put(n_val)
                wv = None if wv is None else inference.padded(np.asarray(wv, dtype), rows)
        wv = None if wv is None else _validate.device(wv, dtype)
        data = Data(x, y, None if w is None else _validate.device(w, dtype), jax.device_put(n), xv, yv, n_val, wv)
        if self.mesh is not None:
            data = self._place(data)
        return data

    # ------------------------------------------------------------------ the core
    def spec_for(self, data: Data) -> engine.Spec:
        """The run's structure for these data (the batch size at most the rows)."""
        bs = min(self.batch_size, data.x.shape[0])
        if self.mesh is not None and bs % self.mesh.shape["data"]:
            k = self.mesh.shape["data"]
            raise FnnValueError(
                f"batch_size {bs} is not divisible by the {k} devices it is split over; use a multiple of {k}"
            )
        return self.spec._replace(batch_size=bs)

    def train_epochs(self, state: TrainState, data: Data, epochs, max_steps=None):
        """The pure core: (state, Record) after up to `epochs` more epochs (at most engine.CHUNK) or
        `max_steps` steps; jit-compiled, usable under jax.vmap over stacked states."""
        return _compiled_run(
            self.spec_for(data),
            state,
            data,
            jnp.asarray(epochs, jnp.int32),
            None if max_steps is None else jnp.asarray(max_steps, jnp.int32),
        )

    # ------------------------------------------------------------------ the host driver
    def run(
        self,
        state: TrainState,
        x,
        y=None,
        *,
        epochs,
        validation_data=None,
        sample_weight=None,
        class_weight=None,
        verbose=0,
    ) -> tuple[TrainState, History]:
        """Run `epochs` more epochs from `state` (or until a callback stops the run): -> (state, History).
        Two calls of 10 epochs give bitwise what one of 20 gives. x may be prepared `trainer.data(...)`."""
        self.check_state(state)
        epochs = _validate.count(epochs, "epochs", minimum=0)
        level = _driver.verbosity(verbose)
        if isinstance(x, Data):
            data = x
        else:
            data = self.data(
                state, x, y, validation_data=validation_data, sample_weight=sample_weight, class_weight=class_weight
            )
        host = list(self.host)
        if level:
            host.append(fnn_callbacks.ProgressBar(level, epochs=int(state.epoch) + epochs))
        return self.drive(state, data, epochs, host)

    def drive(self, state: TrainState, data: Data, epochs: int, host: list) -> tuple[TrainState, History]:
        """Call the core until `epochs` more epochs are done, a callback stops the run or Ctrl-C."""
        spec = self.spec_for(data)
        names = spec.log_names(data.x_val is not None)
        for rule in self.rules:
            rule.check(names, state.opt_state)
        history = History(names)
        total = -(-int(data.n) // spec.batch_size)  # batches per epoch
        epoch, step = (int(v) for v in jax.device_get((state.epoch, state.step)))
        for rule in self.rules:
            if isinstance(rule, fnn_callbacks.Snapshots) and epoch == 0 and step == 0:
                history.records.setdefault("snapshots", []).append(jax.device_get(state.params))
                history.records.setdefault("snapshot_epochs", []).append(0)
        for c in host:
            c.on_train_begin(state)
        end = epoch + epochs
        limits = [m for m in (r.max_epochs_per_call() for r in self.rules) if m]
        pace = _driver.Pace()
        # The calls reuse the state's buffers in place when nothing but fnn's own host callbacks can
        # keep a state between calls: the caller's state is copied once (no compile), then owned.
        donate = self.mesh is None and all(type(c).__module__ == fnn_callbacks.__name__ for c in host)
        core = _donating_run if donate else _compiled_run
        if donate and epoch < end:
            state = jax.device_put(state, may_alias=False)
        with _driver.Interrupts() as interrupts:
            while epoch < end:
                if interrupts.count and step == 0:
                    history.stop_reason = "interrupted"
                    break
                stops = [e for c in host if (e := c.next_stop(epoch)) is not None]
                n_epochs = min([end - epoch, *limits] + [e - epoch for e in stops])
                if interrupts.count:  # finish the epoch under way, then stop
                    n_epochs, steps = 1, total - step
                else:
                    steps = pace.next()
                compiled_before = _driver.compile_seconds[0]
                started = time.perf_counter()
                new, record = core(spec, state, data, np.asarray(n_epochs, np.int32), np.asarray(steps, np.int32))
                _driver.wait(record)
                seconds = time.perf_counter() - started
                compile_seconds = _driver.compile_seconds[0] - compiled_before
                if compile_seconds > 0:
                    for c in host:
                        c.on_compiled(compile_seconds)
                host_record = jax.device_get(record)
                taken, ran = int(host_record.steps), int(host_record.epochs)
                seconds = max(seconds - compile_seconds, 0.0)
                for c in host:
                    c.on_call(seconds, ran, taken, pace.first)
                pace.took(taken, seconds)
                self._collect(history, epoch, new, host_record, host)
                state, epoch, step = new, int(host_record.epoch), int(host_record.step)
                for c in host:
                    c.on_state(state, epoch, step, history.history)
                    if step:
                        c.on_progress(epoch, step, total)
                if bool(host_record.stopped):
                    history.stop_reason = self.rules[int(host_record.reason) - 1].reason
                    break
            else:
                if interrupts.count and epochs:
                    history.stop_reason = "interrupted"
        self.finish(history, state, data)
        for c in host:
            c.on_train_end(state, history)
        return state, history

    def _collect(self, history: History, first: int, after: TrainState, record, host) -> None:
        n = int(record.epochs)
        for name, values in record.history.items():
            history.history[name].extend(float(v) for v in values[:n])
        for rule, buffer in zip(self.rules, record.buffers):
            if buffer is not None:
                rule.collect(history.records, buffer, first, n, after)
        for e in range(first, first + n):
            history.epoch.append(e)
            logs = {k: v[e - first - n] for k, v in history.history.items()}
            for c in host:
                c.on_epoch_end(e, logs)

    def finish(self, history: History, state: TrainState, data: Data | None = None) -> None:
        """Warnings and figures the host reads off the final state (fit, sweep and the stream path share it)."""
        if history.stop_reason == "interrupted":
            warnings.warn(
                f"training interrupted (Ctrl-C) after epoch {int(state.epoch)}: returning the state and "
                "history so far; press Ctrl-C twice to abort instead",
                RuntimeWarning,
                stacklevel=4,
            )
        for rule, rule_state in zip(self.rules, state.callbacks):
            if isinstance(rule, fnn_callbacks.EarlyStopping) and int(rule_state.best_epoch) >= 0:
                history.best_epoch = int(rule_state.best_epoch)
        guard = jax.device_get(state.guard)
        rejected = int(guard.rejected)
        history.rejected_steps = rejected
        history.first_rejected = tuple(int(v) for v in guard.first) if rejected else None
        if history.stop_reason == fnn_callbacks.TerminateOnNaN.reason:
            scale = None if data is None else tuple(float(jnp.max(jnp.abs(a))) for a in (data.x, data.y))
            history.divergence = divergence(self.rules, state, guard, self._leaf_names(state.params), scale)
        elif rejected:
            first = history.first_rejected
            assert first is not None
            warnings.warn(
                f"{rejected} step(s) had a non-finite loss or gradient and were skipped (max_bad_steps), "
                f"the first at epoch {first[0] + 1}, step {first[1]}; they are left out of the history's "
                "figures",
                RuntimeWarning,
                stacklevel=4,
            )

    @staticmethod
    def _leaf_names(params) -> list[str]:
        return [f"[{i}].{name}" for i in range(len(params)) for name in "wb"]
