"""Inside the network: backprop.trace against jax.grad, and the values plot.neurons, plot.network and
plot.chain_rule draw (image arrays, line widths and colours, the numbers written), and their bad inputs."""
import itertools

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

import fnn  # noqa: E402
from fnn import DenseParams, backprop, plot  # noqa: E402
from fnn.errors import FnnTypeError, FnnValueError  # noqa: E402

SEED = 1  # params in which no unit is dead on the plane of X
RES = 12  # grid resolution: one compiled shape for the neuron tests
LOSS = "binary_cross_entropy"
MODEL = fnn.Sequential(
    [fnn.Dense(3, activation="tanh"), fnn.Dense(2, activation="relu"), fnn.Dense(1, activation="sigmoid")]
)
FUNCTIONS = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "sigmoid": lambda z: 1 / (1 + np.exp(-z))}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def numpy_params(model, n_in, seed=0):
    """float64 params with non-zero biases, made with numpy (no jax.random)."""
    rng = np.random.default_rng(seed)
    params = []
    for layer in model.layers:
        w = rng.normal(size=(n_in, layer.units)) / np.sqrt(n_in)
        params.append(DenseParams(jnp.asarray(w), jnp.asarray(0.5 * rng.normal(size=layer.units))))
        n_in = layer.units
    return tuple(params)


PARAMS = numpy_params(MODEL, 2, seed=SEED)
X = np.random.default_rng(1).normal(size=(10, 2))
Y = (np.linalg.norm(X, axis=1) > 1.0).astype(np.float64)


def by_hand(params, points):
    """Each layer's a_out on points, in numpy: independent of fnn's forward pass."""
    outs, a = [], np.asarray(points, float)
    for name, p in zip(MODEL.activations, params):
        a = FUNCTIONS[name](a @ np.asarray(p.w) + np.asarray(p.b))
        outs.append(a)
    return outs


def panels(fig):
    return [ax for ax in fig.axes if ax.images]


# --------------------------------------------------------------------------- neurons
def test_each_panel_is_its_units_activation_on_the_grid_from_the_data():
    fig = plot.neurons(MODEL, PARAMS, X, Y, resolution=RES)
    lo, hi = X.min(axis=0), X.max(axis=0)
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], RES), np.linspace(lo[1], hi[1], RES))
    expected = by_hand(PARAMS, np.stack([gx.ravel(), gy.ravel()], axis=1))
    shown = panels(fig)
    assert len(shown) == 3 + 2 + 1
    i = 0
    for l, out in enumerate(expected):
        for u in range(out.shape[1]):
            ax = shown[i]
            assert ax.get_title() == f"layer {l + 1}, unit {u + 1}"
            np.testing.assert_allclose(ax.images[0].get_array(), out[:, u].reshape(RES, RES), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(ax.images[0].get_extent(), [lo[0], hi[0], lo[1], hi[1]])
            np.testing.assert_allclose(ax.collections[0].get_offsets(), X)  # the data on top
            np.testing.assert_array_equal(ax.collections[0].get_array(), Y)  # coloured by label
            i += 1
    # the last unit of a layer is its column's bottom panel: x1 there; the first column says x2
    assert shown[2].get_xlabel() == "x1" and shown[0].get_ylabel() == "x2" and shown[0].get_xlabel() == ""
    bars = [ax.get_xlabel() for ax in fig.axes if not ax.images]
    assert bars == ["tanh activation", "relu activation", "sigmoid activation"]


def test_without_data_the_plane_is_the_unit_square_and_matches_model_apply():
    fig = plot.neurons(MODEL, PARAMS, resolution=RES)
    ax = panels(fig)[-1]  # the output unit
    np.testing.assert_allclose(ax.images[0].get_extent(), [-1, 1, -1, 1])
    assert not ax.collections
    g = np.linspace(-1, 1, RES)
    gx, gy = np.meshgrid(g, g)
    out = MODEL.apply(PARAMS, np.stack([gx.ravel(), gy.ravel()], axis=1))
    np.testing.assert_allclose(ax.images[0].get_array(), np.asarray(out).reshape(RES, RES), rtol=1e-12)


def test_a_relu_unit_that_is_zero_everywhere_is_marked_dead():
    w, b = PARAMS[1]
    params = (PARAMS[0], DenseParams(w, b.at[0].set(-100.0)), PARAMS[2])  # layer 2, unit 1: z < 0 on the plane
    fig = plot.neurons(MODEL, params, X, resolution=RES)
    titles = {ax.get_title(): ax for ax in panels(fig)}
    dead = titles["layer 2, unit 1: dead"]
    assert to_rgba(dead.title.get_color()) == to_rgba("0.5")
    np.testing.assert_array_equal(dead.images[0].get_array(), 0.0)
    assert [t for t in titles if "dead" in t] == ["layer 2, unit 1: dead"]


def test_neurons_bad_inputs():
    three = fnn.Sequential([fnn.Dense(2, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
    with pytest.raises(FnnValueError, match="2 input features, but this model takes 3"):
        plot.neurons(three, numpy_params(three, 3))
    with pytest.raises(FnnValueError, match="x has 3 features"):
        plot.neurons(MODEL, PARAMS, np.ones((4, 3)), resolution=RES)
    with pytest.raises(FnnValueError, match="but x is None"):
        plot.neurons(MODEL, PARAMS, y=Y, resolution=RES)
    with pytest.raises(FnnValueError, match="different numbers of samples: 10 and 3"):
        plot.neurons(MODEL, PARAMS, X, Y[:3], resolution=RES)
    with pytest.raises(FnnValueError, match="resolution must be an integer >= 2"):
        plot.neurons(MODEL, PARAMS, resolution=1)


# --------------------------------------------------------------------------- trace
def tail_loss(l, params, y, start="a_in"):
    """The loss as a function of layer l's a_in (or z), by jax from there on: independent of backprop."""
    names = MODEL.activations

    def loss(v):
        a = v
        for i in range(l, len(params)):
            z = a if (i == l and start == "z") else a @ params[i].w + params[i].b[None, :]
            a = fnn.activations.get(names[i]).fn(z)
        return -jnp.mean(y * jnp.log(a) + (1 - y) * jnp.log1p(-a))

    return loss


@jax.jit
def references(params, x, y, trace):
    """By jax, in one compiled call: the gradients, and at the traced points each layer's ∂L/∂a_in,
    ∂L/∂z and f(z), and ∂L/∂x."""
    target = y.reshape(-1, 1)
    objective = fnn.objective(MODEL, LOSS)
    return dict(
        grads=jax.grad(objective)(params, x, y),
        grad_a_in=[jax.grad(tail_loss(l, params, target))(t.a_in) for l, t in enumerate(trace)],
        delta=[jax.grad(tail_loss(l, params, target, "z"))(t.z) for l, t in enumerate(trace)],
        a_out=[fnn.activations.get(name).fn(t.z) for name, t in zip(MODEL.activations, trace)],
        dx=jax.grad(lambda v: objective(params, v, y))(x),
        apply=fnn.layers.mlp_apply(MODEL.activations, params, x),
    )


@pytest.mark.parametrize("rows", [slice(0, 1), slice(0, 4)], ids=["one", "batch"])
def test_trace_is_jax_grad_in_float64(rows):
    x, y = X[rows], Y[rows]
    trace = backprop.trace(MODEL, LOSS, PARAMS, x, y)
    assert len(trace) == 3 and all(isinstance(t, backprop.LayerTrace) for t in trace)
    ref = jax.device_get(references(PARAMS, jnp.asarray(x), jnp.asarray(y), trace))
    trace = jax.device_get(trace)
    for l, (t, g, p) in enumerate(zip(trace, ref["grads"], PARAMS)):
        assert t.z.dtype == np.float64
        np.testing.assert_allclose(t.grad_w, g.w, rtol=0, atol=1e-10)
        np.testing.assert_allclose(t.grad_b, g.b, rtol=0, atol=1e-10)
        np.testing.assert_allclose(t.z, t.a_in @ np.asarray(p.w) + np.asarray(p.b), rtol=1e-12)
        np.testing.assert_allclose(t.a_out, ref["a_out"][l], rtol=1e-12)
        np.testing.assert_allclose(t.grad_a_in, ref["grad_a_in"][l], rtol=0, atol=1e-10)
        np.testing.assert_allclose(t.delta, ref["delta"][l], rtol=0, atol=1e-10)
    for before, after in itertools.pairwise(trace):
        np.testing.assert_array_equal(after.a_in, before.a_out)
    np.testing.assert_array_equal(trace[0].a_in, x)
    np.testing.assert_allclose(trace[0].grad_a_in, ref["dx"], rtol=0, atol=1e-10)  # ∂L/∂x
    np.testing.assert_allclose(trace[-1].a_out, ref["apply"], rtol=1e-12)


def test_trace_of_one_example_given_flat_is_the_batch_of_one():
    flat = backprop.trace(MODEL, LOSS, PARAMS, X[0], Y[0])
    row = backprop.trace(MODEL, LOSS, PARAMS, X[:1], Y[:1])
    for a, b in zip(flat, row):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_trace_with_mse_and_a_linear_output_is_jax_grad():
    model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(2)])
    params = numpy_params(model, 2, seed=3)
    y = np.random.default_rng(4).normal(size=(4, 2))
    trace = backprop.trace(model, "mse", params, X[:4], y)
    grads = jax.jit(jax.grad(fnn.objective(model, "mse")))(params, X[:4], y)
    for t, g in zip(trace, grads):
        np.testing.assert_allclose(t.grad_w, g.w, rtol=0, atol=1e-10)
        np.testing.assert_allclose(t.grad_b, g.b, rtol=0, atol=1e-10)


def test_trace_bad_inputs():
    with pytest.raises(FnnValueError, match="x has 3 features"):
        backprop.trace(MODEL, LOSS, PARAMS, np.ones(3), 1.0)
    with pytest.raises(FnnValueError, match="x must be 2-d"):
        backprop.trace(MODEL, LOSS, PARAMS, np.ones((1, 1, 2)), [1.0])
    with pytest.raises(FnnValueError, match="unknown loss 'hinge'"):
        backprop.trace(MODEL, "hinge", PARAMS, X[0], Y[0])
    with pytest.raises(FnnValueError, match="different numbers of samples"):
        backprop.trace(MODEL, LOSS, PARAMS, X[:3], Y[:2])


# --------------------------------------------------------------------------- network
def test_network_draws_each_weight_by_sign_and_size():
    ax = plot.network(MODEL, PARAMS)
    assert len(ax.collections) >= 3
    for l, p in enumerate(PARAMS):
        w = np.asarray(p.w)
        lines = ax.collections[l]
        assert len(lines.get_segments()) == w.size
        np.testing.assert_allclose(lines.get_linewidths(), 4.0 * np.abs(w.ravel()) / np.abs(w).max())
        expected = [to_rgba("tab:blue" if v >= 0 else "tab:red", 0.8) for v in w.ravel()]
        np.testing.assert_allclose(lines.get_colors(), expected)
        for k, segment in enumerate(lines.get_segments()):  # w[i, j]: unit i of layer l to unit j of layer l + 1
            i, j = divmod(k, w.shape[1])
            np.testing.assert_array_equal(segment, [[l, (w.shape[0] - 1) / 2 - i], [l + 1, (w.shape[1] - 1) / 2 - j]])
    texts = [t.get_text() for t in ax.texts]
    assert {"x1", "x2"} <= set(texts)
    assert "layer 1\n3 tanh\nmax |w| " + f"{np.abs(np.asarray(PARAMS[0].w)).max():.3g}" in texts
    assert any(t.startswith("layer 3\n1 sigmoid") for t in texts)


def test_network_bad_inputs():
    with pytest.raises(FnnTypeError, match="ax must be a matplotlib Axes"):
        plot.network(MODEL, PARAMS, ax="left")
    with pytest.raises(FnnValueError, match="params has 2 layer entries"):
        plot.network(MODEL, PARAMS[:2])


# --------------------------------------------------------------------------- chain_rule
def g3(v):
    return f"{float(v):.3g}"


def test_chain_rule_writes_the_traced_numbers():
    trace = backprop.trace(MODEL, LOSS, PARAMS, X[:3], Y[:3])
    ax = plot.chain_rule(trace)
    boxes = [t.get_text() for t in ax.texts if t.get_text()]
    assert len(boxes) == 2 * len(trace) + 1
    for l, t in enumerate(trace):
        forward, backward = boxes[2 * l], boxes[2 * l + 1]
        assert forward.startswith(f"layer {l + 1} forward") and backward.startswith(f"layer {l + 1} backward")
        for name, values in (("a_in", t.a_in[0]), ("z", t.z[0]), ("a_out", t.a_out[0])):
            line = next(s for s in forward.splitlines() if s.startswith(name + " "))
            assert line.endswith("[" + ", ".join(map(g3, values)) + "]"), line
        assert "[" + ", ".join(map(g3, t.delta[0])) + "]" in backward
        assert "∂L/∂b (stored) = [" + ", ".join(map(g3, t.grad_b)) + "]" in backward
        assert "(passed back) = δ·Wᵀ = [" + ", ".join(map(g3, t.grad_a_in[0])) + "]" in backward
        w = np.asarray(t.grad_w)
        assert f"∂L/∂W (stored): shape {w.shape}, ‖·‖ = {g3(np.linalg.norm(w))}" in backward
        assert ", ".join(map(g3, w.ravel()[:4])) in backward
    assert "example 1 of 3" in ax.get_title()


def test_chain_rule_summarises_long_vectors():
    model = fnn.Sequential([fnn.Dense(8, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
    trace = backprop.trace(model, LOSS, numpy_params(model, 2), X[0], Y[0])
    text = plot.chain_rule(trace).texts[0].get_text()
    assert "[" + ", ".join(map(g3, trace[0].z[0, :6])) + ", … (8)]" in text


def test_chain_rule_bad_inputs():
    with pytest.raises(FnnTypeError, match=r"tuple of LayerTrace that fnn\.backprop\.trace returns"):
        plot.chain_rule([np.ones(3)])
    with pytest.raises(FnnTypeError, match=r"fnn\.backprop\.trace\(model"):
        plot.chain_rule(())
