"""fit on a stream of batches equals fit on the arrays; bad streams are refused clearly."""
import chex
import jax
import numpy as np
import pytest

import fnn

MODEL = fnn.Sequential([fnn.Dense(8, activation="relu"), fnn.Dense(1, activation="sigmoid")])


@pytest.fixture(scope="module")
def data():
    x, y = fnn.data.circles(jax.random.key(0), 200, noise=0.05)
    return np.asarray(x), np.asarray(y)


def test_stream_equals_unshuffled_arrays(data):
    x, y = data  # 200 samples in batches of 12: 17 batches over 3 chunks, the last batch partial
    p = MODEL.init(jax.random.key(0), 2)

    def batches(epoch):
        for i in range(0, 200, 12):
            yield x[i:i + 12], y[i:i + 12]

    kwargs = dict(optimizer=fnn.optim.momentum(0.1, 0.9), epochs=3)
    streamed = fnn.fit(MODEL, p, batches, None, **kwargs)
    arrays = fnn.fit(MODEL, p, x, y, batch_size=12, shuffle=False, **kwargs)
    chex.assert_trees_all_close(streamed.params, arrays.params, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(streamed.history["loss"], arrays.history["loss"], rtol=1e-6)
    listed = fnn.fit(MODEL, p, list(batches(0)), None, validation_data=(x, y), **kwargs)
    chex.assert_trees_all_close(listed.params, arrays.params, rtol=1e-6, atol=1e-6)
    assert set(listed.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_stream_stopping_rules(data):
    x, y = data
    p = MODEL.init(jax.random.key(0), 2)
    batches = [(x[i:i + 20], y[i:i + 20]) for i in range(0, 200, 20)]
    r = fnn.fit(MODEL, p, batches, None, optimizer=fnn.optim.adam(0.05), epochs=200, target_loss=0.3)
    assert r.stop_reason == "target_loss" and r.history["loss"][-1] <= 0.3


def test_bad_streams(data):
    x, y = data
    p = MODEL.init(jax.random.key(0), 2)
    one_shot = ((x[i:i + 10], y[i:i + 10]) for i in range(0, 200, 10))
    with pytest.raises(ValueError, match="one-shot iterator"):
        fnn.fit(MODEL, p, one_shot, None, epochs=2)
    bad = x[:10].copy()
    bad[4, 0] = np.nan
    with pytest.raises(ValueError, match="batch 1: x contains .* row 4"):
        fnn.fit(MODEL, p, [(x[:10], y[:10]), (bad, y[:10])], None, epochs=1)
    with pytest.raises(ValueError, match="batch 1 has 20 samples"):
        fnn.fit(MODEL, p, [(x[:10], y[:10]), (x[:20], y[:20])], None, epochs=1)
    with pytest.raises(TypeError, match="pair"):
        fnn.fit(MODEL, p, [(x[:10],)], None, epochs=1)
    with pytest.raises(ValueError, match="empty"):
        fnn.fit(MODEL, p, lambda epoch: iter(()), None, epochs=1)
    with pytest.raises(ValueError, match="key cannot be used with a stream"):
        fnn.fit(MODEL, p, [(x, y)], None, key=jax.random.key(0))
    with pytest.raises(ValueError, match="y is None"):
        fnn.fit(MODEL, p, x, None)


def test_a_later_empty_epoch_is_refused(data):
    x, y = data
    p = MODEL.init(jax.random.key(0), 2)
    gen = ((x[i:i + 20], y[i:i + 20]) for i in range(0, 200, 20))  # a generator: used up after epoch 0
    with pytest.raises(ValueError, match="batches of epoch 1 were empty.*function epoch -> iterable"):
        fnn.fit(MODEL, p, lambda epoch: gen, None, epochs=4)
