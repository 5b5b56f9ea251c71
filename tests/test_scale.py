"""sweep: many runs in one compiled call, each equal to its own fit; data parallelism over devices."""
import os
import subprocess
import sys
import textwrap
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

MODEL = fnn.Sequential([fnn.Dense(6, activation="relu"), fnn.Dense(1, activation="sigmoid")])


@pytest.fixture(scope="module")
def data():
    x, y = fnn.data.circles(jax.random.key(0), 128, noise=0.05)
    xv, yv = fnn.data.circles(jax.random.key(1), 64, noise=0.05)
    return x, y, xv, yv


@pytest.mark.slow  # vmapped sweep programs, seconds each to compile: `make test-slow`
def test_sweep_equals_separate_fits(data):
    x, y, xv, yv = data
    rates, seeds = [0.03, 0.3], [0, 4]
    runs = fnn.sweep(MODEL, x, y, optimizer=lambda lr: fnn.optim.momentum(lr, 0.9), learning_rates=rates,
                     seeds=seeds, epochs=6, batch_size=16, validation_data=(xv, yv))
    assert runs.history["loss"].shape == (2, 2, 6)
    assert runs.params[0].w.shape == (2, 2, 2, 6)
    for i, lr in enumerate(rates):
        for j, seed in enumerate(seeds):
            r = fnn.fit(MODEL, MODEL.init(jax.random.key(seed), 2), x, y, optimizer=fnn.optim.momentum(lr, 0.9),
                        epochs=6, batch_size=16, key=jax.random.key(seed), validation_data=(xv, yv))
            chex.assert_trees_all_close(runs.run(i, j), r.params, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(runs.history["val_loss"][i, j], r.history["val_loss"], rtol=1e-5)
    lr, seed, params = runs.best()
    i, j = rates.index(lr), seeds.index(seed)
    assert runs.score[i, j] == np.nanmin(runs.score)
    chex.assert_trees_all_equal(params, runs.run(i, j))


@pytest.mark.slow  # vmapped sweep programs, seconds each to compile: `make test-slow`
def test_one_diverging_run_does_not_poison_the_others():
    x = np.linspace(-1, 1, 32, dtype=np.float32)[:, None]
    y = 1e3 * x
    reg = fnn.Sequential([fnn.Dense(4, activation="relu"), fnn.Dense(1)])
    runs = fnn.sweep(reg, x, y, optimizer=fnn.optim.sgd, learning_rates=[1e-4, 50.0], seeds=[0], epochs=8,
                     batch_size=8)
    assert runs.stop_reasons[1][0] == "non_finite_loss" and runs.stop_reasons[0][0] == "epochs"
    assert runs.epochs_run[0, 0] == 8 and runs.epochs_run[1, 0] < 8
    assert np.isfinite(runs.history["loss"][0, 0]).all()
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(runs.params))
    assert np.isnan(runs.score[1, 0]) and runs.best()[0] == 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = fnn.fit(reg, reg.init(jax.random.key(0), 1), x, y, optimizer=fnn.optim.sgd(1e-4), epochs=8,
                        batch_size=8, key=jax.random.key(0))
    chex.assert_trees_all_close(runs.run(0, 0), alone.params, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(optimizer=fnn.optim.sgd(0.1)), "function learning_rate"),
    (dict(learning_rates=[]), "must not be empty"),
    (dict(learning_rates=[0.1, -1.0]), r"learning_rates\[1\]"),
    (dict(learning_rates=0.1), "must be a list"),
    (dict(seeds=[0, -1]), r"seeds\[1\]"),
    (dict(batch_size=0), "batch_size"),
])
def test_sweep_bad_inputs(data, kwargs, match):
    x, y, _, _ = data
    args = dict(optimizer=fnn.optim.sgd, learning_rates=[0.1], seeds=[0], epochs=2)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        fnn.sweep(MODEL, x, y, **args)


def test_devices_refuses_what_is_not_a_list_of_devices(data):
    x, y, _, _ = data
    with pytest.raises(fnn.FnnTypeError, match="devices must be a non-empty list of jax devices"):
        fnn.fit(MODEL, MODEL.init(jax.random.key(0), 2), x, y, epochs=1, devices=["cpu"])


def test_devices_refuses_a_device_listed_twice(data):
    x, y, _, _ = data
    with pytest.raises(fnn.FnnValueError, match="devices"):
        fnn.fit(MODEL, MODEL.init(jax.random.key(0), 2), x, y, epochs=1, batch_size=4, devices=jax.devices() * 2)


FOUR_DEVICES = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np, fnn
    assert len(jax.devices()) == 4, jax.devices()
    x, y = fnn.data.circles(jax.random.key(0), 256, noise=0.05)
    model = fnn.Sequential([fnn.Dense(8, activation="relu"), fnn.Dense(1, activation="sigmoid")])
    p = model.init(jax.random.key(0), 2)
    kw = dict(optimizer=fnn.optim.momentum(0.1, 0.9), epochs=5, batch_size=32, key=jax.random.key(2))
    one = fnn.fit(model, p, x, y, **kw)
    four = fnn.fit(model, p, x, y, devices=jax.devices(), **kw)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(one.params),
                                                              jax.tree.leaves(four.params)))
    assert diff < 1e-5, diff
    np.testing.assert_allclose(one.history["loss"], four.history["loss"], rtol=1e-5)
    trainer = fnn.Trainer(model, optimizer=kw["optimizer"], batch_size=32, devices=jax.devices())
    state = trainer.init(p, key=kw["key"])
    data = trainer.data(state, x, y)
    spec = trainer.spec_for(data)
    text = fnn.trainer._compiled_run.lower(spec, state, data, np.int32(5), np.int32(100)).compile().as_text()
    assert "all-reduce" in text  # each device computed part of every batch
    try:
        fnn.fit(model, p, x, y, epochs=1, batch_size=6, devices=jax.devices())
    except fnn.FnnValueError as e:
        assert "batch_size 6 is not divisible by the 4 devices" in str(e), e
    else:
        raise AssertionError("batch_size 6 over 4 devices was not refused")
    print("ok", diff)
""")


@pytest.mark.slow  # fresh processes or many examples: `make test-slow`
def test_four_devices_match_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", FOUR_DEVICES], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok")


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # fresh processes or many examples: `make test-slow`
def test_two_processes_match_one_process(tmp_path):
    """Two processes on 127.0.0.1, each holding half the data, train data-parallel over gloo and end
    with the parameters of the same run in one process."""
    worker = os.path.join(os.path.dirname(__file__), "_two_process_worker.py")
    port = str(_free_port())
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    outs = [tmp_path / f"{mode}.npz" for mode in ("0", "1", "single")]
    procs = [subprocess.Popen([sys.executable, worker, mode, port, str(out)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for mode, out in zip(("0", "1", "single"), outs)]
    try:
        logs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-2000:] for log in logs)
    single = dict(np.load(outs[2]))
    for out in outs[:2]:
        got = dict(np.load(out))
        assert set(got) == set(single) and len(got["loss"]) == 5
        for name in single:
            np.testing.assert_allclose(got[name], single[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_sweep_of_zero_epochs_returns_the_initial_params():
    x, y = fnn.data.circles(jax.random.key(0), 32, noise=0.05)
    runs = fnn.sweep(MODEL, x, y, optimizer=fnn.optim.sgd, learning_rates=[0.1, 0.2], seeds=[0], epochs=0)
    assert runs.history["loss"].shape == (2, 1, 0) and (runs.epochs_run == 0).all()
    chex.assert_trees_all_close(runs.run(1, 0), MODEL.init(jax.random.key(0), 2))
    assert runs.stop_reasons == (("epochs",), ("epochs",))


@pytest.mark.slow  # vmapped sweep programs, seconds each to compile: `make test-slow`
def test_sweep_records_snapshots_after_the_rate_and_seed_axes():
    x, y = fnn.data.circles(jax.random.key(0), 32, noise=0.05)
    runs = fnn.sweep(MODEL, x, y, optimizer=fnn.optim.adam, learning_rates=[0.01, 0.1], seeds=[0, 1], epochs=6,
                     callbacks=[fnn.callbacks.Snapshots(every=2)])
    assert runs.snapshot_epochs == (0, 2, 4, 6)
    assert runs.snapshots[0].w.shape == (2, 2, 4) + MODEL.init(jax.random.key(0), 2)[0].w.shape
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[:, :, -1], runs.snapshots), runs.params)
    for j, seed in enumerate((0, 1)):  # epoch 0: the params each run started from
        start = MODEL.init(jax.random.key(seed), 2)
        for i in range(2):
            chex.assert_trees_all_equal(jax.tree.map(lambda a, i=i, j=j: a[i, j, 0], runs.snapshots), start)


@pytest.mark.slow  # vmapped sweep programs, seconds each to compile: `make test-slow`
def test_sweep_callbacks_stop_each_run_on_its_own(data):
    """A compiled callback in a sweep: each run keeps its own EarlyStopping state, and stops as its
    own fit with the same callback does."""
    x, y, xv, yv = data
    early = fnn.callbacks.EarlyStopping(monitor="val_loss", patience=0)
    runs = fnn.sweep(MODEL, x, y, optimizer=fnn.optim.sgd, learning_rates=[0.05, 20.0], seeds=[0], epochs=12,
                     batch_size=32, validation_data=(xv, yv), callbacks=[early])
    for i, lr in enumerate((0.05, 20.0)):
        r = fnn.fit(MODEL, MODEL.init(jax.random.key(0), 2), x, y, optimizer=fnn.optim.sgd(lr), epochs=12,
                    batch_size=32, key=jax.random.key(0), validation_data=(xv, yv), callbacks=[early])
        assert runs.stop_reasons[i][0] == r.stop_reason and runs.epochs_run[i, 0] == r.epochs_run
        np.testing.assert_allclose(runs.history["val_loss"][i, 0, :r.epochs_run], r.history["val_loss"], rtol=1e-5)
        chex.assert_trees_all_close(runs.run(i, 0), r.params, rtol=1e-5, atol=1e-6)
