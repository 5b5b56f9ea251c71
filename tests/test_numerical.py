"""Central differences: exact on quadratics, and gradcheck tells a right gradient from a wrong one."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.errors import FnnError, FnnTypeError, FnnValueError

A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, -1.0], [0.0, -1.0, 4.0]])  # symmetric
C = np.array([[0.5, -2.0], [1.5, 3.0]])


def quadratic(params, shift):
    """½ aᵀ A a + Σ C ⊙ (m − shift)² over a pytree {"a": (3,), "m": (2, 2)}."""
    a, m = params["a"], params["m"]
    return 0.5 * a @ (A @ a) + jnp.sum(C * (m - shift) ** 2)


def quadratic_grad(params, shift):
    return {"a": A @ params["a"], "m": 2 * C * (params["m"] - shift)}


def point():
    return {"a": jnp.array([0.3, -1.2, 2.0]), "m": jnp.array([[1.0, -0.5], [0.25, 2.0]])}


def test_numerical_gradient_of_a_quadratic_is_its_gradient():
    params = point()
    got = fnn.numerical_gradient(quadratic, params, 0.7)
    chex.assert_trees_all_equal_structs(got, params)
    want = quadratic_grad({k: np.asarray(v) for k, v in params.items()}, 0.7)
    chex.assert_trees_all_close(got, want, rtol=1e-8, atol=1e-8)  # central differences are exact on quadratics
    assert got["m"].dtype == jnp.float64


def test_numerical_gradient_error_shrinks_like_h_squared():
    def cubic(params):
        return jnp.sum(params["x"] ** 3)

    params = {"x": jnp.array([1.0, -2.0])}
    exact = 3 * np.array([1.0, 4.0])
    errors = [np.abs(np.asarray(fnn.numerical_gradient(cubic, params, h=h)["x"]) - exact).max()
              for h in (1e-2, 1e-3)]
    # for x³ the central difference is 3x² + h² exactly
    np.testing.assert_allclose(errors[0], 1e-4, rtol=1e-3)
    assert errors[1] < errors[0] / 50


def test_numerical_gradient_does_not_change_the_params():
    params = {"a": np.array([0.3, -1.2, 2.0]), "m": np.array([[1.0, -0.5], [0.25, 2.0]])}
    copies = {k: v.copy() for k, v in params.items()}
    fnn.numerical_gradient(quadratic, params, 0.0)
    for k in params:
        np.testing.assert_array_equal(params[k], copies[k])


def test_gradcheck_accepts_the_right_gradient():
    params = point()
    check = fnn.gradcheck(quadratic, params, 0.7, grad_fn=quadratic_grad)
    assert check.ok and check.max_relative_error < 1e-8
    default = fnn.gradcheck(quadratic, params, 0.7)  # jax.grad
    assert default.ok and default.max_relative_error < 1e-8


def test_gradcheck_detects_a_wrong_gradient_and_says_where():
    def wrong(params, shift):
        g = quadratic_grad(params, shift)
        return {"a": g["a"], "m": 1.01 * g["m"]}  # 1% off in the second leaf

    check = fnn.gradcheck(quadratic, point(), 0.7, grad_fn=wrong)
    assert not check.ok
    assert check.leaf_index == 1  # jax.tree.leaves order: "a", then "m"
    assert 1e-3 < check.max_relative_error < 0.02


def test_gradcheck_tolerance_decides():
    def slightly_wrong(params, shift):
        g = quadratic_grad(params, shift)
        return {"a": g["a"] + 1e-5, "m": g["m"]}

    assert not fnn.gradcheck(quadratic, point(), 0.7, grad_fn=slightly_wrong).ok
    assert fnn.gradcheck(quadratic, point(), 0.7, grad_fn=slightly_wrong, tolerance=1e-4).ok


def test_gradcheck_does_not_pass_nan_gradients():
    def nan_grad(params, shift):
        return jax.tree.map(lambda leaf: jnp.full_like(leaf, jnp.nan), params)

    check = fnn.gradcheck(quadratic, point(), 0.7, grad_fn=nan_grad)
    assert not check.ok, check


def test_gradcheck_refuses_a_gradient_of_another_structure():
    with pytest.raises(FnnValueError, match="another structure"):
        fnn.gradcheck(quadratic, point(), 0.7, grad_fn=lambda p, s: [p["a"]])
    with pytest.raises(FnnValueError, match=r"grad_fn leaf 0 has shape \(2,\), params leaf has \(3,\)"):
        fnn.gradcheck(quadratic, point(), 0.7, grad_fn=lambda p, s: {"a": jnp.zeros(2), "m": p["m"]})


def test_gradcheck_on_a_small_network():
    model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(0)
    params = (fnn.DenseParams(jnp.asarray(rng.normal(size=(2, 3))), jnp.asarray(rng.normal(size=3))),
              fnn.DenseParams(jnp.asarray(rng.normal(size=(3, 1))), jnp.asarray(rng.normal(size=1))))
    x, y = rng.normal(size=(6, 2)), np.array([0, 1, 1, 0, 1, 0])
    objective = fnn.objective(model, "binary_cross_entropy")
    check = fnn.gradcheck(objective, params, x, y, grad_fn=jax.jit(jax.grad(objective)))
    assert check.ok and check.max_relative_error < 1e-6, check
    wrong = jax.jit(lambda p, x, y: jax.tree.map(lambda g: 1.1 * g, jax.grad(objective)(p, x, y)))
    assert not fnn.gradcheck(objective, params, x, y, grad_fn=wrong).ok


@pytest.mark.parametrize("h", [0, 0.0, -1e-6, float("nan"), float("inf"), "1e-6", [1e-6]])
def test_bad_steps_are_refused(h):
    with pytest.raises(FnnError, match="h must be"):
        fnn.numerical_gradient(quadratic, point(), 0.7, h=h)
    with pytest.raises(FnnError, match="h must be"):
        fnn.gradcheck(quadratic, point(), 0.7, h=h)


def test_integer_params_are_refused():
    with pytest.raises(FnnTypeError, match="floating-point params.*int"):
        fnn.numerical_gradient(lambda p: jnp.sum(p["a"]), {"a": np.array([1, 2])})


def test_non_scalar_functions_are_refused():
    with pytest.raises(FnnValueError, match=r"f must return a scalar, got shape \(3,\)"):
        fnn.numerical_gradient(lambda p: p["a"] * 2.0, {"a": jnp.array([1.0, 2.0, 3.0])})


SEED = [4, 6, 6, 4]


def _seed_network(activation):
    return fnn.Sequential([fnn.Dense(n, activation=activation) for n in SEED] + [fnn.Dense(1, activation="sigmoid")])


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_gradcheck_passes_a_right_float32_gradient_of_the_seed_network_and_leaves_kinks_out():
    x, y = fnn.data.circles(jax.random.key(0), 64, noise=0.05)
    model = _seed_network("relu")
    objective = fnn.objective(model, "binary_cross_entropy")
    for seed in (1, 3):  # key 3 puts ReLU units exactly on their kink (zero inputs, zero bias)
        params = model.init(jax.random.key(seed), 2, dtype=jnp.float32)
        x32, y32 = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
        check = fnn.gradcheck(objective, params, x32, y32)
        assert check.ok and check.dtype == "float64" and check.max_relative_error < 1e-6, check
        assert fnn.numerical.CHECK_TOLERANCE["float32"] == 1e-4
    assert check.kinks > 0  # key 3's kinks were found and left out, not counted as failures


def test_gradcheck_in_float32_catches_a_tanh_derivative_one_percent_off(monkeypatch):
    import _gradient_checks as checks
    from fnn import activations, backprop

    x, y = fnn.data.circles(jax.random.key(0), 64, noise=0.05)
    model = _seed_network("tanh")
    params = model.init(jax.random.key(1), 2, dtype=jnp.float32)
    args = (jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    objective = fnn.objective(model, "binary_cross_entropy")
    by_hand = lambda p, x, y: backprop.gradients(model, "binary_cross_entropy", p, x, y)  # noqa: E731
    assert fnn.gradcheck(objective, params, *args, grad_fn=by_hand).ok
    monkeypatch.setitem(activations.ACTIVATIONS, "tanh",
                        checks._activation("tanh", activations.tanh, lambda z: 1.01 * activations.tanh_deriv(z)))
    check = fnn.gradcheck(objective, params, *args, grad_fn=by_hand)
    assert not check.ok and check.max_relative_error > 3 * fnn.numerical.CHECK_TOLERANCE["float32"], check


def test_a_kink_at_or_within_h_is_reported_not_failed():
    relu_sum = lambda p: jnp.sum(jax.nn.relu(p["w"]))  # noqa: E731
    for at in (0.0, 3e-7, -4e-7):  # jax.grad says relu'(0) = 0; the difference straddles the kink
        check = fnn.gradcheck(relu_sum, {"w": jnp.asarray([at, 1.0, -1.0])})
        assert check.ok and check.kinks == (1 if at == 0.0 or abs(at) < 1e-6 else 0), (at, check)
    wrong = lambda p: {"w": jnp.asarray([0.0, 1.1, 0.0])}  # noqa: E731  a wrong slope away from the kink
    check = fnn.gradcheck(relu_sum, {"w": jnp.asarray([0.0, 1.0, -1.0])}, grad_fn=wrong)
    assert not check.ok and check.kinks == 1 and abs(check.max_relative_error - 0.1 / 1.1) < 1e-6


def test_gradcheck_takes_differences_in_the_params_dtype_where_f_refuses_float64():
    def only_float32(p):
        if p["a"].dtype != jnp.float32:
            raise TypeError("float32 only")
        return jnp.sum(jnp.sin(p["a"]))

    params = {"a": jnp.asarray([0.3, -1.2], jnp.float32)}
    check = fnn.gradcheck(only_float32, params)
    assert check.ok and check.dtype == "float32", check
    assert fnn.numerical.DEFAULTS["float32"] == (5e-3, 2e-4)
    wrong = lambda p: {"a": 1.01 * jnp.cos(p["a"])}  # noqa: E731
    assert not fnn.gradcheck(only_float32, params, grad_fn=wrong).ok
