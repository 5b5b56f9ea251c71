"""fnn.plot.animate and the snapshots it draws: epoch 0 kept bitwise across compiled calls, each
frame's title (epoch, loss against a loss by hand), the colourbar, the loss curve, frame selection
by change, and bad inputs. One tiny network; its snapshots' program compiles once for the module."""
import re

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import PillowWriter  # noqa: E402
from PIL import Image  # noqa: E402

import fnn  # noqa: E402
from fnn import _movie, plot  # noqa: E402
from fnn.errors import FnnTypeError, FnnValueError  # noqa: E402

N = 24  # data points
RES = 16  # grid resolution: one compiled shape for every test here
EPOCHS = 70  # Snapshots(every=1) keeps 32 epochs per compiled call: this run spans three calls


@pytest.fixture(scope="module")
def model():
    return fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(1, activation="sigmoid")])


@pytest.fixture(scope="module")
def params(model):
    return model.init(jax.random.key(0), 2, dtype=jnp.float64)


@pytest.fixture(scope="module")
def data():
    x, y = fnn.data.circles(jax.random.key(1), N, noise=0.05)
    return np.asarray(x, np.float64), np.asarray(y)


def _fit(model, params, data, epochs):
    x, y = data
    return fnn.fit(model, params, x, y, loss="binary_cross_entropy", optimizer=fnn.optim.adam(0.05), epochs=epochs,
                   batch_size=8, key=0, verbose=0, callbacks=[fnn.callbacks.Snapshots(every=1)])


@pytest.fixture(scope="module")
def result(model, params, data):
    return _fit(model, params, data, EPOCHS)


@pytest.fixture(scope="module")
def movie(model, result, data):
    return _movie.movie(model, result, *data, resolution=RES)


def _at(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


def _bce_by_hand(model, params, x, y):
    p = np.asarray(fnn.predict(model, params, x), np.float64)[:, 0]
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


# --------------------------------------------------------------------------- snapshots
def test_snapshots_start_at_epoch_0_bitwise_across_compiled_calls(model, params, data, result):
    assert fnn.callbacks.Snapshots(every=1).max_epochs_per_call() == 32 < EPOCHS  # three calls: 32, 32, 6
    assert result.snapshot_epochs == tuple(range(EPOCHS + 1))
    for got, want in zip(jax.tree.leaves(_at(result.snapshots, 0)), jax.tree.leaves(params)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)  # the params passed to fit, bitwise
    # the first epoch of the second call: the params of a run of 33 epochs (same program, same key)
    short = _fit(model, params, data, 33)
    for got, want in zip(jax.tree.leaves(_at(result.snapshots, 33)), jax.tree.leaves(short.params)):
        np.testing.assert_array_equal(got, want)
    last = jax.tree.leaves(_at(result.snapshots, EPOCHS))
    for got, want in zip(last, jax.tree.leaves(result.params)):
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- what the movie draws
def test_each_snapshot_loss_is_its_loss_on_x_y(model, result, data, movie):
    x, y = data
    assert movie.loss_name == "binary_cross_entropy"
    np.testing.assert_array_equal(movie.epochs, np.arange(EPOCHS + 1))
    for i in (0, 1, 32, 33, EPOCHS):
        snapshot = _at(result.snapshots, i)
        np.testing.assert_allclose(movie.losses[i], _bce_by_hand(model, snapshot, x, y), rtol=1e-10)
        np.testing.assert_allclose(movie.losses[i], fnn.evaluate(model, snapshot, x, y)["loss"], rtol=1e-12)
        np.testing.assert_allclose(movie.outputs[i], fnn.predict(model, snapshot, movie.setup.grid), rtol=1e-12)
    assert movie.losses[-1] < movie.losses[0]  # it learned


def test_frame_titles_hold_the_epoch_and_the_loss(model, result, data, movie):
    x, y = data
    fig, draw = _movie.film(movie, x)
    for i in (0, 5, EPOCHS):
        title = draw(i).get_title()
        found = re.fullmatch(r"epoch (\d+): loss ([0-9.e+-]+)", title)
        assert found, title
        assert int(found.group(1)) == i
        by_hand = _bce_by_hand(model, _at(result.snapshots, i), x, y)
        np.testing.assert_allclose(float(found.group(2)), by_hand, rtol=5e-4)  # printed to 4 significant digits


def test_the_colourbar_says_what_the_colour_means(data, movie):
    fig, draw = _movie.film(movie, data[0])
    draw(0)
    draw(1)
    bars = [ax for ax in fig.axes if ax is not fig.axes[0]]
    assert len(bars) == 1  # one colourbar, not one per frame
    assert bars[0].get_ylabel() == "P(y = 1)"
    assert bars[0].get_ylim() == (0.0, 1.0)


def test_a_softmax_model_gets_a_class_colourbar():
    model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(3, activation="softmax")])
    starts = [model.init(jax.random.key(i), 2, dtype=jnp.float64) for i in range(2)]
    snapshots = jax.tree.map(lambda *a: jnp.stack(a), *starts)
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([0, 1, 2, 1])
    m = _movie.movie(model, _Result(snapshots, (0, 3)), x, y, resolution=RES)
    assert m.loss_name == "categorical_cross_entropy"
    for i, ((w0, b0), (w1, b1)) in enumerate(starts):
        z = np.tanh(x @ np.asarray(w0) + np.asarray(b0)) @ np.asarray(w1) + np.asarray(b1)
        log_probs = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        np.testing.assert_allclose(m.losses[i], -np.mean(log_probs[np.arange(4), y]), rtol=1e-10)
    fig, draw = _movie.film(m, x)
    draw(1)
    bar = fig.axes[1]
    assert bar.get_ylabel() == "predicted class"
    np.testing.assert_array_equal(bar.get_yticks(), [0, 1, 2])
    assert fig.axes[0].get_title().startswith("epoch 3: loss ")


def test_the_loss_curve_draws_every_snapshot_loss_and_marks_the_frame(data, movie):
    fig, draw = _movie.film(movie, data[0], loss_curve=True)
    draw(7)
    curve_ax = fig.axes[1]
    assert curve_ax.get_yscale() == "log" and curve_ax.get_xlabel() == "epoch"
    assert "binary cross entropy" in curve_ax.get_ylabel()
    line, marker = curve_ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), movie.epochs)
    np.testing.assert_array_equal(line.get_ydata(), movie.losses)
    np.testing.assert_array_equal(marker.get_xdata(), [7])
    np.testing.assert_array_equal(marker.get_ydata(), [movie.losses[7]])
    draw(EPOCHS)
    np.testing.assert_array_equal(marker.get_ydata(), [movie.losses[EPOCHS]])
    assert [ax.get_ylabel() for ax in fig.axes[2:]] == ["P(y = 1)"]


@pytest.mark.parametrize("low", [0.66, 0.02])
def test_the_loss_axis_labels_its_range_in_plain_text(low):
    """Within a decade a log axis has one tick or none: five labelled ones span it; over decades
    the powers of ten (and 2 and 5 times them) are labelled, as plain numbers."""
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    losses = np.geomspace(0.72, low, 30)
    ax.plot(np.arange(30), losses)
    _movie._log_axis(ax, losses)
    ax.figure.draw_without_rendering()
    labels = {t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)} - {""}
    if low > 0.072:
        np.testing.assert_allclose(ax.get_yticks(), np.geomspace(low, 0.72, 5))
        assert labels == {f"{v:.3g}" for v in np.geomspace(low, 0.72, 5)}
    else:
        assert {"0.05", "0.1", "0.2", "0.5"} <= labels
    assert not any("$" in text for text in labels)  # no mathtext


def test_animate_writes_the_frames_it_picks(model, result, data, tmp_path, monkeypatch):
    """Three snapshots, the start twice then the end: "changes" draws the first and the last."""
    three = _Result(jax.tree.map(lambda a: a[np.array([0, 0, EPOCHS])], result.snapshots), (0, 10, 20))
    titles = []
    real = PillowWriter.grab_frame
    monkeypatch.setattr(PillowWriter, "grab_frame",
                        lambda self, **k: titles.append(self.fig.axes[0].get_title()) or real(self, **k))
    path = plot.animate(model, three, *data, tmp_path / "m.gif", 5, RES, frames="changes", loss_curve=True)
    with Image.open(path) as gif:
        assert gif.n_frames == 2
    x, y = data
    losses = [_bce_by_hand(model, _at(result.snapshots, i), x, y) for i in (0, EPOCHS)]
    assert [t.split(":")[0] for t in titles] == ["epoch 0", "epoch 20"]
    for title, loss in zip(titles, losses):
        np.testing.assert_allclose(float(title.split("loss ")[1]), loss, rtol=5e-4)


# --------------------------------------------------------------------------- frame selection
def test_changed_frames_keeps_first_last_and_drops_unchanged():
    a = np.zeros(100, int)
    b = a.copy()
    b[:5] = 1  # 5% of the grid changed
    c = b.copy()
    c[5] = 1  # 1% more: not more than 1%
    d = c.copy()
    d[6:8] = 1  # 3% since b
    frames = np.stack([a, a, b, c, d, d, d])
    np.testing.assert_array_equal(_movie.changed_frames(frames), [0, 2, 4, 6])
    np.testing.assert_array_equal(_movie.changed_frames(frames, fraction=0.04), [0, 2, 6])
    np.testing.assert_array_equal(_movie.changed_frames(frames, fraction=0.0), [0, 2, 3, 4, 6])
    np.testing.assert_array_equal(_movie.changed_frames(np.stack([a] * 5)), [0, 4])  # nothing moved: start, end
    np.testing.assert_array_equal(_movie.changed_frames(a[None]), [0])
    with pytest.raises(FnnValueError, match=r"classes must be \(snapshots, grid points\)"):
        _movie.changed_frames(a)
    with pytest.raises(FnnValueError, match="fraction must be in"):
        _movie.changed_frames(frames, fraction=1.0)


# --------------------------------------------------------------------------- bad inputs
class _Result:
    def __init__(self, snapshots, snapshot_epochs):
        self.snapshots, self.snapshot_epochs = snapshots, snapshot_epochs


def test_animate_bad_new_options(model, result, data, tmp_path):
    for frames in ("some", 3, None):
        with pytest.raises(FnnValueError, match="frames must be 'all'.*or 'changes'"):
            plot.animate(model, result, *data, tmp_path / "a.gif", frames=frames)
    with pytest.raises(FnnTypeError, match="loss_curve must be True or False"):
        plot.animate(model, result, *data, tmp_path / "a.gif", loss_curve="yes")
    with pytest.raises(TypeError):
        plot.animate(model, result, *data, tmp_path / "a.gif", 10, RES, "changes")  # keyword-only
    with pytest.raises(FnnValueError, match=r"Snapshots\(every=k\)"):
        plot.animate(model, _Result(None, None), *data, tmp_path / "a.gif")
    assert not list(tmp_path.iterdir())
