"""adamw, rmsprop, adagrad, lion: optax's steps to 1e-10 in float64, numbers in the state, bad inputs refused."""
import _compiles
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn import optim

STEPS = 60
# a one-layer network's params, so that the masks are the ones the docs show
THETA0 = (fnn.DenseParams(w=jnp.array([[1.0, -2.0, 0.5], [0.3, 0.0, -1.5]]), b=jnp.array([0.2, -0.7, 1.1])),)
NO_BIAS_DECAY = (fnn.DenseParams(w=True, b=False),)


def loss(theta):
    """A smooth, not quadratic, loss with gradients of different sizes per coordinate (one starts at 0)."""
    w, b = theta[0]
    return jnp.sum(jnp.array([[1.0, 4.0, 0.5]]) * w**2) / 2 + jnp.sum(jnp.cos(w)) + jnp.sum((b - 0.3) ** 4)


def trajectory(opt, theta):
    def body(carry, _):
        th, state = carry
        updates, state = opt.update(jax.grad(loss)(th), state, th)
        th = jax.tree.map(lambda p, u: p + u, th, updates)
        return (th, state), th

    return jax.lax.scan(body, (theta, opt.init(theta)), None, length=STEPS)[1]


def in_float64(schedule):
    """optax evaluates a schedule at its int32 count, so int32 / int runs in float32; fnn computes in the
    params' dtype. The reference gets its count as a float64 so that both compute in float64."""
    return lambda count: schedule(jnp.asarray(count, jnp.float64))


fnn_cos, optax_cos = optim.cosine_decay(0.05, 40, alpha=0.1), in_float64(optax.cosine_decay_schedule(0.05, 40, 0.1))
fnn_exp, optax_exp = optim.exponential_decay(0.05, 0.9, 5), in_float64(optax.exponential_decay(0.05, 5, 0.9))

PAIRS = {  # name: (fnn optimizer, optax's with the same arguments)
    "adamw": (optim.adamw(1e-2), optax.adamw(1e-2)),
    "adamw prefix mask nesterov eps_root": (  # (False,): a prefix of the params' tree, decaying nothing
        optim.adamw(3e-2, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8, weight_decay=0.1, mask=(False,), nesterov=True),
        optax.adamw(3e-2, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8, weight_decay=0.1, mask=(False,), nesterov=True)),
    "adamw cosine, callable mask": (
        optim.adamw(fnn_cos, weight_decay=0.05, mask=lambda p: tuple(fnn.DenseParams(True, False) for _ in p)),
        optax.adamw(optax_cos, weight_decay=0.05, mask=lambda p: tuple(fnn.DenseParams(True, False) for _ in p))),
    "rmsprop": (optim.rmsprop(1e-2), optax.rmsprop(1e-2)),
    "rmsprop centered momentum": (optim.rmsprop(1e-2, centered=True, momentum=0.9),
                                  optax.rmsprop(1e-2, centered=True, momentum=0.9)),
    "rmsprop nesterov, eps outside, initial scale, bias correction, exponential": (
        optim.rmsprop(fnn_exp, decay=0.8, eps=1e-4, initial_scale=0.5, eps_in_sqrt=False, momentum=0.5,
                      nesterov=True, bias_correction=True),
        optax.rmsprop(optax_exp, decay=0.8, eps=1e-4, initial_scale=0.5, eps_in_sqrt=False, momentum=0.5,
                      nesterov=True, bias_correction=True)),
    "rmsprop centered bias correction cosine": (
        optim.rmsprop(fnn_cos, centered=True, bias_correction=True),
        optax.rmsprop(optax_cos, centered=True, bias_correction=True)),
    "adagrad": (optim.adagrad(0.1), optax.adagrad(0.1)),
    "adagrad from 0, cosine": (optim.adagrad(fnn_cos, initial_accumulator_value=0.0, eps=1e-5),
                               optax.adagrad(optax_cos, initial_accumulator_value=0.0, eps=1e-5)),
    "lion": (optim.lion(1e-2), optax.lion(1e-2)),
    "lion mask exponential": (optim.lion(fnn_exp, b1=0.8, b2=0.9, weight_decay=0.1, mask=NO_BIAS_DECAY),
                              optax.lion(optax_exp, b1=0.8, b2=0.9, weight_decay=0.1, mask=NO_BIAS_DECAY)),
}


# one pair per optimizer, two of them under a schedule, in the default run; every pair under `make test-slow`
# (compiling the 22 runs takes several seconds on two cores)
CORE = ("adamw cosine, callable mask", "rmsprop centered momentum", "adagrad", "lion mask exponential")


@pytest.fixture(scope="module")
def trajectories():
    """name -> (fnn's 60 steps, optax's), each group of pairs computed by one compiled program on first use."""
    computed = {}

    def get(name):
        if name not in computed:
            group = CORE if name in CORE else tuple(n for n in PAIRS if n not in CORE)
            pairs = {n: PAIRS[n] for n in group}
            computed.update(jax.jit(lambda th: {n: (trajectory(a, th), trajectory(b, th))
                                                for n, (a, b) in pairs.items()})(THETA0))
        return computed[name]

    return get


@pytest.mark.parametrize("name", [n if n in CORE else pytest.param(n, marks=pytest.mark.slow) for n in PAIRS])
def test_takes_optax_steps(trajectories, name):
    ours, theirs = trajectories(name)
    assert ours[0].w.dtype == jnp.float64 and ours[0].w.shape == (STEPS, 2, 3)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-10, atol=1e-12)
    assert float(jnp.abs(ours[0].w[-1] - THETA0[0].w).max()) > 1e-2  # it moved


def test_defaults_are_optax_with_keras_learning_rate():
    """By name: Keras' 1e-3 and optax's other defaults, as optimizer="adam" is."""
    state = optim.get("adamw").init(THETA0)
    assert {k: float(v) for k, v in optim.hyperparameters(state).items()} == dict(
        learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, weight_decay=1e-4)
    assert {k: float(v) for k, v in optim.hyperparameters(optim.get("RMSprop").init(THETA0)).items()} == dict(
        learning_rate=1e-3, decay=0.9, eps=1e-8)
    assert {k: float(v) for k, v in optim.hyperparameters(optim.get("adagrad").init(THETA0)).items()} == dict(
        learning_rate=1e-3, eps=1e-7)
    assert {k: float(v) for k, v in optim.hyperparameters(optim.get("lion").init(THETA0)).items()} == dict(
        learning_rate=1e-3, b1=0.9, b2=0.99, weight_decay=1e-3)
    np.testing.assert_array_equal(optim.get("adagrad").init(THETA0).sum_of_squares[0].w, np.full((2, 3), 0.1))
    for name in ("adamw", "rmsprop", "adagrad", "lion"):
        assert optim.check_optimizer(name) == optim.OPTIMIZERS[name](1e-3)
    # optax's positions too: adamw(lr, b1, b2, eps, eps_root, mu_dtype, weight_decay), lion(lr, b1, b2, mu_dtype, wd)
    assert optim.adamw(1e-2, 0.9, 0.999, 1e-8, 0.0, None, 0.3) == optim.adamw(1e-2, weight_decay=0.3)
    assert optim.lion(1e-2, 0.9, 0.99, None, 0.3) == optim.lion(1e-2, weight_decay=0.3)


def test_numbers_live_in_the_state_and_flags_in_the_kind():
    assert optim.rmsprop(1e-2).update == optim.rmsprop(0.3, decay=0.5, eps=1e-3).update
    assert optim.adamw(1e-2).update == optim.adamw(1e-3, weight_decay=0.5).update
    assert optim.lion(optim.cosine_decay(0.1, 10)).update == optim.lion(optim.cosine_decay(0.5, 99)).update
    assert optim.rmsprop(1e-2).update != optim.rmsprop(1e-2, centered=True).update
    assert optim.rmsprop(1e-2).update != optim.rmsprop(1e-2, momentum=0.9).update
    assert optim.adamw(mask=NO_BIAS_DECAY).update != optim.adamw().update
    assert hash(optim.adamw(mask=(fnn.DenseParams(True, False),))) == hash(optim.adamw(mask=NO_BIAS_DECAY))
    state = optim.set_hyperparameters(optim.rmsprop(1e-2, momentum=0.9).init(THETA0), learning_rate=0.5, momentum=0.1)
    assert float(optim.learning_rate(state)) == 0.5 and float(state.hyper["momentum"]) == 0.1
    adamw_state, rmsprop_state = optim.adamw().init(THETA0), optim.rmsprop(momentum=0.9).init(THETA0)
    for state, name, bad in ((rmsprop_state, "decay", 1.0), (rmsprop_state, "momentum", 1.5),
                             (adamw_state, "weight_decay", -0.1), (adamw_state, "eps_root", -1.0)):
        with pytest.raises(fnn.FnnValueError, match=f"{name} must be in"):  # new numbers are checked too
            optim.set_hyperparameters(state, **{name: bad})
    assert optim.rmsprop(1e-2).init(THETA0).trace is None and optim.rmsprop(1e-2).init(THETA0).mu is None


def test_elementwise_unless_masked():
    """Masks pick leaves, so a masked optimizer must see the tree, not the run's flat vector."""
    assert all(optim.is_elementwise(o.update) for o in (
        optim.adamw(), optim.rmsprop(centered=True, momentum=0.9), optim.adagrad(), optim.lion(),
        optim.chain(optim.clip_by_global_norm(1.0), optim.rmsprop())))
    assert not optim.is_elementwise(optim.adamw(mask=NO_BIAS_DECAY).update)
    assert not optim.is_elementwise(optim.lion(mask=lambda p: p).update)


CIRCLES_NET = fnn.Sequential([fnn.Dense(8, activation="tanh"), fnn.Dense(1, activation="sigmoid")])


def test_rmsprop_by_name_trains_and_new_numbers_compile_nothing():
    x, y = fnn.data.circles(jax.random.key(0), 64, noise=0.05)
    params = CIRCLES_NET.init(jax.random.key(1), 2)
    first = fnn.fit(CIRCLES_NET, params, x, y, optimizer="rmsprop", epochs=3, batch_size=16)
    with _compiles.counting() as counts:
        fast = fnn.fit(CIRCLES_NET, params, x, y, optimizer=optim.rmsprop(3e-2, decay=0.8), epochs=200,
                       batch_size=16)
    assert counts == {"trace": 0, "compile": 0}
    assert fast.history["loss"][0] > 0.6 and fast.history["loss"][-1] < 0.1  # 0.73 -> 0.023
    assert fast.history["accuracy"][-1] == 1.0
    assert first.history["loss"][-1] != fast.history["loss"][2]


@pytest.mark.parametrize("make, error, match", [
    (lambda: optim.adamw(-1e-3), ValueError, "learning_rate"),
    (lambda: optim.adamw(1e-3, b1=1.0), ValueError, r"b1 must be in \[0, 1\)"),
    (lambda: optim.adamw(1e-3, b2=-0.1), ValueError, "b2"),
    (lambda: optim.adamw(1e-3, eps=0.0), ValueError, "eps"),
    (lambda: optim.adamw(1e-3, eps_root=-1.0), ValueError, "eps_root"),
    (lambda: optim.adamw(1e-3, weight_decay=-1e-4), ValueError, "weight_decay"),
    (lambda: optim.adamw(1e-3, weight_decay=float("nan")), ValueError, "weight_decay must be finite"),
    (lambda: optim.adamw(1e-3, mask=(fnn.DenseParams(1, 0),)), TypeError, "mask must be None, a function"),
    (lambda: optim.adamw(1e-3, mask={"w": True}).init(THETA0), ValueError, "mask does not fit the params"),
    (lambda: optim.lion(1e-3, mask=(True, False)).init(THETA0), ValueError, "mask does not fit the params"),
    (lambda: optim.adamw(1e-3, mask=lambda p: 3).init(THETA0), TypeError, "mask must be"),
    (lambda: optim.adamw(1e-3).update(THETA0, optim.adamw(1e-3).init(THETA0)), ValueError, "adamw's weight decay needs the params"),
    (lambda: optim.lion().update(THETA0, optim.lion().init(THETA0)), ValueError, "lion's weight decay needs"),
    (lambda: optim.adamw(1e-3, mu_dtype=jnp.bfloat16), ValueError, "mu_dtype=.*bfloat16.* is not taken"),
    (lambda: optim.lion(1e-3, mu_dtype="float32"), ValueError, "leave mu_dtype=None"),
    (lambda: optim.rmsprop(0.0), ValueError, "learning_rate"),
    (lambda: optim.rmsprop(1e-3, decay=1.0), ValueError, r"decay must be in \[0, 1\)"),
    (lambda: optim.rmsprop(1e-3, decay=-0.5), ValueError, "decay"),
    (lambda: optim.rmsprop(1e-3, eps=-1e-8), ValueError, "eps"),
    (lambda: optim.rmsprop(1e-3, initial_scale=-1.0), ValueError, "initial_scale"),
    (lambda: optim.rmsprop(1e-3, momentum=1.0), ValueError, "momentum"),
    (lambda: optim.rmsprop(1e-3, momentum="0.9"), TypeError, "momentum must be a real number"),
    (lambda: optim.adagrad(float("inf")), ValueError, "learning_rate"),
    (lambda: optim.adagrad(1e-3, initial_accumulator_value=-0.1), ValueError, "initial_accumulator_value"),
    (lambda: optim.adagrad(1e-3, eps=0.0), ValueError, "eps"),
    (lambda: optim.lion(True), TypeError, "learning_rate"),
    (lambda: optim.lion(1e-3, b1=1.5), ValueError, "b1"),
    (lambda: optim.lion(1e-3, b2=1.0), ValueError, "b2"),
    (lambda: optim.lion(1e-3, weight_decay=-1.0), ValueError, "weight_decay"),
    (lambda: optim.get("adadelta"), ValueError, r"unknown optimizer 'adadelta'.*'rmsprop'"),
])
def test_bad_inputs(make, error, match):
    with pytest.raises(error, match=match) as info:
        make()
    assert isinstance(info.value, fnn.FnnError)
