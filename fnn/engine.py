"""The compiled training run that fit, sweep and the stream path share.

Owns the run's static configuration (`RunConfig`, built by `configure`), its runtime numbers
(`Settings`), its data (`Data`), the loop state (`State`) and the scan carry (`Carry`); the step
— value_and_grad, `opt.update`, `apply_updates`, with the non-finite guard and the metric sums
wrapped around it —, the epoch, the stopping rules (`Divergence`, `TargetLoss`, `EarlyStopping`:
a new rule is one new class here) and the compile cache.

What compiles: one program per RunConfig and per shapes/dtypes of the arrays. The RunConfig is
structure only: the model, the loss, the optimizer's kind (its `update`; its numbers live in its
state), the parameter layout, batch size, shuffling, sample weights on/off, validation on/off,
which stopping rules are on, verbose on/off, record_every and the device mesh. Every number is
a runtime value: the learning rate and every optimizer hyperparameter, target_loss, patience,
min_delta, max_bad_steps and the number of epochs. A call runs at most CHUNK epochs and returns
their history; the drivers call again until the run ends.
"""
from __future__ import annotations

import functools
import sys
import time
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from fnn import _validate, losses, models, optim
from fnn.errors import FnnTypeError, FnnValueError
from fnn.layers import DenseParams

Array = jax.Array

EPOCHS, TARGET_LOSS, EARLY_STOPPING, NON_FINITE = range(4)
STOP_REASONS = ("epochs", "target_loss", "early_stopping", "non_finite_loss")
CHUNK = 128  # epochs per compiled call (the length of the history buffer it returns)
FLAT_LIMIT = 4096  # networks with at most this many parameters may train on one flat vector


# --------------------------------------------------------------------------- layout
class Layout(NamedTuple):
    """How the params travel through the compiled run: as one flat vector θ (w row-major, then b,
    layer after layer) for small networks trained by an element-wise optimizer, where one fused
    pass beats one op per leaf; as the tuple of DenseParams otherwise (the optimizer then sees the
    params' own structure, and large matrices need no slicing)."""

    shapes: tuple[tuple[int, int], ...]  # each layer's (n_in, n_out)
    flat: bool

    @classmethod
    def of(cls, model, n_in: int, elementwise: bool) -> "Layout":
        shapes = model.shapes(n_in)
        return cls(shapes, elementwise and sum(i * o + o for i, o in shapes) <= FLAT_LIMIT)

    @property
    def size(self) -> int:
        return sum(i * o + o for i, o in self.shapes)

    def flatten(self, params, dtype):
        """The params (any DenseParams-like tree) as this layout carries them, made on the host."""
        leaves = [np.asarray(leaf, dtype) for p in params for leaf in p]
        if not self.flat:
            return tuple(DenseParams(*jax.device_put((w, b))) for w, b in zip(leaves[::2], leaves[1::2]))
        return jax.device_put(np.concatenate([leaf.reshape(-1) for leaf in leaves]))

    def unflatten(self, theta) -> tuple:
        """θ (..., size) -> tuple of DenseParams with the same leading axes (numpy or jax, as given)."""
        if not self.flat:
            return tuple(DenseParams(*p) for p in theta)
        out, at = [], 0
        for n_in, n_out in self.shapes:
            w = theta[..., at:at + n_in * n_out].reshape(theta.shape[:-1] + (n_in, n_out))
            at += n_in * n_out
            out.append(DenseParams(w, theta[..., at:at + n_out]))
            at += n_out
        return tuple(out)

    def state_marks(self, state) -> list[bool]:
        """For each leaf of an optimizer state over θ: does it hold a whole θ (flat layout only)?"""
        return [self.flat and np.shape(leaf) == (self.size,) for leaf in jax.tree.leaves(state)]

    def unflatten_state(self, state, marks: list[bool]):
        """An optimizer state over θ as the same state over the params tree."""
        if not self.flat:
            return state
        leaves, treedef = jax.tree.flatten(state)
        return jax.tree.unflatten(treedef, [self.unflatten(a) if m else a for a, m in zip(leaves, marks)])

    def flatten_state(self, state, template, dtype):
        """A state over the params tree (e.g. a previous result's opt_state) as the state over θ;
        template: a state over θ of the same optimizer."""
        if not self.flat:
            return jax.device_put(state)
        return jax.tree.map(lambda t, s: self.flatten(s, dtype) if t.shape == (self.size,) else jax.device_put(s),
                            template, state)

    def first_non_finite(self, grads) -> str | None:
        """The name of the first leaf holding a NaN/inf, e.g. "[2].w", or None."""
        for i, p in enumerate(self.unflatten(grads)):
            for name, leaf in zip("wb", p):
                if not np.isfinite(np.asarray(leaf)).all():
                    return f"[{i}].{name}"
        return None


# --------------------------------------------------------------------------- configuration
class Settings(NamedTuple):
    """The run's numbers: runtime values, so a new number compiles nothing."""

    target_loss: Array
    patience: Array
    min_delta: Array
    max_bad_steps: Array
    epochs: Array  # the whole run's epochs (for the progress report)
    verbose: Array  # 1: progress bar (one line per epoch when not a terminal), 2: one line per epoch


class RunConfig(NamedTuple):
    """Everything static about a run: the compiled program is cached on it, and only on it."""

    model: models.Sequential
    loss: losses.Loss
    update: Callable  # the optimizer's update: its kind (its numbers are in its state)
    layout: Layout
    batch_size: int
    shuffle: bool
    validate: bool
    rules: tuple  # the stopping rules beyond Divergence, in order
    verbose: bool
    record_every: int = 0  # keep the params every k epochs (0: off)
    mesh: Any = None  # a jax.sharding.Mesh with a "data" axis: each batch is split across its devices
    small_layers: bool = True  # tiny layers as fused sums, not matmul calls (layers.dense_apply)

    @property
    def history_names(self) -> list[str]:
        names = ["loss", self.loss.metric.name]
        return names + ["val_loss", f"val_{self.loss.metric.name}"] if self.validate else names


def configure(model, loss: losses.Loss, optimizer: optim.Optimizer, n_in: int, *, batch_size: int, shuffle: bool,
              validate: bool, target_loss, patience, restore_best: bool, verbose: int,
              record_every: int = 0, mesh=None, small_layers: bool = True) -> RunConfig:
    """The one constructor of a RunConfig: the structure of a run, no numbers. (Whether samples carry
    weights is the structure of the Data the run is called with: jit keys its programs on it.)"""
    _warn_if_rebuilt(optimizer.update)
    rules = ()
    if patience is not None:
        rules += (EarlyStopping(monitor="val_loss" if validate else "loss", keep_best=bool(restore_best)),)
    if target_loss is not None:
        rules += (TargetLoss(),)
    return RunConfig(model=model, loss=loss, update=optimizer.update,
                     layout=Layout.of(model, n_in, optimizer.elementwise), batch_size=batch_size,
                     shuffle=bool(shuffle), validate=validate, rules=rules, verbose=verbose > 0,
                     record_every=record_every, mesh=mesh, small_layers=small_layers)


_SEEN_CODE: dict = {}  # code object of a user's update function -> the function object last seen with it
_WARNED: set = set()


def _warn_if_rebuilt(update) -> None:
    """A user's update is cached by identity: the same code arriving as a new closure compiles anew. Say so once."""
    code = getattr(update, "__code__", None)
    if code is None or code in _WARNED:
        return
    seen = _SEEN_CODE.get(code)
    _SEEN_CODE[code] = update
    if seen is not None and seen is not update:
        _WARNED.add(code)
        warnings.warn(f"the optimizer's update function {getattr(update, '__qualname__', update)!r} is a new "
                      "function object with the same code as an earlier one: each new one compiles the run "
                      "anew. Build the optimizer once and reuse it (fnn's own optimizers keep their numbers "
                      "in their state and never recompile for a new number).", RuntimeWarning, stacklevel=5)


def settings(dtype, *, target_loss=None, patience=None, min_delta=0.0, max_bad_steps=0, epochs=0,
             verbose=0) -> Settings:
    """The run's numbers as host arrays (inf / 0 where a rule is off)."""
    return Settings(target_loss=np.asarray(np.inf if target_loss is None else target_loss, dtype),
                    patience=np.asarray(0 if patience is None else patience, np.int32),
                    min_delta=np.asarray(min_delta, dtype), max_bad_steps=np.asarray(max_bad_steps, np.int32),
                    epochs=np.asarray(epochs, np.int32), verbose=np.asarray(verbose, np.int32))


class Data(NamedTuple):
    """The run's arrays: training rows, their weights (None: all 1), validation rows, the shuffle key."""

    x: Array  # (n, n_in)
    y: Array  # (n, n_out), prepared by the loss
    w: Array | None  # (n,) per-sample weights
    x_val: Array  # (n_val, n_in); n_val = 0 without validation
    y_val: Array
    key: Array  # the run's key: split(key) = (validation split, shuffling); epoch e shuffles with fold_in(·, e)


# --------------------------------------------------------------------------- state
class Guard(NamedTuple):
    """The non-finite guard: rejected steps are never applied and never counted in the figures."""

    bad_run: Array  # consecutive rejected steps
    rejected: Array  # rejected steps in the whole run
    first: Array  # (epoch, step) of the first rejected step; (-1, -1) if none
    last: Array  # (epoch, step) of the latest
    last_loss: Array  # that step's loss


class Sums(NamedTuple):
    """The epoch's weighted sums over accepted steps."""

    loss: Array
    metric: Array
    count: Array


class Carry(NamedTuple):
    """The scan carry of an epoch's steps."""

    params: Any  # as config.layout carries them
    opt_state: Any
    guard: Guard
    sums: Sums
    halted: Array  # max_bad_steps + 1 rejected steps in a row: the rest of the epoch is skipped
    step: Array  # index of the step within the epoch


class State(NamedTuple):
    """The loop state between epochs; every field is an array, so it can be checkpointed as it is."""

    params: Any
    opt_state: Any
    epoch: Array  # epochs completed
    stopped: Array
    reason: Array  # index into STOP_REASONS
    guard: Guard
    rules: tuple  # (Divergence's state, then each of config.rules')


class Epoch(NamedTuple):
    """What a stopping rule sees at the end of an epoch."""

    index: Array  # 0-based epoch just run
    values: dict  # name -> the epoch's figure (loss, metric, val_loss, ...)
    params: Any  # at the end of the epoch
    start_params: Any  # at its start: the params its training loss mostly measures
    halted: Array
    settings: Settings


# --------------------------------------------------------------------------- stopping rules
def _select(take, new, old):
    return jax.tree.map(lambda a, b: jnp.where(take, a, b), new, old)


class Divergence(NamedTuple):
    """Stop once max_bad_steps + 1 steps in a row were non-finite, or an epoch ends with non-finite
    params. Keeps the params a run can fall back on: those an epoch started from, scored by that
    epoch's training loss (which the end-of-epoch params of a run blowing up would not deserve),
    the lowest finite one seen; the result returns them after a divergence."""

    reason = NON_FINITE

    def init(self, params, dtype):
        return (np.asarray(np.inf, dtype), np.asarray(-1, np.int32), params)

    def update(self, state, epoch: Epoch):
        best, best_epoch, best_params = state
        loss = epoch.values["loss"]
        # A step is applied when its loss and gradients are finite; an update that overflows the
        # params anyway (a huge rate) is caught here, once per epoch, and never returned.
        broken = epoch.halted | ~_all_finite(epoch.params)
        better = jnp.isfinite(loss) & (loss < best)
        state = (jnp.where(better, loss, best), jnp.where(better, epoch.index, best_epoch),
                 _select(better, epoch.start_params, best_params))
        return state, broken


class TargetLoss(NamedTuple):
    """Stop once the epoch's training loss is at most settings.target_loss."""

    reason = TARGET_LOSS

    def init(self, params, dtype):
        return ()

    def update(self, state, epoch: Epoch):
        return state, epoch.values["loss"] <= epoch.settings.target_loss


class EarlyStopping(NamedTuple):
    """Stop when the monitored loss has not improved by min_delta for `patience` epochs; with
    keep_best, remember the params of the best epoch."""

    monitor: str  # "val_loss" or "loss"
    keep_best: bool
    reason = EARLY_STOPPING

    def init(self, params, dtype):
        return (np.asarray(np.inf, dtype), np.asarray(-1, np.int32), np.asarray(0, np.int32),
                params if self.keep_best else ())

    def update(self, state, epoch: Epoch):
        best, best_epoch, wait, best_params = state
        monitored = epoch.values[self.monitor]
        improved = (monitored < best - epoch.settings.min_delta) & ~epoch.halted
        best = jnp.where(improved, monitored.astype(best.dtype), best)
        best_epoch = jnp.where(improved, epoch.index, best_epoch)
        wait = jnp.where(improved, 0, wait + 1)
        if self.keep_best:
            best_params = _select(improved, epoch.params, best_params)
        return (best, best_epoch, wait, best_params), wait >= epoch.settings.patience


def initial_state(config: RunConfig, params, opt_state, dtype) -> State:
    """The state before the first epoch (host arrays where possible: nothing to compile)."""
    rules = (Divergence(),) + config.rules
    guard = Guard(bad_run=np.asarray(0, np.int32), rejected=np.asarray(0, np.int32),
                  first=np.full((2,), -1, np.int32), last=np.full((2,), -1, np.int32),
                  last_loss=np.asarray(np.nan, dtype))
    return State(params=params, opt_state=opt_state, epoch=np.asarray(0, np.int32), stopped=np.asarray(False),
                 reason=np.asarray(EPOCHS, np.int32), guard=guard,
                 rules=tuple(rule.init(params, dtype) for rule in rules))


# --------------------------------------------------------------------------- the step
def batch_objective(config: RunConfig):
    """loss(params, xb, yb, wb) -> (weighted mean loss, network output); wb None: all samples count."""

    def objective(params, xb, yb, wb):
        out = models.network_output(config.model, config.loss, config.layout.unflatten(params), xb,
                                    small=config.small_layers)
        per = config.loss.per_sample(out, yb)
        if wb is None:
            return jnp.mean(per), out
        return jnp.sum(wb * per) / jnp.sum(wb), out

    return objective


def _all_finite(tree) -> Array:
    """One scalar test: a NaN/inf anywhere makes the sum non-finite."""
    return jnp.isfinite(sum(jnp.sum(leaf) for leaf in jax.tree.leaves(tree)))


def make_step(config: RunConfig, settings: Settings, epoch: Array):
    """step(carry, (xb, yb, wb)) -> (carry, None): one optimizer step on a mini-batch."""
    objective = batch_objective(config)

    def apply(params, opt_state, grads):
        updates, opt_state = config.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state

    def keep(params, opt_state, grads):
        return params, opt_state

    def step(carry: Carry, batch):
        (loss, out), grads = jax.value_and_grad(objective, has_aux=True)(carry.params, *batch)
        take, carry = _guard(config, settings, epoch, carry, batch, loss, out, grads)
        # Only a finite step is applied; lax.cond skips the update instead of selecting over the new
        # and old params and optimizer state afterwards (three memory passes of every array saved).
        params, opt_state = jax.lax.cond(take, apply, keep, carry.params, carry.opt_state, grads)
        return carry._replace(params=params, opt_state=opt_state), None

    return step


def _guard(config, settings, epoch, carry: Carry, batch, loss, out, grads) -> tuple[Array, Carry]:
    """(take, carry): whether to apply the step (its loss and gradients finite, the batch not empty,
    the epoch not halted), with the guard's counts and the epoch's sums updated to match."""
    xb, yb, wb = batch
    count = jnp.asarray(xb.shape[0], xb.dtype) if wb is None else jnp.sum(wb)
    ok = jnp.isfinite(loss) & _all_finite(grads)
    ran = ~carry.halted & (count > 0)  # an all-padding batch is no step
    take = ok & ran
    bad = ~ok & ran
    g = carry.guard
    where = jnp.stack([epoch, carry.step]).astype(jnp.int32)
    bad_run = jnp.where(ran, jnp.where(ok, 0, g.bad_run + 1), g.bad_run)
    guard = Guard(bad_run=bad_run, rejected=g.rejected + bad.astype(jnp.int32),
                  first=jnp.where(bad & (g.first[0] < 0), where, g.first), last=jnp.where(bad, where, g.last),
                  last_loss=jnp.where(bad, loss.astype(g.last_loss.dtype), g.last_loss))
    hits = config.loss.metric.per_sample(jax.lax.stop_gradient(out), yb, config.loss.from_logits)
    hits = jnp.sum(hits) if wb is None else jnp.sum(wb * hits)
    s = carry.sums
    sums = Sums(loss=s.loss + jnp.where(take, loss * count, 0.0), metric=s.metric + jnp.where(take, hits, 0.0),
                count=s.count + jnp.where(take, count, 0.0))
    return take, carry._replace(guard=guard, sums=sums, halted=carry.halted | (bad_run > settings.max_bad_steps),
                                step=carry.step + 1)


def start_epoch(state: State, dtype) -> Carry:
    zero = jnp.zeros((), dtype)
    return Carry(params=state.params, opt_state=state.opt_state, guard=state.guard, sums=Sums(zero, zero, zero),
                 halted=jnp.zeros((), bool), step=jnp.zeros((), jnp.int32))


# --------------------------------------------------------------------------- the epoch
PACKED_SHUFFLE = 4096  # up to this many rows, the shuffle sorts one packed array (see shuffle_order)


def shuffle_order(key, n: int) -> Array:
    """A random permutation of range(n).

    For n <= PACKED_SHUFFLE: one sort of uint32 words holding random high bits above the row index
    in the low bits (5× faster than jax.random.permutation's sort of (key, index) pairs, which was
    ~40% of a small network's epoch). With ≥ 20 random bits, two rows tie with probability ≤ 2^-20,
    and a tie only keeps their original order. Larger n: jax.random.permutation."""
    if n > PACKED_SHUFFLE:
        return jax.random.permutation(key, n)
    low = (1 << max(n - 1, 1).bit_length()) - 1
    words = (jax.random.bits(key, (n,), jnp.uint32) & jnp.uint32(0xFFFFFFFF ^ low)) | jnp.arange(n, dtype=jnp.uint32)
    return (jnp.sort(words) & jnp.uint32(low)).astype(jnp.int32)


def epoch_batches(config: RunConfig, data: Data, epoch: Array):
    """The epoch's (xs, ys, ws) with a leading n_batches axis: shuffled with fold_in(key, epoch);
    the last batch padded with weight 0 when partial."""
    x, y = data.x, data.y
    n, bs = x.shape[0], config.batch_size
    n_batches = -(-n // bs)
    pad = n_batches * bs - n
    if config.shuffle:
        order = shuffle_order(jax.random.fold_in(jax.random.split(data.key)[1], epoch), n)
    else:
        order = jnp.arange(n)
    idx = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)]).reshape(n_batches, bs)
    w = None
    if pad:
        w = (jnp.arange(n_batches * bs) < n).reshape(n_batches, bs).astype(x.dtype)
    if data.w is not None:
        w = data.w[idx] if w is None else w * data.w[idx]
    batches = (x[idx], y[idx], w)
    if config.mesh is not None:  # split every batch across the devices; XLA all-reduces the gradients
        batches = jax.tree.map(lambda a: jax.lax.with_sharding_constraint(
            a, NamedSharding(config.mesh, PartitionSpec(None, "data"))), batches)
    return batches


def end_epoch(config: RunConfig, settings: Settings, state: State, carry: Carry, data: Data):
    """The epoch's figures, then the stopping rules: -> (State, values)."""
    sums = carry.sums
    metric = config.loss.metric
    values = {"loss": sums.loss / sums.count, metric.name: sums.metric / sums.count}
    if config.validate:
        out = models.network_output(config.model, config.loss, config.layout.unflatten(carry.params), data.x_val)
        values["val_loss"] = jnp.mean(config.loss.per_sample(out, data.y_val))
        values[f"val_{metric.name}"] = jnp.mean(metric.per_sample(out, data.y_val, config.loss.from_logits))
    epoch = Epoch(index=state.epoch, values=values, params=carry.params, start_params=state.params,
                  halted=carry.halted, settings=settings)
    stopped, reason, rule_states = jnp.zeros((), bool), state.reason, []
    for rule, rule_state in zip((Divergence(),) + config.rules, state.rules):
        rule_state, stop = rule.update(rule_state, epoch)
        reason = jnp.where(stop & ~stopped, rule.reason, reason)
        stopped = stopped | stop
        rule_states.append(rule_state)
    if config.verbose:
        names = tuple(config.history_names)  # in this order: a dict argument would come back sorted
        jax.debug.callback(functools.partial(PROGRESS.report, names=names), settings.verbose, state.epoch,
                           settings.epochs, stopped, tuple(values[k] for k in names), ordered=True)
    state = State(params=carry.params, opt_state=carry.opt_state, epoch=state.epoch + 1, stopped=stopped,
                  reason=reason, guard=carry.guard, rules=tuple(rule_states))
    return state, values


def run_epoch(config: RunConfig, settings: Settings, state: State, data: Data):
    """One epoch over the arrays in `data`: -> (State, values)."""
    batches = epoch_batches(config, data, state.epoch)
    carry, _ = jax.lax.scan(make_step(config, settings, state.epoch), start_epoch(state, data.x.dtype), batches)
    return end_epoch(config, settings, state, carry, data)


class Record(NamedTuple):
    """What one compiled call returns besides the state: the figures of the epochs it ran."""

    history: dict  # name -> (CHUNK,) figures, nan past the epochs run
    snapshots: Any  # params with a leading (CHUNK // record_every + 1,) axis, or ()
    n_snapshots: Array


def chunk_snapshots(config: RunConfig) -> int:
    """Snapshot slots per call: at most CHUNK // k + 1 kept, and one more that the epochs after the
    last kept one write to."""
    return CHUNK // config.record_every + 2 if config.record_every else 0


def make_run(config: RunConfig):
    """run(state, data, settings, stop_epoch) -> (State, Record): epochs from state.epoch up to
    stop_epoch (at most CHUNK of them) until a rule stops the run (not yet jitted)."""

    def run(state: State, data: Data, settings: Settings, stop_epoch):
        dtype = data.x.dtype
        start = state.epoch
        end = jnp.minimum(stop_epoch, start + CHUNK)
        history = {k: jnp.full((CHUNK,), jnp.nan, dtype) for k in config.history_names}
        k = config.record_every
        snaps = jax.tree.map(lambda p: jnp.zeros((chunk_snapshots(config),) + p.shape, p.dtype), state.params) \
            if k else ()

        def body(loop):
            state, history, snaps, n_snaps = loop
            new, values = run_epoch(config, settings, state, data)
            history = {name: h.at[state.epoch - start].set(values[name].astype(dtype)) for name, h in history.items()}
            if k:  # every epoch writes slot n_snaps; only an epoch that is a multiple of k moves past it
                snaps = jax.tree.map(lambda s, p: s.at[n_snaps].set(p), snaps, new.params)
                n_snaps = n_snaps + ((new.epoch % k) == 0).astype(jnp.int32)
            return new, history, snaps, n_snaps

        def cond(loop):
            return (loop[0].epoch < end) & ~loop[0].stopped

        state, history, snaps, n_snaps = jax.lax.while_loop(cond, body, (state, history, snaps,
                                                                          jnp.zeros((), jnp.int32)))
        return state, Record(history, snaps, n_snaps)

    return run


@functools.lru_cache(maxsize=64)
def compiled(config: RunConfig):
    """The jitted run for a RunConfig: the compile cache. jax.jit adds one program per shapes."""
    return jax.jit(make_run(config))


def cache_info() -> dict:
    """The compile cache's statistics: RunConfigs with a compiled run, and lookups that found or missed one."""
    info = compiled.cache_info()
    return {"configs": info.currsize, "misses": info.misses, "hits": info.hits}


# --------------------------------------------------------------------------- the host loop
class Progress:
    """The per-epoch report `verbose` asks for, written from a host callback."""

    def __init__(self):
        self.clock = time.perf_counter()

    def start(self):
        self.clock = time.perf_counter()

    def report(self, verbose, epoch, total, stopped, values, names=()):
        now = time.perf_counter()
        seconds, self.clock = now - self.clock, now
        epoch, total, verbose = int(epoch) + 1, int(total), int(verbose)
        last = epoch >= total or bool(stopped)
        parts = " - ".join(f"{k} {float(v):.4f}" for k, v in zip(names, values))
        timing = f"{seconds * 1e3:.1f} ms/epoch" if seconds < 1 else f"{seconds:.2f} s/epoch"
        terminal = sys.stdout.isatty()
        if verbose >= 2 or not terminal:
            every = 1 if verbose >= 2 else max(1, -(-total // 100))  # long runs: about 100 lines
            if last or epoch % every == 0 or epoch == 1:
                print(f"epoch {epoch}/{total} - {parts} - {timing}", flush=True)
            return
        width = 20
        done = int(width * epoch / total)
        bar = "=" * done + (">" if done < width else "") + "." * max(0, width - done - 1)
        sys.stdout.write(f"\repoch {epoch}/{total} [{bar}] {parts} - {timing}" + ("\n" if last else ""))
        sys.stdout.flush()


PROGRESS = Progress()


class Outcome(NamedTuple):
    """A finished (or paused) run on the host side."""

    state: State
    history: dict  # name -> list of floats, one per epoch run
    snapshots: list  # params trees (layout form), one per recorded epoch
    snapshot_epochs: list


def train(config: RunConfig, state: State, data: Data, settings: Settings, until: int, history=None,
          snapshots=None, snapshot_epochs=None) -> Outcome:
    """Call the compiled run until `until` epochs are done or a rule stops it; one host sync per
    CHUNK epochs. history/snapshots: what earlier calls recorded (to continue a run)."""
    run = compiled(config)
    history = {k: list(v) for k, v in (history or {k: [] for k in config.history_names}).items()}
    snapshots, snapshot_epochs = list(snapshots or []), list(snapshot_epochs or [])
    epoch = int(state.epoch)
    PROGRESS.start()
    while epoch < until and not bool(state.stopped):
        state, record = run(state, data, settings, np.asarray(until, np.int32))
        done = int(state.epoch)
        for k, v in jax.device_get(record.history).items():
            history[k].extend(float(a) for a in v[:done - epoch])
        if config.record_every:
            n = int(record.n_snapshots)
            host = jax.device_get(record.snapshots)
            snapshots.extend(jax.tree.map(lambda a, i=i: a[i], host) for i in range(n))
            first = (epoch // config.record_every + 1) * config.record_every
            snapshot_epochs.extend(range(first, first + n * config.record_every, config.record_every))
        epoch = done
    return Outcome(state, history, snapshots, snapshot_epochs)


# --------------------------------------------------------------------------- results
class DivergenceInfo(NamedTuple):
    """Where training met a non-finite loss, gradient or update."""

    epoch: int  # 0-based epoch
    step: int  # 0-based mini-batch within that epoch; -1: the params overflowed somewhere in the epoch
    loss: float  # the loss of that step (may be nan or inf)
    leaf: str  # the first non-finite gradient leaf, e.g. "[2].w", else "update..." or "loss"


class FitResult(NamedTuple):
    """What `fit` returns. history maps each name to one float per epoch run.

    rejected_steps: non-finite steps skipped (max_bad_steps), left out of the history's figures;
    first_rejected: (epoch, step) of the first of them. snapshots: with record_every=k, the params
    every k epochs (every leaf with a leading snapshot axis), snapshot_epochs the epoch counts."""

    params: Any
    opt_state: Any
    history: dict
    stop_reason: str
    epochs_run: int
    best_epoch: int | None  # with early stopping: the epoch of the best monitored loss
    divergence: DivergenceInfo | None
    rejected_steps: int = 0
    first_rejected: tuple | None = None
    snapshots: Any = None
    snapshot_epochs: tuple | None = None


def result(config: RunConfig, outcome: Outcome, marks: list[bool], diagnose=None) -> FitResult:
    """The FitResult of a finished run. diagnose(state, epoch, step) -> the first non-finite leaf."""
    state = outcome.state
    host = jax.device_get(state)
    n = int(host.epoch)
    reason = STOP_REASONS[int(host.reason)]
    params = state.params
    best_epoch = None
    for rule, rule_state in zip(config.rules, state.rules[1:]):
        if isinstance(rule, EarlyStopping) and int(rule_state[1]) >= 0:
            best_epoch = int(rule_state[1])
            if rule.keep_best:
                params = rule_state[3]
    divergence = None
    guard = host.guard
    if reason == STOP_REASONS[NON_FINITE]:
        epoch, step = (int(v) for v in guard.last)
        if epoch < n - 1 or epoch < 0:  # no step of the last epoch was refused: an applied update overflowed
            epoch, step, loss, leaf = n - 1, -1, float("nan"), "update (the params overflowed during this epoch)"
        else:
            loss = float(guard.last_loss)
            leaf = diagnose(state, epoch, step) if diagnose is not None else "a streamed batch"
        divergence = DivergenceInfo(epoch, step, loss, leaf)
        good_loss, good_epoch, params = state.rules[0]
        good_epoch = int(good_epoch)
        if good_epoch > 0:
            kept = (f"the params after epoch {good_epoch}, from which epoch {good_epoch + 1} trained with the "
                    f"lowest training loss seen ({float(good_loss):.4g})")
        else:
            kept = "the initial params"
        where = f"epoch {epoch + 1}, step {step}" if step >= 0 else f"the end of epoch {epoch + 1}"
        warnings.warn(f"training stopped at {where}: non-finite loss {divergence.loss} "
                      f"(first non-finite: {leaf}); returning {kept}. Try a smaller learning rate.",
                      RuntimeWarning, stacklevel=3)
    rejected = int(guard.rejected)
    first = tuple(int(v) for v in guard.first) if rejected else None
    if rejected and divergence is None:
        warnings.warn(f"{rejected} step(s) had a non-finite loss or gradient and were skipped (max_bad_steps), the "
                      f"first at epoch {first[0] + 1}, step {first[1]}; they are left out of the history's figures",
                      RuntimeWarning, stacklevel=3)
    layout = config.layout
    params = jax.device_put(layout.unflatten(jax.device_get(params)))  # sliced on the host: nothing to compile
    opt_state = state.opt_state if not layout.flat else \
        jax.device_put(layout.unflatten_state(jax.device_get(state.opt_state), marks))
    snapshots = None
    if config.record_every:
        if outcome.snapshots:
            stacked = jax.tree.map(lambda *a: np.stack(a), *outcome.snapshots)
            snapshots = jax.device_put(layout.unflatten(stacked))
        else:
            snapshots = tuple(DenseParams(jnp.zeros((0,) + (i, o)), jnp.zeros((0, o))) for i, o in layout.shapes)
    return FitResult(params, opt_state, outcome.history, reason, n, best_epoch, divergence, rejected, first,
                     snapshots, tuple(outcome.snapshot_epochs) if config.record_every else None)


def diagnose(config: RunConfig, data: Data, state: State, epoch: int, step: int) -> str:
    """Redo the step that stopped training, from the params it started from, to name what broke:
    the first non-finite gradient leaf (e.g. "[2].w"), else "update" or "loss"."""
    x, y = data.x, data.y
    n, bs = x.shape[0], config.batch_size
    order = shuffle_order(jax.random.fold_in(jax.random.split(data.key)[1], epoch), n) if config.shuffle \
        else jnp.arange(n)
    idx = np.asarray(order)[step * bs:(step + 1) * bs]
    w = None if data.w is None else data.w[idx]
    objective = batch_objective(config._replace(small_layers=False))
    (loss, _), grads = jax.value_and_grad(objective, has_aux=True)(state.params, x[idx], y[idx], w)
    leaf = config.layout.first_non_finite(grads)
    if leaf is not None:
        return leaf
    return "update" if np.isfinite(float(loss)) else "loss"


# --------------------------------------------------------------------------- checks the drivers share
def check_settings(model, params, loss, optimizer, epochs, verbose, max_bad_steps, target_loss, patience,
                   min_delta):
    """fit's checks shared by its drivers: -> (loss record, optimizer, epochs, verbose, max_bad_steps,
    target_loss, patience, min_delta), each validated, the defaults filled in."""
    models.check_params(model, params)
    loss = models.resolve_loss(model, loss)
    optimizer = optim.adam(1e-3) if optimizer is None else optim.check_optimizer(optimizer)
    epochs = _validate.integer(epochs, "epochs", minimum=0)
    verbose = _validate.integer(verbose, "verbose", minimum=0)
    max_bad_steps = _validate.integer(max_bad_steps, "max_bad_steps", minimum=0)
    if target_loss is not None:
        target_loss = _validate.real(target_loss, "target_loss")
    if patience is not None:
        patience = _validate.integer(patience, "patience", minimum=1)
    min_delta = _validate.real(min_delta, "min_delta", low=0)
    return loss, optimizer, epochs, verbose, max_bad_steps, target_loss, patience, min_delta


def validation(model, loss, params, validation_data):
    """validation_data=(x_val, y_val), checked and prepared like the training data."""
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise FnnTypeError("validation_data must be a pair (x_val, y_val)")
    return models.prepare(model, loss, params, *validation_data, xname="x_val", yname="y_val")


def check_opt_state(expected, opt_state):
    """Refuse an opt_state unlike `expected` (the optimizer's fresh state for these params), naming
    the first difference."""
    want, want_def = jax.tree_util.tree_flatten_with_path(expected)
    got = jax.tree.leaves(opt_state)
    if jax.tree.structure(opt_state) != want_def:
        raise FnnValueError(f"opt_state does not fit the optimizer and params: expected a state of structure "
                            f"{want_def}, got {jax.tree.structure(opt_state)}; pass the opt_state of a fit "
                            "with the same optimizer kind and model (e.g. result.opt_state)")
    for (path, w), g in zip(want, got):
        shape = tuple(np.shape(g))
        if shape != tuple(np.shape(w)):
            raise FnnValueError(f"opt_state{jax.tree_util.keystr(path)} has shape {shape}, expected "
                                f"{tuple(np.shape(w))} for these params; pass the opt_state of a fit of the same model")
        if _validate.is_concrete(g) and not np.isfinite(np.asarray(g, np.float64)).all():
            raise FnnValueError(f"opt_state{jax.tree_util.keystr(path)} contains non-finite values; the state is "
                                "unusable: start a fresh optimizer state")
    return opt_state


def spans_processes(mesh) -> bool:
    return mesh is not None and any(d.process_index != jax.process_index() for d in mesh.devices.flat)


def to_device(mesh, tree):
    """Host arrays -> device arrays, replicated over the mesh's devices when there is one."""
    if mesh is None:
        return jax.device_put(tree)
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def bucket_rows(n: int) -> int:
    """A row count rounded up to few distinct sizes (powers of two, then multiples of 65,536), so
    inference on new sizes reuses compiled programs."""
    if n <= 65536:
        return max(8, 1 << max(n - 1, 0).bit_length())
    return -(-n // 65536) * 65536

