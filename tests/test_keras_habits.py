"""A Keras user's first moves work as they would in Keras: whole floats for counts, verbose=True,
Dense(n, input_shape=(d,)), metrics=[...] by Keras' names, validation_data=(x, y, w)."""
import _compiles
import jax
import numpy as np
import pytest

import fnn
from fnn import _driver, _validate, callbacks, optim

MODEL = fnn.Sequential([fnn.Dense(4, activation="tanh", input_shape=(2,)), fnn.Dense(1, activation="sigmoid")])
SAME = fnn.Sequential([fnn.Dense(4, activation="tanh", input_dim=2), fnn.Dense(1, activation="sigmoid")])
PARAMS = MODEL.init(0)
_X, _Y = fnn.data.circles(jax.random.key(0), 40, noise=0.05)
X, Y = np.asarray(_X, np.float32), np.asarray(_Y)
XV, YV = X[:7], Y[:7]  # 7 rows: padded to their bucket inside the run
WV = np.array([0.0, 1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
SGD = optim.sgd(0.5)


def probs(params, x):
    return np.asarray(MODEL.apply(params, x), np.float64)[:, 0]


def bce(p, t):
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def keras_script(model):
    """What a Keras user writes, as written."""
    params = model.init(0)
    return fnn.fit(model, params, X, Y, loss="binary_crossentropy", optimizer="adam", epochs=5.0, batch_size=8,
                   verbose=False, metrics=["accuracy"], validation_data=(XV, YV), key=1,
                   callbacks=[fnn.callbacks.EarlyStopping(monitor="val_loss", patience=2)])


def keras_auc(p, y):
    """Keras' AUC(num_thresholds=200): ROC counts at its thresholds, the trapezoid rule."""
    thresholds = np.concatenate([[-1e-7], np.arange(1, 199) / 199, [1 + 1e-7]])
    above = p[None, :] > thresholds[:, None]
    tpr, fpr = (above & (y > 0.5)).sum(1) / (y > 0.5).sum(), (above & (y < 0.5)).sum(1) / (y < 0.5).sum()
    return np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2)


def rank_auc(p, y):
    """The exact area: the chance a positive row scores above a negative one (ties count half)."""
    pos, neg = p[y > 0.5], p[y < 0.5]
    return np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))


def test_a_keras_users_script_runs_as_written():
    model = fnn.Sequential([fnn.Dense(4, activation="tanh", input_shape=(2,)), fnn.Dense(1, activation="sigmoid")])
    r = keras_script(model)
    assert list(r.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert r.epochs_run == len(r.history["val_loss"]) <= 5 and r.stop_reason in ("epochs", "early_stopping")
    if r.best_epoch is None or r.best_epoch == r.epochs_run - 1:  # the last epoch's params: its figures are theirs
        np.testing.assert_allclose(r.history["val_loss"][-1], bce(probs(r.params, XV), YV).mean(), rtol=1e-5)


def test_counts_take_whole_floats_and_refuse_fractions():
    assert _validate.count(10.0, "epochs", minimum=0) == 10 and type(_validate.count(np.float64(3.0), "n")) is int
    assert fnn.Trainer(MODEL, batch_size=32.0).batch_size == 32
    assert callbacks.EarlyStopping(patience=2.0).patience == 2
    plateau = callbacks.ReduceLROnPlateau(patience=3.0, cooldown=1.0)
    assert (plateau.patience, plateau.cooldown) == (3, 1)
    assert callbacks.TerminateOnNaN(max_bad_steps=2.0).max_bad_steps == 2
    with pytest.raises(fnn.FnnTypeError, match=r"epochs must be an integer >= 0, got float 10.5, which is not a whole "
                                               r"number; pass 10 or 11 \(a whole float such as 10.0 is taken as 10\)"):
        _validate.count(10.5, "epochs", minimum=0)
    with pytest.raises(fnn.FnnTypeError, match=r"patience must be an integer >= 0, got float nan"):
        callbacks.EarlyStopping(patience=float("nan"))
    with pytest.raises(fnn.FnnTypeError, match=r"got bool True"):
        _validate.count(True, "epochs")


def test_verbose_true_is_1_and_false_is_0():
    assert (_driver.verbosity(True), _driver.verbosity(False), _driver.verbosity(np.bool_(True))) == (1, 0, 1)
    assert (_driver.verbosity(2.0), _driver.verbosity(1)) == (2, 1)


def test_input_shape_is_input_dim_and_shares_programs():
    assert MODEL == SAME and hash(MODEL) == hash(SAME) and repr(MODEL.layers[0]) == repr(SAME.layers[0])
    assert [p.w.shape for p in MODEL.init(0)] == [(2, 4), (4, 1)]
    assert "2 inputs" in MODEL.summary(print_fn=None) and MODEL.count_params() == 17
    with pytest.raises(fnn.FnnValueError, match=r"input_dim=3 disagrees with the first layer's Dense\(4, input_dim=2"):
        MODEL.init(0, 3)
    with pytest.raises(fnn.FnnValueError, match=r"x has 3 features"):
        fnn.fit(MODEL, PARAMS, np.ones((4, 3)), Y[:4], epochs=1)
    first = keras_script(MODEL)
    with _compiles.counting() as counts:
        again = keras_script(SAME)
    assert counts["compile"] == 0 and again.history == first.history, counts


def _weighted_run(x, y, lr=0.5, weights=WV, names=("mae", "mse", "acc", "precision", "recall", "auc")):
    """One full-batch epoch without shuffling: the training figures are those of the starting params
    (the step's outputs before its update), the validation figures those of the final ones."""
    return fnn.fit(MODEL, PARAMS, x, y, epochs=1, batch_size=len(x), shuffle=False, optimizer=optim.sgd(lr),
                   metrics=list(names), validation_data=(XV, YV, weights), verbose=0)


def test_metrics_and_weighted_validation_are_keras_figures():
    r = _weighted_run(X, Y)
    assert list(r.history) == ["loss", "accuracy", "mae", "mse", "acc", "precision", "recall", "auc", "val_loss",
                               "val_accuracy", "val_mae", "val_mse", "val_acc", "val_precision", "val_recall",
                               "val_auc"]
    p, pv = probs(PARAMS, X), probs(r.params, XV)
    h = {k: v[0] for k, v in r.history.items()}
    np.testing.assert_allclose(h["mae"], np.abs(p - Y).mean(), rtol=1e-5)
    np.testing.assert_allclose(h["mse"], ((p - Y) ** 2).mean(), rtol=1e-5)
    assert h["acc"] == h["accuracy"] == pytest.approx(((p > 0.5) == (Y > 0.5)).mean())
    np.testing.assert_allclose(h["val_loss"], (WV * bce(pv, YV)).mean(), rtol=1e-5)  # Keras: mean over rows of w·loss
    np.testing.assert_allclose(h["val_mae"], np.abs(pv - YV).mean(), rtol=1e-5)  # the metrics unweighted
    np.testing.assert_allclose(h["val_accuracy"], ((pv > 0.5) == (YV > 0.5)).mean(), rtol=1e-6)
    hit, pos = (p > 0.5) & (Y > 0.5), p > 0.5  # precision and recall: ratios of sums over the epoch's rows
    np.testing.assert_allclose([h["precision"], h["recall"]], [hit.sum() / pos.sum(), hit.sum() / (Y > 0.5).sum()],
                               rtol=1e-6)
    np.testing.assert_allclose([h["auc"], h["val_auc"]], [keras_auc(p, Y), keras_auc(pv, YV)], rtol=1e-5)
    assert abs(h["auc"] - rank_auc(p, Y)) < 0.01  # 200 thresholds: close to the exact area
    hit_v, pos_v = (pv > 0.5) & (YV > 0.5), pv > 0.5
    expected = hit_v.sum() / pos_v.sum() if pos_v.any() else 0.0
    np.testing.assert_allclose([h["val_precision"], h["val_recall"]], [expected, hit_v.sum() / (YV > 0.5).sum()],
                               rtol=1e-6)
    ones = _weighted_run(X, Y, weights=np.ones(7))  # weights of 1: the plain mean, as without weights
    np.testing.assert_allclose(ones.history["val_loss"][0], bce(probs(ones.params, XV), YV).mean(), rtol=1e-5)


def test_metrics_recompile_only_for_their_names():
    _weighted_run(X, Y)
    with _compiles.counting() as counts:  # other numbers, other rows of the same bucket, other weights
        r = _weighted_run(X[::-1].copy(), Y[::-1].copy(), lr=0.3, weights=WV[::-1].copy())
    assert counts["compile"] == 0 and len(r.history["val_mse"]) == 1, counts
    with _compiles.counting() as counts:
        _weighted_run(X, Y, names=("mae",))
    assert counts["compile"] >= 1, counts  # the names are the program's structure


def test_metrics_on_logits_use_the_probabilities():
    """softmax + categorical cross-entropy train on logits: mae compares probabilities with one-hot labels."""
    model = fnn.Sequential([fnn.Dense(3, activation="softmax", input_dim=2)])
    params = model.init(1)
    labels = (X[:, 0] > 0).astype(np.int32) + (X[:, 1] > 0.5).astype(np.int32)
    r = fnn.fit(model, params, X, labels, epochs=1, batch_size=len(X), shuffle=False, optimizer=SGD,
                metrics=["mean_absolute_error", "acc"], verbose=0)
    p = np.asarray(model.apply(params, X), np.float64)
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(r.history["mean_absolute_error"][0], np.abs(p - onehot).mean(), rtol=1e-5)
    assert r.history["acc"][0] == pytest.approx((p.argmax(1) == labels).mean())


def test_validation_split_weighs_the_held_out_rows():
    w = np.linspace(0.0, 2.0, len(X))
    r = fnn.fit(MODEL, PARAMS, X, Y, epochs=1, batch_size=len(X), optimizer=SGD, validation_split=0.25,
                sample_weight=w, key=3, verbose=0)
    perm = np.asarray(jax.random.permutation(jax.random.split(jax.random.key(3))[0], len(X)))[:10]
    np.testing.assert_allclose(r.history["val_loss"][0], (w[perm] * bce(probs(r.params, X[perm]), Y[perm])).mean(),
                               rtol=1e-5)


def test_bad_metrics_and_states_are_refused():
    with pytest.raises(fnn.FnnValueError, match=r"unknown metric 'f1' in metrics=; choose from \['accuracy', 'acc', "
                                                r"'mae', 'mean_absolute_error', 'mse', 'mean_squared_error', "
                                                r"'precision', 'recall', 'auc'\]"):
        fnn.Trainer(MODEL, metrics=["mae", "f1"])
    plain, counted = fnn.Trainer(MODEL), fnn.Trainer(MODEL, metrics=["mae"])
    with pytest.raises(fnn.FnnValueError, match=r"state\.sums\.metric has shape \(\), but this trainer records 2 "
                                                r"sums \(metrics=\['mae'\]\)"):
        counted.check_state(plain.init(PARAMS))
    assert fnn.Trainer(MODEL, metrics=["accuracy"]).metrics == ()  # binary_crossentropy records accuracy already
    softmax = fnn.Sequential([fnn.Dense(3, activation="softmax", input_dim=2)])
    with pytest.raises(fnn.FnnValueError, match=r"metrics='recall' needs yes/no outputs \(a binary loss such as "
                                                r"binary_crossentropy\), but the loss is"):
        fnn.Trainer(softmax, metrics=["recall"])


@pytest.mark.slow  # compiles a run of its own
def test_a_keras_users_regularized_script_runs_as_written():
    """Dropout, kernel_regularizer, optimizer="rmsprop", metrics=["accuracy"] and EarlyStopping, as in Keras;
    the reported val_loss includes the penalty, as Keras' does, and predict never drops."""
    model = fnn.Sequential([
        fnn.Dense(8, activation="relu", input_shape=(2,), kernel_regularizer=fnn.regularizers.l2(1e-3)),
        fnn.Dropout(0.2),
        fnn.Dense(1, activation="sigmoid"),
    ])
    params = model.init(0)
    r = fnn.fit(model, params, X, Y, loss="binary_crossentropy", optimizer="rmsprop", epochs=6, batch_size=8,
                metrics=["accuracy"], validation_data=(XV, YV), verbose=False, key=1,
                callbacks=[fnn.callbacks.EarlyStopping(monitor="val_loss", patience=2)])
    assert list(r.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert r.stop_reason in ("epochs", "early_stopping") and all(np.isfinite(r.history["loss"]))
    if r.best_epoch is None or r.best_epoch == r.epochs_run - 1:
        p = np.asarray(fnn.predict(model, r.params, XV), np.float64)[:, 0]
        penalty = 1e-3 * float(np.sum(np.asarray(r.params[0].w, np.float64) ** 2))
        np.testing.assert_allclose(r.history["val_loss"][-1], bce(p, YV).mean() + penalty, rtol=1e-5)
