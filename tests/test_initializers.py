"""Initializers: shapes, dtypes, determinism, the variances the theory asks for, and Dense's choice.

Few distinct shapes: every random draw of a new shape or dtype is compiled on its own.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import initializers
from fnn.errors import FnnTypeError, FnnValueError

RANDOM = ["glorot_normal", "glorot_uniform", "he_normal", "he_uniform"]
FAN_IN, FAN_OUT = 300, 500  # not square, so swapping fan_in and fan_out shows


def theory_variance(name, fan_in, fan_out):
    return 2.0 / fan_in if name.startswith("he") else 2.0 / (fan_in + fan_out)


def test_registry():
    assert sorted(initializers.INITIALIZERS) == sorted(RANDOM + ["zeros"])
    for name, fn in initializers.INITIALIZERS.items():
        assert initializers.get(name) is fn


KEY0, KEY1 = jax.random.key(0), jax.random.key(1)


@functools.lru_cache(maxsize=None)
def draw(name, dtype_name="float64", seed=0):
    """One (FAN_IN, FAN_OUT) matrix, cached: every test below shares the few compilations."""
    return np.asarray(initializers.get(name)(jax.random.key(seed), (FAN_IN, FAN_OUT), jnp.dtype(dtype_name)))


@pytest.mark.parametrize("name", RANDOM + ["zeros"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shape_and_dtype(name, dtype):
    w = draw(name, dtype)
    assert w.shape == (FAN_IN, FAN_OUT)
    assert w.dtype == np.dtype(dtype)
    assert np.isfinite(w).all()


@pytest.mark.parametrize("name", RANDOM + ["zeros"])
def test_default_dtype_is_float32(name):
    w = initializers.get(name)(KEY0, (FAN_IN, FAN_OUT))
    assert w.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(w), draw(name, "float32"))


@pytest.mark.parametrize("name", RANDOM)
def test_same_key_same_values_other_key_other_values(name):
    a = draw(name)
    b = np.asarray(initializers.get(name)(jax.random.key(0), (FAN_IN, FAN_OUT), jnp.float64))
    c = draw(name, seed=1)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a == c) < 1e-3
    assert len(np.unique(a)) > 0.999 * a.size  # fresh draws, not a repeated block


@pytest.mark.parametrize("name", RANDOM)
def test_empirical_variance_matches_theory(name):
    w = draw(name)
    variance = theory_variance(name, FAN_IN, FAN_OUT)
    assert w.var() == pytest.approx(variance, rel=0.1)
    assert abs(w.mean()) < 0.05 * np.sqrt(variance)
    beyond_two_sd = np.mean(np.abs(w) > 2 * np.sqrt(variance))
    if name.endswith("uniform"):
        # U(-a, a) with a = sqrt(3 Var) ≈ 1.73 sd: nothing beyond 2 sd, and the bound is nearly reached
        limit = np.sqrt(3 * variance)
        assert np.abs(w).max() <= limit
        assert np.abs(w).max() > 0.99 * limit
        assert beyond_two_sd == 0.0
    else:
        assert beyond_two_sd == pytest.approx(0.0455, abs=0.01)  # P(|N(0, 1)| > 2)


def test_zeros_ignores_the_key():
    a = initializers.zeros(KEY0, (3, 5), jnp.float64)
    b = initializers.zeros(KEY1, (3, 5), jnp.float64)
    for w in (a, b):
        np.testing.assert_array_equal(np.asarray(w), np.zeros((3, 5)))


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), ()])
@pytest.mark.parametrize("name", RANDOM)
def test_non_matrix_shape_is_refused(name, shape):
    with pytest.raises(FnnValueError, match=r"\(fan_in, fan_out\) shape"):
        initializers.get(name)(jax.random.key(0), shape)


def test_unknown_initializer_is_refused_naming_the_choices():
    with pytest.raises(FnnValueError, match=r"unknown initializer 'lecun'.*glorot_uniform.*he_normal"):
        initializers.get("lecun")
    with pytest.raises(FnnTypeError, match="initializer must be a name"):
        initializers.get(initializers.he_uniform)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "linear", None, "softmax"])
def test_dense_picks_glorot_uniform_for_every_activation_as_keras(activation):
    # He before ReLU layers was measured against it and did no better (experiments/initializers.py)
    assert fnn.Dense(2, activation=activation).initializer == "glorot_uniform"


def test_explicit_kernel_init_wins():
    assert fnn.Dense(2, activation="relu", kernel_init="glorot_normal").initializer == "glorot_normal"
    with pytest.raises(FnnValueError, match="unknown initializer"):
        fnn.Dense(2, kernel_init="orthogonal")


def test_model_init_uses_the_chosen_initializer_and_a_key_per_layer():
    # three layers of one shape: Glorot by default (2 / 800) for relu and tanh, He when asked (2 / 400)
    n = 400
    model = fnn.Sequential([fnn.Dense(n, activation="relu"), fnn.Dense(n, activation="tanh"),
                            fnn.Dense(n, activation="leaky_relu", kernel_init="he_uniform")])
    params = model.init(jax.random.key(7), input_dim=n, dtype=jnp.float64)
    ws = [np.asarray(p.w) for p in params]
    for w, variance in zip(ws, [2.0 / (2 * n), 2.0 / (2 * n), 2.0 / n]):
        assert w.shape == (n, n) and w.dtype == np.float64
        assert w.var() == pytest.approx(variance, rel=0.1)
        assert np.abs(w).max() <= np.sqrt(3 * variance)  # uniform, as Dense promises
    for p in params:
        np.testing.assert_array_equal(np.asarray(p.b), np.zeros(n))
    # each layer gets its own key: a reused key would make two layers' weights proportional
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        assert abs(np.corrcoef(ws[i].ravel(), ws[j].ravel())[0, 1]) < 0.02, (i, j)
    # and the same key gives the same parameters
    again = model.init(jax.random.key(7), input_dim=n, dtype=jnp.float64)
    for p, q in zip(params, again):
        np.testing.assert_array_equal(np.asarray(p.w), np.asarray(q.w))


def test_biases_start_at_zero_and_dtype_is_respected():
    model = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(1, activation="sigmoid")])
    params = model.init(KEY0, input_dim=2, dtype=jnp.float64)
    assert [p.w.shape for p in params] == [(2, 4), (4, 1)]
    for layer in params:
        assert layer.w.dtype == jnp.float64 and layer.b.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(layer.b), np.zeros(layer.b.shape))
    (layer,) = fnn.Sequential([fnn.Dense(5, activation="tanh")]).init(KEY0, input_dim=3, dtype=jnp.float32)
    assert layer.w.dtype == jnp.float32 and layer.b.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(layer.b), np.zeros(5))
