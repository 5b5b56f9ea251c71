"""Optimizers: first steps on a quadratic worked by hand, tree structure kept, bad hyperparameters refused."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import optim

# L(θ) = ½ Σ c θ²  ⇒  ∇L = c θ
C = jnp.array([1.0, 4.0])
THETA0 = jnp.array([1.0, -2.0])


def grad(theta):
    return C * theta


def run(opt, steps, theta=THETA0):
    state = opt.init(theta)
    out = []
    for _ in range(steps):
        updates, state = opt.update(grad(theta), state, theta)
        theta = optim.apply_updates(theta, updates)
        out.append(np.asarray(theta))
    return np.stack(out)


def test_sgd_by_hand():
    lr = 0.1
    expected, th = [], np.array([1.0, -2.0])
    for _ in range(3):
        th = th - lr * np.array([1.0, 4.0]) * th
        expected.append(th)
    np.testing.assert_allclose(run(optim.sgd(lr), 3), np.stack(expected), rtol=1e-12)


def test_momentum_by_hand():
    lr, a = 0.1, 0.9
    th, v, expected = np.array([1.0, -2.0]), np.zeros(2), []
    for _ in range(4):
        v = a * v - lr * np.array([1.0, 4.0]) * th  # Δθ ← αΔθ − η∇L
        th = th + v  # θ ← θ + Δθ
        expected.append(th)
    np.testing.assert_allclose(run(optim.momentum(lr, a), 4), np.stack(expected), rtol=1e-12)


def test_momentum_zero_is_sgd():
    np.testing.assert_allclose(run(optim.momentum(0.05, 0.0), 5), run(optim.sgd(0.05), 5), rtol=1e-12)


def test_nesterov_by_hand():
    lr, a = 0.1, 0.9
    th, v, expected = np.array([1.0, -2.0]), np.zeros(2), []
    for _ in range(4):
        g = np.array([1.0, 4.0]) * th
        v = a * v - lr * g
        th = th + a * v - lr * g
        expected.append(th)
    np.testing.assert_allclose(run(optim.nesterov(lr, a), 4), np.stack(expected), rtol=1e-12)


def test_adam_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    th, m, s, expected = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2), []
    for t in range(1, 4):
        g = np.array([1.0, 4.0]) * th
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        th = th - lr * (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
        expected.append(th)
    np.testing.assert_allclose(run(optim.adam(lr, b1, b2, eps), 3), np.stack(expected), rtol=1e-6)


@pytest.mark.parametrize("opt", [optim.sgd(0.1), optim.momentum(0.05), optim.nesterov(0.05), optim.adam(0.1)],
                         ids=["sgd", "momentum", "nesterov", "adam"])
def test_minimises_quadratic(opt):
    final = run(opt, 300)[-1]
    assert np.abs(final).max() < 1e-2


def test_schedules():
    np.testing.assert_allclose(optim.constant(0.3)(7), 0.3, rtol=1e-7)
    exp = optim.exponential_decay(1.0, 0.5, transition_steps=2)
    np.testing.assert_allclose([exp(0), exp(2), exp(4)], [1.0, 0.5, 0.25], rtol=1e-7)
    stair = optim.exponential_decay(1.0, 0.5, transition_steps=2, staircase=True)
    np.testing.assert_allclose([stair(1), stair(3)], [1.0, 0.5], rtol=1e-7)
    floor = optim.exponential_decay(1.0, 0.5, end_value=0.3)
    np.testing.assert_allclose(floor(10), 0.3, rtol=1e-7)
    cos = optim.cosine_decay(1.0, 10, alpha=0.1)
    np.testing.assert_allclose([cos(0), cos(5), cos(10), cos(20)], [1.0, 0.55, 0.1, 0.1], rtol=1e-6)


def test_schedule_drives_the_rate():
    sched = optim.exponential_decay(0.1, 0.5)
    th = np.array([1.0, -2.0])
    expected = []
    for step in range(3):
        th = th - 0.1 * 0.5**step * np.array([1.0, 4.0]) * th
        expected.append(th)
    np.testing.assert_allclose(run(optim.sgd(sched), 3), np.stack(expected), rtol=1e-6)


def test_clip_by_global_norm():
    g = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}  # ‖g‖ = 5
    clip = optim.clip_by_global_norm(1.0)
    out, _ = clip.update(g, clip.init(g))
    np.testing.assert_allclose(float(optim.global_norm(out)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(out["a"], [0.6, 0.0], rtol=1e-12)
    loose = optim.clip_by_global_norm(10.0)
    small, _ = loose.update(g, loose.init(g))
    chex.assert_trees_all_close(small, g)


def test_weight_decay_adds_rate_times_params():
    params = {"w": jnp.ones((2, 2)), "b": jnp.full(2, -2.0)}
    grads = {"w": jnp.full((2, 2), 0.5), "b": jnp.zeros(2)}
    wd = optim.add_weight_decay(0.1)
    out, _ = wd.update(grads, wd.init(params), params)
    np.testing.assert_allclose(out["w"], 0.6 * np.ones((2, 2)))
    np.testing.assert_allclose(out["b"], [-0.2, -0.2])
    with pytest.raises(ValueError, match="needs the params"):
        wd.update(grads, wd.init(params))


def test_chain_composes_left_to_right():
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(1.0))
    theta = jnp.array([3.0, 4.0])
    updates, _ = opt.update(theta, opt.init(theta), theta)  # grads of norm 5 clipped to 1, then −1·g
    np.testing.assert_allclose(updates, [-0.6, -0.8], rtol=1e-12)


def test_keeps_tree_structure_and_dtype():
    params = ({"w": jnp.ones((2, 3), jnp.float32)}, jnp.zeros(3, jnp.float32))
    for opt in (optim.sgd(0.1), optim.momentum(0.1), optim.nesterov(0.1), optim.adam(0.1)):
        state = opt.init(params)
        updates, state = opt.update(params, state, params)
        chex.assert_trees_all_equal_structs(updates, params)
        new = optim.apply_updates(params, updates)
        chex.assert_trees_all_equal_dtypes(new, params)


def test_jittable_and_equal_by_value():
    opt = optim.adam(1e-2)
    params = jnp.ones(3)
    jax.jit(opt.update)(params, opt.init(params), params)
    assert optim.momentum(0.1, 0.9) == optim.momentum(0.1, 0.9)
    assert hash(optim.momentum(0.1, 0.9)) == hash(optim.momentum(0.1, 0.9))
    assert optim.momentum(0.1, 0.9) != optim.momentum(0.2, 0.9)
    assert optim.adam(optim.cosine_decay(0.1, 10)) == optim.adam(optim.cosine_decay(0.1, 10))


@pytest.mark.parametrize("make, match", [
    (lambda: optim.sgd(-0.1), "learning_rate"),
    (lambda: optim.sgd(0.0), "learning_rate"),
    (lambda: optim.sgd(float("nan")), "learning_rate"),
    (lambda: optim.sgd("0.1"), "learning_rate"),
    (lambda: optim.momentum(0.1, momentum=1.0), "momentum"),
    (lambda: optim.momentum(0.1, momentum=-0.1), "momentum"),
    (lambda: optim.nesterov(0.1, momentum=1.5), "momentum"),
    (lambda: optim.adam(0.1, b1=1.0), "b1"),
    (lambda: optim.adam(0.1, b2=-0.5), "b2"),
    (lambda: optim.adam(0.1, eps=0.0), "eps"),
    (lambda: optim.adam(True), "learning_rate"),
    (lambda: optim.clip_by_global_norm(0.0), "max_norm"),
    (lambda: optim.add_weight_decay(-1e-3), "weight decay"),
    (lambda: optim.exponential_decay(0.1, 0.0), "decay_rate"),
    (lambda: optim.exponential_decay(0.1, 0.5, transition_steps=0), "transition_steps"),
    (lambda: optim.cosine_decay(0.1, 0), "decay_steps"),
    (lambda: optim.cosine_decay(0.1, 10, alpha=2.0), "alpha"),
    (lambda: optim.chain(), "at least one"),
    (lambda: optim.chain(optim.sgd(0.1), 3), "chain part 1"),
    (lambda: optim.chain(optim.sgd(0.1), "adadelta"), "unknown optimizer 'adadelta'"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_schedules_compute_in_the_params_dtype():
    """Adam under cosine_decay in float64 against a float64 NumPy reference, 60 steps."""
    lr0, steps, b1, b2, eps = 0.05, 40, 0.9, 0.999, 1e-8
    opt = optim.adam(optim.cosine_decay(lr0, steps, alpha=0.1), b1, b2, eps)
    th, m, v, expected = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2), []
    for t in range(60):
        g = np.array([1.0, 4.0]) * th
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        lr = lr0 * ((1 - 0.1) * 0.5 * (1 + np.cos(np.pi * min(t, steps) / steps)) + 0.1)
        th = th - lr * (m / (1 - b1 ** (t + 1))) / (np.sqrt(v / (1 - b2 ** (t + 1))) + eps)
        expected.append(th)
    got = jax.jit(lambda th0: _run_scan(opt, th0, 60))(jnp.array([1.0, -2.0], jnp.float64))
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-12, atol=1e-14)


def _run_scan(opt, theta, steps):
    def body(carry, _):
        th, state = carry
        updates, state = opt.update(grad(th), state, th)
        th = optim.apply_updates(th, updates)
        return (th, state), th

    return jax.lax.scan(body, (theta, opt.init(theta)), None, length=steps)[1]


def test_optimizers_by_name_with_their_usual_defaults():
    assert optim.check_optimizer("adam").update == optim.adam().update
    state = optim.check_optimizer("momentum").init(THETA0)
    assert float(state.hyper["learning_rate"]["value"]) == 0.01 and float(state.hyper["momentum"]) == 0.9
    with pytest.raises(ValueError, match="unknown optimizer 'adadelta'"):
        optim.get("adadelta")
