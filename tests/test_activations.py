"""Each activation beside its hand-written derivative, checked against jax's autodiff in float64.

Each test evaluates its jax side in one compiled call (`run`), in XLA's quick compilation mode:
every eager operation on a new shape is compiled on its own, and compiling is what costs here.
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import activations
from fnn.errors import FnnTypeError, FnnValueError

ALL = sorted(activations.ACTIVATIONS)
ELEMENTWISE = sorted(name for name, act in activations.ACTIVATIONS.items() if act.elementwise)


def run(f, *args):
    """f(*args) compiled once, with numpy leaves out."""
    return jax.tree.map(np.asarray, jax.jit(f)(*args))


def points():
    """float64 points: a grid through the kink at 0, moderate tails and large |z|."""
    return np.concatenate([np.linspace(-3.0, 3.0, 13), [-50.0, 50.0, -1e4, 1e4]])


def batch():
    """(4, 3) float64 rows, one of them with entries ±1e4."""
    z = np.random.default_rng(0).normal(size=(4, 3)) * 2.0
    z[3] = [1e4, -1e4, 0.0]
    return z


def test_registry_is_what_the_docs_promise():
    assert set(ALL) == {"linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"}
    assert ELEMENTWISE == [name for name in ALL if name != "softmax"]
    for name, act in activations.ACTIVATIONS.items():
        assert act.name == name


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_deriv_matches_jax_grad(name):
    act = activations.get(name)
    z = points()
    got, want = run(lambda z: (act.deriv(z), jax.vmap(jax.grad(act.fn))(z)), z)
    assert got.shape == z.shape and got.dtype == np.float64
    assert np.isfinite(got).all()
    chex.assert_trees_all_close(got, want, rtol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_vjp_matches_jax_vjp(name):
    act = activations.get(name)
    z = batch()
    g = np.random.default_rng(1).normal(size=z.shape)

    def both(z, g):
        _, pullback = jax.vjp(act.fn, z)
        return act.vjp(z, g), pullback(g)[0], act.fn(z)

    got, want, out = run(both, z, g)
    assert got.shape == z.shape and out.shape == z.shape
    assert np.isfinite(got).all() and np.isfinite(out).all()
    chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-300)


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
            "sigmoid": [0.0, 0.0], "tanh": [0.0, 0.0]}
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


def test_unknown_name_is_refused_naming_the_choices():
    with pytest.raises(FnnValueError, match=r"unknown activation 'swish'.*leaky_relu.*softmax"):
        activations.get("swish")
    assert issubclass(FnnValueError, ValueError)


@pytest.mark.parametrize("bad", [3, 1.5, jax.nn.relu, ["relu"]])
def test_non_string_name_is_a_type_error(bad):
    with pytest.raises(TypeError, match="activation must be a name"):
        activations.get(bad)
    with pytest.raises(FnnTypeError):
        activations.canonical_name(bad)


@pytest.mark.parametrize("name", ALL)
def test_nan_in_nan_out(name):
    """A NaN never comes out as a plausible number: not from f, its derivative or its vjp."""
    act = activations.get(name)
    z = np.array([[np.nan, 0.0, 1.0], [-1.0, 0.0, 2.0]])
    out, deriv, vjp = run(lambda z: (act.fn(z), act.deriv(z), act.vjp(z, jnp.ones_like(z))), z)
    if act.elementwise:  # only the NaN entry is NaN
        nan = np.isnan(z)
        for got in (out, deriv, vjp):
            chex.assert_trees_all_equal(np.isnan(got), nan)
    else:  # softmax mixes a row: the NaN row is NaN throughout, the other row is untouched
        for got in (out, deriv, vjp):
            assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()
    scalar = run(act.fn, np.float64(np.nan)) if act.elementwise else run(act.fn, np.array([np.nan, 0.0]))
    assert np.isnan(scalar).all()


def test_infinities_keep_their_limits():
    z = np.array([-np.inf, np.inf])
    got = run(lambda z: {name: (act.fn(z), act.deriv(z)) for name, act in activations.ACTIVATIONS.items()
                         if act.elementwise}, z)
    want = {"linear": ([-np.inf, np.inf], [1.0, 1.0]), "relu": ([0.0, np.inf], [0.0, 1.0]),
            "leaky_relu": ([-np.inf, np.inf], [0.01, 1.0]), "sigmoid": ([0.0, 1.0], [0.0, 0.0]),
            "tanh": ([-1.0, 1.0], [0.0, 0.0])}
    for name, (fn, deriv) in want.items():
        chex.assert_trees_all_close(got[name], (np.array(fn), np.array(deriv)), rtol=1e-15)
