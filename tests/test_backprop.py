"""Hand-written backprop against jax.grad, central differences and check_grads.

Parameters come from numpy (no jax.random), and comparisons run compiled, several per call
(`run`), in XLA's quick compilation mode: every eager operation on a new shape is compiled on
its own, and compilation, not arithmetic, is what these tests spend their time on.
"""
import ast
import functools
import inspect

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from jax.test_util import check_grads

import fnn
from fnn import DenseParams, activations, backprop, layers, losses
from fnn.errors import FnnTypeError, FnnValueError

N, N_IN = 8, 3
HIDDEN = (fnn.Dense(5, activation="tanh"), fnn.Dense(4, activation="relu"))
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}
SEED_MODEL = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(1, activation="sigmoid")])
SOFTMAX_MODEL = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(3, activation="softmax")])


def run(f, *args):
    """f(*args) compiled once, with numpy leaves out."""
    return jax.tree.map(np.asarray, jax.jit(f)(*args))


def random_params(model, input_dim, dtype=np.float64, seed=0, scale=1.0):
    """Random params with non-zero biases, made with numpy."""
    rng = np.random.default_rng(seed)
    params, n_in = [], input_dim
    for layer in model.layers:
        w = scale * rng.normal(size=(n_in, layer.units)) / np.sqrt(n_in)
        b = 0.5 * rng.normal(size=layer.units)
        params.append(DenseParams(jnp.asarray(w.astype(dtype)), jnp.asarray(b.astype(dtype))))
        n_in = layer.units
    return tuple(params)


def features(n=N, d=N_IN, seed=1):
    return np.random.default_rng(seed).normal(size=(n, d))


def targets(kind, k, n=N, seed=2):
    rng = np.random.default_rng(seed)
    if kind == "real":
        return rng.normal(size=(n, k))
    if kind == "real-flat":
        return rng.normal(size=n)
    if kind == "unit":
        return rng.uniform(size=(n, k))
    if kind == "binary":
        return rng.integers(0, 2, size=(n, k)).astype(np.float64)
    if kind == "binary-flat":
        return rng.integers(0, 2, size=n)
    labels = rng.permutation(np.arange(n) % k)
    if kind == "labels":
        return labels
    if kind == "label-column":
        return labels[:, None]
    return np.eye(k)[labels]  # one-hot


def assert_close_trees(got, want, rtol):
    """Same tree structure, same values to rtol (and an absolute floor far below the entries)."""
    chex.assert_trees_all_equal_structs(got, want)
    scale = max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(want))
    chex.assert_trees_all_close(got, want, rtol=rtol, atol=rtol * 0.1 * scale)


# (loss, output layer, target form): every loss with the outputs it accepts
PAIRINGS = {
    "mse-linear-flat": ("mse", fnn.Dense(1), "real-flat"),
    "mse-linear": ("mse", fnn.Dense(2), "real"),
    "mse-sigmoid": ("mse", fnn.Dense(1, activation="sigmoid"), "unit"),
    "mse-tanh": ("mse", fnn.Dense(3, activation="tanh"), "real"),
    "mse-relu": ("mse", fnn.Dense(3, activation="relu"), "real"),
    "mse-leaky_relu": ("mse", fnn.Dense(3, activation="leaky_relu"), "real"),
    "mse-softmax": ("mse", fnn.Dense(3, activation="softmax"), "one-hot"),
    "bce-sigmoid": ("binary_cross_entropy", fnn.Dense(1, activation="sigmoid"), "binary-flat"),
    "bce-sigmoid-multi": ("binary_cross_entropy", fnn.Dense(3, activation="sigmoid"), "binary"),
    "cce-softmax-labels": ("categorical_cross_entropy", fnn.Dense(3, activation="softmax"), "labels"),
    "cce-softmax-label-column": ("categorical_cross_entropy", fnn.Dense(3, activation="softmax"), "label-column"),
    "cce-softmax-one-hot": ("categorical_cross_entropy", fnn.Dense(3, activation="softmax"), "one-hot"),
}


def pairing(name, dtype=np.float64):
    loss, output, kind = PAIRINGS[name]
    model = fnn.Sequential(HIDDEN + (output,))
    return model, loss, random_params(model, N_IN, dtype), features().astype(dtype), targets(kind, output.units)


@functools.lru_cache(maxsize=None)
def pairing_results(dtype):
    """For every pairing, (backprop.gradients, jax.grad of the objective), all in one compiled call."""
    problems = {name: pairing(name, dtype) for name in PAIRINGS}
    problems["bce-sigmoid-list-params"] = problems["bce-sigmoid"][:2] + (list(problems["bce-sigmoid"][2]),) + \
        problems["bce-sigmoid"][3:]

    def both(inputs):
        out = {}
        for name, (params, x) in inputs.items():
            model, loss, _, _, y = problems[name]
            out[name] = (backprop.gradients(model, loss, params, x, y),
                         jax.grad(fnn.objective(model, loss))(params, x, y))
        return out

    return run(both, {name: (params, x) for name, (_, _, params, x, _) in problems.items()})


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(PAIRINGS))
def test_gradients_equal_jax_grad(name, dtype):
    got, want = pairing_results(dtype)[name]
    assert isinstance(got, tuple) and all(isinstance(g, DenseParams) for g in got)
    assert [g.w.shape for g in got] == [(N_IN, 5), (5, 4), (4, PAIRINGS[name][1].units)]
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(got))
    assert max(float(np.abs(leaf).max()) for leaf in jax.tree.leaves(want)) > 1e-3  # not vacuous
    assert_close_trees(got, want, TOLERANCE[dtype])


def test_gradients_keep_a_list_of_params_a_list():
    got, want = pairing_results(np.float64)["bce-sigmoid-list-params"]
    assert isinstance(got, list) and isinstance(want, list)
    assert_close_trees(got, want, 1e-10)


# --------------------------------------------------------------------------- random architectures
ACTIVATION_NAMES = sorted(activations.ACTIVATIONS)


@st.composite
def problems(draw):
    """A random network (1-5 layers, widths 1-16), a loss it pairs with, and data for it."""
    depth = draw(st.integers(1, 5))
    hidden = []
    for _ in range(depth - 1):
        act = draw(st.sampled_from(ACTIVATION_NAMES))
        hidden.append(fnn.Dense(draw(st.integers(2 if act == "softmax" else 1, 16)), activation=act))
    loss = draw(st.sampled_from(["mse", "binary_cross_entropy", "categorical_cross_entropy"]))
    if loss == "mse":
        act = draw(st.sampled_from(ACTIVATION_NAMES))
    else:
        act = "sigmoid" if loss == "binary_cross_entropy" else "softmax"
    units = draw(st.integers(2 if act == "softmax" else 1, 6))
    model = fnn.Sequential(hidden + [fnn.Dense(units, activation=act)])
    n_in, n = draw(st.integers(1, 16)), draw(st.integers(1, 32))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.5, 1.0, 2.0]))
    if loss == "mse":
        kind = "real" if units > 1 else draw(st.sampled_from(["real", "real-flat"]))
    elif loss == "binary_cross_entropy":
        kind = "binary" if units > 1 else draw(st.sampled_from(["binary", "binary-flat"]))
    else:
        kind = draw(st.sampled_from(["labels", "one-hot"]))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in))
    y = targets(kind, units, n=n, seed=seed + 1)
    return model, loss, random_params(model, n_in, seed=seed, scale=scale), x, y


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@pytest.mark.slow  # fresh processes or many examples: `make test-slow`
@given(problems())
def test_random_architectures_gradients_equal_jax_grad(problem):
    model, loss, params, x, y = problem
    objective = fnn.objective(model, loss)
    got, want = run(lambda p, x: (backprop.gradients(model, loss, p, x, y), jax.grad(objective)(p, x, y)),
                    params, x)
    chex.assert_trees_all_equal_structs(got, want)
    scale = max(float(np.max(np.abs(leaf))) for leaf in jax.tree.leaves(want))
    chex.assert_trees_all_close(got, want, rtol=1e-10, atol=1e-13 * max(scale, 1e-300))


# --------------------------------------------------------------------------- central differences
SMALL_NETS = {
    "tanh-sigmoid-bce": (fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1, activation="sigmoid")]),
                         "binary_cross_entropy", "binary-flat", 1),
    "sigmoid-softmax-cce": (fnn.Sequential([fnn.Dense(3, activation="sigmoid"), fnn.Dense(3, activation="softmax")]),
                            "categorical_cross_entropy", "labels", 3),
    "relu-tanh-mse": (fnn.Sequential([fnn.Dense(3, activation="relu"), fnn.Dense(2, activation="tanh")]),
                      "mse", "real", 2),
}


@pytest.mark.parametrize("name", sorted(SMALL_NETS))
def test_jax_grad_and_backprop_equal_central_differences(name):
    model, loss, kind, k = SMALL_NETS[name]
    params, x, y = random_params(model, 2, seed=3), features(6, 2), targets(kind, k, n=6)
    objective = fnn.objective(model, loss)
    numeric = fnn.numerical_gradient(objective, params, x, y)
    by_jax, by_hand = run(lambda p: (jax.grad(objective)(p, x, y), backprop.gradients(model, loss, p, x, y)), params)
    for analytic in (by_jax, by_hand):
        chex.assert_trees_all_equal_structs(analytic, numeric)
        for a, n in zip(jax.tree.leaves(analytic), jax.tree.leaves(numeric)):
            # gradcheck's measure: relative for large entries, absolute for small ones
            assert np.max(np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1.0)) < 1e-6
    check = fnn.gradcheck(objective, params, x, y, grad_fn=lambda p, x, y: by_hand, tolerance=1e-6)
    assert check.ok and check.max_relative_error < 1e-6, check


# --------------------------------------------------------------------------- no autodiff inside backprop
AUTODIFF = {"grad", "vjp", "jvp", "linear_transpose", "value_and_grad", "jacfwd", "jacrev", "jacobian", "hessian"}


def autodiff_uses(source):
    """Names of jax's autodiff transformations that `source` refers to (any alias of jax, any import)."""
    tree = ast.parse(source)
    jax_names, direct = {"jax"}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "jax" or alias.name.startswith("jax."):
                    jax_names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "jax":
            for alias in node.names:
                if alias.name in AUTODIFF:
                    direct.add(alias.asname or alias.name)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in AUTODIFF:
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in jax_names:
                found.add(node.attr)
        elif isinstance(node, ast.Name) and node.id in direct:
            found.add(node.id)
    return found | direct


def test_the_detector_finds_autodiff():
    assert autodiff_uses("import jax\ng = jax.grad(f)") == {"grad"}
    assert autodiff_uses("import jax as j\n_, pull = j.vjp(f, x)") == {"vjp"}
    assert autodiff_uses("from jax import value_and_grad as vg\nvg(f)") == {"vg"}
    assert autodiff_uses("import jax\njax.linear_transpose(f, x)") == {"linear_transpose"}
    assert autodiff_uses("import jax.numpy as jnp\nh = jax.jvp(f, (x,), (t,))") == {"jvp"}
    assert autodiff_uses('"""No jax.grad, vjp or jvp here."""\n# jax.vjp(f)\nact.vjp(z, g)') == set()


def test_backprop_uses_no_autodiff():
    source = inspect.getsource(backprop)
    assert "def dense_vjp" in source and "def mlp_backward" in source
    assert autodiff_uses(source) == set()


# --------------------------------------------------------------------------- custom_vjp and check_grads
def dense_through(backward):
    @jax.custom_vjp  # routes reverse mode through the given backward pass
    def dense(p, a):
        return layers.dense_apply(p, a)

    dense.defvjp(lambda p, a: (dense(p, a), (p, a)), lambda res, g: backward(*res, g))
    return dense


def dense_inputs():
    rng = np.random.default_rng(4)
    params = DenseParams(jnp.asarray(rng.normal(size=(3, 2))), jnp.asarray(rng.normal(size=2)))
    return params, jnp.asarray(rng.normal(size=(5, 3)))


def test_dense_vjp_passes_check_grads():
    check_grads(jax.jit(dense_through(backprop.dense_vjp)), dense_inputs(), order=1, modes=["rev"])


def test_check_grads_catches_a_wrong_dense_vjp():
    def wrong(p, a, g):
        grads, ga = backprop.dense_vjp(p, a, g)
        return grads._replace(b=2 * grads.b), ga

    with pytest.raises(AssertionError):
        check_grads(jax.jit(dense_through(wrong)), dense_inputs(), order=1, modes=["rev"])


def test_whole_network_backward_passes_check_grads():
    model, loss, params, x, y = pairing("cce-softmax-labels")

    @jax.custom_vjp
    def objective(p):
        return fnn.objective(model, loss)(p, x, y)

    def backward(p, g):
        return (jax.tree.map(lambda leaf: g * leaf, backprop.gradients(model, loss, p, x, y)),)

    objective.defvjp(lambda p: (objective(p), p), backward)
    check_grads(jax.jit(objective), (params,), order=1, modes=["rev"])


# --------------------------------------------------------------------------- deltas, norms, dead units
@pytest.mark.parametrize("name", ["cce-softmax-labels", "mse-softmax", "bce-sigmoid-multi", "mse-tanh"])
def test_deltas_are_the_gradients_with_respect_to_the_preactivations(name):
    model, loss, params, x, y = pairing(name)
    spec = losses.resolve(loss, model.output_activation, model.output_dim)
    t = losses.prepare_targets(y, loss, model.output_dim, jnp.float64)

    def loss_of_shifts(shifts, params):
        # the loss with δz_l added to each layer's pre-activation: ∂/∂δz_l at 0 is δ_l
        a = x
        for l, (act, p, shift) in enumerate(zip(model.activations, params, shifts)):
            z = layers.dense_apply(p, a) + shift
            a = z if (l == len(params) - 1 and spec.from_logits) else activations.get(act).fn(z)
        return losses.value(spec, a, t)

    zeros = tuple(jnp.zeros((N, layer.units)) for layer in model.layers)
    got, want = run(lambda p: (backprop.deltas(model, loss, p, x, y), jax.grad(loss_of_shifts)(zeros, p)), params)
    assert [d.shape for d in got] == [(N, 5), (N, 4), (N, model.output_dim)]
    assert_close_trees(got, want, 1e-10)


def test_last_delta_of_the_fused_pairs_is_prediction_minus_target_over_n():
    model, loss, params, x, y = pairing("cce-softmax-labels")
    delta, probs = run(lambda p: (backprop.deltas(model, loss, p, x, y)[-1], model.apply(p, x)), params)
    np.testing.assert_allclose(delta, (probs - np.eye(3)[y]) / N, rtol=1e-12, atol=1e-17)


def test_backward_returns_loss_grads_deltas_and_norms():
    model, loss, params, x, y = pairing("bce-sigmoid")
    objective = fnn.objective(model, loss)
    out, value, grads, norms, deltas, gradients = run(lambda p: (
        backprop.backward(model, loss, p, x, y), objective(p, x, y), jax.grad(objective)(p, x, y),
        backprop.gradient_norms(model, loss, p, x, y), backprop.deltas(model, loss, p, x, y),
        backprop.gradients(model, loss, p, x, y)), params)
    assert isinstance(out, backprop.Backward)
    np.testing.assert_allclose(out.loss, value, rtol=1e-13)
    assert_close_trees(out.grads, grads, 1e-10)
    assert_close_trees(gradients, out.grads, 1e-15)
    assert [d.shape for d in out.deltas] == [(N, 5), (N, 4), (N, 1)]
    want_norms = [np.sqrt(np.sum(g.w ** 2) + np.sum(g.b ** 2)) for g in grads]
    assert all(n.shape == () and n >= 0 for n in out.grad_norms)
    assert min(want_norms) > 0
    np.testing.assert_allclose(np.array(out.grad_norms), want_norms, rtol=1e-10)
    np.testing.assert_allclose(np.array(norms), want_norms, rtol=1e-10)
    chex.assert_trees_all_equal(deltas, out.deltas)


def test_dead_units_flags_a_relu_unit_with_a_very_negative_bias():
    model = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(3, activation="leaky_relu"), fnn.Dense(1)])
    rng = np.random.default_rng(5)
    params = (DenseParams(jnp.asarray(0.1 * rng.normal(size=(N_IN, 4))), jnp.array([1.0, 1.0, -1e3, 1.0])),
              DenseParams(jnp.asarray(0.1 * rng.normal(size=(4, 3))), jnp.full(3, -1e3)),
              DenseParams(jnp.asarray(rng.normal(size=(3, 1))), jnp.zeros(1)))
    x, y = features(), targets("real-flat", 1)
    dead, out = run(lambda: (backprop.dead_units(model, params, x), backprop.backward(model, "mse", params, x, y)))
    assert [d.shape for d in dead] == [(4,), (3,), (1,)]
    assert all(d.dtype == jnp.bool_ for d in dead)
    np.testing.assert_array_equal(np.asarray(dead[0]), [False, False, True, False])
    np.testing.assert_array_equal(np.asarray(dead[1]), [False] * 3)  # leaky units always pass a signal
    np.testing.assert_array_equal(np.asarray(dead[2]), [False])
    # a dead unit passes no signal: its column of δ and its gradients are exactly zero
    np.testing.assert_array_equal(np.asarray(out.deltas[0])[:, 2], np.zeros(N))
    np.testing.assert_array_equal(np.asarray(out.grads[0].w)[:, 2], np.zeros(N_IN))
    assert float(out.grads[0].b[2]) == 0.0
    assert np.abs(np.asarray(out.grads[0].w)[:, [0, 1, 3]]).min() > 0


def test_no_dead_units_at_zero_bias_with_spread_inputs():
    model = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(3, activation="leaky_relu"), fnn.Dense(1)])
    params = random_params(model, N_IN)
    params = tuple(p._replace(b=jnp.zeros_like(p.b)) for p in params)
    dead = run(lambda: backprop.dead_units(model, params, features()))
    assert not any(d.any() for d in dead)


# --------------------------------------------------------------------------- extreme logits
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_sigmoid_logits_of_1e4_give_exact_loss_and_gradients(dtype):
    model = fnn.Sequential([fnn.Dense(1, activation="sigmoid")])
    params = (DenseParams(jnp.array([[1e4]], dtype), jnp.zeros(1, dtype)),)
    x, y = np.array([[1.0], [-1.0], [1.0]]), np.array([0, 0, 1])  # logits 1e4, -1e4, 1e4
    objective = fnn.objective(model, "binary_cross_entropy")
    value, auto, out = run(lambda p: (objective(p, x, y), jax.grad(objective)(p, x, y),
                                      backprop.backward(model, "binary_cross_entropy", p, x, y)), params)
    # only the first sample is wrong, by softplus(1e4) = 1e4; δ = (σ(z) − y) / n = (1/3, 0, 0)
    np.testing.assert_allclose(value, 1e4 / 3, rtol=1e-6)
    np.testing.assert_allclose(out.loss, 1e4 / 3, rtol=1e-6)
    for grads in (auto, out.grads):
        assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(grads))
        np.testing.assert_allclose(grads[0].w, [[1 / 3]], rtol=1e-6)
        np.testing.assert_allclose(grads[0].b, [1 / 3], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_softmax_logits_of_1e4_give_exact_loss_and_gradients(dtype):
    model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(3, activation="softmax")])
    # a hidden tanh layer saturated at ±1 feeds logits of ±1e4
    params = (DenseParams(jnp.asarray(100 * np.eye(3), dtype), jnp.zeros(3, dtype)),
              DenseParams(jnp.asarray(np.diag([1e4, -1e4, 0.0]), dtype), jnp.zeros(3, dtype)))
    x, y = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]), np.array([1, 2])
    # logits (1e4, -1e4, 0) with label 1 and (-1e4, 1e4, 0) with label 2: losses 2e4 and 1e4
    objective = fnn.objective(model, "categorical_cross_entropy")
    value, auto, hand = run(lambda p: (objective(p, x, y), jax.grad(objective)(p, x, y),
                                       backprop.gradients(model, "categorical_cross_entropy", p, x, y)), params)
    np.testing.assert_allclose(value, 1.5e4, rtol=1e-6)
    # δ_L = (softmax − one-hot) / 2 = [(.5, -.5, 0), (0, .5, -.5)]; a_1 = tanh(±100) = ±1
    want_w = np.array([[0.5, -1.0, 0.5]] * 3)
    for grads in (auto, hand):
        assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(grads))
        np.testing.assert_allclose(grads[1].w, want_w, rtol=1e-6)
        np.testing.assert_allclose(grads[1].b, [0.5, 0.0, -0.5], rtol=1e-6, atol=1e-12)
    assert_close_trees(hand, auto, TOLERANCE[dtype])


# --------------------------------------------------------------------------- jit, purity and bad inputs
def test_jit_and_eager_agree():
    model, loss = SEED_MODEL, "binary_cross_entropy"  # the shapes test_models also runs eagerly
    params, x, y = random_params(model, 2), features(5, 2), np.array([0, 1, 1, 0, 1])
    objective = fnn.objective(model, loss)
    eager = float(objective(params, x, y))
    compiled = float(jax.jit(objective)(params, x, y))
    np.testing.assert_allclose(compiled, eager, rtol=1e-13)
    eager_grads = backprop.gradients(model, loss, params, x, y)
    compiled_grads = jax.jit(lambda p, x, y: backprop.gradients(model, loss, p, x, y))(params, x, y)
    assert_close_trees(jax.tree.map(np.asarray, compiled_grads), jax.tree.map(np.asarray, eager_grads), 1e-13)


def test_backprop_does_not_mutate_its_inputs():
    model, loss, params, x, y = pairing("cce-softmax-one-hot")
    params = tuple(DenseParams(np.array(p.w), np.array(p.b)) for p in params)
    copies = [a.copy() for a in (x, y, *jax.tree.leaves(params))]
    # numpy arrays closed over stay numpy arrays: the checks and the arithmetic see them as given
    run(lambda: (backprop.backward(model, loss, params, x, y), backprop.dead_units(model, params, x)))
    for a, b in zip((x, y, *jax.tree.leaves(params)), copies):
        np.testing.assert_array_equal(a, b)


ENTRY_POINTS = {
    "gradients": backprop.gradients,
    "backward": backprop.backward,
    "deltas": backprop.deltas,
    "gradient_norms": backprop.gradient_norms,
}
BAD_INPUTS = {
    "length-mismatch": (SEED_MODEL, "binary_cross_entropy", features(5, 2), np.array([0, 1, 1, 0]), FnnValueError,
                        r"x and y have different numbers of samples: 5 and 4"),
    "label-not-binary": (SEED_MODEL, "binary_cross_entropy", features(5, 2), np.array([0, 1, 2, 0, 1]),
                         FnnValueError, r"labels in \[0, 1\] in y \(0/1 classes, or soft labels\); found 2 at row 2"),
    "label-shape": (SEED_MODEL, "mse", features(5, 2), np.zeros((5, 2)), FnnValueError, r"y has 2 columns"),
    "x-width": (SEED_MODEL, "mse", features(5, 3), np.zeros(5), FnnValueError, r"x has 3 features"),
    "x-nan": (SEED_MODEL, "mse", np.where(np.arange(10).reshape(5, 2) == 7, np.nan, 1.0), np.zeros(5),
              FnnValueError, r"non-finite.*row 3, column 1"),
    "x-3d": (SEED_MODEL, "mse", np.zeros((5, 2, 1)), np.zeros(5), FnnValueError, r"x must be 2-d"),
    "x-empty": (SEED_MODEL, "mse", np.zeros((0, 2)), np.zeros(0), FnnValueError, r"0 samples"),
    "y-string": (SEED_MODEL, "mse", features(5, 2), np.array(list("abcde")), FnnTypeError, r"numeric dtype"),
    "class-range": (SOFTMAX_MODEL, "categorical_cross_entropy", features(5, 2), np.array([0, 1, 3, 0, 1]),
                    FnnValueError, r"class label y\[2\] = 3 is out of range"),
    "one-hot-width": (SOFTMAX_MODEL, "categorical_cross_entropy", features(5, 2), np.eye(2)[[0, 1, 1, 0, 1]],
                      FnnValueError, r"one-hot y has width 2"),
    "pairing": (SOFTMAX_MODEL, "binary_cross_entropy", features(5, 2), np.zeros(5), FnnValueError,
                r"use Dense\(1, activation='sigmoid'\)"),
    "unknown-loss": (SEED_MODEL, "hinge", features(5, 2), np.zeros(5), FnnValueError, r"unknown loss 'hinge'"),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_are_refused(entry, case):
    model, loss, x, y, error, match = BAD_INPUTS[case]
    with pytest.raises(error, match=match):
        ENTRY_POINTS[entry](model, loss, random_params(model, 2), x, y)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_bad_params_are_refused(entry):
    params = random_params(SEED_MODEL, 2)
    with pytest.raises(FnnValueError, match=r"params has 1 layer entries but the model has 2 layers"):
        ENTRY_POINTS[entry](SEED_MODEL, "mse", params[:1], features(5, 2), np.zeros(5))
    with pytest.raises(FnnValueError, match=r"params\[1\]\.w \(layer 1, Dense\(1\)\) has shape \(4, 3\), "
                                            r"expected \(4, 1\)"):
        ENTRY_POINTS[entry](SEED_MODEL, "mse", random_params(SOFTMAX_MODEL, 2), features(5, 2), np.zeros(5))
    with pytest.raises(FnnTypeError, match=r"model must be a fnn.Sequential"):
        ENTRY_POINTS[entry]([fnn.Dense(1)], "mse", params, features(5, 2), np.zeros(5))


@pytest.mark.parametrize("x, error, match", [
    (features(5, 3), FnnValueError, r"x has 3 features"),
    (np.zeros((5, 2, 1)), FnnValueError, r"x must be 2-d"),
    (np.array([[0.0, np.nan]]), FnnValueError, r"row 0, column 1"),
])
def test_dead_units_refuses_bad_x(x, error, match):
    with pytest.raises(error, match=match):
        backprop.dead_units(SEED_MODEL, random_params(SEED_MODEL, 2), x)
