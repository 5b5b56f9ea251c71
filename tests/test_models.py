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
    with pytest.raises(FnnValueError, match=r"unknown activation 'relu6'; choose one of \[.*'relu'"):
        fnn.Dense(3, activation="relu6")
    with pytest.raises(FnnTypeError, match="activation must be a name"):
        fnn.Dense(3, activation=3)  # a callable is accepted: fnn.Activation(jax.nn.relu), see test_activations
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


# --------------------------------------------------------------------------- Keras' first-layer input_dim
@functools.cache
def keras_model():
    return fnn.Sequential([  # the seed's Keras example, transcribed
        fnn.Dense(4, input_dim=2, activation="relu"),
        fnn.Dense(6, activation="relu"),
        fnn.Dense(6, activation="relu"),
        fnn.Dense(4, activation="relu"),
        fnn.Dense(1, activation="sigmoid"),
    ])


def test_the_seeds_keras_example_constructs_and_inits():
    KERAS_MODEL = keras_model()
    params = KERAS_MODEL.init(0)
    assert [(p.w.shape, p.b.shape) for p in params] == [((2, 4), (4,)), ((4, 6), (6,)), ((6, 6), (6,)),
                                                        ((6, 4), (4,)), ((4, 1), (1,))]
    assert all(p.w.dtype == jnp.float32 for p in params)
    chex.assert_trees_all_equal(params, KERAS_MODEL.init(jax.random.key(0), input_dim=2))
    out = np.asarray(KERAS_MODEL.apply(params, data(3)))
    assert out.shape == (3, 1) and ((out > 0) & (out < 1)).all()
    assert KERAS_MODEL.declared_input_dim == 2 and KERAS_MODEL.input_dim(params) == 2
    assert KERAS_MODEL.shapes() == ((2, 4), (4, 6), (6, 6), (6, 4), (4, 1)) == KERAS_MODEL.shapes(2)


def test_dense_input_dim_is_a_field():
    layer = fnn.Dense(4, input_dim=np.int64(2), activation="relu")
    assert layer.input_dim == 2 and type(layer.input_dim) is int
    assert fnn.Dense(4).input_dim is None and SEED_MODEL.declared_input_dim is None
    assert repr(layer) == "Dense(4, activation='relu', input_dim=2)"
    assert layer == fnn.Dense(4, activation="relu", input_dim=2)
    assert hash(layer) == hash(fnn.Dense(4, activation="relu", input_dim=2))
    assert layer != fnn.Dense(4, activation="relu") and layer != fnn.Dense(4, activation="relu", input_dim=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.input_dim = 3


def test_a_model_declaring_its_input_dim_is_a_static_jit_argument():
    KERAS_MODEL = keras_model()
    params = numpy_params(KERAS_MODEL, 2)
    apply = jax.jit(lambda model, p, x: model.apply(p, x), static_argnums=0)
    np.testing.assert_allclose(np.asarray(apply(KERAS_MODEL, params, data())),
                               np.asarray(KERAS_MODEL.apply(params, data())), rtol=1e-13)


@pytest.mark.parametrize("input_dim, error", [(0, FnnValueError), (-1, FnnValueError), (2.5, FnnTypeError),
                                              ("2", FnnTypeError), (True, FnnTypeError)])
def test_dense_refuses_bad_input_dims(input_dim, error):
    with pytest.raises(error, match=r"Dense input_dim must be an integer >= 1, got "):
        fnn.Dense(4, input_dim=input_dim)


def test_only_the_first_layer_may_declare_input_dim():
    with pytest.raises(FnnValueError, match=r"Sequential layer 1, Dense\(1, input_dim=4\), declares input_dim, but "
                                            r"only the first layer may: .*layer 0's 4 outputs; remove input_dim "
                                            r"from layer 1"):
        fnn.Sequential([fnn.Dense(4), fnn.Dense(1, input_dim=4)])
    with pytest.raises(FnnValueError, match=r"Sequential layer 2, Dense\(1, input_dim=3\)"):
        fnn.Sequential([fnn.Dense(4, input_dim=2), fnn.Dense(3), fnn.Dense(1, input_dim=3)])


def test_init_input_dim_must_agree_with_the_first_layers():
    KERAS_MODEL = keras_model()
    chex.assert_trees_all_equal(KERAS_MODEL.init(0, 2), KERAS_MODEL.init(0))
    with pytest.raises(FnnValueError, match=r"input_dim=3 disagrees with the first layer's Dense\(4, input_dim=2\); "
                                            r"pass input_dim=2 or leave it out"):
        KERAS_MODEL.init(0, input_dim=3)
    with pytest.raises(FnnValueError, match=r"input_dim=3 disagrees"):
        KERAS_MODEL.shapes(3)


def test_init_without_any_input_dim_says_where_to_give_one():
    with pytest.raises(FnnTypeError, match=r"input_dim must be an integer >= 1, got None: pass "
                                           r"model.init\(key, input_dim\), or declare it on the first layer"):
        SEED_MODEL.init(0)


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
    (-1, FnnValueError, r"key as an integer seed must be in \[0, 2\*\*32 - 1\], got -1"),
    (2**32, FnnValueError, r"key as an integer seed must be in \[0, 2\*\*32 - 1\], got 4294967296"),
    (np.int64(-5), FnnValueError, r"got -5"),
    (True, FnnTypeError, r"key must be a JAX PRNG key such as jax.random.key\(0\), or an integer seed >= 0, "
                         r"got bool True"),
    (None, FnnTypeError, r"got None"),
    ("key", FnnTypeError, r"got str"),
    (np.zeros(3, np.uint32), FnnTypeError, r"dtype uint32 and shape \(3,\)"),
    (np.zeros(2, np.float32), FnnTypeError, r"dtype float32"),
])
def test_init_refuses_bad_keys(key, error, match):
    with pytest.raises(error, match=match):
        SEED_MODEL.init(key, input_dim=2)


@pytest.mark.parametrize("seed", [0, np.int64(0), np.uint32(0)])
def test_an_integer_seed_is_the_key_it_names(seed):
    chex.assert_trees_all_equal(SEED_MODEL.init(seed, input_dim=2, dtype=jnp.float64), seed_params())


def test_validate_key_turns_a_seed_into_a_typed_key():
    from fnn import _validate
    got = _validate.key(7)
    assert jnp.issubdtype(got.dtype, jax.dtypes.prng_key) and got.shape == ()
    chex.assert_trees_all_equal(jax.random.key_data(got), jax.random.key_data(jax.random.key(7)))
    chex.assert_trees_all_equal(jax.random.key_data(_validate.key(2**32 - 1)),
                                jax.random.key_data(jax.random.key(2**32 - 1)))


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


ONE_FEATURE_MODEL = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1)])


@pytest.mark.parametrize("model, n_features, x, advice, wrong", [
    (SEED_MODEL, 2, np.array([0.5, -1.0]),
     r"got shape \(2,\) \(the model expects 2 features: one example of 2 features is x\.reshape\(1, -1\)\)$",
     "reshape(-1, 1)"),
    (ONE_FEATURE_MODEL, 1, np.arange(5.0), r"got shape \(5,\) \(reshape a single feature column with "
                                            r"x\.reshape\(-1, 1\)\)$", "reshape(1, -1)"),
    (SEED_MODEL, 2, np.arange(5.0), r"got shape \(5,\) \(the model expects 2 features: reshape a single feature "
                                    r"column with x\.reshape\(-1, 1\), or one example of 5 features is "
                                    r"x\.reshape\(1, -1\)\)$", None),
], ids=["one-example", "one-column", "neither"])
def test_a_1d_x_is_told_the_reshape_that_fits_the_model(model, n_features, x, advice, wrong):
    objective = fnn.objective(model, "mse")
    with pytest.raises(FnnValueError, match=r"x must be 2-d \(n_samples, n_features\), " + advice) as info:
        objective(numpy_params(model, n_features), x, np.zeros(len(x)))
    assert wrong is None or wrong not in str(info.value)


def test_a_1d_x_of_unknown_width_is_told_both_reshapes():
    from fnn import _validate
    with pytest.raises(FnnValueError, match=r"\(reshape a single feature column with x_train\.reshape\(-1, 1\), "
                                            r"or one example of 3 features is x_train\.reshape\(1, -1\)\)$"):
        _validate.features(np.zeros(3), "x_train")


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


def nan_params(model=SEED_MODEL, **bad):
    """numpy_params with entries replaced: w1=[((2, 0), np.nan)] puts NaN in params[1].w[2, 0]."""
    params = [DenseParams(np.array(p.w), np.array(p.b)) for p in numpy_params(model, 2)]
    for where, entries in bad.items():
        leaf = getattr(params[int(where[1:])], where[0])
        for index, value in entries:
            leaf[index] = value
    return tuple(DenseParams(jnp.asarray(p.w), jnp.asarray(p.b)) for p in params)


NON_FINITE_PARAMS = [
    (dict(w1=[((2, 0), np.nan)]), r"params\[1\]\.w contains 1 non-finite value\(s\) \(first: nan at row 2, column 0\); "
                                 r"the params are unusable: retrain .*, or reload a checkpoint"),
    (dict(b0=[(3, np.inf), (1, -np.inf)]),
     r"params\[0\]\.b contains 2 non-finite value\(s\) \(first: -inf at index 1\)"),
    (dict(w0=[((0, 1), np.nan), ((1, 3), np.nan), ((0, 2), np.inf)], b1=[(0, np.nan)]),
     r"params\[0\]\.w contains 3 non-finite value\(s\) \(first: nan at row 0, column 1\), as do params\[1\]\.b;"),
]


@pytest.mark.parametrize("bad, match", NON_FINITE_PARAMS, ids=["nan-in-w", "inf-in-b", "several-leaves"])
def test_non_finite_params_are_refused_naming_the_leaf(bad, match):
    from fnn import models
    params = nan_params(**bad)
    with pytest.raises(FnnValueError, match=match):
        models.check_params(SEED_MODEL, params)
    for use in (lambda: SEED_MODEL.apply(params, data()), lambda: SEED_MODEL.logits(params, data()),
                lambda: SEED_MODEL.input_dim(params), lambda: fnn.predict(SEED_MODEL, params, data()),
                lambda: fnn.objective(SEED_MODEL, "mse")(params, data(), np.zeros(5))):
        with pytest.raises(FnnValueError, match=match):
            use()


def test_non_finite_numpy_params_are_refused_even_after_passing_once():
    """numpy leaves can be written to: a check that passed says nothing about the next call."""
    params = tuple(DenseParams(np.array(p.w), np.array(p.b)) for p in numpy_params(SEED_MODEL, 2))
    SEED_MODEL.apply(params, data())
    params[1].w[3, 0] = np.nan
    with pytest.raises(FnnValueError, match=r"params\[1\]\.w contains 1 non-finite value\(s\) \(first: nan at row 3"):
        SEED_MODEL.apply(params, data())


def test_finite_params_pass_again_and_other_params_are_still_checked():
    good = numpy_params(SEED_MODEL, 2)
    for _ in range(2):  # the second check of the same jax arrays is a lookup
        SEED_MODEL.apply(good, data())
    bad = (good[0], DenseParams(good[1].w.at[0, 0].set(np.nan), good[1].b))  # shares params[0] with `good`
    with pytest.raises(FnnValueError, match=r"params\[1\]\.w contains 1 non-finite"):
        SEED_MODEL.apply(bad, data())
    SEED_MODEL.apply(good, data())


def test_params_of_mixed_float_dtypes_are_checked():
    from fnn import models
    params = numpy_params(SEED_MODEL, 2)
    mixed = (DenseParams(params[0].w.astype(jnp.float32), params[0].b), params[1])
    models.check_params(SEED_MODEL, mixed)
    mixed = (mixed[0], DenseParams(params[1].w, params[1].b.at[0].set(np.inf)))
    with pytest.raises(FnnValueError, match=r"params\[1\]\.b contains 1 non-finite value\(s\) \(first: inf at index 0"):
        models.check_params(SEED_MODEL, mixed)


def test_the_on_device_reduction_refuses_non_finite_params_too(monkeypatch):
    """Away from the CPU the leaves are reduced on the device to one bool; that path, forced here."""
    from fnn import _validate, models
    monkeypatch.setattr(_validate, "_host_is_the_device", lambda: False)
    monkeypatch.setattr(_validate, "_last_finite", ())
    models.check_params(SEED_MODEL, numpy_params(SEED_MODEL, 2, seed=5))
    with pytest.raises(FnnValueError, match=r"params\[1\]\.w contains 1 non-finite value\(s\) \(first: nan at row 2"):
        models.check_params(SEED_MODEL, nan_params(w1=[((2, 0), np.nan)]))


def test_traced_params_are_not_checked_for_values():
    """Under jit or grad the values are unknown: only the structure is checked, nothing is refused."""
    from fnn import models
    params = nan_params(w1=[((2, 0), np.nan)])
    out = jax.jit(lambda p, x: SEED_MODEL.apply(p, x))(params, data())
    assert np.isnan(np.asarray(out)).any()  # NaN params give NaN, never plausible numbers
    jax.jit(lambda p: models.check_params(SEED_MODEL, p))(params)
    grads = jax.grad(fnn.objective(SEED_MODEL, "mse"))(params, data(), np.zeros(5))
    assert np.isnan(np.asarray(grads[1].w)).any()


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
        fnn.objective(SEED_MODEL, 3)  # None is not refused: it names the output layer's default loss


BAD_OBJECTIVE_INPUTS = [
    (SEED_MODEL, "binary_cross_entropy", data(5), np.array([0, 1, 1, 0]), FnnValueError,
     r"x and y have different numbers of samples: 5 and 4"),
    (SEED_MODEL, "binary_cross_entropy", data(5), np.zeros((5, 2)), FnnValueError,
     r"y has 2 columns \(shape \(5, 2\)\) but the model has 1 outputs"),
    (SEED_MODEL, "binary_cross_entropy", data(5), np.array([0, 1, 2, 0, 1]), FnnValueError,
     r"labels in \[0, 1\] in y \(0/1 classes, or soft labels\); found 2 at row 2"),
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
