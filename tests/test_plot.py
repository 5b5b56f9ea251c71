"""fnn.plot: what each picture draws (lines, points, bars, frames, labels), and its bad inputs."""
import subprocess
import sys
from typing import Any, NamedTuple

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from PIL import Image  # noqa: E402

import fnn  # noqa: E402
from fnn import plot  # noqa: E402
from fnn.errors import FnnTypeError, FnnValueError  # noqa: E402

N = 20  # data points
RES = 30  # grid resolution: one compiled predict shape for every boundary test
LOSS = "binary_cross_entropy"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def model():
    return fnn.Sequential([fnn.Dense(3, activation="relu"), fnn.Dense(1, activation="sigmoid")])


@pytest.fixture(scope="module")
def params(model):
    return model.init(jax.random.key(0), 2)


@pytest.fixture(scope="module")
def data():
    x = np.asarray(jax.random.normal(jax.random.key(1), (N, 2)))
    y = (np.linalg.norm(x, axis=1) > 1.0).astype(np.int32)
    return x, y


def labels_of(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# --------------------------------------------------------------------------- matplotlib on first use
@pytest.mark.slow  # a fresh process: `make test-slow` (CI runs it after make test)
def test_import_fnn_does_not_import_matplotlib():
    code = "import sys, fnn; fnn.plot.history; assert 'matplotlib' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_matplotlib_names_the_extra(monkeypatch, data):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib...` now fails as if not installed
    with pytest.raises(ImportError, match=r"fnn\.plot needs matplotlib: pip install 'fnn\[experiments\]'"):
        plot.history({"loss": [1.0, 0.5]})
    with pytest.raises(ImportError, match=r"fnn\[experiments\]"):
        plot.descent(lambda x: x ** 2, [1.0, 0.5])


# --------------------------------------------------------------------------- history
class _Fit(NamedTuple):
    history: dict


def test_history_draws_loss_and_metric_train_and_validation():
    h = {"loss": [0.7, 0.5, 0.3, 0.2, 0.1], "accuracy": [0.5, 0.6, 0.8, 0.9, 1.0],
         "val_loss": [0.8, 0.6, 0.4, 0.3, 0.3], "val_accuracy": [0.5, 0.5, 0.7, 0.8, 0.9]}
    fig, ax = plt.subplots()
    loss_ax, metric_ax = plot.history(_Fit(h), ax, val_label="test")
    assert loss_ax is ax and metric_ax is not None and metric_ax in fig.axes
    assert [line.get_label() for line in ax.lines] == ["loss (train)", "loss (test)"]
    assert [line.get_label() for line in metric_ax.lines] == ["accuracy (train)", "accuracy (test)"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), h["val_loss"])
    np.testing.assert_array_equal(metric_ax.lines[0].get_ydata(), h["accuracy"])
    assert ax.lines[1].get_linestyle() == "--"
    assert (ax.get_xlabel(), ax.get_ylabel(), metric_ax.get_ylabel()) == ("epoch", "loss", "accuracy")
    assert labels_of(metric_ax) == ["loss (train)", "loss (test)", "accuracy (train)", "accuracy (test)"]


def test_history_of_a_plain_dict_without_validation():
    loss_ax, metric_ax = plot.history({"loss": [1.0, 0.5, 0.25], "mse": [1.0, 0.5, 0.25]})
    assert len(loss_ax.lines) == 1 and len(metric_ax.lines) == 1
    assert metric_ax.get_ylabel() == "mse"
    loss_ax, metric_ax = plot.history({"loss": [1.0, 0.5]})
    assert metric_ax is None and len(loss_ax.lines) == 1 and loss_ax.get_legend() is not None


def test_history_bad_inputs():
    with pytest.raises(FnnValueError, match="no 'loss'"):
        plot.history({"accuracy": [0.5]})
    with pytest.raises(FnnValueError, match="no 'loss'"):
        plot.history({"loss": []})
    with pytest.raises(FnnTypeError, match="FitResult or its history dict"):
        plot.history([0.5, 0.4])
    with pytest.raises(FnnValueError, match=r"history\['loss'\] has shape \(2, 1, 3\).*fnn.plot.learning_rates"):
        plot.history(_sweep_result()._replace(history={"loss": np.ones((2, 1, 3))}))
    with pytest.raises(FnnTypeError, match="matplotlib Axes"):
        plot.history({"loss": [1.0]}, ax="left")


# --------------------------------------------------------------------------- decision boundary
def test_decision_boundary_binary(model, params, data):
    x, y = data
    fig, ax = plt.subplots()
    contours, points = plot.decision_boundary(model, params, x, y, ax, resolution=RES)
    assert isinstance(contours, ContourSet) and contours.filled and contours in ax.collections
    np.testing.assert_allclose(contours.levels, np.linspace(0, 1, 11))
    lines = [c for c in ax.collections if isinstance(c, ContourSet) and not c.filled]
    assert len(lines) == 1 and list(lines[0].levels) == [0.5]  # the boundary itself
    np.testing.assert_allclose(points.get_offsets(), x)  # every point, where it is
    np.testing.assert_array_equal(points.get_array(), y)  # coloured by its label
    x0, x1 = ax.get_xlim()
    assert x0 < x[:, 0].min() and x1 > x[:, 0].max()  # the grid surrounds the data
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x[:, 0]", "x[:, 1]")


def test_decision_boundary_softmax_classes_and_one_hot_labels(data):
    x, y = data
    model3 = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(3, activation="softmax")])
    params3 = model3.init(jax.random.key(2), 2)
    labels = np.arange(N) % 3
    contours, points = plot.decision_boundary(model3, params3, x, np.eye(3)[labels], resolution=RES)
    np.testing.assert_array_equal(contours.levels, [-0.5, 0.5, 1.5, 2.5])  # one band per class
    np.testing.assert_array_equal(points.get_array(), labels)
    assert points.get_offsets().shape == (N, 2)
    assert len(points.axes.collections) == 2  # no 0.5 line for classes


def test_decision_boundary_bad_inputs(model, params, data):
    x, y = data
    model3 = fnn.Sequential([fnn.Dense(1, activation="sigmoid")])
    with pytest.raises(FnnValueError, match="exactly 2 input features.*takes 3"):
        plot.decision_boundary(model3, model3.init(jax.random.key(0), 3), np.ones((4, 3)), np.ones(4))
    regression = fnn.Sequential([fnn.Dense(1)])
    with pytest.raises(FnnValueError, match="needs a classifier.*'linear'"):
        plot.decision_boundary(regression, regression.init(jax.random.key(0), 2), x, y)
    with pytest.raises(FnnValueError, match="different numbers of samples"):
        plot.decision_boundary(model, params, x, y[:-1])
    with pytest.raises(FnnValueError, match="resolution must be an integer >= 2"):
        plot.decision_boundary(model, params, x, y, resolution=1)
    with pytest.raises(FnnValueError, match="x has 3 features"):
        plot.decision_boundary(model, params, np.ones((4, 3)), np.ones(4))


# --------------------------------------------------------------------------- animate
class _Snapshots(NamedTuple):
    snapshots: Any
    snapshot_epochs: Any


def _snapshots(model, epochs):
    starts = [model.init(jax.random.key(i), 2) for i in range(len(epochs))]
    return _Snapshots(jax.tree.map(lambda *leaves: jnp.stack(leaves), *starts), tuple(epochs))


def test_animate_writes_one_frame_per_snapshot(model, data, tmp_path):
    x, y = data
    written = plot.animate(model, _snapshots(model, [4, 8, 12]), x, y, tmp_path / "b.gif", fps=5, resolution=RES)
    assert written == tmp_path / "b.gif"
    with Image.open(written) as gif:
        assert gif.format == "GIF" and gif.n_frames == 3
        assert gif.info["duration"] == 200  # 1000 ms / fps
        frames = []
        for i in range(3):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    assert not np.array_equal(frames[0], frames[1])  # each frame is its own snapshot
    assert plt.get_fignums() == []  # nothing left open


def test_animate_a_fit_with_snapshots_draws_epoch_0_first(model, params, data, tmp_path, monkeypatch):
    """fit(callbacks=[Snapshots(every=2)]) for 4 epochs keeps epochs 0, 2 and 4: three frames, the
    first the boundary of the params the run started from."""
    x, y = data
    result = fnn.fit(model, params, x, y, loss=LOSS, optimizer=fnn.optim.adam(0.1), epochs=4, batch_size=10, key=0,
                     verbose=0, callbacks=[fnn.callbacks.Snapshots(every=2)])
    assert result.snapshot_epochs == (0, 2, 4)
    np.testing.assert_array_equal(result.snapshots[0].w[0], params[0].w)
    np.testing.assert_array_equal(result.snapshots[1].b[-1], result.params[1].b)
    titles = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda ax, text, *a, **k: titles.append(text) or
                        real(ax, text, *a, **k))
    written = plot.animate(model, result, x, y, tmp_path / "fit.gif", resolution=RES)
    with Image.open(written) as gif:
        assert gif.n_frames == 3
    assert [t.split(":")[0] for t in titles] == ["epoch 0", "epoch 2", "epoch 4"]


def test_animate_bad_inputs(model, params, data, tmp_path):
    x, y = data
    with pytest.raises(FnnValueError, match=r"Snapshots\(every=k\)"):
        plot.animate(model, _Fit({"loss": [1.0]}), x, y, tmp_path / "a.gif")
    with pytest.raises(FnnValueError, match=r"Snapshots\(every=k\)"):
        plot.animate(model, _Snapshots(None, None), x, y, tmp_path / "a.gif")
    with pytest.raises(FnnValueError, match="one entry per snapshot epoch: 2 snapshot_epochs"):
        plot.animate(model, _Snapshots(_snapshots(model, [1, 2, 3]).snapshots, (1, 2)), x, y, tmp_path / "a.gif")
    good = _snapshots(model, [1, 2])
    with pytest.raises(FnnValueError, match=r"must end in \.gif"):
        plot.animate(model, good, x, y, tmp_path / "a.png")
    with pytest.raises(FnnValueError, match="does not exist"):
        plot.animate(model, good, x, y, tmp_path / "missing" / "a.gif")
    with pytest.raises(FnnValueError, match="x has 3 features"):
        plot.animate(model, good, np.ones((4, 3)), np.ones(4), tmp_path / "a.gif")
    with pytest.raises(FnnValueError, match="fps must be in"):
        plot.animate(model, good, x, y, tmp_path / "a.gif", fps=0)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- layers
def test_layers_bars_per_layer_match_backprop(model, params, data):
    x, y = data
    dead_start = (params[0]._replace(b=jnp.full(3, -100.0, params[0].b.dtype)), params[1])  # every ReLU off
    fig, ax = plt.subplots()
    delta_bars, norm_bars, dead_bars = plot.layers(model, dead_start, x, y, LOSS, ax)
    stats = plot.layer_stats(model, dead_start, x, y, LOSS)
    assert stats.units == (3, 1) and stats.dead == (3, 0)
    assert stats.mean_abs_delta[0] == 0.0 and stats.mean_abs_delta[1] > 0  # no signal below a dead layer
    norms = jax.jit(fnn.backprop.gradient_norms, static_argnums=(0, 1))(model, LOSS, dead_start, x, y)  # one compile
    np.testing.assert_allclose(stats.grad_norm, np.asarray(norms), rtol=1e-6)
    assert len(delta_bars.patches) == len(norm_bars.patches) == len(dead_bars.patches) == 2  # one per layer
    np.testing.assert_allclose([b.get_height() for b in delta_bars], [1e-12, stats.mean_abs_delta[1]])
    np.testing.assert_allclose([b.get_height() for b in norm_bars], np.maximum(stats.grad_norm, 1e-12))
    np.testing.assert_allclose([b.get_height() for b in dead_bars], [1.0, 0.0])
    assert "0" in [t.get_text() for t in ax.texts]  # the exact zero is marked
    dead_ax = dead_bars.patches[0].axes
    assert ax.get_yscale() == "log" and dead_ax is not ax and dead_ax.get_yscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1: 3 relu", "2: 1 sigmoid"]
    assert (ax.get_xlabel(), dead_ax.get_ylabel()) == ("layer", "fraction of units dead")
    assert len(labels_of(dead_ax)) == 3


def test_grouped_bars_several_networks(model, params, data):
    groups = {"a": [0.1, 0.0], "b": [0.2, 0.3], "c": [1.0, 2.0]}
    bars = plot.grouped_bars(groups, ["layer 1", "layer 2"], ylabel="‖grad‖")
    assert [len(b.patches) for b in bars] == [2, 2, 2]
    ax = bars[0].patches[0].axes
    assert labels_of(ax) == ["a", "b", "c"] and ax.get_ylabel() == "‖grad‖"
    with pytest.raises(FnnValueError, match=r"groups\['a'\] has shape \(3,\)"):
        plot.grouped_bars({"a": [1, 2, 3]}, ["1", "2"], ylabel="y")
    with pytest.raises(FnnValueError, match="groups is empty"):
        plot.grouped_bars({}, ["1"], ylabel="y")
    with pytest.raises(FnnTypeError, match="groups must be a dict"):
        plot.grouped_bars([[1.0]], ["1"], ylabel="y")


def test_layers_bad_inputs(model, params, data):
    x, y = data
    with pytest.raises(FnnValueError, match="categorical_cross_entropy"):
        plot.layers(model, params, x, y, "categorical_cross_entropy")
    with pytest.raises(FnnValueError, match="x has 3 features"):
        plot.layers(model, params, np.ones((4, 3)), np.ones(4), LOSS)
    with pytest.raises(FnnValueError, match="params has 1 layer entries"):
        plot.layers(model, params[:1], x, y, LOSS)


# --------------------------------------------------------------------------- learning rates
def _sweep_result():
    """4 rates × 3 seeds × 5 epochs: rate 1.0 loses one seed to divergence, rate 10.0 all three."""
    rates, seeds = (0.01, 0.1, 1.0, 10.0), (0, 1, 2)
    loss = np.tile(np.linspace(1.0, 0.5, 5), (4, 3, 1)) * np.array([1.0, 0.2, 0.4, 1.0])[:, None, None]
    loss = loss * np.array([1.0, 1.1, 0.9])[None, :, None]
    loss[1, 2, 3:] = np.nan  # stopped early (target reached): its last finite value counts
    loss[2, 0, 2], loss[2, 0, 3:] = np.inf, np.nan
    loss[3, :, 1], loss[3, :, 2:] = np.nan, np.nan
    reasons = (("epochs",) * 3, ("epochs", "epochs", "target_loss"), ("non_finite_loss", "epochs", "epochs"),
               ("non_finite_loss",) * 3)
    epochs_run = np.array([[5, 5, 5], [5, 5, 3], [3, 5, 5], [2, 2, 2]])
    return fnn.SweepResult(rates, seeds, None, {"loss": loss}, reasons, epochs_run, np.full((4, 3), np.nan))


def test_learning_rates_median_band_and_diverged_marks():
    runs = _sweep_result()
    fig, ax = plt.subplots()
    line, band, diverged = plot.learning_rates(runs, ax)
    assert ax.get_xscale() == "log"
    np.testing.assert_array_equal(line.get_xdata(), runs.learning_rates)
    final = np.array([[0.5, 0.55, 0.45], [0.1, 0.11, 0.2 * 0.9 * np.linspace(1, 0.5, 5)[2]], [np.nan, 0.22, 0.18]])
    np.testing.assert_allclose(line.get_ydata()[:3], np.median(final[:2], axis=1).tolist() + [0.2])
    assert np.isnan(line.get_ydata()[3])  # every run diverged: a gap, not a point
    assert band in ax.collections
    ys = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
    assert np.isfinite(ys).all() and ys.min() == pytest.approx(0.1) and ys.max() == pytest.approx(0.55)
    np.testing.assert_array_equal(diverged.get_xdata(), [1.0, 10.0])  # one x per rate that lost a run
    assert [t.get_text() for t in ax.texts] == ["1/3", "3/3"]
    assert ax.get_xlabel() == "learning rate" and "loss" in ax.get_ylabel()
    assert "median" in labels_of(ax)


def test_learning_rates_nothing_diverged_and_bad_inputs():
    runs = _sweep_result()
    calm = runs._replace(history={"loss": runs.history["loss"][:2]}, learning_rates=runs.learning_rates[:2],
                         stop_reasons=runs.stop_reasons[:2])
    line, band, diverged = plot.learning_rates(calm)
    assert len(diverged.get_xdata()) == 0 and np.isfinite(line.get_ydata()).all()
    assert not any("diverged" in t for t in labels_of(line.axes))
    with pytest.raises(FnnValueError, match=r"metric 'val_loss' is not in the sweep's history; choose one of"):
        plot.learning_rates(runs, metric="val_loss")
    with pytest.raises(FnnTypeError, match="fnn.SweepResult"):
        plot.learning_rates({"loss": runs.history["loss"]})
    with pytest.raises(FnnValueError, match=r"\(n_rates, n_seeds, epochs\)"):
        plot.learning_rates(runs._replace(history={"loss": runs.history["loss"][0]}))


# --------------------------------------------------------------------------- descent
def P(x):
    return -2.0 * x ** 2 + 12.0 * x - 10.0


def test_descent_curve_path_and_ends():
    path = [12.0]
    for _ in range(6):
        path.append(path[-1] + 0.1 * (-4.0 * path[-1] + 12.0))  # gradient ascent on P
    fig, ax = plt.subplots()
    curve, steps, start, end = plot.descent(P, path, ax)
    assert len(ax.lines) == 4
    np.testing.assert_allclose(steps.get_xdata(), path)
    np.testing.assert_allclose(steps.get_ydata(), P(np.asarray(path)))
    xs = curve.get_xdata()
    assert xs.min() < min(path) and xs.max() > max(path)  # the curve covers the path with a margin
    np.testing.assert_allclose(curve.get_ydata(), P(xs))
    assert (list(start.get_xdata()), list(end.get_xdata())) == ([12.0], [path[-1]])
    assert start.get_marker() != end.get_marker()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "P(x)")  # named after the function
    assert len(labels_of(ax)) == 4


def test_descent_one_point_and_jnp_function():
    curve, steps, start, end = plot.descent(lambda x: jnp.sin(x), [2.0])
    assert len(steps.get_xdata()) == 1 and curve.get_xdata().min() < 2.0 < curve.get_xdata().max()
    assert curve.axes.get_ylabel() == "f(x)"


def test_descent_bad_inputs():
    with pytest.raises(FnnTypeError, match="f must be a function"):
        plot.descent(3.0, [1.0])
    with pytest.raises(FnnValueError, match="1-d sequence"):
        plot.descent(P, [[1.0, 2.0]])
    with pytest.raises(FnnValueError, match="path contains 1 non-finite"):
        plot.descent(P, [1.0, np.nan])
    with pytest.raises(FnnValueError, match="f must be elementwise"):
        plot.descent(lambda x: 1.0, [1.0, 2.0])
