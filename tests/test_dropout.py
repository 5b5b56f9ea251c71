"""fnn.Dropout: the layer in a Sequential, its masks (fnn.layers), its place in the run (a key per step,
bitwise reproducible, no key work without it), in fnn.objective/backprop/gradcheck, and in checkpoints."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import engine, layers
from fnn.errors import FnnTypeError, FnnValueError

MODEL = fnn.Sequential([fnn.Dense(4, activation="tanh", input_dim=2), fnn.Dropout(0.5),
                        fnn.Dense(1, activation="sigmoid")])
PLAIN = fnn.Sequential([fnn.Dense(4, activation="tanh", input_dim=2), fnn.Dense(1, activation="sigmoid")])


def test_sequential_keeps_dense_layers_and_rates():
    model = fnn.Sequential([fnn.Dropout(0.1), fnn.Dense(3), fnn.Dense(2, activation="relu"), fnn.Dropout(0.0),
                            fnn.Dense(1)])
    assert [layer.units for layer in model.layers] == [3, 2, 1]
    assert model.dropout == (0.1, None, 0.0) and model.has_dropout
    assert repr(model) == "Sequential([Dropout(0.1), Dense(3), Dense(2, activation='relu'), Dropout(0.0), Dense(1)])"
    assert fnn.Sequential(list(model.stack)) == model
    assert not fnn.Sequential([fnn.Dense(3), fnn.Dropout(0.0), fnn.Dense(1)]).has_dropout
    assert [p.w.shape for p in MODEL.init(0)] == [(2, 4), (4, 1)]  # Dropout has no params


def test_summary_shows_dropout():
    text = MODEL.summary(print_fn=None)
    assert text.splitlines()[3:6] == ["0 Dense    (None, 4)            12  tanh",
                                      "1 Dropout  (None, 4)             0  rate 0.5",
                                      "2 Dense    (None, 1)             5  sigmoid"]
    assert MODEL.count_params() == 17


@pytest.mark.parametrize("stack, error, match", [
    ([fnn.Dense(2), fnn.Dropout(0.2)], FnnValueError, r"ends with Dropout\(0\.2\), which would drop the model's outputs"),
    ([fnn.Dense(2), fnn.Dropout(0.5), fnn.Dropout(0.5), fnn.Dense(1)], FnnValueError,
     r"layers 1 and 2 are two Dropout layers in a row; use one, Dropout\(0\.75\)"),
    ([fnn.Dropout(0.5)], FnnValueError, r"ends with Dropout"),
    ([fnn.Dense(2), "dropout", fnn.Dense(1)], FnnTypeError, r"layer 1 must be a fnn\.Dense or fnn\.Dropout, got str"),
])
def test_bad_stacks_are_refused(stack, error, match):
    with pytest.raises(error, match=match):
        fnn.Sequential(stack)


def test_masks_are_inverted_and_drop_about_rate():
    params = (fnn.DenseParams(jnp.zeros((300, 2)), jnp.zeros(2)), fnn.DenseParams(jnp.zeros((2, 1)), jnp.zeros(1)))
    masks = layers.dropout_masks(jax.random.key(0), (0.3, None), params, 40)
    assert masks[1] is None and masks[0].shape == (40, 300) and masks[0].dtype == jnp.float64
    values = np.unique(np.asarray(masks[0]))
    np.testing.assert_allclose(values, [0.0, 1 / 0.7])
    assert abs(float(jnp.mean(masks[0] == 0)) - 0.3) < 0.02  # 12,000 draws: σ ≈ 0.004
    dropped, other = np.asarray(masks[0]) == 0, np.asarray(layers.dropout_masks(jax.random.key(1), (0.3, None),
                                                                                    params, 40)[0]) == 0
    for a, b in [(dropped[:, :-1], dropped[:, 1:]), (dropped[:-1], dropped[1:]), (dropped, other)]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.04  # neighbours and keys independent: σ ≈ 0.009
    again = layers.dropout_masks(jax.random.key(0), (0.3, None), params, 40)
    np.testing.assert_array_equal(masks[0], again[0])
    assert layers.dropout_masks(jax.random.key(0), (0.0, None), params, 5) == (None, None)
    assert bool(jnp.isnan(layers.dropout_apply(jnp.array([jnp.nan]), jnp.array([0.0])))[0])  # NaN is never hidden


def test_step_keys_depend_on_epoch_and_step_only():
    key = jax.random.key(3)
    same = layers.dropout_key(key, jnp.int32(2), jnp.int32(5)), layers.dropout_key(key, 2, 5)
    assert bool(jnp.all(jax.random.key_data(same[0]) == jax.random.key_data(same[1])))
    others = [layers.dropout_key(key, 2, 6), layers.dropout_key(key, 3, 5), layers.dropout_key(jax.random.key(4), 2, 5)]
    data = {tuple(np.asarray(jax.random.key_data(k)).tolist()) for k in [same[0], *others]}
    assert len(data) == 4


X = np.random.default_rng(0).normal(size=(8, 2))
Y = (X[:, 0] > 0).astype(float)


@pytest.mark.slow  # seconds of op-by-op dispatch
def test_objective_drops_only_with_a_key_and_predict_never():
    params = MODEL.init(0, dtype=jnp.float64)
    f, plain = fnn.objective(MODEL, "binary_crossentropy"), fnn.objective(PLAIN, "binary_crossentropy")
    assert float(f(params, X, Y)) == float(plain(params, X, Y))
    with_key = [float(f(params, X, Y, key)) for key in (0, 0, 1)]
    assert with_key[0] == with_key[1] != with_key[2] and with_key[0] != float(plain(params, X, Y))
    np.testing.assert_array_equal(fnn.predict(MODEL, params, X), fnn.predict(PLAIN, params, X))
    for a, b in zip(fnn.activations_of(MODEL, params, X), fnn.activations_of(PLAIN, params, X)):
        np.testing.assert_array_equal(a, b)


def _run_jaxpr(model, **kwargs):
    trainer = fnn.Trainer(model, loss="binary_crossentropy", optimizer="sgd", batch_size=4, **kwargs)
    params = model.init(0)
    state = trainer.init(params, key=0)
    data = trainer.data(state, X.astype(np.float32), Y)
    spec = trainer.spec_for(data)
    return str(jax.make_jaxpr(lambda s, d: engine.run(spec, s, d, 2, 10))(state, data))


def test_no_dropout_means_no_key_work():
    """A rate-0 Dropout compiles exactly the program of the model without it; a rate > 0 adds the draws."""
    plain = _run_jaxpr(PLAIN)
    zero = _run_jaxpr(fnn.Sequential([fnn.Dense(4, activation="tanh", input_dim=2), fnn.Dropout(0.0),
                                      fnn.Dense(1, activation="sigmoid")]))
    assert zero == plain
    dropping = _run_jaxpr(MODEL)
    assert plain.count("random_bits") == 1  # the epoch's shuffle
    assert dropping.count("random_bits") > plain.count("random_bits")
    assert dropping.count("random_fold_in") > plain.count("random_fold_in")


@pytest.mark.slow  # central differences: two evaluations per parameter
def test_gradcheck_with_a_fixed_key():
    params = MODEL.init(0, dtype=jnp.float64)
    f, key = fnn.objective(MODEL, "binary_crossentropy"), jax.random.key(5)
    hand = lambda p, x, y, k: fnn.backprop.gradients(MODEL, "binary_crossentropy", p, x, y, key=k)
    assert fnn.gradcheck(f, params, X, Y, key, grad_fn=hand).ok
    without_masks = lambda p, x, y, k: fnn.backprop.gradients(MODEL, "binary_crossentropy", p, x, y)
    assert not fnn.gradcheck(f, params, X, Y, key, grad_fn=without_masks).ok


@pytest.mark.slow  # compiles a run
def test_runs_are_bitwise_reproducible_and_split_runs_equal_one():
    x, y = X.astype(np.float32), Y
    trainer = fnn.Trainer(MODEL, loss="binary_crossentropy", optimizer="adam", batch_size=3)
    params = MODEL.init(0)
    a, h1 = trainer.run(trainer.init(params, key=7), x, y, epochs=3)
    a, h2 = trainer.run(a, x, y, epochs=3)
    b, h = trainer.run(trainer.init(params, key=7), x, y, epochs=6)
    c, _ = trainer.run(trainer.init(params, key=8), x, y, epochs=6)
    for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(u, v)
    assert h1["loss"] + h2["loss"] == h["loss"]
    assert any(not np.array_equal(u, v) for u, v in zip(jax.tree.leaves(b.params), jax.tree.leaves(c.params)))


def test_checkpoints_keep_dropout_and_regularizers(tmp_path):
    model = fnn.Sequential([fnn.Dropout(0.1), fnn.Dense(3, activation="relu", input_dim=2, kernel_regularizer="l2"),
                            fnn.Dropout(0.5), fnn.Dense(1, bias_regularizer=fnn.regularizers.l1_l2(0.5, 0.25))])
    params = model.init(0)
    path = fnn.save(tmp_path / "run", params, model=model, loss="mse")
    loaded, again = fnn.load(path, with_model=True)
    assert again == model and repr(again) == repr(model)
    other = fnn.Sequential([fnn.Dropout(0.1), fnn.Dense(3, activation="relu", input_dim=2, kernel_regularizer="l2"),
                            fnn.Dropout(0.25), fnn.Dense(1, bias_regularizer=fnn.regularizers.l1_l2(0.5, 0.25))])
    with pytest.raises(fnn.CheckpointError, match=r"layer 2 rate: the file has 0\.5, this model has 0\.25"):
        fnn.load(path, model=other)
