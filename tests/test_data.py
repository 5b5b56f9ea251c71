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


def test_key_first_split_takes_test_fraction_by_position_too():
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    by_name = data.train_test_split(7, x, y, test_fraction=0.3)
    by_position = data.train_test_split(7, x, y, 0.3)
    assert len(by_name[3]) == 3 and all(np.array_equal(a, b) for a, b in zip(by_name, by_position))


# --------------------------------------------------------------------------- train_test_split as in scikit-learn
# (n, test_size, train_size) -> (n_train, n_test), as scikit-learn counts: a test fraction rounds up, a train one down
SIZES = {(10, None, None): (7, 3), (10, 0.25, None): (7, 3), (7, 0.3, None): (4, 3), (1797, 0.25, None): (1347, 450),
         (10, 3, None): (7, 3), (10, None, 0.6): (6, 4), (10, None, 4): (4, 6), (10, 0.2, 0.5): (5, 2),
         (10, 2, 5): (5, 2), (9, 0.5, None): (4, 5), (3, 0.5, 0.5): (1, 2)}


@pytest.mark.parametrize("n, test_size, train_size", list(SIZES))
def test_split_sizes_are_scikit_learns(n, test_size, train_size):
    x, y = np.arange(2 * n).reshape(n, 2), np.arange(n)
    ours = data.train_test_split(x, y, test_size=test_size, train_size=train_size, random_state=0)
    n_train, n_test = SIZES[n, test_size, train_size]
    assert [a.shape for a in ours] == [(n_train, 2), (n_test, 2), (n_train,), (n_test,)]
    x_train, x_test, y_train, y_test = ours
    np.testing.assert_array_equal(x_train[:, 0], 2 * y_train)  # rows stay together
    np.testing.assert_array_equal(x_test[:, 0], 2 * y_test)
    assert len(set(y_train.tolist()) | set(y_test.tolist())) == len(y_train) + len(y_test)  # no row twice


@pytest.mark.slow  # importing scikit-learn costs more than a second
def test_the_size_table_is_scikit_learns():
    sklearn = pytest.importorskip("sklearn.model_selection")
    for (n, test_size, train_size), (n_train, n_test) in SIZES.items():
        x_train, x_test = sklearn.train_test_split(np.arange(n), test_size=test_size, train_size=train_size)
        assert (len(x_train), len(x_test)) == (n_train, n_test), (n, test_size, train_size)


def test_split_of_three_arrays_keeps_types_order_and_is_seeded():
    x, w = np.arange(24.0).reshape(12, 2), jnp.arange(12)
    names = [f"r{i}" for i in range(12)]  # a list, of strings: split like any other rows
    with no_compiles():
        out = data.train_test_split(x, w, names, test_size=4, random_state=3)
    x_train, x_test, w_train, w_test, n_train, n_test = out
    assert isinstance(out, list) and isinstance(x_train, np.ndarray) and isinstance(w_test, jax.Array)
    assert x_test.shape == (4, 2) and w_train.shape == (8,) and n_test.dtype.kind == "U"
    np.testing.assert_array_equal(x_test[:, 0] / 2, w_test)
    assert n_test.tolist() == [f"r{int(i)}" for i in w_test]
    again = data.train_test_split(x, w, names, test_size=4, random_state=jax.random.key(3))  # int seed == its key
    assert all(np.array_equal(a, b) for a, b in zip(out, again))
    assert not np.array_equal(data.train_test_split(x, test_size=4, random_state=4)[1], x_test)
    fresh = data.train_test_split(x, test_size=4)  # random_state None: fresh randomness, same sizes
    assert fresh[0].shape == (8, 2) and fresh[1].shape == (4, 2)


def test_split_without_shuffle_takes_the_first_rows_then_the_next():
    x = np.arange(11)
    assert [a.tolist() for a in data.train_test_split(x, test_size=0.3, train_size=5, shuffle=False)] == [
        [0, 1, 2, 3, 4], [5, 6, 7, 8]]


@pytest.mark.slow  # scikit-learn's import
def test_split_without_shuffle_is_scikit_learns_exactly():
    sklearn = pytest.importorskip("sklearn.model_selection")
    x, y = np.arange(22.0).reshape(11, 2), np.arange(11)
    ours = data.train_test_split(x, y, test_size=0.3, train_size=5, shuffle=False)
    theirs = sklearn.train_test_split(x, y, test_size=0.3, train_size=5, shuffle=False)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_stratified_split_keeps_each_class_in_proportion():
    y = np.repeat([0, 1, 2], (53, 31, 16))
    for seed in range(3):
        y_train, y_test = data.train_test_split(y, test_size=0.25, random_state=seed, stratify=y)
        assert np.bincount(y_test).tolist() == [13, 8, 4] and np.bincount(y_train).tolist() == [40, 23, 12]


@pytest.mark.slow  # scikit-learn's import
@pytest.mark.parametrize("counts, test_size", [((53, 31, 16), 0.25), ((40, 40, 20), 0.3), ((5, 3, 2), 0.4),
                                               ((90, 10), 17)])
def test_stratified_split_has_scikit_learns_class_counts(counts, test_size):
    sklearn = pytest.importorskip("sklearn.model_selection")
    y = np.repeat(np.arange(len(counts)), counts)
    y = y[np.random.default_rng(0).permutation(len(y))]
    x = np.arange(len(y))
    for seed in range(3):
        x_train, x_test, y_train, y_test = data.train_test_split(x, y, test_size=test_size, random_state=seed,
                                                                 stratify=y)
        _, _, sk_train, sk_test = sklearn.train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
        np.testing.assert_array_equal(y[x_train], y_train)
        np.testing.assert_array_equal(y[x_test], y_test)
        # the counts of a class are sklearn's, or one off where remainders tie (sklearn breaks ties at random)
        assert np.abs(np.bincount(y_test, minlength=len(counts)) - np.bincount(sk_test, minlength=len(counts))).max() <= 1
        assert len(y_test) == len(sk_test) and len(y_train) == len(sk_train)
    if counts == (53, 31, 16):  # no ties: exactly sklearn's counts, each class in its proportion
        assert np.bincount(y_test).tolist() == np.bincount(sk_test).tolist() == [13, 8, 4]


def test_stratify_by_one_hot_rows():
    y = np.eye(2)[np.array([0, 0, 0, 0, 1, 1, 1, 1])]
    _, y_test = data.train_test_split(y, test_size=0.5, random_state=0, stratify=y)
    assert y_test.sum(axis=0).tolist() == [2.0, 2.0]


# --------------------------------------------------------------------------- standardize
def test_standardize_one_array_returns_it_standardised_and_constant_columns_as_zero():
    x = np.array([[1.0, 0.1, 7.0], [3.0, 0.1, 7.0], [5.0, 0.1, 7.0]])  # 0.1s: a std of rounding error, not 0
    out = data.standardize(x)
    assert isinstance(out, np.ndarray) and out.shape == (3, 3)
    np.testing.assert_allclose(out[:, 0], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)], rtol=1e-15)
    assert np.abs(out[:, 1:]).max() < 1e-12
    train, test = data.standardize(x, x[:1] + 2.0)  # several arrays: a tuple, the first one's statistics
    np.testing.assert_array_equal(train, out)
    np.testing.assert_allclose(test[0, 0], 0.0, atol=1e-15)


@pytest.mark.slow  # scikit-learn's import
def test_standardize_one_array_is_standard_scalers_fit_transform():
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(3.0, 7.0, 50), rng.uniform(-1, 1, 50), np.full(50, 0.1), np.zeros(50),
                         rng.integers(0, 5, 50)])  # 0.1 repeated: a std of rounding error, not exactly 0
    out = data.standardize(x)
    want = preprocessing.StandardScaler().fit_transform(x)
    assert isinstance(out, np.ndarray) and out.shape == x.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-12)
    assert np.isfinite(out).all() and np.abs(out[:, 2:4]).max() < 1e-12  # constant columns: 0, not NaN or ±1
    np.testing.assert_allclose(data.standardize([[1, 5], [3, 5]]), [[-1.0, 0.0], [1.0, 0.0]])  # ints, a list


@pytest.mark.slow  # scikit-learn's import
def test_standardize_several_arrays_uses_the_first_ones_statistics():
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(1)
    x_train, x_test = rng.normal(2.0, 3.0, (40, 3)), rng.normal(2.0, 3.0, (9, 3))
    train, test = data.standardize(x_train, x_test)
    scaler = preprocessing.StandardScaler().fit(x_train)
    np.testing.assert_allclose(train, scaler.transform(x_train), rtol=0, atol=1e-12)
    np.testing.assert_allclose(test, scaler.transform(x_test), rtol=0, atol=1e-12)


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
