"""The bad-input battery: every public entry point against every bad input that applies to it.

Written once as a table, in the manner of scikit-learn's common estimator checks. Each `Case` is
(entry point, what is wrong, a callable taking the bad input, the bad input, the fnn exception
class expected, a regex the message must match). `run(case)` classifies what happened:

    clear           the expected fnn exception, with a matching message, raised before tracing
    wrong_class     an fnn exception, but not of the expected class
    wrong_message   the expected class, but the message does not name what it should
    traced          the expected exception, but raised from inside a JAX trace (jit, grad, vmap)
    raw             a non-fnn exception: a raw JAX/XLA/numpy/Python error
    silent          no exception at all

The training API is covered entry by entry: fit (its settings, callbacks=, initial_state=, a
stream of batches), fnn.Trainer(...), trainer.init, trainer.run (with every bad x, y, params,
model and loss, as fit), each callback's constructor, sweep, lr_find and the optimizer-state
functions (set_hyperparameters, learning_rate).

`EDGE_CASES` are the legitimate corner cases that must work (one sample, one feature, a single
class present, batch_size larger than the data, (n,) targets equal to (n, 1) ones, verbose=True,
epochs=10.0, EarlyStopping(patience=0)).

tests/test_errors.py runs both tables under pytest and experiments/reliability.py counts them.
Everything is tiny and float32 explicitly, so the battery behaves the same with and without
jax_enable_x64. A case waiting for a fix elsewhere may carry `xfail`, the reason naming the fix
(tests/test_errors.py then marks it xfail(strict=True), so the fix must remove it).
"""
from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import hashlib
import io
import itertools
import json
import os
import pathlib
import pickle
import re
import shutil
import tempfile
import unittest.mock
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

import fnn
from fnn import DenseParams, activations, backprop, callbacks, checkpoint, data, initializers, losses, optim
from fnn.errors import CheckpointError, CheckpointNotFoundError, FnnError, FnnTypeError, FnnValueError
from fnn.stream import StreamError

NaN, INF = float("nan"), float("inf")


class Case(NamedTuple):
    """One bad input to one public entry point, and the error it must raise."""

    entry: str  # the public entry point, e.g. "fnn.fit"
    what: str  # what is wrong with the input, e.g. "x with NaN"
    call: Callable[[Any], Any]  # takes the bad input, calls the entry point with it
    bad: Any  # the bad input
    error: type  # the fnn exception class expected
    match: str  # a regex the message must match (re.search)
    xfail: str | None = None  # a fix still pending elsewhere: what to change

    @property
    def id(self) -> str:
        return f"{self.entry} | {self.what}"


class Edge(NamedTuple):
    """A legitimate corner case: check() runs it and asserts the result is right."""

    entry: str
    what: str
    check: Callable[[], None]

    @property
    def id(self) -> str:
        return f"{self.entry} | {self.what}"


# --------------------------------------------------------------------------- the problems
N, D = 4, 2  # every data set: 4 samples of 2 features
KEY = jax.random.key(0)
X = np.random.default_rng(0).normal(size=(N, D)).astype(np.float32)


def _params(model: fnn.Sequential, seed: int = 0, input_dim: int = D) -> tuple:
    """Random float32 params made with numpy: nothing compiled."""
    rng = np.random.default_rng(seed)
    out, n_in = [], input_dim
    for layer in model.layers:
        out.append(DenseParams(jnp.asarray(rng.normal(size=(n_in, layer.units)) / np.sqrt(n_in), jnp.float32),
                               jnp.asarray(0.1 * rng.normal(size=layer.units), jnp.float32)))
        n_in = layer.units
    return tuple(out)


REG = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1)])
BIN = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
CAT = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(3, activation="softmax")])
PARAMS = {REG: _params(REG), BIN: _params(BIN, 1), CAT: _params(CAT, 2)}
Y_REG = (X[:, :1] - 2 * X[:, 1:]).astype(np.float32)  # (4, 1)
Y_BIN = np.array([0, 1, 1, 0])
Y_CAT = np.array([0, 2, 1, 2])
ONE_HOT = np.eye(3, dtype=np.float32)[Y_CAT]

# loss name -> (model, targets); CAT with mse is the k-output regression problem
PROBLEMS = {
    "mse": (REG, Y_REG),
    "binary_cross_entropy": (BIN, Y_BIN),
    "categorical_cross_entropy": (CAT, Y_CAT),
}


def _with(a, index, value):
    """A copy of `a` with one entry replaced (the dtype widened to hold it if need be)."""
    out = np.array(a, dtype=np.result_type(a, np.asarray(value)))
    out[index] = value
    return out


# --------------------------------------------------------------------------- scratch files
@functools.cache
def _scratch() -> pathlib.Path:
    path = pathlib.Path(tempfile.mkdtemp(prefix="fnn-battery-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _file(content: bytes, name: str = "bad.ckpt") -> pathlib.Path:
    path = _scratch() / name
    path.unlink(missing_ok=True)
    path.write_bytes(content)
    return path


@functools.cache
def valid_checkpoint() -> bytes:
    """The bytes of a good checkpoint of BIN's params and a step count."""
    path = fnn.save(_scratch() / "valid.ckpt", {"params": PARAMS[BIN], "step": 3})
    return path.read_bytes()


def flip_bit(content: bytes, byte: int, bit: int = 0) -> bytes:
    out = bytearray(content)
    out[byte] ^= 1 << bit
    return bytes(out)


# --------------------------------------------------------------------------- bad inputs, by kind
X_BAD = [  # (what, x, error, regex); for the entry points taking (n, d) inputs of the 2-feature models
    ("x with NaN", _with(X, (2, 1), NaN), FnnValueError,
     r"x contains 1 non-finite value\(s\); the first is nan at row 2, column 1"),
    ("x with inf", _with(X, (3, 0), INF), FnnValueError,
     r"x contains 1 non-finite value\(s\); the first is inf at row 3, column 0"),
    ("x with -inf in a jax array", jnp.asarray(_with(X, (1, 1), -INF)), FnnValueError,
     r"x contains 1 non-finite value\(s\); the first is -inf at row 1, column 1"),
    ("x 0-d", np.float32(1.0), FnnValueError, r"x must be 2-d \(n_samples, n_features\).*got shape \(\)"),
    ("x 3-d", X[None], FnnValueError, r"x must be 2-d \(n_samples, n_features\).*got shape \(1, 4, 2\)"),
    ("x with 0 samples", X[:0], FnnValueError, r"x has 0 samples \(shape \(0, 2\)\)"),
    ("x with 0 features", X[:, :0], FnnValueError, r"x has 0 features \(shape \(4, 0\)\)"),
    ("x with 3 features", np.ones((N, 3), np.float32), FnnValueError,
     r"x has 3 features \(shape \(4, 3\)\) but the model's first layer expects 2"),
    ("x of strings", np.array([["1.0", "2.0"]] * N), FnnTypeError,
     r"x must have a numeric dtype \(float or int\), got dtype <U3"),
    ("x of objects", np.array([[1.0, None]] * N, dtype=object), FnnTypeError,
     r"x must have a numeric dtype \(float or int\), got dtype object"),
    ("x complex", X.astype(np.complex64), FnnTypeError, r"x has complex dtype complex64; fnn trains on real"),
    ("x a ragged list", [[1.0, 2.0], [3.0]], FnnTypeError,
     r"x must be a numeric array \(rectangular, real\), got list"),
    ("x None", None, FnnTypeError, r"x must be an array, got None"),
    ("x a file name", "data.csv", FnnTypeError, r"x must be a numeric array, got a string 'data.csv'"),
]
X_BAD_BATCH_ONLY = [  # where x must be a batch: a 1-d x is not one example
    ("x 1-d", X[:, 0], FnnValueError,
     r"x must be 2-d \(n_samples, n_features\), got shape \(4,\) \(the model expects 2 features: reshape a single "
     r"feature column with x\.reshape\(-1, 1\), or one example of 4 features is x\.reshape\(1, -1\)\)"),
    ("x 1-d, one example of the model's width", X[0], FnnValueError,
     r"x must be 2-d \(n_samples, n_features\), got shape \(2,\) \(the model expects 2 features: one example of 2 "
     r"features is x\.reshape\(1, -1\)\)$"),
]
X_BAD_SINGLE_OK = [  # where a (d,) x is one example: a (d',) one of the wrong width is refused
    ("x 1-d with 3 features", np.ones(3, np.float32), FnnValueError,
     r"x has 3 features \(shape \(3,\)\) but the model's first layer expects 2"),
]

COMMON_Y_BAD = [  # (what, y-maker(y), error, regex-maker(k)) for every loss
    ("y with NaN", lambda y: _with(y, 1, NaN), FnnValueError,
     r"y contains \d+ non-finite value\(s\); the first is nan at row 1"),
    ("y with inf", lambda y: _with(y, 3, INF), FnnValueError,
     r"y contains \d+ non-finite value\(s\); the first is inf at row 3"),
    ("y 0-d", lambda y: np.float32(1), FnnValueError, r"y must be \(n_samples,\) or \(n_samples, \d\), got shape \(\)"),
    ("y 3-d", lambda y: np.zeros((N, 1, 1), np.float32), FnnValueError,
     r"y must be \(n_samples,\) or \(n_samples, \d\), got shape \(4, 1, 1\)"),
    ("y with 0 samples", lambda y: y[:0], FnnValueError, r"y has 0 samples \(shape \(0,"),
    ("y shorter than x", lambda y: y[:3], FnnValueError, r"x and y have different numbers of samples: 4 and 3"),
    ("y longer than x", lambda y: np.concatenate([y, y[:1]]), FnnValueError,
     r"x and y have different numbers of samples: 4 and 5"),
    ("y of strings", lambda y: np.asarray(y).astype(str), FnnTypeError, r"y must have a numeric dtype .*got dtype <U"),
    ("y of objects", lambda y: np.asarray(y).astype(object), FnnTypeError,
     r"y must have a numeric dtype .*got dtype object"),
    ("y complex", lambda y: np.asarray(y).astype(np.complex64), FnnTypeError, r"y has complex dtype complex64"),
    ("y None", lambda y: None, FnnTypeError, r"y must be an array, got None"),
]
Y_BAD = {  # loss -> [(what, y, error, regex)], for PROBLEMS[loss]
    "mse": [
        ("y with 2 columns for 1 output", np.zeros((N, 2), np.float32), FnnValueError,
         r"y has 2 columns \(shape \(4, 2\)\) but the model has 1 outputs"),
    ],
    "binary_cross_entropy": [
        ("label 2", np.array([0, 2, 1, 0]), FnnValueError,
         r"binary_cross_entropy needs labels in \[0, 1\] in y \(0/1 classes, or soft labels\); found 2 at row 1"),
        ("label -1", np.array([0, 1, -1, 0]), FnnValueError,
         r"binary_cross_entropy needs labels in \[0, 1\] in y \(0/1 classes, or soft labels\); found -1 at row 2"),
        ("label 1.5", np.array([0.0, 1.0, 1.0, 1.5]), FnnValueError,
         r"binary_cross_entropy needs labels in \[0, 1\] in y \(0/1 classes, or soft labels\); found 1.5 at row 3"),
        ("y with 2 columns for 1 output", np.zeros((N, 2)), FnnValueError,
         r"y has 2 columns \(shape \(4, 2\)\) but the model has 1 outputs"),
    ],
    "categorical_cross_entropy": [
        ("label 3 of 3 classes", np.array([0, 3, 1, 2]), FnnValueError,
         r"class label y\[1\] = 3 is out of range: the model has 3 output units, so labels must be in 0\.\.2"),
        ("label -1", np.array([0, 1, 2, -1]), FnnValueError,
         r"class label y\[3\] = -1 is out of range: .*labels must be in 0\.\.2"),
        ("label 1.5", np.array([0.0, 1.5, 1.0, 2.0]), FnnValueError,
         r"y looks like class labels \(shape \(4,\)\) but y\[1\] = 1.5 is not an integer"),
        ("label 3 in an (n, 1) column", np.array([[0], [1], [3], [2]]), FnnValueError,
         r"class label y\[2\] = 3 is out of range"),
        ("one-hot row summing to 2", _with(ONE_HOT, (1, 0), 1.0), FnnValueError,
         r"one-hot y row 1 sums to 2"),
        ("one-hot row summing to 0", _with(ONE_HOT, (2, 1), 0.0), FnnValueError,
         r"one-hot y row 2 sums to 0"),
        ("one-hot row with a negative entry", np.array([[1.5, -0.5, 0]] + ONE_HOT[1:].tolist()), FnnValueError,
         r"one-hot y row 0 has a negative entry -0.5 at column 1"),
        ("one-hot of width 2 for 3 outputs", np.eye(2)[[0, 1, 1, 0]], FnnValueError,
         r"one-hot y has width 2 \(shape \(4, 2\)\) but the model has 3 output units"),
        ("one-hot of width 4 for 3 outputs", np.eye(4)[[0, 1, 3, 0]], FnnValueError,
         r"one-hot y has width 4 \(shape \(4, 4\)\) but the model has 3 output units"),
    ],
}
Y_BAD_K_OUTPUTS_MSE = [  # mse on the 3-output model: (n,) targets are ambiguous, never broadcast to (n, n)
    ("y (n,) for 3 outputs", np.zeros(N, np.float32), FnnValueError,
     r"y has shape \(4,\) but the model has 3 outputs; pass y of shape \(n_samples, 3\)"),
]


def _bad_params(model: fnn.Sequential) -> list:
    """(what, params, error, regex) for a 2-layer model Dense(3) -> Dense(k), input 2."""
    good = PARAMS[model]
    (w0, b0), (w1, b1) = good
    k = model.output_dim
    return [
        ("params a dict", {"w": w0, "b": b0}, FnnTypeError,
         r"params must be a tuple of DenseParams \(one per layer\), got dict"),
        ("params None", None, FnnTypeError, r"params must be a tuple of DenseParams \(one per layer\), got NoneType"),
        ("params of 1 layer for 2", good[:1], FnnValueError, r"params has 1 layer entries but the model has 2 layers"),
        ("params of 3 layers for 2", good + good[1:], FnnValueError, r"params has 3 layer entries but the model has 2"),
        ("params[1].w of the wrong shape", (good[0], DenseParams(jnp.zeros((4, k), jnp.float32), b1)), FnnValueError,
         rf"params\[1\]\.w \(layer 1, Dense\({k}\)\) has shape \(4, {k}\), expected \(3, {k}\)"),
        ("params[0].b of the wrong shape", (DenseParams(w0, jnp.zeros(2, jnp.float32)), good[1]), FnnValueError,
         r"params\[0\]\.b \(layer 0, Dense\(3\)\) has shape \(2,\), expected \(3,\)"),
        ("params[0].w 1-d", (DenseParams(w0.reshape(-1), b0), good[1]), FnnValueError,
         r"params\[0\]\.w \(layer 0, Dense\(3\)\) has shape \(6,\), expected \(n_in, 3\)"),
        ("params[0].w transposed", (DenseParams(w0.T, b0), good[1]), FnnValueError,
         r"params\[0\]\.w \(layer 0, Dense\(3\)\) has shape \(3, 2\), expected \(3, 3\)"),
        ("params of int dtype", (DenseParams(w0.astype(jnp.int32), b0.astype(jnp.int32)), good[1]), FnnTypeError,
         r"params\[0\]\.w has dtype int32; parameters must be floating point"),
        ("params[0] not a (w, b) pair", ((w0, b0, b0), good[1]), FnnTypeError,
         r"params\[0\] must be DenseParams\(w, b\), got tuple"),
        ("params leaves as lists", (DenseParams(w0.tolist(), b0.tolist()), good[1]), FnnTypeError,
         r"params\[0\]\.w and \.b must be arrays, got list and list"),
        ("params[1].w with NaN", (good[0], DenseParams(w1.at[2, 0].set(NaN), b1)), FnnValueError,
         r"params\[1\]\.w contains 1 non-finite value\(s\) \(first: nan at row 2, column 0\); the params are unusable"),
        ("params[0].b with inf", (DenseParams(w0, b0.at[1].set(INF)), good[1]), FnnValueError,
         r"params\[0\]\.b contains 1 non-finite value\(s\) \(first: inf at index 1\); the params are unusable"),
    ]


BAD_MODELS = [
    ("model a string", "model", FnnTypeError, r"model must be a fnn\.Sequential, got str"),
    ("model a Dense", fnn.Dense(1), FnnTypeError, r"model must be a fnn\.Sequential, got Dense"),
]
BAD_LOSSES = [  # (what, model, loss, error, regex)
    ("unknown loss", BIN, "hinge", FnnValueError, r"unknown loss 'hinge'; choose one of"),
    ("loss not a str", BIN, 3, FnnTypeError, r"loss must be a name \(str\), got int 3"),
    ("binary CE on a linear output", REG, "binary_cross_entropy", FnnValueError,
     r"binary_cross_entropy needs probabilities, but the output activation is 'linear'"),
    ("binary CE on a softmax output", CAT, "binary_cross_entropy", FnnValueError,
     r"binary_cross_entropy on a softmax output of 3 units"),
    ("categorical CE on 1 sigmoid unit", BIN, "categorical_cross_entropy", FnnValueError,
     r"categorical_cross_entropy needs a softmax output of k >= 2 units, the model has 1 output unit"),
]

# --------------------------------------------------------------------------- the entry points
# (model, params, x, y, loss) -> anything: the entry points that take data and targets
DATA_ENTRIES: dict[str, Callable] = {
    "fnn.objective(...)(params, x, y)": lambda m, p, x, y, loss: fnn.objective(m, loss)(p, x, y),
    "fnn.backprop.gradients": lambda m, p, x, y, loss: backprop.gradients(m, loss, p, x, y),
    "fnn.backprop.backward": lambda m, p, x, y, loss: backprop.backward(m, loss, p, x, y),
    "fnn.backprop.deltas": lambda m, p, x, y, loss: backprop.deltas(m, loss, p, x, y),
    "fnn.backprop.gradient_norms": lambda m, p, x, y, loss: backprop.gradient_norms(m, loss, p, x, y),
    "fnn.evaluate": lambda m, p, x, y, loss: fnn.evaluate(m, p, x, y, loss=loss),
    "fnn.fit": lambda m, p, x, y, loss: fit(m, p, x, y, loss=loss),
    "trainer.run": lambda m, p, x, y, loss: _trainer_run(m, p, x, y, loss),
}
# (model, params, x) -> anything: the entry points that take inputs only
X_ENTRIES: dict[str, Callable] = {
    "model.apply": lambda m, p, x: m.apply(p, x),
    "model.logits": lambda m, p, x: m.logits(p, x),
    "fnn.predict": lambda m, p, x: fnn.predict(m, p, x),
    "fnn.predict_classes": lambda m, p, x: fnn.predict_classes(m, p, x),
    "fnn.backprop.dead_units": lambda m, p, x: backprop.dead_units(m, p, x),
}
SINGLE_OK = {"model.apply", "model.logits", "fnn.predict", "fnn.predict_classes"}


def fit(model, params, x, y, **kwargs):
    """fnn.fit with the battery's small defaults (one epoch, batches of 2, KEY)."""
    kwargs = {"epochs": 1, "batch_size": 2, "key": KEY, **kwargs}
    return fnn.fit(model, params, x, y, **kwargs)


def _trainer_run(model, params, x, y, loss):
    """Trainer(model, loss).init(params) and one epoch of trainer.run: what fit does, by hand."""
    trainer = fnn.Trainer(model, loss=loss, batch_size=2)
    return trainer.run(trainer.init(params, key=KEY), x, y, epochs=1)


# a user's (init, update) pair: its state keeps no numbers
USER_OPTIMIZER = (lambda params: {"count": np.zeros((), np.int32)},
                  lambda grads, state, params=None: (jax.tree.map(lambda g: -0.1 * g, grads), state))


def _data_cases() -> list[Case]:
    cases = []
    for entry, f in DATA_ENTRIES.items():
        m, p = BIN, PARAMS[BIN]
        for what, x, error, match in X_BAD + X_BAD_BATCH_ONLY:
            cases.append(Case(entry, what, lambda bad, f=f, m=m, p=p: f(m, p, bad, Y_BIN, "binary_cross_entropy"),
                              x, error, match))
        for loss, (m, y) in PROBLEMS.items():
            p = PARAMS[m]
            call = lambda bad, f=f, m=m, p=p, loss=loss: f(m, p, X, bad, loss)  # noqa: E731
            for what, make, error, match in COMMON_Y_BAD:
                if entry == "fnn.fit" and what == "y None":  # fit also takes x as a stream of (x, y) batches
                    error, match = FnnValueError, r"y is None: pass targets, or pass x as a stream of \(x, y\) batches"
                cases.append(Case(entry, f"{loss}: {what}", call, make(y), error, match))
            for what, bad, error, match in Y_BAD[loss]:
                cases.append(Case(entry, f"{loss}: {what}", call, bad, error, match))
        for what, bad, error, match in Y_BAD_K_OUTPUTS_MSE:
            cases.append(Case(entry, f"mse, 3 outputs: {what}", lambda bad, f=f: f(CAT, PARAMS[CAT], X, bad, "mse"),
                              bad, error, match))
        for model in (BIN, CAT):
            loss = "binary_cross_entropy" if model is BIN else "categorical_cross_entropy"
            y = Y_BIN if model is BIN else Y_CAT
            for what, bad, error, match in _bad_params(model):
                cases.append(Case(entry, f"{loss}: {what}",
                                  lambda bad, f=f, m=model, y=y, loss=loss: f(m, bad, X, y, loss), bad, error, match))
        for what, bad, error, match in BAD_MODELS:
            cases.append(Case(entry, what, lambda bad, f=f: f(bad, PARAMS[BIN], X, Y_BIN, "binary_cross_entropy"),
                              bad, error, match))
        for what, m, loss, error, match in BAD_LOSSES:
            cases.append(Case(entry, what, lambda bad, f=f, m=m: f(m, PARAMS[m], X, PROBLEMS_Y[m], bad),
                              loss, error, match))
    return cases


PROBLEMS_Y = {REG: Y_REG, BIN: Y_BIN, CAT: Y_CAT}


def _x_cases() -> list[Case]:
    cases = []
    for entry, f in X_ENTRIES.items():
        m, p = BIN, PARAMS[BIN]
        extra = X_BAD_SINGLE_OK if entry in SINGLE_OK else X_BAD_BATCH_ONLY
        for what, x, error, match in X_BAD + extra:
            if entry == "fnn.backprop.dead_units" and what == "x 1-d":
                match = r"x must be 2-d \(n_samples, n_features\), got shape \(4,\)"
            cases.append(Case(entry, what, lambda bad, f=f, m=m, p=p: f(m, p, bad), x, error, match))
        for model in (BIN, CAT):
            for what, bad, error, match in _bad_params(model):
                cases.append(Case(entry, f"{'sigmoid' if model is BIN else 'softmax'} model: {what}",
                                  lambda bad, f=f, m=model: f(m, bad, X), bad, error, match))
        for what, bad, error, match in BAD_MODELS:
            if entry.startswith("model."):
                continue  # a method has its model
            cases.append(Case(entry, what, lambda bad, f=f: f(bad, PARAMS[BIN], X), bad, error, match))
    cases.append(Case("fnn.predict_classes", "a regression model", lambda m: fnn.predict_classes(m, PARAMS[REG], X),
                      REG, FnnValueError,
                      r"predict_classes needs a sigmoid or softmax output, the model's is 'linear'"))
    return cases


# --------------------------------------------------------------------------- losses
# name -> (function, loss kind, good predictions (4, k)); *_grad beside each loss
_PROBS1 = np.array([[0.2], [0.7], [0.9], [0.4]], np.float32)
_PROBS3 = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3], [0.2, 0.2, 0.6]], np.float32)
_LOGITS1 = np.array([[-1.0], [0.5], [2.0], [-0.3]], np.float32)
_LOGITS3 = np.log(_PROBS3)
LOSS_FUNCTIONS = {
    "mse": (losses.mse, "mse", Y_REG.copy()),
    "binary_cross_entropy": (losses.binary_cross_entropy, "binary_cross_entropy", _PROBS1),
    "sigmoid_binary_cross_entropy": (losses.sigmoid_binary_cross_entropy, "binary_cross_entropy", _LOGITS1),
    "categorical_cross_entropy": (losses.categorical_cross_entropy, "categorical_cross_entropy", _PROBS3),
    "softmax_cross_entropy": (losses.softmax_cross_entropy, "categorical_cross_entropy", _LOGITS3),
    "mae": (losses.mae, "mse", Y_REG.copy()),
    "huber": (losses.huber, "mse", Y_REG.copy()),
}
LOSS_FUNCTIONS.update({f"{name}_grad": (getattr(losses, f"{name}_grad"), kind, pred)
                       for name, (_, kind, pred) in list(LOSS_FUNCTIONS.items())})


def _loss_cases() -> list[Case]:
    cases = []
    for name, (fn, kind, pred) in LOSS_FUNCTIONS.items():
        entry = f"fnn.losses.{name}"
        _, y = PROBLEMS[kind]
        y = X[:, :1] if kind == "mse" else y  # mse against 0.2 etc.: any finite target
        on_pred = lambda bad, fn=fn, y=y: fn(bad, y)  # noqa: E731
        on_y = lambda bad, fn=fn, pred=pred: fn(pred, bad)  # noqa: E731
        k = pred.shape[1]
        cases += [
            Case(entry, "predictions with NaN", on_pred, _with(pred, (1, 0), NaN), FnnValueError,
                 r"predictions contains 1 non-finite value\(s\); the first is nan at row 1, column 0"),
            Case(entry, "predictions with inf", on_pred, _with(pred, (2, k - 1), INF), FnnValueError,
                 rf"predictions contains 1 non-finite value\(s\); the first is inf at row 2, column {k - 1}"),
            Case(entry, "predictions 0-d", on_pred, np.float32(0.5), FnnValueError,
                 r"predictions must be \(n_samples, n_outputs\), got shape \(\)"),
            Case(entry, "predictions 3-d", on_pred, pred[None], FnnValueError,
                 rf"predictions must be \(n_samples, n_outputs\), got shape \(1, 4, {k}\)"),
            Case(entry, "predictions with 0 samples", lambda bad, fn=fn, y=y: fn(bad, y[:0]), pred[:0], FnnValueError,
                 rf"predictions has 0 samples \(shape \(0, {k}\)\)"),
            Case(entry, "predictions with 0 outputs", on_pred, pred[:, :0], FnnValueError,
                 r"predictions has 0 outputs \(shape \(4, 0\)\)"),
            Case(entry, "predictions of strings", on_pred, pred.astype(str), FnnTypeError,
                 r"predictions must have a numeric dtype .*got dtype <U"),
            Case(entry, "predictions complex", on_pred, pred.astype(np.complex64), FnnTypeError,
                 r"predictions has complex dtype complex64"),
            Case(entry, "predictions None", on_pred, None, FnnTypeError, r"predictions must be an array, got None"),
            Case(entry, "y shorter than predictions", on_y, np.asarray(y)[:3], FnnValueError,
                 r"predictions and y have different numbers of samples: 4 and 3"),
        ]
        for what, make, error, match in COMMON_Y_BAD:
            if what in ("y shorter than x", "y longer than x"):
                continue
            cases.append(Case(entry, what, on_y, make(np.asarray(y)), error, match))
        for what, bad, error, match in Y_BAD[kind]:
            if "for 1 output" in what:
                continue
            cases.append(Case(entry, what, on_y, bad, error, match))
        if kind == "mse":
            cases.append(Case(entry, "y (n,) for 3 outputs", lambda bad, fn=fn: fn(_PROBS3, bad), np.zeros(N),
                              FnnValueError, r"y has shape \(4,\) but the model has 3 outputs"))
        if kind == "binary_cross_entropy":
            cases.append(Case(entry, "y (n, 2) for 1 output", on_y, np.zeros((N, 2)), FnnValueError,
                              r"y has 2 columns \(shape \(4, 2\)\) but the model has 1 outputs"))
        if name.startswith(("binary_cross_entropy", "categorical_cross_entropy")):
            cases += [
                Case(entry, "probabilities above 1", on_pred, _with(pred, (2, 0), 1.5), FnnValueError,
                     r"predictions must be probabilities in \[0, 1\]; found 1.5 at row 2, column 0"),
                Case(entry, "probabilities below 0", on_pred, _with(pred, (3, 0), -0.25), FnnValueError,
                     r"predictions must be probabilities in \[0, 1\]; found -0.25 at row 3, column 0"),
            ]
    cases += _loss_parameter_cases()
    cases += [
        Case("fnn.losses.resolve", "unknown loss", lambda bad: losses.resolve(bad, "sigmoid", 1), "hinge",
             FnnValueError, r"unknown loss 'hinge'"),
        Case("fnn.losses.prepare_targets", "unknown loss", lambda bad: losses.prepare_targets(Y_BIN, bad, 1), "l1",
             FnnValueError, r"unknown loss 'l1'"),
    ]
    return cases


def _per_sample_total(pred, y):  # a callable loss returning one number, not one per sample
    return jnp.sum((pred - y) ** 2)


def _loss_parameter_cases() -> list[Case]:
    """huber's delta, binary focal's gamma and alpha, a callable loss: each bad value, at each place it is taken."""
    focal = losses.sigmoid_binary_focal_cross_entropy
    focal_grad = losses.sigmoid_binary_focal_cross_entropy_grad
    delta_bad = [("delta 0", 0.0, FnnValueError, r"huber delta must be in \(0, inf\], got 0.0"),
                 ("delta -1", -1.0, FnnValueError, r"huber delta must be in \(0, inf\], got -1.0"),
                 ("delta NaN", NaN, FnnValueError, r"huber delta must be finite, got nan"),
                 ("delta a str", "1", FnnTypeError, r"huber delta must be a real number, got str '1'"),
                 ("delta None", None, FnnTypeError, r"huber delta must be a real number, got NoneType None")]
    gamma_bad = [("gamma -0.5", -0.5, FnnValueError, r"binary_focal gamma must be in \[0, inf\], got -0.5"),
                 ("gamma inf", INF, FnnValueError, r"binary_focal gamma must be finite, got inf"),
                 ("gamma a str", "2", FnnTypeError, r"binary_focal gamma must be a real number, got str '2'")]
    alpha_bad = [("alpha 1.5", 1.5, FnnValueError, r"binary_focal alpha must be in \[0, 1\], got 1.5"),
                 ("alpha -0.1", -0.1, FnnValueError, r"binary_focal alpha must be in \[0, 1\], got -0.1"),
                 ("alpha NaN", NaN, FnnValueError, r"binary_focal alpha must be finite, got nan"),
                 ("alpha a list", [0.25], FnnTypeError, r"binary_focal alpha must be a real number, got list")]
    cases = []
    for what, bad, error, match in delta_bad:
        cases += [Case("fnn.losses.huber_loss", what, losses.huber_loss, bad, error, match),
                  Case("fnn.losses.huber", what, lambda bad: losses.huber(Y_REG, Y_REG, delta=bad), bad, error, match),
                  Case("fnn.losses.huber_grad", what, lambda bad: losses.huber_grad(Y_REG, Y_REG, delta=bad), bad,
                       error, match)]
    for what, bad, error, match in gamma_bad:
        cases += [Case("fnn.losses.binary_focal_loss", what, lambda bad: losses.binary_focal_loss(gamma=bad), bad,
                       error, match),
                  Case("fnn.losses.sigmoid_binary_focal_cross_entropy", what,
                       lambda bad: focal(_LOGITS1, Y_BIN, gamma=bad), bad, error, match),
                  Case("fnn.losses.sigmoid_binary_focal_cross_entropy_grad", what,
                       lambda bad: focal_grad(_LOGITS1, Y_BIN, gamma=bad), bad, error, match)]
    for what, bad, error, match in alpha_bad:
        cases += [Case("fnn.losses.binary_focal_loss", what, lambda bad: losses.binary_focal_loss(alpha=bad), bad,
                       error, match),
                  Case("fnn.losses.sigmoid_binary_focal_cross_entropy", what,
                       lambda bad: focal(_LOGITS1, Y_BIN, alpha=bad), bad, error, match)]
    for entry, fn in (("fnn.losses.sigmoid_binary_focal_cross_entropy", focal),
                      ("fnn.losses.sigmoid_binary_focal_cross_entropy_grad", focal_grad)):
        cases += [
            Case(entry, "predictions with NaN", lambda bad, fn=fn: fn(bad, Y_BIN), _with(_LOGITS1, (1, 0), NaN),
                 FnnValueError, r"predictions contains 1 non-finite value\(s\); the first is nan at row 1"),
            Case(entry, "label 2", lambda bad, fn=fn: fn(_LOGITS1, bad), np.array([0, 2, 1, 0]), FnnValueError,
                 r"binary_focal_cross_entropy needs labels in \[0, 1\] in y \(0/1 classes, or soft labels\); "
                 r"found 2 at row 1"),
            Case(entry, "y None", lambda bad, fn=fn: fn(_LOGITS1, bad), None, FnnTypeError,
                 r"y must be an array, got None"),
        ]
    cases += [
        Case("fnn.losses.from_callable", "not callable", losses.from_callable, "mse", FnnTypeError,
             r"a callable loss must be callable, got str 'mse'"),
        Case("fnn.objective", "a callable loss returning a scalar",
             lambda bad: fnn.objective(REG, bad)(PARAMS[REG], X, Y_REG), _per_sample_total, FnnValueError,
             r"loss '_per_sample_total' returned shape \(\) for 4 samples; a callable loss\(pred, y\) must "
             r"return one loss per sample, shape \(4,\)"),
        Case("fnn.backprop.gradients", "a callable loss", lambda bad: backprop.gradients(REG, bad, PARAMS[REG], X, Y_REG),
             _per_sample_total, FnnValueError,
             r"loss '_per_sample_total' is a callable without a hand-written gradient, which fnn.backprop needs; "
             r"differentiate with jax.grad\(fnn.objective\(model, loss\)\)"),
        Case("fnn.losses.resolve", "binary focal CE on a softmax output",
             lambda bad: losses.resolve(bad, "softmax", 3), "binary_focal_crossentropy", FnnValueError,
             r"binary_focal_cross_entropy on a softmax output of 3 units: use Dense\(1, activation='sigmoid'\)"),
        Case("fnn.losses.resolve", "binary focal CE on a linear output",
             lambda bad: losses.resolve(bad, "linear", 1), losses.binary_focal_loss(3.0), FnnValueError,
             r"binary_focal_cross_entropy needs probabilities, but the output activation is 'linear'"),
    ]
    return cases


def _activation_cases() -> list[Case]:
    """fnn.Activation's every parameter, and the layers and passes that need a derivative."""
    sin = jnp.sin
    gelu_model = fnn.Sequential([fnn.Dense(3, activation=jax.nn.gelu), fnn.Dense(1)])
    return [
        Case("fnn.Activation", "fn not callable", fnn.Activation, 3, FnnTypeError,
             r"Activation fn must be callable \(z -> f\(z\)\), got int 3"),
        Case("fnn.Activation", "fn None", fnn.Activation, None, FnnTypeError,
             r"Activation fn must be callable \(z -> f\(z\)\), got NoneType"),
        Case("fnn.Activation", "deriv not callable", lambda bad: fnn.Activation(sin, bad), "cos", FnnTypeError,
             r"Activation deriv must be callable or None, got str 'cos'; pass the derivative as a function"),
        Case("fnn.Activation", "deriv an array", lambda bad: fnn.Activation(sin, bad), np.ones(3), FnnTypeError,
             r"Activation deriv must be callable or None, got ndarray"),
        Case("fnn.Activation", "backward not callable", lambda bad: fnn.Activation(sin, jnp.cos, backward=bad), 1.0,
             FnnTypeError, r"Activation backward must be callable or None, got float 1.0"),
        Case("fnn.Activation", "name not a str", lambda bad: fnn.Activation(sin, jnp.cos, name=bad), 7, FnnTypeError,
             r"Activation name must be a str, got int 7"),
        Case("fnn.Activation", "elementwise not a bool", lambda bad: fnn.Activation(sin, jnp.cos, elementwise=bad),
             "yes", FnnTypeError, r"Activation elementwise must be True or False, got 'yes'"),
        Case("fnn.Activation", "not elementwise, no backward",
             lambda bad: fnn.Activation(sin, jnp.cos, elementwise=bad), False, FnnValueError,
             r"an Activation that is not elementwise needs backward=\(z, g\) -> ∂L/∂z"),
        Case("fnn.Activation.check", "no derivative", lambda bad: fnn.Activation(bad).check(), sin, FnnValueError,
             r"activation 'sin' has no derivative to check; pass one: fnn.Activation\(f, df\)"),
        Case("fnn.backprop.gradients", "a layer without a derivative",
             lambda bad: backprop.gradients(bad, "mse", PARAMS[REG], X, Y_REG), gelu_model, FnnValueError,
             r"layer 0, Dense\(3, activation=gelu\), has no hand-written derivative, which fnn.backprop needs; "
             r"pass activation=fnn.Activation\(f, df\)"),
        Case("fnn.backprop.trace", "a layer without a derivative",
             lambda bad: backprop.trace(bad, "mse", PARAMS[REG], X, Y_REG), gelu_model, FnnValueError,
             r"layer 0, Dense\(3, activation=gelu\), has no hand-written derivative"),
        Case("fnn.save", "a model with a user's activation",
             lambda bad: fnn.save(_scratch() / "user.ckpt", PARAMS[REG], model=bad), gelu_model, FnnValueError,
             r"layer 0's activation 'gelu' is a user's function, which a checkpoint cannot store"),
        Case("fnn.Trainer", "ModelCheckpoint with a user's activation",
             lambda bad: fnn.Trainer(bad, callbacks=[callbacks.ModelCheckpoint(_scratch() / "c.ckpt")]), gelu_model,
             FnnValueError, r"ModelCheckpoint stores the model with the params, but layer 0's activation gelu is a "
                            r"user's function, which a checkpoint cannot store"),
        Case("fnn.Dense", "activation a dict", lambda bad: fnn.Dense(2, activation=bad), {"relu": 1}, FnnTypeError,
             r"activation must be a name \(str\) or None, got dict .*or a callable z -> f\(z\)"),
    ]


# --------------------------------------------------------------------------- models
def _model_cases() -> list[Case]:
    dense = lambda bad: fnn.Dense(bad)  # noqa: E731
    cases = [
        Case("fnn.Dense", "units 0", dense, 0, FnnValueError, r"Dense units must be an integer >= 1, got 0"),
        Case("fnn.Dense", "units -2", dense, -2, FnnValueError, r"Dense units must be an integer >= 1, got -2"),
        Case("fnn.Dense", "units 2.5", dense, 2.5, FnnTypeError, r"Dense units must be an integer >= 1, got float 2.5"),
        Case("fnn.Dense", "units 4.0", dense, 4.0, FnnTypeError, r"Dense units must be an integer >= 1, got float 4.0"),
        Case("fnn.Dense", "units '4'", dense, "4", FnnTypeError, r"Dense units must be an integer >= 1, got str '4'"),
        Case("fnn.Dense", "units None", dense, None, FnnTypeError,
             r"Dense units must be an integer >= 1, got NoneType"),
        Case("fnn.Dense", "units True", dense, True, FnnTypeError,
             r"Dense units must be an integer >= 1, got bool True"),
        Case("fnn.Dense", "units NaN", dense, NaN, FnnTypeError, r"Dense units must be an integer >= 1, got float nan"),
        Case("fnn.Dense", "unknown activation", lambda bad: fnn.Dense(2, activation=bad), "relu6", FnnValueError,
             r"unknown activation 'relu6'; choose one of"),
        Case("fnn.Dense", "activation not a str", lambda bad: fnn.Dense(2, activation=bad), 1, FnnTypeError,
             r"activation must be a name \(str\) or None, got int 1"),
        Case("fnn.Dense", "unknown kernel_init", lambda bad: fnn.Dense(2, kernel_init=bad), "xavier", FnnValueError,
             r"unknown initializer 'xavier'; choose one of"),
        Case("fnn.Dense", "softmax over 1 unit", lambda bad: fnn.Dense(bad, activation="softmax"), 1, FnnValueError,
             r"softmax over a single unit is always 1"),
    ]
    input_dim = lambda bad: fnn.Dense(4, input_dim=bad)  # noqa: E731
    cases += [
        Case("fnn.Dense", "input_dim 0", input_dim, 0, FnnValueError,
             r"Dense input_dim must be an integer >= 1, got 0"),
        Case("fnn.Dense", "input_dim -1", input_dim, -1, FnnValueError,
             r"Dense input_dim must be an integer >= 1, got -1"),
        Case("fnn.Dense", "input_dim 2.5", input_dim, 2.5, FnnTypeError,
             r"Dense input_dim must be an integer >= 1, got float 2.5"),
        Case("fnn.Dense", "input_dim '2'", input_dim, "2", FnnTypeError,
             r"Dense input_dim must be an integer >= 1, got str '2'"),
        Case("fnn.Dense", "input_dim True", input_dim, True, FnnTypeError,
             r"Dense input_dim must be an integer >= 1, got bool True"),
    ]
    input_shape = lambda bad: fnn.Dense(4, input_shape=bad)  # noqa: E731
    cases += [
        Case("fnn.Dense", "input_shape of 2 axes", input_shape, (8, 8), FnnValueError,
             r"Dense input_shape must be a 1-tuple \(n_features,\), e\.g\. input_shape=\(2,\), got \(8, 8\)"),
        Case("fnn.Dense", "input_shape an int", input_shape, 2, FnnValueError,
             r"Dense input_shape must be a 1-tuple \(n_features,\).*got 2"),
        Case("fnn.Dense", "input_shape (0,)", input_shape, (0,), FnnValueError,
             r"Dense input_shape\[0\] must be an integer >= 1, got 0"),
        Case("fnn.Dense", "input_shape (2.5,)", input_shape, (2.5,), FnnTypeError,
             r"Dense input_shape\[0\] must be an integer >= 1, got float 2.5"),
        Case("fnn.Dense", "input_shape against input_dim", lambda bad: fnn.Dense(4, input_shape=bad, input_dim=3),
             (2,), FnnValueError, r"Dense input_shape=\(2,\) disagrees with input_dim=3; give one of them"),
        Case("fnn.Sequential", "input_shape on layer 1", lambda bad: fnn.Sequential(bad),
             [fnn.Dense(3), fnn.Dense(1, input_shape=(3,))], FnnValueError,
             r"Sequential layer 1, Dense\(1, input_dim=3\), declares input_dim, but only the first layer may"),
        Case("model.init", "input_dim against input_shape",
             lambda bad: fnn.Sequential([fnn.Dense(3, input_shape=(2,)), fnn.Dense(1)]).init(0, bad), 5, FnnValueError,
             r"input_dim=5 disagrees with the first layer's Dense\(3, input_dim=2\)"),
    ]
    seq = lambda bad: fnn.Sequential(bad)  # noqa: E731
    cases += [
        Case("fnn.Sequential", "no layers", seq, [], FnnValueError, r"Sequential needs at least one layer"),
        Case("fnn.Sequential", "a string", seq, "dense", FnnTypeError,
             r"Sequential takes a list of Dense layers, got str"),
        Case("fnn.Sequential", "None", seq, None, FnnTypeError,
             r"Sequential takes a list of Dense layers, got NoneType"),
        Case("fnn.Sequential", "a non-Dense layer", seq, [fnn.Dense(2), "relu"], FnnTypeError,
             r"Sequential layer 1 must be a fnn\.Dense or fnn\.Dropout, got str 'relu'"),
        Case("fnn.Sequential", "an int as a layer", seq, [3, fnn.Dense(1)], FnnTypeError,
             r"Sequential layer 0 must be a fnn\.Dense or fnn\.Dropout, got int 3"),
        Case("fnn.Sequential", "input_dim on a later layer",
             lambda bad: fnn.Sequential([fnn.Dense(3), fnn.Dense(1, input_dim=bad)]), 3, FnnValueError,
             r"Sequential layer 1, Dense\(1, input_dim=3\), declares input_dim, but only the first layer may: .*; "
             r"remove input_dim from layer 1"),
    ]
    init = lambda bad: BIN.init(bad, 2)  # noqa: E731
    dim = lambda bad: BIN.init(KEY, bad)  # noqa: E731
    cases += [
        Case("model.init", "key a negative int", init, -1, FnnValueError,
             r"key as an integer seed must be in \[0, 2\*\*32 - 1\], got -1"),
        Case("model.init", "key a 33-bit int", init, 2**32, FnnValueError,
             r"key as an integer seed must be in \[0, 2\*\*32 - 1\], got 4294967296"),
        Case("model.init", "key a bool", init, True, FnnTypeError,
             r"key must be a JAX PRNG key such as jax\.random\.key\(0\), or an integer seed >= 0, got bool True"),
        Case("model.init", "key None", init, None, FnnTypeError, r"key must be a JAX PRNG key .*got None"),
        Case("model.init", "key a float array", init, np.zeros(2, np.float32), FnnTypeError,
             r"key must be a JAX PRNG key .*got an array of dtype float32 and shape \(2,\)"),
        Case("model.init", "key a batch of keys", init, jax.random.split(KEY, 2), FnnValueError,
             r"key must be a single key \(shape \(\)\), got a batch of shape \(2,\)"),
        Case("model.init", "input_dim 0", dim, 0, FnnValueError, r"input_dim must be an integer >= 1, got 0"),
        Case("model.init", "input_dim -1", dim, -1, FnnValueError, r"input_dim must be an integer >= 1, got -1"),
        Case("model.init", "input_dim 2.5", dim, 2.5, FnnTypeError,
             r"input_dim must be an integer >= 1, got float 2.5"),
        Case("model.init", "input_dim '2'", dim, "2", FnnTypeError, r"input_dim must be an integer >= 1, got str '2'"),
        Case("model.init", "input_dim left out, none declared", lambda bad: BIN.init(KEY, bad), None, FnnTypeError,
             r"input_dim must be an integer >= 1, got None: pass model\.init\(key, input_dim\), or declare it on "
             r"the first layer"),
        Case("model.init", "input_dim disagreeing with the first layer's",
             lambda bad: fnn.Sequential([fnn.Dense(3, input_dim=2), fnn.Dense(1)]).init(KEY, bad), 3, FnnValueError,
             r"input_dim=3 disagrees with the first layer's Dense\(3, input_dim=2\); pass input_dim=2 or leave it out"),
        Case("model.init", "dtype int32", lambda bad: BIN.init(KEY, 2, dtype=bad), jnp.int32, FnnTypeError,
             r"dtype must be a floating dtype, got int32"),
        Case("model.init", "dtype complex64", lambda bad: BIN.init(KEY, 2, dtype=bad), jnp.complex64, FnnTypeError,
             r"dtype must be a floating dtype, got complex64"),
        Case("model.init", "dtype an unknown name", lambda bad: BIN.init(KEY, 2, dtype=bad), "float33", FnnTypeError,
             r"dtype must be a floating dtype, got 'float33'"),
    ]
    cases += [
        Case("fnn.activations.get", "an unknown name", activations.get, "relu6", FnnValueError,
             r"unknown activation 'relu6'; choose one of"),
        Case("fnn.activations.get", "an int", activations.get, 3, FnnTypeError,
             r"activation must be a name \(str\) or None, got int 3"),
        Case("fnn.initializers.get", "an unknown name", initializers.get, "lecun", FnnValueError,
             r"unknown initializer 'lecun'; choose one of"),
        Case("fnn.initializers.get", "an int", initializers.get, 3, FnnTypeError,
             r"initializer must be a name \(str\), got int"),
        Case("fnn.initializers.glorot_uniform", "key a negative int",
             lambda bad: initializers.glorot_uniform(bad, (2, 3)), -1, FnnValueError,
             r"key as an integer seed must be in \[0, 2\*\*32 - 1\], got -1"),
        Case("fnn.initializers.glorot_uniform", "a negative dimension",
             lambda bad: initializers.glorot_uniform(KEY, bad), (2, -3), FnnValueError,
             r"must be an integer >= 1, got -3"),
    ]
    build = lambda bad: fnn.objective(bad, "mse")  # noqa: E731
    cases += [Case("fnn.objective", what, build, bad, error, match) for what, bad, error, match in BAD_MODELS]
    cases += [Case("fnn.objective", what, lambda bad, m=m: fnn.objective(m, bad), loss, error, match)
              for what, m, loss, error, match in BAD_LOSSES]
    cases.append(Case("fnn.objective", "loss a number", lambda bad: fnn.objective(BIN, bad), 3, FnnTypeError,
                      r"loss must be a name \(str\), got int 3"))
    return cases + _dropout_and_regularizer_cases()


def _dropout_and_regularizer_cases() -> list[Case]:
    """Dropout's rate must be in [0, 1); a regularizer's strengths >= 0; names must be known."""
    rate = r"Dropout rate must be in \[0, 1\), the fraction of units dropped"
    cases = [Case("fnn.Dropout", what, fnn.Dropout, bad, FnnValueError, rate + r".*got " + got)
             for what, bad, got in [("rate 1", 1, r"1\.0"), ("rate 1.5", 1.5, r"1\.5"), ("rate -0.1", -0.1, r"-0\.1")]]
    cases += [
        Case("fnn.Dropout", "rate NaN", fnn.Dropout, NaN, FnnValueError, r"Dropout rate must be finite, got nan"),
        Case("fnn.Dropout", "rate inf", fnn.Dropout, INF, FnnValueError, r"Dropout rate must be finite, got inf"),
        Case("fnn.Dropout", "rate a string", fnn.Dropout, "0.2", FnnTypeError,
             r"Dropout rate must be a real number, got str '0\.2'"),
        Case("fnn.Dropout", "rate None", fnn.Dropout, None, FnnTypeError, r"Dropout rate must be a real number, got None"),
        Case("fnn.Dropout", "rate True", fnn.Dropout, True, FnnTypeError, r"Dropout rate must be a real number, got bool"),
        Case("fnn.Sequential", "Dropout last", lambda bad: fnn.Sequential([fnn.Dense(2), bad]), fnn.Dropout(0.2),
             FnnValueError, r"Sequential ends with Dropout\(0\.2\), which would drop the model's outputs"),
        Case("fnn.Sequential", "two Dropouts in a row", lambda bad: fnn.Sequential([fnn.Dense(2), bad, bad, fnn.Dense(1)]),
             fnn.Dropout(0.5), FnnValueError, r"two Dropout layers in a row; use one, Dropout\(0\.75\)"),
    ]
    for name, make in [("l1", fnn.regularizers.l1), ("l2", fnn.regularizers.l2)]:
        cases += [
            Case(f"fnn.regularizers.{name}", "negative strength", make, -1e-4, FnnValueError,
                 rf"fnn\.regularizers\.{name} strength must be >= 0, got -0\.0001"),
            Case(f"fnn.regularizers.{name}", "strength NaN", make, NaN, FnnValueError, r"strength must be finite, got nan"),
            Case(f"fnn.regularizers.{name}", "strength a string", make, "0.1", FnnTypeError,
                 r"strength must be a real number, got str"),
        ]
    cases += [
        Case("fnn.regularizers.l1_l2", "negative l1", lambda bad: fnn.regularizers.l1_l2(l1=bad), -0.5, FnnValueError,
             r"fnn\.regularizers\.l1_l2 l1 strength must be >= 0, got -0\.5"),
        Case("fnn.regularizers.l1_l2", "negative l2", lambda bad: fnn.regularizers.l1_l2(l2=bad), -0.5, FnnValueError,
             r"fnn\.regularizers\.l1_l2 l2 strength must be >= 0, got -0\.5"),
        Case("fnn.Dense", "unknown kernel_regularizer", lambda bad: fnn.Dense(2, kernel_regularizer=bad), "l3",
             FnnValueError, r"unknown Dense kernel_regularizer 'l3'; choose one of \['l1', 'l2', 'l1_l2'\]"),
        Case("fnn.Dense", "bias_regularizer a number", lambda bad: fnn.Dense(2, bias_regularizer=bad), 0.01,
             FnnTypeError, r"Dense bias_regularizer must be None, a name .*got float 0\.01"),
        Case("fnn.Dense", "kernel_regularizer a negative config", lambda bad: fnn.Dense(2, kernel_regularizer=bad),
             {"l2": -1.0}, FnnValueError, r"regularizer strength l2 must be >= 0, got -1\.0"),
    ]
    return cases


# --------------------------------------------------------------------------- training: shared pieces
_TRAINER = fnn.Trainer(BIN, batch_size=2)  # trainer.init and trainer.run cases; building it compiles nothing
EARLY_LOSS = (callbacks.EarlyStopping(monitor="loss"),)


def _state(model: fnn.Sequential, rules=(), epoch: int = 0) -> fnn.TrainState:
    """A fresh TrainState of `model`'s params for a trainer with `rules` (built on the host)."""
    state = fnn.Trainer(model, callbacks=list(rules)).init(PARAMS[model], key=KEY)
    return state._replace(epoch=np.asarray(epoch, np.int32)) if epoch else state


BAD_CALLBACK_LISTS = [  # (what, callbacks=, error, regex): fit, Trainer and sweep refuse each
    ("not a list", 3, FnnTypeError, r"callbacks must be a list of fnn\.callbacks objects, got int"),
    ("a string", "early_stopping", FnnTypeError, r"callbacks must be a list of fnn\.callbacks objects, got str"),
    ("holding a number", [3], FnnTypeError,
     r"callbacks\[0\] must be an fnn\.callbacks object \(a Rule for the compiled run, or a Callback for the host\), "
     r"got int 3"),
    ("holding a number after a callback", [callbacks.TerminateOnNaN(), 3], FnnTypeError,
     r"callbacks\[1\] must be an fnn\.callbacks object"),
    ("holding a Callback class, not an instance", [callbacks.EarlyStopping], FnnTypeError,
     r"callbacks\[0\] is the class EarlyStopping, not an instance: write EarlyStopping\(\.\.\.\)"),
    ("holding a function", [lambda epoch, logs: None], FnnTypeError,
     r"callbacks\[0\] must be an fnn\.callbacks object .*got function"),
]
# a compiled callback monitoring a validation figure in a run without validation data
NO_VALIDATION = (r"{rule} monitors '{monitor}', which this run does not log \(this run has no validation data: pass "
                 r"validation_data= or validation_split=")

# --------------------------------------------------------------------------- fit's settings
def _fit_cases() -> list[Case]:
    def kw(name):
        return lambda bad: fit(BIN, PARAMS[BIN], X, Y_BIN, **{name: bad})

    nan_x = _with(X, (2, 1), NaN)
    rows = [
        ("epochs -1", "epochs", -1, FnnValueError, r"epochs must be an integer >= 0, got -1"),
        ("epochs 2.5", "epochs", 2.5, FnnTypeError, r"epochs must be an integer >= 0, got float 2.5"),
        ("epochs None", "epochs", None, FnnTypeError, r"epochs must be an integer >= 0, got NoneType None"),
        ("batch_size 0", "batch_size", 0, FnnValueError, r"batch_size must be an integer >= 1, got 0"),
        ("batch_size -8", "batch_size", -8, FnnValueError, r"batch_size must be an integer >= 1, got -8"),
        ("batch_size 1.5", "batch_size", 1.5, FnnTypeError, r"batch_size must be an integer >= 1, got float 1.5"),
        ("key a negative int", "key", -1, FnnValueError,
         r"key as an integer seed must be in \[0, 2\*\*32 - 1\], got -1"),
        ("key a string", "key", "seed", FnnTypeError, r"key must be a JAX PRNG key .*got str"),
        ("optimizer an unknown name", "optimizer", "adadelta", FnnValueError,
         r"unknown optimizer 'adadelta'; choose one of \['adagrad', 'adam', 'adamw', 'lion', 'momentum', 'nesterov', "
         r"'rmsprop', 'sgd'\]"),
        ("optimizer a function", "optimizer", optim.sgd, FnnTypeError, r"optimizer must be an fnn\.optim\.Optimizer"),
        ("validation_split 1.5", "validation_split", 1.5, FnnValueError,
         r"validation_split must be in \(0, 1\), got 1.5"),
        ("validation_split -0.2", "validation_split", -0.2, FnnValueError,
         r"validation_split must be in \(0, 1\), got -0.2"),
        ("validation_split NaN", "validation_split", NaN, FnnValueError, r"validation_split must be finite, got nan"),
        ("validation_split 0.1 of 4 samples", "validation_split", 0.1, FnnValueError,
         r"validation_split=0.1 of 4 samples leaves an empty training or validation set"),
        ("validation_data of 4 arrays", "validation_data", (X, Y_BIN, np.ones(N), Y_BIN), FnnTypeError,
         r"validation_data must be a pair \(x_val, y_val\) or a triple \(x_val, y_val, sample_weight_val\), "
         r"got a sequence of 4"),
        ("validation_data a dict", "validation_data", {"x": X}, FnnTypeError,
         r"validation_data must be a pair \(x_val, y_val\) or a triple .*got dict"),
        ("validation_data weights of the wrong length", "validation_data", (X, Y_BIN, np.ones(3)), FnnValueError,
         r"sample_weight must have one weight per sample, shape \(4,\), got \(3,\)"),
        ("validation_data weights negative", "validation_data", (X, Y_BIN, np.array([1.0, -1.0, 1.0, 1.0])),
         FnnValueError, r"sample_weight\[1\] = -1.0 is negative"),
        ("epochs 10.5", "epochs", 10.5, FnnTypeError,
         r"epochs must be an integer >= 0, got float 10.5, which is not a whole number; pass 10 or 11"),
        ("epochs inf", "epochs", float("inf"), FnnTypeError, r"epochs must be an integer >= 0, got float inf"),
        ("batch_size 16.5", "batch_size", 16.5, FnnTypeError,
         r"batch_size must be an integer >= 1, got float 16.5, which is not a whole number; pass 16 or 17"),
        ("verbose 1.5", "verbose", 1.5, FnnTypeError, r"verbose must be an integer >= 0, got float 1.5"),
        ("metrics an unknown name", "metrics", ["f1"], FnnValueError,
         r"unknown metric 'f1' in metrics=; choose from \['accuracy', 'acc', 'mae', 'mean_absolute_error', 'mse', "
         r"'mean_squared_error', 'precision', 'recall', 'auc'\]"),
        ("metrics a Keras name fnn lacks", "metrics", ["accuracy", "top_k_categorical_accuracy"], FnnValueError,
         r"unknown metric 'top_k_categorical_accuracy'"),
        ("metrics a function", "metrics", [np.mean], FnnTypeError, r"metrics\[0\] must be a metric name"),
        ("metrics a number", "metrics", 3, FnnTypeError, r"metrics must be a list of metric names .*got int"),
        ("verbose -1", "verbose", -1, FnnValueError, r"verbose must be an integer >= 0, got -1"),
        ("verbose 'loud'", "verbose", "loud", FnnTypeError, r"verbose must be an integer >= 0, got str 'loud'"),
        ("shuffle 1", "shuffle", 1, FnnTypeError, r"shuffle must be True or False, got int 1"),
        ("devices a string", "devices", "cpu", FnnTypeError,
         r"devices must be a non-empty list of jax devices \(e\.g\. jax\.devices\(\)\) or a Mesh"),
        ("sample_weight of the wrong length", "sample_weight", np.ones(3), FnnValueError,
         r"sample_weight must have one weight per sample, shape \(4,\), got \(3,\)"),
        ("sample_weight negative", "sample_weight", np.array([1.0, -1.0, 1.0, 1.0]), FnnValueError,
         r"sample_weight\[1\] = -1.0 is negative"),
        ("sample_weight NaN", "sample_weight", np.array([1.0, NaN, 1.0, 1.0]), FnnValueError,
         r"sample_weight contains 1 non-finite"),
        ("sample_weight all 0", "sample_weight", np.zeros(4), FnnValueError, r"every sample has weight 0"),
        ("sample_weight strings", "sample_weight", np.array(["a"] * 4), FnnTypeError, r"sample_weight must have"),
        ("class_weight a list", "class_weight", [1.0, 2.0], FnnTypeError, r"class_weight must be a non-empty dict"),
        ("class_weight empty", "class_weight", {}, FnnTypeError, r"class_weight must be a non-empty dict"),
        ("class_weight of class 2 for 2 classes", "class_weight", {2: 1.0}, FnnValueError,
         r"class_weight key 2 is not a class label of this model \(0\.\.1\)"),
        ("class_weight negative", "class_weight", {0: -1.0}, FnnValueError, r"class_weight\[0\] must be in"),
        ("class_weight NaN", "class_weight", {1: NaN}, FnnValueError, r"class_weight\[1\] must be finite"),
        # callbacks=: the list itself, then what a run's callbacks need of the run
        *((f"callbacks {what}", "callbacks", bad, error, match) for what, bad, error, match in BAD_CALLBACK_LISTS),
        ("EarlyStopping on val_loss without validation data", "callbacks", [callbacks.EarlyStopping(patience=2)],
         FnnValueError, NO_VALIDATION.format(rule="EarlyStopping", monitor="val_loss")),
        ("ReduceLROnPlateau on val_loss without validation data", "callbacks", [callbacks.ReduceLROnPlateau()],
         FnnValueError, NO_VALIDATION.format(rule="ReduceLROnPlateau", monitor="val_loss")),
        ("TargetLoss on val_accuracy without validation data", "callbacks",
         [callbacks.TargetLoss(0.9, monitor="val_accuracy")], FnnValueError,
         NO_VALIDATION.format(rule="TargetLoss", monitor="val_accuracy")),
        ("EarlyStopping on a figure never logged", "callbacks", [callbacks.EarlyStopping(monitor="mae")],
         FnnValueError, r"EarlyStopping monitors 'mae', which this run does not log; it logs \['loss', 'accuracy'\]"),
        # initial_state=: a TrainState or a ModelCheckpoint path
        ("initial_state a number", "initial_state", 3, FnnTypeError,
         r"initial_state must be a fnn\.TrainState or the path of a ModelCheckpoint file, got int"),
        ("initial_state the params", "initial_state", PARAMS[BIN], FnnTypeError,
         r"initial_state must be a fnn\.TrainState or the path of a ModelCheckpoint file, got tuple"),
        ("initial_state of a trainer with other callbacks", "initial_state", _state(BIN, EARLY_LOSS), FnnValueError,
         r"state\.callbacks does not fit this trainer's callbacks \(\['TerminateOnNaN'\]\)"),
        ("initial_state of another model", "initial_state", _state(CAT), FnnValueError,
         r"params\[1\]\.w \(layer 1, Dense\(1\)\) has shape \(3, 3\), expected \(3, 1\)"),
        ("initial_state a missing file", "initial_state", "/nonexistent/run.ckpt", CheckpointNotFoundError,
         r"no checkpoint at /nonexistent/run\.ckpt"),
    ]
    cases = [Case("fnn.fit", what, kw(name), bad, error, match) for what, name, bad, error, match in rows]
    cases += [
        Case("fnn.fit", "initial_state that has run more epochs than epochs=",
             lambda bad: fit(BIN, PARAMS[BIN], X, Y_BIN, initial_state=bad, epochs=3), _state(BIN, epoch=5),
             FnnValueError, r"initial_state has already run 5 epochs, more than epochs=3"),
        Case("fnn.fit", "initial_state an empty file",
             lambda bad: fit(BIN, PARAMS[BIN], X, Y_BIN, initial_state=_file(bad, "empty.ckpt")), b"", CheckpointError,
             r"empty\.ckpt.*(is empty|0 bytes)"),
        Case("fnn.fit", "initial_state a checkpoint of params, not of a TrainState",
             lambda bad: fit(BIN, PARAMS[BIN], X, Y_BIN, initial_state=_file(valid_checkpoint(), bad)), "params.ckpt",
             CheckpointError, r"params\.ckpt.*(ModelCheckpoint|TrainState)"),
        Case("fnn.fit", "ReduceLROnPlateau with a learning-rate schedule",
             lambda bad: fit(BIN, PARAMS[BIN], X, Y_BIN, optimizer=bad,
                             callbacks=[callbacks.ReduceLROnPlateau(monitor="loss")]),
             optim.adam(optim.exponential_decay(0.1, 0.5)), FnnValueError,
             r"ReduceLROnPlateau .*the learning rate is a schedule"),
        Case("fnn.fit", "ReduceLROnPlateau with a user optimizer",
             lambda bad: fit(BIN, PARAMS[BIN], X, Y_BIN, optimizer=bad,
                             callbacks=[callbacks.ReduceLROnPlateau(monitor="loss")]),
             USER_OPTIMIZER, FnnValueError,
             r"ReduceLROnPlateau .*no learning_rate"),
    ]
    reg = fnn.Sequential([fnn.Dense(1)])
    reg_params = _params(reg)
    cases.append(Case("fnn.fit", "class_weight for regression",
                      lambda bad: fit(reg, reg_params, X, np.zeros(N), class_weight=bad), {0: 1.0},
                      FnnValueError, r"class_weight needs a classification loss"))
    cases.append(Case("fnn.evaluate", "sample_weight of the wrong length",
                      lambda bad: fnn.evaluate(BIN, PARAMS[BIN], X, Y_BIN, sample_weight=bad), np.ones(5),
                      FnnValueError, r"sample_weight must have one weight per sample"))
    cases.append(Case("fnn.evaluate", "class_weight of class 2 for 2 classes",
                      lambda bad: fnn.evaluate(BIN, PARAMS[BIN], X, Y_BIN, class_weight=bad), {2: 1.0},
                      FnnValueError, r"class_weight key 2 is not a class label"))
    cases += [
        Case("fnn.fit", "validation x with NaN",
             lambda bad: fit(BIN, PARAMS[BIN], X, Y_BIN, validation_data=(bad, Y_BIN)),
             nan_x, FnnValueError, r"x_val contains 1 non-finite value\(s\); the first is nan at row 2"),
        Case("fnn.fit", "validation y with label 2",
             lambda bad: fit(BIN, PARAMS[BIN], X, Y_BIN, validation_data=(X, bad)),
             np.array([0, 1, 2, 0]), FnnValueError,
             r"labels in \[0, 1\] in y_val \(0/1 classes, or soft labels\); found 2 at row 2"),
        Case("fnn.fit", "validation x with 3 features",
             lambda bad: fit(BIN, PARAMS[BIN], X, Y_BIN, validation_data=(bad, Y_BIN)), np.ones((N, 3)), FnnValueError,
             r"x_val has 3 features \(shape \(4, 3\)\) but the model's first layer expects 2"),
        Case("fnn.fit", "validation y shorter than validation x",
             lambda bad: fit(BIN, PARAMS[BIN], X, Y_BIN, validation_data=(X, bad)), Y_BIN[:3], FnnValueError,
             r"x_val and y_val have different numbers of samples: 4 and 3"),
    ]
    return cases + _stream_cases() + _sweep_cases() + _lr_find_cases()


def _stream_cases() -> list[Case]:
    """fit(model, params, batches, None, ...): what a stream refuses, and a bad batch in epoch 0."""
    def stream(batches, **kwargs):
        return fit(BIN, PARAMS[BIN], batches, None, **kwargs)

    good = [(X, Y_BIN)]
    nan_x = _with(X, (2, 1), NaN)
    cases = [Case("fnn.fit", f"stream with {name}", lambda bad, name=name: stream(good, **{name: bad}), bad,
                  FnnValueError, rf"{name} cannot be used with a stream of batches")
             for name, bad in (("validation_split", 0.5), ("sample_weight", np.ones(N)), ("class_weight", {0: 1.0}),
                               ("devices", jax.devices()))]
    cases += [
        Case("fnn.fit", "stream: a one-shot iterator for 2 epochs", lambda bad: stream(bad(), epochs=2),
             lambda: iter(good), StreamError, r"^epoch 0: a one-shot iterator of batches can serve one epoch only"),
        Case("fnn.fit", "stream: a batch with NaN", lambda bad: stream([(X, Y_BIN), (bad, Y_BIN)]), nan_x, StreamError,
             r"^epoch 0: batch 1: x contains 1 non-finite value\(s\); the first is nan at row 2, column 1"),
        Case("fnn.fit", "stream: a batch with label 2", lambda bad: stream([(X, Y_BIN), (X, bad)]),
             np.array([0, 1, 2, 0]), StreamError, r"^epoch 0: batch 1: binary_cross_entropy needs labels in \[0, 1\]"),
        Case("fnn.fit", "stream: a batch larger than the first", lambda bad: stream([(X[:2], Y_BIN[:2]), bad]),
             (X, Y_BIN), StreamError, r"^epoch 0: batch 1 has 4 samples, more than the first batch's 2"),
        Case("fnn.fit", "stream: no batches", lambda bad: stream(lambda epoch: bad), [], StreamError,
             r"^epoch 0: the batches of epoch 0 were empty"),
        Case("fnn.fit", "stream: a batch that is not a pair", lambda bad: stream([bad]), (X,), FnnTypeError,
             r"batch 0 must be a pair \(x, y\), got tuple"),
        Case("fnn.fit", "stream: a batch of strings", lambda bad: stream([(bad, Y_BIN)]), X.astype(str), FnnTypeError,
             r"batch 0: x must have a numeric dtype"),
        Case("fnn.fit", "stream: EarlyStopping on val_loss without validation data",
             lambda bad: stream(good, callbacks=bad), [callbacks.EarlyStopping()], FnnValueError,
             NO_VALIDATION.format(rule="EarlyStopping", monitor="val_loss")),
        Case("fnn.fit", "stream: initial_state that has run more epochs than epochs=",
             lambda bad: stream(good, initial_state=bad, epochs=3), _state(BIN, epoch=5), FnnValueError,
             r"initial_state has already run 5 epochs, more than epochs=3"),
    ]
    return cases


def _sweep_cases() -> list[Case]:
    sweep = functools.partial(fnn.sweep, BIN, X, Y_BIN, optimizer=optim.sgd, learning_rates=[0.1], epochs=1,
                              batch_size=2)
    return [
        Case("fnn.sweep", "epochs -1", lambda bad: sweep(epochs=bad), -1, FnnValueError,
             r"epochs must be an integer >= 0, got -1"),
        Case("fnn.sweep", "an optimizer of another kind per rate",
             lambda bad: sweep(optimizer=bad, learning_rates=[0.1, 0.2]),
             lambda lr: optim.sgd(lr) if lr < 0.15 else optim.adam(lr), FnnValueError,
             r"built optimizers of different kinds for different rates"),
        *(Case("fnn.sweep", f"callbacks {what}", lambda bad: sweep(callbacks=bad), bad, error, match)
          for what, bad, error, match in BAD_CALLBACK_LISTS),
        Case("fnn.sweep", "callbacks with a host callback", lambda bad: sweep(callbacks=bad),
             [callbacks.CSVLogger(_scratch() / "sweep.csv")], FnnValueError,
             r"a sweep runs compiled callbacks only; \['CSVLogger'\] run on the host: use fit for them"),
        Case("fnn.sweep", "EarlyStopping on val_loss without validation data", lambda bad: sweep(callbacks=bad),
             [callbacks.EarlyStopping()], FnnValueError,
             NO_VALIDATION.format(rule="EarlyStopping", monitor="val_loss")),
    ]


def _lr_find_cases() -> list[Case]:
    find = functools.partial(fnn.lr_find, BIN, PARAMS[BIN], X, Y_BIN, steps=5, batch_size=2)
    nan_x = _with(X, (2, 1), NaN)
    return [
        Case("fnn.lr_find", "min_lr 0", lambda bad: find(min_lr=bad), 0.0, FnnValueError, r"min_lr must be in"),
        Case("fnn.lr_find", "max_lr below min_lr", lambda bad: find(max_lr=bad), 1e-6, FnnValueError,
             r"max_lr \(1e-06\) must be larger than min_lr"),
        Case("fnn.lr_find", "steps 2", lambda bad: find(steps=bad), 2, FnnValueError, r"steps must be an integer >= 5"),
        Case("fnn.lr_find", "optimizer an Optimizer", lambda bad: find(optimizer=bad), optim.adam(), FnnTypeError,
             r"optimizer must be a function learning_rate -> Optimizer"),
        Case("fnn.lr_find", "x with NaN", lambda bad: fnn.lr_find(BIN, PARAMS[BIN], bad, Y_BIN, steps=5), nan_x,
             FnnValueError, r"x contains 1 non-finite value"),
        Case("fnn.lr_find", "label 2", lambda bad: fnn.lr_find(BIN, PARAMS[BIN], X, bad, steps=5),
             np.array([0, 1, 2, 0]), FnnValueError, r"labels in \[0, 1\]"),
    ]


# --------------------------------------------------------------------------- the Trainer and its state
def _trainer_cases() -> list[Case]:
    def trainer(**kwargs):
        return lambda bad: fnn.Trainer(BIN, **{k: (bad if v is None else v) for k, v in kwargs.items()})

    cases = [Case("fnn.Trainer", what, fnn.Trainer, bad, error, match) for what, bad, error, match in BAD_MODELS]
    cases += [Case("fnn.Trainer", what, lambda bad, m=m: fnn.Trainer(m, loss=bad), loss, error, match)
              for what, m, loss, error, match in BAD_LOSSES]
    rows = [
        ("optimizer an unknown name", "optimizer", "adadelta", FnnValueError, r"unknown optimizer 'adadelta'"),
        ("optimizer a function", "optimizer", optim.sgd, FnnTypeError, r"optimizer must be an fnn\.optim\.Optimizer"),
        ("optimizer a number", "optimizer", 3, FnnTypeError, r"optimizer must be an fnn\.optim\.Optimizer .*got int"),
        ("batch_size 0", "batch_size", 0, FnnValueError, r"batch_size must be an integer >= 1, got 0"),
        ("batch_size 1.5", "batch_size", 1.5, FnnTypeError, r"batch_size must be an integer >= 1, got float 1.5"),
        ("batch_size 'a'", "batch_size", "a", FnnTypeError, r"batch_size must be an integer >= 1, got str 'a'"),
        ("batch_size None", "batch_size", None, FnnTypeError, r"batch_size must be an integer >= 1, got NoneType"),
        ("batch_size True", "batch_size", True, FnnTypeError, r"batch_size must be an integer >= 1, got bool True"),
        ("shuffle 1", "shuffle", 1, FnnTypeError, r"shuffle must be True or False, got int 1"),
        ("shuffle 'yes'", "shuffle", "yes", FnnTypeError, r"shuffle must be True or False, got str 'yes'"),
        ("shuffle None", "shuffle", None, FnnTypeError, r"shuffle must be True or False, got NoneType"),
        *((f"callbacks {what}", "callbacks", bad, error, match) for what, bad, error, match in BAD_CALLBACK_LISTS),
        ("devices a string", "devices", "cpu", FnnTypeError, r"devices must be a non-empty list of jax devices"),
        ("devices empty", "devices", [], FnnTypeError, r"devices must be a non-empty list of jax devices"),
        ("devices of names", "devices", ["cpu"], FnnTypeError, r"devices must be a non-empty list of jax devices"),
        ("devices a Mesh without a 'data' axis", "devices", Mesh(np.array(jax.devices()[:1]), ("x",)), FnnValueError,
         r"devices= Mesh needs an axis named 'data' to split batches over, it has \('x',\)"),
    ]
    cases += [Case("fnn.Trainer", what, lambda bad, name=name: fnn.Trainer(BIN, **{name: bad}), bad, error, match)
              for what, name, bad, error, match in rows]

    init = lambda bad: _TRAINER.init(bad)  # noqa: E731
    cases += [Case("trainer.init", what, init, bad, error, match) for what, bad, error, match in _bad_params(BIN)]
    key = lambda bad: _TRAINER.init(PARAMS[BIN], key=bad)  # noqa: E731
    cases += [
        Case("trainer.init", "key a negative int", key, -1, FnnValueError,
             r"key as an integer seed must be in \[0, 2\*\*32 - 1\], got -1"),
        Case("trainer.init", "key a 33-bit int", key, 2**32, FnnValueError,
             r"key as an integer seed must be in \[0, 2\*\*32 - 1\], got 4294967296"),
        Case("trainer.init", "key a string", key, "seed", FnnTypeError, r"key must be a JAX PRNG key .*got str"),
        Case("trainer.init", "key None", key, None, FnnTypeError, r"key must be a JAX PRNG key .*got None"),
        Case("trainer.init", "key a float array", key, np.zeros(2, np.float32), FnnTypeError,
             r"key must be a JAX PRNG key .*got an array of dtype float32 and shape \(2,\)"),
        Case("trainer.init", "key a batch of keys", key, jax.random.split(KEY, 2), FnnValueError,
             r"key must be a single key \(shape \(\)\), got a batch of shape \(2,\)"),
    ]
    opt_state = lambda bad: _TRAINER.init(PARAMS[BIN], opt_state=bad)  # noqa: E731
    cases += [
        Case("trainer.init", "opt_state of another optimizer", opt_state, optim.momentum(0.1).init(PARAMS[BIN]),
             FnnValueError, r"opt_state does not fit the optimizer and params"),
        Case("trainer.init", "opt_state a number", opt_state, 3, FnnValueError, r"opt_state does not fit"),
        Case("trainer.init", "opt_state with NaN", opt_state,
             optim.adam().init(PARAMS[BIN])._replace(mu=jax.tree.map(lambda a: a * NaN, PARAMS[BIN])), FnnValueError,
             r"opt_state\.mu\[0\]\.w contains non-finite values"),
        Case("trainer.init", "opt_state of another model", opt_state, optim.adam().init(PARAMS[CAT]), FnnValueError,
             r"opt_state\.mu\[1\]\.w has shape \(3, 3\), expected \(3, 1\)"),
    ]

    def run(bad=None, **kwargs):
        kwargs = {"epochs": 1, **kwargs}
        return _TRAINER.run(_state(BIN) if bad is None else bad, X, Y_BIN, **kwargs)

    def kw(name):
        return lambda bad: run(**{name: bad})

    cases += [
        Case("trainer.run", "epochs -1", kw("epochs"), -1, FnnValueError, r"epochs must be an integer >= 0, got -1"),
        Case("trainer.run", "epochs 1.5", kw("epochs"), 1.5, FnnTypeError,
             r"epochs must be an integer >= 0, got float 1.5"),
        Case("trainer.run", "epochs None", kw("epochs"), None, FnnTypeError,
             r"epochs must be an integer >= 0, got NoneType None"),
        Case("trainer.run", "epochs '3'", kw("epochs"), "3", FnnTypeError, r"epochs must be an integer >= 0, got str"),
        Case("trainer.run", "verbose 'loud'", kw("verbose"), "loud", FnnTypeError,
             r"verbose must be an integer >= 0, got str 'loud'"),
        Case("trainer.run", "verbose -1", kw("verbose"), -1, FnnValueError, r"verbose must be an integer >= 0, got -1"),
        Case("trainer.run", "validation_data of 4 arrays", kw("validation_data"), (X, Y_BIN, None, None),
             FnnTypeError, r"validation_data must be a pair \(x_val, y_val\) or a triple"),
        Case("trainer.run", "epochs 10.5", kw("epochs"), 10.5, FnnTypeError,
             r"epochs must be an integer >= 0, got float 10.5, which is not a whole number"),
        Case("fnn.Trainer", "metrics an unknown name", lambda bad: fnn.Trainer(BIN, metrics=bad), ["f1"],
             FnnValueError, r"unknown metric 'f1' in metrics=; choose from"),
        Case("fnn.Trainer", "metrics precision for classes", lambda bad: fnn.Trainer(CAT, metrics=bad), ["precision"],
             FnnValueError, r"metrics='precision' needs yes/no outputs \(a binary loss such as binary_crossentropy\)"),
        Case("trainer.run", "sample_weight of the wrong length", kw("sample_weight"), np.ones(3), FnnValueError,
             r"sample_weight must have one weight per sample, shape \(4,\), got \(3,\)"),
        Case("trainer.run", "class_weight of class 2 for 2 classes", kw("class_weight"), {2: 1.0}, FnnValueError,
             r"class_weight key 2 is not a class label of this model"),
        Case("trainer.run", "state a number", run, 3, FnnTypeError,
             r"state must be a fnn\.TrainState \(from trainer\.init\), got int"),
        Case("trainer.run", "state the params", run, PARAMS[BIN], FnnTypeError,
             r"state must be a fnn\.TrainState \(from trainer\.init\), got tuple"),
        Case("trainer.run", "state of a trainer with other callbacks", run, _state(BIN, EARLY_LOSS), FnnValueError,
             r"state\.callbacks does not fit this trainer's callbacks \(\['TerminateOnNaN'\]\): continue a state with "
             r"the trainer"),
        Case("trainer.run", "state of another model", run, _state(CAT), FnnValueError,
             r"params\[1\]\.w \(layer 1, Dense\(1\)\) has shape \(3, 3\), expected \(3, 1\)"),
        Case("trainer.run", "state with the opt_state of another optimizer", run,
             _state(BIN)._replace(opt_state=optim.sgd(0.1).init(PARAMS[BIN])), FnnValueError,
             r"opt_state does not fit the optimizer and params"),
        Case("trainer.run", "EarlyStopping on val_loss without validation data",
             lambda bad: (lambda t: t.run(t.init(PARAMS[BIN]), X, Y_BIN, epochs=1))(fnn.Trainer(BIN, callbacks=bad)),
             [callbacks.EarlyStopping()], FnnValueError,
             NO_VALIDATION.format(rule="EarlyStopping", monitor="val_loss")),
    ]
    return cases


# --------------------------------------------------------------------------- callbacks
def _callback_cases() -> list[Case]:
    es, plateau = callbacks.EarlyStopping, callbacks.ReduceLROnPlateau
    rows = [  # (entry, what, constructor, bad, error, regex)
        (es, "patience -1", lambda bad: es(patience=bad), -1, FnnValueError,
         r"patience must be an integer >= 0, got -1"),
        (es, "patience 1.5", lambda bad: es(patience=bad), 1.5, FnnTypeError,
         r"patience must be an integer >= 0, got float 1.5"),
        (es, "patience 2.5", lambda bad: es(patience=bad), 2.5, FnnTypeError,
         r"patience must be an integer >= 0, got float 2.5, which is not a whole number; pass 2 or 3"),
        (es, "patience '3'", lambda bad: es(patience=bad), "3", FnnTypeError,
         r"patience must be an integer >= 0, got str '3'"),
        (es, "min_delta NaN", lambda bad: es(min_delta=bad), NaN, FnnValueError, r"min_delta must be finite, got nan"),
        (es, "min_delta 'a'", lambda bad: es(min_delta=bad), "a", FnnTypeError,
         r"min_delta must be a real number, got str 'a'"),
        (es, "mode 'up'", lambda bad: es(mode=bad), "up", FnnValueError,
         r"mode must be 'auto', 'min' or 'max', got 'up'"),
        (es, "monitor 3", lambda bad: es(monitor=bad), 3, FnnTypeError,
         r"monitor must be the name of a logged figure such as 'val_loss', got 3"),
        (es, "monitor ''", lambda bad: es(monitor=bad), "", FnnTypeError,
         r"monitor must be the name of a logged figure such as 'val_loss', got ''"),
        (es, "restore_best_weights 'yes'", lambda bad: es(restore_best_weights=bad), "yes", FnnTypeError,
         r"restore_best_weights must be True or False, got str 'yes'"),
        (es, "restore_best_weights 1", lambda bad: es(restore_best_weights=bad), 1, FnnTypeError,
         r"restore_best_weights must be True or False, got int 1"),
        (es, "start_from_epoch -1", lambda bad: es(start_from_epoch=bad), -1, FnnValueError,
         r"start_from_epoch must be an integer >= 0, got -1"),
        (es, "baseline NaN", lambda bad: es(baseline=bad), NaN, FnnValueError, r"baseline must be finite, got nan"),
        (plateau, "factor 0", lambda bad: plateau(factor=bad), 0, FnnValueError, r"factor must be in \(0, 1\), got 0"),
        (plateau, "factor 1", lambda bad: plateau(factor=bad), 1, FnnValueError, r"factor must be in \(0, 1\), got 1"),
        (plateau, "factor 1.5", lambda bad: plateau(factor=bad), 1.5, FnnValueError,
         r"factor must be in \(0, 1\), got 1.5"),
        (plateau, "factor NaN", lambda bad: plateau(factor=bad), NaN, FnnValueError, r"factor must be finite, got nan"),
        (plateau, "patience -1", lambda bad: plateau(patience=bad), -1, FnnValueError,
         r"patience must be an integer >= 0, got -1"),
        (plateau, "min_lr -1", lambda bad: plateau(min_lr=bad), -1, FnnValueError,
         r"min_lr must be in \[0, inf\], got -1"),
        (plateau, "cooldown -1", lambda bad: plateau(cooldown=bad), -1, FnnValueError,
         r"cooldown must be an integer >= 0, got -1"),
        (plateau, "min_delta NaN", lambda bad: plateau(min_delta=bad), NaN, FnnValueError,
         r"min_delta must be finite, got nan"),
        (plateau, "mode 'up'", lambda bad: plateau(mode=bad), "up", FnnValueError,
         r"mode must be 'auto', 'min' or 'max'"),
        (plateau, "monitor None", lambda bad: plateau(monitor=bad), None, FnnTypeError,
         r"monitor must be the name of a logged figure"),
        (callbacks.TargetLoss, "value NaN", callbacks.TargetLoss, NaN, FnnValueError,
         r"target loss value must be finite, got nan"),
        (callbacks.TargetLoss, "value 'a'", callbacks.TargetLoss, "a", FnnTypeError,
         r"target loss value must be a real number, got str 'a'"),
        (callbacks.TargetLoss, "value None", callbacks.TargetLoss, None, FnnTypeError,
         r"target loss value must be a real number, got NoneType"),
        (callbacks.TargetLoss, "monitor 3", lambda bad: callbacks.TargetLoss(0.1, monitor=bad), 3, FnnTypeError,
         r"monitor must be the name of a logged figure"),
        (callbacks.TerminateOnNaN, "max_bad_steps -1", callbacks.TerminateOnNaN, -1, FnnValueError,
         r"max_bad_steps must be an integer >= 0, got -1"),
        (callbacks.TerminateOnNaN, "max_bad_steps 1.5", callbacks.TerminateOnNaN, 1.5, FnnTypeError,
         r"max_bad_steps must be an integer >= 0, got float 1.5"),
        (callbacks.Snapshots, "every 0", callbacks.Snapshots, 0, FnnValueError,
         r"every must be an integer >= 1, got 0"),
        (callbacks.Snapshots, "every 1.5", callbacks.Snapshots, 1.5, FnnTypeError,
         r"every must be an integer >= 1, got float 1.5"),
        (callbacks.ModelCheckpoint, "path 3", callbacks.ModelCheckpoint, 3, FnnTypeError,
         r"ModelCheckpoint path must be a str or os\.PathLike, got int"),
        (callbacks.ModelCheckpoint, "every 0", lambda bad: callbacks.ModelCheckpoint("run.ckpt", every=bad), 0,
         FnnValueError, r"every must be an integer >= 1, got 0"),
        (callbacks.ModelCheckpoint, "every 1.5", lambda bad: callbacks.ModelCheckpoint("run.ckpt", every=bad), 1.5,
         FnnTypeError, r"every must be an integer >= 1, got float 1.5"),
        (callbacks.CSVLogger, "filename 3", callbacks.CSVLogger, 3, FnnTypeError,
         r"CSVLogger filename must be a path, got int"),
        (callbacks.CSVLogger, "filename None", callbacks.CSVLogger, None, FnnTypeError,
         r"CSVLogger filename must be a path, got NoneType"),
        (callbacks.LambdaCallback, "on_epoch_end=3", lambda bad: callbacks.LambdaCallback(on_epoch_end=bad), 3,
         FnnTypeError, r"LambdaCallback on_epoch_end must be callable, got int"),
        (callbacks.LambdaCallback, "on_train_begin a string", lambda bad: callbacks.LambdaCallback(on_train_begin=bad),
         "x", FnnTypeError, r"LambdaCallback on_train_begin must be callable, got str"),
        (callbacks.LambdaCallback, "on_batch_end (no batch-level hooks)",
         lambda bad: callbacks.LambdaCallback(on_batch_end=bad), lambda batch, logs: None, FnnValueError,
         r"LambdaCallback takes on_epoch_end, on_train_begin and on_train_end; got \['on_batch_end'\] "
         r"\(batch-level hooks would need Python per batch"),
    ]
    return [Case(f"fnn.callbacks.{cls.__name__}", what, call, bad, error, match)
            for cls, what, call, bad, error, match in rows]


# --------------------------------------------------------------------------- optimizers and schedules
def _optim_cases() -> list[Case]:
    lr_rows = [  # (what, bad rate, error, regex)
        ("learning_rate 0", 0.0, FnnValueError, r"learning_rate must be in \(0, inf\], got 0.0"),
        ("learning_rate -0.1", -0.1, FnnValueError, r"learning_rate must be in \(0, inf\], got -0.1"),
        ("learning_rate NaN", NaN, FnnValueError, r"learning_rate must be finite, got nan"),
        ("learning_rate inf", INF, FnnValueError, r"learning_rate must be finite, got inf"),
        ("learning_rate a jax NaN", jnp.asarray(NaN, jnp.float32), FnnValueError,
         r"learning_rate must be finite, got nan"),
        ("learning_rate '0.1'", "0.1", FnnTypeError, r"learning_rate must be a real number, got str '0.1'"),
        ("learning_rate None", None, FnnTypeError, r"learning_rate must be a real number, got NoneType None"),
    ]
    makers = {
        "fnn.optim.sgd": lambda lr: optim.sgd(lr),
        "fnn.optim.momentum": lambda lr: optim.momentum(lr, 0.9),
        "fnn.optim.nesterov": lambda lr: optim.nesterov(lr, 0.9),
        "fnn.optim.adam": lambda lr: optim.adam(lr),
        "fnn.optim.constant": lambda lr: optim.constant(lr),
    }
    cases = [Case(entry, what, make, bad, error, match)
             for entry, make in makers.items() for what, bad, error, match in lr_rows]
    for entry, make in (("fnn.optim.momentum", optim.momentum), ("fnn.optim.nesterov", optim.nesterov)):
        call = lambda bad, make=make: make(0.1, bad)  # noqa: E731
        cases += [
            Case(entry, "momentum 1", call, 1.0, FnnValueError, r"momentum must be in \[0, 1\), got 1.0"),
            Case(entry, "momentum -0.1", call, -0.1, FnnValueError, r"momentum must be in \[0, 1\), got -0.1"),
            Case(entry, "momentum NaN", call, NaN, FnnValueError, r"momentum must be finite, got nan"),
            Case(entry, "momentum a string", call, "0.9", FnnTypeError, r"momentum must be a real number, got str"),
        ]
    for name in ("b1", "b2"):
        call = lambda bad, name=name: optim.adam(1e-3, **{name: bad})  # noqa: E731
        cases += [
            Case("fnn.optim.adam", f"{name} 1", call, 1.0, FnnValueError, rf"{name} must be in \[0, 1\), got 1.0"),
            Case("fnn.optim.adam", f"{name} 1.5", call, 1.5, FnnValueError, rf"{name} must be in \[0, 1\), got 1.5"),
            Case("fnn.optim.adam", f"{name} -0.1", call, -0.1, FnnValueError, rf"{name} must be in \[0, 1\), got -0.1"),
            Case("fnn.optim.adam", f"{name} NaN", call, NaN, FnnValueError, rf"{name} must be finite, got nan"),
        ]
    eps = lambda bad: optim.adam(1e-3, eps=bad)  # noqa: E731
    cases += [
        Case("fnn.optim.adam", "eps 0", eps, 0.0, FnnValueError, r"eps must be in \(0, inf\], got 0.0"),
        Case("fnn.optim.adam", "eps -1e-8", eps, -1e-8, FnnValueError, r"eps must be in \(0, inf\], got -1e-08"),
        Case("fnn.optim.adam", "eps NaN", eps, NaN, FnnValueError, r"eps must be finite, got nan"),
    ]
    exp = optim.exponential_decay
    cos = optim.cosine_decay
    cases += [
        Case("fnn.optim.exponential_decay", "init_value 0", lambda bad: exp(bad, 0.5), 0.0, FnnValueError,
             r"init_value must be in \(0, inf\], got 0.0"),
        Case("fnn.optim.exponential_decay", "init_value NaN", lambda bad: exp(bad, 0.5), NaN, FnnValueError,
             r"init_value must be finite, got nan"),
        Case("fnn.optim.exponential_decay", "decay_rate 0", lambda bad: exp(0.1, bad), 0.0, FnnValueError,
             r"decay_rate must be in \(0, inf\], got 0.0"),
        Case("fnn.optim.exponential_decay", "decay_rate -0.5", lambda bad: exp(0.1, bad), -0.5, FnnValueError,
             r"decay_rate must be in \(0, inf\], got -0.5"),
        Case("fnn.optim.exponential_decay", "transition_steps 0", lambda bad: exp(0.1, 0.5, bad), 0, FnnValueError,
             r"transition_steps must be an integer >= 1, got 0"),
        Case("fnn.optim.exponential_decay", "transition_steps 1.5", lambda bad: exp(0.1, 0.5, bad), 1.5, FnnTypeError,
             r"transition_steps must be an integer >= 1, got float 1.5"),
        Case("fnn.optim.exponential_decay", "end_value -1", lambda bad: exp(0.1, 0.5, end_value=bad), -1.0,
             FnnValueError, r"end_value must be in \[0, inf\], got -1.0"),
        Case("fnn.optim.cosine_decay", "init_value -1", lambda bad: cos(bad, 10), -1.0, FnnValueError,
             r"init_value must be in \(0, inf\], got -1.0"),
        Case("fnn.optim.cosine_decay", "decay_steps 0", lambda bad: cos(0.1, bad), 0, FnnValueError,
             r"decay_steps must be an integer >= 1, got 0"),
        Case("fnn.optim.cosine_decay", "decay_steps 2.5", lambda bad: cos(0.1, bad), 2.5, FnnTypeError,
             r"decay_steps must be an integer >= 1, got float 2.5"),
        Case("fnn.optim.cosine_decay", "alpha 1.5", lambda bad: cos(0.1, 10, bad), 1.5, FnnValueError,
             r"alpha must be in \[0, 1\], got 1.5"),
        Case("fnn.optim.cosine_decay", "alpha NaN", lambda bad: cos(0.1, 10, bad), NaN, FnnValueError,
             r"alpha must be finite, got nan"),
        Case("fnn.optim.clip_by_global_norm", "max_norm 0", optim.clip_by_global_norm, 0.0, FnnValueError,
             r"max_norm must be in \(0, inf\], got 0.0"),
        Case("fnn.optim.clip_by_global_norm", "max_norm NaN", optim.clip_by_global_norm, NaN, FnnValueError,
             r"max_norm must be finite, got nan"),
        Case("fnn.optim.add_weight_decay", "rate -1e-4", optim.add_weight_decay, -1e-4, FnnValueError,
             r"weight decay rate must be in \[0, inf\], got -0.0001"),
        Case("fnn.optim.add_weight_decay", "rate NaN", optim.add_weight_decay, NaN, FnnValueError,
             r"weight decay rate must be finite, got nan"),
        Case("fnn.optim.chain", "no parts", lambda bad: optim.chain(*bad), (), FnnValueError,
             r"chain needs at least one optimizer or transform"),
        Case("fnn.optim.chain", "a part that is an unknown name", lambda bad: optim.chain(*bad), ("adadelta",),
             FnnValueError, r"unknown optimizer 'adadelta'"),
        Case("fnn.optim.chain", "a part that is a number", lambda bad: optim.chain(*bad), (3,), FnnTypeError,
             r"chain part 0 must be an fnn\.optim\.Optimizer"),
    ]
    adam_state = optim.adam(0.1).init(PARAMS[BIN])
    schedule_state = optim.adam(optim.exponential_decay(0.1, 0.5)).init(PARAMS[BIN])
    user_state = USER_OPTIMIZER[0](PARAMS[BIN])
    set_numbers = lambda bad: optim.set_hyperparameters(adam_state, **bad)  # noqa: E731
    entry = "fnn.optim.set_hyperparameters"
    cases += [
        Case(entry, "an unknown name", set_numbers, {"foo": 1}, FnnValueError,
             r"this optimizer state has no hyperparameter 'foo'; it has \['b1', 'b2', 'eps', 'learning_rate'\]"),
        Case(entry, "a number for a schedule's learning_rate",
             lambda bad: optim.set_hyperparameters(schedule_state, learning_rate=bad), 0.1, FnnValueError,
             r"learning_rate here is a schedule with numbers \['decay_rate', 'init_value', 'transition_steps'\]; "
             r"got \['value'\]"),
        Case(entry, "learning_rate of a user optimizer's state",
             lambda bad: optim.set_hyperparameters(bad, learning_rate=0.1), user_state, FnnValueError,
             r"this optimizer state has no hyperparameter 'learning_rate'; it has \[\]"),
        Case(entry, "learning_rate NaN", set_numbers, {"learning_rate": NaN}, FnnValueError,
             r"learning_rate must be finite, got nan"),
        Case(entry, "learning_rate -0.1", set_numbers, {"learning_rate": -0.1}, FnnValueError,
             r"learning_rate must be in \(0, inf\], got -0.1"),
        Case(entry, "learning_rate '0.1'", set_numbers, {"learning_rate": "0.1"}, FnnTypeError,
             r"learning_rate must be a real number, got str '0.1'"),
        Case("fnn.optim.learning_rate", "a schedule's state", optim.learning_rate, schedule_state, FnnValueError,
             r"the learning rate is a schedule \(\['decay_rate', 'init_value', 'transition_steps'\]\), not one number"),
        Case("fnn.optim.learning_rate", "a user optimizer's state", optim.learning_rate, user_state, FnnValueError,
             r"this optimizer state has no learning_rate \(only fnn\.optim's optimizers keep their rate in their "
             r"state\)"),
        Case("fnn.optim.learning_rate", "a number", optim.learning_rate, 3, FnnValueError,
             r"this optimizer state has no learning_rate"),
        Case("fnn.optim.hyperparameters", "a user optimizer's state", optim.hyperparameters, user_state, FnnTypeError,
             r"this optimizer state keeps no hyperparameters"),
        Case("fnn.optim.init_state", "an int for the optimizer", lambda bad: optim.init_state(bad, {"w": np.ones(2)}),
             3, FnnTypeError, r"optimizer must be an fnn.optim.Optimizer \(init, update\) or a name such as 'adam'"),
        Case("fnn.optim.init_state", "an unknown name", lambda bad: optim.init_state(bad, {"w": np.ones(2)}),
             "adam!", FnnValueError, r"unknown optimizer 'adam!'; choose one of"),
    ]
    return cases


# --------------------------------------------------------------------------- checkpoints
def _save_refused_by_the_os(code: int) -> Callable[[Any], Any]:
    """save, the OS refusing its temporary file as a read-only, locked or full file system does (root too)."""

    def call(bad):
        def refuse(*args, **kwargs):
            raise OSError(code, os.strerror(code), str(_scratch() / ".fnn-0123abcd.tmp"))

        with unittest.mock.patch.object(checkpoint.tempfile, "mkstemp", refuse):
            return fnn.save(_scratch() / "out.ckpt", bad)

    return call


def forged_shape(shape: Any) -> bytes:
    """A checkpoint with a valid digest whose one array declares `shape`: what a forger, not a disk fault, writes."""
    node = {"type": "array", "kind": "jax", "dtype": "float32", "shape": shape, "tensor": "w"}
    meta = {"fnn_sha256": "0" * 64, "fnn_format": checkpoint.FORMAT, "fnn_format_version": "3"}
    meta["fnn_tree"] = json.dumps(node)
    entry = {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}
    text = json.dumps({"__metadata__": meta, "w": entry}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    data = len(text).to_bytes(8, "little") + text
    at = data.index(b'"fnn_sha256":"') + len(b'"fnn_sha256":"')
    return data[:at] + hashlib.sha256(data).hexdigest().encode() + data[at + 64 :]


def _checkpoint_cases() -> list[Case]:
    save = lambda bad: fnn.save(_scratch() / "out.ckpt", bad)  # noqa: E731
    load_bytes = lambda bad: fnn.load(_file(bad))  # noqa: E731
    cases = [
        Case("fnn.save", "path an int", lambda bad: fnn.save(bad, {}), 3, FnnTypeError,
             r"save path must be a str or os\.PathLike, got int 3"),
        Case("fnn.save", "path bytes", lambda bad: fnn.save(bad, {}), b"run.ckpt", FnnTypeError,
             r"save path must be a str or os\.PathLike, got bytes"),
        Case("fnn.save", "path a directory", lambda bad: fnn.save(_scratch(), bad), {}, FnnValueError,
             r"cannot save to .*: it is a directory"),
        Case("fnn.save", "an object leaf", save, {"f": object()}, FnnTypeError,
             r"tree leaf \['f'\] has unsupported type object"),
        Case("fnn.save", "a set", save, {"s": {1, 2}}, FnnTypeError, r"tree leaf \['s'\] has unsupported type set"),
        Case("fnn.save", "a NaN weight", save, {"w": np.array([1.0, NaN])}, FnnValueError,
             r"tree leaf \['w'\] has 1 non-finite value\(s\), nan at \(1,\): allow_non_finite"),
        Case("fnn.save", "an inf float", save, (1.0, INF), FnnValueError,
             r"tree leaf \[1\] is the non-finite float inf"),
        Case("fnn.save", "a string array", save, {"names": np.array(["a", "b"])}, FnnTypeError,
             r"tree leaf \['names'\] is an array of dtype <U1"),
        Case("fnn.save", "an object array", save, [np.array([1, None], dtype=object)], FnnTypeError,
             r"tree leaf \[0\] is an object array of dtype object"),
        Case("fnn.save", "an int dict key", save, {1: np.zeros(2)}, FnnTypeError,
             r"tree dict <root> has key 1 of type int; use str keys"),
        Case("fnn.save", "a tree 400 deep", save, functools.reduce(lambda t, _: [t], range(400), 0), FnnValueError,
             r"tree node \[0\]\[0\].* is past a checkpoint's 64 levels below the root; flatten the tree$"),
        Case("fnn.save", "a million leaves", save, list(range(10**6)), FnnValueError,
             r"tree node \[99999\] is past a checkpoint's 100,000 nodes; store numbers as arrays"),
        Case("fnn.save", "a missing folder", lambda bad: fnn.save(_scratch() / bad, {}), "no/such/run.ckpt",
             CheckpointError, r"cannot save to .*no/such/run\.ckpt: No such file or directory; the folder "
             r".*no/such does not exist: create it first \(os\.makedirs\), or save into a folder that exists"),
        Case("fnn.save", "a file where the folder should be", lambda bad: fnn.save(_file(b"", bad) / "run.ckpt", {}),
             "plain.file", CheckpointError, r"cannot save to .*plain\.file/run\.ckpt: Not a directory; "
             r".*plain\.file is a file, not a folder"),
        Case("fnn.save", "a 256-byte file name", lambda bad: fnn.save(_scratch() / bad, {}), "n" * 256,
             CheckpointError, r"cannot save to .*nnnn: File name too long; its name is 256 bytes, more than the 255 "
             r"this file system allows: choose a shorter name$"),
        Case("fnn.save", "a 256-byte name of 128 two-byte characters", lambda bad: fnn.save(_scratch() / bad, {}),
             "é" * 128, CheckpointError, r"File name too long; its name is 256 bytes, more than the 255"),
        Case("fnn.save", "a read-only file system", _save_refused_by_the_os(errno.EROFS), {"epoch": 1},
             CheckpointError, r"^(?!.*\.fnn-)cannot save to .*out\.ckpt: Read-only file system; .* is on a "
             r"read-only file system: save to a folder you may write to$"),
        Case("fnn.save", "a folder it may not write to", _save_refused_by_the_os(errno.EACCES), {"epoch": 1},
             CheckpointError, r"^(?!.*\.fnn-)cannot save to .*out\.ckpt: Permission denied; you may not write to "),
        Case("fnn.save", "a full disk", _save_refused_by_the_os(errno.ENOSPC), {"epoch": 1},
             CheckpointError, r"^(?!.*\.fnn-)cannot save to .*out\.ckpt: No space left on device; the disk holding "
             r".* is full: free space or save elsewhere$"),
        Case("fnn.save", "metadata 65 levels deep", lambda bad: fnn.save(_scratch() / "m.ckpt", {}, metadata=bad),
             functools.reduce(lambda t, _: {"a": t}, range(65), 0), FnnValueError,
             r"^metadata(\['a'\]){65} is past a checkpoint's 64 levels below the root; flatten it$"),
        Case("fnn.save", "metadata a list", lambda bad: fnn.save(_scratch() / "m.ckpt", {}, metadata=bad), [1],
             FnnTypeError, r"metadata must be a dict or None, got list"),
        Case("fnn.save", "metadata with NaN", lambda bad: fnn.save(_scratch() / "m.ckpt", {}, metadata=bad),
             {"lr": NaN}, FnnValueError, r"fnn_metadata is not JSON: Out of range float"),
        Case("fnn.checkpoint.read_metadata", "a missing file", lambda bad: checkpoint.read_metadata(_scratch() / bad),
             "missing.ckpt", CheckpointNotFoundError, r"no checkpoint at .*missing\.ckpt: the file does not exist"),
        Case("fnn.checkpoint.read_metadata", "a pickle", lambda bad: checkpoint.read_metadata(_file(bad)),
             pickle.dumps([1]), CheckpointError, r"it looks like a pickle; fnn never unpickles"),
        Case("fnn.load", "a missing file", lambda bad: fnn.load(_scratch() / bad), "missing.ckpt",
             CheckpointNotFoundError, r"no checkpoint at .*missing\.ckpt: the file does not exist"),
        Case("fnn.load", "a directory", lambda bad: fnn.load(_scratch()), None, CheckpointError,
             r"cannot load .*: it is a directory"),
        Case("fnn.load", "path an int", fnn.load, 7, FnnTypeError,
             r"load path must be a str or os\.PathLike, got int 7"),
        Case("fnn.load", "shape [0, 2**62] in a valid header", load_bytes, forged_shape([0, 2**62]), CheckpointError,
             r"is corrupt or forged: tensor 'w' declares shape \[0, 4611686018427387904\], of more than 2\*\*63 - 1 "
             r"bytes, which no array can have; fnn\.save never writes one$"),
        Case("fnn.load", "65 dimensions in a valid header", load_bytes, forged_shape([1] * 65), CheckpointError,
             r"is corrupt or forged: tensor 'w' declares shape \[1, 1, 1, 1, …\], of 65 dimensions, more than 64, "),
        Case("fnn.load", "a negative dimension in a valid header", load_bytes, forged_shape([2, -1]), CheckpointError,
             r"is corrupt or forged: tensor 'w' declares shape \[2, -1\], with a dimension that is not an int >= 0"),
        Case("fnn.load", "an empty file", load_bytes, b"", CheckpointError,
             r"is empty \(0 bytes\), not an fnn checkpoint"),
        Case("fnn.load", "garbage", load_bytes, bytes(np.random.default_rng(0).integers(0, 256, 300, np.uint8)),
             CheckpointError, r"is not an fnn checkpoint: it does not start with a safetensors header"),
        Case("fnn.load", "a pickle", load_bytes, pickle.dumps({"w": [1.0, 2.0]}), CheckpointError,
             r"it looks like a pickle; fnn never unpickles"),
        Case("fnn.load", "an .npz archive", load_bytes, b"PK\x03\x04" + bytes(60), CheckpointError,
             r"it looks like a zip/\.npz archive"),
        Case("fnn.load", "a format-version-1 file", load_bytes, b"FNN-CHECKPOINT\n" + bytes(60), CheckpointError,
             r"is not an fnn checkpoint: it does not start with a safetensors header"),
        Case("fnn.load", "the header cut short", lambda bad: fnn.load(_file(valid_checkpoint()[:bad])), 20,
             CheckpointError, r"is truncated: 20 bytes of a header of \d+"),
        Case("fnn.load", "the last 40 bytes missing", lambda bad: fnn.load(_file(valid_checkpoint()[:-bad])), 40,
             CheckpointError, r"is corrupt: sha256 of its \d+ bytes is [0-9a-f]+…, not [0-9a-f]+…"),
        Case("fnn.load", "10 trailing bytes", lambda bad: fnn.load(_file(valid_checkpoint() + bad)), bytes(10),
             CheckpointError, r"is corrupt: sha256"),
        Case("fnn.load", "one bit flipped in the header",
             lambda bad: fnn.load(_file(flip_bit(valid_checkpoint(), bad))),
             60, CheckpointError, r"is corrupt|malformed header|not an fnn checkpoint|no fnn_sha256"),
        Case("fnn.load", "one bit flipped in the payload",
             lambda bad: fnn.load(_file(flip_bit(valid_checkpoint(), bad))),
             -40, CheckpointError, r"is corrupt: sha256"),
        Case("fnn.load", "like of another shape", lambda bad: fnn.load(_file(valid_checkpoint()), like=bad),
             {"params": _params(fnn.Sequential([fnn.Dense(4), fnn.Dense(1)])), "step": 0}, CheckpointError,
             r"checkpoint node \['params'\]\[0\]\.w is ndarray \(2, 3\) float32 but like has \w+ \(2, 4\) float32; "
             r"load does not cast"),
        Case("fnn.load", "like of another structure", lambda bad: fnn.load(_file(valid_checkpoint()), like=bad),
             {"params": PARAMS[BIN]}, CheckpointError,
             r"checkpoint node <root> is dict \['params', 'step'\] but like has dict \['params'\]"),
    ]
    return cases


# --------------------------------------------------------------------------- gradcheck and numerical_gradient
def _quadratic(params, shift):
    return jnp.sum((params["a"] - shift) ** 2)


_POINT = {"a": jnp.asarray([0.5, -1.0], jnp.float32)}


def _numerical_cases() -> list[Case]:
    cases = []
    for entry, fn in (("fnn.gradcheck", fnn.gradcheck), ("fnn.numerical_gradient", fnn.numerical_gradient)):
        h = lambda bad, fn=fn: fn(_quadratic, _POINT, 0.3, h=bad)  # noqa: E731
        cases += [
            Case(entry, "h 0", h, 0.0, FnnValueError, r"h must be in \(0, inf\], got 0.0"),
            Case(entry, "h -1e-6", h, -1e-6, FnnValueError, r"h must be in \(0, inf\], got -1e-06"),
            Case(entry, "h NaN", h, NaN, FnnValueError, r"h must be finite, got nan"),
            Case(entry, "h '1e-6'", h, "1e-6", FnnTypeError, r"h must be a real number, got str '1e-6'"),
            Case(entry, "f not callable", lambda bad, fn=fn: fn(bad, _POINT, 0.3), "loss", FnnTypeError,
                 r"f must be callable, got str"),
            Case(entry, "params of int dtype", lambda bad, fn=fn: fn(_quadratic, bad, 0.3), {"a": np.array([1, 2])},
                 FnnTypeError, r"needs floating-point params, got a leaf of dtype int64"),
            Case(entry, "params with no leaves", lambda bad, fn=fn: fn(_quadratic, bad, 0.3), {}, FnnValueError,
                 r"params has no array leaves"),
            Case(entry, "f returning a vector", lambda bad, fn=fn: fn(bad, _POINT, 0.3),
                 lambda p, s: p["a"] - s, FnnValueError, r"f must return a scalar, got shape \(2,\)"),
        ]
    tol = lambda bad: fnn.gradcheck(_quadratic, _POINT, 0.3, tolerance=bad)  # noqa: E731
    objective = fnn.objective(BIN, "binary_cross_entropy")
    cases += [
        Case("fnn.gradcheck", "tolerance -1", tol, -1.0, FnnValueError, r"tolerance must be in \[0, inf\], got -1.0"),
        Case("fnn.gradcheck", "tolerance NaN", tol, NaN, FnnValueError, r"tolerance must be finite, got nan"),
        Case("fnn.gradcheck", "grad_fn not callable", lambda bad: fnn.gradcheck(_quadratic, _POINT, 0.3, grad_fn=bad),
             "jax.grad", FnnTypeError, r"grad_fn must be callable or None, got str"),
        Case("fnn.gradcheck", "grad_fn of another structure",
             lambda bad: fnn.gradcheck(_quadratic, _POINT, 0.3, grad_fn=bad), lambda p, s: [p["a"], p["a"]],
             FnnValueError, r"grad_fn returned a tree of another structure than params"),
        Case("fnn.gradcheck", "objective of x with NaN",
             lambda bad: fnn.gradcheck(objective, PARAMS[BIN], bad, Y_BIN), _with(X, (2, 1), NaN), FnnValueError,
             r"x contains 1 non-finite value\(s\); the first is nan at row 2, column 1"),
        Case("fnn.gradcheck", "objective of label 2",
             lambda bad: fnn.gradcheck(objective, PARAMS[BIN], X, bad), np.array([0, 1, 2, 0]), FnnValueError,
             r"binary_cross_entropy needs labels in \[0, 1\] in y \(0/1 classes, or soft labels\); found 2 at row 2"),
    ]
    return cases


# --------------------------------------------------------------------------- fnn.data
def _data_module_cases() -> list[Case]:
    circles = lambda **kw: data.circles(kw.pop("key", KEY), **kw)  # noqa: E731
    spiral = lambda **kw: data.spiral(kw.pop("key", KEY), **kw)  # noqa: E731
    split = lambda x, y, **kw: data.train_test_split(kw.pop("key", KEY), x, y, **kw)  # noqa: E731
    skl = lambda *arrays, **kw: data.train_test_split(*arrays, **{"random_state": 0, **kw})  # noqa: E731
    return [
        Case("fnn.data.circles", "key a negative int", lambda bad: circles(key=bad), -3, FnnValueError,
             r"key as an integer seed must be in \[0, 2\*\*32 - 1\], got -3"),
        Case("fnn.data.circles", "n_samples 1", lambda bad: circles(n_samples=bad), 1, FnnValueError,
             r"n_samples must be an integer >= 2, got 1"),
        Case("fnn.data.circles", "n_samples 10.5", lambda bad: circles(n_samples=bad), 10.5, FnnTypeError,
             r"n_samples must be an integer >= 2, got float 10.5"),
        Case("fnn.data.circles", "noise -0.1", lambda bad: circles(noise=bad), -0.1, FnnValueError,
             r"noise must be in \[0, inf\], got -0.1"),
        Case("fnn.data.circles", "noise NaN", lambda bad: circles(noise=bad), NaN, FnnValueError,
             r"noise must be finite, got nan"),
        Case("fnn.data.circles", "factor 1", lambda bad: circles(factor=bad), 1.0, FnnValueError,
             r"factor must be in \[0, 1\), got 1.0"),
        Case("fnn.data.spiral", "key None", lambda bad: spiral(key=bad), None, FnnTypeError,
             r"key must be a JAX PRNG key .*got None"),
        Case("fnn.data.spiral", "n_classes 1", lambda bad: spiral(n_classes=bad), 1, FnnValueError,
             r"n_classes must be an integer >= 2, got 1"),
        Case("fnn.data.spiral", "n_classes '3'", lambda bad: spiral(n_classes=bad), "3", FnnTypeError,
             r"n_classes must be an integer >= 2, got str '3'"),
        Case("fnn.data.spiral", "fewer samples than classes", lambda bad: spiral(n_samples=bad, n_classes=3), 2,
             FnnValueError, r"n_samples must be an integer >= 3, got 2"),
        Case("fnn.data.spiral", "noise inf", lambda bad: spiral(noise=bad), INF, FnnValueError,
             r"noise must be finite, got inf"),
        Case("fnn.data.train_test_split", "key a negative int", lambda bad: split(X, Y_BIN, key=bad), -3,
             FnnValueError, r"key as an integer seed must be in \[0, 2\*\*32 - 1\], got -3"),
        Case("fnn.data.train_test_split", "x/y length mismatch", lambda bad: split(X, bad), Y_BIN[:3], FnnValueError,
             r"x and y have different numbers of samples: 4 and 3"),
        Case("fnn.data.train_test_split", "x 0-d", lambda bad: split(bad, Y_BIN), np.float32(1.0), FnnValueError,
             r"x must have one entry per sample, got a scalar"),
        Case("fnn.data.train_test_split", "y 0-d", lambda bad: split(X, bad), np.int32(1), FnnValueError,
             r"y must have one entry per sample, got a scalar"),
        Case("fnn.data.train_test_split", "x of strings", lambda bad: split(bad, Y_BIN), np.array(["a"] * N),
             FnnTypeError, r"x must have a numeric dtype"),
        Case("fnn.data.train_test_split", "test_fraction 0", lambda bad: split(X, Y_BIN, test_fraction=bad), 0.0,
             FnnValueError, r"test_fraction must be in \(0, 1\), got 0.0"),
        Case("fnn.data.train_test_split", "test_fraction 1", lambda bad: split(X, Y_BIN, test_fraction=bad), 1.0,
             FnnValueError, r"test_fraction must be in \(0, 1\), got 1.0"),
        Case("fnn.data.train_test_split", "test_fraction NaN", lambda bad: split(X, Y_BIN, test_fraction=bad), NaN,
             FnnValueError, r"test_fraction must be finite, got nan"),
        Case("fnn.data.train_test_split", "an empty test split", lambda bad: split(X, Y_BIN, test_fraction=bad), 0.1,
             FnnValueError, r"test_fraction=0.1 leaves an empty split of 4 samples"),
        # scikit-learn's form: the arrays first, then test_size/train_size/random_state/shuffle/stratify
        *(Case("fnn.data.train_test_split", f"test_size {bad!r}", lambda bad: skl(X, Y_BIN, test_size=bad), bad,
               FnnValueError, rf"test_size={bad!r} as a fraction must be in \(0, 1\)")
          for bad in (0.0, 1.0, 1.5, -0.25)),
        Case("fnn.data.train_test_split", "test_size NaN", lambda bad: skl(X, Y_BIN, test_size=bad), NaN,
             FnnValueError, r"test_size=nan as a fraction must be in \(0, 1\)"),
        *(Case("fnn.data.train_test_split", f"test_size {bad} of {N} samples", lambda bad: skl(X, Y_BIN, test_size=bad),
               bad, FnnValueError, rf"test_size={bad} as a count of samples must be in \[1, 3\] for 4 samples")
          for bad in (0, N, N + 1)),
        Case("fnn.data.train_test_split", "test_size '0.2'", lambda bad: skl(X, Y_BIN, test_size=bad), "0.2",
             FnnTypeError, r"test_size must be a fraction in \(0, 1\) or a count of samples, got str '0.2'"),
        Case("fnn.data.train_test_split", "test_size True", lambda bad: skl(X, Y_BIN, test_size=bad), True,
             FnnTypeError, r"test_size must be a fraction in \(0, 1\) or a count of samples, got bool True"),
        Case("fnn.data.train_test_split", "train_size 1.5", lambda bad: skl(X, Y_BIN, train_size=bad), 1.5,
             FnnValueError, r"train_size=1.5 as a fraction must be in \(0, 1\)"),
        Case("fnn.data.train_test_split", "test_size + train_size over 1",
             lambda bad: skl(X, Y_BIN, test_size=bad, train_size=0.5), 0.75, FnnValueError,
             r"test_size \+ train_size = 1.25 is over 1"),
        Case("fnn.data.train_test_split", "counts over n", lambda bad: skl(X, Y_BIN, test_size=bad, train_size=3), 2,
             FnnValueError, r"ask for 3 \+ 2 = 5 samples but there are 4"),
        Case("fnn.data.train_test_split", "a test fraction leaving no train rows",
             lambda bad: skl(X, Y_BIN, test_size=bad), 0.9, FnnValueError,
             r"test_size=0.9 of 4 samples leaves no training samples"),
        Case("fnn.data.train_test_split", "arrays of different lengths", lambda bad: skl(X, bad), Y_BIN[:3],
             FnnValueError, r"different numbers of samples: arrays\[0\] has 4, arrays\[1\] has 3"),
        Case("fnn.data.train_test_split", "no arrays", lambda bad: data.train_test_split(*bad), (), FnnValueError,
             r"needs at least one array to split"),
        Case("fnn.data.train_test_split", "an array 0-d", lambda bad: skl(X, bad), np.float32(1.0), FnnValueError,
             r"arrays\[1\] must have one entry per sample, got a scalar"),
        Case("fnn.data.train_test_split", "an array None", lambda bad: skl(bad, Y_BIN), None, FnnTypeError,
             r"arrays\[0\] must be an array with one row per sample, got NoneType"),
        Case("fnn.data.train_test_split", "stratify with a one-member class",
             lambda bad: skl(X, Y_BIN, test_size=2, stratify=bad), np.array([0, 0, 0, 1]), FnnValueError,
             r"stratify: 1 class\(es\) have a single member.*at least 2 rows"),
        Case("fnn.data.train_test_split", "stratify with more classes than test rows",
             lambda bad: skl(X, Y_BIN, test_size=1, stratify=bad), Y_BIN, FnnValueError,
             r"stratify: the test set of 1 samples cannot hold one of each of the 2 classes"),
        Case("fnn.data.train_test_split", "stratify of another length",
             lambda bad: skl(X, Y_BIN, stratify=bad), Y_BIN[:3], FnnValueError,
             r"stratify has 3 labels but the arrays have 4 samples"),
        Case("fnn.data.train_test_split", "stratify with shuffle=False",
             lambda bad: skl(X, Y_BIN, shuffle=False, stratify=bad), Y_BIN, FnnValueError,
             r"stratify needs shuffle=True"),
        Case("fnn.data.train_test_split", "shuffle 'yes'", lambda bad: skl(X, Y_BIN, shuffle=bad), "yes",
             FnnTypeError, r"shuffle must be True or False, got str 'yes'"),
        Case("fnn.data.train_test_split", "random_state a negative int", lambda bad: skl(X, Y_BIN, random_state=bad),
             -1, FnnValueError, r"random_state as an integer seed must be in \[0, 2\*\*32 - 1\], got -1"),
        Case("fnn.data.train_test_split", "random_state a string", lambda bad: skl(X, Y_BIN, random_state=bad),
             "0", FnnTypeError, r"random_state must be a JAX PRNG key .*got str"),
        Case("fnn.data.train_test_split", "test_fraction with the arrays first",
             lambda bad: skl(X, Y_BIN, test_fraction=bad), 0.5, FnnTypeError,
             r"test_fraction goes with the key-first form.*pass test_size="),
        Case("fnn.data.train_test_split", "test_size with a key first", lambda bad: split(X, Y_BIN, test_size=bad),
             0.5, FnnTypeError, r"train_test_split\(key, x, y, test_fraction=...\) takes no test_size"),
        Case("fnn.data.train_test_split", "a key and three arrays", lambda bad: data.train_test_split(KEY, X, Y_BIN, bad),
             Y_BIN, FnnTypeError, r"takes a key and two arrays, got 3 array\(s\) after the key"),
        Case("fnn.data.standardize", "x with NaN", data.standardize, _with(X, (1, 0), NaN), FnnValueError,
             r"x contains 1 non-finite value\(s\); the first is nan at row 1, column 0"),
        Case("fnn.data.standardize", "x 3-d", data.standardize, X[None], FnnValueError,
             r"x must be 2-d \(n_samples, n_features\), got shape \(1, 4, 2\)"),
        Case("fnn.data.standardize", "x with 0 samples", data.standardize, X[:0], FnnValueError,
             r"x has 0 samples \(shape \(0, 2\)\)"),
        Case("fnn.data.standardize", "x of strings", data.standardize, np.array([["a", "b"]]), FnnTypeError,
             r"x must have a numeric dtype"),
        Case("fnn.data.standardize", "x_train with NaN, beside x_test", lambda bad: data.standardize(bad, X),
             _with(X, (1, 0), NaN), FnnValueError, r"x_train contains 1 non-finite value\(s\)"),
        Case("fnn.data.standardize", "another array with 3 features", lambda bad: data.standardize(X, bad),
             np.ones((2, 3)), FnnValueError, r"others\[0\] has 3 features \(shape \(2, 3\)\) but x_train has 2"),
        Case("fnn.data.standardize", "another array with inf", lambda bad: data.standardize(X, X, bad),
             _with(X, (0, 1), INF), FnnValueError, r"others\[1\] contains 1 non-finite value\(s\); the first is inf at "
                                                   r"row 0, column 1"),
    ]


# --------------------------------------------------------------------------- the table
CASES: list[Case] = (_model_cases() + _activation_cases() + _x_cases() + _data_cases() + _loss_cases() + _fit_cases() + _trainer_cases()
                     + _callback_cases() + _optim_cases() + _checkpoint_cases() + _numerical_cases()
                     + _data_module_cases())
ENTRY_POINTS: list[str] = sorted({c.entry for c in CASES})
# the training entry points: none of their bad inputs may trace, compile or even look up a program
TRAINING_ENTRIES = ("fnn.fit", "fnn.Trainer", "trainer.init", "trainer.run")
FIT_CASES: list[Case] = [c for c in CASES if c.entry in TRAINING_ENTRIES or c.entry.startswith("fnn.callbacks.")]

assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


# --------------------------------------------------------------------------- legitimate edge cases
def _finite(tree) -> bool:
    return all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(tree))


def _trained(result, model, params, epochs=2) -> None:
    """A fit that ran every epoch to finite params of the right shapes and a finite history."""
    assert result.stop_reason == "epochs" and result.epochs_run == epochs, result
    assert [np.shape(leaf) for leaf in jax.tree.leaves(result.params)] == [np.shape(leaf) for leaf in
                                                                         jax.tree.leaves(params)]
    assert _finite(result.params) and all(np.isfinite(v).all() for v in result.history.values()), result.history
    assert all(len(v) == epochs for v in result.history.values())


def _same(a, b) -> None:
    """Bitwise equal trees (or floats)."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def _edge_one_sample():
    r = fit(BIN, PARAMS[BIN], X[:1], Y_BIN[1:2], epochs=2)
    _trained(r, BIN, PARAMS[BIN])


def _edge_one_feature():
    params = _params(BIN, 3, input_dim=1)
    r = fit(BIN, params, X[:, :1], Y_BIN, epochs=2)
    _trained(r, BIN, params)
    assert np.shape(fnn.predict(BIN, r.params, X[:, :1])) == (N, 1)


def _edge_single_class_binary():
    r = fit(BIN, PARAMS[BIN], X, np.zeros(N, np.int32), epochs=2)
    _trained(r, BIN, PARAMS[BIN])


def _edge_single_class_categorical():
    r = fit(CAT, PARAMS[CAT], X, np.full(N, 1), epochs=2)
    _trained(r, CAT, PARAMS[CAT])


def _edge_big_batch():
    r = fit(BIN, PARAMS[BIN], X, Y_BIN, epochs=2, batch_size=64)
    _trained(r, BIN, PARAMS[BIN])


def _edge_column_targets_fit(loss):
    model, y = PROBLEMS[loss]
    column, flat = np.asarray(y).reshape(N, 1), np.asarray(y).reshape(N)
    a = fit(model, PARAMS[model], X, flat, loss=loss, epochs=2)
    b = fit(model, PARAMS[model], X, column, loss=loss, epochs=2)
    _trained(a, model, PARAMS[model])
    _same((a.params, a.history), (b.params, b.history))


def _edge_column_targets(entry, loss):
    model, y = PROBLEMS[loss]
    f = DATA_ENTRIES[entry]
    column, flat = np.asarray(y).reshape(N, 1), np.asarray(y).reshape(N)
    a, b = f(model, PARAMS[model], X, flat, loss), f(model, PARAMS[model], X, column, loss)
    assert _finite(a)
    _same(a, b)
    if entry == "fnn.objective(...)(params, x, y)":
        assert np.shape(a) == ()  # a mean over n samples, never an (n, n) broadcast


def _edge_loss_column_targets(name):
    fn, kind, pred = LOSS_FUNCTIONS[name]
    y = np.asarray(PROBLEMS[kind][1] if kind != "mse" else X[:, :1])
    a, b = fn(pred, y.reshape(N)), fn(pred, y.reshape(N, 1))
    assert _finite(a)
    _same(a, b)
    if name.endswith("_grad"):
        assert np.shape(a) == pred.shape
    else:
        assert np.shape(a) == ()
    if kind == "categorical_cross_entropy":  # labels and one-hot rows are the same targets
        _same(a, fn(pred, np.eye(3, dtype=np.float32)[y]))
    if kind != "categorical_cross_entropy":  # (n,) predictions are one output too; a gradient keeps their shape
        _same(a, np.reshape(fn(pred.reshape(N), y.reshape(N)), np.shape(a)))


def _edge_single_example(entry):
    f = X_ENTRIES[entry]
    one, batch = f(BIN, PARAMS[BIN], X[1]), f(BIN, PARAMS[BIN], X[1:2])
    _same(one, np.asarray(batch)[0])


def _edge_list_and_int_inputs():
    as_list = fnn.predict(BIN, PARAMS[BIN], [[1, 2], [3, -4]])
    as_float = fnn.predict(BIN, PARAMS[BIN], np.array([[1.0, 2.0], [3.0, -4.0]], np.float32))
    _same(as_list, as_float)


def _edge_bool_labels():
    a = fnn.evaluate(BIN, PARAMS[BIN], X, Y_BIN.astype(bool))
    assert a == fnn.evaluate(BIN, PARAMS[BIN], X, Y_BIN)


def _edge_numpy_integers():
    assert fnn.Dense(np.int64(3)).units == 3 and type(fnn.Dense(np.int64(3)).units) is int
    assert optim.sgd(np.float64(0.1)) == optim.sgd(0.1)
    assert optim.momentum(0.1, np.float32(0.5)) == optim.momentum(0.1, 0.5)


def _edge_gradcheck_float32():
    check = fnn.gradcheck(_quadratic, _POINT, 0.3, h=1e-2, tolerance=1e-4)
    assert check.ok, check


def _edge_int_seed(entry):
    """An integer seed where a key is taken means jax.random.key(seed)."""
    calls = {
        "model.init": lambda key: BIN.init(key, D),
        "fnn.initializers.glorot_uniform": lambda key: initializers.glorot_uniform(key, (2, 3)),
        "fnn.fit": lambda key: (lambda r: (r.params, r.history))(fit(BIN, PARAMS[BIN], X, Y_BIN, key=key)),
        "fnn.data.circles": lambda key: data.circles(key, n_samples=8),
        "fnn.data.spiral": lambda key: data.spiral(key, n_samples=9),
        "fnn.data.train_test_split": lambda key: data.train_test_split(key, X, Y_BIN),
    }
    call = calls[entry]
    want = call(jax.random.key(3))
    _same(call(3), want)
    _same(call(np.int64(3)), want)


def _edge_declared_input_dim():
    model = fnn.Sequential([fnn.Dense(3, input_dim=D, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
    params = model.init(KEY)
    _same(params, model.init(KEY, D))
    _same(params, BIN.init(KEY, D))  # declaring the width changes nothing else
    assert model.declared_input_dim == D and np.shape(fnn.predict(model, params, X)) == (N, 1)


def _edge_keras_example():
    model = fnn.Sequential([fnn.Dense(4, input_dim=2, activation="relu"), fnn.Dense(6, activation="relu"),
                            fnn.Dense(6, activation="relu"), fnn.Dense(4, activation="relu"),
                            fnn.Dense(1, activation="sigmoid")])
    shapes = [np.shape(leaf) for leaf in jax.tree.leaves(model.init(0))]
    assert shapes == [(2, 4), (4,), (4, 6), (6,), (6, 6), (6,), (6, 4), (4,), (4, 1), (1,)], shapes


def _edge_verbose_true():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        r = fit(BIN, PARAMS[BIN], X, Y_BIN, epochs=2, verbose=True)
    _trained(r, BIN, PARAMS[BIN])
    lines = [line for line in out.getvalue().splitlines() if line.startswith("epoch ")]
    assert [line.split(" - ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"], out.getvalue()


def _edge_integral_float_epochs():
    a = fit(BIN, PARAMS[BIN], X, Y_BIN, epochs=10.0)
    _trained(a, BIN, PARAMS[BIN], epochs=10)
    _same((a.params, a.history), (lambda r: (r.params, r.history))(fit(BIN, PARAMS[BIN], X, Y_BIN, epochs=10)))


def _edge_patience_zero():
    """EarlyStopping(patience=0): every epoch improves on the best, or the run stops there (never at epoch 0)."""
    r = fit(BIN, PARAMS[BIN], X, Y_BIN, epochs=6, optimizer=optim.sgd(0.5),
            callbacks=[callbacks.EarlyStopping(monitor="loss", patience=0)])
    loss = r.history["loss"]
    assert r.stop_reason in ("early_stopping", "epochs") and r.epochs_run == len(loss) >= 2, r
    assert all(b < a for a, b in itertools.pairwise(loss[:-1])), loss  # improved every epoch before the last
    if r.stop_reason == "early_stopping":
        assert loss[-1] >= loss[-2], loss
    else:
        assert r.epochs_run == 6 and loss[-1] < loss[-2], loss


def _edge_trainer_integral_float_batch_size():
    assert fnn.Trainer(BIN, batch_size=2.0).batch_size == 2


def _edge_initial_state_done():
    """initial_state that has run all of epochs=: nothing more runs, the state comes back as it was."""
    state = _state(BIN, epoch=3)
    r = fit(BIN, PARAMS[BIN], X, Y_BIN, epochs=3, initial_state=state)
    assert r.stop_reason == "epochs" and r.epochs_run == 3 and all(v == [] for v in r.history.values()), r
    _same(r.state._replace(key=jax.random.key_data(r.state.key)), state._replace(key=jax.random.key_data(state.key)))


def _edge_weighted_validation():
    """validation_data=(x, y, w): val_loss is the mean of w·loss over the rows; the metric unweighted."""
    w = np.array([0.0, 1.0, 2.0, 1.0])
    r = fit(BIN, PARAMS[BIN], X, Y_BIN, epochs=1, validation_data=(X, Y_BIN, w))
    per = np.asarray(fnn.losses.binary_cross_entropy_per_sample(BIN.apply(r.params, X), Y_BIN[:, None]))
    assert np.isclose(r.history["val_loss"][0], np.mean(w * per), rtol=1e-5), (r.history, per)


def _edge_keras_metrics():
    r = fit(BIN, PARAMS[BIN], X, Y_BIN, epochs=1, metrics=["acc", "mean_absolute_error"])
    assert list(r.history) == ["loss", "accuracy", "acc", "mean_absolute_error"], r.history
    assert r.history["acc"] == r.history["accuracy"], r.history


def _edge_input_shape():
    model = fnn.Sequential([fnn.Dense(3, activation="tanh", input_shape=(2,)), fnn.Dense(1, activation="sigmoid")])
    assert model == fnn.Sequential([fnn.Dense(3, activation="tanh", input_dim=2), fnn.Dense(1, activation="sigmoid")])
    assert [p.w.shape for p in model.init(0)] == [(2, 3), (3, 1)]


EDGE_CASES: list[Edge] = [
    Edge("fnn.fit", "validation_data=(x, y, sample_weight)", _edge_weighted_validation),
    Edge("fnn.fit", "metrics= by Keras' names", _edge_keras_metrics),
    Edge("fnn.Dense", "Keras' input_shape=(d,)", _edge_input_shape),
    Edge("fnn.fit", "one sample (batch_size 2)", _edge_one_sample),
    Edge("fnn.fit", "one feature", _edge_one_feature),
    Edge("fnn.fit", "a single class present, binary", _edge_single_class_binary),
    Edge("fnn.fit", "a single class present, categorical", _edge_single_class_categorical),
    Edge("fnn.fit", "batch_size 64 for 4 samples", _edge_big_batch),
    Edge("fnn.fit", "verbose=True: a line per epoch", _edge_verbose_true),
    Edge("fnn.fit", "epochs=10.0 is epochs=10", _edge_integral_float_epochs),
    Edge("fnn.fit", "EarlyStopping(patience=0)", _edge_patience_zero),
    Edge("fnn.fit", "initial_state that has run all of epochs=", _edge_initial_state_done),
    Edge("fnn.Trainer", "batch_size=2.0 is 2", _edge_trainer_integral_float_batch_size),
    Edge("fnn.predict", "int lists as x", _edge_list_and_int_inputs),
    Edge("fnn.evaluate", "bool labels", _edge_bool_labels),
    Edge("fnn.Dense", "numpy integer units and rates", _edge_numpy_integers),
    Edge("fnn.gradcheck", "float32 params, a large step", _edge_gradcheck_float32),
    Edge("model.init", "input_dim declared by the first layer, left out of init", _edge_declared_input_dim),
    Edge("fnn.Sequential", "the Keras example: Dense(4, input_dim=2, ...) ..., init(0)", _edge_keras_example),
]
EDGE_CASES += [Edge(entry, "an int seed as the key", functools.partial(_edge_int_seed, entry))
               for entry in ("model.init", "fnn.initializers.glorot_uniform", "fnn.fit", "fnn.data.circles",
                             "fnn.data.spiral", "fnn.data.train_test_split")]
EDGE_CASES.append(Edge("fnn.fit", "binary_cross_entropy: (n,) targets train as (n, 1) ones",
                       functools.partial(_edge_column_targets_fit, "binary_cross_entropy")))
EDGE_CASES += [Edge(entry, f"{loss}: (n,) targets give what (n, 1) ones give",
                    functools.partial(_edge_column_targets, entry, loss))
               for entry in DATA_ENTRIES if entry not in ("fnn.fit", "trainer.run") for loss in PROBLEMS]
EDGE_CASES += [Edge(f"fnn.losses.{name}", "(n,) targets give what (n, 1) ones give",
                    functools.partial(_edge_loss_column_targets, name)) for name in LOSS_FUNCTIONS]
EDGE_CASES += [Edge(entry, "a single example (d,)", functools.partial(_edge_single_example, entry))
               for entry in sorted(SINGLE_OK)]


def run_edge(edge: Edge) -> Outcome:
    """Run a legitimate corner case: "clear" if it worked, else what went wrong."""
    try:
        edge.check()
    except Exception as e:  # noqa: BLE001
        return Outcome("raw" if not isinstance(e, (FnnError, AssertionError)) else "wrong_class",
                       f"{type(e).__qualname__}: {str(e)[:300]}")
    return Outcome("clear", "")


# --------------------------------------------------------------------------- running a case
class Outcome(NamedTuple):
    status: str  # clear, wrong_class, wrong_message, traced, raw or silent
    detail: str  # the exception type and message, or what the call returned


STATUSES = ("clear", "wrong_class", "wrong_message", "traced", "raw", "silent")
_JAX_DIR = os.path.dirname(jax.__file__)
_TRACING = ("pjit.py", "api.py", "linear_util.py", "partial_eval.py", "ad.py", "batching.py")


def _raised_inside_a_trace(e: BaseException) -> bool:
    """True if a JAX transformation (jit, grad, vmap, ...) was on the stack when `e` was raised."""
    tb = e.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(_JAX_DIR) and os.path.basename(filename) in _TRACING:
            return True
        tb = tb.tb_next
    return False


def run(case: Case) -> Outcome:
    """Call the entry point with the bad input and say what happened (see the module docstring)."""
    filtering = jax.config.jax_traceback_filtering
    jax.config.update("jax_traceback_filtering", "off")  # keep JAX's frames, to see if a trace was running
    try:
        result = case.call(case.bad)
    except Exception as e:  # noqa: BLE001 - classifying every failure is the point
        detail = f"{type(e).__module__}.{type(e).__qualname__}: {str(e)[:300]}"
        if not isinstance(e, FnnError):
            return Outcome("raw", detail)
        if not isinstance(e, case.error):
            return Outcome("wrong_class", detail)
        if not re.search(case.match, str(e)):
            return Outcome("wrong_message", f"{detail}\n  (expected a match for {case.match!r})")
        if _raised_inside_a_trace(e):
            return Outcome("traced", detail)
        return Outcome("clear", detail)
    finally:
        jax.config.update("jax_traceback_filtering", filtering)
    return Outcome("silent", f"returned {type(result).__name__}: {str(result)[:200]}")


def tally(cases=None) -> dict:
    """{status: number of cases}, plus the non-clear cases themselves under "problems"."""
    counts = dict.fromkeys(STATUSES, 0)
    problems = []
    for case in CASES if cases is None else cases:
        outcome = run(case)
        counts[outcome.status] += 1
        if outcome.status != "clear":
            problems.append((case, outcome))
    return {"counts": counts, "problems": problems}
