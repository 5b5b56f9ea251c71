"""The pure core of a training run: `TrainState`, the step, the epoch, and `run`, one compiled program.

`run(spec, state, data, epochs, max_steps)` trains from `state` until `epochs` more epochs are done
(at most `CHUNK` per call), `max_steps` steps were taken, or a compiled callback stopped the run;
it returns the new state and a `Record` of the epochs it ran. It is a pure function of arrays
(no host side effects): `Trainer.run` is its host driver, `fnn.sweep` vmaps it, the stream path
runs its `train_steps` and `end_epoch` on batches fed from the host, and users may jit or vmap it.

What compiles: one program per `Spec` (the structure: model, loss, the optimizer's kind, batch
size, shuffling, the compiled callbacks' kinds, the device mesh) and per shapes, dtypes and
structure of the state and data (validation on/off and sample weights on/off are the data's
structure). Every number — the learning rate and every other hyperparameter (in the optimizer's
state), every callback number (in the callbacks' states), `epochs`, `max_steps`, the row count
`n` — is a runtime value.

Inside the program small networks trained by an element-wise optimizer travel as one flat vector
θ (`jax.flatten_util.ravel_pytree`): the optimizer's update is then one fused pass instead of one
per leaf. The state that goes in and comes out, and everything callbacks see, is the params' own tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import NamedSharding, PartitionSpec

from fnn import _compile, _epoch_logs, layers, losses, models, optim

__all__ = [
    "CHUNK",
    "Data",
    "EpochView",
    "Guard",
    "Record",
    "Spec",
    "Sums",
    "TrainState",
    "end_epoch",
    "is_large",
    "run",
    "shuffle_order",
    "train_steps",
]

Array = jax.Array
Leaf = jax.Array | np.ndarray  # state leaves: host arrays until the first call moves them
CHUNK = 256  # the most epochs one call runs: the length of the history buffers it returns
FLAT_LIMIT = 4096  # networks with at most this many parameters train on one flat vector
PACKED_SHUFFLE = 4096  # up to this many rows the shuffle sorts one packed array (see shuffle_order)
NO_LEAF, LOSS_LEAF = -1, -2  # Guard.bad_leaf: no rejected step yet; the loss, not a gradient, was non-finite


class Guard(NamedTuple):
    """The non-finite guard: a step whose loss or gradients are not finite is never applied."""

    max_bad_steps: Leaf  # int32: rejected steps in a row tolerated before the epoch is halted
    bad_run: Leaf  # int32: consecutive rejected steps
    rejected: Leaf  # int32: rejected steps in the whole run
    first: Leaf  # (2,) int32: (epoch, step) of the first rejected step, (-1, -1) if none
    last: Leaf  # (2,) int32: of the latest
    last_loss: Leaf  # that step's loss
    bad_leaf: Leaf  # int32: index in jax.tree.leaves(params) of its first non-finite gradient, or LOSS_LEAF
    halted: Leaf  # bool: max_bad_steps + 1 rejected in a row; the rest of the epoch is skipped


class Sums(NamedTuple):
    """The current epoch's weighted sums over accepted steps."""

    loss: Leaf
    metric: Leaf  # the loss's metric; (rows,) with Spec.metrics (fnn.metrics.sum_rows)
    weight: Leaf  # the accepted samples' total weight


class TrainState(NamedTuple):
    """Everything a run needs to continue: save it, load it, vmap it.

    params and opt_state are in the user's tree form; epoch counts completed epochs and step the
    steps of the current one (0 at an epoch boundary); key is the run's PRNG key (epoch e shuffles
    with fold_in(split(key)[1], e)); callbacks holds each compiled callback's state, in order.
    """

    params: Any
    opt_state: Any
    epoch: Leaf
    step: Leaf
    key: Leaf
    callbacks: tuple
    guard: Guard
    sums: Sums
    start_params: Any  # the params the current epoch started from (scored by its loss: see TerminateOnNaN)


class Data(NamedTuple):
    """A run's arrays. Rows at and past `n` are padding (never trained on); x_val is None without validation."""

    x: Leaf  # (N, n_in)
    y: Leaf  # (N, n_out), prepared by the loss
    w: Leaf | None  # (N,) per-sample weights, or None (all 1)
    n: Leaf  # int32: the real rows
    x_val: Leaf | None
    y_val: Leaf | None
    n_val: Leaf | None = None  # int32: the real validation rows, where x_val is padded (None: all real)
    w_val: Leaf | None = None  # (N_val,) validation weights (val_loss: the mean of w·loss), or None (all 1)


class Spec(NamedTuple):
    """The structure of a run: the compiled program is cached on it (a static argument of jit)."""

    model: models.Sequential
    loss: losses.Loss
    update: Callable  # the optimizer's kind; its numbers live in its state
    batch_size: int
    shuffle: bool = True
    callbacks: tuple = ()  # the compiled callbacks (fnn.callbacks.Rule), equal when their kinds are
    mesh: Any = None  # a jax.sharding.Mesh with a "data" axis: each batch is split across its devices
    small_layers: bool = True  # tiny layers as fused sums (layers.dense_apply); a sweep turns it off
    metrics: tuple = ()  # extra fnn.metrics.Metric records (fit's metrics=): Sums.metric is then (rows,)

    def log_names(self, validate: bool) -> tuple[str, ...]:
        train = ("loss",) + _epoch_logs.metric_names(self)
        names = train + (tuple(f"val_{name}" for name in train) if validate else ())
        for callback in self.callbacks:
            names += tuple(name for name in callback.log_names if name not in names)
        return names


class EpochView(NamedTuple):
    """What a compiled callback sees at the end of an epoch (and may change: logs, opt_state)."""

    epoch: Leaf  # the 0-based epoch just run
    logs: dict  # name -> the epoch's figure: loss, the metric, val_loss, ...
    params: Any  # at the end of the epoch (tree form)
    start_params: Any  # at its start: the params its training loss mostly measures
    opt_state: Any
    halted: Leaf  # the guard halted the epoch
    objective: Callable | None = None  # params -> the training loss on the run's rows (None: a stream's run)


class Record(NamedTuple):
    """What one call returns beside the state."""

    history: dict  # name -> (CHUNK,) figures; entries past `epochs` are nan
    epochs: Leaf  # int32: epochs completed by this call
    steps: Leaf  # int32: steps taken by this call
    stopped: Leaf  # bool: a callback stopped the run
    reason: Leaf  # int32: 1 + the index of the callback that stopped it (0: none)
    buffers: tuple  # each compiled callback's per-call record (e.g. Snapshots' params), or None
    epoch: Leaf  # int32: the state's epoch and step after the call (for the host, without
    step: Leaf  # touching the state's arrays)


# --------------------------------------------------------------------------- layout
class _Layout(NamedTuple):
    """How params travel inside the program: their tree, or one flat vector θ."""

    flat: bool
    unravel: Callable
    matches: Callable  # node -> is it shaped like the params (a velocity, a moment...)?

    def to_inner(self, tree, params_like: bool = False):
        if not self.flat:
            return tree
        if params_like:
            return ravel_pytree(tree)[0]
        return jax.tree.map(
            lambda node: ravel_pytree(node)[0] if self.matches(node) else node, tree, is_leaf=self.matches
        )

    def to_outer(self, inner, like, params_like: bool = False):
        if not self.flat:
            return inner
        if params_like:
            return self.unravel(inner)
        return jax.tree.map(
            lambda node, x: self.unravel(x) if self.matches(node) else x, like, inner, is_leaf=self.matches
        )


def _layout(spec: Spec, params) -> _Layout:
    leaves, treedef = jax.tree.flatten(params)
    shapes = [(leaf.shape, leaf.dtype) for leaf in leaves]
    size = _compile.param_count(params)
    dtypes = {d for _, d in shapes}
    # One dtype, and not half precision: its optimizer state is float32, so it could not share the params' vector.
    flat = optim.is_elementwise(spec.update) and size <= FLAT_LIMIT and len(dtypes) == 1
    flat = flat and optim.dtype_of(params) == next(iter(dtypes))

    def matches(node) -> bool:
        node_leaves, node_def = jax.tree.flatten(node)
        return node_def == treedef and [(a.shape, a.dtype) for a in node_leaves] == shapes

    unravel = ravel_pytree(params)[1]
    return _Layout(flat, unravel, matches)


# --------------------------------------------------------------------------- the step
def _finite_leaves(grads, layout: _Layout) -> tuple[Array, Array]:
    """(all finite?, index in the params' leaves of the first non-finite gradient) from one sum per
    leaf (a NaN/inf anywhere makes its sum non-finite); on the flat vector θ, the index comes from
    the first non-finite entry. No branch: this runs every step."""
    if layout.flat:
        bad = ~jnp.isfinite(grads)
        sizes = [leaf.size for leaf in jax.tree.leaves(layout.unravel(grads))]
        ends = jnp.asarray(np.cumsum(sizes))
        leaf = jnp.searchsorted(ends, jnp.argmax(bad), side="right").astype(jnp.int32)
        return ~jnp.any(bad), leaf
    finite = jnp.stack([jnp.isfinite(jnp.sum(leaf)) for leaf in jax.tree.leaves(grads)])
    return jnp.all(finite), jnp.argmin(finite).astype(jnp.int32)


def batch_objective(spec: Spec, layout: _Layout | None = None):
    """objective(params, xb, yb, wb, mb, key=None) -> (Σ wb·loss / Σ mb + penalty, network output);
    params in layout form.

    mb marks the batch's real rows (1) and its padding (0); wb is mb times the rows' weights. The
    mean of w·loss over the rows, as Keras weighs: a weight acts at any batch size, even 1. The
    layers' regularization penalty is added (as Keras adds it); key draws the dropout masks (None: none)."""

    def objective(params, xb, yb, wb, mb, key=None):
        tree = layout.unravel(params) if layout is not None and layout.flat else params
        out = models.network_output(spec.model, spec.loss, tree, xb, spec.small_layers, key)
        per = spec.loss.per_sample(out, yb)
        return models.with_penalty(spec.model, tree, jnp.sum(wb * per) / jnp.maximum(jnp.sum(mb), 1)), out

    return objective


def _step(spec: Spec, layout: _Layout, state: TrainState, batch) -> tuple[TrainState, Array, Array]:
    """One optimizer step on a mini-batch (xb, yb, wb, mb): value_and_grad, the guard, the update.
    -> (state, the batch's loss before the step, whether the step was applied)."""
    xb, yb, wb, mb = batch
    objective = batch_objective(spec, layout)
    # a model without dropout draws no key: its program is the one it always was
    key = layers.dropout_key(state.key, state.epoch, state.step) if spec.model.has_dropout else None
    (loss, out), grads = jax.value_and_grad(objective, has_aux=True)(state.params, xb, yb, wb, mb, key)
    g = state.guard
    count = jnp.sum(mb)
    finite, first_leaf = _finite_leaves(grads, layout)
    ok = jnp.isfinite(loss) & finite
    ran = ~g.halted & (count > 0)  # an all-padding batch is no step
    take, bad = ok & ran, ~ok & ran
    where = jnp.stack([state.epoch, state.step]).astype(jnp.int32)
    bad_run = jnp.where(ran, jnp.where(ok, 0, g.bad_run + 1), g.bad_run)
    leaf = jnp.where(finite, LOSS_LEAF, first_leaf)  # a gradient leaf if one broke, else the loss
    guard = g._replace(
        bad_run=bad_run,
        rejected=g.rejected + bad.astype(jnp.int32),
        first=jnp.where(bad & (g.first[0] < 0), where, g.first),
        last=jnp.where(bad, where, g.last),
        last_loss=jnp.where(bad, loss.astype(g.last_loss.dtype), g.last_loss),
        bad_leaf=jnp.where(bad & (g.first[0] < 0), leaf, g.bad_leaf),
        halted=g.halted | (bad_run > g.max_bad_steps),
    )
    hits = _epoch_logs.hits(spec, jax.lax.stop_gradient(out), yb)
    s = state.sums
    sums = Sums(
        loss=s.loss + jnp.where(take, loss * count, 0.0).astype(s.loss.dtype),
        metric=s.metric + jnp.where(take, _epoch_logs.row_sums(mb, hits), 0.0).astype(s.metric.dtype),
        weight=s.weight + jnp.where(take, count, 0.0).astype(s.weight.dtype),
    )

    def apply(params, opt_state):
        return optim.apply_step(spec.update, grads, opt_state, params)

    # Only a finite step is applied; lax.cond skips the update instead of selecting over the new and
    # old params and optimizer state afterwards (three memory passes over every array saved).
    params, opt_state = jax.lax.cond(take, apply, lambda p, o: (p, o), state.params, state.opt_state)
    return state._replace(params=params, opt_state=opt_state, guard=guard, sums=sums, step=state.step + 1), loss, take


def n_batches(spec: Spec, data: Data) -> Array:
    return (jnp.asarray(data.n) + spec.batch_size - 1) // spec.batch_size


def shuffle_order(key, size: int, n=None) -> Array:
    """A random order of range(size) with the rows at and past n (padding) last.

    For size <= PACKED_SHUFFLE: one sort of uint32 words holding random high bits above the row
    index in the low bits (5× faster than jax.random.permutation's sort of (key, index) pairs). With
    ≥ 20 random bits two rows tie with probability ≤ 2^-20, and a tie only keeps their order."""
    n = size if n is None else n
    index = jnp.arange(size, dtype=jnp.uint32)
    if size > PACKED_SHUFFLE:
        draws = jax.random.uniform(key, (size,))
        return jnp.argsort(jnp.where(index < n, draws, 2.0)).astype(jnp.int32)
    low = (1 << max(size - 1, 1).bit_length()) - 1
    high = jnp.uint32(0xFFFFFFFF ^ low)
    words = (jax.random.bits(key, (size,), jnp.uint32) & high) | index
    words = jnp.where(index < n, words, words | high)  # padding sorts after every real row
    return (jnp.sort(words) & jnp.uint32(low)).astype(jnp.int32)


def epoch_order(spec: Spec, key, epoch, data: Data) -> Array:
    size = data.x.shape[0]
    if not spec.shuffle:
        return jnp.arange(size, dtype=jnp.int32)
    return shuffle_order(jax.random.fold_in(jax.random.split(key)[1], epoch), size, data.n)


def _batch(spec: Spec, data: Data, order: Array, step: Array):
    """The step-th mini-batch of an epoch in `order`: rows past n (the last batch's tail) weigh 0."""
    bs = spec.batch_size
    size = data.x.shape[0]
    padded = jnp.concatenate([order, jnp.zeros((bs,), order.dtype)]) if size % bs else order
    position = step * bs + jnp.arange(bs)
    idx = jax.lax.dynamic_slice(padded, (step * bs,), (bs,))
    m = (position < data.n).astype(data.x.dtype)
    w = m if data.w is None else m * data.w[idx]
    batch = (data.x[idx], data.y[idx], w, m)
    if spec.mesh is not None:  # split every batch across the devices; XLA all-reduces the gradients
        sharding = NamedSharding(spec.mesh, PartitionSpec("data"))
        batch = jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), batch)
    return batch


def train_steps(spec: Spec, state: TrainState, batches) -> TrainState:
    """The step over a stack of given batches (xs, ys, ws, ms), each with a leading n_batches axis
    (the stream path's entry; params in tree form)."""
    layout = _layout(spec, state.params)._replace(flat=False)

    def body(s, batch):
        return _step(spec, layout, s, batch)[0], None

    return jax.lax.scan(body, state, batches)[0]


# --------------------------------------------------------------------------- the end of an epoch
def _full_loss(spec: Spec, data: Data) -> Callable | None:
    """params (tree form) -> the mean of w·loss over all real rows; traced only by a rule that calls it."""
    if data.x.shape[0] == 0:  # the stream path: the rows were fed batch by batch and are gone
        return None
    m = (jnp.arange(data.x.shape[0]) < data.n).astype(data.x.dtype)
    w = m if data.w is None else m * data.w
    objective = batch_objective(spec)
    return lambda params: objective(params, data.x, data.y, w, m)[0]


def end_epoch(spec: Spec, state: TrainState, data: Data):
    """The epoch's figures, then every compiled callback in order: -> (state, logs, stop, reason).

    On a stop, the first callback that stopped the run chooses the params the state keeps
    (`Rule.stop_params`: TerminateOnNaN's fallback, EarlyStopping's best). Params in tree form."""
    logs = _epoch_logs.epoch_logs(spec, state, data, state.params)
    view = EpochView(
        state.epoch, logs, state.params, state.start_params, state.opt_state, state.guard.halted, _full_loss(spec, data)
    )
    stopped, reason, params, states = jnp.zeros((), bool), jnp.zeros((), jnp.int32), state.params, []
    for i, (callback, cb_state) in enumerate(zip(spec.callbacks, state.callbacks)):
        cb_state, stop, view = callback.on_epoch(cb_state, view)
        stop = jnp.asarray(stop, bool)
        first = stop & ~stopped
        chosen = callback.stop_params(cb_state, view.params)
        params = jax.tree.map(lambda a, b, first=first: jnp.where(first, a, b), chosen, params)
        reason = jnp.where(first, i + 1, reason)
        stopped = stopped | stop
        states.append(cb_state)
    zero = jnp.zeros((), state.sums.loss.dtype)
    state = state._replace(
        params=params,
        opt_state=view.opt_state,
        epoch=state.epoch + 1,
        step=jnp.zeros_like(state.step),
        callbacks=tuple(states),
        guard=state.guard._replace(halted=jnp.zeros((), bool)),
        sums=Sums(zero, jnp.zeros_like(state.sums.metric), zero),
        start_params=params,
    )
    logs = {name: jnp.asarray(view.logs[name]) for name in spec.log_names(data.x_val is not None)}
    return state, logs, stopped, reason


# --------------------------------------------------------------------------- the run
def is_large(spec: Spec, state: TrainState, *args, **kwargs) -> bool:
    """Does a run of this state compile as JAX configures XLA (fnn._compile): at least
    LARGE_PARAMS parameters, where steps, not compiling, dominate the time."""
    return _compile.param_count(state.params) >= _compile.LARGE_PARAMS


class _Loop(NamedTuple):
    state: TrainState  # params and opt_state in layout form
    history: dict
    buffers: tuple
    epochs: Array
    steps: Array
    stopped: Array
    reason: Array


def run(spec: Spec, state: TrainState, data: Data, epochs, max_steps=None) -> tuple[TrainState, Record]:
    """Train until `epochs` more epochs are done (at most CHUNK), `max_steps` steps were taken or a
    callback stops the run: -> (state, Record). A state in the middle of an epoch finishes it first
    (that counts as one of the epochs). Pure: jit it, vmap it over stacked states."""
    dtype = data.x.dtype
    layout = _layout(spec, state.params)
    outer_params, outer_opt = state.params, state.opt_state
    inner = state._replace(params=layout.to_inner(state.params, True), opt_state=layout.to_inner(state.opt_state))
    limit = jnp.minimum(jnp.asarray(epochs, jnp.int32), CHUNK)
    budget = jnp.asarray(jnp.iinfo(jnp.int32).max if max_steps is None else max_steps, jnp.int32)
    total = n_batches(spec, data)
    names = spec.log_names(data.x_val is not None)
    history = {name: jnp.full((CHUNK,), jnp.nan, dtype) for name in names}
    buffers = tuple(cb.buffer(outer_params, CHUNK, data.x.shape[0] // spec.batch_size + 1) for cb in spec.callbacks)

    def tree(s: TrainState) -> TrainState:
        return s._replace(
            params=layout.to_outer(s.params, outer_params, True), opt_state=layout.to_outer(s.opt_state, outer_opt)
        )

    def body(loop: _Loop) -> _Loop:
        order = epoch_order(spec, loop.state.key, loop.state.epoch, data)

        def step_cond(carry):
            s, taken, _ = carry
            return (s.step < total) & (taken < budget) & ~s.guard.halted

        def step_body(carry):
            s, taken, bufs = carry
            batch = _batch(spec, data, order, s.step)
            new, loss, took = _step(spec, layout, s, batch)
            bufs = tuple(cb.record_step(buf, loop.epochs, s.step, loss, took) for cb, buf in zip(spec.callbacks, bufs))
            return new, taken + 1, bufs

        s, steps, bufs = jax.lax.while_loop(step_cond, step_body, (loop.state, loop.steps, loop.buffers))
        finished = (s.step >= total) | s.guard.halted

        def finish(s, bufs):
            out, logs, stopped, reason = end_epoch(spec, tree(s), data)
            logs = {k: v.astype(dtype) for k, v in logs.items()}
            bufs = tuple(cb.record_epoch(buf, loop.epochs, out, logs) for cb, buf in zip(spec.callbacks, bufs))
            inner_out = out._replace(
                params=layout.to_inner(out.params, True),
                opt_state=layout.to_inner(out.opt_state),
                start_params=out.start_params,
            )
            return inner_out, logs, stopped, reason, bufs

        def wait(s, bufs):
            return (
                s,
                {k: jnp.full((), jnp.nan, dtype) for k in names},
                jnp.zeros((), bool),
                jnp.zeros((), jnp.int32),
                bufs,
            )

        s, logs, stopped, reason, bufs = jax.lax.cond(finished, finish, wait, s, bufs)
        history = {
            k: h.at[loop.epochs].set(jnp.where(finished, logs[k].astype(dtype), h[loop.epochs]))
            for k, h in loop.history.items()
        }
        return _Loop(
            s,
            history,
            bufs,
            loop.epochs + finished.astype(jnp.int32),
            steps,
            stopped,
            jnp.where(stopped, reason, loop.reason),
        )

    def cond(loop: _Loop):
        return (loop.epochs < limit) & ~loop.stopped & (loop.steps < budget)

    start = _Loop(
        inner,
        history,
        buffers,
        jnp.zeros((), jnp.int32),
        jnp.zeros((), jnp.int32),
        jnp.zeros((), bool),
        jnp.zeros((), jnp.int32),
    )
    loop = jax.lax.while_loop(cond, body, start)
    return tree(loop.state), Record(
        loop.history,
        loop.epochs,
        loop.steps,
        loop.stopped,
        loop.reason,
        loop.buffers,
        loop.state.epoch,
        loop.state.step,
    )
