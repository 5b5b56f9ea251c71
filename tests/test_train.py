"""fit / evaluate / predict: learning, compiled once, every sample counted, stopping rules, bad inputs."""
import re
import sys
import warnings

import _compiles
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import callbacks, engine, optim

SEED_NET = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(6, activation="relu"),
                           fnn.Dense(6, activation="relu"), fnn.Dense(4, activation="relu"),
                           fnn.Dense(1, activation="sigmoid")])
SMALL = fnn.Sequential([fnn.Dense(8, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
MOMENTUM = optim.momentum(0.1, 0.9)


@pytest.fixture(scope="module")
def circles():
    x, y = fnn.data.circles(jax.random.key(0), 400, noise=0.05)
    return np.asarray(x), np.asarray(y)


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.RandomState(0)
    x = rng.randn(10, 3).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    return x, y


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_circles_learns_quickly(circles):
    x, y = circles
    params = SEED_NET.init(jax.random.key(0), input_dim=2)
    r = fnn.fit(SEED_NET, params, x[:300], y[:300], loss="binary_cross_entropy", optimizer=MOMENTUM,
                epochs=120, batch_size=32, key=jax.random.key(1), validation_data=(x[300:], y[300:]))
    assert r.stop_reason == "epochs" and r.epochs_run == 120
    test = fnn.evaluate(SEED_NET, r.params, x[300:], y[300:], loss="binary_cross_entropy")
    assert test["accuracy"] >= 0.97, test
    assert r.history["loss"][-1] < 0.2 * r.history["loss"][0]
    assert set(r.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 120 for v in r.history.values())
    np.testing.assert_allclose(r.history["val_loss"][-1], test["loss"], rtol=1e-5)


WIDE = fnn.Sequential([fnn.Dense(80, activation="tanh"), fnn.Dense(60, activation="relu"),
                       fnn.Dense(1, activation="sigmoid")])  # > engine.FLAT_LIMIT params: trained as a tree


def require_checkpoints(folder):
    """Skip unless fnn.save/fnn.load round-trip the leaves a TrainState holds (0-d int and float
    arrays, inf, a typed PRNG key): the checkpoint module is being rewritten."""
    probe = {"count": np.asarray(3, np.int32), "best": np.asarray(np.inf), "key": jax.random.key(1)}
    try:
        fnn.save(folder / "probe.fnn", probe, allow_non_finite=True)
        fnn.load(folder / "probe.fnn", like=probe)
    except fnn.FnnError as e:
        pytest.skip(f"fnn.save/fnn.load do not round-trip a TrainState's leaves yet: {e}")


def n_params(params) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("make", [lambda: optim.sgd(0.5), lambda: optim.adam(0.05)], ids=["sgd", "adam"])
@pytest.mark.parametrize("model", [SMALL, WIDE], ids=["flat", "tree"])
def test_every_sample_counts_last_partial_batch(tiny, model, make):
    """Two unshuffled epochs over batches [0:4], [4:8], [8:10] equal the steps done by hand with the
    optimizer's own update on the tree, for a network small enough to train as one flat vector and
    for one trained as its tree."""
    x, y = tiny
    params = model.init(jax.random.key(3), input_dim=3)
    assert (n_params(params) <= engine.FLAT_LIMIT) == (model is SMALL)
    opt = make()
    r = fnn.fit(model, params, x, y, optimizer=opt, epochs=2, batch_size=4, shuffle=False)
    loss = fnn.objective(model, "binary_cross_entropy")

    @jax.jit
    def step(p, state, xb, yb):
        value, g = jax.value_and_grad(loss)(p, xb, yb)
        updates, state = opt.update(g, state, p)
        return optim.apply_updates(p, updates), state, value

    p, state = params, opt.init(params)
    for epoch in range(2):
        losses = []
        for lo, hi in ((0, 4), (4, 8), (8, 10)):
            p, state, value = step(p, state, x[lo:hi], y[lo:hi])
            losses.append(float(value) * (hi - lo))
        np.testing.assert_allclose(r.history["loss"][epoch], sum(losses) / 10, rtol=1e-5)
    chex.assert_trees_all_close(r.params, p, rtol=1e-5, atol=1e-6)


def test_compiles_once_per_fit_and_reuses_program(circles):
    x, y = circles
    params = SEED_NET.init(jax.random.key(0), input_dim=2)
    fnn.fit(SEED_NET, params, x, y, optimizer=optim.adam(0.01), epochs=7, batch_size=50)
    with _compiles.counting() as counts:
        fnn.fit(SEED_NET, params, x + 0.01, y, optimizer=optim.adam(0.02), epochs=6, batch_size=50,
                key=jax.random.key(5))
    assert counts == {"trace": 0, "compile": 0}  # same structure, other numbers: nothing traced or compiled


HOST_OPS = re.compile(r"custom_call @\w*callback|stablehlo\.(infeed|outfeed|send|recv)\b")


def test_no_host_transfer_inside_the_run(circles):
    """The compiled run holds no host callback, infeed/outfeed or send/recv, whatever callbacks run on
    the host: progress and host callbacks sit between compiled calls (verbose compiles nothing new:
    see test_trainer.py)."""
    x, y = circles
    params = SEED_NET.init(jax.random.key(0), input_dim=2)
    trainer = fnn.Trainer(SEED_NET, optimizer=MOMENTUM, batch_size=64, callbacks=[
        callbacks.EarlyStopping(monitor="loss", patience=3), callbacks.CSVLogger("unused.csv"),
        callbacks.LambdaCallback(on_epoch_end=print)])
    state = trainer.init(params, key=0)
    data = trainer.data(state, x, y)
    program = jax.jit(engine.run, static_argnums=0).lower(trainer.spec_for(data), state, data, np.int32(4),
                                                          np.int32(100)).as_text()
    assert not HOST_OPS.findall(program)
    with_callback = jax.jit(lambda a: jax.debug.callback(print, a) or a).lower(1.0).as_text()
    assert HOST_OPS.findall(with_callback)  # the check above would see one


def test_input_params_untouched_and_reproducible(circles):
    x, y = circles
    params = SEED_NET.init(jax.random.key(0), input_dim=2)
    copy = jax.tree.map(np.array, params)
    a = fnn.fit(SEED_NET, params, x, y, optimizer=MOMENTUM, epochs=5, key=jax.random.key(7))
    b = fnn.fit(SEED_NET, params, x, y, optimizer=MOMENTUM, epochs=5, key=jax.random.key(7))
    c = fnn.fit(SEED_NET, params, x, y, optimizer=MOMENTUM, epochs=5, key=jax.random.key(8))
    chex.assert_trees_all_equal(jax.tree.map(np.asarray, params), copy)
    chex.assert_trees_all_equal(a.params, b.params)
    assert a.history == b.history
    assert a.history["loss"] != c.history["loss"]


def test_numpy_and_jax_inputs_agree(circles):
    x, y = circles
    params = SEED_NET.init(jax.random.key(0), input_dim=2)
    a = fnn.fit(SEED_NET, params, x, y, optimizer=MOMENTUM, epochs=3)
    b = fnn.fit(SEED_NET, params, jnp.asarray(x), jnp.asarray(y), optimizer=MOMENTUM, epochs=3)
    chex.assert_trees_all_equal(a.params, b.params)


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_target_loss_stops(circles):
    x, y = circles
    params = SEED_NET.init(jax.random.key(0), input_dim=2)
    r = fnn.fit(SEED_NET, params, x, y, optimizer=MOMENTUM, epochs=200, callbacks=[callbacks.TargetLoss(0.3)])
    assert r.stop_reason == "target_loss"
    assert r.history["loss"][-1] <= 0.3 and all(v > 0.3 for v in r.history["loss"][:-1])
    assert r.epochs_run == len(r.history["loss"]) < 200


def test_early_stopping_restores_best(circles):
    x, y = circles
    params = SMALL.init(jax.random.key(0), input_dim=2)
    r = fnn.fit(SMALL, params, x[:60], y[:60], optimizer=optim.adam(0.05), epochs=400, batch_size=8,
                validation_data=(x[300:], y[300:]),
                callbacks=[callbacks.EarlyStopping(patience=5, restore_best_weights=True)])
    assert r.stop_reason == "early_stopping"
    val = r.history["val_loss"]
    assert r.best_epoch == int(np.argmin(val)) and r.epochs_run == r.best_epoch + 6
    best = fnn.evaluate(SMALL, r.params, x[300:], y[300:])["loss"]
    np.testing.assert_allclose(best, min(val), rtol=1e-5)


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
@pytest.mark.parametrize("width", [8, 80], ids=["flat", "tree"])
def test_divergence_returns_last_finite_params(circles, width):
    x, y = circles
    params = SEED_NET.init(jax.random.key(0), input_dim=2)
    reg = fnn.Sequential([fnn.Dense(width, activation="relu"), fnn.Dense(width, activation="relu"), fnn.Dense(1)])
    rp = reg.init(jax.random.key(0), input_dim=2)
    with pytest.warns(RuntimeWarning, match=r"epoch \d+.*smaller learning rate"):
        r = fnn.fit(reg, rp, x, 1e3 * y, optimizer=optim.sgd(10.0), epochs=50)
    assert r.stop_reason == "non_finite_loss"
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(r.params))
    assert r.divergence is not None and r.divergence.epoch == r.epochs_run - 1
    assert r.divergence.leaf.startswith(("[", "update")) or r.divergence.leaf == "loss"
    # The result is exactly where training stood when the epoch with the lowest finite loss began:
    # rerunning up to that epoch agrees.
    best = int(r.state.callbacks[0].best_epoch)  # TerminateOnNaN's, the one fit adds
    assert best < r.epochs_run
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = fnn.fit(reg, rp, x, 1e3 * y, optimizer=optim.sgd(10.0), epochs=max(best, 0))
    chex.assert_trees_all_equal(again.params, r.params)
    del params


def test_skips_bad_steps_when_asked(tiny):
    x, y = tiny
    xs = np.concatenate([x, x]).astype(np.float32)
    ys = np.concatenate([y, y]).astype(np.float32)
    reg = fnn.Sequential([fnn.Dense(1)])
    p = reg.init(jax.random.key(0), input_dim=3)
    big = np.float32(3e38)
    xs[0, 0] = big  # one sample makes its batch's loss overflow to inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stop = fnn.fit(reg, p, xs, ys, optimizer=optim.sgd(0.01), epochs=3, batch_size=5, shuffle=False)
        skip = fnn.fit(reg, p, xs, ys, optimizer=optim.sgd(0.01), epochs=3, batch_size=5, shuffle=False,
                       callbacks=[callbacks.TerminateOnNaN(max_bad_steps=1)])
    assert stop.stop_reason == "non_finite_loss" and stop.divergence.step == 0
    assert skip.stop_reason == "epochs" and skip.epochs_run == 3
    assert skip.rejected_steps == 3 and skip.first_rejected == (0, 0)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(skip.params))


def test_validation_split_and_regression_metric():
    x = np.linspace(-1, 1, 50, dtype=np.float32)[:, None]
    y = 2 * x + 1
    model = fnn.Sequential([fnn.Dense(1)])
    r = fnn.fit(model, model.init(jax.random.key(0), 1), x, y, optimizer=optim.sgd(0.1), epochs=40,
                validation_split=0.2, batch_size=8)
    assert set(r.history) == {"loss", "mse", "val_loss", "val_mse"}
    assert r.history["val_mse"][-1] < 1e-2
    ev = fnn.evaluate(model, r.params, x, y)
    assert set(ev) == {"loss", "mse"}
    with pytest.raises(ValueError, match="not both"):
        fnn.fit(model, r.params, x, y, validation_data=(x, y), validation_split=0.2)
    with pytest.raises(ValueError, match="validation_split"):
        fnn.fit(model, r.params, x, y, validation_split=1.0)


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_categorical_fit_with_labels_and_one_hot():
    x, y = fnn.data.spiral(jax.random.key(0), 150, 3)
    model = fnn.Sequential([fnn.Dense(16, activation="tanh"), fnn.Dense(3, activation="softmax")])
    p = model.init(jax.random.key(1), 2)
    a = fnn.fit(model, p, x, y, optimizer=optim.adam(0.02), epochs=20)
    b = fnn.fit(model, p, x, jax.nn.one_hot(y, 3), optimizer=optim.adam(0.02), epochs=20)
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-5, atol=1e-6)
    assert a.history["accuracy"][-1] > 0.5
    classes = fnn.predict_classes(model, a.params, x)
    assert classes.shape == (150,) and classes.dtype.kind == "i"


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_edge_cases_train(tiny):
    x, y = tiny
    p = SMALL.init(jax.random.key(0), 3)
    one = fnn.fit(SMALL, p, x[:1], y[:1], optimizer=MOMENTUM, epochs=2)
    assert one.epochs_run == 2
    big = fnn.fit(SMALL, p, x, y, optimizer=MOMENTUM, epochs=2, batch_size=1000)
    assert np.isfinite(big.history["loss"]).all()
    zero = fnn.fit(SMALL, p, x, y, epochs=0)
    assert zero.epochs_run == 0 and zero.history["loss"] == []
    chex.assert_trees_all_equal(zero.params, p)
    single_class = fnn.fit(SMALL, p, x, np.ones(10), optimizer=MOMENTUM, epochs=2)
    assert single_class.history["accuracy"][-1] >= 0.0
    one_feature = fnn.Sequential([fnn.Dense(2, activation="relu"), fnn.Dense(1)])
    r = fnn.fit(one_feature, one_feature.init(jax.random.key(0), 1), x[:, :1], y, epochs=2)
    assert r.epochs_run == 2


COMPILED = re.compile(r"compiled in \d+\.\d\d s")


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_verbose_output(tiny, capsys, monkeypatch):
    x, y = tiny
    p = SMALL.init(jax.random.key(0), 3)
    fnn.fit(SMALL, p, x, y, epochs=3, verbose=0)  # compiled here: the runs below print no compile time
    assert capsys.readouterr().out == ""
    fnn.fit(SMALL, p, x, y, epochs=3, verbose=2)
    out = capsys.readouterr().out
    assert out.count("epoch ") == 3 and "epoch 3/3" in out and "accuracy" in out and "compiled" not in out
    fnn.fit(SMALL, p, x, y, epochs=3, verbose=1)  # not a terminal: one line per epoch, the loss first
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("epoch 3/3 - loss ") and "- accuracy " in lines[-1]
    assert lines[-1].endswith("/epoch")
    fnn.fit(SMALL, p, x, y, epochs=1000, verbose=1)  # long runs: the first epoch, then every 10th
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 101 and lines[0].startswith("epoch 1/1000 ") and lines[1].startswith("epoch 10/1000 ")
    assert lines[-1].startswith("epoch 1000/1000 ")
    fnn.fit(SMALL, p, x, y, epochs=1000, verbose=2)
    assert len(capsys.readouterr().out.splitlines()) == 1000
    fnn.fit(SMALL, p, x, y, epochs=3, verbose=2, batch_size=3)  # a new program: its compile time first
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and COMPILED.fullmatch(lines[0]) and lines[1].startswith("epoch 1/3 - loss ")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # a terminal: one progress bar, redrawn
    fnn.fit(SMALL, p, x, y, epochs=3, verbose=1)
    out = capsys.readouterr().out
    assert "\r" in out and "epoch 3/3 [" in out and out.count("\n") == 1 and "compiled" not in out
    fnn.fit(SMALL, p, x, y, epochs=3, verbose="auto")  # "auto" on a terminal: the bar
    assert "epoch 3/3 [" in capsys.readouterr().out
    fnn.fit(SMALL, p, x, y, epochs=3, verbose=1, batch_size=2)
    out = capsys.readouterr().out
    assert out.startswith("compiling…\r") and COMPILED.search(out) and out.count("\n") == 2
    fnn.fit(SMALL, p, x, y, epochs=3, verbose=0)
    assert capsys.readouterr().out == ""


def test_predict_and_classes(tiny):
    x, _ = tiny
    p = SMALL.init(jax.random.key(0), 3)
    probs = fnn.predict(SMALL, p, x)
    assert probs.shape == (10, 1) and bool(jnp.all((probs > 0) & (probs < 1)))
    assert fnn.predict(SMALL, p, x[0]).shape == (1,)
    np.testing.assert_array_equal(fnn.predict_classes(SMALL, p, x), (np.asarray(probs)[:, 0] > 0.5).astype(int))
    reg = fnn.Sequential([fnn.Dense(1)])
    with pytest.raises(ValueError, match="sigmoid or softmax"):
        fnn.predict_classes(reg, reg.init(jax.random.key(0), 3), x)


def _bad_fit_cases(x, y, p):
    nan_x = x.copy()
    nan_x[3, 1] = np.nan
    inf_y = y.copy()
    inf_y[2] = np.inf
    return [
        (dict(x=nan_x), "row 3"),
        (dict(y=inf_y), "row 2"),
        (dict(x=x[:, 0]), "2-d"),
        (dict(x=x[None]), "2-d"),
        (dict(x=x[:0], y=y[:0]), "0 samples"),
        (dict(x=x[:, :2]), "features"),
        (dict(y=y[:7]), "numbers of samples"),
        (dict(y=2 * y), r"labels in \[0, 1\]"),
        (dict(y=np.stack([y, y], 1)), "columns"),
        (dict(x=x.astype(str)), "dtype"),
        (dict(x=x.astype(np.complex64)), "complex"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(epochs=-1), "epochs"),
        (dict(params=p[:1]), "layer"),
        (dict(params=(p[0], p[1]._replace(w=p[1].w[:4]))), r"params\[1\].w.*\(4, 1\).*\(8, 1\)"),
        (dict(optimizer="adadelta"), "unknown optimizer"),
        (dict(optimizer=3), "optimizer"),
        (dict(loss="hinge"), "unknown loss"),
        (dict(loss="categorical_cross_entropy"), "softmax"),
        (dict(key="3"), "key"),
        (dict(initial_state=(1, 2)), "initial_state"),
        (dict(sample_weight=np.ones(3)), "sample_weight"),
        (dict(sample_weight=-np.ones(10)), "negative"),
        (dict(class_weight={5: 1.0}), "class_weight key 5"),
        (dict(class_weight=[1.0]), "class_weight must be"),
        (dict(callbacks=[callbacks.EarlyStopping()]), "no validation data: pass validation_data="),
        (dict(callbacks=[callbacks.ReduceLROnPlateau(monitor="loss")],
              optimizer=optim.adam(optim.cosine_decay(0.1, 9))), "schedule"),
        (dict(callbacks=[object()]), r"callbacks\[0\]"),
        (dict(epochs=2.5), "epochs"),
        (dict(shuffle=1), "shuffle"),
        (dict(validation_data=(x[:, :2], y)), "features"),
        (dict(validation_data=x), "pair"),
        (dict(verbose=-1), "verbose"),
        (dict(verbose="loud"), "verbose"),
    ]


def test_fit_bad_inputs_raise_before_compiling(tiny):
    x, y = tiny
    p = SMALL.init(jax.random.key(0), 3)
    cases = _bad_fit_cases(x, y, p)  # made first: building them slices arrays
    with _compiles.counting() as counts:
        for override, match in cases:
            kwargs = dict(x=x, y=y, params=p)
            kwargs.update(override)
            args = (kwargs.pop("params"), kwargs.pop("x"), kwargs.pop("y"))
            with pytest.raises((ValueError, TypeError), match=match) as info:
                fnn.fit(SMALL, *args, epochs=kwargs.pop("epochs", 1), **kwargs)
            assert isinstance(info.value, fnn.FnnError), (override, info.value)
    assert counts["compile"] == 0


def test_categorical_bad_labels():
    model = fnn.Sequential([fnn.Dense(3, activation="softmax")])
    p = model.init(jax.random.key(0), 2)
    x = np.ones((4, 2), np.float32)
    with pytest.raises(ValueError, match="out of range"):
        fnn.fit(model, p, x, np.array([0, 1, 3, 0]), epochs=1)
    with pytest.raises(ValueError, match="out of range"):
        fnn.fit(model, p, x, np.array([0, -1, 2, 0]), epochs=1)
    with pytest.raises(ValueError, match="width"):
        fnn.fit(model, p, x, np.eye(4)[:, :4], epochs=1)
    with pytest.raises(ValueError, match="sums to"):
        fnn.fit(model, p, x, np.full((4, 3), 0.5), epochs=1)


def test_evaluate_and_predict_bad_inputs(tiny):
    x, y = tiny
    p = SMALL.init(jax.random.key(0), 3)
    nan_x = x.copy()
    nan_x[5, 0] = np.nan
    for fn in (lambda xx: fnn.predict(SMALL, p, xx), lambda xx: fnn.evaluate(SMALL, p, xx, y)):
        with pytest.raises(ValueError, match="row 5"):
            fn(nan_x)
        with pytest.raises(ValueError, match="features"):
            fn(x[:, :2])
        with pytest.raises(ValueError, match="2-d"):
            fn(x[None])
    with pytest.raises(ValueError, match="numbers of samples"):
        fnn.evaluate(SMALL, p, x, y[:3])
    with pytest.raises(ValueError, match=r"labels in \[0, 1\]"):
        fnn.evaluate(SMALL, p, x, y + 0.75)
    with pytest.raises(ValueError, match="layer"):
        fnn.predict(SMALL, p[:1], x)
    with pytest.raises(TypeError, match="Sequential"):
        fnn.predict("model", p, x)


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_checkpoint_and_resume_bitwise(tmp_path, circles):
    """A run interrupted after 4 epochs and resumed to 10 ends exactly as the uninterrupted run."""
    require_checkpoints(tmp_path)
    x, y = circles
    model = fnn.Sequential([fnn.Dense(8, activation="relu"), fnn.Dense(1, activation="sigmoid")])
    p = model.init(jax.random.key(0), 2)
    kwargs = dict(optimizer=optim.adam(0.01), key=jax.random.key(3), validation_split=0.2)
    stopping = [callbacks.EarlyStopping(patience=50)]
    full = fnn.fit(model, p, x, y, epochs=10, callbacks=stopping, **kwargs)
    path = tmp_path / "run.fnn"
    fnn.fit(model, p, x, y, epochs=4, callbacks=stopping + [callbacks.ModelCheckpoint(path, every=2)], **kwargs)
    rest = fnn.fit(model, p, x, y, epochs=10, initial_state=path, callbacks=stopping, **kwargs)
    assert rest.history == {k: v[4:] for k, v in full.history.items()} and rest.epochs_run == 10
    chex.assert_trees_all_equal(rest.params, full.params)
    chex.assert_trees_all_equal(rest.opt_state, full.opt_state)
    kwargs.pop("key")
    again = fnn.fit(model, p, x, y, epochs=10, initial_state=path, callbacks=stopping, **kwargs)  # the saved key
    chex.assert_trees_all_equal(again.params, full.params)
    # a TrainState in memory continues the same way, and so does one saved with fnn.save
    four = fnn.fit(model, p, x, y, epochs=4, callbacks=stopping, key=jax.random.key(3), **kwargs)
    chex.assert_trees_all_equal(fnn.fit(model, p, x, y, epochs=10, initial_state=four.state, callbacks=stopping,
                                        **kwargs).params, full.params)
    fnn.save(tmp_path / "state.fnn", four.state, allow_non_finite=True)
    loaded = fnn.load(tmp_path / "state.fnn", like=four.state)
    chex.assert_trees_all_equal(fnn.fit(model, p, x, y, epochs=10, initial_state=loaded, callbacks=stopping,
                                        **kwargs).params, full.params)
    with pytest.raises(fnn.CheckpointError):  # an adam state is no sgd state
        fnn.fit(model, p, x, y, epochs=10, initial_state=path, callbacks=stopping,
                **dict(kwargs, optimizer=optim.sgd(0.1)))
    fnn.save(tmp_path / "params.fnn", p)
    with pytest.raises(fnn.CheckpointError):  # params alone are no TrainState
        fnn.fit(model, p, x, y, epochs=10, initial_state=tmp_path / "params.fnn")
    with pytest.raises(FileNotFoundError):
        fnn.fit(model, p, x, y, epochs=10, initial_state=tmp_path / "missing.fnn")


def test_initial_state_continues_a_run_and_counts_the_whole_run(circles):
    x, y = circles
    stopping = [callbacks.EarlyStopping(monitor="loss", patience=50)]
    kw = dict(optimizer=optim.adam(0.01), key=2, callbacks=stopping)
    p = SMALL.init(jax.random.key(0), 2)
    full = fnn.fit(SMALL, p, x, y, epochs=9, **kw)
    first = fnn.fit(SMALL, p, x, y, epochs=4, **kw)
    rest = fnn.fit(SMALL, p, x, y, epochs=9, initial_state=first.state, **kw)
    assert rest.epochs_run == 9 and first.history["loss"] + rest.history["loss"] == full.history["loss"]
    chex.assert_trees_all_equal(rest.params, full.params)
    same = fnn.fit(SMALL, p, x, y, epochs=9, initial_state=first.state, callbacks=stopping)  # the state's numbers
    chex.assert_trees_all_equal(same.params, full.params)
    faster = fnn.fit(SMALL, p, x, y, epochs=9, initial_state=first.state, optimizer=optim.adam(0.1),
                     callbacks=stopping)
    assert optim.learning_rate(faster.opt_state) == np.float32(0.1) and faster.history["loss"] != rest.history["loss"]
    assert int(faster.opt_state.count) == int(full.opt_state.count)  # Adam's step count was kept
    done = fnn.fit(SMALL, p, x, y, epochs=4, initial_state=first.state, callbacks=stopping)
    assert done.epochs_run == 4 and done.history["loss"] == []
    with pytest.raises(fnn.FnnValueError, match=r"already run 4 epochs, more than epochs=3"):
        fnn.fit(SMALL, p, x, y, epochs=3, initial_state=first.state, callbacks=stopping)
    with pytest.raises(fnn.FnnValueError, match=r"state\.callbacks does not fit"):
        fnn.fit(SMALL, p, x, y, epochs=9, initial_state=first.state)  # without the EarlyStopping it was run with
    with pytest.raises(fnn.FnnTypeError, match="initial_state must be"):
        fnn.fit(SMALL, p, x, y, epochs=3, initial_state=first.params)


# --------------------------------------------------------------------------- defects found on real data
def test_rejected_steps_are_left_out_of_the_figures_and_reported():
    rng = np.random.RandomState(0)
    x = rng.randn(64, 2).astype(np.float32)
    y = (x @ np.array([1.0, -2.0]) + 0.5).astype(np.float32)
    x[17] = [3e30, 3e30]  # one poisoned row: its batch's loss overflows every epoch
    reg = fnn.Sequential([fnn.Dense(8, activation="relu"), fnn.Dense(1)])
    p = reg.init(jax.random.key(0), 2)
    with pytest.warns(RuntimeWarning, match=r"step\(s\) had a non-finite loss .* skipped .* first at epoch 1"):
        r = fnn.fit(reg, p, x, y, loss="mse", optimizer=optim.adam(1e-2), epochs=40, batch_size=16, shuffle=False,
                    callbacks=[callbacks.TerminateOnNaN(max_bad_steps=2), callbacks.TargetLoss(0.5)])
    assert all(np.isfinite(r.history["loss"]))  # the clean rows' loss, not inf
    assert r.stop_reason == "target_loss" and r.history["loss"][-1] <= 0.5
    assert r.rejected_steps == r.epochs_run and r.first_rejected == (0, 1)  # row 17 sits in batch 1
    clean = np.delete(np.arange(64), 17)
    assert fnn.evaluate(reg, r.params, x[clean], y[clean])["loss"] < 1.0


def test_a_run_whose_every_step_is_rejected_says_so():
    x = np.full((8, 1), 3e30, np.float32)  # every batch overflows
    y = np.ones(8, np.float32)
    reg = fnn.Sequential([fnn.Dense(1)])
    p = reg.init(jax.random.key(0), 1)
    with pytest.warns(RuntimeWarning, match="8 step"):
        r = fnn.fit(reg, p, x, y, optimizer=optim.sgd(0.1), epochs=4, batch_size=4,
                    callbacks=[callbacks.TerminateOnNaN(max_bad_steps=1000)])
    assert r.rejected_steps == 8 and r.stop_reason == "epochs"
    assert all(np.isnan(r.history["loss"]))  # no accepted step: no figure, never a plausible number
    with pytest.warns(RuntimeWarning, match="non-finite loss"):
        r = fnn.fit(reg, p, x, y, optimizer=optim.sgd(0.1), epochs=4, batch_size=4,
                    callbacks=[callbacks.TerminateOnNaN(max_bad_steps=5)])
    assert r.stop_reason == "non_finite_loss" and r.divergence is not None


def test_divergence_returns_params_that_predict_finite_values():
    rng = np.random.RandomState(1)
    x = rng.randn(200, 5).astype(np.float32) * 3
    y = (x @ rng.randn(5) * 50 + 100).astype(np.float32)  # unscaled targets: momentum 0.1 blows up
    reg = fnn.Sequential([fnn.Dense(16, activation="relu"), fnn.Dense(1)])
    p = reg.init(jax.random.key(0), 5)
    with pytest.warns(RuntimeWarning, match=r"returning (the params after epoch \d+|the initial params)"):
        r = fnn.fit(reg, p, x, y, loss="mse", optimizer=optim.momentum(0.1, 0.9), epochs=30)
    assert r.stop_reason == "non_finite_loss"
    pred = np.asarray(fnn.predict(reg, r.params, x))
    assert np.isfinite(pred).all() and np.abs(pred).max() < 1e6


def test_resume_checks_epochs_and_the_model(tmp_path, circles):
    require_checkpoints(tmp_path)
    x, y = circles
    model = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(1, activation="sigmoid")])
    p = model.init(jax.random.key(0), 2)
    path = tmp_path / "run.fnn"
    fnn.fit(model, p, x, y, epochs=9, callbacks=[callbacks.ModelCheckpoint(path)])
    with pytest.raises(fnn.FnnValueError, match=r"already run 9 epochs, more than epochs=5"):
        fnn.fit(model, p, x, y, epochs=5, initial_state=path)
    fnn.fit(model, p, x, y, epochs=4, callbacks=[callbacks.ModelCheckpoint(path)])
    with pytest.raises(fnn.FnnValueError, match=r"already run 4 epochs, more than epochs=3"):
        fnn.fit(model, p, x, y, epochs=3, initial_state=path)
    other = fnn.Sequential([fnn.Dense(5, activation="relu"), fnn.Dense(1, activation="sigmoid")])
    with pytest.raises(fnn.FnnValueError, match="another model") as info:
        fnn.fit(other, other.init(jax.random.key(0), 2), x, y, epochs=6, initial_state=path)
    assert "data size" not in str(info.value)


def test_sample_and_class_weights(tiny):
    x, y = tiny
    p = SMALL.init(jax.random.key(0), 3)
    kw = dict(optimizer=optim.sgd(0.5), epochs=2, batch_size=4, shuffle=False)
    plain = fnn.fit(SMALL, p, x, y, **kw)
    ones = fnn.fit(SMALL, p, x, y, sample_weight=np.ones(10), **kw)
    chex.assert_trees_all_close(plain.params, ones.params, rtol=1e-6)
    twice = np.where(y > 0.5, 2.0, 1.0)
    by_sample = fnn.fit(SMALL, p, x, y, sample_weight=twice, **kw)
    by_class = fnn.fit(SMALL, p, x, y, class_weight={0: 1.0, 1: 2.0}, **kw)
    chex.assert_trees_all_close(by_sample.params, by_class.params, rtol=1e-6)
    # weight 2 = the row twice, the mean over 10 rows instead of 10 + k (Keras' mean of w·loss over the rows)
    k = int(np.sum(y > 0.5))
    duplicated = fnn.fit(SMALL, p, np.concatenate([x, x[y > 0.5]]), np.concatenate([y, y[y > 0.5]]),
                         epochs=1, batch_size=100, optimizer=optim.sgd(0.5 * (10 + k) / 10))
    weighted = fnn.fit(SMALL, p, x, y, sample_weight=twice, epochs=1, batch_size=100, optimizer=optim.sgd(0.5))
    chex.assert_trees_all_close(duplicated.params, weighted.params, rtol=1e-5)
    ev = fnn.evaluate(SMALL, p, x, y, sample_weight=twice)
    assert fnn.evaluate(SMALL, p, x, y, class_weight={0: 1.0, 1: 2.0}) == ev
    prob = np.asarray(fnn.predict(SMALL, p, x))[:, 0]
    per = -(y * np.log(prob) + (1 - y) * np.log(1 - prob))
    np.testing.assert_allclose(ev["loss"], np.mean(twice * per), rtol=1e-5)
    np.testing.assert_allclose(ev["accuracy"], np.mean((prob > 0.5) == (y > 0.5)), rtol=1e-6)  # unweighted


def test_weights_act_at_batch_size_one(tiny):
    """A one-row batch's loss is w·loss (Keras), not w·loss / w: with SGD a weight 3 everywhere is
    the learning rate times 3, and class_weight changes the run."""
    x, y = tiny
    p = SMALL.init(jax.random.key(0), 3)
    kw = dict(epochs=1, batch_size=1, shuffle=False)
    plain = fnn.fit(SMALL, p, x, y, optimizer=optim.sgd(0.3), **kw)
    tripled = fnn.fit(SMALL, p, x, y, optimizer=optim.sgd(0.1), sample_weight=np.full(10, 3.0), **kw)
    chex.assert_trees_all_close(plain.params, tripled.params, rtol=1e-5)
    by_class = fnn.fit(SMALL, p, x, y, optimizer=optim.sgd(0.1), class_weight={1: 50.0}, **kw)
    unweighted = fnn.fit(SMALL, p, x, y, optimizer=optim.sgd(0.1), **kw)
    assert not np.allclose(np.asarray(by_class.params[0].w), np.asarray(unweighted.params[0].w), rtol=1e-3)


def test_soft_labels_for_binary_cross_entropy(tiny):
    x, y = tiny
    p = SMALL.init(jax.random.key(0), 3)
    soft = 0.1 + 0.8 * y  # label smoothing
    r = fnn.fit(SMALL, p, x, soft, epochs=3)
    assert np.isfinite(r.history["loss"]).all()


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_keras_names_and_int_seeds(tiny):
    x, y = tiny
    p = SMALL.init(jax.random.key(0), 3)
    by_name = fnn.fit(SMALL, p, x, y, loss="binary_crossentropy", optimizer="adam", epochs=2, key=3)
    explicit = fnn.fit(SMALL, p, x, y, loss="binary_cross_entropy", optimizer=optim.adam(1e-3), epochs=2,
                       key=jax.random.key(3))
    chex.assert_trees_all_equal(by_name.params, explicit.params)
    for name in ("sgd", "momentum", "nesterov"):
        assert np.isfinite(fnn.fit(SMALL, p, x, y, optimizer=name, epochs=1).history["loss"]).all()
    reg = fnn.Sequential([fnn.Dense(1)])
    for alias in ("mean_squared_error", "mse"):
        assert "mse" in fnn.fit(reg, reg.init(jax.random.key(0), 3), x, y, loss=alias, epochs=1).history


def test_several_sigmoid_outputs_are_multi_label_and_say_so():
    rng = np.random.RandomState(0)
    x = rng.randn(30, 4).astype(np.float32)
    labels = rng.randint(0, 3, 30)
    one_hot = np.eye(3, dtype=np.float32)[labels]
    model = fnn.Sequential([fnn.Dense(3, activation="sigmoid")])
    p = model.init(jax.random.key(0), 4)
    with pytest.warns(UserWarning, match="one-hot.*multi-label.*softmax") as caught:
        r = fnn.fit(model, p, x, one_hot, loss="binary_cross_entropy", epochs=2)
    assert caught[0].filename == __file__
    assert "label_accuracy" in r.history
    with pytest.warns(UserWarning, match="one-hot") as caught:
        ev = fnn.evaluate(model, r.params, x, one_hot, loss="binary_cross_entropy")
    assert caught[0].filename == __file__  # the warning points at the caller's line
    classes = np.asarray(fnn.predict_classes(model, r.params, x))
    assert classes.shape == (30, 3)  # one 0/1 column per label
    np.testing.assert_allclose(ev["label_accuracy"], np.mean(classes == one_hot), rtol=1e-6)


def test_the_seeds_keras_example_as_written():
    from fnn import Dense, Sequential

    X, y = fnn.data.circles(0, 300, noise=0.05)
    model = Sequential([Dense(4, input_dim=2, activation="relu"), Dense(6, activation="relu"),
                        Dense(6, activation="relu"), Dense(4, activation="relu"), Dense(1, activation="sigmoid")])
    params = model.init(0)
    history = fnn.fit(model, params, X, y, loss="binary_crossentropy", optimizer="adam", epochs=50)
    assert history.epochs_run == 50 and set(history.history) == {"loss", "accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert set(fnn.evaluate(model, history.params, X, y)) == {"loss", "accuracy"}


def test_divergence_advice_names_the_data_scale_where_the_data_is_the_cause():
    import warnings as _warnings

    model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1)])
    params = model.init(jax.random.key(0), 2, dtype=jnp.float32)
    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    y = (x[:, :1] * 3).astype(np.float32)

    def advice(x, y, lr, model=model, params=params):
        with _warnings.catch_warnings(record=True) as caught:
            _warnings.simplefilter("always")
            r = fnn.fit(model, params, x, y, loss="mse", optimizer=fnn.optim.sgd(lr), epochs=3, batch_size=16,
                        verbose=0)
        assert r.stop_reason == "non_finite_loss", r.stop_reason
        return " ".join(str(w.message) for w in caught if "non-finite loss" in str(w.message))

    linear = fnn.Sequential([fnn.Dense(1)])  # a tanh layer would squash features of any scale
    targets = advice(x, y * 1e30, 0.1)
    features = advice(x * 1e30, y, 0.1, linear, linear.init(jax.random.key(0), 2, dtype=jnp.float32))
    assert "targets reach" in targets and "scale them" in targets and "smaller learning rate will not" in targets
    assert "features reach" in features and "standardise" in features
    assert "Try a smaller learning rate" in advice(x, y, 1e30)  # the data is fine: the rate is the cause


def test_features_at_a_scale_nothing_learns_from_are_named_with_the_fix():
    import warnings as _warnings

    model = fnn.Sequential([fnn.Dense(3, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
    params = model.init(jax.random.key(0), 2, dtype=jnp.float32)
    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)

    def messages(x):
        with _warnings.catch_warnings(record=True) as caught:
            _warnings.simplefilter("always")
            fnn.fit(model, params, x, y, epochs=1, verbose=0)
        return " ".join(str(w.message) for w in caught)

    tiny, one_big = messages(x * 1e-30), messages(x * np.array([1.0, 1e30], np.float32))
    assert "every feature of x is below" in tiny and "standardise" in tiny
    assert "column 1 reaches 1.37e+30" in one_big and "standardise" in one_big
    assert "standardise" not in messages(x)
    assert fnn.history.scale_warning(np.zeros((3, 0))) is None
