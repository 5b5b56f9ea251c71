"""Training speed and memory of fnn against hand-written JAX, NumPy and the common frameworks.

Workloads, all float32, with the same data, architecture and initial parameters for every peer:
  W1  the seed's circles network 2-4-6-6-4-1 (ReLU, sigmoid + binary CE), 1024 samples, batch 32,
      plus a sweep of batch sizes (SGD + momentum);
  W2  digits-shaped 64-256-256-10 (ReLU, softmax + categorical CE), batch 128: scikit-learn's
      digits cut to 1792 = 14·128 samples (synthetic data of that shape without scikit-learn);
  W3  wide 784-1024-1024-10, synthetic, 2048 samples, batch 256;
each with SGD + momentum 0.9 (learning rate 0.1 for W1, 0.01 for W2 and W3) and Adam (1e-3).

Peers:
  fnn       fnn.fit: the whole run one compiled program, cached across calls;
  jax       the hand-written reference: params a list of (w, b), value_and_grad, the update by
            hand, one jitted epoch = lax.scan over batches shuffled on device, epochs in Python;
  jax-step  the same, but a jitted step called from a Python loop over the batches;
  numpy     forward, backward and updates written out with NumPy matmuls;
  torch     PyTorch eager: nn.Sequential, torch.optim, a Python loop over index batches;
  keras     Keras 3 on JAX: model.fit(x, y, batch_size, epochs);
  flax      Flax linen module, hand-written update, jitted step in a Python loop;
  equinox   Equinox module, hand-written update, filter_jit step in a Python loop.
A peer whose package is not installed is skipped, and the table says so.

Protocol for each (workload, optimizer, batch size): every peer's first training call of one
epoch (compilation included) and a second identical call are timed; each then trains E epochs
per call (E a power of two, picked per peer so a call lasts about --target-seconds), --reps
times with the peers interleaved, and µs/step = median time / (E · steps per epoch). A call's
overhead is its time minus one epoch at the steady rate. GFLOP/s counts 6·batch·Σ n_in·n_out
per step (2mkn per forward matmul, twice that backward), compared with the best fp32 matmul rate
of jitted jnp.dot, np.dot and torch.mm at W3's shapes, measured at the start and at the end of
the run; NumPy and
PyTorch then train with the thread count (one or all cores) that multiplied faster, since on a
busy machine a spinning thread pool can lose many times over to one thread. Peak memory is the
peak resident set (VmHWM, else ru_maxrss) of a fresh subprocess per (peer, workload) that
imports, makes the data and trains two epochs, with no persistent compilation cache (every peer
compiles); "training adds" is that peak less the resident set just before training. Trace and
compile counts come from JAX's own monitoring events (a trace of a jaxpr, a backend compile, a
persistent-cache hit), counted from the first call on. In
this process fnn's persistent compilation cache, if on, writes to an empty temporary folder, so a
first call compiles whatever earlier runs left in the user's cache.

Time to result (section "result"): the seed example end to end — circles, 1000 training and 500
test points, noise 0.05; 2-4-6-6-4-1, ReLU hidden, sigmoid output, binary cross-entropy; Adam
1e-3, batch 32, 50 epochs; then the test accuracy — as a fresh process per run, timed from spawn
to exit (median of 3) beside the child's own time from its first line, and its imports. Peers:
NumPy by hand (forward, backward, Adam); PyTorch eager, a plain training loop, with its default
threads and with one (fnn is compared with the faster); Keras 3 model.fit with KERAS_BACKEND=jax;
scikit-learn's MLPClassifier (with the default peers); fnn cold (FNN_CACHE_DIR an empty folder)
and fnn warm (the folder the first cold run filled). --quick runs NumPy and fnn once each. Then
one fresh process, warm, fits the seed network at 8 learning rates one after another. The
children run with the machine's settings: JAX_DISABLE_MOST_OPTIMIZATIONS, JAX_ENABLE_X64 and the
cache variables of JAX and fnn are removed from their environment.

Sweeps (section "sweeps"): fnn.sweep of K = 1, 8, 64, 256 circles networks (learning rates ×
seeds, Adam, 50 epochs), the best of 3 calls after a warm-up, beside a hand-written reference of
the same runs: jax.vmap over the K models' params and learning rates of one run written as a
lax.scan over batches (last partial batch masked) in a lax.fori_loop over epochs.

Targets, printed with each figure and 'met' or 'not met': W1 ≤ 0.35 of the hand-written scan,
W2 and W3 ≤ 1.05; W3's peak memory ≤ 1.15 × the hand-written loop's; the seed example warm
≤ 2.0 s and cold ≤ 3.5 s, both faster than PyTorch eager and Keras; 8 learning rates in one
fresh process ≤ 3 s; a sweep of 64 models ≤ 7× one, of 256 ≤ 20× one, each faster than the
hand-written vmap.

Only ratios within one run are meaningful: other processes may share the machine (the load
average at the start is recorded with the machine).

    python experiments/bench.py                       # everything installed, about 10 minutes
    python experiments/bench.py --quick --out /tmp/b  # a smoke test of every path (its figures are not
                                                      # measurements): fnn, jax, numpy; 1 rep
    python experiments/bench.py --workloads W1 --peers fnn,jax,torch --reps 3 --no-memory
    python experiments/bench.py --sections result,sweeps --no-memory
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Callable, NamedTuple

os.environ.setdefault("KERAS_BACKEND", "jax")  # read once, when keras is first imported

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import fnn  # noqa: E402
from _common import Summary, output_dir, parser, plt, savefig  # noqa: E402

PEERS = ("fnn", "jax", "jax-step", "numpy", "torch", "keras", "flax", "equinox")
QUICK_PEERS = ("fnn", "jax", "numpy")
SWEEP_PEERS = ("fnn", "jax", "jax-step", "numpy")  # the batch-size sweep and its plot
PACKAGE = {"torch": "torch", "keras": "keras", "flax": "flax", "equinox": "equinox"}  # optional peers
OPTIMIZERS = ("momentum", "adam")
SECTIONS = ("steady", "sweeps", "result")  # µs/step in this process; many models at once; fresh processes
MOMENTUM = 0.9
ADAM = {"learning_rate": 1e-3, "b1": 0.9, "b2": 0.999, "eps": 1e-8}


class Workload(NamedTuple):
    name: str
    sizes: tuple[int, ...]  # (n_in, hidden…, n_out)
    output: str  # "sigmoid" with binary CE, or "softmax" with categorical CE
    data: str  # "circles", "digits" or "synthetic"
    n_samples: int
    batch_size: int
    momentum_lr: float


WORKLOADS = {
    "W1": Workload("W1", (2, 4, 6, 6, 4, 1), "sigmoid", "circles", 1024, 32, 0.1),
    "W2": Workload("W2", (64, 256, 256, 10), "softmax", "digits", 1792, 128, 0.01),
    "W3": Workload("W3", (784, 1024, 1024, 10), "softmax", "synthetic", 2048, 256, 0.01),
}
QUICK_WORKLOADS = {
    "W1": WORKLOADS["W1"],
    "W2": Workload("W2", (64, 256, 256, 10), "softmax", "synthetic", 512, 128, 0.01),  # no scikit-learn import
    "W3": Workload("W3", (784, 256, 256, 10), "softmax", "synthetic", 512, 256, 0.01),
}
SWEEP_BATCHES = (8, 16, 32, 64, 128, 256)
QUICK_SWEEP_BATCHES = (128,)


class Settings(NamedTuple):
    workloads: dict  # name -> Workload
    peers: tuple[str, ...]
    optimizers: tuple[str, ...]
    sweep_batches: tuple[int, ...]
    reps: int
    target_seconds: float  # how long one timed call should last
    max_epochs: int
    matmul_seconds: float
    memory_workloads: tuple[str, ...]
    memory_peers: tuple[str, ...]
    quick: bool
    seed: int
    sections: tuple[str, ...] = ("steady", "sweeps", "result")


class Case(NamedTuple):
    """One measurement: a workload with an optimizer and a batch size, and its data."""

    workload: Workload
    optimizer: str
    batch_size: int
    x: np.ndarray  # (n, n_in) float32
    y: np.ndarray  # (n,) int32 labels
    init: tuple  # ((w (n_in, n_out), b (n_out,)), …) float32, shared by every peer
    seed: int
    threads: dict | None = None  # {"numpy": n, "torch": n}: threads per peer library; None: its default

    @property
    def binary(self) -> bool:
        return self.workload.output == "sigmoid"

    @property
    def learning_rate(self) -> float:
        return self.workload.momentum_lr if self.optimizer == "momentum" else ADAM["learning_rate"]

    @property
    def steps_per_epoch(self) -> int:
        return self.x.shape[0] // self.batch_size

    @property
    def flops_per_step(self) -> int:
        """2mkn per matmul forward, twice that backward (∂w and ∂x): 6·batch·Σ n_in·n_out.

        A nominal count: no peer computes the first layer's ∂x, so the work done is lower by
        2·batch·n_in·n_out of that layer (14% for W3), and a rate can read above the ceiling.
        """
        sizes = self.workload.sizes
        return 6 * self.batch_size * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


class PeerUnavailable(Exception):
    """The peer cannot run here (package missing or unusable); the table says why."""


# --------------------------------------------------------------------------- data
def make_data(workload: Workload, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """x (n, n_in) float32, y (n,) int32 labels, and where they came from."""
    n = workload.n_samples
    if workload.data == "circles":
        x, y = fnn.data.circles(jax.random.key(seed), n, noise=0.1)
        return np.asarray(x, np.float32), np.asarray(y, np.int32), "fnn.data.circles"
    if workload.data == "digits":
        try:
            x, y = fnn.data.digits()
        except ImportError:
            pass
        else:
            if x.shape[0] >= n:
                return x[:n], y[:n], f"scikit-learn digits, first {n} of {x.shape[0]}"
    # Gaussian inputs labelled by a random linear teacher: learnable, and the same for every peer.
    rng = np.random.default_rng(seed)
    n_in, n_out = workload.sizes[0], workload.sizes[-1]
    x = rng.standard_normal((n, n_in), dtype=np.float32)
    scores = x @ rng.standard_normal((n_in, max(n_out, 2)), dtype=np.float32)
    return x, np.argmax(scores, axis=1).astype(np.int32), "synthetic"


def initial_params(sizes: tuple[int, ...], seed: int) -> tuple:
    """He-uniform w before each ReLU, Glorot-uniform before the output, zero b; float32 NumPy."""
    rng = np.random.default_rng(seed + 1)
    params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        limit = math.sqrt(6.0 / (n_in + n_out)) if last else math.sqrt(6.0 / n_in)
        params.append((rng.uniform(-limit, limit, (n_in, n_out)).astype(np.float32), np.zeros(n_out, np.float32)))
    return tuple(params)


def make_case(workload: Workload, optimizer: str, batch_size: int, seed: int, data=None,
              threads: dict | None = None) -> Case:
    x, y, _ = make_data(workload, seed) if data is None else data
    return Case(workload, optimizer, batch_size, x, y, initial_params(workload.sizes, seed), seed, threads)


# --------------------------------------------------------------------------- threads
def blas_threads(threads: int | None):
    """A context limiting NumPy's BLAS to `threads` (threadpoolctl); None leaves it as it is."""
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """A context setting torch's intra-op threads (None: leave them)."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def thread_options() -> tuple:
    """The thread counts worth trying: one and all cores, else (with threadpoolctl missing) the default."""
    cores = os.cpu_count() or 1
    if cores == 1 or importlib.util.find_spec("threadpoolctl") is None:
        return (None,)
    return (1, cores)


def peer_threads(case: Case, library: str) -> int | None:
    return (case.threads or {}).get(library)


# --------------------------------------------------------------------------- fnn
def build_fnn(case: Case) -> Callable[[int], None]:
    w = case.workload
    model = fnn.Sequential([fnn.Dense(n, activation="relu") for n in w.sizes[1:-1]]
                           + [fnn.Dense(w.sizes[-1], activation=w.output)])
    params = tuple(fnn.DenseParams(jnp.asarray(a), jnp.asarray(b)) for a, b in case.init)
    loss = "binary_cross_entropy" if case.binary else "categorical_cross_entropy"
    key = jax.random.key(case.seed)

    def train(epochs: int) -> None:
        # A fresh optimizer each call, equal by value: the second call must find the compiled program.
        if case.optimizer == "momentum":
            opt = fnn.optim.momentum(case.learning_rate, MOMENTUM)
        else:
            opt = fnn.optim.adam(ADAM["learning_rate"], ADAM["b1"], ADAM["b2"], ADAM["eps"])
        result = fnn.fit(model, params, case.x, case.y, loss=loss, optimizer=opt, epochs=epochs,
                         batch_size=case.batch_size, key=key, verbose=0)
        jax.block_until_ready(result.params)

    return train


# --------------------------------------------------------------------------- hand-written JAX
class HandOptimizer(NamedTuple):
    init: Callable  # params -> state
    update: Callable  # (params, grads, state) -> (params, state)


def hand_optimizer(case: Case) -> HandOptimizer:
    """SGD + momentum or Adam over any pytree of arrays, with jax.tree.map (no optax)."""
    lr = case.learning_rate
    if case.optimizer == "momentum":
        def init(params):
            return jax.tree.map(jnp.zeros_like, params)

        def update(params, grads, velocity):
            velocity = jax.tree.map(lambda v, g: MOMENTUM * v - lr * g, velocity, grads)
            return jax.tree.map(jnp.add, params, velocity), velocity

        return HandOptimizer(init, update)
    b1, b2, eps = ADAM["b1"], ADAM["b2"], ADAM["eps"]

    def adam_init(params):
        return jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params)

    def adam_update(params, grads, state):
        t, mu, nu = state
        t = t + 1
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, nu, grads)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        params = jax.tree.map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, mu, nu)
        return params, (t, mu, nu)

    return HandOptimizer(adam_init, adam_update)


def mlp_logits(params, x):
    """ReLU hidden layers; the last layer's pre-activation. params: [(w, b), …]."""
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def hand_loss(apply: Callable, binary: bool) -> Callable:
    """loss(params, x, y) from the logits: binary CE with y (B, 1) floats, else categorical CE with labels."""
    def loss(params, x, y):
        z = apply(params, x)
        if binary:
            return jnp.mean(jnp.logaddexp(0.0, z) - y * z)  # −y log σ(z) − (1 − y) log(1 − σ(z))
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(z, y[:, None], axis=1)[:, 0])

    return loss


def device_data(case: Case):
    x = jnp.asarray(case.x)
    y = jnp.asarray(case.y, jnp.float32)[:, None] if case.binary else jnp.asarray(case.y)
    return x, y


@functools.partial(jax.jit, static_argnums=4)
def shuffled_batches(key, epoch, x, y, batch_size: int):
    """This epoch's permutation of (x, y) as (n_batches, batch, …) arrays, made on device."""
    n_batches = x.shape[0] // batch_size
    perm = jax.random.permutation(jax.random.fold_in(key, epoch), x.shape[0])[:n_batches * batch_size]
    return x[perm].reshape(n_batches, batch_size, -1), y[perm].reshape(n_batches, batch_size, *y.shape[1:])


def build_jax(case: Case) -> Callable[[int], None]:
    """The reference: one jitted epoch, lax.scan over batches shuffled on device; epochs from Python."""
    x, y = device_data(case)
    opt = hand_optimizer(case)
    loss = hand_loss(mlp_logits, case.binary)
    key = jax.random.key(case.seed)

    def step(carry, batch):
        params, state = carry
        value, grads = jax.value_and_grad(loss)(params, *batch)
        return opt.update(params, grads, state), value

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def epoch(params, state, key, index, x, y):
        batches = shuffled_batches(key, index, x, y, case.batch_size)
        (params, state), losses = jax.lax.scan(step, (params, state), batches)
        return params, state, losses

    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in case.init]
    carry = {"params": params, "state": opt.init(params), "epoch": 0}

    def train(epochs: int) -> None:
        params, state = carry["params"], carry["state"]
        for _ in range(epochs):
            params, state, _ = epoch(params, state, key, carry["epoch"], x, y)
            carry["epoch"] += 1
        jax.block_until_ready(params)
        carry.update(params=params, state=state)

    return train


def python_loop_trainer(case: Case, params, apply: Callable, jit=jax.jit,
                        value_and_grad=jax.value_and_grad) -> Callable[[int], None]:
    """A jitted step called once per batch from Python; the epoch's batches shuffled on device."""
    x, y = device_data(case)
    opt = hand_optimizer(case)
    loss = hand_loss(apply, case.binary)
    key = jax.random.key(case.seed)
    indices = [jnp.asarray(j, jnp.int32) for j in range(case.steps_per_epoch)]  # arrays: no retrace per j

    @jit
    def step(params, state, xs, ys, j):
        value, grads = value_and_grad(loss)(params, xs[j], ys[j])
        params, state = opt.update(params, grads, state)
        return params, state, value

    carry = {"params": params, "state": opt.init(params), "epoch": 0}

    def train(epochs: int) -> None:
        params, state = carry["params"], carry["state"]
        for _ in range(epochs):
            xs, ys = shuffled_batches(key, carry["epoch"], x, y, case.batch_size)
            carry["epoch"] += 1
            for j in indices:
                params, state, _ = step(params, state, xs, ys, j)
        jax.block_until_ready(params)
        carry.update(params=params, state=state)

    return train


def build_jax_step(case: Case) -> Callable[[int], None]:
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in case.init]
    return python_loop_trainer(case, params, mlp_logits)


# --------------------------------------------------------------------------- NumPy by hand
def build_numpy(case: Case) -> Callable[[int], None]:
    """Forward, backward and the optimizer written out; updates in place, all float32."""
    params = [(w.copy(), b.copy()) for w, b in case.init]
    x = case.x
    y = case.y.astype(np.float32)[:, None] if case.binary else case.y
    bs, n_batches, lr = case.batch_size, case.steps_per_epoch, case.learning_rate
    rng = np.random.default_rng(case.seed)
    first = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]  # velocity, or Adam's m
    second = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]  # Adam's v
    count = [0]

    def gradients(xb, yb):
        acts = [xb]
        for w, b in params[:-1]:
            acts.append(np.maximum(acts[-1] @ w + b, 0.0))
        z = acts[-1] @ params[-1][0] + params[-1][1]
        if case.binary:
            g = (0.5 * (1.0 + np.tanh(0.5 * z)) - yb) / bs  # σ(z) − y, σ written with tanh: no overflow
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            g = e / e.sum(axis=1, keepdims=True)
            g[np.arange(bs), yb] -= 1.0
            g /= bs
        grads = [None] * len(params)
        for i in reversed(range(len(params))):
            grads[i] = (acts[i].T @ g, g.sum(axis=0))
            if i:
                g = (g @ params[i][0].T) * (acts[i] > 0)
        return grads

    def apply(grads):
        if case.optimizer == "momentum":
            for p, v, g in zip(params, first, grads):
                for pj, vj, gj in zip(p, v, g):
                    vj *= MOMENTUM
                    vj -= lr * gj
                    pj += vj
            return
        b1, b2, eps = ADAM["b1"], ADAM["b2"], ADAM["eps"]
        count[0] += 1
        c1, c2 = 1 - b1 ** count[0], 1 - b2 ** count[0]
        for p, m, v, g in zip(params, first, second, grads):
            for pj, mj, vj, gj in zip(p, m, v, g):
                mj *= b1
                mj += (1 - b1) * gj
                vj *= b2
                vj += (1 - b2) * gj * gj
                pj -= lr * (mj / c1) / (np.sqrt(vj / c2) + eps)

    def train(epochs: int) -> None:
        with blas_threads(peer_threads(case, "numpy")):
            for _ in range(epochs):
                perm = rng.permutation(x.shape[0])
                for i in range(n_batches):
                    idx = perm[i * bs:(i + 1) * bs]
                    apply(gradients(x[idx], y[idx]))

    return train


# --------------------------------------------------------------------------- optional peers
def build_torch(case: Case) -> Callable[[int], None]:
    import torch

    torch.set_num_threads(peer_threads(case, "torch") or os.cpu_count() or 1)
    layers = []
    for i, (w, b) in enumerate(case.init):
        linear = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear] if i == len(case.init) - 1 else [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers)
    x = torch.tensor(case.x)  # a copy: x may be a read-only view of a JAX array
    if case.binary:
        y, loss_fn = torch.tensor(case.y[:, None], dtype=torch.float32), torch.nn.BCEWithLogitsLoss()
    else:
        y, loss_fn = torch.tensor(case.y, dtype=torch.int64), torch.nn.CrossEntropyLoss()
    if case.optimizer == "momentum":
        opt = torch.optim.SGD(model.parameters(), lr=case.learning_rate, momentum=MOMENTUM)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=ADAM["learning_rate"], betas=(ADAM["b1"], ADAM["b2"]),
                               eps=ADAM["eps"])
    generator = torch.Generator().manual_seed(case.seed)
    bs, n_batches = case.batch_size, case.steps_per_epoch

    def train(epochs: int) -> None:
        for _ in range(epochs):
            perm = torch.randperm(x.shape[0], generator=generator)
            for i in range(n_batches):
                idx = perm[i * bs:(i + 1) * bs]
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x[idx]), y[idx]).backward()
                opt.step()

    return train


def build_keras(case: Case) -> Callable[[int], None]:
    import keras

    if keras.backend.backend() != "jax":
        raise PeerUnavailable(f"keras runs on {keras.backend.backend()!r}; set KERAS_BACKEND=jax before it loads")
    sizes = case.workload.sizes
    model = keras.Sequential([keras.Input((sizes[0],))] + [keras.layers.Dense(n, activation="relu") for n in sizes[1:-1]]
                             + [keras.layers.Dense(sizes[-1])])
    model.set_weights([a for wb in case.init for a in wb])
    if case.binary:
        y, loss = case.y.astype(np.float32)[:, None], keras.losses.BinaryCrossentropy(from_logits=True)
    else:
        y, loss = case.y, keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if case.optimizer == "momentum":
        opt = keras.optimizers.SGD(learning_rate=case.learning_rate, momentum=MOMENTUM)
    else:
        opt = keras.optimizers.Adam(learning_rate=ADAM["learning_rate"], beta_1=ADAM["b1"], beta_2=ADAM["b2"],
                                    epsilon=ADAM["eps"])
    model.compile(optimizer=opt, loss=loss)

    def train(epochs: int) -> None:
        model.fit(case.x, y, batch_size=case.batch_size, epochs=epochs, verbose=0, shuffle=True)
        jax.block_until_ready([v.value for v in model.trainable_variables])

    return train


def build_flax(case: Case) -> Callable[[int], None]:
    from flax import linen as nn

    class MLP(nn.Module):
        features: tuple[int, ...]

        @nn.compact
        def __call__(self, x):
            for n in self.features[:-1]:
                x = nn.relu(nn.Dense(n)(x))
            return nn.Dense(self.features[-1])(x)

    module = MLP(case.workload.sizes[1:])
    params = {"params": {f"Dense_{i}": {"kernel": jnp.asarray(w), "bias": jnp.asarray(b)}
                         for i, (w, b) in enumerate(case.init)}}
    return python_loop_trainer(case, params, module.apply)


def build_equinox(case: Case) -> Callable[[int], None]:
    import equinox as eqx

    class MLP(eqx.Module):
        layers: list

        def __call__(self, x):  # one sample (n_in,)
            for layer in self.layers[:-1]:
                x = jax.nn.relu(layer(x))
            return self.layers[-1](x)

    keys = jax.random.split(jax.random.key(case.seed), len(case.init))
    layers = []
    for k, (w, b) in zip(keys, case.init):
        linear = eqx.nn.Linear(w.shape[0], w.shape[1], key=k)
        layers.append(eqx.tree_at(lambda m: (m.weight, m.bias), linear, (jnp.asarray(w.T), jnp.asarray(b))))
    return python_loop_trainer(case, MLP(layers), lambda model, x: jax.vmap(model)(x), jit=eqx.filter_jit,
                               value_and_grad=eqx.filter_value_and_grad)


BUILDERS = {"fnn": build_fnn, "jax": build_jax, "jax-step": build_jax_step, "numpy": build_numpy,
            "torch": build_torch, "keras": build_keras, "flax": build_flax, "equinox": build_equinox}


def unavailable(peer: str) -> str | None:
    """Why the peer cannot run here, or None."""
    package = PACKAGE.get(peer)
    if package is not None and importlib.util.find_spec(package) is None:
        return f"{package} not installed"
    return None


def load_peer(peer: str) -> None:
    """Import the peer's package now (so a memory baseline includes it)."""
    if peer in PACKAGE:
        importlib.import_module(PACKAGE[peer])


# --------------------------------------------------------------------------- timing
def timed(train: Callable[[int], None], epochs: int) -> float:
    start = time.perf_counter()
    train(epochs)
    return time.perf_counter() - start


def pick_epochs(train: Callable[[int], None], one_epoch_s: float, settings: Settings) -> int:
    """The power of two of epochs for which a call lasts about target_seconds (each try is a warm-up)."""
    epochs, seconds = 1, one_epoch_s
    for _ in range(3):
        per_epoch = seconds / epochs
        if epochs > 1 and seconds - one_epoch_s > 0.1 * seconds:  # the marginal cost, without the call's own
            per_epoch = (seconds - one_epoch_s) / (epochs - 1)
        want = 2 ** max(0, round(math.log2(max(settings.target_seconds / per_epoch, 1.0))))
        want = min(want, settings.max_epochs)
        if want <= epochs:
            break
        seconds = timed(train, want)
        if seconds > 3 * per_epoch * want:  # a new epoch count compiled (fnn.fit's bucket): time it again
            seconds = timed(train, want)
        epochs = want
    return epochs


try:  # the names JAX records its compile-path events under
    from jax._src.dispatch import BACKEND_COMPILE_EVENT, JAXPR_TRACE_EVENT
except ImportError:
    JAXPR_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
    BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"

# Per thread: how often it has traced a function to a jaxpr, asked the backend for an executable
# (a compile, or a load from the persistent cache), and found one in that cache; counted by
# listeners that count_jax_events() installs once. JAX records each event in the thread that
# traces or compiles, so a section running beside another counts only its own.
JAX_EVENTS: dict[int, dict[str, int]] = {}
_DURATION_EVENTS = {JAXPR_TRACE_EVENT: "traces", BACKEND_COMPILE_EVENT: "compiles"}
_listening = []


def _counts() -> dict[str, int]:
    return JAX_EVENTS.setdefault(threading.get_ident(), {"traces": 0, "compiles": 0, "cache_hits": 0})


def _on_duration_event(event: str, seconds: float, **kwargs) -> None:
    name = _DURATION_EVENTS.get(event)
    if name:
        _counts()[name] += 1


def _on_event(event: str, **kwargs) -> None:
    if event == CACHE_HIT_EVENT:
        _counts()["cache_hits"] += 1


def count_jax_events() -> None:
    """Install the JAX_EVENTS listeners (once per process)."""
    if not _listening:
        jax.monitoring.register_event_duration_secs_listener(_on_duration_event)
        jax.monitoring.register_event_listener(_on_event)
        _listening.append(True)


def jax_events() -> dict:
    """A copy of this thread's counts so far, to subtract from a later one."""
    return dict(_counts())


def events_since(before: dict) -> dict:
    return {k: v - before[k] for k, v in _counts().items()}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure_case(case: Case, peers: tuple[str, ...], settings: Settings) -> list[dict]:
    """Rows for each peer: first and second call, then interleaved timed repetitions."""
    w = case.workload
    label = f"{w.name} {case.optimizer} batch {case.batch_size}"
    rows, trainers = {}, {}
    # A full collection costs 0.2-0.4 s with these libraries loaded: collect once per case, then
    # freeze what is there, so the collections that fall inside timed calls stay small.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    for peer in peers:
        row = rows[peer] = {"workload": w.name, "optimizer": case.optimizer, "batch_size": case.batch_size,
                            "peer": peer, "steps_per_epoch": case.steps_per_epoch,
                            "flops_per_step": case.flops_per_step, "status": "ok"}
        reason = unavailable(peer)
        if reason:
            row["status"] = f"skipped: {reason}"
            continue
        try:
            events = jax_events()
            train = BUILDERS[peer](case)
            row["first_call_s"] = timed(train, 1)
            row["first_call_events"], events = events_since(events), jax_events()
            row["second_call_s"] = timed(train, 1)
            row["second_call_events"] = events_since(events)
            row["second_call_retraced"] = row["second_call_events"]["traces"] > 0
            row["second_call_compiled"] = row["second_call_events"]["compiles"] > 0
            events = jax_events()
            row["epochs"] = pick_epochs(train, row["second_call_s"], settings)
            row["warmup_events"] = events_since(events)  # new epoch counts: fnn must reuse its program
        except PeerUnavailable as e:
            row["status"] = f"skipped: {e}"
            continue
        except Exception as e:  # a broken peer is reported, not fatal
            row["status"] = f"failed: {type(e).__name__}: {e}"
            traceback.print_exc()
            continue
        row["times_s"] = []
        if peer == "fnn" and row["epochs"] >= 16:
            row["short_epochs"], row["short_times_s"] = row["epochs"] // 2 + 1, []  # same compiled bucket
        trainers[peer] = train
        log(f"  {label}: {peer} first call {row['first_call_s']:.3f} s, second {row['second_call_s']:.4f} s, "
            f"{row['epochs']} epochs per call")
    for rep in range(settings.reps):
        order = list(trainers)
        order = order[rep % len(order):] + order[:rep % len(order)] if order else order
        for peer in order:
            row = rows[peer]
            try:
                events = jax_events()
                row["times_s"].append(timed(trainers[peer], row["epochs"]))
                if "short_epochs" in row:
                    row["short_times_s"].append(timed(trainers[peer], row["short_epochs"]))
                timed_events = events_since(events)
                row["timed_traces"] = row.get("timed_traces", 0) + timed_events["traces"]
                row["timed_compiles"] = row.get("timed_compiles", 0) + timed_events["compiles"]
            except Exception as e:
                row["status"] = f"failed: {type(e).__name__}: {e}"
                traceback.print_exc()
                del trainers[peer]
    trainers.clear()
    gc.unfreeze()
    return [summarize(row) for row in rows.values()]


def summarize(row: dict) -> dict:
    if row["status"] != "ok":
        return row
    steps = row["epochs"] * row["steps_per_epoch"]
    per_step = statistics.median(row["times_s"]) / steps
    row["us_per_step"] = per_step * 1e6
    row["us_per_step_min"] = min(row["times_s"]) / steps * 1e6
    row["us_per_step_max"] = max(row["times_s"]) / steps * 1e6
    row["samples_per_s"] = row["batch_size"] / per_step
    row["gflops"] = row["flops_per_step"] / per_step / 1e9
    epoch_s = per_step * row["steps_per_epoch"]
    row["first_call_overhead_s"] = row["first_call_s"] - epoch_s  # compilation and the call's own cost
    row["second_call_overhead_s"] = row["second_call_s"] - epoch_s
    if row.get("short_times_s"):
        # Two epoch counts in one compiled bucket: the slope is the cost of a step, the intercept a call's.
        t_long, t_short = statistics.median(row["times_s"]), statistics.median(row["short_times_s"])
        marginal = (t_long - t_short) / ((row["epochs"] - row["short_epochs"]) * row["steps_per_epoch"])
        row["marginal_us_per_step"] = marginal * 1e6
        row["call_overhead_s"] = t_long - marginal * steps
    return row


# --------------------------------------------------------------------------- matmul ceiling
def matmul_shapes(workload: Workload, backward: bool = True) -> list[tuple[int, int, int]]:
    """(m, k, n) of each layer's forward x·w, and backward xᵀ·g and g·wᵀ, at the workload's batch."""
    bs, shapes = workload.batch_size, []
    for n_in, n_out in zip(workload.sizes[:-1], workload.sizes[1:]):
        for shape in ((bs, n_in, n_out), (n_in, bs, n_out), (bs, n_out, n_in))[:3 if backward else 1]:
            if shape not in shapes:
                shapes.append(shape)
    return shapes


def best_seconds(run: Callable[[int], None], seconds: float) -> float:
    """Fastest time per product: batches of k products, k grown until a batch takes seconds/5."""
    k = 1
    while True:
        start = time.perf_counter()
        run(k)
        t = time.perf_counter() - start
        if t >= seconds / 5 or k >= 1 << 16:
            break
        k *= 2
    best = t / k
    for _ in range(4):
        start = time.perf_counter()
        run(k)
        best = min(best, (time.perf_counter() - start) / k)
    return best


def measure_matmul(workload: Workload, seconds: float, seed: int, backward: bool = True,
                   torch_too: bool = False) -> dict:
    """fp32 GFLOP/s of jitted jnp.dot, np.dot (and torch.mm) at the workload's shapes; the best is the ceiling.

    NumPy and PyTorch run with one thread and with all cores: on a busy machine a spinning
    thread pool can lose many times over to a single thread, and each peer then trains with
    the better count (on an idle machine, all cores).
    """
    rng = np.random.default_rng(seed)
    dot = jax.jit(jnp.dot)
    runners = {"numpy": blas_threads}
    if torch_too:
        import torch

        default_torch_threads = torch.get_num_threads()
        runners["torch"] = torch_threads
    options = thread_options()
    totals = {(lib, t): 0.0 for lib in runners for t in options}
    rows = []
    for m, k, n in matmul_shapes(workload, backward):
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.empty((m, n), np.float32)
        aj, bj = jnp.asarray(a), jnp.asarray(b)
        dot(aj, bj).block_until_ready()

        def run_jax(times):
            out = None
            for _ in range(times):
                out = dot(aj, bj)
            out.block_until_ready()

        def run_numpy(times):
            for _ in range(times):
                np.dot(a, b, out=c)

        run = {"numpy": run_numpy}
        if torch_too:
            at, bt, ct = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)

            def run_torch(times):
                for _ in range(times):
                    torch.mm(at, bt, out=ct)

            run["torch"] = run_torch
        flops = 2 * m * k * n
        row = {"m": m, "k": k, "n": n, "jax": flops / best_seconds(run_jax, seconds) / 1e9}
        for lib, limit in runners.items():
            for threads in options:
                with limit(threads):
                    s = best_seconds(run[lib], seconds)
                totals[lib, threads] += s
                row[f"{lib} {threads or 'default'} thr"] = flops / s / 1e9
        rows.append(row)
    if torch_too:
        torch.set_num_threads(default_torch_threads)
    columns = [key for key in rows[0] if key not in ("m", "k", "n")]
    best_row, best_column = max(((r, col) for r in rows for col in columns), key=lambda rc: rc[0][rc[1]])
    threads = {lib: min(options, key=lambda t: totals[lib, t]) for lib in runners}
    return {"workload": workload.name, "shapes": rows, "columns": columns, "best_gflops": best_row[best_column],
            "best_backend": best_column, "best_shape": [best_row["m"], best_row["k"], best_row["n"]],
            "threads": threads}


# --------------------------------------------------------------------------- peak memory
def proc_status_mb(field: str) -> float | None:
    """A memory line of Linux's /proc/self/status (VmRSS, VmHWM) in MB, or None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set in MB.

    Linux keeps ru_maxrss across execve, so a child started from a big parent would report the
    parent's peak; VmHWM belongs to the process's own address space, so it is read first.
    """
    hwm = proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def rss_mb() -> float:
    """The current resident set in MB, else the peak so far."""
    current = proc_status_mb("VmRSS")
    return peak_rss_mb() if current is None else current


def memory_child(peer: str, workload: Workload, seed: int) -> dict:
    """In a fresh process: import, make the data, then train two epochs (SGD + momentum)."""
    load_peer(peer)
    case = make_case(workload, "momentum", workload.batch_size, seed)
    baseline = rss_mb()
    train = BUILDERS[peer](case)
    train(1)
    train(1)
    return {"peer": peer, "workload": workload.name, "baseline_rss_mb": baseline, "peak_rss_mb": peak_rss_mb()}


def memory_in_subprocess(peer: str, name: str, settings: Settings) -> dict:
    row = {"peer": peer, "workload": name, "status": "ok"}
    reason = unavailable(peer)
    if reason:
        return dict(row, status=f"skipped: {reason}")
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", f"{peer}:{name}",
           "--seed", str(settings.seed)] + (["--quick"] if settings.quick else [])
    try:
        # No persistent cache in the child: every peer compiles, whatever earlier runs left behind.
        env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV_DROP}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                              env=dict(env, KERAS_BACKEND="jax", FNN_CACHE="off"))
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else
                               f"exit code {proc.returncode}")
        row.update(json.loads(lines[-1]))
        row["training_mb"] = row["peak_rss_mb"] - row["baseline_rss_mb"]
        log(f"  memory {name} {peer}: peak {row['peak_rss_mb']:.0f} MB")
    except Exception as e:
        row["status"] = f"failed: {type(e).__name__}: {e}"
    return row


def measure_memory(settings: Settings) -> list[dict]:
    """Peak RSS per (peer, workload), each in its own process; two at a time (RSS is per process)."""
    jobs = [(peer, name) for name in settings.memory_workloads for peer in settings.memory_peers]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda job: memory_in_subprocess(*job, settings), jobs))


# --------------------------------------------------------------------------- time to result: fresh processes
# The seed example: the README's circles network trained once, from a fresh process to a printed accuracy.
SEED_EXAMPLE = {"sizes": [2, 4, 6, 6, 4, 1], "n_train": 1000, "n_test": 500, "noise": 0.05, "batch_size": 32,
                "epochs": 50, "learning_rates": [1e-3], "seed": 0}
EXPLORE_RATES = [float(f"{r:.3g}") for r in np.geomspace(1e-4, 1e-1, 8)]  # the 8-learning-rate exploration
RESULT_PEERS = ("numpy", "torch", "torch-1thread", "keras", "sklearn", "fnn-cold", "fnn-warm")
# PyTorch twice: with its default thread pool, which a busy machine can slow many times over, and
# with one thread, all a network this small can use.
RESULT_CONFIG = {"torch-1thread": {"threads": 1}}
RESULT_REPS = 3
# Variables a caller (the test suite, say) may have set that would change what a child measures.
# PYTHONDONTWRITEBYTECODE too: without it fnn's modules are compiled from source on every import
# (0.1-0.2 s here), while jax's installed .pyc files are read; a user's fnn has its .pyc files.
CHILD_ENV_DROP = ("JAX_DISABLE_MOST_OPTIMIZATIONS", "JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_X64",
                  "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "FNN_CACHE", "FNN_CACHE_DIR", "PYTHONDONTWRITEBYTECODE")

CHILD_PRELUDE = '''\
import time
START = time.perf_counter()
import json
import sys

CONFIG = json.loads(sys.argv[1])


def done(**figures):
    """The child's one line of output: its figures and its own time from its first line to here."""
    print(json.dumps(dict(figures, in_process_s=time.perf_counter() - START)), flush=True)


def circles_split(c):
    """Two concentric circles (radii 1 and 0.5, Gaussian noise), shuffled, cut into train and test."""
    import numpy as np
    rng = np.random.default_rng(c["seed"])
    n = c["n_train"] + c["n_test"]
    n_out, n_in = n // 2, n - n // 2
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1), 0.5 * np.stack([np.cos(t_in), np.sin(t_in)], 1)])
    x = (x + c["noise"] * rng.standard_normal((n, 2))).astype(np.float32)
    y = np.concatenate([np.zeros(n_out, np.int32), np.ones(n_in, np.int32)])
    perm = rng.permutation(n)
    x, y = x[perm], y[perm]
    return x[:c["n_train"]], y[:c["n_train"]], x[c["n_train"]:], y[c["n_train"]:]

'''

CHILD_SCRIPTS = {
    "fnn": '''\
import jax
import numpy as np
import fnn

IMPORTED = time.perf_counter()
EVENTS = {"compiles": 0, "cache_hits": 0}  # executables asked of the backend; of those, found in the cache


def count(event, *args, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        EVENTS["compiles"] += 1
    elif event == "/jax/compilation_cache/cache_hits":
        EVENTS["cache_hits"] += 1


jax.monitoring.register_event_duration_secs_listener(count)
jax.monitoring.register_event_listener(count)
c = CONFIG
x, y = fnn.data.circles(jax.random.key(c["seed"]), c["n_train"] + c["n_test"], noise=c["noise"])
x_train, y_train, x_test, y_test = x[:c["n_train"]], y[:c["n_train"]], x[c["n_train"]:], y[c["n_train"]:]
model = fnn.Sequential([fnn.Dense(n, activation="relu") for n in c["sizes"][1:-1]]
                       + [fnn.Dense(c["sizes"][-1], activation="sigmoid")])
params = model.init(jax.random.key(c["seed"]), c["sizes"][0])
fits = []
for rate in c["learning_rates"]:
    start = time.perf_counter()
    result = fnn.fit(model, params, x_train, y_train, loss="binary_cross_entropy", optimizer=fnn.optim.adam(rate),
                     epochs=c["epochs"], batch_size=c["batch_size"], key=jax.random.key(c["seed"] + 1))
    labels = np.asarray(fnn.predict_classes(model, result.params, x_test))
    fits.append({"learning_rate": rate, "seconds": time.perf_counter() - start,
                 "accuracy": float(np.mean(labels == np.asarray(y_test)))})
done(accuracy=fits[0]["accuracy"], import_s=IMPORTED - START, fits=fits, jax_events=EVENTS,
     cache=str(fnn.cache.directory()))
''',
    "numpy": '''\
import numpy as np

IMPORTED = time.perf_counter()
c = CONFIG
x_train, y_train, x_test, y_test = circles_split(c)
rng = np.random.default_rng(c["seed"] + 1)
sizes, bs, lr = c["sizes"], c["batch_size"], c["learning_rates"][0]
b1, b2, eps = 0.9, 0.999, 1e-8
params = []
for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
    limit = np.sqrt(6.0 / n_in) if i < len(sizes) - 2 else np.sqrt(6.0 / (n_in + n_out))  # He, then Glorot
    params.append((rng.uniform(-limit, limit, (n_in, n_out)).astype(np.float32), np.zeros(n_out, np.float32)))
m = [tuple(np.zeros_like(p) for p in layer) for layer in params]
v = [tuple(np.zeros_like(p) for p in layer) for layer in params]
y_col = y_train.astype(np.float32)[:, None]
n, t = x_train.shape[0], 0


def forward(x):
    acts = [x]
    for w, b in params[:-1]:
        acts.append(np.maximum(acts[-1] @ w + b, 0.0))
    return acts, acts[-1] @ params[-1][0] + params[-1][1]


for epoch in range(c["epochs"]):
    perm = rng.permutation(n)
    for first in range(0, n, bs):  # the last batch is partial: 1000 = 31 * 32 + 8
        idx = perm[first:first + bs]
        acts, z = forward(x_train[idx])
        g = (0.5 * (1.0 + np.tanh(0.5 * z)) - y_col[idx]) / len(idx)  # dL/dz of sigmoid + binary CE
        t += 1
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        for i in reversed(range(len(params))):
            w = params[i][0]
            grads = (acts[i].T @ g, g.sum(axis=0))
            if i:
                g = (g @ w.T) * (acts[i] > 0)
            for p, mj, vj, gj in zip(params[i], m[i], v[i], grads):
                mj *= b1
                mj += (1 - b1) * gj
                vj *= b2
                vj += (1 - b2) * gj * gj
                p -= lr * (mj / c1) / (np.sqrt(vj / c2) + eps)
_, z = forward(x_test)
done(accuracy=float(np.mean((z[:, 0] > 0) == y_test)), import_s=IMPORTED - START)
''',
    "torch": '''\
import numpy as np
import torch

IMPORTED = time.perf_counter()
c = CONFIG
x_train, y_train, x_test, y_test = circles_split(c)
torch.manual_seed(c["seed"])
if c.get("threads"):
    torch.set_num_threads(c["threads"])
sizes, bs = c["sizes"], c["batch_size"]
layers = []
for n_in, n_out in zip(sizes[:-1], sizes[1:]):
    layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
model = torch.nn.Sequential(*layers[:-1], torch.nn.Sigmoid())
opt = torch.optim.Adam(model.parameters(), lr=c["learning_rates"][0])
loss_fn = torch.nn.BCELoss()
x, y = torch.from_numpy(x_train), torch.from_numpy(y_train.astype(np.float32))[:, None]
for epoch in range(c["epochs"]):
    perm = torch.randperm(x.shape[0])
    for first in range(0, x.shape[0], bs):
        idx = perm[first:first + bs]
        opt.zero_grad()
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()
with torch.no_grad():
    probs = model(torch.from_numpy(x_test))[:, 0].numpy()
done(accuracy=float(np.mean((probs > 0.5) == y_test)), import_s=IMPORTED - START, threads=torch.get_num_threads())
''',
    "keras": '''\
import numpy as np
import keras

IMPORTED = time.perf_counter()
c = CONFIG
x_train, y_train, x_test, y_test = circles_split(c)
keras.utils.set_random_seed(c["seed"])
sizes = c["sizes"]
model = keras.Sequential([keras.Input((sizes[0],))] + [keras.layers.Dense(n, activation="relu") for n in sizes[1:-1]]
                         + [keras.layers.Dense(sizes[-1], activation="sigmoid")])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=c["learning_rates"][0]), loss="binary_crossentropy")
model.fit(x_train, y_train, batch_size=c["batch_size"], epochs=c["epochs"], verbose=0)
probs = model.predict(x_test, verbose=0)[:, 0]
done(accuracy=float(np.mean((probs > 0.5) == y_test)), import_s=IMPORTED - START, backend=keras.backend.backend())
''',
    "sklearn": '''\
import warnings

import numpy as np
from sklearn.neural_network import MLPClassifier

IMPORTED = time.perf_counter()
c = CONFIG
x_train, y_train, x_test, y_test = circles_split(c)
clf = MLPClassifier(hidden_layer_sizes=tuple(c["sizes"][1:-1]), solver="adam",
                    learning_rate_init=c["learning_rates"][0], batch_size=c["batch_size"], max_iter=c["epochs"],
                    random_state=c["seed"])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ConvergenceWarning: 50 epochs is the budget, not convergence
    clf.fit(x_train, y_train)
done(accuracy=float(clf.score(x_test, y_test)), import_s=IMPORTED - START, epochs_run=int(clf.n_iter_))
''',
}
RESULT_PACKAGE = {"torch": "torch", "torch-1thread": "torch", "keras": "keras", "sklearn": "sklearn"}
# The floor any JAX program pays here, measured beside the peers in the same run: a fresh process
# that imports jax, one that also runs one small op on the seed example's data, and `import fnn`.
FLOOR_SCRIPTS = {
    "import jax": "import jax\n\ndone(import_s=time.perf_counter() - START)\n",
    "import jax + one op": '''\
import jax
import jax.numpy as jnp

IMPORTED = time.perf_counter()
x_train, y_train, x_test, y_test = circles_split(CONFIG)
total = float(jnp.asarray(x_train).sum())  # one small program, compiled (nothing cached)
done(import_s=IMPORTED - START, total=total)
''',
    "import fnn": "import fnn\n\ndone(import_s=time.perf_counter() - START)\n",
}


def result_peers(settings: Settings) -> tuple[str, ...]:
    """The selected peers that have a seed-example script; scikit-learn too with the default peers."""
    chosen = set(settings.peers) | ({"sklearn"} if set(settings.peers) == set(PEERS) else set())
    return tuple(p for p in RESULT_PEERS if p.split("-")[0] in chosen)


def child_env(cache_dir: str | None = None) -> dict:
    """The environment of a fresh-process run: the caller's, less what would change the measurement."""
    env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV_DROP}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["KERAS_BACKEND"] = "jax"
    if cache_dir is not None:
        env["FNN_CACHE_DIR"] = cache_dir
    return env


def run_child(script: str, config: dict, env: dict, timeout: float = 600) -> dict:
    """Run a script in a fresh Python; wall time from spawn to exit, and the figures it printed."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, script, json.dumps(config)], capture_output=True, text=True, env=env,
                          timeout=timeout)
    wall = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = proc.stderr.strip().splitlines()
        raise RuntimeError(err[-1] if err else f"exit code {proc.returncode}")
    return dict(json.loads(lines[-1]), wall_s=wall)


def import_breakdown(env: dict) -> dict:
    """`python -X importtime -c "import fnn"` in a fresh process: seconds (cumulative) in jax,
    ml_dtypes (its extension module alone too) and fnn, and the ml_dtypes version."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import fnn"], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    rows = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if match:
            rows[match.group(3)] = (int(match.group(1)) / 1e6, int(match.group(2)) / 1e6)
    version = subprocess.run([sys.executable, "-c", "import ml_dtypes; print(ml_dtypes.__version__)"],
                             capture_output=True, text=True, env=env, timeout=120).stdout.strip()
    return {"ml_dtypes_version": version, "jax_s": rows.get("jax", (0, 0))[1], "fnn_s": rows.get("fnn", (0, 0))[1],
            "ml_dtypes_s": rows.get("ml_dtypes", (0, 0))[1],
            "ml_dtypes_ext_s": rows.get("ml_dtypes._ml_dtypes_ext", (0, 0))[0]}


def measure_time_to_result(settings: Settings) -> dict:
    """The seed example per peer, RESULT_REPS fresh processes each (1 with --quick), then the
    8-learning-rate exploration in one fresh process with the warm cache."""
    reps = 1 if settings.quick else RESULT_REPS
    config = dict(SEED_EXAMPLE)
    peers = result_peers(settings)
    rows = {p: {"peer": p, "status": "ok", "runs": []} for p in peers}
    work = tempfile.mkdtemp(prefix="fnn-bench-result-")
    try:
        scripts = {}
        for name, body in CHILD_SCRIPTS.items():
            scripts[name] = os.path.join(work, f"seed_{name}.py")
            with open(scripts[name], "w") as f:
                f.write(CHILD_PRELUDE + body)
        for p in peers:
            package = RESULT_PACKAGE.get(p)
            if package and importlib.util.find_spec(package) is None:
                rows[p]["status"] = f"skipped: {package} not installed"
        floor = {name: {"peer": name, "status": "ok", "runs": []} for name in FLOOR_SCRIPTS}
        for name, body in FLOOR_SCRIPTS.items():
            scripts[name] = os.path.join(work, f"floor_{len(scripts)}.py")
            with open(scripts[name], "w") as f:
                f.write(CHILD_PRELUDE + body)
        run_child(scripts["import fnn"], config, child_env(os.path.join(work, "cache-floor")))  # writes fnn's .pyc
        breakdown = []
        warm_cache = os.path.join(work, "cache-1")  # filled by the first cold run
        for rep in range(reps):
            for name, row in floor.items():
                try:
                    row["runs"].append(run_child(scripts[name], config, child_env(os.path.join(work, "cache-floor"))))
                except Exception as e:
                    row["status"] = f"failed: {type(e).__name__}: {e}"
            try:
                breakdown.append(import_breakdown(child_env(os.path.join(work, "cache-floor"))))
            except Exception as e:
                log(f"  import breakdown failed: {type(e).__name__}: {e}")
            log("  floor: " + ", ".join(f"{n} {r['runs'][-1]['wall_s']:.2f} s" for n, r in floor.items() if r["runs"]))
            for p in peers:
                row = rows[p]
                if row["status"] != "ok":
                    continue
                cache = os.path.join(work, f"cache-{rep + 1}") if p == "fnn-cold" else warm_cache
                if p.startswith("fnn"):
                    os.makedirs(cache, exist_ok=True)
                    row["cache_files_before"] = len(os.listdir(cache))
                try:
                    run = run_child(scripts[p.split("-")[0]], dict(config, **RESULT_CONFIG.get(p, {})),
                                    child_env(cache if p.startswith("fnn") else None))
                except Exception as e:
                    row["status"] = f"failed: {type(e).__name__}: {e}"
                    if p == "fnn-cold" and rep == 0 and "fnn-warm" in rows:
                        rows["fnn-warm"]["status"] = "skipped: the cold run that fills its cache failed"
                    continue
                row["runs"].append(run)
                log(f"  time to result {p}: {run['wall_s']:.2f} s (in process {run['in_process_s']:.2f} s), "
                    f"test accuracy {run['accuracy']:.3f}")
        explore = {"learning_rates": EXPLORE_RATES, "status": "ok", "runs": []}
        if "fnn-warm" not in rows or rows["fnn-warm"]["status"] != "ok":
            explore["status"] = "skipped: needs fnn and its warm cache"
        else:
            for _ in range(reps):
                try:
                    run = run_child(scripts["fnn"], dict(config, learning_rates=EXPLORE_RATES), child_env(warm_cache))
                except Exception as e:
                    explore["status"] = f"failed: {type(e).__name__}: {e}"
                    break
                explore["runs"].append(run)
                log(f"  {len(EXPLORE_RATES)} learning rates, one process: {run['wall_s']:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for row in [*rows.values(), *floor.values()]:
        summarize_runs(row)
    summarize_runs(explore)
    if explore["runs"]:
        fits = [[f["seconds"] for f in run["fits"]] for run in explore["runs"]]
        explore["first_fit_s"] = statistics.median(f[0] for f in fits)
        explore["later_fit_s"] = statistics.median(s for f in fits for s in f[1:])
        explore["fits_s"] = statistics.median(sum(f) for f in fits)
        explore["accuracies"] = [f["accuracy"] for f in explore["runs"][0]["fits"]]
    imports = {k: statistics.median(b[k] for b in breakdown) for k in breakdown[0] if k != "ml_dtypes_version"} \
        if breakdown else {}
    imports["ml_dtypes_version"] = breakdown[0]["ml_dtypes_version"] if breakdown else None
    return {"example": config, "reps": reps, "rows": list(rows.values()), "learning_rates": explore,
            "floor": list(floor.values()), "imports": imports}


def summarize_runs(row: dict) -> None:
    """Medians over a row's fresh-process runs."""
    runs = row["runs"]
    if row["status"] != "ok" or not runs:
        return
    walls = [r["wall_s"] for r in runs]
    row.update(wall_s=statistics.median(walls), wall_min_s=min(walls), wall_max_s=max(walls),
               in_process_s=statistics.median(r["in_process_s"] for r in runs),
               import_s=statistics.median(r["import_s"] for r in runs if "import_s" in r),
               accuracy=statistics.median(r["accuracy"] for r in runs) if all("accuracy" in r for r in runs) else None)


# --------------------------------------------------------------------------- sweeps: many models at once
SWEEP_MODELS = (1, 8, 64, 256)
QUICK_SWEEP_MODELS = (8,)
SWEEP_EPOCHS = 50
QUICK_SWEEP_EPOCHS = 2


def sweep_grid(models: int) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """(learning rates, seeds) of a sweep of `models` runs: the 8 explored rates × models / 8 seeds;
    a single model trains at the seed example's rate."""
    rates = tuple(SEED_EXAMPLE["learning_rates"]) if models == 1 else tuple(EXPLORE_RATES[:min(models, 8)])
    return rates, tuple(range(models // len(rates)))


def build_fnn_sweep(x: np.ndarray, y: np.ndarray, models: int, epochs: int) -> Callable[[], None]:
    sizes = SEED_EXAMPLE["sizes"]
    model = fnn.Sequential([fnn.Dense(n, activation="relu") for n in sizes[1:-1]]
                           + [fnn.Dense(sizes[-1], activation="sigmoid")])
    rates, seeds = sweep_grid(models)

    def train() -> None:
        runs = fnn.sweep(model, x, y, optimizer=fnn.optim.adam, learning_rates=rates, seeds=seeds,
                         loss="binary_cross_entropy", epochs=epochs, batch_size=SEED_EXAMPLE["batch_size"])
        jax.block_until_ready(runs.params)

    return train


def build_vmap_sweep(x: np.ndarray, y: np.ndarray, models: int, epochs: int) -> Callable[[], None]:
    """The hand-written reference: one run as a lax.scan over batches in a lax.fori_loop over epochs,
    jax.vmap'ed over the models' params, learning rates and shuffle keys; Adam by hand."""
    sizes, bs = SEED_EXAMPLE["sizes"], SEED_EXAMPLE["batch_size"]
    rates, seeds = sweep_grid(models)
    b1, b2, eps = ADAM["b1"], ADAM["b2"], ADAM["eps"]
    n = x.shape[0]
    n_batches = -(-n // bs)
    xd, yd = jnp.asarray(x), jnp.asarray(y, jnp.float32)[:, None]
    mask = (jnp.arange(n_batches * bs) < n).astype(jnp.float32).reshape(n_batches, bs, 1)

    def loss(params, xb, yb, mb):  # binary CE from the logits, over the batch's real rows
        z = mlp_logits(params, xb)
        return jnp.sum(mb * (jnp.logaddexp(0.0, z) - yb * z)) / jnp.sum(mb)

    def step(carry, batch):
        params, (t, mu, nu), lr = carry
        value, grads = jax.value_and_grad(loss)(params, *batch)
        t = t + 1
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, nu, grads)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        params = jax.tree.map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, mu, nu)
        return (params, (t, mu, nu), lr), value

    def one_run(params, lr, key):
        def epoch(e, carry):
            params, state, losses = carry
            perm = jax.random.permutation(jax.random.fold_in(key, e), n)
            index = jnp.concatenate([perm, perm[:n_batches * bs - n]]).reshape(n_batches, bs)  # pad, then mask
            (params, state, _), values = jax.lax.scan(step, (params, state, lr), (xd[index], yd[index], mask))
            return params, state, losses.at[e].set(jnp.mean(values))

        zeros = jax.tree.map(jnp.zeros_like, params)
        state = (jnp.zeros((), jnp.int32), zeros, zeros)
        params, _, losses = jax.lax.fori_loop(0, epochs, epoch, (params, state, jnp.zeros(epochs)))
        return params, losses

    runs = jax.jit(jax.vmap(one_run))
    starts = [initial_params(tuple(sizes), s) for s in seeds] * len(rates)
    lrs = np.repeat(np.asarray(rates, np.float32), len(seeds))
    keys = jnp.stack([jax.random.key(s) for s in seeds] * len(rates))

    def train() -> None:
        params = jax.tree.map(lambda *leaves: jnp.asarray(np.stack(leaves)), *starts)
        params, losses = runs([tuple(layer) for layer in params], jnp.asarray(lrs), keys)
        jax.block_until_ready(params)
        np.asarray(losses)  # the history on the host, as the sweep's is

    return train


def measure_sweeps(settings: Settings) -> dict:
    """fnn.sweep and the hand-written vmap at each K: a warm-up call, then the best of 3 (1 with --quick)."""
    sizes_k = QUICK_SWEEP_MODELS if settings.quick else SWEEP_MODELS
    epochs = QUICK_SWEEP_EPOCHS if settings.quick else SWEEP_EPOCHS
    reps = 1 if settings.quick else 3
    x, y = fnn.data.circles(jax.random.key(settings.seed), SEED_EXAMPLE["n_train"], noise=SEED_EXAMPLE["noise"])
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int32)
    rows = []
    for k in sizes_k:
        rates, seeds = sweep_grid(k)
        row = {"models": k, "rates": len(rates), "seeds": len(seeds), "epochs": epochs, "status": "ok"}
        trainers = {}
        for peer, build in (("fnn", build_fnn_sweep), ("vmap", build_vmap_sweep)):
            try:
                train = build(x, y, k, epochs)
                events = jax_events()
                row[f"{peer}_first_s"] = timed_call(train)
                row[f"{peer}_first_events"] = events_since(events)
                trainers[peer], row[f"{peer}_times_s"] = train, []
            except Exception as e:
                row["status"] = f"failed: {peer}: {type(e).__name__}: {e}"
                traceback.print_exc()
        for _ in range(reps):
            for peer, train in trainers.items():
                row[f"{peer}_times_s"].append(timed_call(train))
        for peer in trainers:
            row[f"{peer}_best_s"] = min(row[f"{peer}_times_s"])
            row[f"{peer}_median_s"] = statistics.median(row[f"{peer}_times_s"])
        log(f"  sweep of {k}: fnn {fmt(row.get('fnn_best_s'), '.3f')} s, vmap {fmt(row.get('vmap_best_s'), '.3f')} s")
        rows.append(row)
    sweep_ratios(rows)
    return {"status": "ok", "epochs": epochs, "reps": reps, "n_train": SEED_EXAMPLE["n_train"],
            "batch_size": SEED_EXAMPLE["batch_size"], "rows": rows}


def sweep_ratios(rows: list[dict]) -> None:
    """Each K's best time over K = 1's (fnn's and the vmap's own), the vmap's over fnn's K = 1, and
    fnn's over the vmap's."""
    one = next((r for r in rows if r["models"] == 1), {})
    for row in rows:
        for peer in ("fnn", "vmap"):
            if f"{peer}_best_s" in row and one.get(f"{peer}_best_s"):
                row[f"{peer}_vs_one"] = row[f"{peer}_best_s"] / one[f"{peer}_best_s"]
        if "vmap_best_s" in row and one.get("fnn_best_s"):
            row["vmap_vs_fnn_one"] = row["vmap_best_s"] / one["fnn_best_s"]
        if "vmap_best_s" in row and "fnn_best_s" in row:
            row["fnn_over_vmap"] = row["fnn_best_s"] / row["vmap_best_s"]


def timed_call(train: Callable[[], None]) -> float:
    start = time.perf_counter()
    train()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- machine
def machine_info() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu,
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
            "jaxlib": importlib.metadata.version("jaxlib"), "numpy": np.__version__, "fnn": fnn.__version__,
            "device": str(jax.devices()[0]), "backend": jax.default_backend(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    for package in PACKAGE.values():
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    try:
        import threadpoolctl

        info["numpy_blas"] = [{k: lib.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                              for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]
    except ImportError:
        pass
    info["env"] = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "XLA_FLAGS",
                                                "OMP_NUM_THREADS", "KERAS_BACKEND") if k in os.environ}
    return info


# --------------------------------------------------------------------------- targets
STEADY_TARGETS = {"W1": 0.35, "W2": 1.05, "W3": 1.05}  # fnn's µs/step over the hand-written scan's, at most
MEMORY_TARGET = ("W3", 1.15)  # fnn's peak resident set over the hand-written loop's, at most
RESULT_TARGETS = {"fnn-warm": 2.0, "fnn-cold": 3.5}  # seconds from spawn to exit, at most
EXPLORE_TARGET = 3.0  # seconds for the 8 learning rates in one fresh process
SWEEP_TARGETS = {64: 7.0, 256: 20.0}  # a sweep of K models over one model, at most


def targets(result: dict) -> list[dict]:
    """Each target with what was measured and whether it was met (None: not measured)."""
    rows = []

    def add(target: str, measured: str | None, met: bool | None, value=None, limit=None) -> None:
        rows.append({"target": target, "measured": measured or "not measured", "met": met, "value": value,
                     "limit": limit})

    steady = [r for r in result["results"] if not r.get("sweep")]
    for (name, optimizer, batch), group_rows in group(steady).items():
        by_peer = {r["peer"]: r.get("us_per_step") for r in group_rows}
        limit = STEADY_TARGETS.get(name)
        if limit is None or "jax" not in by_peer:
            continue
        ratio = by_peer["fnn"] / by_peer["jax"] if by_peer.get("fnn") and by_peer["jax"] else None
        add(f"{name} {optimizer} b{batch}: fnn µs/step ≤ {limit:.2f} × the hand-written scan",
            None if ratio is None else f"{ratio:.2f} ×", None if ratio is None else ratio <= limit, ratio, limit)
    name, limit = MEMORY_TARGET
    peaks = {m["peer"]: m.get("peak_rss_mb") for m in result.get("memory", []) if m.get("workload") == name}
    if "jax" in peaks:
        ratio = peaks["fnn"] / peaks["jax"] if peaks.get("fnn") and peaks["jax"] else None
        add(f"{name} peak memory ≤ {limit:.2f} × the hand-written loop", None if ratio is None else
            f"{peaks['fnn']:.0f} MB vs {peaks['jax']:.0f} MB: {ratio:.2f} ×", None if ratio is None else ratio <= limit,
            ratio, limit)
    ttr = result.get("time_to_result") or {}
    wall = {r["peer"]: r.get("wall_s") for r in ttr.get("rows", [])}
    for peer, limit in RESULT_TARGETS.items():
        w = wall.get(peer)
        add(f"seed example, {peer.replace('-', ' ')} ≤ {limit:.1f} s", None if w is None else f"{w:.2f} s",
            None if w is None else w <= limit, w, limit)
    for peer in RESULT_TARGETS:
        for other, label in (("torch", "PyTorch eager"), ("keras", "Keras")):
            w = wall.get(peer)
            o = min((v for p, v in wall.items() if p.split("-")[0] == other and v is not None), default=None)
            add(f"seed example, {peer.replace('-', ' ')} faster than {label}",
                None if w is None or o is None else f"{w:.2f} s vs {o:.2f} s",
                None if w is None or o is None else w < o, w, o)
    explore = ttr.get("learning_rates", {}).get("wall_s")
    add(f"{len(EXPLORE_RATES)} learning rates in one fresh process ≤ {EXPLORE_TARGET:.0f} s",
        None if explore is None else f"{explore:.2f} s", None if explore is None else explore <= EXPLORE_TARGET,
        explore, EXPLORE_TARGET)
    sweeps = {r["models"]: r for r in (result.get("sweeps") or {}).get("rows", [])}
    for k, limit in SWEEP_TARGETS.items():
        ratio = sweeps.get(k, {}).get("fnn_vs_one")
        add(f"sweep of {k} models ≤ {limit:.0f} × one", None if ratio is None else f"{ratio:.1f} ×",
            None if ratio is None else ratio <= limit, ratio, limit)
    for k in SWEEP_TARGETS:
        r = sweeps.get(k, {})
        f, v = r.get("fnn_best_s"), r.get("vmap_best_s")
        add(f"sweep of {k} models faster than the hand-written vmap",
            None if f is None or v is None else f"{f:.3f} s vs {v:.3f} s", None if f is None or v is None else f < v,
            f, v)
    return rows


# --------------------------------------------------------------------------- report
def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def short(status: str, width: int = 60) -> str:
    """A status for a table cell: the first line, cut to width (the JSON keeps it whole)."""
    line = status.splitlines()[0]
    return line if len(line) <= width else line[:width - 1] + "…"


def case_table(summary: Summary, rows: list[dict], peak: float) -> None:
    fnn_us = next((r.get("us_per_step") for r in rows if r["peer"] == "fnn"), None)
    header = ("peer", "µs/step", "samples/s", "GFLOP/s", "% peak", "fnn/peer", "1st call s", "2nd call s",
              "2nd ovh ms", "epochs×reps")
    cells = []
    for r in rows:
        if r["status"] != "ok":
            cells.append((r["peer"], short(r["status"])) + ("",) * (len(header) - 2))
            continue
        us = r["us_per_step"]
        cells.append((r["peer"], fmt(us, ".1f"), fmt(r["samples_per_s"], ",.0f"), fmt(r["gflops"], ".2f"),
                      fmt(100 * r["gflops"] / peak if peak else None, ".1f"),
                      fmt(fnn_us / us if fnn_us else None, ".2f"), fmt(r["first_call_s"], ".3f"),
                      fmt(r["second_call_s"], ".4f"), fmt(1e3 * r["second_call_overhead_s"], ".2f"),
                      f"{r['epochs']}×{len(r['times_s'])}"))
    summary.table(header, cells, ["{}"] * len(header))


def write_plot(sweep: list[dict], out: str) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for peer in SWEEP_PEERS:
        points = sorted((r["batch_size"], r["us_per_step"], r["samples_per_s"]) for r in sweep
                        if r["peer"] == peer and r["status"] == "ok")
        if not points:
            continue
        batches, us, sps = zip(*points)
        style = {"fnn": "o-", "jax": "s-", "jax-step": "^--", "numpy": "d-"}.get(peer, "x-")
        axes[0].plot(batches, us, style, label=peer)
        axes[1].plot(batches, sps, style, label=peer)
    ticks = sorted({r["batch_size"] for r in sweep})
    for ax, ylabel in zip(axes, ("µs per step", "samples per second")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "W1 with SGD + momentum was not measured", ha="center", transform=ax.transAxes)
    axes[0].set_title("W1 (2-4-6-6-4-1), SGD + momentum: time per step")
    axes[1].set_title("W1: throughput")
    return savefig(fig, out, "bench_sweep.png")


def report(result: dict, summary: Summary, out: str) -> None:
    peak = max((m["best_gflops"] for m in result["matmul"]), default=None)
    m = result["machine"]
    summary.record("machine", m)
    summary.record("gflops_peak", peak)
    summary.add(f"machine: {m['cpu']}, {m['cpu_count']} cpus, {m['platform']}; jax {m['jax']}, jaxlib "
                f"{m['jaxlib']}, numpy {m['numpy']}, device {m['device']}; load average at start "
                f"{m['load_average_at_start']}, at the end {m.get('load_average_at_end')}; compilation cache "
                f"in this process: {m.get('compilation_cache')}")
    for mm in result["matmul"]:
        summary.add()
        summary.add(f"fp32 matmul at {mm['workload']}'s shapes, {mm.get('when', '')} of the run (GFLOP/s; best "
                    f"{mm['best_gflops']:.1f} by {mm['best_backend']} at {tuple(mm['best_shape'])}):")
        columns = mm["columns"]
        summary.table(["m×k×n"] + columns, [[f"{s['m']}×{s['k']}×{s['n']}"] + [s[c] for c in columns]
                                            for s in mm["shapes"]], ["{}"] + ["{:.1f}"] * len(columns))
        if mm.get("when") == "start":
            summary.add("threads used by the peers: " + ", ".join(
                f"{lib} {t or 'default'}" for lib, t in mm["threads"].items()))
    if peak:
        summary.add(f"'% peak' below is of {peak:.1f} GFLOP/s, the best of these")
    main_rows = [r for r in result["results"] if not r.get("sweep")]
    peers = list(dict.fromkeys(r["peer"] for r in main_rows))
    if main_rows:
        summary.add()
        summary.add("overview: µs/step (fnn/peer)")
    cells = []
    for (name, optimizer, batch), rows in group(main_rows).items():
        by_peer = {r["peer"]: r for r in rows}
        line = [f"{name} {optimizer} b{batch}"]
        for p in peers:
            r = by_peer.get(p, {})
            us, ratio = r.get("us_per_step"), r.get("ratio_fnn_over_peer")
            line.append(("-" if r.get("status", "").startswith("skipped") else "failed") if us is None else
                        f"{us:.1f}" + (f" ({ratio:.2f})" if ratio and p != "fnn" else ""))
        cells.append(line)
    if main_rows:
        summary.table(["case"] + peers, cells, ["{}"] * (len(peers) + 1), name="steady")
    for (name, optimizer, batch), rows in group(result["results"]).items():
        if any(r.get("sweep") for r in rows):
            continue
        summary.add()
        summary.add(f"{name} {optimizer}, batch {batch}, {rows[0]['steps_per_epoch']} steps/epoch, "
                    f"{rows[0]['flops_per_step'] / 1e6:.3g} MFLOP/step ({result['data'][name]}):")
        case_table(summary, rows, peak)
    sweep = [r for r in result["results"] if r["workload"] == "W1" and r["optimizer"] == "momentum"]
    batches = sorted({r["batch_size"] for r in sweep})
    if len(batches) > 1:
        summary.add()
        summary.add("W1 batch-size sweep, SGD + momentum: µs/step (fnn/peer)")
        peers = [p for p in SWEEP_PEERS if any(r["peer"] == p for r in sweep)]
        cells = []
        for b in batches:
            by_peer = {r["peer"]: r for r in sweep if r["batch_size"] == b}
            f = by_peer.get("fnn", {}).get("us_per_step")
            line = [str(b)]
            for p in peers:
                us = by_peer.get(p, {}).get("us_per_step")
                line.append("-" if us is None else f"{us:.1f}" + (f" ({f / us:.2f})" if f and p != "fnn" else ""))
            cells.append(line)
        summary.table(["batch"] + peers, cells, ["{}"] * (len(peers) + 1))
    fnn_rows = [r for r in result["results"] if r["peer"] == "fnn" and r["status"] == "ok"]
    if fnn_rows:
        summary.add()
        summary.add("fnn.fit per call: first call (compiles; JAX's trace and backend-compile events counted), "
                    "second identical call (retraced? recompiled?), traces while timed (new epoch counts "
                    "included), and the steady cost split into µs/step and a fixed per-call overhead (two epoch "
                    "counts in one compiled program)")
        yes_no = {True: "yes", False: "no", None: "?"}
        summary.table(("case", "1st call s", "traces/compiles", "2nd call ms", "retraced", "recompiled",
                       "timed traces", "µs/step all-in", "marginal µs/step", "call overhead ms"),
                      [(f"{r['workload']} {r['optimizer']} b{r['batch_size']}", fmt(r["first_call_s"], ".3f"),
                        "{traces}/{compiles}".format(**r["first_call_events"]) if "first_call_events" in r else "?",
                        fmt(1e3 * r["second_call_s"], ".2f"), yes_no[r.get("second_call_retraced")],
                        yes_no[r.get("second_call_compiled")],
                        fmt(r.get("timed_traces", 0) + r.get("warmup_events", {}).get("traces", 0), "d"),
                        fmt(r["us_per_step"], ".1f"), fmt(r.get("marginal_us_per_step"), ".1f"),
                        fmt(1e3 * r["call_overhead_s"] if "call_overhead_s" in r else None, ".2f"))
                       for r in fnn_rows], ["{}"] * 10)
    if result["memory"]:
        summary.add()
        summary.add("peak resident memory, a fresh process per (peer, workload), 2 epochs SGD + momentum (MB)")
        cells = []
        for r in result["memory"]:
            if r["status"] == "ok":
                cells.append((r["workload"], r["peer"], f"{r['peak_rss_mb']:.0f}", f"{r['baseline_rss_mb']:.0f}",
                              f"{r['training_mb']:.0f}"))
            else:
                cells.append((r["workload"], r["peer"], short(r["status"]), "", ""))
        summary.table(("workload", "peer", "peak RSS", "before training", "training adds"), cells, ["{}"] * 5,
                      name="memory")
    if result.get("time_to_result"):
        report_time_to_result(summary, result["time_to_result"])
    if result.get("sweeps"):
        report_sweeps(summary, result["sweeps"])
    summary.add()
    summary.add("targets")
    summary.table(("target", "measured", ""), [(t["target"], t["measured"], {True: "met", False: "not met",
                                                                              None: "-"}[t["met"]])
                                               for t in result["targets"]], ["{}"] * 3, name="targets")
    summary.add()
    summary.add(f"json: {result['json']}; plot: {result['plot']}")
    summary.write(out)


def report_time_to_result(summary: Summary, ttr: dict) -> None:
    c = ttr["example"]
    summary.add()
    summary.add(f"time to result: the seed example end to end in a fresh process (circles {c['n_train']} train / "
                f"{c['n_test']} test, noise {c['noise']}; {'-'.join(map(str, c['sizes']))}, Adam "
                f"{c['learning_rates'][0]:g}, batch {c['batch_size']}, {c['epochs']} epochs; test accuracy), wall "
                f"time from spawn to exit, median of {ttr['reps']}")
    cells = []
    for r in ttr["rows"]:
        if r["status"] != "ok" or not r["runs"]:
            cells.append((r["peer"], short(r["status"])) + ("",) * 5)
            continue
        last = r["runs"][-1]
        note = {"keras": f"backend {last.get('backend')}", "sklearn": f"{last.get('epochs_run')} epochs run"}.get(
            r["peer"], f"{last['threads']} threads" if r["peer"].startswith("torch") else "")
        if r["peer"].startswith("fnn"):
            events = r["runs"][0].get("jax_events", {})
            note = (f"{events.get('compiles', '?')} programs, {events.get('cache_hits', '?')} from the cache; "
                    f"{r.get('cache_files_before', '?')} files in it before")
        cells.append((r["peer"], f"{r['wall_s']:.2f}", f"{r['wall_min_s']:.2f}–{r['wall_max_s']:.2f}",
                      f"{r['in_process_s']:.2f}", f"{r['import_s']:.2f}", f"{r['accuracy']:.3f}", note))
    summary.table(("peer", "wall s", "min–max", "in process s", "imports s", "test acc", "notes"), cells,
                  ["{}"] * 7, name="time_to_result")
    report_floor(summary, ttr)
    e = ttr["learning_rates"]
    summary.add()
    rates = ", ".join(f"{r:g}" for r in e["learning_rates"])
    if e["status"] != "ok" or not e["runs"]:
        summary.add(f"{len(e['learning_rates'])} learning rates in one fresh process: {e['status']}")
        return
    summary.add(f"{len(e['learning_rates'])} learning rates ({rates}) one after another in one fresh process, "
                f"warm cache, median of {len(e['runs'])}:")
    summary.table(("wall s", "in process s", "imports s", "8 fits s", "first fit s", "each later fit s",
                   "test acc (per rate)"),
                  [(f"{e['wall_s']:.2f}", f"{e['in_process_s']:.2f}", f"{e['import_s']:.2f}", f"{e['fits_s']:.2f}",
                    f"{e['first_fit_s']:.3f}", f"{e['later_fit_s']:.3f}",
                    " ".join(f"{a:.2f}" for a in e["accuracies"]))], ["{}"] * 7, name="learning_rates")


def report_floor(summary: Summary, ttr: dict) -> None:
    """The floor beside fnn's rows: import jax, import jax + one op, import fnn; ml_dtypes' share."""
    floor = {r["peer"]: r for r in ttr.get("floor", []) if r["status"] == "ok" and r["runs"]}
    if not floor:
        return
    rows = {r["peer"]: r for r in ttr["rows"] if r["status"] == "ok" and r["runs"]}
    summary.add()
    summary.add("the floor, fresh processes in the same run (wall s from spawn to exit, median; best in brackets):")
    summary.table(("process", "wall s", "best s"),
                  [(name, f"{r['wall_s']:.2f}", f"{r['wall_min_s']:.2f}") for name, r in floor.items()], ["{}"] * 3, name="floor")
    op, jax_, fnn_ = (floor.get(k, {}).get("wall_s") for k in ("import jax + one op", "import jax", "import fnn"))
    warm, cold = (rows.get(k, {}).get("wall_s") for k in ("fnn-warm", "fnn-cold"))
    explore = ttr.get("learning_rates", {}).get("wall_s")
    parts = []
    if warm and op:
        parts.append(f"fnn warm / (import jax + one op) {warm / op:.2f}")
    if warm and cold:
        parts.append(f"cold / warm {cold / warm:.2f}")
    if warm and explore:
        parts.append(f"8 learning rates − warm {explore - warm:+.2f} s")
    if jax_ and fnn_:
        best = floor["import fnn"]["wall_min_s"] - floor["import jax"]["wall_min_s"]
        parts.append(f"import fnn − import jax {fnn_ - jax_:+.2f} s (best of each: {best:+.2f} s)")
    if parts:
        summary.add("; ".join(parts))
    imports = ttr.get("imports") or {}
    if imports.get("ml_dtypes_version"):
        summary.add(f"python -X importtime -c 'import fnn' (median): jax {imports['jax_s']:.3f} s, of it ml_dtypes "
                    f"{imports['ml_dtypes_s']:.3f} s (its extension {imports['ml_dtypes_ext_s']:.3f} s, ml_dtypes "
                    f"{imports['ml_dtypes_version']}); fnn in all {imports['fnn_s']:.3f} s")


def report_sweeps(summary: Summary, sweeps: dict) -> None:
    summary.add()
    if sweeps["status"] != "ok":
        summary.add(f"sweeps: {sweeps['status']}")
        return
    summary.add(f"sweeps: K circles networks trained at once (learning rates × seeds, Adam, {sweeps['epochs']} "
                f"epochs, {sweeps['n_train']} samples, batch {sweeps['batch_size']}); seconds per call, best of "
                f"{sweeps['reps']} after a warm-up call; fnn.sweep against a hand-written jax.vmap of scan-in-"
                f"fori_loop runs")
    cells = []
    for r in sweeps["rows"]:
        cells.append((str(r["models"]), f"{r['rates']}×{r['seeds']}", fmt(r.get("fnn_first_s"), ".2f"),
                      fmt(r.get("fnn_best_s"), ".3f"), fmt(r.get("fnn_median_s"), ".3f"),
                      fmt(r.get("fnn_vs_one"), ".1f"), fmt(r.get("vmap_first_s"), ".2f"),
                      fmt(r.get("vmap_best_s"), ".3f"), fmt(r.get("vmap_vs_one"), ".1f"),
                      fmt(r.get("vmap_vs_fnn_one"), ".1f"), fmt(r.get("fnn_over_vmap"), ".2f"),
                      "" if r["status"] == "ok" else short(r["status"], 40)))
    summary.table(("K", "rates×seeds", "fnn 1st s", "fnn s", "fnn median s", "fnn ×K=1", "vmap 1st s", "vmap s",
                   "vmap ×own K=1", "vmap ×fnn K=1", "fnn/vmap", ""), cells, ["{}"] * 12, name="sweeps")


def group(rows: list[dict]) -> dict:
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["workload"], r["optimizer"], r["batch_size"]), []).append(r)
    return groups


# --------------------------------------------------------------------------- main
def parse(argv) -> argparse.Namespace:
    p = parser("bench", __doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per peer (default 5, quick 1)")
    p.add_argument("--workloads", default="W1,W2,W3", help="comma-separated (default: %(default)s)")
    p.add_argument("--peers", default=None, help=f"comma-separated from {','.join(PEERS)} (default: all; quick: "
                                                 f"{','.join(QUICK_PEERS)})")
    p.add_argument("--optimizers", default=None, help="comma-separated (default: momentum,adam; quick: momentum)")
    p.add_argument("--batch-sizes", default=None, help="the W1 sweep (default 8,16,32,64,128,256; '' for none)")
    p.add_argument("--target-seconds", type=float, default=None, help="length of one timed call (default 0.2)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--memory-workloads", default=None, help="workloads whose peak memory is measured "
                                                            "(default: W3; quick: W1)")
    p.add_argument("--memory-peers", default=None, help="peers whose peak memory is measured (default: all "
                                                        "selected; quick: numpy)")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: steady (µs/step in this "
                   "process), sweeps (fnn.sweep against a hand-written vmap), result (time to result in fresh "
                   "processes) (default: %(default)s)")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    return args


def check_names(kind: str, given: tuple, known) -> None:
    bad = [g for g in given if g not in known]
    if bad or not given:
        raise SystemExit(f"bench: unknown or no {kind}s {bad}; choose from {list(known)}")


def settings_from(args) -> Settings:
    table = QUICK_WORKLOADS if args.quick else WORKLOADS
    names = tuple(dict.fromkeys(s.strip().upper() for s in args.workloads.split(",") if s.strip()))
    peers = tuple(dict.fromkeys(s.strip().lower() for s in (args.peers or ",".join(
        QUICK_PEERS if args.quick else PEERS)).split(",") if s.strip()))
    optimizers = tuple(dict.fromkeys(s.strip().lower() for s in (args.optimizers or (
        "momentum" if args.quick else ",".join(OPTIMIZERS))).split(",") if s.strip()))
    sections = tuple(dict.fromkeys(s.strip().lower() for s in args.sections.split(",") if s.strip()))
    check_names("section", sections, SECTIONS)
    check_names("workload", names, table)
    check_names("peer", peers, PEERS)
    check_names("optimizer", optimizers, OPTIMIZERS)
    if args.batch_sizes is None:
        batches = QUICK_SWEEP_BATCHES if args.quick else SWEEP_BATCHES
    else:
        batches = tuple(int(s) for s in args.batch_sizes.split(",") if s.strip())
    if args.memory_workloads is None:
        memory = tuple(n for n in (("W1",) if args.quick else ("W3",)) if n in names)
    else:
        memory = tuple(s.strip().upper() for s in args.memory_workloads.split(",") if s.strip())
    if args.no_memory:
        memory = ()
    memory_peers = peers if args.memory_peers is None else tuple(
        s.strip().lower() for s in args.memory_peers.split(",") if s.strip())
    if args.quick and args.memory_peers is None:
        memory_peers = tuple(p for p in ("numpy",) if p in peers)
    if memory:
        check_names("memory workload", memory, table)
        check_names("memory peer", memory_peers, PEERS)
    reps = args.reps if args.reps is not None else (1 if args.quick else 5)
    if reps < 1:
        raise SystemExit("bench: --reps must be at least 1")
    target = args.target_seconds if args.target_seconds is not None else (0.01 if args.quick else 0.2)
    return Settings(workloads={n: table[n] for n in names}, peers=peers, optimizers=optimizers,
                    sweep_batches=batches, reps=reps, target_seconds=target, max_epochs=1 if args.quick else 1024,
                    matmul_seconds=0.02 if args.quick else 0.1, memory_workloads=memory,
                    memory_peers=memory_peers, quick=args.quick,
                    seed=args.seed, sections=sections)


def run(settings: Settings, out: str) -> dict:
    start = time.perf_counter()
    summary = Summary("fnn benchmark: µs per training step (median), fnn/peer < 1 means fnn is faster")
    result = {"machine": machine_info(), "settings": {k: v for k, v in settings._asdict().items() if k != "workloads"},
              "workloads": {n: w._asdict() for n, w in settings.workloads.items()}, "data": {}, "matmul": [],
              "results": [], "memory": [], "sweeps": None, "time_to_result": None, "targets": []}
    log(f"bench: sections {', '.join(settings.sections)}; peers {', '.join(settings.peers)}; "
        f"workloads {', '.join(settings.workloads)}")
    count_jax_events()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        # --quick is a smoke test of every path, not a measurement: the sweeps and the fresh
        # processes run beside the steady section. Otherwise each section runs alone.
        others = pool.submit(bench_config(other_sections), settings) if settings.quick else None
        with fresh_compilation_cache() as cache:
            result["machine"]["compilation_cache"] = cache
            if "steady" in settings.sections:
                measure_steady(settings, result)
            result["sweeps"], result["memory"], result["time_to_result"] = (
                others.result() if others else other_sections(settings))
    result["targets"] = targets(result)
    result["machine"]["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    out = output_dir(out)
    sweep = [r for r in result["results"] if r["workload"] == "W1" and r["optimizer"] == "momentum"]
    result["plot"] = write_plot(sweep, out)
    result["json"] = os.path.join(out, "bench.json")
    result["runtime_s"] = time.perf_counter() - start
    with open(result["json"], "w") as f:
        json.dump(result, f, indent=1, default=str)
    report(result, summary, out)
    return result


def other_sections(settings: Settings) -> tuple[dict | None, list[dict], dict | None]:
    """The sweeps; then peak memory per (peer, workload) and the time-to-result runs, in fresh processes."""
    sweeps = measure_sweeps(settings) if "sweeps" in settings.sections else None
    memory = measure_memory(settings) if settings.memory_workloads else []
    return sweeps, memory, measure_time_to_result(settings) if "result" in settings.sections else None


def measure_steady(settings: Settings, result: dict) -> None:
    """The matmul ceiling, then every (workload, optimizer) case and the W1 batch-size sweep; fills result."""
    widest = max(settings.workloads.values(), key=lambda w: sum(a * b for a, b in zip(w.sizes[:-1], w.sizes[1:])))
    torch_too = "torch" in settings.peers and unavailable("torch") is None
    result["matmul"].append(measure_matmul(widest, settings.matmul_seconds, settings.seed, not settings.quick,
                                           torch_too))
    threads = result["matmul"][0]["threads"]
    result["matmul"][0]["when"] = "start"
    for name, w in settings.workloads.items():
        data = make_data(w, settings.seed)
        result["data"][name] = data[2]
        for optimizer in settings.optimizers:
            case = make_case(w, optimizer, w.batch_size, settings.seed, data, threads)
            result["results"] += measure_case(case, settings.peers, settings)
        if name == "W1" and "momentum" in settings.optimizers:
            peers = tuple(p for p in settings.peers if p in SWEEP_PEERS)
            for batch in settings.sweep_batches:
                if batch == w.batch_size or batch > w.n_samples:
                    continue
                case = make_case(w, "momentum", batch, settings.seed, data, threads)
                result["results"] += [dict(r, sweep=True) for r in measure_case(case, peers, settings)]
    if not settings.quick:  # again: the machine's load may have changed since the start
        result["matmul"].append(dict(measure_matmul(widest, settings.matmul_seconds, settings.seed, True, torch_too),
                                     when="end"))
    fnn_us = {(r["workload"], r["optimizer"], r["batch_size"]): r.get("us_per_step")
              for r in result["results"] if r["peer"] == "fnn"}
    peak = max(m["best_gflops"] for m in result["matmul"])
    for r in result["results"]:
        f = fnn_us.get((r["workload"], r["optimizer"], r["batch_size"]))
        if r.get("us_per_step"):
            r["fraction_of_peak"] = r["gflops"] / peak
            r["ratio_fnn_over_peer"] = f / r["us_per_step"] if f else None


@contextlib.contextmanager
def fresh_compilation_cache():
    """While it lasts, fnn's persistent compilation cache (if on) writes to an empty temporary folder,
    so a first call compiles whatever earlier runs left in the user's cache; yields what is in use."""
    before = fnn.cache.directory()
    if before is None:
        foreign = jax.config.jax_compilation_cache_dir
        yield f"JAX's own, {foreign}" if foreign else "off"
        return
    folder = tempfile.mkdtemp(prefix="fnn-bench-cache-")
    try:
        fnn.cache.enable(folder)
        yield "fnn's, an empty temporary folder"
    finally:
        fnn.cache.enable(before)
        shutil.rmtree(folder, ignore_errors=True)


def bench_config(fn: Callable) -> Callable:
    """fn under the bench's JAX settings: float32 throughout, and ordinary broadcasting for the
    peers, whatever the caller's. They are per thread, so a section in another thread needs this."""
    @functools.wraps(fn)
    def configured(*args, **kwargs):
        with jax.enable_x64(False), jax.numpy_rank_promotion("allow"):
            return fn(*args, **kwargs)

    return configured


@bench_config
def main(argv=None) -> dict:
    args = parse(argv)
    if args.memory_child:
        peer, name = args.memory_child.split(":")
        table = QUICK_WORKLOADS if args.quick else WORKLOADS
        row = memory_child(peer, table[name], args.seed)
        print(json.dumps(row), flush=True)
        return row
    return run(settings_from(args), args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
