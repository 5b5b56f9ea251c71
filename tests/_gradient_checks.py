"""Gradient-correctness checks, written once and used twice.

tests/test_backprop.py-style checks as plain functions that raise AssertionError on failure:

    check_backprop_matches_autodiff   fnn.backprop.gradients == jax.grad(fnn.objective) on networks
                                      that use every activation, every loss pairing, a softmax
                                      hidden layer, and ReLU units sitting exactly on their kink
    check_extreme_logits              logits of ±1e4 with sigmoid + binary CE (and binary focal CE)
                                      and softmax + categorical CE: loss and gradients finite and exact
    check_activation_vjps             every registry activation's vjp (g · f'(z)) == jax.vjp of its fn
                                      at its kinks, at ±30 and at random points
    check_loss_gradients              every registry loss's gradient == jax.grad of its value
    check_dropout_and_regularizers    backprop with Dropout masks (a fixed key) and l1, l2, l1_l2 penalties
                                      on kernels and biases == jax.grad(fnn.objective)(params, x, y, key)

They must pass on the library as it is (tests/test_mutation.py, experiments/reliability.py) and
fail on each deliberately wrong derivative in MUTANTS, so a green run means the checks can see
the bugs they are there for. The problems are tiny, and float64 where jax_enable_x64 is on.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import DenseParams, _compile, activations, backprop, losses, regularizers


class Problem(NamedTuple):
    name: str
    model: fnn.Sequential
    loss: str
    params: tuple
    x: np.ndarray
    y: np.ndarray


def default_dtype():
    return np.float64 if jax.config.jax_enable_x64 else np.float32


def _tolerance(dtype) -> float:
    return 1e-10 if dtype == np.float64 else 2e-5


def _params(model, n_in, rng, dtype, zero_bias=False):
    out = []
    for layer in model.layers:
        w = rng.normal(size=(n_in, layer.units)) / np.sqrt(n_in)
        b = np.zeros(layer.units) if zero_bias else 0.3 * rng.normal(size=layer.units)
        out.append(DenseParams(jnp.asarray(w, dtype), jnp.asarray(b, dtype)))
        n_in = layer.units
    return tuple(out)


def problems(dtype=None) -> list[Problem]:
    """Small networks covering every activation's derivative and every loss pairing."""
    dtype = dtype or default_dtype()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3)).astype(dtype)
    dense = fnn.Dense
    nets = [
        ("tanh, sigmoid + binary CE", [dense(4, activation="tanh"), dense(1, activation="sigmoid")],
         "binary_cross_entropy", rng.integers(0, 2, 6)),
        ("relu, leaky_relu, softmax + categorical CE",
         [dense(5, activation="relu"), dense(4, activation="leaky_relu"), dense(3, activation="softmax")],
         "categorical_cross_entropy", rng.integers(0, 3, 6)),
        ("sigmoid, linear + mse", [dense(4, activation="sigmoid"), dense(2)], "mse", rng.normal(size=(6, 2))),
        ("tanh, softmax + mse (softmax's own backward pass)",
         [dense(4, activation="tanh"), dense(3, activation="softmax")], "mse", rng.uniform(size=(6, 3))),
        ("softmax hidden layer", [dense(4, activation="softmax"), dense(2, activation="tanh"), dense(1)], "mse",
         rng.normal(size=(6, 1))),
        ("swish, sigmoid + binary focal CE (fused on the logits)",
         [dense(4, activation="swish"), dense(1, activation="sigmoid")], "binary_focal_crossentropy",
         rng.integers(0, 2, 6)),
    ]
    out = [Problem(name, fnn.Sequential(layers), loss, _params(fnn.Sequential(layers), 3, rng, dtype), x,
                   np.asarray(y, dtype if loss == "mse" else np.int32))
           for name, layers, loss, y in nets]
    # ReLU units exactly on the kink: a zero input row and zero biases make z = 0 there, where
    # fnn (like jax.grad of jnp.where(z > 0, z, 0)) takes the slope 0
    kink = fnn.Sequential([dense(4, activation="relu"), dense(3, activation="relu"), dense(1)])
    x_kink = np.concatenate([np.zeros((2, 3)), rng.normal(size=(4, 3))]).astype(dtype)
    out.append(Problem("relu at its kink z = 0", kink, "mse", _params(kink, 3, rng, dtype, zero_bias=True), x_kink,
                       rng.normal(size=(6, 1)).astype(dtype)))
    return out


def _max_error(got, want) -> float:
    """max |got − want| / max(|want|, 1) over every leaf."""
    worst = 0.0
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        if g.shape != w.shape:
            return float("inf")
        worst = max(worst, float(np.max(np.abs(g - w) / np.maximum(np.abs(w), 1.0))))
    return worst


_COMPILED: dict = {}


def _both(model, loss, params, x, y):
    """(backprop.backward, jax.value_and_grad(fnn.objective)) at params, compiled.

    One small program per (problem, the library functions it runs through): a mutant that swaps
    one of those recompiles only the problems that use it, and the unmutated library reuses its
    programs. The registry entries, the loss table entries and backprop's own functions are the
    key, so swapping any of them is seen.
    """
    spec = fnn.models.resolve_loss(model, loss)
    library = (tuple(activations.ACTIVATIONS[name] for name in model.activations), losses.LOSSES[spec.name],
               backprop.dense_vjp, backprop.mlp_backward, backprop.forward, backprop._backward)
    key = (model, loss, np.asarray(x).tobytes(), np.asarray(x).shape, np.asarray(y).tobytes(), np.asarray(y).shape,
           tuple((leaf.shape, str(leaf.dtype)) for leaf in jax.tree.leaves(params)), library)
    if key not in _COMPILED:
        objective = fnn.objective(model, loss)
        _COMPILED[key] = jax.jit(lambda p: (backprop.backward(model, loss, p, x, y),
                                            jax.value_and_grad(objective)(p, x, y)))
    return _COMPILED[key](params)


def check_backprop_matches_autodiff(dtype=None) -> None:
    """fnn.backprop.gradients equals jax.grad(fnn.objective) (and its loss the objective) on every problem."""
    dtype = dtype or default_dtype()
    tol = _tolerance(dtype)
    failures = []
    for p in problems(dtype):
        out, (want_loss, want) = _both(p.model, p.loss, p.params, p.x, p.y)
        scale = max(float(np.abs(np.asarray(leaf)).max()) for leaf in jax.tree.leaves(want))
        assert scale > 1e-3, f"{p.name}: a vanishing gradient makes the comparison vacuous"
        err = max(_max_error(out.grads, want), _max_error(out.loss, want_loss))
        if not err <= tol:
            failures.append(f"{p.name}: backprop differs from jax.grad by {err:.3g} (tolerance {tol:g})")
    assert not failures, "; ".join(failures)


def check_extreme_logits(dtype=None) -> None:
    """Logits of ±1e4: the loss and both gradients (jax.grad and backprop) are finite and exact."""
    dtype = dtype or default_dtype()
    failures = []

    # sigmoid + binary CE: z = (1e4, −1e4, 1e4, −1e4), y = (0, 0, 1, 1): the 1st and 4th are wrong
    # by softplus(1e4) = 1e4 each, so L = 5e3; δ = (σ(z) − y)/4 = (¼, 0, 0, −¼), ∂L/∂w = Σ x δ = ½
    model = fnn.Sequential([fnn.Dense(1, activation="sigmoid")])
    params = (DenseParams(jnp.asarray([[1e4]], dtype), jnp.zeros(1, dtype)),)
    x, y = np.array([[1.0], [-1.0], [1.0], [-1.0]], dtype), np.array([0, 0, 1, 1])
    failures += _exact(model, "binary_cross_entropy", params, x, y, 5e3, [([[0.5]], [0.0])],
                       "sigmoid + binary CE at ±1e4")
    # binary focal CE: 1 − p_t is 1 on the two wrong logits and 0 on the right ones: L and ∂L/∂w are binary CE's
    failures += _exact(model, "binary_focal_crossentropy", params, x, y, 5e3, [([[0.5]], [0.0])],
                       "sigmoid + binary focal CE at ±1e4")

    # softmax + categorical CE: a tanh layer saturated at ±1 feeds logits (1e4, −1e4, 0) with
    # label 1 and (−1e4, 1e4, 0) with label 2: losses 2e4 and 1e4, L = 1.5e4;
    # δ = (softmax − one-hot)/2 = [(½, −½, 0), (0, ½, −½)], a₁ = ±1
    model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(3, activation="softmax")])
    params = (DenseParams(jnp.asarray(100 * np.eye(3), dtype), jnp.zeros(3, dtype)),
              DenseParams(jnp.asarray(np.diag([1e4, -1e4, 0.0]), dtype), jnp.zeros(3, dtype)))
    x, y = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]], dtype), np.array([1, 2])
    failures += _exact(model, "categorical_cross_entropy", params, x, y, 1.5e4,
                       [None, ([[0.5, -1.0, 0.5]] * 3, [0.5, 0.0, -0.5])], "softmax + categorical CE at ±1e4")
    assert not failures, "; ".join(failures)


def _exact(model, loss, params, x, y, want_loss, want_grads, name) -> list[str]:
    out, (value, auto) = _both(model, loss, params, x, y)
    problems_found = []
    for label, got_loss, grads in (("jax.grad", value, auto), ("backprop", out.loss, out.grads)):
        leaves = [np.asarray(v, np.float64) for v in jax.tree.leaves((got_loss, grads))]
        if not all(np.isfinite(v).all() for v in leaves):
            problems_found.append(f"{name}: {label} gives a non-finite loss or gradient")
            continue
        if not np.isclose(float(got_loss), want_loss, rtol=1e-6, atol=0):
            problems_found.append(f"{name}: {label} loss {float(got_loss)} != {want_loss}")
        for layer, want in zip(grads, want_grads):
            if want is None:
                continue
            if not (np.allclose(layer.w, want[0], rtol=1e-6, atol=1e-12)
                    and np.allclose(layer.b, want[1], rtol=1e-6, atol=1e-12)):
                problems_found.append(f"{name}: {label} gradient {np.asarray(layer.w).tolist()}, "
                                      f"{np.asarray(layer.b).tolist()} != {want}")
    return problems_found


def _points(dtype):
    """(4, 5) pre-activations through the kinks 0 and ±1, at ±30 and random, and a cotangent g for them."""
    rng = np.random.default_rng(3)
    z = np.concatenate([[0.0, 1.0, -1.0, 30.0, -30.0], 3 * rng.normal(size=15)]).reshape(4, 5)
    return z.astype(dtype), rng.normal(size=(4, 5)).astype(dtype)


def _loss_case(record, dtype):
    """Outputs and targets for a registry loss: logits or values (n, 2), its kind of targets."""
    rng = np.random.default_rng(4)
    out = 1.5 * rng.normal(size=(6, 2))  # residuals either side of huber's delta = 1
    y = {fnn.targets.REAL: rng.normal(size=(6, 2)), fnn.targets.BINARY: rng.integers(0, 2, (6, 2)),
         fnn.targets.CATEGORICAL: rng.integers(0, 2, 6)}[record.targets]
    return out.astype(dtype), np.asarray(y, dtype)


def _compiled(key, build):
    """The program build() returns, compiled once per key (fnn's own jit: its XLA options compile faster)."""
    if key not in _COMPILED:
        _COMPILED[key] = _compile.jit(build())
    return _COMPILED[key]


def check_activation_vjps(dtype=None) -> None:
    """Each registry activation's vjp (what backprop runs) equals jax.vjp of its fn, at kinks, ±30 and random points.

    One small program per activation record: a mutant recompiles only the activation it swaps."""
    dtype = dtype or default_dtype()
    tol = _tolerance(dtype)
    z, g = _points(dtype)
    failures = []
    for name, act in activations.ACTIVATIONS.items():
        both = _compiled(("vjp", act, str(np.dtype(dtype))),
                         lambda act=act: lambda z, g: (act.vjp(z, g), jax.vjp(act.fn, z)[1](g)[0]))
        err = _max_error(*both(z, g))
        if not err <= tol:
            failures.append(f"{name}: vjp differs from jax.vjp by {err:.3g} (tolerance {tol:g})")
    assert not failures, "; ".join(failures)


def check_loss_gradients(dtype=None) -> None:
    """Each registry loss's hand-written gradient (the start of backprop) equals jax.grad of its value."""
    dtype = dtype or default_dtype()
    tol = _tolerance(dtype)
    failures = []
    for name, record in losses.LOSSES.items():  # one program per record, as check_activation_vjps
        out, y = _loss_case(record, dtype)
        both = _compiled(("loss", record, str(np.dtype(dtype))),
                         lambda record=record, y=y: lambda o: (record.grad(o, y), jax.grad(record.value)(o, y)))
        err = _max_error(*both(out))
        if not err <= tol:
            failures.append(f"{name}: gradient differs from jax.grad by {err:.3g} (tolerance {tol:g})")
    assert not failures, "; ".join(failures)


REGULARIZED = fnn.Sequential([
    fnn.Dropout(0.25),
    fnn.Dense(5, activation="tanh", kernel_regularizer=regularizers.l1_l2(0.03, 0.05),
              bias_regularizer=regularizers.l1(0.2)),
    fnn.Dropout(0.5),
    fnn.Dense(3, activation="softmax", kernel_regularizer=regularizers.l2(0.1), bias_regularizer="l2"),
])


def dropout_problem(dtype=None) -> Problem:
    """A 3-5-3 softmax network with Dropout before both layers and every regularizer kind, some biases at 0."""
    dtype = dtype or default_dtype()
    rng = np.random.default_rng(7)
    params = _params(REGULARIZED, 3, rng, dtype)
    params = (params[0]._replace(b=params[0].b.at[:2].set(0.0)),) + params[1:]  # l1's sign(0) = 0 checked
    x = rng.normal(size=(9, 3)).astype(dtype)
    return Problem("dropout + regularizers", REGULARIZED, "categorical_cross_entropy", params, x, rng.integers(0, 3, 9))


def check_dropout_and_regularizers(dtype=None) -> None:
    """backprop.backward(..., key) equals jax.value_and_grad(fnn.objective)(params, x, y, key): the same masks,
    walked back by dropout_vjp, and the penalties' hand-written gradients (2λw, λ·sign(w))."""
    dtype = dtype or default_dtype()
    p, key = dropout_problem(dtype), jax.random.key(11)
    library = (backprop.dropout_vjp, regularizers.l1_penalty_grad, regularizers.l2_penalty_grad, str(np.dtype(dtype)))
    both = _compiled(("dropout", library), lambda: lambda params, x, y, k: (
        backprop.backward(p.model, p.loss, params, x, y, key=k),
        jax.value_and_grad(fnn.objective(p.model, p.loss))(params, x, y, k)))
    out, (want_loss, want) = both(p.params, p.x, p.y, key)
    masks = fnn.layers.dropout_masks(key, p.model.dropout, p.params, p.x.shape[0])
    assert all(0 < float(jnp.mean(m == 0)) < 1 for m in masks), "the key must drop some units and keep others"
    err = max(_max_error(out.grads, want), _max_error(out.loss, want_loss))
    tol = _tolerance(dtype)
    assert err <= tol, f"dropout + regularizers: backprop differs from jax.grad by {err:.3g} (tolerance {tol:g})"


CHECKS: dict[str, Callable[..., None]] = {
    "backprop vs jax.grad": check_backprop_matches_autodiff,
    "extreme logits +-1e4": check_extreme_logits,
    "activation vjps vs jax.vjp": check_activation_vjps,
    "loss gradients vs jax.grad": check_loss_gradients,
    "dropout and regularizers vs jax.grad": check_dropout_and_regularizers,
}


def run_checks(dtype=None) -> dict[str, str | None]:
    """{check name: None if it passed, else its failure message}."""
    out = {}
    for name, check in CHECKS.items():
        try:
            check(dtype)
        except AssertionError as e:
            out[name] = str(e) or "failed"
        else:
            out[name] = None
    return out


# --------------------------------------------------------------------------- mutants
# Each mutant takes a monkeypatch-like object (setattr, setitem) and swaps in one wrong derivative
# or loss. `caught_by` names the check that must see it.
class Mutant(NamedTuple):
    name: str
    apply: Callable  # (monkeypatch) -> None
    caught_by: str


def _activation(name, fn, deriv=None):
    """The registry's entry for `name` with fn and deriv swapped in (its vjp follows deriv: g · deriv(z))."""
    return activations.Activation(fn, deriv or activations.ACTIVATIONS[name].deriv, name)


def _tanh_off(mp):
    mp.setitem(activations.ACTIVATIONS, "tanh",
               _activation("tanh", activations.tanh, lambda z: 1.01 * activations.tanh_deriv(z)))


def _sigmoid_without_one_minus(mp):
    mp.setitem(activations.ACTIVATIONS, "sigmoid", _activation("sigmoid", activations.sigmoid, activations.sigmoid))


def _relu_kink_one(mp):
    mp.setitem(activations.ACTIVATIONS, "relu",
               _activation("relu", activations.relu, lambda z: (z >= 0).astype(z.dtype)))


def _leaky_slope(mp):
    mp.setitem(activations.ACTIVATIONS, "leaky_relu",
               _activation("leaky_relu", activations.leaky_relu, lambda z: jnp.where(z >= 0, 1.0, 0.1).astype(z.dtype)))


def _softmax_vjp_no_subtraction(mp):
    old = activations.ACTIVATIONS["softmax"]
    mp.setitem(activations.ACTIVATIONS, "softmax",
               dataclasses.replace(old, backward=lambda z, g: activations.softmax(z) * g))


def _naive_binary_ce(mp):
    def naive(z, y):  # log σ(z) and log(1 − σ(z)) separately: −inf once σ rounds to 0 or 1
        z, t = fnn.targets.pair(z, y, fnn.targets.BINARY)
        s = jax.nn.sigmoid(z)
        return -jnp.mean(t * jnp.log(s) + (1 - t) * jnp.log(1 - s))

    mp.setitem(losses.LOSSES, losses.BINARY_CE, losses.LOSSES[losses.BINARY_CE]._replace(value=naive))


def _naive_softmax_ce(mp):
    def naive(z, y):  # log Σ exp z without subtracting the max: exp overflows
        z, t = fnn.targets.pair(z, y, fnn.targets.CATEGORICAL)
        return -jnp.sum(t * (z - jnp.log(jnp.sum(jnp.exp(z), axis=-1, keepdims=True)))) / z.shape[0]

    mp.setitem(losses.LOSSES, losses.CATEGORICAL_CE, losses.LOSSES[losses.CATEGORICAL_CE]._replace(value=naive))


def _softmax_ce_grad_without_n(mp):
    def grad(z, y):
        return losses.softmax_cross_entropy_grad(z, y) * jnp.shape(z)[0]

    mp.setitem(losses.LOSSES, losses.CATEGORICAL_CE, losses.LOSSES[losses.CATEGORICAL_CE]._replace(grad=grad))


NEW_ACTIVATIONS = ("gelu", "gelu_tanh", "elu", "selu", "softplus", "swish", "mish", "hard_tanh")
NEW_LOSSES = (losses.MAE, losses.HUBER, losses.BINARY_FOCAL)


def _derivative_one_percent_off(name):
    def apply(mp):
        act = activations.ACTIVATIONS[name]
        mp.setitem(activations.ACTIVATIONS, name,
                   _activation(name, act.fn, lambda z, deriv=act.deriv: 1.01 * deriv(z)))
    return apply


def _loss_gradient_one_percent_off(name):
    def apply(mp):
        record = losses.LOSSES[name]
        mp.setitem(losses.LOSSES, name, record._replace(grad=lambda out, y, grad=record.grad: 1.01 * grad(out, y)))
    return apply


def _bias_mean(mp):
    def dense_vjp(params, a, delta):
        return DenseParams(w=a.T @ delta, b=delta.mean(axis=0)), delta @ params.w.T

    mp.setattr(backprop, "dense_vjp", dense_vjp)


def _one_percent_off(module, name):
    def apply(mp):
        original = getattr(module, name)
        mp.setattr(module, name, lambda *args: 1.01 * original(*args))
    return apply


NEW_DERIVATIVES = {  # the mutant of each derivative Dropout and the regularizers brought
    "dropout_vjp": (backprop, "dropout_vjp"),
    "l1 penalty gradient": (regularizers, "l1_penalty_grad"),
    "l2 penalty gradient": (regularizers, "l2_penalty_grad"),
}


MUTANTS: list[Mutant] = [
    Mutant("tanh derivative 1% too large", _tanh_off, "backprop vs jax.grad"),
    Mutant("sigmoid derivative s instead of s(1 - s)", _sigmoid_without_one_minus, "backprop vs jax.grad"),
    Mutant("relu'(0) = 1", _relu_kink_one, "backprop vs jax.grad"),
    Mutant("leaky_relu derivative with slope 0.1", _leaky_slope, "backprop vs jax.grad"),
    Mutant("softmax vjp without the -<g, s> term", _softmax_vjp_no_subtraction, "backprop vs jax.grad"),
    Mutant("fused softmax CE gradient not divided by n", _softmax_ce_grad_without_n, "backprop vs jax.grad"),
    Mutant("dense_vjp bias gradient a mean, not a sum", _bias_mean, "backprop vs jax.grad"),
    Mutant("naive log(sigmoid) binary CE in place of the fused one", _naive_binary_ce, "extreme logits +-1e4"),
    Mutant("softmax CE without subtracting the max logit", _naive_softmax_ce, "extreme logits +-1e4"),
    *(Mutant(f"{name} derivative 1% too large", _derivative_one_percent_off(name), "activation vjps vs jax.vjp")
      for name in NEW_ACTIVATIONS),
    *(Mutant(f"{name} gradient 1% too large", _loss_gradient_one_percent_off(name), "loss gradients vs jax.grad")
      for name in NEW_LOSSES),
    *(Mutant(f"{name} 1% too large", _one_percent_off(*where), "dropout and regularizers vs jax.grad")
      for name, where in NEW_DERIVATIVES.items()),
]
