"""Inspecting a model: count_params, summary, repr, predict_proba and activations_of, values and bad inputs."""
import jax
import numpy as np
import pytest

import fnn
from fnn import backprop

BINARY = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(3, activation="tanh"),
                         fnn.Dense(1, activation="sigmoid")])
SOFTMAX = fnn.Sequential([fnn.Dense(5, activation="tanh"), fnn.Dense(3, activation="softmax")])
LINEAR = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(2)])
X = np.asarray(jax.random.normal(jax.random.key(0), (7, 2)))


@pytest.fixture(scope="module")
def params():
    """float64 params drawn on the host (model.init would compile a program per model)."""
    rng = np.random.default_rng(1)
    return {m: tuple(fnn.DenseParams(rng.normal(size=shape), rng.normal(size=shape[1])) for shape in m.shapes(2))
            for m in (BINARY, SOFTMAX, LINEAR)}


def test_count_params_is_the_sum_of_the_param_sizes(params):
    for model, p in params.items():
        assert model.count_params(2) == sum(leaf.size for leaf in jax.tree.leaves(p))
    assert BINARY.count_params(2) == (2 * 4 + 4) + (4 * 3 + 3) + (3 * 1 + 1) == 31
    declared = fnn.Sequential([fnn.Dense(8, input_dim=10, activation="relu"), fnn.Dense(1)])
    assert declared.count_params() == 10 * 8 + 8 + 8 + 1 == declared.count_params(10)


def test_summary_prints_and_returns_the_table(capsys):
    text = SOFTMAX.summary(2)
    assert capsys.readouterr().out == text + "\n"
    lines = text.splitlines()
    assert lines[0] == "Sequential: 2 inputs -> 3 outputs"
    assert lines[1].split() == ["layer", "output", "shape", "params", "activation"]
    assert lines[3].split() == ["0", "Dense", "(None,", "5)", "15", "tanh"]
    assert lines[4].split() == ["1", "Dense", "(None,", "3)", "18", "softmax"]
    assert set(lines[2]) == set(lines[5]) == {"-"} and lines[-1] == "Total params: 33"
    wide = fnn.Sequential([fnn.Dense(1000, input_dim=784, activation="relu"), fnn.Dense(10, activation="softmax")])
    quiet = wide.summary(print_fn=None)
    assert capsys.readouterr().out == ""
    assert "785,000" in quiet and quiet.endswith("Total params: 795,010")
    seen = []
    assert wide.summary(784, print_fn=seen.append) == seen[0] == quiet


def test_repr_is_python_that_rebuilds_the_model():
    assert repr(fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(1, activation="sigmoid")])) == (
        "Sequential([Dense(4, activation='relu'), Dense(1, activation='sigmoid')])")
    assert repr(fnn.Dense(2, activation=None)) == "Dense(2)"
    odd = fnn.Sequential([fnn.Dense(6, input_dim=3, activation="Leaky_ReLU", kernel_init="glorot_normal",
                                    bias_init=0.1), fnn.Dense(2, activation="softmax")])
    for model in (BINARY, SOFTMAX, LINEAR, odd):
        rebuilt = eval(repr(model), {"Sequential": fnn.Sequential, "Dense": fnn.Dense})
        assert rebuilt == model and hash(rebuilt) == hash(model) and repr(rebuilt) == repr(model)
    assert str(odd) == repr(odd) and "bias_init=0.1" in repr(odd) and "input_dim=3" in repr(odd)


def by_hand(model, p):
    """Each layer's output in NumPy: (a_1, …, a_L) and the last logits z_L."""
    fns = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "linear": lambda z: z,
           "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
           "softmax": lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(
               1, keepdims=True)}
    a, outs = X, []
    for name, (w, b) in zip(model.activations, p):
        z = a @ np.asarray(w) + np.asarray(b)
        a = fns[name](z)
        outs.append(a)
    return outs, z


def test_predict_proba_is_sigmoid_or_softmax_of_the_logits(params):
    outs, z = by_hand(BINARY, params[BINARY])
    proba = np.asarray(fnn.predict_proba(BINARY, params[BINARY], X))
    assert proba.shape == (7, 1)
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-z)), rtol=1e-12)
    outs, z = by_hand(SOFTMAX, params[SOFTMAX])
    proba = np.asarray(fnn.predict_proba(SOFTMAX, params[SOFTMAX], X))
    assert proba.shape == (7, 3)
    np.testing.assert_allclose(proba, np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    assert np.asarray(fnn.predict_proba(SOFTMAX, params[SOFTMAX], X[0])).shape == (3,)


def test_activations_of_equals_the_forward_pass(params):
    for model in (BINARY, SOFTMAX):
        p = params[model]
        got = fnn.activations_of(model, p, X)
        assert isinstance(got, list) and [a.shape for a in got] == [(7, layer.units) for layer in model.layers]
        for a, b in zip(got, by_hand(model, p)[0]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    p = params[BINARY]
    got = fnn.activations_of(BINARY, p, X)
    fwd = jax.jit(backprop.forward, static_argnums=0)(BINARY.activations, p, X)  # one program, not op by op
    for a, b in zip(got, list(fwd.inputs[1:]) + [fwd.output]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    single = fnn.activations_of(BINARY, p, X[3])
    assert [a.shape for a in single] == [(4,), (3,), (1,)]
    np.testing.assert_allclose(single[1], got[1][3], rtol=1e-12)
    assert (np.asarray(got[0]) >= 0).all() and (np.asarray(got[0]) == 0).any()  # after the ReLU, some off


def test_bad_inputs(params):
    with pytest.raises(fnn.FnnValueError, match=r"predict_proba needs a sigmoid or softmax output.*'linear'.*"
                                                r"fnn\.predict for regression"):
        fnn.predict_proba(LINEAR, params[LINEAR], X)
    with pytest.raises(fnn.FnnTypeError, match="model must be a fnn.Sequential"):
        fnn.predict_proba("model", params[BINARY], X)
    with pytest.raises(fnn.FnnValueError, match="features"):
        fnn.predict_proba(BINARY, params[BINARY], X[:, :1])
    with pytest.raises(fnn.FnnValueError, match="layer entries"):
        fnn.activations_of(BINARY, params[BINARY][:2], X)
    with pytest.raises(fnn.FnnValueError, match="non-finite"):
        fnn.activations_of(BINARY, params[BINARY], np.full((2, 2), np.nan))
    with pytest.raises(fnn.FnnValueError, match="features"):
        fnn.activations_of(BINARY, params[BINARY], np.ones((2, 3)))
    with pytest.raises(fnn.FnnTypeError, match="input_dim must be an integer >= 1, got None"):
        BINARY.count_params()
    with pytest.raises(fnn.FnnValueError, match="input_dim"):
        BINARY.summary(0)
    with pytest.raises(fnn.FnnValueError, match="disagrees"):
        fnn.Sequential([fnn.Dense(2, input_dim=3)]).count_params(4)
