"""fnn.plot.lr_find and learning_rates' chance level: the values drawn, the labels, the bad inputs."""
import math

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import jax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fnn  # noqa: E402
from fnn import plot  # noqa: E402
from fnn.errors import FnnTypeError, FnnValueError  # noqa: E402
from fnn.lr_finder import LRFindResult  # noqa: E402

LN2 = math.log(2.0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def labels_of(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# --------------------------------------------------------------------------- lr_find
def _found():
    """A range test of 12 steps: the loss falls, then blows up; the suggestion is the 5th rate."""
    rates = 1e-4 * 3.0 ** np.arange(12)
    smoothed = np.array([0.70, 0.69, 0.66, 0.60, 0.52, 0.45, 0.40, 0.38, 0.42, 0.60, 1.1, 1.6])
    raw = smoothed * (1 + 0.1 * np.cos(np.arange(12)))
    raw[-1] = 40.0  # a raw loss far above the smoothed curve must not set the y range
    return LRFindResult(rates, smoothed, raw, float(rates[4]), True)


def test_lr_find_draws_the_results_values_and_marks_the_suggestion():
    found = _found()
    _, ax = plt.subplots()
    line, raw, marker = plot.lr_find(found, ax)
    np.testing.assert_array_equal(line.get_xdata(), found.rates)
    np.testing.assert_array_equal(line.get_ydata(), found.losses)
    np.testing.assert_array_equal(raw.get_xdata(), found.rates)
    np.testing.assert_array_equal(raw.get_ydata(), found.raw_losses)
    assert marker.get_xdata()[0] == found.suggestion and marker.get_ydata()[0] == found.losses[4]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel().startswith("learning rate") and ax.get_ylabel() == "training loss"
    assert "suggestion 0.0081" in labels_of(ax) and "smoothed loss" in labels_of(ax)
    assert [t.get_text() for t in ax.texts] == ["suggested rate 0.0081"]
    low, high = ax.get_ylim()
    assert low < 0.38 and 1.6 < high < 2.0  # the smoothed range with a margin, not the raw 40


def test_lr_find_bad_inputs():
    found = _found()
    with pytest.raises(FnnTypeError, match=r"needs the result of fnn.lr_find"):
        plot.lr_find({"rates": found.rates})
    with pytest.raises(FnnValueError, match=r"of one length .* shapes \(12,\), \(11,\)"):
        plot.lr_find(found._replace(losses=found.losses[:11]))
    with pytest.raises(FnnValueError, match="finite and positive"):
        plot.lr_find(found._replace(rates=-found.rates))
    with pytest.raises(FnnValueError, match=r"suggestion must be finite"):
        plot.lr_find(found._replace(suggestion=float("nan")))
    with pytest.raises(FnnTypeError, match="ax must be a matplotlib Axes"):
        plot.lr_find(found, ax="left")


# --------------------------------------------------------------------------- the chance level
@pytest.fixture(scope="module")
def stalled():
    """Full-batch SGD on a 2-4-4-1 ReLU net: at rate 7 the second layer dies in the first steps and
    the output bias settles at the class mean, ln 2, without a non-finite loss; at 0.3 it learns."""
    x, y = fnn.data.circles(jax.random.key(0), 64, noise=0.05)
    model = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(4, activation="relu"),
                            fnn.Dense(1, activation="sigmoid")])
    runs = fnn.sweep(model, x, y, loss="binary_cross_entropy", optimizer=fnn.optim.sgd, learning_rates=[0.3, 7.0],
                     seeds=[0, 1], epochs=30, batch_size=64)
    return model, x, runs


def test_a_rate_that_sits_at_chance_is_not_marked_diverged(stalled):
    _, x, runs = stalled
    assert runs.stop_reasons == (("epochs", "epochs"), ("epochs", "epochs"))
    np.testing.assert_allclose(runs.history["loss"][1, :, -1], LN2, atol=1e-4)  # at chance, finite
    for seed in range(2):  # the second layer is 0 on every point: the output is its bias alone
        (w1, b1), (w2, b2), _ = (tuple(np.asarray(a, float) for a in p) for p in runs.run(1, seed))
        assert not (np.maximum(np.maximum(np.asarray(x) @ w1 + b1, 0) @ w2 + b2, 0) > 0).any()
    line, _, diverged = plot.learning_rates(runs, chance=LN2)
    ax = line.axes
    assert len(diverged.get_xdata()) == 0 and len(ax.texts) == 0
    assert not any("diverged" in label for label in labels_of(ax))
    np.testing.assert_allclose(line.get_ydata(), np.median(runs.history["loss"][:, :, -1], axis=1))
    (chance,) = [ln for ln in ax.lines if ln.get_label().startswith("chance")]
    assert chance.get_label() == "chance level (0.693)" and chance.get_linestyle() == "--"
    np.testing.assert_array_equal(chance.get_ydata(), [LN2, LN2])
    assert "chance level (0.693)" in labels_of(ax)


def test_chance_is_optional_and_checked(stalled):
    _, _, runs = stalled
    line, _, _ = plot.learning_rates(runs)
    assert not any(ln.get_label().startswith("chance") for ln in line.axes.lines)
    with pytest.raises(FnnValueError, match="chance must be finite"):
        plot.learning_rates(runs, chance=float("inf"))
    with pytest.raises(FnnTypeError, match="chance must be a real number"):
        plot.learning_rates(runs, chance="ln 2")
    with pytest.raises(TypeError):
        plot.learning_rates(runs, None, "loss", LN2)  # keyword-only
