"""The learning-rate range test: one compiled program, rates growing exponentially, early stop on a
blow-up, and a suggestion that trains the seed network."""
import _compiles
import numpy as np
import pytest

import fnn

SEED_NET = fnn.Sequential([fnn.Dense(4, input_dim=2, activation="relu"), fnn.Dense(6, activation="relu"),
                           fnn.Dense(6, activation="relu"), fnn.Dense(4, activation="relu"),
                           fnn.Dense(1, activation="sigmoid")])


@pytest.fixture(scope="module")
def circles():
    x, y = fnn.data.circles(0, 1500, noise=0.05)
    x, y = np.asarray(x), np.asarray(y)
    return x[:1000], y[:1000], x[1000:], y[1000:]


def test_rates_grow_exponentially_and_one_program_serves_any_range(circles):
    x, y, _, _ = circles
    p = SEED_NET.init(0)
    found = fnn.lr_find(SEED_NET, p, x, y, min_lr=1e-4, max_lr=1.0, steps=20)
    assert found.rates.shape == found.losses.shape == found.raw_losses.shape
    np.testing.assert_allclose(found.rates[[0, -1]], [1e-4, 1.0] if not found.stopped_early else
                               [1e-4, found.rates[-1]], rtol=1e-9)
    ratios = found.rates[1:] / found.rates[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)
    assert found.rates[0] <= found.suggestion <= found.rates[-1]
    with _compiles.counting() as counts:
        fnn.lr_find(SEED_NET, p, x, y, min_lr=1e-3, max_lr=3.0, steps=20, key=1)
    assert counts == {"trace": 0, "compile": 0}


def test_stops_once_the_loss_blows_up():
    x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    reg = fnn.Sequential([fnn.Dense(8, activation="tanh"), fnn.Dense(1)])
    found = fnn.lr_find(reg, reg.init(0, 1), x, 3 * x, loss="mse", optimizer=fnn.optim.sgd, min_lr=1e-3,
                        max_lr=1e4, steps=100)
    assert found.stopped_early and len(found.rates) < 100
    assert found.suggestion < found.rates[-1]


def test_the_suggestion_trains_the_seed_network(circles):
    """Adam at the suggested rate, 50 epochs: 3 of these 4 seeds reach >= 99% test accuracy (over 24
    seeds 22 did, against 18 for the seed recipe's fixed 1e-3; see the README)."""
    x, y, xt, yt = circles
    reached = 0
    for seed in range(4):
        p = SEED_NET.init(seed)
        found = fnn.lr_find(SEED_NET, p, x, y, optimizer=fnn.optim.adam, key=seed)
        r = fnn.fit(SEED_NET, p, x, y, optimizer=fnn.optim.adam(found.suggestion), epochs=50, key=seed)
        reached += fnn.evaluate(SEED_NET, r.params, xt, yt)["accuracy"] >= 0.99
    assert reached >= 3


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(min_lr=0.0), fnn.FnnValueError, "min_lr"),
    (dict(min_lr=1.0, max_lr=0.1), fnn.FnnValueError, "larger than min_lr"),
    (dict(steps=2), fnn.FnnValueError, "steps"),
    (dict(steps=2.5), fnn.FnnTypeError, "steps"),
    (dict(smoothing=1.0), fnn.FnnValueError, "smoothing"),
    (dict(diverge=1.0), fnn.FnnValueError, "diverge"),
    (dict(optimizer=fnn.optim.adam(1e-3)), fnn.FnnTypeError, "function learning_rate"),
    (dict(optimizer=lambda lr: 3), fnn.FnnTypeError, r"optimizer\(schedule\)"),
    (dict(batch_size=0), fnn.FnnValueError, "batch_size"),
    (dict(key="k"), fnn.FnnTypeError, "key"),
    (dict(loss="hinge"), fnn.FnnValueError, "unknown loss"),
])
def test_bad_inputs(circles, kwargs, error, match):
    x, y, _, _ = circles
    with pytest.raises(error, match=match):
        fnn.lr_find(SEED_NET, SEED_NET.init(0), x, y, **kwargs)


def test_bad_data(circles):
    x, y, _, _ = circles
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(fnn.FnnValueError, match="row 3"):
        fnn.lr_find(SEED_NET, SEED_NET.init(0), bad, y)
    with pytest.raises(fnn.FnnValueError, match=r"labels in \[0, 1\]"):
        fnn.lr_find(SEED_NET, SEED_NET.init(0), x, 2 * y)
