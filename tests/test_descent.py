"""fnn.optim.trajectory against the update rules iterated by hand, fnn.plot.descent's paths of two
variables (what they draw, their bad inputs), and StepLoss' per-step losses replayed by hand."""
import warnings

import _compiles
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import optim
from fnn.errors import FnnTypeError, FnnValueError

# f(θ) = ½ θᵀAθ + bᵀθ, ill-conditioned (eigenvalues ≈ 1.9 and 20.1), gradient Aθ + b
A = np.array([[2.0, 1.0], [1.0, 20.0]])
B = np.array([0.5, -1.0])
START = np.array([-1.5, 2.0])
STEPS = 25


def quadratic(p):
    return 0.5 * jnp.einsum("...i,ij,...j->...", p, A, p) + p @ B


def gradient(p):
    return A @ p + B


def by_hand(step, state, steps=STEPS, theta=START):
    """(steps + 1, 2): θ and the optimizer's state advanced by step(θ, g, state) -> (Δθ, state)."""
    out = [theta]
    for t in range(1, steps + 1):
        delta, state = step(gradient(theta), state, t)
        theta = theta + delta
        out.append(theta)
    return np.stack(out)


def sgd_step(lr):
    return lambda g, state, t: (-lr * g, state)


def momentum_step(lr, alpha):
    def step(g, v, t):
        v = alpha * v - lr * g  # Δθ ← αΔθ − η∇L
        return v, v

    return step


def nesterov_step(lr, alpha):
    def step(g, v, t):
        v = alpha * v - lr * g
        return alpha * v - lr * g, v  # the look-ahead: one more step along the new velocity

    return step


def adam_step(lr, b1=0.9, b2=0.999, eps=1e-8):
    def step(g, state, t):
        m, v = state
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        return -lr * m_hat / (np.sqrt(v_hat) + eps), (m, v)

    return step


ZERO = np.zeros(2)
CASES = {
    "sgd": (optim.sgd(0.04), sgd_step(0.04), None),
    "momentum": (optim.momentum(0.02, 0.9), momentum_step(0.02, 0.9), ZERO),
    "nesterov": (optim.nesterov(0.02, 0.8), nesterov_step(0.02, 0.8), ZERO),
    "adam": (optim.adam(0.1), adam_step(0.1), (ZERO, ZERO)),
}


# --------------------------------------------------------------------------- trajectory
@pytest.mark.parametrize("name", sorted(CASES))
def test_trajectory_is_the_update_rule_iterated_by_hand(name):
    opt, step, state = CASES[name]
    path = optim.trajectory(opt, quadratic, START, STEPS)
    assert isinstance(path, np.ndarray) and path.shape == (STEPS + 1, 2) and path.dtype == np.float64
    np.testing.assert_array_equal(path[0], START)
    np.testing.assert_allclose(path, by_hand(step, state), rtol=1e-12, atol=1e-12)


def test_trajectory_numbers_are_values_and_names_work():
    path = optim.trajectory(optim.sgd(0.04), quadratic, START, STEPS)  # compiled here or above
    with _compiles.counting() as counts:
        other = optim.trajectory(optim.sgd(0.07), quadratic, START, STEPS)
    assert counts["compile"] == 0  # another learning rate, the same program
    np.testing.assert_allclose(other, by_hand(sgd_step(0.07), None), rtol=1e-12, atol=1e-12)
    assert not np.allclose(path, other)
    np.testing.assert_allclose(optim.trajectory("sgd", quadratic, START, 3), by_hand(sgd_step(0.01), None, 3),
                               rtol=1e-12)  # a name: Keras' default rate
    chained = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.1))
    first = optim.trajectory(chained, quadratic, START, 1)
    g = gradient(START)
    np.testing.assert_allclose(first[1], START - 0.1 * g / np.linalg.norm(g), rtol=1e-12)


def test_trajectory_start_as_ints_half_precision_and_one_variable():
    path = optim.trajectory(optim.sgd(0.25), lambda p: (p**2).sum(), [2], 3)  # θ ← θ − 0.25·2θ = θ/2
    assert path.dtype == np.float64
    np.testing.assert_allclose(path[:, 0], [2.0, 1.0, 0.5, 0.25], rtol=1e-15)
    half = optim.trajectory(optim.sgd(1e-3), lambda p: (p**2).sum(), jnp.ones(1, jnp.bfloat16), 3)
    assert half.dtype == np.float32  # in bfloat16 each step of 0.2% would round away
    np.testing.assert_allclose(half[:, 0], 0.998 ** np.arange(4), rtol=1e-6)


def test_trajectory_divergence_is_reported_and_the_rest_is_nan():
    lr, steps = 0.5, 400  # |1 − 0.5·20.1| ≈ 9: f overflows float64 after some 160 steps, the points later
    with np.errstate(over="ignore", invalid="ignore"):
        expected = by_hand(sgd_step(lr), None, steps)
        k = int(np.argmax(~(np.isfinite(expected).all(axis=1) & np.isfinite(quadratic(expected)))))
    assert np.isfinite(expected[k]).all()  # f there is not: that counts
    assert 0 < k < steps
    with pytest.warns(RuntimeWarning, match=rf"diverged at step {k} of {steps}.*smaller learning rate") as record:
        path = optim.trajectory(optim.sgd(lr), quadratic, START, steps)
    assert record[0].filename == __file__  # the warning points at the caller
    assert np.isnan(path[k:]).all() and np.isfinite(path[:k]).all()
    np.testing.assert_allclose(path[:k], expected[:k], rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.trajectory(optim.sgd(lr), quadratic, START, 10)  # no warning while it is finite


@pytest.mark.parametrize(
    "args, error, match",
    [
        (("adadelta", quadratic, START, 3), FnnValueError, "unknown optimizer 'adadelta'"),
        ((3, quadratic, START, 3), FnnTypeError, "optimizer must be an fnn.optim.Optimizer"),
        ((optim.sgd(0.1), "f", START, 3), FnnTypeError, r"f must be a function of a point \(d,\)"),
        ((optim.sgd(0.1), quadratic, [START], 3), FnnValueError, r"start must be a 1-d point \(d,\).*\(1, 2\)"),
        ((optim.sgd(0.1), quadratic, [], 3), FnnValueError, r"start must be a 1-d point.*\(0,\)"),
        ((optim.sgd(0.1), quadratic, [1.0, np.inf], 3), FnnValueError, "start contains 1 non-finite"),
        ((optim.sgd(0.1), quadratic, "ab", 3), FnnTypeError, "start must be a numeric array"),
        ((optim.sgd(0.1), quadratic, START, 0), FnnValueError, "steps must be an integer >= 1, got 0"),
        ((optim.sgd(0.1), quadratic, START, 2.0), FnnTypeError, "steps must be an integer >= 1"),
        ((optim.sgd(0.1), lambda p: p, START, 3), FnnValueError, r"f must return a real scalar.*sum the terms"),
        ((optim.sgd(0.1), lambda p: np.sin(p).sum(), START, 3), FnnTypeError, "f must be written with jax.numpy"),
        ((optim.sgd(0.1), lambda p: jnp.log(p).sum(), [-1.0], 3), FnnValueError, "f is not finite at the start"),
    ],
)
def test_trajectory_bad_inputs(args, error, match):
    with pytest.raises(error, match=match):
        optim.trajectory(*args)


# --------------------------------------------------------------------------- descent, two variables
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def rosenbrock(p):
    return (1 - p[..., 0]) ** 2 + 100 * (p[..., 1] - p[..., 0] ** 2) ** 2


def plane(p):  # negative values: evenly spaced levels
    return p[..., 0] - 2 * p[..., 1]


PATH = np.array([[-1.0, 2.0], [-0.5, 1.0], [0.0, 0.5], [0.5, 0.25]])


def test_descent_of_one_path_draws_it_over_f():
    fig, ax = plt.subplots()
    drawn = fnn.plot.descent(plane, PATH, ax)
    line = drawn.lines["path"]
    np.testing.assert_array_equal(line.get_xdata(), PATH[:, 0])
    np.testing.assert_array_equal(line.get_ydata(), PATH[:, 1])
    np.testing.assert_array_equal(drawn.starts["path"].get_xydata(), PATH[:1])
    np.testing.assert_array_equal(drawn.ends["path"].get_xydata(), PATH[-1:])
    gx, gy = np.meshgrid(drawn.xs, drawn.ys)
    np.testing.assert_array_equal(drawn.values, plane(np.stack([gx, gy], axis=-1)))
    assert drawn.xs[0] < -1.0 and drawn.xs[-1] > 0.5 and drawn.ys[0] < 0.25 and drawn.ys[-1] > 2.0  # a margin
    assert (drawn.contours.zmin, drawn.contours.zmax) == (drawn.values.min(), drawn.values.max())
    np.testing.assert_allclose(drawn.contours.levels, np.linspace(drawn.values.min(), drawn.values.max(), 25))
    for level, segments in zip(drawn.isolines.levels, drawn.isolines.allsegs):  # each isoline lies where f = level
        for seg in segments:
            np.testing.assert_allclose(plane(seg), level, atol=1e-9)
    assert drawn.colorbar.ax.get_ylabel() == "plane(x)"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x[0]", "x[1]")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["path: 3 steps, final plane = 0", "start", "end (★ in the path's colour)"]


def test_descent_of_several_paths_on_log_levels():
    runs = {"sgd": PATH, "adam": np.array([[-1.5, 2.0], [1.0, 1.0]])}
    drawn = fnn.plot.descent(rosenbrock, runs)
    assert list(drawn.lines) == ["sgd", "adam"] and list(drawn.ends) == ["sgd", "adam"]
    np.testing.assert_array_equal(drawn.lines["adam"].get_ydata(), [2.0, 1.0])
    assert drawn.lines["sgd"].get_color() != drawn.lines["adam"].get_color()
    assert drawn.ends["adam"].get_markerfacecolor() == drawn.lines["adam"].get_color()
    assert drawn.xs[0] < -1.5 and drawn.xs[-1] > 1.0  # the range of all the paths
    levels = drawn.contours.levels  # Rosenbrock spans decades: log-spaced, as the colourbar is
    np.testing.assert_allclose(levels[1:] / levels[:-1], levels[1] / levels[0], rtol=1e-9)
    assert levels[-1] == drawn.values.max() and drawn.colorbar.ax.get_ylabel() == "rosenbrock(x) (log scale)"
    texts = [t.get_text() for t in drawn.contours.axes.get_legend().get_texts()]
    assert texts[:2] == [f"sgd: 3 steps, final rosenbrock = {rosenbrock(PATH[-1]):.3g}",
                         "adam: 1 steps, final rosenbrock = 0"]


def test_descent_of_one_variable_is_unchanged():
    fig, ax = plt.subplots()
    curve, steps, start, end = fnn.plot.descent(lambda x: x**2, [1.0, 0.5, 0.25], ax)
    np.testing.assert_array_equal(steps.get_ydata(), [1.0, 0.25, 0.0625])
    assert not ax.collections and len(fig.axes) == 1  # no contours, no colourbar
    assert (ax.get_xlabel(), ax.get_ylabel(), end.get_xdata()[0]) == ("x", "f(x)", 0.25)


@pytest.mark.parametrize(
    "f, path, match",
    [
        (plane, np.zeros((4, 3)), r"\(steps, 2\) points for f of two, got shape \(4, 3\).*path\[:, :2\]"),
        (plane, np.zeros((0, 2)), r"path must be .*got shape \(0, 2\)"),
        (plane, {"sgd": PATH, "bad": np.ones((3, 1))}, r"path 'bad' must be .*got shape \(3, 1\)"),
        (plane, np.array([[0.0, 1.0], [np.nan, 1.0]]), r"non-finite point at row 1 of 2.*path\[:1\]"),
        (plane, {}, "empty dict"),
        (lambda x: x**2, PATH, "f looks elementwise.*1-d sequence of x values"),
        (lambda p: p[..., :1], PATH, r"f must map points \(\.\.\., 2\) to values \(\.\.\.\)"),
    ],
)
def test_descent_bad_paths(f, path, match):
    with pytest.raises(FnnValueError, match=match):
        fnn.plot.descent(f, path)


def test_descent_bad_f_and_ax():
    with pytest.raises(FnnTypeError, match=r"f must be a function of points \(\.\.\., 2\)"):
        fnn.plot.descent(3, PATH)
    with pytest.raises(FnnTypeError, match="ax must be a matplotlib Axes"):
        fnn.plot.descent(plane, PATH, ax="left")


# --------------------------------------------------------------------------- per-step losses
def test_step_loss_is_each_batch_loss_before_its_step():
    model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
    params = model.init(jax.random.key(1), 2, dtype=jnp.float64)
    x, y = (np.asarray(a) for a in fnn.data.circles(jax.random.key(2), 24, noise=0.05))
    lr, batch, epochs = 0.5, 8, 3
    r = fnn.fit(model, params, x, y, loss="binary_cross_entropy", optimizer=optim.sgd(lr), epochs=epochs,
                batch_size=batch, shuffle=False, callbacks=[fnn.callbacks.StepLoss()])
    recorded = np.stack(r.history["step_loss"])
    assert recorded.shape == (epochs, 3)
    loss_and_grad = jax.jit(jax.value_and_grad(fnn.objective(model, "binary_cross_entropy")))
    p, expected = params, np.zeros((epochs, 3))
    for e in range(epochs):
        for b in range(3):
            rows = slice(b * batch, (b + 1) * batch)
            expected[e, b], g = loss_and_grad(p, x[rows], y[rows])
            p = jax.tree.map(lambda w, gw: w - lr * gw, p, g)
    np.testing.assert_allclose(recorded, expected, rtol=1e-10)
    np.testing.assert_allclose(recorded.mean(axis=1), r.history["loss"], rtol=1e-12)  # equal batches
    assert len(set(np.round(recorded.ravel(), 12))) == recorded.size  # every step moved the params
