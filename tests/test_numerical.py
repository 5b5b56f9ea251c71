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


@pytest.mark.parametrize("h", [0, 0.0, -1e-6, float("nan"), float("inf"), "1e-6", None, [1e-6]])
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
