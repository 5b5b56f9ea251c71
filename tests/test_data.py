"""fnn.data: the data sets are deterministic per key and compile nothing; Scaler round-trips."""
import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import data
from fnn.errors import FnnTypeError, FnnValueError


@contextlib.contextmanager
def no_compiles():
    """Fails if XLA compiles anything inside (JAX's own compile event, not a timing)."""
    compiled = []
    listener = lambda event, duration, **kw: compiled.append(event) if "backend_compile" in event else None  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert not compiled, f"{len(compiled)} compile(s)"


@pytest.mark.parametrize("make", [data.circles, data.spiral], ids=["circles", "spiral"])
def test_same_key_same_data_and_no_compiles(make):
    key = jax.random.key(3)
    with no_compiles():  # 37 samples: a shape nothing in this process has used, so any op would compile
        x, y = make(key, 37)
    assert isinstance(x, jax.Array) and isinstance(y, jax.Array)
    assert x.shape == (37, 2) and x.dtype == jnp.float32 and y.shape == (37,) and y.dtype == jnp.int32
    again = make(key, 37)
    np.testing.assert_array_equal(x, again[0])
    np.testing.assert_array_equal(y, again[1])
    assert not np.array_equal(x, make(jax.random.key(4), 37)[0])
    # an int seed means jax.random.key(seed); a legacy raw key means the key it wraps
    np.testing.assert_array_equal(make(3, 37)[0], x)
    np.testing.assert_array_equal(make(jax.random.key_data(key), 37)[0], x)


def test_circles_geometry():
    x, y = data.circles(jax.random.key(0), 400, noise=0.0, factor=0.3)
    x, y = np.asarray(x), np.asarray(y)
    radius = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(radius[y == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.3, rtol=1e-6)
    assert (y == 0).sum() == (y == 1).sum() == 200
    assert not (np.diff(y) == 0).all()  # shuffled, not sorted by label
    noisy, labels = (np.asarray(a) for a in data.circles(jax.random.key(0), 400, noise=0.1))
    assert 0.07 < np.std(np.linalg.norm(noisy, axis=1)[labels == 0] - 1.0) < 0.13


def test_spiral_labels():
    x, y = data.spiral(jax.random.key(0), 300, n_classes=4, noise=0.0)
    assert np.bincount(np.asarray(y)).tolist() == [75, 75, 75, 75]
    assert float(jnp.abs(x).max()) <= 1.0


@pytest.mark.parametrize("kind", ["numpy", "jax"])
def test_train_test_split_keeps_the_type_and_every_row_once(kind):
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.arange(20, dtype=np.int32)
    if kind == "jax":
        x, y = jnp.asarray(x), jnp.asarray(y)
    with no_compiles():
        x_train, y_train, x_test, y_test = data.train_test_split(jax.random.key(1), x, y, test_fraction=0.25)
    kinds = {type(a) for a in (x_train, y_train, x_test, y_test)}
    assert kinds == {np.ndarray} if kind == "numpy" else all(issubclass(k, jax.Array) for k in kinds)
    assert x_train.shape == (15, 2) and x_test.shape == (5, 2) and x_train.dtype == np.float32
    assert sorted(np.concatenate([y_train, y_test]).tolist()) == list(range(20))
    np.testing.assert_array_equal(np.asarray(x_test)[:, 0], 2 * np.asarray(y_test))  # rows stay together
    same = data.train_test_split(1, x, y, test_fraction=0.25)  # int seed 1 == jax.random.key(1)
    np.testing.assert_array_equal(same[3], y_test)


def test_standardize_unchanged():
    a = np.array([[1.0, 5.0], [3.0, 5.0]])
    (s,) = data.standardize(a)
    np.testing.assert_allclose(s, [[-1.0, 0.0], [1.0, 0.0]])


# --------------------------------------------------------------------------- Scaler
@pytest.mark.parametrize("shape", [(7,), (7, 1), (7, 3)])
def test_scaler_round_trip(shape):
    rng = np.random.default_rng(0)
    a = (rng.normal(size=shape) * 5 + 2).astype(np.float32)
    s = data.scaler(a)
    assert isinstance(s, data.Scaler) and s.mean.shape == shape[1:] and s.scale.shape == shape[1:]
    z = s.transform(a)
    assert isinstance(z, np.ndarray) and z.shape == shape and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(s.inverse(z), a, rtol=1e-6, atol=1e-6)


def test_scaler_shapes_dtypes_and_constant_columns():
    s = data.scaler(np.array([[1, 4], [3, 4]]))  # ints; the second column is constant
    np.testing.assert_array_equal(s.mean, [2.0, 4.0])
    np.testing.assert_array_equal(s.scale, [1.0, 1.0])  # std 0 -> 1: the column is only shifted
    out = s.transform(np.array([[3, 4]]))
    assert out.dtype == np.float64 and out.tolist() == [[1.0, 0.0]]
    one = data.scaler(np.array([2.0, 4.0]))  # (n,) targets; a model's (n, 1) outputs map back as (n, 1)
    assert one.inverse(np.array([[1.0], [-1.0]])).tolist() == [[4.0], [2.0]]
    assert one.transform(jnp.array([3.0])).tolist() == [0.0]  # a jax array in, numpy out
    assert data.scaler(np.array([5.0])).scale == 1.0  # a single sample


@pytest.mark.parametrize("call, bad, error, match", [
    (data.scaler, np.array([1.0, np.nan]), FnnValueError, r"a contains 1 non-finite value\(s\); the first is nan at row 1"),
    (data.scaler, np.zeros((0, 2)), FnnValueError, r"a is empty \(shape \(0, 2\)\); pass at least one row"),
    (data.scaler, np.zeros(0), FnnValueError, r"a is empty"),
    (data.scaler, np.zeros((2, 2, 2)), FnnValueError, r"a must be \(n,\) or \(n, d\), got shape \(2, 2, 2\)"),
    (data.scaler, np.float32(1.0), FnnValueError, r"a must be \(n,\) or \(n, d\), got shape \(\)"),
    (data.scaler, np.array(["x", "y"]), FnnTypeError, r"a must have a numeric dtype"),
    (data.scaler, None, FnnTypeError, r"a must be an array, got None"),
])
def test_scaler_refuses_bad_input(call, bad, error, match):
    with pytest.raises(error, match=match):
        call(bad)


def test_transform_and_inverse_refuse_bad_input():
    s = data.scaler(np.ones((4, 2)))
    for method in (s.transform, s.inverse):
        with pytest.raises(FnnValueError, match=r"a has 3 column\(s\) \(shape \(4, 3\)\) but the scaler was made "
                                                r"from 2; .*fnn\.data\.scaler"):
            method(np.ones((4, 3)))
        with pytest.raises(FnnValueError, match=r"a has 1 column\(s\)"):
            method(np.ones(4))
        with pytest.raises(FnnValueError, match=r"non-finite value\(s\); the first is inf at row 1, column 0"):
            method(np.array([[0.0, 0.0], [np.inf, 0.0]]))
        with pytest.raises(FnnValueError, match=r"a is empty"):
            method(np.ones((0, 2)))
