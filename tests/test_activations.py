"""Each activation beside its hand-written derivative, checked against jax's autodiff in float64.

Each test evaluates its jax side in one compiled call (`run`), in XLA's quick compilation mode:
every eager operation on a new shape is compiled on its own, and compiling is what costs here.
"""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import _compile, activations
from fnn.errors import FnnTypeError, FnnValueError

import _compiles

ALL = sorted(activations.ACTIVATIONS)
ELEMENTWISE = sorted(name for name, act in activations.ACTIVATIONS.items() if act.elementwise)


def run(f, *args):
    """f(*args) compiled once (by fnn's jit, whose XLA options compile small programs faster), numpy leaves out."""
    return jax.tree.map(np.asarray, _compile.jit(f)(*args))


NEW = ["elu", "gelu", "gelu_tanh", "hard_tanh", "mish", "selu", "softplus", "swish"]


def points():
    """float64 points: a grid through the kinks at 0 and ±1, ±30, random points, moderate tails and large |z|."""
    random = np.random.default_rng(5).normal(size=8) * 4.0
    return np.concatenate([np.linspace(-3.0, 3.0, 13), [-30.0, 30.0], random, [-50.0, 50.0, -1e4, 1e4]])


def batch():
    """(4, 3) float64 rows, one of them with entries ±1e4."""
    z = np.random.default_rng(0).normal(size=(4, 3)) * 2.0
    z[3] = [1e4, -1e4, 0.0]
    return z


def test_registry_is_what_the_docs_promise():
    assert set(ALL) == {"linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", *NEW}
    assert ELEMENTWISE == [name for name in ALL if name != "softmax"]
    for name, act in activations.ACTIVATIONS.items():
        assert act.name == name


def test_deriv_matches_jax_grad():
    """Every elementwise activation in one compiled call (one program costs less than one per activation)."""
    z = points()
    got = run(lambda z: {name: (act.deriv(z), jax.vmap(jax.grad(act.fn))(z))
                         for name, act in activations.ACTIVATIONS.items() if act.elementwise}, z)
    assert sorted(got) == ELEMENTWISE
    for name, (ours, want) in got.items():
        assert ours.shape == z.shape and ours.dtype == np.float64, name
        assert np.isfinite(ours).all(), name
        # atol: jax differentiates expm1 as expm1(z) + 1, which keeps only absolute precision in elu's and
        # selu's left tail (exp(−30) to 2e-4 relative); the exact values are pinned in test_new_values_closed_form
        chex.assert_trees_all_close(ours, want, rtol=1e-12, atol=1e-15, custom_message=name)


def test_deriv_matches_central_differences():
    z = points()[:23]  # |z| <= 30; points exactly at a kink (0, ±1) are left out
    z = z[(np.abs(z) > 1e-3) & (np.abs(np.abs(z) - 1) > 1e-3)]
    h = 1e-6
    got = run(lambda z: {name: (act.deriv(z), act.fn(z + h), act.fn(z - h))
                         for name, act in activations.ACTIVATIONS.items() if act.elementwise}, z)
    for name, (deriv, plus, minus) in got.items():
        np.testing.assert_allclose(deriv, (plus - minus) / (2 * h), rtol=1e-6, atol=1e-8, err_msg=name)


def _phi(v):
    return math.exp(-v * v / 2) / math.sqrt(2 * math.pi)


def _cdf(v):
    return 0.5 * math.erfc(-v / math.sqrt(2))


def _sigma(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def _softplus(v):
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


def _u(v):
    return math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)


LAM, ALPHA = activations.SELU_SCALE, activations.SELU_ALPHA
CLOSED_FORM = {  # name: (f, f′) in Python floats, float64 throughout
    "gelu": (lambda v: v * _cdf(v), lambda v: _cdf(v) + v * _phi(v)),
    "gelu_tanh": (lambda v: v * _sigma(2 * _u(v)),
                  lambda v: _sigma(2 * _u(v)) + 2 * v * _sigma(2 * _u(v)) * _sigma(-2 * _u(v))
                  * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * v * v)),
    "elu": (lambda v: v if v > 0 else math.expm1(v), lambda v: 1.0 if v > 0 else math.exp(v)),
    "selu": (lambda v: LAM * (v if v > 0 else ALPHA * math.expm1(v)),
             lambda v: LAM * (1.0 if v > 0 else ALPHA * math.exp(v))),
    "softplus": (_softplus, _sigma),
    "swish": (lambda v: v * _sigma(v), lambda v: _sigma(v) * (1 + v * _sigma(-v))),
    "mish": (lambda v: v * math.tanh(_softplus(v)),
             lambda v: math.tanh(_softplus(v)) + v * (1 - math.tanh(_softplus(v)) ** 2) * _sigma(v)),
    "hard_tanh": (lambda v: max(-1.0, min(1.0, v)), lambda v: 1.0 if abs(v) <= 1 else 0.0),
}


def test_new_values_closed_form():
    """f and f′ against their formulas in Python's math module, at kinks, ±30, ±50 and random points."""
    z = points()[:-2]
    got = run(lambda z: {name: (activations.get(name).fn(z), activations.get(name).deriv(z)) for name in NEW}, z)
    assert set(CLOSED_FORM) == set(NEW)
    for name, (f, df) in CLOSED_FORM.items():
        want = (np.array([f(v) for v in z]), np.array([df(v) for v in z]))
        chex.assert_trees_all_close(got[name], want, rtol=1e-13, atol=1e-300)


def test_new_functions_match_jax_nn():
    z = points()
    got = run(lambda z: dict(
        gelu=(activations.gelu(z), jax.nn.gelu(z, approximate=False)),
        gelu_tanh=(activations.gelu_tanh(z), jax.nn.gelu(z, approximate=True)),
        elu=(activations.elu(z), jax.nn.elu(z)), selu=(activations.selu(z), jax.nn.selu(z)),
        softplus=(activations.softplus(z), jax.nn.softplus(z)), swish=(activations.swish(z), jax.nn.silu(z)),
        mish=(activations.mish(z), jax.nn.mish(z)), hard_tanh=(activations.hard_tanh(z), jax.nn.hard_tanh(z)),
    ), z)
    assert set(got) == set(NEW)
    for name, (ours, reference) in got.items():
        # atol: jax.nn's gelu(approximate=True) is z (1 + tanh u) / 2, whose 1 + tanh u cancels in the left
        # tail (ours is z σ(2u), pinned exactly by test_new_values_closed_form)
        chex.assert_trees_all_close(ours, reference, rtol=1e-12, atol=1e-14, custom_message=name)


def test_float32_derivatives_are_as_good_as_float32_allows():
    """Each derivative in float32 within 1e-6 of its float64 value (relative to max(1, |f′|)) over [−30, 30]:
    mish's sech² of softplus is formed without 1 − tanh² cancelling (which erred by 3e-6)."""
    z = np.concatenate([np.linspace(-30.0, 30.0, 121), points()[15:23]])
    wide, narrow = run(lambda z64, z32: ({name: act.deriv(z64) for name, act in activations.ACTIVATIONS.items()
                                          if act.elementwise},
                                         {name: act.deriv(z32) for name, act in activations.ACTIVATIONS.items()
                                          if act.elementwise}), z, z.astype(np.float32))
    for name in ELEMENTWISE:
        err = np.abs(narrow[name].astype(np.float64) - wide[name]) / np.maximum(np.abs(wide[name]), 1.0)
        assert err.max() < 1e-6, (name, err.max())


@pytest.mark.parametrize("dtype, big", [(np.float64, 1e300), (np.float32, 3e38)])
def test_no_overflow_far_out(dtype, big):
    """softplus, mish and the rest at ±30, ±1e4 and near the dtype's largest: finite values and slopes."""
    z = np.array([-big, -1e4, -30.0, 30.0, 1e4, big], dtype)
    got = run(lambda z: {name: (activations.get(name).fn(z), activations.get(name).deriv(z)) for name in NEW}, z)
    for name, (fn, deriv) in got.items():
        assert fn.dtype == dtype and np.isfinite(fn).all() and np.isfinite(deriv).all(), (name, fn, deriv)
    assert got["softplus"][0][-1] == np.asarray(big, dtype) and got["softplus"][0][0] == 0.0
    assert got["mish"][0][-1] == np.asarray(big, dtype) and got["mish"][0][0] == 0.0
    np.testing.assert_allclose(got["softplus"][0][2:4], [math.log1p(math.exp(-30.0)), 30.0], rtol=1e-6)


def test_vjp_matches_jax_vjp():
    z = batch()
    g = np.random.default_rng(1).normal(size=z.shape)

    def all_vjps(z, g):
        return {name: (act.vjp(z, g), jax.vjp(act.fn, z)[1](g)[0], act.fn(z))
                for name, act in activations.ACTIVATIONS.items()}

    results = run(all_vjps, z, g)
    assert sorted(results) == ALL
    for name, (got, want, out) in results.items():
        assert got.shape == z.shape and out.shape == z.shape, name
        assert np.isfinite(got).all() and np.isfinite(out).all(), name
        chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-300, custom_message=name)


def test_softmax_jacobian_matches_jax_jacobian():
    z = np.array([0.3, -1.2, 2.0, 0.0, 0.7])
    got, want = run(lambda z: (activations.softmax_jacobian(z), jax.jacobian(activations.softmax)(z)), z)
    assert got.shape == (5, 5)
    chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-300)


def test_softmax_jacobian_batched_matches_vmapped_jacobian():
    z = batch()
    got, want, deriv = run(lambda z: (activations.softmax_jacobian(z),
                                      jax.vmap(jax.jacobian(activations.softmax))(z),
                                      activations.get("softmax").deriv(z)), z)
    assert got.shape == (4, 3, 3)
    assert np.isfinite(got).all()
    chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-300)
    chex.assert_trees_all_equal(deriv, got)  # softmax's `deriv` is its Jacobian
    # each row of a softmax Jacobian sums to 0: shifting all logits changes nothing
    chex.assert_trees_all_close(got.sum(axis=-1), np.zeros((4, 3)), atol=1e-15)


def test_softmax_vjp_is_g_times_the_jacobian():
    z = batch()
    g = np.random.default_rng(2).normal(size=z.shape)
    got, jac = run(lambda z, g: (activations.softmax_vjp(z, g), activations.softmax_jacobian(z)), z, g)
    chex.assert_trees_all_close(got, np.einsum("bi,bij->bj", g, jac), rtol=1e-12, atol=1e-15)


def test_softmax_matches_jax_nn_and_is_exact_in_the_tails():
    z = batch()
    got, want = run(lambda z: (activations.softmax(z), jax.nn.softmax(z, axis=-1)), z)
    chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-300)
    chex.assert_trees_all_equal(got[3], np.array([1.0, 0.0, 0.0]))
    chex.assert_trees_all_close(got.sum(axis=-1), np.ones(4), rtol=1e-14)


def test_elementwise_functions_match_jax():
    z = points()
    got = run(lambda z: dict(
        relu=(activations.relu(z), jax.nn.relu(z)),
        leaky_relu=(activations.leaky_relu(z), jax.nn.leaky_relu(z)),
        sigmoid=(activations.sigmoid(z), jax.nn.sigmoid(z)),
        tanh=(activations.tanh(z), jnp.tanh(z)),
        linear=(activations.linear(z), z),
    ), z)
    for name, (ours, reference) in got.items():
        assert ours.shape == z.shape, name
        chex.assert_trees_all_close(ours, reference, rtol=1e-14, atol=1e-300)
    assert activations.LEAKY_SLOPE == 0.01
    np.testing.assert_allclose(got["leaky_relu"][0][0], -0.03, rtol=1e-14)  # z = -3
    assert got["sigmoid"][0][-1] == 1.0 and got["sigmoid"][0][-2] == 0.0  # z = ±1e4


def test_new_kink_conventions_match_jax_nn():
    z = np.array([0.0, 1.0, -1.0])
    ours, theirs = run(lambda z: (
        {name: activations.get(name).deriv(z) for name in ("selu", "elu", "hard_tanh")},
        {"selu": jax.vmap(jax.grad(jax.nn.selu))(z), "elu": jax.vmap(jax.grad(jax.nn.elu))(z),
         "hard_tanh": jax.vmap(jax.grad(jax.nn.hard_tanh))(z)}), z)
    assert ours["selu"][0] == activations.SELU_SCALE * activations.SELU_ALPHA  # the left slope at 0, as jax
    assert ours["elu"][0] == 1.0  # α = 1: both slopes are 1
    chex.assert_trees_all_equal(ours["hard_tanh"], np.ones(3))  # 1 at ±1, as jax.nn.hard_tanh
    chex.assert_trees_all_close(ours, theirs, rtol=1e-15)


def test_kink_conventions_match_jax_nn():
    z = np.array([0.0, 1e-300, -1e-300])
    ours_relu, ours_leaky, jax_relu, jax_leaky = run(lambda z: (
        activations.relu_deriv(z), activations.leaky_relu_deriv(z),
        jax.vmap(jax.grad(jax.nn.relu))(z), jax.vmap(jax.grad(jax.nn.leaky_relu))(z)), z)
    assert ours_relu[0] == 0.0 and jax_relu[0] == 0.0  # relu'(0) = 0
    assert ours_leaky[0] == 1.0 and jax_leaky[0] == 1.0  # leaky_relu'(0) = 1
    chex.assert_trees_all_equal(ours_relu, np.array([0.0, 1.0, 0.0]))
    chex.assert_trees_all_close(ours_leaky, np.array([1.0, 1.0, 0.01]), rtol=1e-15)
    chex.assert_trees_all_close(ours_leaky, jax_leaky, rtol=1e-15)


def test_derivs_at_large_inputs():
    z = np.array([-1e4, 1e4])
    got = run(lambda z: {name: activations.get(name).deriv(z) for name in ELEMENTWISE}, z)
    want = {"linear": [1.0, 1.0], "relu": [0.0, 1.0], "leaky_relu": [0.01, 1.0],
            "sigmoid": [0.0, 0.0], "tanh": [0.0, 0.0], "gelu": [0.0, 1.0], "gelu_tanh": [0.0, 1.0],
            "elu": [0.0, 1.0], "selu": [0.0, activations.SELU_SCALE], "softplus": [0.0, 1.0],
            "swish": [0.0, 1.0], "mish": [0.0, 1.0], "hard_tanh": [0.0, 0.0]}
    for name in ELEMENTWISE:
        chex.assert_trees_all_close(got[name], np.array(want[name]), rtol=1e-15)


def test_float32_stays_float32():
    z = np.array([[-1.0, 0.5, 2.0]], dtype=np.float32)
    got = run(lambda z: {name: (act.fn(z), act.deriv(z), act.vjp(z, jnp.ones_like(z)))
                         for name, act in activations.ACTIVATIONS.items()}, z)
    for name, outs in got.items():
        for out in outs:
            assert out.dtype == np.float32, name


def test_none_means_linear():
    assert activations.canonical_name(None) == "linear"
    assert activations.get(None) is activations.ACTIVATIONS["linear"]


def test_names_are_case_insensitive():
    assert activations.get("ReLU") is activations.ACTIVATIONS["relu"]
    assert activations.canonical_name("TANH") == "tanh"


def test_keras_and_torch_names_are_accepted():
    for name in NEW + ["silu", "SiLU", "hardtanh", "gelu_approximate", "Mish", "GELU"]:
        assert activations.canonical_name(name) in activations.ACTIVATIONS
    assert activations.get("silu") is activations.ACTIVATIONS["swish"]
    assert activations.get("hardtanh") is activations.ACTIVATIONS["hard_tanh"]
    assert activations.get("gelu_approximate") is activations.ACTIVATIONS["gelu_tanh"]
    assert fnn.Dense(2, activation="SiLU").activation == "swish"


def test_unknown_name_is_refused_naming_the_choices():
    with pytest.raises(FnnValueError, match=r"unknown activation 'relu6'.*leaky_relu.*softmax.*or a callable"):
        activations.get("relu6")
    assert issubclass(FnnValueError, ValueError)


@pytest.mark.parametrize("bad", [3, 1.5, ["relu"], {"relu": 1}])
def test_non_string_name_is_a_type_error(bad):
    with pytest.raises(TypeError, match="activation must be a name"):
        activations.get(bad)
    with pytest.raises(FnnTypeError):
        activations.canonical_name(bad)


def test_nan_in_nan_out():
    """A NaN never comes out as a plausible number: not from f, its derivative or its vjp."""
    z = np.array([[np.nan, 0.0, 1.0], [-1.0, 0.0, 2.0]])
    results = run(lambda z, nan: {name: (act.fn(z), act.deriv(z), act.vjp(z, jnp.ones_like(z)),
                                         act.fn(nan if act.elementwise else jnp.stack([nan, 0.0])))
                                  for name, act in activations.ACTIVATIONS.items()}, z, np.float64(np.nan))
    assert sorted(results) == ALL
    for name, (*outs, scalar) in results.items():
        if activations.ACTIVATIONS[name].elementwise:  # only the NaN entry is NaN
            for got in outs:
                chex.assert_trees_all_equal(np.isnan(got), np.isnan(z), custom_message=name)
        else:  # softmax mixes a row: the NaN row is NaN throughout, the other row is untouched
            for got in outs:
                assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()
        assert np.isnan(scalar).all(), name


def test_infinities_keep_their_limits():
    z = np.array([-np.inf, np.inf])
    got = run(lambda z: {name: (act.fn(z), act.deriv(z)) for name, act in activations.ACTIVATIONS.items()
                         if act.elementwise}, z)
    want = {"linear": ([-np.inf, np.inf], [1.0, 1.0]), "relu": ([0.0, np.inf], [0.0, 1.0]),
            "leaky_relu": ([-np.inf, np.inf], [0.01, 1.0]), "sigmoid": ([0.0, 1.0], [0.0, 0.0]),
            "tanh": ([-1.0, 1.0], [0.0, 0.0]), "gelu": ([0.0, np.inf], [0.0, 1.0]),
            "gelu_tanh": ([0.0, np.inf], [0.0, 1.0]), "elu": ([-1.0, np.inf], [0.0, 1.0]),
            "selu": ([-activations.SELU_SCALE * activations.SELU_ALPHA, np.inf], [0.0, activations.SELU_SCALE]),
            "softplus": ([0.0, np.inf], [0.0, 1.0]), "swish": ([0.0, np.inf], [0.0, 1.0]),
            "mish": ([0.0, np.inf], [0.0, 1.0]), "hard_tanh": ([-1.0, 1.0], [0.0, 0.0])}
    assert set(want) == set(ELEMENTWISE)
    for name, (fn, deriv) in want.items():
        chex.assert_trees_all_close(got[name], (np.array(fn), np.array(deriv)), rtol=1e-15)


# --------------------------------------------------------------------------- a user's activation
def cube(z):
    return z**3


def cube_deriv(z):
    return 3 * z**2


def test_user_activation_in_a_layer():
    act = fnn.Activation(cube, cube_deriv)
    assert act.name == "cube" and act.has_derivative and str(act) == "cube"
    assert repr(act) == "Activation(name='cube')"
    layer = fnn.Dense(2, activation=act)
    assert layer.activation is act and layer.initializer == "glorot_uniform"
    model = fnn.Sequential([layer])
    assert model.activations == (act,)
    params = (fnn.DenseParams(jnp.asarray([[1.0, -2.0]]), jnp.asarray([0.5, 0.0])),)
    out = np.asarray(model.apply(params, np.array([[1.0], [2.0]])))
    np.testing.assert_array_equal(out, np.array([[1.5, -2.0], [2.5, -4.0]]) ** 3)
    got = run(lambda z, g: act.vjp(z, g), np.array([1.0, -2.0]), np.array([0.5, 1.0]))
    np.testing.assert_array_equal(got, [1.5, 12.0])


def test_registry_records_and_aliases_are_kept_by_name():
    assert fnn.Dense(2, activation=activations.ACTIVATIONS["tanh"]).activation == "tanh"
    assert fnn.Dense(2, activation=activations.mish).activation == "mish"  # its function: the entry, with its deriv
    assert activations.get(activations.ACTIVATIONS["mish"]) is activations.ACTIVATIONS["mish"]


def test_user_activations_compare_by_their_functions():
    """A model is a static argument of the compiled programs: same functions, same program; two lambdas never share."""
    assert fnn.Activation(cube, cube_deriv) == fnn.Activation(cube, cube_deriv)
    assert hash(fnn.Activation(cube, cube_deriv)) == hash(fnn.Activation(cube, cube_deriv))
    assert fnn.Dense(3, activation=jax.nn.gelu) == fnn.Dense(3, activation=jax.nn.gelu)
    assert hash(fnn.Dense(3, activation=jax.nn.gelu)) == hash(fnn.Dense(3, activation=jax.nn.gelu))
    assert fnn.Dense(3, activation=lambda z: z) != fnn.Dense(3, activation=lambda z: z)
    assert fnn.Activation(cube, cube_deriv) != fnn.Activation(cube)
    assert fnn.Activation(cube, cube_deriv) != fnn.Activation(cube, cube_deriv, name="other")


def test_equal_models_share_a_compiled_program_and_lambdas_do_not():
    x, y = np.random.default_rng(0).normal(size=(5, 2)), np.random.default_rng(1).normal(size=(5, 1))
    build = lambda act: fnn.Sequential([fnn.Dense(2, activation=act), fnn.Dense(1)])  # noqa: E731
    params = build(cube).init(0, 2, dtype=jnp.float64)
    first = fnn.evaluate(build(jax.nn.gelu), params, x, y, loss="mse")
    with _compiles.counting() as again:
        second = fnn.evaluate(build(jax.nn.gelu), params, x, y, loss="mse")
    assert again["compile"] == 0 and second == first
    with _compiles.counting() as other:
        a = fnn.evaluate(build(lambda z: jnp.sin(z)), params, x, y, loss="mse")["loss"]
        b = fnn.evaluate(build(lambda z: jnp.cos(z)), params, x, y, loss="mse")["loss"]
    assert other["compile"] >= 2 and a != b  # each lambda its own program, never the other's result


def test_check_compares_the_derivative_with_central_differences():
    right = fnn.Activation(cube, cube_deriv).check()
    assert right.ok and right.max_relative_error < 1e-6
    wrong = fnn.Activation(cube, lambda z: 1.01 * cube_deriv(z)).check()
    assert not wrong.ok and wrong.max_relative_error > 1e-3
    with pytest.raises(FnnValueError, match=r"activation 'gelu' has no derivative to check; pass one"):
        fnn.Activation(jax.nn.gelu).check()


def test_a_callable_without_derivative_is_differentiated_by_jax_grad_and_backprop_names_the_layer():
    x, y = np.random.default_rng(0).normal(size=(8, 2)), np.random.default_rng(1).integers(0, 2, 8)
    model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(3, activation=jax.nn.gelu),
                            fnn.Dense(1, activation="sigmoid")])
    params = model.init(0, 2, dtype=jnp.float64)
    same_maths = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(3, activation="gelu_tanh"),
                                 fnn.Dense(1, activation="sigmoid")])  # jax.nn.gelu is the tanh form
    got, want = run(lambda p: (jax.grad(fnn.objective(model, "bce"))(p, x, y),
                               fnn.backprop.gradients(same_maths, "bce", p, x, y)), params)
    chex.assert_trees_all_close(got, want, rtol=1e-10)
    with pytest.raises(FnnValueError, match=r"layer 1, Dense\(3, activation=gelu\), has no hand-written derivative, "
                                            r"which fnn.backprop needs; pass activation=fnn.Activation\(f, df\)"):
        fnn.backprop.gradients(model, "bce", params, x, y)
    with pytest.raises(FnnValueError, match=r"activation 'gelu' has no derivative"):
        activations.get(jax.nn.gelu).vjp(jnp.ones(2), jnp.ones(2))


def test_backprop_runs_through_a_user_activation():
    x, y = np.random.default_rng(0).normal(size=(6, 2)), np.random.default_rng(1).normal(size=(6, 1))
    sine = fnn.Activation(jnp.sin, jnp.cos, name="sine")
    model = fnn.Sequential([fnn.Dense(3, activation=sine), fnn.Dense(1)])
    params = model.init(0, 2, dtype=jnp.float64)
    got, want = run(lambda p: (fnn.backprop.gradients(model, "mse", p, x, y),
                               jax.grad(fnn.objective(model, "mse"))(p, x, y)), params)
    chex.assert_trees_all_close(got, want, rtol=1e-12)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(fn=3), FnnTypeError, r"Activation fn must be callable \(z -> f\(z\)\), got int 3"),
    (dict(fn=cube, deriv="3 z**2"), FnnTypeError, r"Activation deriv must be callable or None, got str"),
    (dict(fn=cube, deriv=cube_deriv, backward=1.0), FnnTypeError, r"Activation backward must be callable or None"),
    (dict(fn=cube, name=7), FnnTypeError, r"Activation name must be a str, got int 7"),
    (dict(fn=cube, elementwise="no"), FnnTypeError, r"Activation elementwise must be True or False"),
    (dict(fn=cube, deriv=cube_deriv, elementwise=False), FnnValueError,
     r"not elementwise needs backward=\(z, g\)"),
])
def test_bad_user_activations_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        fnn.Activation(**kwargs)


@pytest.mark.slow  # a training program compiled for it: `make test-slow`
def test_fit_trains_through_a_callable_activation():
    x, y = np.random.default_rng(0).normal(size=(8, 2)), np.random.default_rng(1).integers(0, 2, 8)
    model = fnn.Sequential([fnn.Dense(3, activation=jax.nn.gelu), fnn.Dense(1, activation="sigmoid")])
    result = fnn.fit(model, model.init(0, 2), x, y, epochs=3, batch_size=8, key=0, optimizer=fnn.optim.adam(0.05))
    losses = np.asarray(result.history["loss"])
    assert losses.shape == (3,) and np.isfinite(losses).all() and losses[-1] < losses[0]
