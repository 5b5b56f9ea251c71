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

import concurrent.futures
import signal
import threading
import time
import warnings
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import monitoring
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from fnn import _compile, _validate, engine, losses, models, optim, targets
from fnn import callbacks as fnn_callbacks
from fnn.engine import Data, Guard, Sums, TrainState
from fnn.errors import FnnTypeError, FnnValueError
from fnn.layers import DenseParams

__all__ = ["DivergenceInfo", "History", "TrainState", "Trainer"]

CALL_SECONDS = 0.25  # the host hands control back about this often
FIRST_CALL_STEPS = 8  # the first call (which may compile) runs at most this many steps

# jit's own cache, keyed on the Spec: one mechanism. The driver's calls donate the state they own
# (its buffers are reused in place: no copy of params and optimizer state per call).
_compiled_run = _compile.jit(engine.run, static_argnums=(0,), large=engine.is_large)
_donating_run = _compile.jit(engine.run, static_argnums=(0,), donate_argnums=(1,), large=engine.is_large)


# --------------------------------------------------------------------------- compile time, as JAX reports it
_COMPILE_EVENTS = frozenset(  # tracing, lowering and compiling: what a first call spends before it runs
    f"/jax/core/compile/{name}_duration" for name in ("jaxpr_trace", "jaxpr_to_mlir_module", "backend_compile")
)
_compile_seconds = [0.0]


def _on_duration(event: str, seconds: float, **kwargs: Any) -> None:
    if event in _COMPILE_EVENTS:
        _compile_seconds[0] += seconds


monitoring.register_event_duration_secs_listener(cast(Any, _on_duration))


# --------------------------------------------------------------------------- what a run returns
class DivergenceInfo(NamedTuple):
    """Where training met a non-finite loss, gradient or update."""

    epoch: int  # 0-based epoch
    step: int  # 0-based mini-batch within that epoch; -1: the params overflowed somewhere in the epoch
    loss: float  # the loss of that step (may be nan or inf)
    leaf: str  # the first non-finite gradient leaf, e.g. "[2].w", else "update ..." or "loss"


class History:
    """What `Trainer.run` recorded: `history[name]` is one float per epoch run (Keras' History.history);
    `stop_reason` is "epochs", "interrupted" or the reason of the callback that stopped the run."""

    def __init__(self, names):
        self.history: dict[str, list[float]] = {name: [] for name in names}
        self.epoch: list[int] = []
        self.stop_reason = "epochs"
        self.records: dict = {}  # what compiled callbacks kept: snapshots, step_loss, ...
        self.best_epoch: int | None = None
        self.divergence: DivergenceInfo | None = None
        self.rejected_steps = 0
        self.first_rejected: tuple | None = None

    def __getitem__(self, name: str) -> list[float]:
        return self.history[name]

    def last_logs(self) -> dict:
        return {k: v[-1] for k, v in self.history.items() if v}

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, stop_reason={self.stop_reason!r}, names={list(self.history)})"


# --------------------------------------------------------------------------- Ctrl-C
class Interrupts:
    """SIGINT during a run: the first sets a flag (the run stops at the end of its epoch), a second
    raises KeyboardInterrupt. Outside the main thread signals cannot be caught: nothing changes."""

    def __init__(self):
        self.count = 0
        self._previous: Any = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


_waiter = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fnn-wait")


def _wait(tree) -> None:
    """Block until a result is ready. The blocking happens on a helper thread and the main thread
    waits on a lock, which signals interrupt: Ctrl-C is heard at once, not when the device finishes."""
    _waiter.submit(jax.block_until_ready, tree).result()


class _Pace:
    """How many steps the next call runs so that it lasts about CALL_SECONDS: a call costs a + b·steps
    (a: the epoch's shuffle, recomputed by each call, and the dispatch), fitted to the last two calls
    after the first (which also pays for its first run). Where a alone nears CALL_SECONDS (the
    shuffle of millions of rows, say), a call steps for as long as its overhead: about 2a."""

    def __init__(self):
        self.calls: list[tuple[int, float]] = []
        self.first = True

    def took(self, steps: int, seconds: float) -> None:
        if self.first:
            self.first = False
        elif steps:
            self.calls = [*self.calls[-1:], (steps, seconds)]

    def next(self) -> int:
        if self.first:
            return FIRST_CALL_STEPS
        if not self.calls:
            return FIRST_CALL_STEPS * 4
        (s1, t1), (s2, t2) = self.calls[0], self.calls[-1]
        if s1 != s2 and t2 > t1:
            b = (t2 - t1) / (s2 - s1)
            a = max(t1 - b * s1, 0.0)
        else:
            a, b = 0.0, t2 / s2
        wanted = max(CALL_SECONDS - a, a) / max(b, 1e-9)
        return int(max(1, min(wanted, 4 * s2)))  # grow at most 4× a call: the fit may be off


# --------------------------------------------------------------------------- the trainer
def _mesh(devices):
    """None, or a 1-d data-parallel Mesh over `devices` (a list of jax devices or a Mesh with a "data" axis)."""
    if devices is None:
        return None
    if isinstance(devices, Mesh):
        if "data" not in devices.axis_names:
            raise FnnValueError(
                f"devices= Mesh needs an axis named 'data' to split batches over, it has {devices.axis_names}"
            )
        return devices
    devices = list(devices) if isinstance(devices, (list, tuple)) else None
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise FnnTypeError("devices must be a non-empty list of jax devices (e.g. jax.devices()) or a Mesh")
    if len(set(devices)) != len(devices):
        raise FnnValueError(f"devices lists a device more than once ({devices}); pass each device once")
    return Mesh(np.array(devices), ("data",))


def spans_processes(mesh) -> bool:
    return mesh is not None and any(d.process_index != jax.process_index() for d in mesh.devices.flat)


def verbosity(verbose) -> int:
    """0, 1 or 2 from verbose=0/1/2, True/False or "auto" (1 on a terminal, as Keras' "auto", else 0)."""
    if verbose == "auto":
        import sys

        return 1 if hasattr(sys.stdout, "isatty") and sys.stdout.isatty() else 0
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    if isinstance(verbose, float) and verbose.is_integer():
        verbose = int(verbose)
    return min(_validate.integer(verbose, "verbose", minimum=0), 2)


class Trainer:
    """The structure of a run: the model, the loss, the optimizer, the batch size, shuffling, the
    callbacks and the devices. See the module docstring.

    loss: a name (Keras' names too); None pairs it with the output layer. optimizer: an fnn.optim
    optimizer, a name ("adam", "sgd", ...) or a user's (init, update) pair; None is adam(1e-3).
    callbacks: fnn.callbacks objects; a TerminateOnNaN() is added unless one is given.
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
    ):
        self.model = models.check_model(model)
        self.loss = models.resolve_loss(model, loss)
        self.optimizer = optim.adam(1e-3) if optimizer is None else optim.check_optimizer(optimizer)
        _warn_if_rebuilt(self.optimizer.update)
        self.batch_size = _validate.integer(_integral(batch_size), "batch_size", minimum=1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise FnnTypeError(f"shuffle must be True or False, got {type(shuffle).__name__} {shuffle!r}")
        self.callbacks = _check_callbacks(callbacks)
        if not any(isinstance(c, fnn_callbacks.TerminateOnNaN) for c in self.callbacks):
            self.callbacks = [fnn_callbacks.TerminateOnNaN(), *self.callbacks]
        self.rules = tuple(c for c in self.callbacks if c.compiled)
        self.host = [c for c in self.callbacks if not c.compiled]
        for c in self.host:
            if isinstance(c, fnn_callbacks.ModelCheckpoint):
                c.model, c.loss = self.model, self.loss.name
        self.mesh = _mesh(devices)
        self.spec = engine.Spec(
            self.model, self.loss, self.optimizer.update, self.batch_size, bool(shuffle), self.rules, self.mesh
        )

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
        fresh = self.optimizer.init(params)
        if opt_state is not None:
            check_opt_state(fresh, opt_state)
            opt_state = optim.with_hyperparameters_of(opt_state, fresh) if _has_numbers(fresh) else opt_state
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
            sums=Sums(zero, zero, zero),
            start_params=params,
        )
        return self._place(state)

    def _place(self, tree):
        if self.mesh is None:  # host arrays: jit's dispatch transfers them (far cheaper than device_put per leaf)
            return tree
        if spans_processes(self.mesh):
            return replicate(self.mesh, tree)
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
        check_opt_state(self.optimizer.init(state.params), state.opt_state)
        return state

    # ------------------------------------------------------------------ data
    def data(self, state, x, y=None, *, validation_data=None, sample_weight=None, class_weight=None) -> Data:
        """Check (x, y) and the validation rows against the model and loss; -> the run's Data arrays."""
        params = state.params
        x, y = models.prepare(self.model, self.loss, params, x, y)
        losses.warn_if_one_class_per_row(self.loss, y, stacklevel=4)
        dtype = x.dtype
        w = targets.sample_weights(self.model, self.loss, y, sample_weight, class_weight)
        xv = yv = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise FnnTypeError("validation_data must be a pair (x_val, y_val)")
            xv, yv = models.prepare(self.model, self.loss, params, *validation_data, xname="x_val", yname="y_val")
        if self.mesh is not None and spans_processes(self.mesh):
            if w is not None:
                raise FnnValueError("sample_weight and class_weight are not available across processes yet")
            # Each process passed its own rows: together they form the global, sample-sharded data.
            rows = NamedSharding(self.mesh, PartitionSpec("data"))
            x, y = (jax.make_array_from_process_local_data(rows, np.asarray(a)) for a in (x, y))
            if xv is not None:
                xv, yv = (jax.make_array_from_process_local_data(rows, np.asarray(a)) for a in (xv, yv))
            return Data(x, y, None, replicate(self.mesh, np.asarray(x.shape[0], np.int32)), xv, yv)
        n = np.asarray(x.shape[0], np.int32)
        data = Data(x, y, None if w is None else _validate.device(w, dtype), jax.device_put(n), xv, yv)
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
        epochs = _validate.integer(_integral(epochs), "epochs", minimum=0)
        level = verbosity(verbose)
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
        pace = _Pace()
        # The calls reuse the state's buffers in place when nothing but fnn's own host callbacks can
        # keep a state between calls: the caller's state is copied once (no compile), then owned.
        donate = self.mesh is None and all(type(c).__module__ == fnn_callbacks.__name__ for c in host)
        core = _donating_run if donate else _compiled_run
        if donate and epoch < end:
            state = jax.device_put(state, may_alias=False)
        with Interrupts() as interrupts:
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
                compiled_before = _compile_seconds[0]
                started = time.perf_counter()
                new, record = core(spec, state, data, np.asarray(n_epochs, np.int32), np.asarray(steps, np.int32))
                _wait(record)
                seconds = time.perf_counter() - started
                compile_seconds = _compile_seconds[0] - compiled_before
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
        self.finish(history, state)
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

    def finish(self, history: History, state: TrainState) -> None:
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
            history.divergence = _divergence(self.rules, state, guard, self._leaf_names(state.params))
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


def replicate(mesh, tree):
    """Each process's identical copy of `tree` as global arrays replicated over the mesh."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def one(leaf):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(one(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        value = np.asarray(jax.device_get(leaf))
        return jax.make_array_from_callback(value.shape, replicated, lambda index: value[index])

    return jax.tree.map(one, tree)


def _divergence(rules, state: TrainState, guard, leaf_names) -> DivergenceInfo:
    epochs = int(state.epoch)
    epoch, step = (int(v) for v in guard.last)
    if epoch < epochs - 1 or epoch < 0:  # no step of the last epoch was refused: an applied update overflowed
        info = DivergenceInfo(epochs - 1, -1, float("nan"), "update (the params overflowed during this epoch)")
    else:
        leaf = int(guard.bad_leaf)
        name = "loss" if leaf == engine.LOSS_LEAF else leaf_names[leaf] if 0 <= leaf < len(leaf_names) else "update"
        info = DivergenceInfo(epoch, step, float(guard.last_loss), name)
    nan_state = next(s for r, s in zip(rules, state.callbacks) if isinstance(r, fnn_callbacks.TerminateOnNaN))
    good = int(nan_state.best_epoch)
    if good > 0:
        kept = (
            f"the params after epoch {good}, from which epoch {good + 1} trained with the lowest training "
            f"loss seen ({float(nan_state.best_loss):.4g})"
        )
    else:
        kept = "the initial params"
    where = f"epoch {info.epoch + 1}, step {info.step}" if info.step >= 0 else f"the end of epoch {info.epoch + 1}"
    warnings.warn(
        f"training stopped at {where}: non-finite loss {info.loss} (first non-finite: {info.leaf}); "
        f"returning {kept}. Try a smaller learning rate.",
        RuntimeWarning,
        stacklevel=5,
    )
    return info


_SEEN_CODE: dict = {}  # code object of a user's update function -> the function object last seen with it
_WARNED: set = set()


def _warn_if_rebuilt(update) -> None:
    """A user's update is part of the program's structure (by identity): the same code arriving as a
    new closure compiles anew. Say so once."""
    code = getattr(update, "__code__", None)
    if code is None or code in _WARNED:
        return
    seen = _SEEN_CODE.get(code)
    _SEEN_CODE[code] = update
    if seen is not None and seen is not update:
        _WARNED.add(code)
        warnings.warn(
            f"the optimizer's update function {getattr(update, '__qualname__', update)!r} is a new function object "
            "with the same code as an earlier one: each new one compiles the run anew. Build the optimizer once "
            "and reuse it (fnn's own optimizers keep their numbers in their state and never recompile for a new "
            "number).",
            RuntimeWarning,
            stacklevel=4,
        )


def _integral(value):
    """Keras habit: an integral float (epochs=10.0) is an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _has_numbers(opt_state) -> bool:
    try:
        optim.hyperparameters(opt_state)
        return True
    except (FnnTypeError, FnnValueError):
        return False


def _check_callbacks(items) -> list:
    if isinstance(items, fnn_callbacks.Callback):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise FnnTypeError(f"callbacks must be a list of fnn.callbacks objects, got {type(items).__name__}")
    for i, c in enumerate(items):
        if isinstance(c, type) and issubclass(c, fnn_callbacks.Callback):
            raise FnnTypeError(f"callbacks[{i}] is the class {c.__name__}, not an instance: write {c.__name__}(...)")
        if not isinstance(c, fnn_callbacks.Callback):
            raise FnnTypeError(
                f"callbacks[{i}] must be an fnn.callbacks object (a Rule for the compiled run, or a "
                f"Callback for the host), got {type(c).__name__} {c!r:.60}"
            )
    return list(items)


def check_opt_state(expected, opt_state):
    """Refuse an opt_state unlike `expected` (the optimizer's fresh state for these params), naming
    the first difference."""
    want, want_def = jax.tree_util.tree_flatten_with_path(expected)
    got = jax.tree.leaves(opt_state)
    if jax.tree.structure(opt_state) != want_def:
        raise FnnValueError(
            f"opt_state does not fit the optimizer and params: expected a state of structure "
            f"{want_def}, got {jax.tree.structure(opt_state)}; pass the opt_state of a run "
            "with the same optimizer kind and model (e.g. result.opt_state)"
        )
    for (path, w), g in zip(want, got):
        shape = tuple(np.shape(g))
        if shape != tuple(np.shape(w)):
            raise FnnValueError(
                f"opt_state{jax.tree_util.keystr(path)} has shape {shape}, expected "
                f"{tuple(np.shape(w))} for these params; pass the opt_state of a run of the same model"
            )
        if _validate.is_concrete(g) and not np.isfinite(np.asarray(g, np.float64)).all():
            raise FnnValueError(
                f"opt_state{jax.tree_util.keystr(path)} contains non-finite values; the state is "
                "unusable: start a fresh optimizer state"
            )
    return opt_state
