"""Losses beside their gradients: against jax.grad, the fused pairs in the tails, and bad targets.

Computations run in one compiled call per test (`run`, in XLA's quick compilation mode), with the
targets closed over as concrete arrays so that their checks still run: every eager operation on a
new shape is compiled on its own, and compiling is what costs here.
"""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import _compile, activations, losses
from fnn.errors import FnnTypeError, FnnValueError

N, K = 6, 3


def run(f, *args):
    """f(*args) compiled once (by fnn's jit, whose XLA options compile small programs faster), numpy leaves out."""
    return jax.tree.map(np.asarray, _compile.jit(f)(*args))


def rng(seed=0):
    return np.random.default_rng(seed)


def probabilities(shape, seed=0):
    return rng(seed).uniform(0.05, 0.95, size=shape)


def binary(shape, seed=1):
    return rng(seed).integers(0, 2, size=shape).astype(np.float64)


def softmax_rows(seed=0):
    z = rng(seed).normal(size=(N, K))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def labels(seed=2):
    return np.array([0, 1, 2, 2, 1, 0])[rng(seed).permutation(N)]


def one_hot(y, k=K):
    return np.eye(k)[y]


# (loss, its hand-written gradient, predictions, targets): every accepted target form
GRAD_CASES = {
    "mse": (losses.mse, losses.mse_grad, lambda: rng().normal(size=(N, K)), lambda: rng(1).normal(size=(N, K))),
    "mse-column": (losses.mse, losses.mse_grad, lambda: rng().normal(size=(N, 1)), lambda: rng(1).normal(size=N)),
    "mse-flat": (losses.mse, losses.mse_grad, lambda: rng().normal(size=N), lambda: rng(1).normal(size=N)),
    "bce": (losses.binary_cross_entropy, losses.binary_cross_entropy_grad,
            lambda: probabilities((N, K)), lambda: binary((N, K))),
    "bce-column": (losses.binary_cross_entropy, losses.binary_cross_entropy_grad,
                   lambda: probabilities((N, 1)), lambda: binary(N)),
    "sigmoid-bce": (losses.sigmoid_binary_cross_entropy, losses.sigmoid_binary_cross_entropy_grad,
                    lambda: 2 * rng().normal(size=(N, K)), lambda: binary((N, K))),
    "sigmoid-bce-column": (losses.sigmoid_binary_cross_entropy, losses.sigmoid_binary_cross_entropy_grad,
                           lambda: 2 * rng().normal(size=(N, 1)), lambda: binary(N)),
    "cce-labels": (losses.categorical_cross_entropy, losses.categorical_cross_entropy_grad,
                   softmax_rows, labels),
    "cce-one-hot": (losses.categorical_cross_entropy, losses.categorical_cross_entropy_grad,
                    softmax_rows, lambda: one_hot(labels())),
    "softmax-ce-labels": (losses.softmax_cross_entropy, losses.softmax_cross_entropy_grad,
                          lambda: 2 * rng().normal(size=(N, K)), labels),
    "softmax-ce-soft-targets": (losses.softmax_cross_entropy, losses.softmax_cross_entropy_grad,
                                lambda: 2 * rng().normal(size=(N, K)), lambda: softmax_rows(seed=5)),
    "mae": (losses.mae, losses.mae_grad, lambda: rng().normal(size=(N, K)), lambda: rng(1).normal(size=(N, K))),
    "mae-column": (losses.mae, losses.mae_grad, lambda: rng().normal(size=(N, 1)), lambda: rng(1).normal(size=N)),
    "huber": (losses.huber, losses.huber_grad,  # residuals either side of delta = 1
              lambda: 1.5 * rng().normal(size=(N, K)), lambda: rng(1).normal(size=(N, K))),
    "huber-delta-0.3": (functools.partial(losses.huber, delta=0.3), functools.partial(losses.huber_grad, delta=0.3),
                        lambda: rng().normal(size=(N, 1)), lambda: rng(1).normal(size=N)),
    "focal": (losses.sigmoid_binary_focal_cross_entropy, losses.sigmoid_binary_focal_cross_entropy_grad,
              lambda: 2 * rng().normal(size=(N, K)), lambda: binary((N, K))),
    "focal-gamma-0.5-alpha-0.25": (
        functools.partial(losses.sigmoid_binary_focal_cross_entropy, gamma=0.5, alpha=0.25),
        functools.partial(losses.sigmoid_binary_focal_cross_entropy_grad, gamma=0.5, alpha=0.25),
        lambda: 2 * rng().normal(size=(N, 1)), lambda: binary(N)),
    "focal-soft-labels-gamma-3": (
        functools.partial(losses.sigmoid_binary_focal_cross_entropy, gamma=3.0),
        functools.partial(losses.sigmoid_binary_focal_cross_entropy_grad, gamma=3.0),
        lambda: 2 * rng().normal(size=(N, K)), lambda: probabilities((N, K), seed=7)),
}


@functools.lru_cache(maxsize=None)
def grad_results():
    """Every case's (loss, hand-written gradient, jax.grad, predictions), in one compiled call."""
    cases = {name: (loss, grad, make_y()) for name, (loss, grad, _, make_y) in GRAD_CASES.items()}

    def all_cases(preds):
        return {name: (loss(preds[name], y), grad(preds[name], y), jax.grad(loss)(preds[name], y), preds[name])
                for name, (loss, grad, y) in cases.items()}

    return run(all_cases, {name: make_pred() for name, (_, _, make_pred, _) in GRAD_CASES.items()})


@pytest.mark.parametrize("case", sorted(GRAD_CASES))
def test_grad_matches_jax_grad(case):
    value, got, want, pred = grad_results()[case]
    assert value.shape == () and value.dtype == np.float64 and np.isfinite(value)
    assert got.shape == pred.shape
    chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-300)


def test_values_against_numpy_formulas():
    p, z, t = probabilities((N, K)), 2 * rng().normal(size=(N, K)), binary((N, K))
    s, y = softmax_rows(), labels()
    got = run(lambda: (losses.mse(p, t), losses.binary_cross_entropy(p, t),
                       losses.sigmoid_binary_cross_entropy(z, t), losses.categorical_cross_entropy(s, y),
                       losses.softmax_cross_entropy(np.log(s), y)))
    want = (np.mean((p - t) ** 2), -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)),
            np.mean(np.log1p(np.exp(z)) - t * z), -np.mean(np.log(s[np.arange(N), y])),
            -np.mean(np.log(s[np.arange(N), y])))
    chex.assert_trees_all_close(got, want, rtol=1e-12)


def _sigma(z):
    return 1 / (1 + np.exp(-z))


def test_new_losses_against_numpy_formulas():
    p, t = rng().normal(size=(N, K)) * 1.5, rng(1).normal(size=(N, K))
    z, yb = 2 * rng().normal(size=(N, K)), binary((N, K))
    got = run(lambda: (losses.mae(p, t), losses.huber(p, t), losses.huber(p, t, delta=0.4),
                       losses.sigmoid_binary_focal_cross_entropy(z, yb),
                       losses.sigmoid_binary_focal_cross_entropy(z, yb, gamma=1.0, alpha=0.8)))
    d = np.abs(p - t)
    huber = lambda delta: np.where(d <= delta, 0.5 * d**2, delta * (d - delta / 2)).mean()  # noqa: E731
    s = _sigma(z)
    p_t = np.where(yb == 1, s, 1 - s)
    ce = -np.log(p_t)
    want = (d.mean(), huber(1.0), huber(0.4), ((1 - p_t) ** 2 * ce).mean(),
            (np.where(yb == 1, 0.8, 0.2) * (1 - p_t) * ce).mean())
    chex.assert_trees_all_close(got, want, rtol=1e-12)
    assert ((0.0 < d) & (d < 0.4)).any() and (d > 1.0).any()  # both of huber's pieces are used


def test_mae_and_huber_at_their_kinks_match_jax_grad():
    """mae′ is 0 where pred == y (a subgradient at the minimum, and jax.grad of mae agrees); huber′ is
    continuous at |d| = delta, where both pieces give ±delta."""
    pred, y = np.array([[0.5], [1.0], [-2.0], [3.0]]), np.array([0.5, 0.0, -1.0, 3.0])  # d = 0, 1, -1, 0
    mae_g, mae_auto, hub_g, hub_auto = run(lambda p: (losses.mae_grad(p, y), jax.grad(losses.mae)(p, y),
                                                      losses.huber_grad(p, y), jax.grad(losses.huber)(p, y)), pred)
    np.testing.assert_array_equal(mae_g[:, 0], [0.0, 0.25, -0.25, 0.0])
    np.testing.assert_array_equal(hub_g[:, 0], [0.0, 0.25, -0.25, 0.0])
    chex.assert_trees_all_close((mae_g, hub_g), (mae_auto, hub_auto), rtol=1e-15)


def test_new_gradients_against_central_differences():
    """⟨∂L/∂pred, v⟩ against (L(pred + h v) − L(pred − h v)) / 2h along random directions v, all in one program."""
    cases = {
        "mae": (losses.mae, losses.mae_grad, rng().normal(size=(N, 2)), rng(1).normal(size=(N, 2))),
        "huber": (losses.huber, losses.huber_grad, 1.5 * rng().normal(size=(N, 2)), rng(1).normal(size=(N, 2))),
        "focal": (functools.partial(losses.sigmoid_binary_focal_cross_entropy, alpha=0.3),
                  functools.partial(losses.sigmoid_binary_focal_cross_entropy_grad, alpha=0.3),
                  2 * rng().normal(size=(N, 2)), binary((N, 2))),
    }
    directions, h = rng(9).normal(size=(4, N, 2)), 1e-6

    def both(preds):
        out = {}
        for name, (loss, grad, _, y) in cases.items():
            p = preds[name]
            central = jnp.stack([(loss(p + h * v, y) - loss(p - h * v, y)) / (2 * h) for v in directions])
            out[name] = (jnp.stack([jnp.sum(grad(p, y) * v) for v in directions]), central)
        return out

    got = run(both, {name: case[2] for name, case in cases.items()})
    for name, (analytic, central) in got.items():
        np.testing.assert_allclose(analytic, central, rtol=1e-6, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_focal_is_exact_at_huge_logits_and_gamma_0_is_bce(dtype):
    z = np.array([[1e4], [-1e4], [1e4], [-1e4], [30.0], [-30.0]], dtype)
    y = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    value, grad, auto, bce, bce_grad, focal0, focal0_grad = run(lambda z: (
        losses.sigmoid_binary_focal_cross_entropy(z, y), losses.sigmoid_binary_focal_cross_entropy_grad(z, y),
        jax.grad(losses.sigmoid_binary_focal_cross_entropy)(z, y),
        losses.sigmoid_binary_cross_entropy(z, y), losses.sigmoid_binary_cross_entropy_grad(z, y),
        losses.sigmoid_binary_focal_cross_entropy(z, y, gamma=0.0),
        losses.sigmoid_binary_focal_cross_entropy_grad(z, y, gamma=0.0)), z)
    assert value.dtype == dtype and grad.dtype == dtype
    assert np.isfinite(value) and np.isfinite(grad).all() and np.isfinite(auto).all()
    # the two wrong logits: 1 − p_t = 1, each loses 1e4; the right ones are down-weighted to (nearly) 0
    np.testing.assert_allclose(value, 2e4 / 6, rtol=1e-6)
    np.testing.assert_allclose(grad[:4, 0], [1 / 6, 0.0, 0.0, -1 / 6], rtol=1e-6)
    np.testing.assert_allclose(auto, grad, rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(focal0, bce, rtol=1e-6)
    np.testing.assert_allclose(focal0_grad, bce_grad, rtol=1e-6)


def test_focal_down_weights_the_samples_already_right():
    """(1 − p_t)^γ: a sample right at p_t = 0.9 keeps 1% of its cross-entropy, one wrong at p_t = 0.1 keeps 81%."""
    z = np.log(np.array([[9.0], [1 / 9.0]]))  # σ(z) = 0.9, 0.1
    y = np.array([1.0, 1.0])
    per = run(lambda z: losses.per_sample(losses.LOSSES["binary_focal_cross_entropy"], z, y[:, None]), z)
    np.testing.assert_allclose(per, [0.01 * -np.log(0.9), 0.81 * -np.log(0.1)], rtol=1e-12)


@pytest.mark.parametrize("call, error, match", [
    (lambda: losses.huber(np.zeros(2), np.zeros(2), delta=0.0), FnnValueError, r"huber delta must be in \(0, inf\]"),
    (lambda: losses.huber_grad(np.zeros(2), np.zeros(2), delta=-1), FnnValueError, r"huber delta must be in"),
    (lambda: losses.huber_loss(np.nan), FnnValueError, r"huber delta must be finite, got nan"),
    (lambda: losses.huber_loss("1"), FnnTypeError, r"huber delta must be a real number, got str '1'"),
    (lambda: losses.binary_focal_loss(gamma=-0.5), FnnValueError, r"binary_focal gamma must be in \[0, inf\]"),
    (lambda: losses.binary_focal_loss(alpha=1.5), FnnValueError, r"binary_focal alpha must be in \[0, 1\], got 1.5"),
    (lambda: losses.binary_focal_loss(alpha=-0.1), FnnValueError, r"binary_focal alpha must be in \[0, 1\]"),
    (lambda: losses.sigmoid_binary_focal_cross_entropy(np.zeros(2), np.zeros(2), alpha="a"), FnnTypeError,
     r"binary_focal alpha must be a real number"),
    (lambda: losses.sigmoid_binary_focal_cross_entropy_grad(np.zeros(2), np.zeros(2), gamma=None), FnnTypeError,
     r"binary_focal gamma must be a real number, got NoneType"),
    (lambda: losses.sigmoid_binary_focal_cross_entropy(np.zeros(2), [0.0, 2.0]), FnnValueError,
     r"binary_focal_cross_entropy needs labels in \[0, 1\] in y"),
    (lambda: losses.from_callable("mse"), FnnTypeError, r"a callable loss must be callable, got str"),
])
def test_bad_loss_parameters_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_records_with_the_same_numbers_are_the_same_structure():
    assert losses.huber_loss(2.0) == losses.huber_loss(2) and hash(losses.huber_loss(2.0)) == hash(losses.huber_loss(2))
    assert losses.huber_loss(2.0) != losses.huber_loss(1.0) and losses.LOSSES["huber"] == losses.huber_loss()
    assert losses.binary_focal_loss(2.0, 0.25) == losses.binary_focal_loss(2, 0.25)
    assert losses.binary_focal_loss(2.0, 0.25) != losses.binary_focal_loss(2.0)
    f = lambda p, y: jnp.mean(p - y, axis=-1)  # noqa: E731
    assert losses.from_callable(f) == losses.from_callable(f)
    assert losses.from_callable(f) != losses.from_callable(lambda p, y: jnp.mean(p - y, axis=-1))


def test_sigmoid_bce_is_bce_of_sigmoid_for_moderate_logits():
    z, y = 3 * rng(3).normal(size=(N, K)), binary((N, K))
    fused, plain, fused_grad, plain_grad = run(lambda z: (
        losses.sigmoid_binary_cross_entropy(z, y),
        losses.binary_cross_entropy(activations.sigmoid(z), y),
        losses.sigmoid_binary_cross_entropy_grad(z, y),
        losses.binary_cross_entropy_grad(activations.sigmoid(z), y) * activations.sigmoid_deriv(z)), z)
    chex.assert_trees_all_close(fused, plain, rtol=1e-10)
    chex.assert_trees_all_close(fused_grad, plain_grad, rtol=1e-10)
    s = 1 / (1 + np.exp(-z))
    chex.assert_trees_all_close(fused_grad, (s - y) / y.size, rtol=1e-12)  # (σ(z) − y) / (n k)


def test_softmax_ce_is_cce_of_softmax_for_moderate_logits():
    z, y = 3 * rng(3).normal(size=(N, K)), labels()
    fused, plain, fused_grad, plain_grad = run(lambda z: (
        losses.softmax_cross_entropy(z, y),
        losses.categorical_cross_entropy(activations.softmax(z), y),
        losses.softmax_cross_entropy_grad(z, y),
        activations.softmax_vjp(z, losses.categorical_cross_entropy_grad(activations.softmax(z), y))), z)
    chex.assert_trees_all_close(fused, plain, rtol=1e-10)
    chex.assert_trees_all_close(fused_grad, plain_grad, rtol=1e-10, atol=1e-15)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    chex.assert_trees_all_close(fused_grad, (e / e.sum(axis=1, keepdims=True) - one_hot(y)) / N, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_bce_is_exact_at_huge_logits(dtype):
    z = np.array([[1e4], [-1e4], [1e4], [-1e4]], dtype)
    y = np.array([0.0, 0.0, 1.0, 1.0])
    value, grad, auto = run(lambda z: (losses.sigmoid_binary_cross_entropy(z, y),
                                       losses.sigmoid_binary_cross_entropy_grad(z, y),
                                       jax.grad(losses.sigmoid_binary_cross_entropy)(z, y)), z)
    # per sample: softplus(1e4) = 1e4 with label 0, softplus(-1e4) + 1e4 = 1e4 with label 1, else 0
    assert value.dtype == dtype and grad.dtype == dtype
    assert np.isfinite(value) and np.isfinite(grad).all() and np.isfinite(auto).all()
    np.testing.assert_allclose(value, 2e4 / 4, rtol=1e-7)
    np.testing.assert_array_equal(grad, np.array([[0.25], [0.0], [0.0], [-0.25]], dtype))  # (σ(z) − y) / n
    np.testing.assert_allclose(auto, grad, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_of_one_huge_wrong_logit_is_1e4_over_n(dtype):
    z = np.array([[1e4], [-30.0], [30.0]], dtype)
    y = np.array([0.0, 0.0, 1.0])
    value = run(lambda z: losses.sigmoid_binary_cross_entropy(z, y), z)
    np.testing.assert_allclose(value, (1e4 + 2 * np.log1p(np.exp(-30.0))) / 3, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_ce_is_exact_at_huge_logits(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, -1e4, 0.0]], dtype)
    y = np.array([1, 2, 0])
    value, grad, auto = run(lambda z: (losses.softmax_cross_entropy(z, y), losses.softmax_cross_entropy_grad(z, y),
                                       jax.grad(losses.softmax_cross_entropy)(z, y)), z)
    assert value.dtype == dtype and grad.dtype == dtype
    assert np.isfinite(value) and np.isfinite(grad).all() and np.isfinite(auto).all()
    np.testing.assert_allclose(value, (2e4 + 1e4 + 0.0) / 3, rtol=1e-7)
    want = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [0.0, 0.0, 0.0]]) / 3  # (softmax(z) − y) / n
    np.testing.assert_allclose(grad, want, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(auto, want, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("loss, grad", [
    (losses.mse, losses.mse_grad),
    (losses.binary_cross_entropy, losses.binary_cross_entropy_grad),
    (losses.sigmoid_binary_cross_entropy, losses.sigmoid_binary_cross_entropy_grad),
], ids=["mse", "bce", "sigmoid-bce"])
def test_column_targets_never_broadcast_to_n_by_n(loss, grad):
    pred = probabilities((N, 1))
    y = binary(N)
    got = run(lambda: (loss(pred, y), loss(pred, y[:, None]), loss(pred[:, 0], y), loss(pred[:, 0], y[:, None]),
                       grad(pred, y), grad(pred[:, 0], y[:, None])))
    explicit = got[1]  # the (n, 1) against (n, 1) result
    for value in got[:4]:
        assert value.shape == ()
        np.testing.assert_allclose(value, explicit, rtol=1e-14)
    want = {losses.mse: np.mean((pred[:, 0] - y) ** 2),
            losses.binary_cross_entropy: -np.mean(y * np.log(pred[:, 0]) + (1 - y) * np.log(1 - pred[:, 0])),
            losses.sigmoid_binary_cross_entropy: np.mean(np.log1p(np.exp(pred[:, 0])) - y * pred[:, 0])}[loss]
    np.testing.assert_allclose(explicit, want, rtol=1e-12)
    # an (n, n) broadcast would have given another number
    assert abs(np.mean((pred - y[None, :]) ** 2) - np.mean((pred[:, 0] - y) ** 2)) > 1e-3
    assert got[4].shape == (N, 1) and got[5].shape == (N,)
    np.testing.assert_allclose(got[4][:, 0], got[5], rtol=1e-14)


@pytest.mark.parametrize("loss", [losses.mse, losses.mse_grad, losses.binary_cross_entropy,
                                  losses.sigmoid_binary_cross_entropy_grad])
def test_flat_targets_with_several_outputs_are_refused(loss):
    with pytest.raises(FnnValueError, match=r"y has shape \(6,\) but the model has 3 outputs.*\(n_samples, 3\)"):
        loss(probabilities((N, K)), binary(N))


@pytest.mark.parametrize("pred_shape, y_shape, match", [
    ((N, K), (N, 2), r"y has 2 columns \(shape \(6, 2\)\) but the model has 3 outputs"),
    ((N, 1), (N - 1,), r"different numbers of samples: 6 and 5"),
    ((N, 1), (N, 1, 1), r"y must be \(n_samples,\) or \(n_samples, 1\), got shape \(6, 1, 1\)"),
    ((N, 1), (), r"got shape \(\)"),
    ((N, 1, 1), (N,), r"predictions must be \(n_samples, n_outputs\)"),
    ((N, 1), (0,), r"0 samples"),
])
def test_mismatched_shapes_are_refused(pred_shape, y_shape, match):
    with pytest.raises(FnnValueError, match=match):
        losses.mse(np.full(pred_shape, 0.5), np.zeros(y_shape))


def test_categorical_accepts_labels_and_one_hot_alike():
    s, z, y = softmax_rows(), 2 * rng().normal(size=(N, K)), labels()
    forms = [y, y[:, None], y.astype(np.float64), one_hot(y), one_hot(y).astype(np.int32), y.astype(np.int8)]
    got = run(lambda: [(losses.categorical_cross_entropy(s, t), losses.categorical_cross_entropy_grad(s, t),
                        losses.softmax_cross_entropy(z, t), losses.softmax_cross_entropy_grad(z, t))
                       for t in forms])
    for other in got[1:]:
        chex.assert_trees_all_close(other, got[0], rtol=1e-15)
    np.testing.assert_allclose(got[0][0], -np.mean(np.log(s[np.arange(N), y])), rtol=1e-12)


def test_prepare_targets_returns_n_by_k_floats_and_keeps_class_labels_as_labels():
    t = losses.prepare_targets(np.array([2, 0, 1]), "categorical_cross_entropy", 3, jnp.float64)
    np.testing.assert_array_equal(np.asarray(t), [2, 0, 1])  # no (n, k) one-hot: 10,000 classes stay small
    assert t.dtype == jnp.int32
    t = losses.prepare_targets(np.eye(3)[[2, 0, 1]], "categorical_cross_entropy", 3, jnp.float64)
    np.testing.assert_array_equal(np.asarray(t), np.eye(3)[[2, 0, 1]])
    assert t.dtype == jnp.float64
    t = losses.prepare_targets([0.0, 1.0], "binary_cross_entropy", 1, jnp.float32)
    assert t.shape == (2, 1) and t.dtype == jnp.float32
    t = losses.prepare_targets(np.ones((2, 3)), "mse", 3, jnp.float64)
    assert t.shape == (2, 3)


BAD_TARGETS = [
    # (loss, predictions, y, error, message)
    ("binary_cross_entropy", (4, 1), [0.0, 1.0, 1.5, 1.0], FnnValueError,
     r"labels in \[0, 1\] in y \(0/1 classes, or soft labels\); found 1.5 at row 2"),
    ("sigmoid_binary_cross_entropy", (4, 1), [0, 2, 1, 0], FnnValueError, r"labels in \[0, 1\] in y \(0/1 classes, or soft labels\); found 2 at row 1"),
    ("binary_cross_entropy", (4, 2), [[0, 1], [1, 0], [-1, 0], [0, 0]], FnnValueError, r"labels in \[0, 1\].*row 2"),
    ("categorical_cross_entropy", (4, 3), [0, 1, 3, 2], FnnValueError,
     r"class label y\[2\] = 3 is out of range: the model has 3 output units, so labels must be in 0\.\.2"),
    ("softmax_cross_entropy", (4, 3), [0, -1, 1, 2], FnnValueError, r"class label y\[1\] = -1 is out of range"),
    ("softmax_cross_entropy", (4, 3), [0.0, 1.5, 2.0, 1.0], FnnValueError, r"y\[1\] = 1.5 is not an integer"),
    ("categorical_cross_entropy", (4, 3), [[1, 0, 0], [0.5, 0.2, 0], [0, 1, 0], [0, 0, 1]], FnnValueError,
     r"one-hot y row 1 sums to 0.7"),
    ("softmax_cross_entropy", (4, 3), [[1, 0, 0], [1.5, -0.5, 0], [0, 1, 0], [0, 0, 1]], FnnValueError,
     r"row 1 .*negative entry"),
    ("categorical_cross_entropy", (4, 3), [[1, 0], [0, 1], [1, 0], [0, 1]], FnnValueError,
     r"one-hot y has width 2 \(shape \(4, 2\)\) but the model has 3 output units"),
    ("mse", (4, 1), [0.0, np.nan, 1.0, 2.0], FnnValueError, r"y contains 1 non-finite value\(s\).*row 1"),
    ("binary_cross_entropy", (4, 1), [0.0, 1.0, 1.0, np.inf], FnnValueError, r"non-finite.*inf at row 3"),
    ("categorical_cross_entropy", (4, 3), [0.0, 1.0, np.nan, 2.0], FnnValueError, r"non-finite.*row 2"),
    ("mse", (4, 1), np.array(["a", "b", "c", "d"]), FnnTypeError, r"numeric dtype.*<U1"),
    ("categorical_cross_entropy", (4, 3), np.array(["0", "1", "2", "0"]), FnnTypeError, r"numeric dtype"),
    ("binary_cross_entropy", (4, 1), np.array([0, 1, 1, 0], complex), FnnTypeError, r"complex dtype"),
    ("mse", (4, 1), "0110", FnnTypeError, r"got a string"),
    ("mse", (4, 1), None, FnnTypeError, r"y must be an array, got None"),
    ("mse", (4, 1), [[0.0], [1.0, 2.0]], FnnTypeError, r"rectangular"),
]


@pytest.mark.parametrize("loss, pred_shape, y, error, match", BAD_TARGETS,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BAD_TARGETS)])
def test_bad_targets_are_refused_with_a_message(loss, pred_shape, y, error, match):
    pred = np.full(pred_shape, 1.0 / pred_shape[1])
    for fn in (getattr(losses, loss), getattr(losses, loss + "_grad")):
        with pytest.raises(error, match=match):
            fn(pred, y)


def test_fnn_errors_are_builtin_errors_too():
    assert issubclass(FnnValueError, ValueError)
    assert issubclass(FnnTypeError, TypeError)
    with pytest.raises(ValueError):
        losses.binary_cross_entropy(np.full((2, 1), 0.5), [0.0, 3.0])


@pytest.mark.parametrize("bad", [np.array([["x"], ["y"]]), np.array([[1j], [2j]])])
def test_bad_predictions_are_refused(bad):
    with pytest.raises(FnnTypeError, match="predictions"):
        losses.mse(bad, np.zeros(2))


def test_losses_do_not_mutate_their_inputs():
    pred, y = probabilities((N, K)), binary((N, K))
    s, t = softmax_rows(), labels()
    copies = [a.copy() for a in (pred, y, s, t)]
    run(lambda: (losses.mse(pred, y), losses.mse_grad(pred, y), losses.binary_cross_entropy(pred, y),
                 losses.binary_cross_entropy_grad(pred, y), losses.sigmoid_binary_cross_entropy_grad(pred, y),
                 losses.categorical_cross_entropy_grad(s, t), losses.softmax_cross_entropy_grad(s, t)))
    losses.prepare_targets(t, "categorical_cross_entropy", K, jnp.float64)
    for a, b in zip((pred, y, s, t), copies):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- pairing with the output layer
@pytest.mark.parametrize("activation", ["linear", "relu", "leaky_relu", "tanh", "sigmoid", "softmax"])
@pytest.mark.parametrize("units", [1, 3])
def test_mse_pairs_with_any_output(activation, units):
    assert losses.resolve("mse", activation, units) is losses.LOSSES["mse"]


def test_fused_pairs():
    one = losses.resolve("binary_cross_entropy", "sigmoid", 1)
    assert one is losses.LOSSES["binary_cross_entropy"] and one.from_logits and one.metric.name == "accuracy"
    several = losses.resolve("binary_cross_entropy", "sigmoid", 4)  # k independent labels
    assert several.from_logits and several.metric.name == "label_accuracy"
    assert losses.resolve("categorical_cross_entropy", "softmax", 3) is losses.LOSSES["categorical_cross_entropy"]
    assert losses.resolve(None, "softmax", 3) is losses.LOSSES["categorical_cross_entropy"]  # the default pairing
    assert losses.resolve(None, "sigmoid", 1) is losses.LOSSES["binary_cross_entropy"]
    assert losses.resolve(None, "tanh", 2) is losses.LOSSES["mse"]


@pytest.mark.parametrize("loss, activation, units, match", [
    ("binary_cross_entropy", "softmax", 2, r"softmax output of 2 units: use Dense\(1, activation='sigmoid'\).*"
                                            r"or categorical_cross_entropy with softmax"),
    ("binary_cross_entropy", "linear", 1, r"output activation is 'linear'; use activation='sigmoid'"),
    ("binary_cross_entropy", "relu", 1, r"output activation is 'relu'; use activation='sigmoid'"),
    ("binary_cross_entropy", "tanh", 2, r"output activation is 'tanh'; use activation='sigmoid'"),
    ("categorical_cross_entropy", "sigmoid", 1, r"1 output unit; for two classes use Dense\(1, activation='sigmoid'\) "
                                                r"with binary_cross_entropy"),
    ("categorical_cross_entropy", "linear", 1, r"softmax output of k >= 2 units"),
    ("categorical_cross_entropy", "sigmoid", 3,
     r"output activation is 'sigmoid'; use Dense\(3, activation='softmax'\)"),
    ("categorical_cross_entropy", "linear", 4, r"use Dense\(4, activation='softmax'\) as the last layer"),
])
def test_pairings_that_cannot_learn_are_refused(loss, activation, units, match):
    with pytest.raises(FnnValueError, match=match):
        losses.resolve(loss, activation, units)


def test_new_losses_pair_with_their_outputs():
    assert losses.resolve("mae", "relu", 2) is losses.LOSSES["mae"]
    assert losses.resolve("huber", "linear", 1).metric.name == "mae"
    focal = losses.resolve("binary_focal_crossentropy", "sigmoid", 1)
    assert focal.from_logits and focal.metric.name == "accuracy" and focal.name == "binary_focal_cross_entropy"
    assert losses.resolve(losses.binary_focal_loss(3.0), "sigmoid", 4).metric.name == "label_accuracy"
    assert losses.resolve(None, "sigmoid", 1) is losses.LOSSES["binary_cross_entropy"]  # still the default
    record = losses.huber_loss(0.5)
    assert losses.resolve(record, "tanh", 3) is record
    with pytest.raises(FnnValueError, match=r"binary_focal_cross_entropy on a softmax output of 3 units: use "
                                            r"Dense\(1, activation='sigmoid'\)"):
        losses.resolve("focal", "softmax", 3)
    with pytest.raises(FnnValueError, match=r"binary_focal_cross_entropy needs probabilities, but the output "
                                            r"activation is 'linear'; use activation='sigmoid'"):
        losses.resolve(losses.binary_focal_loss(1.0), "linear", 1)
    with pytest.raises(FnnValueError, match=r"is computed on logits only"):
        losses.unfused(focal)


def test_the_new_losses_metrics():
    out, t = rng().normal(size=(N, K)), rng(1).normal(size=(N, K))
    got = run(lambda: fnn.metrics.MAE.per_sample(out, t, False))
    np.testing.assert_allclose(got, np.abs(out - t).mean(axis=1), rtol=1e-14)
    assert [losses.LOSSES[name].metric.name for name in ("mae", "huber", "binary_focal_cross_entropy")] == [
        "mae", "mae", "accuracy"]


def test_keras_loss_names():
    focal = "binary_focal_cross_entropy"
    for name, want in [("mean_absolute_error", "mae"), ("MAE", "mae"), ("huber", "huber"), ("huber_loss", "huber"),
                       ("binary_focal_crossentropy", focal), ("focal", focal)]:
        assert losses.canonical_name(name) == want


def test_class_weight_follows_the_kind_of_targets():
    reg = fnn.Sequential([fnn.Dense(1)])
    sig = fnn.Sequential([fnn.Dense(1, activation="sigmoid")])
    t = np.array([[0.0], [1.0], [1.0]])
    with pytest.raises(FnnValueError, match="class_weight needs a classification loss"):
        fnn.targets.sample_weights(reg, losses.LOSSES["mae"], t, None, {0: 1.0})
    w = fnn.targets.sample_weights(sig, losses.LOSSES["binary_focal_cross_entropy"], t, None, {1: 3.0})
    np.testing.assert_array_equal(w, [1.0, 3.0, 3.0])
    several = fnn.Sequential([fnn.Dense(2, activation="sigmoid")])
    with pytest.raises(FnnValueError, match="multi-label"):
        fnn.targets.sample_weights(several, losses.binary_focal_loss(), np.ones((3, 2)), None, {1: 3.0})


# --------------------------------------------------------------------------- a user's callable loss
def quartic(pred, y):
    return jnp.mean((pred - y) ** 4, axis=-1)


def test_a_callable_loss_in_evaluate_objective_and_jax_grad():
    model = fnn.Sequential([fnn.Dense(2)])
    params = (fnn.DenseParams(jnp.asarray([[1.0, -1.0], [0.5, 2.0]]), jnp.asarray([0.0, 1.0])),)
    x, y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([[0.0, 0.0], [1.0, 2.0], [1.0, 1.0]])
    pred = x @ np.asarray(params[0].w) + np.asarray(params[0].b)
    want = np.mean(np.mean((pred - y) ** 4, axis=-1))
    got = fnn.evaluate(model, params, x, y, loss=quartic)
    np.testing.assert_allclose(got["loss"], want, rtol=1e-12)
    np.testing.assert_allclose(got["mse"], np.mean((pred - y) ** 2), rtol=1e-12)
    weighted = fnn.evaluate(model, params, x, y, loss=quartic, sample_weight=np.array([1.0, 0.0, 1.0]))
    per = np.mean((pred - y) ** 4, axis=-1)
    np.testing.assert_allclose(weighted["loss"], np.sum(per[[0, 2]]) / 3, rtol=1e-12)  # Keras: mean of w·loss
    objective = fnn.objective(model, quartic)
    value, grads = run(jax.value_and_grad(objective), params, x, y)
    np.testing.assert_allclose(value, want, rtol=1e-12)
    dpred = 4 * (pred - y) ** 3 / y.size  # ∂/∂pred of the mean of (pred − y)⁴
    np.testing.assert_allclose(grads[0].w, x.T @ dpred, rtol=1e-12)
    record = losses.resolve(quartic, "linear", 2)
    assert record.name == "quartic" and record.grad is None and record == losses.from_callable(quartic)
    with pytest.raises(FnnValueError, match=r"loss 'quartic' is a callable without a hand-written gradient, which "
                                            r"fnn.backprop needs; differentiate with jax.grad"):
        fnn.backprop.gradients(model, quartic, params, x, y)
    with pytest.raises(FnnValueError, match=r"loss 'quartic' is a callable without a hand-written gradient"):
        losses.grad(record, jnp.zeros((3, 2)), jnp.zeros((3, 2)))


def total(pred, y):
    return jnp.sum((pred - y) ** 2)


def test_a_callable_loss_must_return_one_loss_per_sample():
    model = fnn.Sequential([fnn.Dense(2)])
    params = model.init(0, 2, dtype=jnp.float64)
    with pytest.raises(FnnValueError, match=r"loss 'total' returned shape \(\) for 3 samples; a callable "
                                            r"loss\(pred, y\) must return one loss per sample, shape \(3,\)"):
        fnn.objective(model, total)(params, np.ones((3, 2)), np.ones((3, 2)))


def test_fit_trains_with_a_callable_loss(tmp_path):
    x = np.random.default_rng(0).normal(size=(16, 2))
    y = x @ np.array([[1.0], [-2.0]])
    model = fnn.Sequential([fnn.Dense(1)])
    checkpoint = fnn.callbacks.ModelCheckpoint(tmp_path / "run.ckpt")
    result = fnn.fit(model, model.init(0, 2), x, y, loss=quartic, epochs=5, batch_size=16, key=0,
                     optimizer=fnn.optim.adam(0.05), callbacks=[checkpoint])
    history = np.asarray(result.history["loss"])
    assert history.shape == (5,) and np.isfinite(history).all() and history[-1] < history[0]
    assert set(result.history) >= {"loss", "mse"}
    # the checkpoint holds the model; the loss, a function, is not stored
    assert fnn.checkpoint.read_architecture(checkpoint.saved[-1]).loss is None


def test_loss_names_and_aliases():
    assert losses.canonical_name("MSE") == "mse"
    assert losses.canonical_name("bce") == "binary_cross_entropy"
    assert losses.canonical_name("categorical_crossentropy") == "categorical_cross_entropy"
    with pytest.raises(FnnValueError, match=r"unknown loss 'hinge'; choose one of \['mse', 'binary_cross_entropy', "
                                            r"'categorical_cross_entropy', 'mae', 'huber', "
                                            r"'binary_focal_cross_entropy'\]"):
        losses.resolve("hinge", "linear", 1)
    with pytest.raises(FnnTypeError, match=r"loss must be a name"):
        losses.canonical_name(losses.mse)


@pytest.mark.parametrize("spec, make_out, make_y", [
    (losses.LOSSES["mse"], lambda: rng().normal(size=(N, K)), lambda: rng(1).normal(size=(N, K))),
    (losses.unfused(losses.LOSSES["binary_cross_entropy"]), lambda: probabilities((N, K)), lambda: binary((N, K))),
    (losses.LOSSES["binary_cross_entropy"], lambda: rng().normal(size=(N, K)), lambda: binary((N, K))),
    (losses.unfused(losses.LOSSES["categorical_cross_entropy"]), softmax_rows, lambda: one_hot(labels())),
    (losses.LOSSES["categorical_cross_entropy"], lambda: rng().normal(size=(N, K)), lambda: one_hot(labels())),
    (losses.LOSSES["mae"], lambda: rng().normal(size=(N, K)), lambda: rng(1).normal(size=(N, K))),
    (losses.huber_loss(0.5), lambda: rng().normal(size=(N, K)), lambda: rng(1).normal(size=(N, K))),
    (losses.binary_focal_loss(2.0, 0.25), lambda: rng().normal(size=(N, K)), lambda: binary((N, K))),
], ids=lambda v: f"{v.name}-{v.from_logits}" if isinstance(v, losses.Loss) else "")
def test_per_sample_losses_average_to_the_loss(spec, make_out, make_y):
    out, y = make_out(), make_y()
    per_sample, value, grad = run(lambda o: (losses.per_sample(spec, o, y), losses.value(spec, o, y),
                                             losses.grad(spec, o, y)), out)
    assert per_sample.shape == (N,)
    np.testing.assert_allclose(per_sample.mean(), value, rtol=1e-13)
    assert grad.shape == out.shape


def test_a_traced_objective_makes_invalid_labels_nan():
    """Under jit labels cannot be checked: invalid ones turn the loss into NaN, never a plausible number."""
    soft3 = fnn.Sequential([fnn.Dense(3, activation="softmax")])
    p3 = soft3.init(jax.random.key(0), 2)
    x = np.ones((4, 2))
    ce = jax.jit(fnn.objective(soft3, "categorical_cross_entropy"))
    assert np.isfinite(float(ce(p3, x, np.array([0, 1, 2, 0]))))
    assert np.isnan(float(ce(p3, x, np.array([1, 2, 3, 1]))))  # labels 1..3 for 3 classes
    assert np.isnan(float(ce(p3, x, np.array([0.0, 1.5, 2.0, 0.0]))))
    assert np.isnan(float(ce(p3, x, np.array([[1.0, 0, 0], [0.5, 0.2, 0], [0, 1, 0], [0, 0, 1]]))))
    sig = fnn.Sequential([fnn.Dense(1, activation="sigmoid")])
    bce = jax.jit(fnn.objective(sig, "binary_cross_entropy"))
    p1 = sig.init(jax.random.key(0), 2)
    assert np.isfinite(float(bce(p1, x, np.array([0.0, 1.0, 0.3, 1.0]))))  # soft labels are valid
    assert np.isnan(float(bce(p1, x, np.array([0, 2, 1, 0]))))
