"""fnn.surface: the landscape's values, directions, path and compiling; sharpness against jax.hessian and
a quadratic; the Sharpness rule against fnn.sharpness on the snapshot params; the pictures; bad inputs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import fnn
from fnn.errors import FnnTypeError, FnnValueError
from fnn.layers import DenseParams
from tests._compiles import counting

LOSS = "binary_cross_entropy"
MODEL = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
PARAMS = MODEL.init(jax.random.key(0), 2, dtype=jnp.float64)
X, Y = (np.asarray(a) for a in fnn.data.circles(jax.random.key(0), 32, noise=0.1))
RES = 5


def moved(params, d1, d2, a, b):
    return jax.tree.map(lambda p, u, v: p + a * u + b * v, params, d1, d2)


@pytest.fixture(scope="module")
def surface():
    return fnn.landscape(MODEL, LOSS, PARAMS, X, Y, span=0.8, resolution=RES, key=3)


# --------------------------------------------------------------------------- landscape
def test_centre_is_the_loss_at_params(surface):
    mid = RES // 2
    assert surface.alphas[mid] == 0.0 and surface.betas[mid] == 0.0
    np.testing.assert_allclose(surface.alphas, np.linspace(-0.8, 0.8, RES), rtol=1e-15)
    assert surface.losses.shape == (RES, RES) and surface.path is None
    reported = fnn.evaluate(MODEL, PARAMS, X, Y, loss=LOSS)["loss"]
    assert surface.losses[mid, mid] == pytest.approx(reported, rel=1e-12)
    assert surface.losses[mid, mid] == pytest.approx(float(fnn.objective(MODEL, LOSS)(PARAMS, X, Y)), rel=1e-12)


def test_every_grid_point_is_the_loss_at_its_params(surface):
    objective, (d1, d2) = fnn.objective(MODEL, LOSS), surface.directions
    for i, j in [(0, 0), (1, 3), (4, 2), (3, 4)]:
        a, b = surface.alphas[i], surface.betas[j]
        assert surface.losses[i, j] == pytest.approx(float(objective(moved(PARAMS, d1, d2, a, b), X, Y)), rel=1e-12)
    assert len({round(float(v), 9) for v in surface.losses.ravel()}) == RES * RES  # a real slice, not a constant


def test_each_units_direction_has_its_params_norm_and_biases_are_not_moved(surface):
    d1, d2 = surface.directions
    assert jax.tree.structure(d1) == jax.tree.structure(PARAMS) == jax.tree.structure(d2)
    for d in (d1, d2):
        for layer, p in zip(d, PARAMS):
            np.testing.assert_allclose(np.linalg.norm(layer.w, axis=0), np.linalg.norm(p.w, axis=0), rtol=1e-12)
            assert np.all(np.asarray(layer.b) == 0.0)
    assert not np.allclose(d1[0].w, d2[0].w)  # two directions, not one


def test_path_coordinates_in_the_plane(surface):
    d1, d2 = surface.directions
    off = moved(PARAMS, d1, d2, 0.3, -0.2)
    listed = fnn.landscape(MODEL, LOSS, PARAMS, X, Y, span=0.8, resolution=RES, key=3, path=[PARAMS, off])
    np.testing.assert_allclose(listed.path, [[0.0, 0.0], [0.3, -0.2]], atol=1e-12)
    np.testing.assert_allclose(listed.losses, surface.losses, rtol=1e-15)  # the same key: the same plane
    stacked = jax.tree.map(lambda *a: jnp.stack(a), PARAMS, off)  # the form result.snapshots has
    again = fnn.landscape(MODEL, LOSS, PARAMS, X, Y, span=0.8, resolution=RES, key=3, path=stacked)
    np.testing.assert_allclose(again.path, listed.path, atol=1e-12)


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_path_from_a_fit_result_with_snapshots():
    result = fnn.fit(MODEL, PARAMS, X, Y, epochs=4, batch_size=16, optimizer=fnn.optim.sgd(0.5), verbose=0,
                     callbacks=[fnn.callbacks.Snapshots(every=2)])
    s = fnn.landscape(MODEL, LOSS, result.params, X, Y, resolution=3, path=result)
    assert s.path.shape == (len(result.snapshot_epochs), 2) == (3, 2)
    np.testing.assert_allclose(s.path[-1], [0.0, 0.0], atol=1e-12)  # the last snapshot is the end params


def test_a_new_span_key_or_params_compiles_nothing(surface):
    other = MODEL.init(jax.random.key(5), 2, dtype=jnp.float64)
    fnn.landscape(MODEL, LOSS, PARAMS, X, Y, span=0.8, resolution=RES, key=3)  # warm
    with counting() as counts:
        a = fnn.landscape(MODEL, LOSS, PARAMS, X, Y, span=0.1, resolution=RES, key=3)
        b = fnn.landscape(MODEL, LOSS, other, X, Y, span=2.5, resolution=RES, key=jax.random.key(9))
    assert counts["compile"] == 0, counts
    np.testing.assert_allclose(a.alphas, surface.alphas / 8, rtol=1e-14)
    assert not np.allclose(b.directions[0][0].w, surface.directions[0][0].w)


def test_landscape_refuses_bad_inputs():
    call = lambda **kw: fnn.landscape(MODEL, kw.pop("loss", LOSS), PARAMS, X, Y, **kw)  # noqa: E731
    with pytest.raises(FnnValueError, match="unknown loss 'hinge'"):
        call(loss="hinge")
    with pytest.raises(FnnValueError, match="resolution must be an integer >= 3"):
        call(resolution=2)
    for span in (0.0, -1.0):
        with pytest.raises(FnnValueError, match=r"span must be in \(0"):
            call(span=span)
    wider = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(1, activation="sigmoid")]).init(0, 2)
    with pytest.raises(FnnValueError, match=r"path\[1\] does not fit the params: params\[0\].w .* has shape \(2, 4\)"):
        call(path=[PARAMS, wider])
    with pytest.raises(FnnValueError, match="stacked params"):
        call(path=jax.tree.map(lambda *a: jnp.stack(a), wider, wider))
    with pytest.raises(FnnTypeError, match="path must be a non-empty sequence of params trees"):
        call(path=3.0)
    with pytest.raises(FnnValueError, match="path has no snapshots"):
        call(path=fnn.fit(MODEL, PARAMS, X, Y, epochs=1, verbose=0))


# --------------------------------------------------------------------------- sharpness
def test_sharpness_is_the_top_eigenvalue_of_the_hessian():
    model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1)])
    params = model.init(jax.random.key(0), 2, dtype=jnp.float64)
    objective = fnn.objective(model, "mse")
    flat, unravel = ravel_pytree(params)
    hessian = jax.jit(jax.hessian(lambda t: objective(unravel(t), X, Y)))(flat)  # (13, 13)
    eigenvalues = np.linalg.eigvalsh(np.asarray(hessian))
    assert eigenvalues[-1] > 2 * eigenvalues[-2] and eigenvalues[-1] > 2 * abs(eigenvalues[0])  # well separated
    assert float(fnn.sharpness(objective, params, X, Y)) == pytest.approx(eigenvalues[-1], rel=1e-4)


def test_sharpness_of_quadratics():
    assert float(fnn.sharpness(lambda w: 2 * w**2 - 3 * w + 1, jnp.asarray(0.7))) == pytest.approx(4.0, rel=1e-12)
    curvature = jnp.asarray([4.0, 1.0, -0.5])  # P(w) = ½ Σ c_i w_i²: a pytree of two leaves
    tree = {"a": jnp.ones(2), "b": jnp.ones(1)}
    quadratic = lambda p: 0.5 * jnp.sum(curvature * jnp.concatenate([p["a"], p["b"]]) ** 2)  # noqa: E731
    assert float(fnn.sharpness(quadratic, tree, iterations=60, key=1)) == pytest.approx(4.0, rel=1e-10)


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_sharpness_rule_equals_fnn_sharpness_at_the_snapshots():
    result = fnn.fit(MODEL, PARAMS, X, Y, epochs=4, batch_size=16, optimizer=fnn.optim.sgd(0.5), verbose=0,
                     callbacks=[fnn.callbacks.Snapshots(every=2), fnn.callbacks.Sharpness(every=2)])
    recorded = np.asarray(result.history["sharpness"])
    assert np.isnan(recorded[[0, 2]]).all() and np.isfinite(recorded[[1, 3]]).all()
    objective = fnn.objective(MODEL, LOSS)
    assert result.snapshot_epochs == (0, 2, 4)
    for i, epoch in enumerate(result.snapshot_epochs[1:], start=1):
        at = jax.tree.map(lambda s, i=i: s[i], result.snapshots)
        assert recorded[epoch - 1] == pytest.approx(float(fnn.sharpness(objective, at, X, Y)), rel=1e-9)


def test_sharpness_refuses_bad_inputs():
    with pytest.raises(FnnValueError, match="Sharpness every must be an integer >= 1, got 0"):
        fnn.callbacks.Sharpness(every=0)
    with pytest.raises(FnnValueError, match="Sharpness every must be an integer >= 1, got -2"):
        fnn.callbacks.Sharpness(every=-2)
    with pytest.raises(FnnTypeError, match="objective must be a function"):
        fnn.sharpness("mse", PARAMS)
    with pytest.raises(FnnValueError, match="iterations must be an integer >= 1"):
        fnn.sharpness(lambda w: w**2, jnp.asarray(1.0), iterations=0)
    with pytest.raises(FnnValueError, match="params must be a pytree of floating-point arrays"):
        fnn.sharpness(lambda w: 0.0, ())


# --------------------------------------------------------------------------- pictures
def test_pictures(surface):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        d1, d2 = surface.directions
        path = [moved(PARAMS, d1, d2, 0.5, 0.5), moved(PARAMS, d1, d2, 0.2, 0.1), PARAMS]
        s = fnn.landscape(MODEL, LOSS, PARAMS, X, Y, span=0.8, resolution=RES, key=3, path=path)
        filled, colorbar, line = fnn.plot.landscape(s)
        ax = line.axes
        assert colorbar.ax.get_ylabel() == "loss"
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("α (direction 1)", "β (direction 2)")
        np.testing.assert_allclose(np.asarray(line.get_xydata()), s.path, atol=1e-12)
        assert {"start", "end", "params (centre)"} <= {t.get_text() for t in ax.get_legend().get_texts()}
        curve, edge = fnn.plot.sharpness({"loss": [1.0] * 4, "sharpness": [np.nan, 3.0, np.nan, 5.0]}, 0.5)
        assert list(curve.get_xdata()) == [2, 4] and list(curve.get_ydata()) == [3.0, 5.0]
        assert edge.get_label() == "2/η (edge of stability)" and list(edge.get_ydata()) == [4.0, 4.0]
        with pytest.raises(FnnValueError, match=r"Sharpness\(every=k\)"):
            fnn.plot.sharpness({"loss": [1.0]}, 0.5)
        with pytest.raises(FnnTypeError, match="the result of fnn.landscape"):
            fnn.plot.landscape({"losses": 1})
    finally:
        plt.close("all")
