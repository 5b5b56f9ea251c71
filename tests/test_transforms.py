"""fnn's public pure functions under the caller's jax.jit, jax.vmap and jax.grad: each agrees with its
eager result (float64, 1e-12), and an invalid traced input gives NaN, never a plausible number.

Cheap by construction: tiny models, and each group of functions is traced into one program (a
module fixture), which every test of the group then reads. The sweeps over every loss and every
activation are slow-marked (make test-slow): their eager references run op by op."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import activations, losses, targets
from fnn.errors import FnnTypeError, FnnValueError

TOL = dict(rtol=1e-12, atol=1e-12)

SIGMOID = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
SOFTMAX = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(3, activation="softmax")])
MULTI = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(2, activation="sigmoid")])
X = jnp.asarray(np.random.default_rng(0).normal(size=(5, 2)))
X_NAN = X.at[1, 0].set(jnp.nan)
Y01 = jnp.array([0.0, 1.0, 1.0, 0.0, 1.0])
LABELS = jnp.array([0, 1, 2, 0, 1])


def _params(model, seed=0):
    return model.init(seed, 2, dtype=jnp.float64)


def _stack(*trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _reference(params, x, acts):
    """The forward pass written out without fnn: an independent check of what fnn computes."""
    a = x
    for (w, b), f in zip(params, acts):
        a = f(a @ w + b[None, :])
    return a


# --------------------------------------------------------------------------- predict and friends
@pytest.fixture(scope="module")
def traced_inference():
    """Every inference function under jit, under vmap (over rows and over a batch of params) and
    under grad, in one compiled program; returns (its results, the concrete inputs)."""
    p, ps, pm = _params(SIGMOID), _params(SOFTMAX), _params(MULTI)
    batch = _stack(p, _params(SIGMOID, 1))

    @jax.jit
    def run(p, ps, pm, batch, x, x_nan):
        return {
            "predict": fnn.predict(SIGMOID, p, x),
            "predict_nan": fnn.predict(SIGMOID, p, x_nan),
            "predict_rows": jax.vmap(lambda xi: fnn.predict(SIGMOID, p, xi))(x),
            "predict_params": jax.vmap(lambda q: fnn.predict(SIGMOID, q, x))(batch),
            "predict_grad": jax.grad(lambda q: jnp.sum(fnn.predict(SIGMOID, q, x)))(p),
            "classes": fnn.predict_classes(SIGMOID, p, x),
            "classes_softmax": fnn.predict_classes(SOFTMAX, ps, x),
            "classes_multi": fnn.predict_classes(MULTI, pm, x),
            "classes_nan": fnn.predict_classes(SIGMOID, p, x_nan),
            "classes_softmax_nan": fnn.predict_classes(SOFTMAX, ps, x_nan),
            "classes_multi_nan": fnn.predict_classes(MULTI, pm, x_nan),
            "classes_params": jax.vmap(lambda q: fnn.predict_classes(SIGMOID, q, x))(batch),
            "classes_rows": jax.vmap(lambda xi: fnn.predict_classes(SOFTMAX, ps, xi))(x),
            "proba": fnn.predict_proba(SOFTMAX, ps, x),
            "proba_rows": jax.vmap(lambda xi: fnn.predict_proba(SOFTMAX, ps, xi))(x),
            "proba_grad": jax.grad(lambda v: fnn.predict_proba(SOFTMAX, ps, v)[0, 1])(x),
            "layers": fnn.activations_of(SIGMOID, p, x),
            "layers_nan": fnn.activations_of(SIGMOID, p, x_nan),
            "layers_params": jax.vmap(lambda q: fnn.activations_of(SIGMOID, q, x))(batch),
            "layers_rows": jax.vmap(lambda xi: fnn.activations_of(SIGMOID, p, xi))(x),
            "layers_grad": jax.grad(lambda q: jnp.sum(fnn.activations_of(SIGMOID, q, x)[0]))(p),
            "apply": SIGMOID.apply(p, x),
            "apply_nan": SIGMOID.apply(p, x_nan),
            "apply_rows": jax.vmap(lambda xi: SIGMOID.apply(p, xi))(x),
            "apply_params": jax.vmap(lambda q: SIGMOID.apply(q, x))(batch),
            "apply_grad": jax.grad(lambda v: jnp.sum(SIGMOID.apply(p, v)))(x),
            "ref": _reference(p, x, [jnp.tanh, jax.nn.sigmoid]),
            "ref_grad": jax.grad(lambda q: jnp.sum(_reference(q, x, [jnp.tanh, jax.nn.sigmoid])))(p),
            "ref_x_grad": jax.grad(lambda v: jnp.sum(_reference(p, v, [jnp.tanh, jax.nn.sigmoid])))(x),
            "ref_proba_grad": jax.grad(lambda v: _reference(ps, v, [jnp.tanh, jax.nn.softmax])[0, 1])(x),
            "ref_layer_grad": jax.grad(lambda q: jnp.sum(jnp.tanh(x @ q[0].w + q[0].b[None, :])))(p),
        }

    inputs = {"p": p, "ps": ps, "pm": pm, "batch": batch}
    return run(p, ps, pm, batch, X, X_NAN), inputs


def _eager_params(batch, i):
    return jax.tree.map(lambda leaf: leaf[i], batch)


def test_predict_under_jit_vmap_grad(traced_inference):
    out, inp = traced_inference
    p = inp["p"]
    eager = fnn.predict(SIGMOID, p, X)
    np.testing.assert_allclose(out["predict"], eager, **TOL)
    np.testing.assert_allclose(out["predict"], out["ref"], **TOL)
    np.testing.assert_allclose(out["predict_rows"], eager, **TOL)  # each row a single (n_in,) example
    for i in range(2):
        want = fnn.predict(SIGMOID, _eager_params(inp["batch"], i), X)
        np.testing.assert_allclose(out["predict_params"][i], want, **TOL)
    for got, ref in zip(jax.tree.leaves(out["predict_grad"]), jax.tree.leaves(out["ref_grad"])):
        np.testing.assert_allclose(got, ref, **TOL)


def test_predict_under_jit_gives_nan_for_a_nan_row(traced_inference):
    out, inp = traced_inference
    got = np.asarray(out["predict_nan"])
    assert np.isnan(got[1]).all()
    np.testing.assert_allclose(np.delete(got, 1, axis=0), np.delete(np.asarray(out["predict"]), 1, axis=0), **TOL)
    with pytest.raises(FnnValueError, match="non-finite"):  # eager: refused, naming the row
        fnn.predict(SIGMOID, inp["p"], X_NAN)
    with pytest.raises(FnnValueError, match="non-finite"):  # a concrete x is still read under grad of params
        jax.grad(lambda q: jnp.sum(fnn.predict(SIGMOID, q, X_NAN)))(inp["p"])


def test_predict_classes_under_jit_vmap(traced_inference):
    out, inp = traced_inference
    cases = (("classes", SIGMOID, "p"), ("classes_softmax", SOFTMAX, "ps"), ("classes_multi", MULTI, "pm"))
    for key, model, p in cases:
        eager = fnn.predict_classes(model, inp[p], X)
        np.testing.assert_array_equal(out[key], eager)
        assert out[key].dtype == eager.dtype and out[key].shape == eager.shape
    for i in range(2):
        np.testing.assert_array_equal(
            out["classes_params"][i], fnn.predict_classes(SIGMOID, _eager_params(inp["batch"], i), X)
        )
    np.testing.assert_array_equal(out["classes_rows"], fnn.predict_classes(SOFTMAX, inp["ps"], X))


def test_predict_classes_under_jit_gives_minus_one_for_a_nan_row(traced_inference):
    out, _ = traced_inference
    for key in ("classes", "classes_softmax", "classes_multi"):
        got, clean = np.asarray(out[key + "_nan"]), np.asarray(out[key])
        assert (got[1] == -1).all(), key  # no class, never a plausible label
        np.testing.assert_array_equal(np.delete(got, 1, axis=0), np.delete(clean, 1, axis=0))


def test_predict_proba_under_jit_vmap_grad(traced_inference):
    out, inp = traced_inference
    eager = fnn.predict_proba(SOFTMAX, inp["ps"], X)
    np.testing.assert_allclose(out["proba"], eager, **TOL)
    np.testing.assert_allclose(out["proba_rows"], eager, **TOL)
    np.testing.assert_allclose(out["proba_grad"], out["ref_proba_grad"], **TOL)


def test_activations_of_under_jit_vmap_grad(traced_inference):
    out, inp = traced_inference
    p = inp["p"]
    eager = fnn.activations_of(SIGMOID, p, X)
    for got_all in (out["layers"], out["layers_rows"]):
        for got, ref in zip(got_all, eager, strict=True):
            np.testing.assert_allclose(got, ref, **TOL)
    for i in range(2):
        for got, ref in zip(out["layers_params"], fnn.activations_of(SIGMOID, _eager_params(inp["batch"], i), X)):
            np.testing.assert_allclose(got[i], ref, **TOL)
    for got, ref in zip(jax.tree.leaves(out["layers_grad"]), jax.tree.leaves(out["ref_layer_grad"])):
        np.testing.assert_allclose(got, ref, **TOL)
    first, last = (np.asarray(a) for a in out["layers_nan"])
    assert np.isnan(first[1]).all() and np.isnan(last[1]).all() and np.isfinite(np.delete(last, 1, axis=0)).all()


def test_apply_under_jit_vmap_grad(traced_inference):
    out, inp = traced_inference
    p = inp["p"]
    eager = fnn.predict(SIGMOID, p, X)  # apply is predict's forward pass, without the chunks
    np.testing.assert_allclose(out["apply"], eager, **TOL)
    np.testing.assert_allclose(out["apply_rows"], eager, **TOL)
    for i in range(2):
        want = fnn.predict(SIGMOID, _eager_params(inp["batch"], i), X)
        np.testing.assert_allclose(out["apply_params"][i], want, **TOL)
    np.testing.assert_allclose(out["apply_grad"], out["ref_x_grad"], **TOL)
    assert np.isnan(np.asarray(out["apply_nan"])[1]).all()


# --------------------------------------------------------------------------- objective and evaluate
def _bce_reference(q, x, y):
    """Binary cross-entropy of the sigmoid output, written out."""
    prob = _reference(q, x, [jnp.tanh, jax.nn.sigmoid])[:, 0]
    return -jnp.mean(y * jnp.log(prob) + (1 - y) * jnp.log1p(-prob))


def _cce_reference(q, x, labels):
    log_p = jnp.log(_reference(q, x, [jnp.tanh, jax.nn.softmax]))
    return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=1))


@pytest.fixture(scope="module")
def traced_objective():
    p, ps = _params(SIGMOID), _params(SOFTMAX)
    bce, cce = fnn.objective(SIGMOID, "binary_cross_entropy"), fnn.objective(SOFTMAX, "categorical_cross_entropy")
    batch = _stack(p, _params(SIGMOID, 1))

    @jax.jit
    def run(p, ps, batch, x, x_nan, y, labels):
        return {
            "bce": bce(p, x, y),
            "bce_grad": jax.grad(bce)(p, x, y),
            "bce_params": jax.vmap(bce, in_axes=(0, None, None))(batch, x, y),
            "bce_rows": jax.vmap(lambda xi, yi: bce(p, xi[None], yi[None]))(x, y),
            "cce": cce(ps, x, labels),
            "cce_grad": jax.grad(cce)(ps, x, labels),
            "nan_x": bce(p, x_nan, y),
            "bad_binary": bce(p, x, y.at[0].set(2.0)),
            "bad_label": cce(ps, x, labels.at[0].set(7)),
            "bad_onehot": cce(ps, x, jax.nn.one_hot(labels, 3).at[0, 0].set(0.5)),
            "ref_bce_grad": jax.grad(_bce_reference)(p, x, y),
            "ref_cce_grad": jax.grad(_cce_reference)(ps, x, labels),
        }

    return run(p, ps, batch, X, X_NAN, Y01, LABELS), (p, ps, batch)


def test_objective_under_jit_vmap_grad(traced_objective):
    out, (p, ps, batch) = traced_objective
    # the eager reference: evaluate's loss, the mean over the rows computed on the host path
    np.testing.assert_allclose(out["bce"], fnn.evaluate(SIGMOID, p, X, Y01)["loss"], **TOL)
    np.testing.assert_allclose(out["cce"], fnn.evaluate(SOFTMAX, ps, X, LABELS)["loss"], **TOL)
    for i in range(2):
        want = fnn.evaluate(SIGMOID, _eager_params(batch, i), X, Y01)["loss"]
        np.testing.assert_allclose(out["bce_params"][i], want, **TOL)
    prob = np.asarray(fnn.predict(SIGMOID, p, X))[:, 0]  # one row's loss each, from the eager outputs
    rows = -(Y01 * np.log(prob) + (1 - Y01) * np.log1p(-prob))
    np.testing.assert_allclose(out["bce_rows"], rows, rtol=1e-10, atol=1e-12)
    for got, want in zip(jax.tree.leaves(out["bce_grad"]), jax.tree.leaves(out["ref_bce_grad"])):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    for got, want in zip(jax.tree.leaves(out["cce_grad"]), jax.tree.leaves(out["ref_cce_grad"])):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_objective_under_jit_gives_nan_for_invalid_inputs(traced_objective):
    out, _ = traced_objective
    for key in ("nan_x", "bad_binary", "bad_label", "bad_onehot"):
        assert np.isnan(out[key]), key


@pytest.mark.parametrize("transform", ["jit", "vmap", "grad"])
def test_evaluate_under_a_transformation_names_the_fix(transform):
    p = _params(SIGMOID)

    def loss(q):
        return fnn.evaluate(SIGMOID, q, X, Y01)["loss"]

    f = {"jit": jax.jit(loss), "grad": jax.grad(loss), "vmap": jax.vmap(loss)}[transform]
    arg = _stack(p, p) if transform == "vmap" else p
    with pytest.raises(FnnTypeError, match=r"fnn\.objective\(model, loss\)"):
        f(arg)
    with pytest.raises(FnnTypeError, match=r"cannot run under jax\.jit"):  # traced data too
        jax.jit(lambda v: fnn.evaluate(SIGMOID, p, v, Y01))(X)


# --------------------------------------------------------------------------- losses
def _l4(pred, y):
    return jnp.mean((pred - y) ** 4, axis=-1)


def _loss_cases():
    """(id, f, kind, form, on probabilities?) for every public loss function and every record's."""
    cases, seen = [], []
    for name in losses.__all__:
        f = getattr(losses, name)
        if not callable(f) or isinstance(f, type) or name in ("huber_loss", "binary_focal_loss", "from_callable"):
            continue
        if name in ("canonical_name", "grad", "per_sample", "prepare_targets", "resolve", "unfused", "value"):
            continue
        if name == "warn_if_one_class_per_row":
            continue
        form = "grad" if name.endswith("_grad") else "per_sample" if name.endswith("_per_sample") else "value"
        base = name.removesuffix("_grad").removesuffix("_per_sample")
        kind = {"mse": "real", "mae": "real", "huber": "real"}.get(base)
        kind = kind or ("categorical" if ("categorical" in base or "softmax" in base) else "binary")
        cases.append((name, f, kind, form, base in ("binary_cross_entropy", "categorical_cross_entropy")))
        seen.append(f)
    records = dict(losses.LOSSES, l4=losses.from_callable(_l4), huber_2=losses.huber_loss(2.0))
    for name, rec in records.items():
        for form in ("value", "grad", "per_sample"):
            f = getattr(rec, form)
            if f is None or any(f == g for g in seen):
                continue
            seen.append(f)
            cases.append((f"LOSSES[{name}].{form}", f, rec.targets, form, False))
    return cases


CASES = _loss_cases()


def _loss_inputs(kind, form, probs):
    rng = np.random.default_rng(1)
    k = 3 if kind == "categorical" else 2
    pred = rng.uniform(0.1, 0.9, size=(4, k)) if probs else rng.normal(size=(4, k))
    if kind == "categorical":
        y = jnp.array([0, 2, 1, 2])
        if form == "per_sample":
            y = targets.prepare(y, kind, k, jnp.float64)  # per-sample forms take prepared targets
    else:
        y = jnp.asarray(rng.integers(0, 2, size=(4, k)), jnp.float64) if kind == "binary" else rng.normal(size=(4, k))
    return jnp.asarray(pred), jnp.asarray(y)


@pytest.fixture(scope="module")
def traced_losses():
    """Every case under jit, vmap (over a batch of predictions) and grad, in one program: the value,
    the batch [pred, pred with a NaN, pred ± h d], the gradient of Σ r·f along d, and, for the forms on
    probabilities, a value outside [0, 1]."""
    inputs = [_loss_inputs(kind, form, probs) for _, _, kind, form, probs in CASES]
    h = 1e-6

    @jax.jit
    def run(inputs):
        results = []
        for (_, f, *_), (pred, y) in zip(CASES, inputs):
            d = jnp.sin(jnp.arange(pred.size, dtype=pred.dtype)).reshape(pred.shape)
            r = 1 + jnp.cos(jnp.arange(jnp.size(f(pred, y)), dtype=pred.dtype)).reshape(jnp.shape(f(pred, y)))
            batch = jnp.stack([pred, pred.at[1, 0].set(jnp.nan), pred + h * d, pred - h * d, pred.at[2, 1].set(1.5)])
            out = jax.vmap(f, in_axes=(0, None))(batch, y)
            g = jax.grad(lambda q, f=f, y=y, r=r: jnp.sum(r * f(q, y)))(pred)
            central = (jnp.sum(r * out[2]) - jnp.sum(r * out[3])) / (2 * h)
            results.append(
                {"value": f(pred, y), "batch": out, "slope": jnp.sum(g * d), "central": central, "g": g, "r": r}
            )
        return results

    return dict(zip([c[0] for c in CASES], zip(run(inputs), inputs)))


@pytest.mark.slow  # every loss's eager reference runs op by op: about 10 s in all
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_loss_under_jit_vmap_grad(case, traced_losses):
    name, f, _, form, probs = case
    out, (pred, y) = traced_losses[name]
    eager = f(pred, y)
    np.testing.assert_allclose(out["value"], eager, **TOL)
    np.testing.assert_allclose(out["batch"][0], eager, **TOL)  # vmap over predictions
    np.testing.assert_allclose(out["slope"], out["central"], rtol=1e-6, atol=1e-8)  # grad along d
    assert np.isnan(np.asarray(out["batch"][1])).any()  # a NaN prediction: NaN, never plausible
    if probs:  # a probability of 1.5 under jit: NaN (eagerly it is refused)
        assert np.isnan(np.asarray(out["batch"][4])).any()
    if form == "value" and "LOSSES" not in name and name + "_grad" in losses.__all__:
        hand = getattr(losses, name + "_grad")(pred, y)
        np.testing.assert_allclose(out["g"], out["r"] * hand, **TOL)  # jax.grad = the hand-written gradient


def test_loss_cases_cover_every_loss():
    names = {c[0] for c in CASES}
    assert {"mse", "mse_grad", "mse_per_sample", "huber", "softmax_cross_entropy_per_sample"} <= names
    assert {"LOSSES[huber].value", "LOSSES[l4].value", "LOSSES[l4].per_sample", "LOSSES[huber_2].grad"} <= names
    assert len(CASES) >= 30


# --------------------------------------------------------------------------- activations
NAMES = sorted(activations.ACTIVATIONS)
Z = jnp.asarray(np.random.default_rng(2).normal(scale=2.0, size=(3, 4)))


@pytest.fixture(scope="module")
def traced_activations():
    r = 1 + jnp.cos(jnp.arange(Z.size, dtype=Z.dtype)).reshape(Z.shape)

    @jax.jit
    def run(z):
        results = {}
        for name in NAMES:
            a = activations.get(name)
            z_nan = z.at[0, 1].set(jnp.nan)
            results[name] = {
                "fn": a.fn(z),
                "deriv": a.deriv(z),
                "rows": jax.vmap(a.fn)(z),
                "deriv_rows": jax.vmap(a.deriv)(z),
                "grad": jax.grad(lambda v, a=a: jnp.sum(r * a.fn(v)))(z),
                "vjp": a.vjp(z, r),
                "nan": a.fn(z_nan),
                "deriv_nan": a.deriv(z_nan),
            }
        return results

    return run(Z), r


@pytest.mark.slow  # as the losses: about 5 s of eager references
@pytest.mark.parametrize("name", NAMES)
def test_activation_under_jit_vmap_grad(name, traced_activations):
    out, r = traced_activations
    out, a = out[name], activations.get(name)
    np.testing.assert_allclose(out["fn"], a.fn(Z), **TOL)
    np.testing.assert_allclose(out["rows"], a.fn(Z), **TOL)
    np.testing.assert_allclose(out["deriv"], a.deriv(Z), **TOL)
    np.testing.assert_allclose(out["deriv_rows"], a.deriv(Z), **TOL)
    np.testing.assert_allclose(out["grad"], a.vjp(Z, r), rtol=1e-12, atol=1e-12)  # jax.grad = the hand-written one
    np.testing.assert_allclose(out["vjp"], a.vjp(Z, r), **TOL)
    assert np.isnan(np.asarray(out["nan"])[0, 1]) and np.isnan(np.asarray(out["deriv_nan"])).any()


def test_a_compiled_fnn_function_inside_the_users_jit_keeps_fnns_compile_options():
    # JAX refuses compiler_options on an inner jit; that must not read as an XLA without the option,
    # which would switch every later fnn program to other options (other rounding, slower compiles)
    from fnn import _compile

    params = _params(SIGMOID)
    inner = jax.jit(lambda p, x: fnn.activations_of(SIGMOID, p, x))(params, X)
    for a, b in zip(inner, fnn.activations_of(SIGMOID, params, X)):
        np.testing.assert_allclose(a, b, **TOL)
    assert _compile._refused == [False]
