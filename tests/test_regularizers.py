"""fnn.regularizers: the penalties' values and hand-written gradients, their names, and their place in
Dense, fnn.objective, fnn.backprop and fnn.gradcheck."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import regularizers
from fnn.errors import FnnTypeError, FnnValueError

W = jnp.array([[1.5, -2.0, 0.0], [0.25, -0.0, 3.0]])  # float64 (conftest), zeros of both signs


def test_values_by_hand():
    assert float(regularizers.l2(0.5)(W)) == pytest.approx(0.5 * (2.25 + 4 + 0.0625 + 9))
    assert float(regularizers.l1(0.1)(W)) == pytest.approx(0.1 * (1.5 + 2 + 0.25 + 3))
    assert float(regularizers.l1_l2(0.1, 0.5)(W)) == pytest.approx(0.1 * 6.75 + 0.5 * 15.3125)
    np.testing.assert_array_equal(regularizers.l2(0.5).grad(W), W)  # 2·0.5·w
    np.testing.assert_array_equal(regularizers.l1(0.1).grad(W), 0.1 * np.sign(W))  # 0 at ±0
    np.testing.assert_allclose(regularizers.l1_l2(0.1, 0.5).grad(W), 0.1 * np.sign(W) + W)


@pytest.mark.parametrize("reg", [regularizers.l1(0.3), regularizers.l2(0.7), regularizers.l1_l2(0.2, 0.4)], ids=repr)
def test_gradient_is_jax_grad_even_at_zero(reg):
    np.testing.assert_allclose(reg.grad(W), jax.grad(reg)(W), rtol=0, atol=1e-15)


def test_keras_names_and_defaults():
    assert regularizers.l1() == regularizers.Regularizer(l1=0.01, kind="l1")
    assert regularizers.l2() == regularizers.Regularizer(l2=0.01, kind="l2")
    assert regularizers.l1_l2() == regularizers.Regularizer(0.01, 0.01)
    assert fnn.Dense(2, kernel_regularizer="l2").kernel_regularizer == regularizers.l2(0.01)
    assert fnn.Dense(2, bias_regularizer="l1_l2").bias_regularizer == regularizers.l1_l2()
    assert repr(fnn.Dense(2, kernel_regularizer=regularizers.l1(0.5))) == "Dense(2, kernel_regularizer=l1(0.5))"
    assert repr(regularizers.l1_l2(l1=0.1, l2=0.2)) == "l1_l2(l1=0.1, l2=0.2)"
    assert regularizers.get({"l1": 0.0, "l2": 0.5, "kind": "l2"}) == regularizers.l2(0.5)  # a checkpoint's record


@pytest.mark.parametrize("make, match", [
    (lambda: regularizers.l2(-1e-4), r"fnn\.regularizers\.l2 strength must be >= 0, got -0\.0001"),
    (lambda: regularizers.l1(-1.0), r"fnn\.regularizers\.l1 strength must be >= 0"),
    (lambda: regularizers.l1_l2(0.1, -0.1), r"fnn\.regularizers\.l1_l2 l2 strength must be >= 0"),
    (lambda: regularizers.l2(float("nan")), r"strength must be finite"),
    (lambda: fnn.Dense(2, kernel_regularizer="l3"), r"unknown Dense kernel_regularizer 'l3'; choose one of"),
    (lambda: regularizers.Regularizer(l2=-0.5), r"regularizer strength l2 must be >= 0"),
])
def test_bad_strengths_and_names_are_refused(make, match):
    with pytest.raises(FnnValueError, match=match):
        make()


def test_bad_types_are_refused():
    with pytest.raises(FnnTypeError, match=r"Dense bias_regularizer must be None, a name .* got float 0\.01"):
        fnn.Dense(2, bias_regularizer=0.01)
    with pytest.raises(FnnTypeError, match=r"fnn\.regularizers\.l2 strength must be a real number, got str"):
        regularizers.l2("0.1")


MODEL = fnn.Sequential([fnn.Dense(3, activation="tanh", kernel_regularizer=regularizers.l1_l2(0.05, 0.1),
                                  input_dim=2),
                        fnn.Dense(1, bias_regularizer=regularizers.l2(0.3))])
PARAMS = tuple(fnn.DenseParams(p.w, p.b + 0.5) for p in MODEL.init(0, dtype=jnp.float64))
X = np.random.default_rng(0).normal(size=(6, 2))
Y = X[:, :1] - X[:, 1:]


@pytest.mark.slow  # seconds of op-by-op dispatch; the gradient checks (test_mutation) compare them compiled
def test_objective_adds_the_penalty_and_backprop_its_gradient():
    plain = fnn.Sequential([fnn.Dense(3, activation="tanh", input_dim=2), fnn.Dense(1)])
    by_hand = 0.05 * np.abs(PARAMS[0].w).sum() + 0.1 * (PARAMS[0].w ** 2).sum() + 0.3 * (PARAMS[1].b ** 2).sum()
    got = fnn.objective(MODEL, "mse")(PARAMS, X, Y)
    assert float(got) == pytest.approx(float(fnn.objective(plain, "mse")(PARAMS, X, Y)) + float(by_hand), rel=1e-12)
    out = fnn.backprop.backward(MODEL, "mse", PARAMS, X, Y)
    assert float(out.loss) == pytest.approx(float(got), rel=1e-12)
    want = jax.grad(fnn.objective(MODEL, "mse"))(PARAMS, X, Y)
    for a, b in zip(jax.tree.leaves(out.grads), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # central differences: two evaluations per parameter
def test_gradcheck_sees_the_penalty():
    f = fnn.objective(MODEL, "mse")
    assert fnn.gradcheck(f, PARAMS, X, Y, grad_fn=lambda p, x, y: fnn.backprop.gradients(MODEL, "mse", p, x, y)).ok
    no_penalty = lambda p, x, y: fnn.backprop.gradients(fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1)]),
                                                        "mse", p, x, y)
    assert not fnn.gradcheck(f, PARAMS, X, Y, grad_fn=no_penalty).ok
