"""Reproducibility: one key and one data set give one result, bit for bit, in any process.

Also: different keys give different results, no key is used twice (layers of one shape get
different weights, every epoch is shuffled afresh), and jit agrees with eager execution.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import DenseParams

import _repro


@pytest.fixture(scope="module")
def reference():
    """The small float32 run of tests/_repro.py, done once in this process."""
    return _repro.run()


def test_the_same_key_and_data_give_bitwise_identical_params_and_history(reference):
    again = _repro.run()
    assert _repro.same(reference, again)
    assert len(reference["history"]["loss"]) == 3 and np.isfinite(reference["history"]["loss"]).all()


@pytest.mark.slow  # fresh processes or many examples: `make test-slow`
def test_a_fresh_process_gives_bitwise_identical_params_and_history(reference, tmp_path):
    # The child keeps JAX's default (no float64): this process runs with jax_enable_x64, and the
    # float32 run must not depend on that flag either.
    assert jax.config.jax_enable_x64
    other = _repro.in_subprocess(tmp_path / "run.ckpt", x64=False)
    assert _repro.same(reference, other), (reference["history"], other["history"])


def test_a_run_in_pieces_is_the_run_in_one_go(reference):
    """The same run as Trainer.run calls of 1 + 2 epochs, and as fit continuing from result.state:
    the same params and history, bit for bit (the state carries everything, the key included)."""
    assert _repro.same(reference, _repro.run_in_pieces(pieces=(1, 2)))
    assert _repro.same(reference, _repro.run_resumed(first=1, epochs=3))


def test_different_keys_give_different_results(reference):
    other_init = _repro.run(seed=1)
    other_shuffle = _repro.run(fit_seed=8)
    assert not _repro.same(reference["init"], other_init["init"])
    assert _repro.same(reference["init"], other_shuffle["init"])  # the fit key does not touch init
    for other in (other_init, other_shuffle):
        assert not _repro.same(reference["params"], other["params"])
        assert reference["history"]["loss"] != other["history"]["loss"]


def test_layers_of_the_same_shape_get_different_weights():
    model = fnn.Sequential([fnn.Dense(3, activation="tanh") for _ in range(4)])
    params = model.init(jax.random.key(0), 3, dtype=jnp.float32)
    ws = [np.asarray(p.w).ravel() for p in params]
    for a, b in itertools.combinations(ws, 2):
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.99  # not equal, not a multiple, not a sign flip


def _sgd_epoch(theta, x, y, orders, learning_rate):
    """Logistic-regression SGD with batches of one, by hand: theta (m, 3) -> (m, len(orders), 3)."""
    theta = np.repeat(theta[:, None, :], len(orders), axis=1)
    for i in np.asarray(orders).T:  # the i-th sample of every order at once
        xi, yi = x[i], y[i]  # (k, 2), (k,)
        z = np.einsum("mkd,kd->mk", theta[..., :2], xi) + theta[..., 2]
        g = 1 / (1 + np.exp(-z)) - yi  # ∂/∂z of softplus(z) − y z
        theta = theta - learning_rate * np.concatenate([g[..., None] * xi, g[..., None]], axis=-1)
    return theta


def test_each_epoch_is_shuffled_afresh():
    """Two epochs of fit, matched against every pair of orders worked by hand: one pair fits, and
    its two orders differ (a reused key would give the same order twice)."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 2)), np.array([0, 1, 1, 0, 1])
    model = fnn.Sequential([fnn.Dense(1, activation="sigmoid")])
    params = (DenseParams(jnp.asarray([[0.3], [-0.2]]), jnp.asarray([0.1])),)
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)  # a tiny program: compiling is the cost
    try:
        result = fnn.fit(model, params, x, y, optimizer=fnn.optim.sgd(0.5), epochs=2, batch_size=1,
                         key=jax.random.key(11))
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)
    got = np.concatenate([np.ravel(result.params[0].w), np.ravel(result.params[0].b)])

    orders = np.array(list(itertools.permutations(range(5))))  # all 120
    start = np.array([[0.3, -0.2, 0.1]])
    after_one = _sgd_epoch(start, x, y, orders, 0.5)[0]  # (120, 3)
    after_two = _sgd_epoch(after_one, x, y, orders, 0.5)  # (120 first orders, 120 second orders, 3)
    match = np.argwhere(np.abs(after_two - got).max(axis=-1) < 1e-9)
    assert len(match) == 1, f"{len(match)} pairs of orders reproduce fit"
    first, second = orders[match[0]]
    assert tuple(first) != tuple(second), "both epochs used the same order: the shuffle key was reused"
    identity = np.arange(5)
    assert not (np.array_equal(first, identity) and np.array_equal(second, identity))


def test_jit_and_eager_agree_in_float32():
    model = fnn.Sequential([fnn.Dense(5, activation="relu"), fnn.Dense(4, activation="tanh"),
                            fnn.Dense(3, activation="softmax")])
    rng = np.random.default_rng(1)
    params = tuple(DenseParams(jnp.asarray(rng.normal(size=(i, o)), jnp.float32),
                               jnp.asarray(rng.normal(size=o), jnp.float32)) for i, o in model.shapes(3))
    x = rng.normal(size=(8, 3)).astype(np.float32)
    eager = model.apply(params, x)
    compiled = jax.jit(model.apply)(params, x)
    assert eager.dtype == compiled.dtype == jnp.float32
    np.testing.assert_allclose(compiled, eager, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jax.jit(model.logits)(params, x), model.logits(params, x), rtol=1e-6, atol=1e-6)
