"""Half precision trains: fnn's optimizers keep their numbers and moments in float32 for float16 and bfloat16
params (float16 flushes Adam's eps=1e-8 to 0, bfloat16 rounds b2=0.999 to 1), and bfloat16 x is accepted."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

SEED = fnn.Sequential([fnn.Dense(n, activation="relu") for n in (4, 6, 6, 4)] + [fnn.Dense(1, activation="sigmoid")])
_X, _Y = fnn.data.circles(jax.random.key(0), 400, noise=0.05)


def _accuracy(params, x):
    p = np.asarray(fnn.predict(SEED, params, x), np.float32).ravel()
    return float(np.mean((p > 0.5) == np.asarray(_Y).ravel()))


@pytest.mark.parametrize("dtype, optimizer", [
    (jnp.float16, "adam"),
    (jnp.float16, "momentum"),
    (jnp.bfloat16, "adam"),
    (jnp.bfloat16, "momentum"),
])
def test_the_seed_network_trains_in_half_precision(dtype, optimizer):
    params = jax.tree.map(lambda a: a.astype(dtype), SEED.init(jax.random.key(0), 2))
    x = jnp.asarray(_X, dtype)  # bfloat16's numpy kind is "V": still a float to fnn
    opt = "adam" if optimizer == "adam" else fnn.optim.momentum(0.1, 0.9)
    result = fnn.fit(SEED, params, x, _Y, optimizer=opt, epochs=150, batch_size=32, verbose=0)
    assert result.stop_reason != "non_finite_loss" and result.rejected_steps == 0
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(result.params))
    floats = [leaf for leaf in jax.tree.leaves(result.state.opt_state) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    assert floats and all(leaf.dtype == jnp.float32 for leaf in floats)
    assert _accuracy(result.params, x) >= 0.99


def test_an_optimizer_state_is_float32_for_half_params_and_the_params_dtype_otherwise():
    for dtype, state_dtype in ((jnp.float16, jnp.float32), (jnp.bfloat16, jnp.float32), (jnp.float32, jnp.float32),
                               (jnp.float64, jnp.float64)):
        params = {"w": jnp.ones(3, dtype)}
        state = fnn.optim.adam(1e-3).init(params)
        assert state.mu["w"].dtype == state_dtype and state.hyper["eps"].dtype == state_dtype
        assert float(state.hyper["eps"]) > 0  # 1e-8 is 0 in float16
        updates, _ = fnn.optim.adam(1e-3).update({"w": jnp.full(3, 1e-3, dtype)}, state)
        assert updates["w"].dtype == dtype and bool(jnp.all(jnp.isfinite(updates["w"])))
    big = {"g": jnp.full(4, 300.0, jnp.float16)}  # Σ g² = 360,000: past float16's 65,504
    assert float(fnn.optim.global_norm(big)) == pytest.approx(600.0)


def test_half_params_step_a_float32_master_copy_so_small_updates_add_up():
    params = {"w": jnp.ones(3, jnp.bfloat16)}
    opt = fnn.optim.sgd(1e-4)
    state = fnn.optim.init_state(opt, params)
    assert isinstance(state, fnn.optim.MasterState) and state.master["w"].dtype == jnp.float32
    step = jax.jit(lambda p, s: fnn.optim.apply_step(opt.update, {"w": jnp.ones(3, jnp.bfloat16)}, s, p))
    for _ in range(100):  # each step is 1e-4: below bfloat16's spacing at 1 (2^-7), so plain steps never move
        params, state = step(params, state)
    np.testing.assert_allclose(np.asarray(state.master["w"]), 0.99, rtol=1e-5)
    assert params["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(params["w"], np.float32), np.asarray(jnp.asarray(0.99, jnp.bfloat16), np.float32))
    plain = {"w": jnp.ones(3, jnp.float32)}
    assert not isinstance(fnn.optim.init_state(opt, plain), fnn.optim.MasterState)
    assert float(fnn.optim.learning_rate(state)) == pytest.approx(1e-4)  # the numbers are found inside
