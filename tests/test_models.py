"""Dense, Sequential and objective: what they compute, and every bad input they refuse.

One model (the 2-4-1 seed network) is initialised, once; other parameters come from numpy, so
the file compiles little.
"""
import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import DenseParams
from fnn.errors import FnnTypeError, FnnValueError

SEED_MODEL = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(1, activation="sigmoid")])
SOFTMAX_MODEL = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(3, activation="softmax")])


@functools.lru_cache(maxsize=None)
def seed_params(seed=0):
    return SEED_MODEL.init(jax.random.key(seed), input_dim=2, dtype=jnp.float64)


def numpy_params(model, input_dim, seed=0):
    """Random float64 params with non-zero biases, made without jax.random."""
    rng = np.random.default_rng(seed)
    params, n_in = [], input_dim
    for layer in model.layers:
        params.append(DenseParams(jnp.asarray(rng.normal(size=(n_in, layer.units)) / np.sqrt(n_in)),
                                  jnp.asarray(0.3 * rng.normal(size=layer.units))))
        n_in = layer.units
    return tuple(params)


def data(n=5, d=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# --------------------------------------------------------------------------- Dense
@pytest.mark.parametrize("units", [0, -1])
def test_dense_refuses_non_positive_units(units):
    with pytest.raises(FnnValueError, match=rf"Dense units must be an integer >= 1, got {units}"):
        fnn.Dense(units)


@pytest.mark.parametrize("units", [2.5, True, "4", None, 4.0])
def test_dense_refuses_non_integer_units(units):
    with pytest.raises(FnnTypeError, match="Dense units must be an integer"):
        fnn.Dense(units)


def test_dense_accepts_numpy_integers():
    layer = fnn.Dense(np.int64(3))
    assert layer.units == 3 and type(layer.units) is int


def test_dense_refuses_a_single_softmax_unit():
    with pytest.raises(FnnValueError, match=r"softmax over a single unit.*Dense\(1, activation='sigmoid'\)"):
        fnn.Dense(1, activation="softmax")
    assert fnn.Dense(2, activation="softmax").activation == "softmax"


def test_dense_refuses_unknown_activations():
    with pytest.raises(FnnValueError, match=r"unknown activation 'swish'; choose one of \[.*'relu'"):
        fnn.Dense(3, activation="swish")
    with pytest.raises(FnnTypeError, match="activation must be a name"):
        fnn.Dense(3, activation=jax.nn.relu)
    with pytest.raises(FnnValueError, match="unknown initializer"):
        fnn.Dense(3, kernel_init="ones")


def test_dense_normalises_activation_names():
    assert fnn.Dense(3).activation == "linear"
    assert fnn.Dense(3, activation=None).activation == "linear"
    assert fnn.Dense(3, activation="ReLU").activation == "relu"


def test_dense_and_sequential_are_hashable_and_equal_by_value():
    assert fnn.Dense(4, activation="relu") == fnn.Dense(4, activation="relu")
    assert hash(fnn.Dense(4, activation="relu")) == hash(fnn.Dense(4, activation="relu"))
    assert fnn.Dense(4, activation="RELU") == fnn.Dense(4, activation="relu")
    assert fnn.Dense(4, activation="relu") != fnn.Dense(4, activation="tanh")
    assert fnn.Dense(4) != fnn.Dense(5)
    a = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(1, activation="sigmoid")])
    b = fnn.Sequential((fnn.Dense(4, activation="relu"), fnn.Dense(1, activation="sigmoid")))
    assert a == b and hash(a) == hash(b) and a == SEED_MODEL
    assert a != fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(1, activation="tanh")])
    assert len({a, b, SOFTMAX_MODEL}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.layers = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        fnn.Dense(4).units = 5


def test_a_model_can_be_a_static_jit_argument():
    params = numpy_params(SEED_MODEL, 2)
    x = data()
    apply = jax.jit(lambda model, p, x: model.apply(p, x), static_argnums=0)
    np.testing.assert_allclose(np.asarray(apply(SEED_MODEL, params, x)), np.asarray(SEED_MODEL.apply(params, x)),
                               rtol=1e-13)


# --------------------------------------------------------------------------- Sequential
def test_sequential_refuses_no_layers():
    with pytest.raises(FnnValueError, match=r"at least one layer"):
        fnn.Sequential([])


@pytest.mark.parametrize("bad", [[fnn.Dense(2), "relu"], [fnn.Dense(2), jax.nn.relu], [None]])
def test_sequential_refuses_non_dense_layers(bad):
    i = len(bad) - 1
    with pytest.raises(FnnTypeError, match=rf"Sequential layer {i} must be a fnn.Dense"):
        fnn.Sequential(bad)


def test_sequential_refuses_a_non_list():
    with pytest.raises(FnnTypeError, match="list of Dense layers"):
        fnn.Sequential("relu")


def test_sequential_properties():
    assert SEED_MODEL.activations == ("relu", "sigmoid")
    assert SEED_MODEL.output_dim == 1 and SEED_MODEL.output_activation == "sigmoid"
    assert SEED_MODEL.shapes(2) == ((2, 4), (4, 1))
    assert fnn.Sequential(fnn.Dense(2)).layers == (fnn.Dense(2),)


# --------------------------------------------------------------------------- init
def test_init_gives_one_dense_params_per_layer():
    params = seed_params()
    assert isinstance(params, tuple) and len(params) == 2
    assert all(isinstance(p, DenseParams) for p in params)
    assert [(p.w.shape, p.b.shape) for p in params] == [((2, 4), (4,)), ((4, 1), (1,))]
    assert all(p.w.dtype == jnp.float64 and p.b.dtype == jnp.float64 for p in params)
    assert SEED_MODEL.input_dim(params) == 2


def test_same_key_same_params_other_key_other_params():
    a = seed_params()
    b = SEED_MODEL.init(jax.random.key(0), input_dim=2, dtype=jnp.float64)
    c = seed_params(1)
    chex.assert_trees_all_equal(a, b)
    assert not np.any(np.asarray(a[0].w) == np.asarray(c[0].w))


def test_legacy_uint32_keys_are_accepted():
    legacy = SEED_MODEL.init(jax.random.PRNGKey(0), input_dim=2, dtype=jnp.float64)
    chex.assert_trees_all_equal(legacy, seed_params())


@pytest.mark.parametrize("key, error, match", [
    (0, FnnTypeError, r"key must be a JAX PRNG key such as jax.random.key\(0\), got 0"),
    (None, FnnTypeError, r"got None"),
    ("key", FnnTypeError, r"got str"),
    (np.zeros(3, np.uint32), FnnTypeError, r"dtype uint32 and shape \(3,\)"),
    (np.zeros(2, np.float32), FnnTypeError, r"dtype float32"),
])
def test_init_refuses_bad_keys(key, error, match):
    with pytest.raises(error, match=match):
        SEED_MODEL.init(key, input_dim=2)


def test_init_refuses_a_batch_of_keys():
    with pytest.raises(FnnValueError, match=r"a single key \(shape \(\)\), got a batch of shape \(2,\)"):
        SEED_MODEL.init(jax.random.split(jax.random.key(0), 2), input_dim=2)


@pytest.mark.parametrize("input_dim, error", [(0, FnnValueError), (-3, FnnValueError), (2.0, FnnTypeError),
                                              ("2", FnnTypeError), (True, FnnTypeError), (None, FnnTypeError)])
def test_init_refuses_bad_input_dims(input_dim, error):
    with pytest.raises(error, match="input_dim must be an integer >= 1"):
        SEED_MODEL.init(jax.random.key(0), input_dim=input_dim)


def test_init_refuses_non_float_dtypes():
    with pytest.raises(FnnTypeError, match="floating dtype"):
        SEED_MODEL.init(jax.random.key(0), input_dim=2, dtype=jnp.int32)


# --------------------------------------------------------------------------- apply
def test_apply_is_the_composition_of_the_layers():
    params = numpy_params(SEED_MODEL, 2)
    x = data()
    (w1, b1), (w2, b2) = [(np.asarray(p.w), np.asarray(p.b)) for p in params]
    want = sigmoid(np.maximum(x @ w1 + b1, 0) @ w2 + b2)
    out = np.asarray(SEED_MODEL.apply(params, x))
    assert out.shape == (5, 1) and out.dtype == np.float64
    np.testing.assert_allclose(out, want, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(SEED_MODEL(params, x)), out, rtol=0)
    logits = np.asarray(SEED_MODEL.logits(params, x))
    np.testing.assert_allclose(sigmoid(logits), out, rtol=1e-13)


def test_softmax_outputs_are_probabilities():
    params = numpy_params(SOFTMAX_MODEL, 2)
    out = np.asarray(SOFTMAX_MODEL.apply(params, data()))
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out.sum(axis=1), np.ones(5), rtol=1e-14)
    assert (out > 0).all()


def test_a_single_example_gives_a_single_output():
    params = seed_params()
    x = np.array([0.5, -1.0])
    out = SEED_MODEL.apply(params, x)
    assert out.shape == (1,)
    np.testing.assert_allclose(np.asarray(out), np.asarray(SEED_MODEL.apply(params, x[None, :]))[0], rtol=0)
    assert SEED_MODEL.logits(params, x).shape == (1,)


def test_apply_accepts_lists_and_integers():
    params = numpy_params(SEED_MODEL, 2)
    out = SEED_MODEL.apply(params, [[1, 2], [3, 4]])
    assert out.shape == (2, 1) and out.dtype == jnp.float64
    want = SEED_MODEL.apply(params, np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(np.asarray(out), np.asarray(want), rtol=1e-15)


BAD_X = [
    (np.zeros((5, 3)), FnnValueError, r"x has 3 features \(shape \(5, 3\)\) but the model's first layer expects 2"),
    (np.zeros(3), FnnValueError, r"x has 3 features"),
    (np.float64(1.0), FnnValueError, r"x must be 2-d .* got shape \(\)"),
    (np.zeros((5, 2, 1)), FnnValueError, r"x must be 2-d .* got shape \(5, 2, 1\)"),
    (np.zeros((0, 2)), FnnValueError, r"x has 0 samples"),
    (np.array([[0.0, 1.0], [2.0, 3.0], [np.nan, 0.0]]), FnnValueError,
     r"x contains 1 non-finite value\(s\); the first is nan at row 2, column 0"),
    (np.array([[0.0, np.inf]]), FnnValueError, r"inf at row 0, column 1"),
    (np.array([["a", "b"]]), FnnTypeError, r"x must have a numeric dtype"),
    (np.array([[1j, 2j]]), FnnTypeError, r"complex"),
    ("ab", FnnTypeError, r"x must be a numeric array, got a string"),
    (None, FnnTypeError, r"x must be an array, got None"),
    ([[1.0, 2.0], [3.0]], FnnTypeError, r"rectangular"),
]


@pytest.mark.parametrize("x, error, match", BAD_X, ids=[f"x{i}" for i in range(len(BAD_X))])
def test_apply_refuses_bad_inputs(x, error, match):
    params = numpy_params(SEED_MODEL, 2)
    with pytest.raises(error, match=match):
        SEED_MODEL.apply(params, x)
    with pytest.raises(error, match=match):
        SEED_MODEL.logits(params, x)


def test_wrong_number_of_layers_is_refused():
    params = numpy_params(SEED_MODEL, 2)
    with pytest.raises(FnnValueError, match=r"params has 1 layer entries but the model has 2 layers"):
        SEED_MODEL.apply(params[:1], data())
    with pytest.raises(FnnValueError, match=r"params has 2 layer entries but the model has 3 layers"):
        fnn.Sequential([fnn.Dense(4), fnn.Dense(4), fnn.Dense(1)]).apply(params, data())


def test_wrong_weight_shape_names_the_layer_and_both_shapes():
    params = numpy_params(SEED_MODEL, 2)
    bad = (params[0], DenseParams(jnp.zeros((3, 1)), params[1].b))
    with pytest.raises(FnnValueError, match=r"params\[1\]\.w \(layer 1, Dense\(1\)\) has shape \(3, 1\), "
                                            r"expected \(4, 1\)"):
        SEED_MODEL.apply(bad, data())
    bad = (DenseParams(params[0].w, jnp.zeros(5)), params[1])
    with pytest.raises(FnnValueError, match=r"params\[0\]\.b \(layer 0, Dense\(4\)\) has shape \(5,\), "
                                            r"expected \(4,\)"):
        SEED_MODEL.apply(bad, data())
    # params of another model
    with pytest.raises(FnnValueError, match=r"params\[1\]\.w .* has shape \(4, 3\), expected \(4, 1\)"):
        SEED_MODEL.apply(numpy_params(SOFTMAX_MODEL, 2), data())


@pytest.mark.parametrize("params, error, match", [
    ({"w": 1}, FnnTypeError, r"params must be a tuple of DenseParams"),
    ((np.zeros((2, 4)), np.zeros((4, 1))), FnnTypeError, r"params\[0\] must be DenseParams\(w, b\)"),
    (((1, 2), (3, 4)), FnnTypeError, r"params\[0\]\.w and \.b must be arrays"),
    ((DenseParams(np.zeros((2, 4), int), np.zeros(4, int)), DenseParams(np.zeros((4, 1)), np.zeros(1))),
     FnnTypeError, r"params\[0\]\.w has dtype int"),
])
def test_params_of_the_wrong_kind_are_refused(params, error, match):
    with pytest.raises(error, match=match):
        SEED_MODEL.apply(params, data())


def test_apply_refuses_a_non_model():
    from fnn import models
    with pytest.raises(FnnTypeError, match="model must be a fnn.Sequential"):
        models.check_params([fnn.Dense(1)], numpy_params(SEED_MODEL, 2))


def test_apply_does_not_mutate_its_inputs():
    x = data()
    params = tuple(DenseParams(np.asarray(p.w), np.asarray(p.b)) for p in numpy_params(SEED_MODEL, 2))
    copies = (x.copy(), [(p.w.copy(), p.b.copy()) for p in params])
    SEED_MODEL.apply(params, x)
    SEED_MODEL.logits(params, x)
    np.testing.assert_array_equal(x, copies[0])
    for p, (w, b) in zip(params, copies[1]):
        np.testing.assert_array_equal(p.w, w)
        np.testing.assert_array_equal(p.b, b)


# --------------------------------------------------------------------------- objective
def test_objective_bce_is_the_mean_log_loss():
    params = numpy_params(SEED_MODEL, 2)
    x, y = data(), np.array([0, 1, 1, 0, 1])
    p = np.asarray(SEED_MODEL.apply(params, x))[:, 0]
    want = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    got = fnn.objective(SEED_MODEL, "binary_cross_entropy")(params, x, y)
    assert got.shape == () and got.dtype == jnp.float64
    np.testing.assert_allclose(float(got), want, rtol=1e-12)
    np.testing.assert_allclose(float(fnn.objective(SEED_MODEL, "bce")(params, x, y[:, None])), want, rtol=1e-12)


def test_objective_cce_is_the_mean_negative_log_probability():
    params = numpy_params(SOFTMAX_MODEL, 2)
    x, y = data(), np.array([0, 2, 1, 2, 0])
    p = np.asarray(SOFTMAX_MODEL.apply(params, x))
    want = -np.mean(np.log(p[np.arange(5), y]))
    objective = fnn.objective(SOFTMAX_MODEL, "categorical_cross_entropy")
    np.testing.assert_allclose(float(objective(params, x, y)), want, rtol=1e-12)
    np.testing.assert_allclose(float(objective(params, x, np.eye(3)[y])), want, rtol=1e-12)


def test_objective_mse_works_with_any_output():
    params = numpy_params(SOFTMAX_MODEL, 2)
    x, y = data(), np.random.default_rng(3).uniform(size=(5, 3))
    p = np.asarray(SOFTMAX_MODEL.apply(params, x))
    np.testing.assert_allclose(float(fnn.objective(SOFTMAX_MODEL, "mse")(params, x, y)), np.mean((p - y) ** 2),
                               rtol=1e-12)


@pytest.mark.parametrize("model, loss, match", [
    (SOFTMAX_MODEL, "binary_cross_entropy", r"softmax output of 3 units: use Dense\(1, activation='sigmoid'\)"),
    (fnn.Sequential([fnn.Dense(1)]), "binary_cross_entropy", r"'linear'; use activation='sigmoid'"),
    (fnn.Sequential([fnn.Dense(2, activation="relu")]), "bce", r"'relu'; use activation='sigmoid'"),
    (fnn.Sequential([fnn.Dense(1, activation="tanh")]), "binary_cross_entropy", r"'tanh'; use activation='sigmoid'"),
    (SEED_MODEL, "categorical_cross_entropy", r"k >= 2 units, the model has 1 output unit"),
    (fnn.Sequential([fnn.Dense(3, activation="sigmoid")]), "categorical_cross_entropy",
     r"use Dense\(3, activation='softmax'\)"),
    (SEED_MODEL, "hinge", r"unknown loss 'hinge'"),
])
def test_objective_refuses_pairings_that_cannot_learn(model, loss, match):
    with pytest.raises(FnnValueError, match=match):
        fnn.objective(model, loss)


def test_objective_refuses_a_non_model():
    with pytest.raises(FnnTypeError, match="model must be a fnn.Sequential"):
        fnn.objective([fnn.Dense(1)], "mse")
    with pytest.raises(FnnTypeError, match="loss must be a name"):
        fnn.objective(SEED_MODEL, None)


BAD_OBJECTIVE_INPUTS = [
    (SEED_MODEL, "binary_cross_entropy", data(5), np.array([0, 1, 1, 0]), FnnValueError,
     r"x and y have different numbers of samples: 5 and 4"),
    (SEED_MODEL, "binary_cross_entropy", data(5), np.zeros((5, 2)), FnnValueError,
     r"y has 2 columns \(shape \(5, 2\)\) but the model has 1 outputs"),
    (SEED_MODEL, "binary_cross_entropy", data(5), np.array([0, 1, 2, 0, 1]), FnnValueError,
     r"labels 0 or 1 in y; found 2 at row 2"),
    (SEED_MODEL, "mse", data(5), np.array([0.0, 1.0, np.nan, 0.0, 1.0]), FnnValueError, r"y contains .* row 2"),
    (SEED_MODEL, "mse", data(5, 3), np.zeros(5), FnnValueError, r"x has 3 features"),
    (SEED_MODEL, "mse", data(5)[None], np.zeros(5), FnnValueError, r"x must be 2-d"),
    (SEED_MODEL, "mse", data(5)[0], np.zeros(1), FnnValueError, r"x must be 2-d"),
    (SEED_MODEL, "mse", data(5), np.array(list("abcde")), FnnTypeError, r"y must have a numeric dtype"),
    (SOFTMAX_MODEL, "categorical_cross_entropy", data(5), np.array([0, 1, 3, 0, 1]), FnnValueError,
     r"class label y\[2\] = 3 is out of range"),
    (SOFTMAX_MODEL, "categorical_cross_entropy", data(5), np.eye(4)[[0, 1, 2, 3, 0]], FnnValueError,
     r"one-hot y has width 4"),
    (SOFTMAX_MODEL, "categorical_cross_entropy", data(5), np.array([0, 1, 2]), FnnValueError,
     r"different numbers of samples: 5 and 3"),
]


@pytest.mark.parametrize("model, loss, x, y, error, match", BAD_OBJECTIVE_INPUTS,
                         ids=[f"case{i}" for i in range(len(BAD_OBJECTIVE_INPUTS))])
def test_objective_refuses_bad_data(model, loss, x, y, error, match):
    objective = fnn.objective(model, loss)
    with pytest.raises(error, match=match):
        objective(numpy_params(model, 2), x, y)


def test_objective_refuses_bad_params():
    objective = fnn.objective(SEED_MODEL, "mse")
    params = numpy_params(SEED_MODEL, 2)
    with pytest.raises(FnnValueError, match=r"params has 1 layer entries"):
        objective(params[:1], data(), np.zeros(5))
    with pytest.raises(FnnValueError, match=r"params\[1\]\.w .* has shape \(4, 3\), expected \(4, 1\)"):
        objective(numpy_params(SOFTMAX_MODEL, 2), data(), np.zeros(5))


def test_objective_does_not_mutate_its_inputs():
    x, y = data(), np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    copies = x.copy(), y.copy()
    fnn.objective(SEED_MODEL, "binary_cross_entropy")(numpy_params(SEED_MODEL, 2), x, y)
    np.testing.assert_array_equal(x, copies[0])
    np.testing.assert_array_equal(y, copies[1])


def test_objective_casts_data_to_the_params_dtype():
    params32 = jax.tree.map(lambda a: a.astype(jnp.float32), numpy_params(SEED_MODEL, 2))
    value = fnn.objective(SEED_MODEL, "binary_cross_entropy")(params32, data(), np.array([0, 1, 1, 0, 1]))
    assert value.dtype == jnp.float32
    value64 = fnn.objective(SEED_MODEL, "binary_cross_entropy")(numpy_params(SEED_MODEL, 2), data(),
                                                                np.array([0, 1, 1, 0, 1]))
    np.testing.assert_allclose(float(value), float(value64), rtol=1e-5)
