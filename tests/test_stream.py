"""fit on a stream of batches equals fit on the arrays; bad streams are refused clearly; a stream
failing in a later epoch hands back what was trained before it."""
import chex
import jax
import numpy as np
import pytest

import fnn
from fnn.stream import StreamError

MODEL = fnn.Sequential([fnn.Dense(8, activation="relu"), fnn.Dense(1, activation="sigmoid")])
OPTIMIZER = fnn.optim.momentum(0.1, 0.9)


@pytest.fixture(scope="module")
def data():
    x, y = fnn.data.circles(jax.random.key(0), 200, noise=0.05)
    return np.asarray(x), np.asarray(y)


@pytest.fixture(scope="module")
def params():
    return MODEL.init(jax.random.key(0), 2)


def _batches(x, y, size=20):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def test_stream_equals_unshuffled_arrays(data, params):
    x, y = data  # 200 samples in batches of 12: 17 batches over 3 chunks, the last batch partial

    def batches(epoch):
        for i in range(0, 200, 12):
            yield x[i:i + 12], y[i:i + 12]

    kwargs = dict(optimizer=OPTIMIZER, epochs=3)
    streamed = fnn.fit(MODEL, params, batches, None, **kwargs)
    arrays = fnn.fit(MODEL, params, x, y, batch_size=12, shuffle=False, **kwargs)
    chex.assert_trees_all_close(streamed.params, arrays.params, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(streamed.history["loss"], arrays.history["loss"], rtol=1e-6)
    assert streamed.epochs_run == 3 and int(streamed.state.epoch) == 3
    listed = fnn.fit(MODEL, params, list(batches(0)), None, validation_data=(x, y), **kwargs)
    chex.assert_trees_all_close(listed.params, arrays.params, rtol=1e-6, atol=1e-6)
    assert set(listed.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_a_key_is_accepted_and_leaves_the_order_to_the_stream(data, params):
    x, y = data
    batches = _batches(x, y)
    plain = fnn.fit(MODEL, params, batches, None, optimizer=OPTIMIZER, epochs=2)
    keyed = fnn.fit(MODEL, params, batches, None, optimizer=OPTIMIZER, epochs=2, key=jax.random.key(5))
    chex.assert_trees_all_equal(plain.params, keyed.params)
    assert plain.history == keyed.history


def test_stream_stopping_rules_are_callbacks(data, params):
    x, y = data
    batches = _batches(x, y)
    r = fnn.fit(MODEL, params, batches, None, optimizer=fnn.optim.adam(0.05), epochs=200,
                callbacks=[fnn.callbacks.TargetLoss(0.3)])
    assert r.stop_reason == "target_loss" and r.history["loss"][-1] <= 0.3
    assert all(loss > 0.3 for loss in r.history["loss"][:-1]) and r.epochs_run == len(r.history["loss"]) < 200

    early = fnn.callbacks.EarlyStopping(monitor="val_loss", patience=0, restore_best_weights=True)
    r = fnn.fit(MODEL, params, batches, None, optimizer=fnn.optim.sgd(5.0), epochs=30, validation_data=(x, y),
                callbacks=[early])
    val = r.history["val_loss"]
    assert r.stop_reason == "early_stopping" and val[-1] >= min(val[:-1]), val
    assert r.best_epoch == int(np.argmin(val))
    best = fnn.evaluate(MODEL, r.params, x, y)["loss"]
    np.testing.assert_allclose(best, min(val), rtol=1e-5)  # restore_best_weights: the best epoch's params


def test_a_stream_failing_in_a_later_epoch_keeps_the_epochs_trained(data, params):
    """Epoch 2 yields a bad batch: StreamError names the epoch and the batch, and carries the state
    and history of epochs 0 and 1, which continue to what a run on the good stream gives."""
    x, y = data
    good = _batches(x, y)
    bad_x = x[20:40].copy()
    bad_x[3, 1] = np.nan

    def failing(epoch):
        return good if epoch < 2 else [good[0], (bad_x, y[20:40])] + good[2:]

    with pytest.raises(StreamError, match=r"^epoch 2: batch 1: x contains 1 non-finite value\(s\); the first is nan "
                                          r"at row 3") as caught:
        fnn.fit(MODEL, params, failing, None, optimizer=OPTIMIZER, epochs=4)
    e = caught.value
    assert isinstance(e, fnn.FnnValueError) and e.epoch == 2
    assert "the 2 epoch(s) before it are kept in this error's .state and .history" in str(e)
    assert isinstance(e.state, fnn.TrainState) and int(e.state.epoch) == 2 and int(e.state.step) == 0
    assert e.history.epoch == [0, 1] and len(e.history["loss"]) == 2

    two = fnn.fit(MODEL, params, good, None, optimizer=OPTIMIZER, epochs=2)
    chex.assert_trees_all_equal(e.state.params, two.params)
    assert e.history["loss"] == two.history["loss"]
    resumed = fnn.fit(MODEL, params, good, None, optimizer=OPTIMIZER, epochs=4, initial_state=e.state)
    four = fnn.fit(MODEL, params, good, None, optimizer=OPTIMIZER, epochs=4)
    assert resumed.epochs_run == 4 and resumed.history["loss"] == four.history["loss"][2:]
    chex.assert_trees_all_equal(resumed.params, four.params)


def test_a_stream_failing_in_its_first_epoch_has_no_state(data, params):
    x, y = data
    bad = x[:10].copy()
    bad[4, 0] = np.nan
    with pytest.raises(StreamError, match=r"^epoch 0: batch 1: x contains .* row 4") as caught:
        fnn.fit(MODEL, params, [(x[:10], y[:10]), (bad, y[:10])], None, epochs=1)
    assert caught.value.state is None and caught.value.epoch == 0 and caught.value.history.epoch == []


def test_bad_streams(data, params):
    x, y = data
    p = params
    one_shot = ((x[i:i + 10], y[i:i + 10]) for i in range(0, 200, 10))
    with pytest.raises(StreamError, match="one-shot iterator"):
        fnn.fit(MODEL, p, one_shot, None, epochs=2)
    with pytest.raises(StreamError, match="batch 1 has 20 samples"):
        fnn.fit(MODEL, p, [(x[:10], y[:10]), (x[:20], y[:20])], None, epochs=1)
    with pytest.raises(StreamError, match=r"batch 0 must be a pair \(x, y\)"):
        fnn.fit(MODEL, p, [(x[:10],)], None, epochs=1)
    with pytest.raises(StreamError, match="empty"):
        fnn.fit(MODEL, p, lambda epoch: iter(()), None, epochs=1)
    for name, value in (("validation_split", 0.2), ("sample_weight", np.ones(200)), ("class_weight", {0: 2.0}),
                        ("devices", jax.devices())):
        with pytest.raises(fnn.FnnValueError, match=f"{name} cannot be used with a stream"):
            fnn.fit(MODEL, p, [(x, y)], None, **{name: value})
    with pytest.raises(fnn.FnnValueError, match=r"EarlyStopping monitors 'val_loss'.*pass validation_data="):
        fnn.fit(MODEL, p, [(x, y)], None, callbacks=[fnn.callbacks.EarlyStopping()])
    with pytest.raises(ValueError, match="y is None"):
        fnn.fit(MODEL, p, x, None)


def test_a_later_empty_epoch_is_refused(data, params):
    x, y = data
    gen = ((x[i:i + 20], y[i:i + 20]) for i in range(0, 200, 20))  # a generator: used up after epoch 0
    with pytest.raises(StreamError, match="batches of epoch 1 were empty.*function epoch -> iterable") as caught:
        fnn.fit(MODEL, params, lambda epoch: gen, None, epochs=4)
    assert int(caught.value.state.epoch) == 1 and len(caught.value.history["loss"]) == 1
