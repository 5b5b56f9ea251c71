"""The engine: compiled once per structure, numbers as runtime values, the optimizer sees the params'
structure, runs continue with their optimizer state, rejected steps are reported, snapshots."""
import re
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
RATES = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 2e-3, 5e-2)


@pytest.fixture(scope="module")
def circles():
    x, y = fnn.data.circles(jax.random.key(0), 64, noise=0.05)
    return np.asarray(x), np.asarray(y)


@pytest.fixture(scope="module")
def params():
    return SEED_NET.init(jax.random.key(0), 2)


@pytest.mark.parametrize("make", [optim.adam, lambda lr: optim.momentum(lr, 0.9)], ids=["adam", "momentum"])
def test_eight_learning_rates_compile_once(circles, params, make):
    x, y = circles
    first = fnn.fit(SEED_NET, params, x, y, optimizer=make(RATES[0]), epochs=5)
    with _compiles.counting() as counts:
        results = [fnn.fit(SEED_NET, params, x, y, optimizer=make(lr), epochs=5) for lr in RATES[1:]]
    assert counts == {"trace": 0, "compile": 0}
    assert len({r.history["loss"][-1] for r in [first] + results}) == len(RATES)  # the rates did differ


def _stopping(target, patience, delta, bad):
    return [callbacks.TargetLoss(target), callbacks.EarlyStopping(monitor="loss", patience=patience, min_delta=delta),
            callbacks.TerminateOnNaN(max_bad_steps=bad)]


def test_stopping_numbers_compile_once(circles, params):
    x, y = circles
    fnn.fit(SEED_NET, params, x, y, epochs=6, callbacks=_stopping(0.1, 2, 0.0, 0))
    with _compiles.counting() as counts:
        for target, patience, delta, bad in ((0.2, 3, 1e-3, 1), (0.5, 5, 0.0, 2), (0.69, 1, 0.1, 0)):
            r = fnn.fit(SEED_NET, params, x, y, epochs=6, callbacks=_stopping(target, patience, delta, bad))
    assert counts == {"trace": 0, "compile": 0}
    assert r.stop_reason in ("target_loss", "early_stopping")


def test_any_number_of_epochs_compiles_once(circles, params):
    x, y = circles
    fnn.fit(SEED_NET, params, x, y, epochs=10)
    with _compiles.counting() as counts:
        runs = [fnn.fit(SEED_NET, params, x, y, epochs=n) for n in (37, 100, 300)]
    assert counts == {"trace": 0, "compile": 0}
    assert [r.epochs_run for r in runs] == [37, 100, 300]  # 300 > engine.CHUNK: two compiled calls
    assert [len(r.history["loss"]) for r in runs] == [37, 100, 300]
    np.testing.assert_array_equal(runs[1].history["loss"][:37], runs[0].history["loss"])


def test_a_state_stopped_inside_an_epoch_continues_it_bitwise(circles, params):
    """The driver cuts a run into calls of any number of steps: a state left mid-epoch finishes that
    epoch first, and the pieces add up to the whole, bitwise."""
    x, y = circles
    trainer = fnn.Trainer(SEED_NET, optimizer=optim.adam(0.01), batch_size=16,
                          callbacks=[callbacks.EarlyStopping(monitor="loss", patience=100)])
    state = trainer.init(params, key=1)
    data = trainer.data(state, x, y)  # 64 rows: 4 steps an epoch
    whole, record = trainer.train_epochs(state, data, 3)
    assert int(record.epochs) == 3 and int(record.steps) == 12
    piece, record = trainer.train_epochs(state, data, 3, max_steps=5)
    assert (int(piece.epoch), int(piece.step), int(record.epochs)) == (1, 1, 1)
    np.testing.assert_array_equal(np.isnan(np.asarray(record.history["loss"])), np.arange(engine.CHUNK) >= 1)
    piece, record = trainer.train_epochs(piece, data, 2)  # finishes epoch 1 (one of the 2), then epoch 2
    assert (int(piece.epoch), int(piece.step), int(record.epochs), int(record.steps)) == (3, 0, 2, 7)
    same = jax.tree.map(lambda a, b: np.array_equal(a, b), *(
        jax.tree.map(lambda v: jax.random.key_data(v) if jnp.issubdtype(v.dtype, jax.dtypes.prng_key) else v, s)
        for s in (piece, whole)))
    assert all(jax.tree.leaves(same))


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_run_is_a_pure_function_to_jit(circles, params):
    """engine.run itself, jitted by hand with its Spec static, gives what Trainer.train_epochs gives."""
    x, y = circles
    trainer = fnn.Trainer(SEED_NET, optimizer=optim.sgd(0.1), batch_size=32)
    state = trainer.init(params, key=2)
    data = trainer.data(state, x, y)
    mine, mine_record = jax.jit(engine.run, static_argnums=0)(trainer.spec_for(data), state, data, 4)
    theirs, record = trainer.train_epochs(state, data, 4)
    chex.assert_trees_all_equal(mine.params, theirs.params)
    np.testing.assert_array_equal(mine_record.history["loss"], record.history["loss"])


def _recording(seen):
    """A per-leaf optimizer (plain SGD written by hand) that records the leaf shapes it is given."""
    def init(params):
        seen.append(tuple(np.shape(leaf) for leaf in jax.tree.leaves(params)))
        return ()

    def update(grads, state, params=None):
        seen.append(tuple(np.shape(leaf) for leaf in jax.tree.leaves(grads)))
        return jax.tree.map(lambda g: -0.01 * g, grads), state

    return init, update


@pytest.mark.filterwarnings("ignore:.*compiles the run anew")
@pytest.mark.parametrize("width, size", [(61, 4027), (62, 4155)])
def test_a_user_optimizer_sees_the_params_structure(circles, width, size):
    x, y = circles
    model = fnn.Sequential([fnn.Dense(width, activation="relu"), fnn.Dense(width, activation="relu"),
                            fnn.Dense(1, activation="sigmoid")])
    p = model.init(jax.random.key(0), 2)
    assert sum(leaf.size for leaf in jax.tree.leaves(p)) == size  # one below, one above engine.FLAT_LIMIT
    seen = []
    r = fnn.fit(model, p, x, y, optimizer=_recording(seen), epochs=1)
    expected = tuple(leaf.shape for leaf in jax.tree.leaves(p))
    assert seen and all(shapes == expected for shapes in seen)
    assert jax.tree.structure(r.params) == jax.tree.structure(p)


def test_fnn_optimizers_are_known_to_be_elementwise():
    """Only those may travel as one flat vector inside the run; any other update sees the tree."""
    assert all(optim.is_elementwise(o.update) for o in (
        optim.sgd(0.1), optim.adam(), optim.momentum(0.1), optim.nesterov(0.1),
        optim.chain(optim.clip_by_global_norm(1.0), optim.adam()), optim.chain(optim.add_weight_decay(1e-4),
                                                                               optim.sgd(0.1))))
    init, update = _recording([])
    assert not optim.is_elementwise(optim.check_optimizer((init, update)).update)
    assert not optim.is_elementwise(optim.chain(optim.adam(), (init, update)).update)


def test_same_kind_of_optimizer_shares_update():
    assert optim.adam(1e-3).update == optim.adam(3e-2).update
    assert optim.momentum(0.1, 0.9).update == optim.momentum(0.5, 0.5).update
    assert optim.adam(optim.cosine_decay(0.1, 10)).update == optim.adam(optim.cosine_decay(0.5, 99, 0.1)).update
    assert optim.momentum(0.1).update != optim.nesterov(0.1).update


@pytest.mark.parametrize("make", [optim.adam, lambda lr: optim.momentum(lr, 0.9)], ids=["adam", "momentum"])
def test_opt_state_continues_a_run_exactly(circles, params, make):
    x, y = circles
    opt = make(0.01)
    whole = fnn.fit(SEED_NET, params, x, y, optimizer=opt, epochs=7, shuffle=False)
    first = fnn.fit(SEED_NET, params, x, y, optimizer=opt, epochs=3, shuffle=False)
    rest = fnn.fit(SEED_NET, params, x, y, optimizer=opt, epochs=7, shuffle=False, initial_state=first.state)
    chex.assert_trees_all_equal(rest.params, whole.params)
    assert first.history["loss"] + rest.history["loss"] == whole.history["loss"]
    # an optimizer state alone (Trainer.init's opt_state=) continues the optimizer, not the epoch count
    trainer = fnn.Trainer(SEED_NET, optimizer=opt, shuffle=False)
    state, history = trainer.run(trainer.init(first.params, opt_state=first.opt_state), x, y, epochs=4)
    chex.assert_trees_all_close(state.params, whole.params, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(history["loss"], whole.history["loss"][3:], rtol=1e-6)
    _, history = trainer.run(trainer.init(first.params), x, y, epochs=4)
    assert history["loss"] != rest.history["loss"]  # without the state the moments restart


def test_opt_state_is_checked(circles, params):
    x, y = circles
    state = optim.adam().init(params)
    other = fnn.Sequential([fnn.Dense(3), fnn.Dense(1, activation="sigmoid")]).init(jax.random.key(0), 2)
    misshapen = optim.adam().init(params[:3] + tuple(other))
    bad = state._replace(mu=jax.tree.map(lambda a: a * np.nan, state.mu))
    first = fnn.Trainer(SEED_NET).init(params)
    with _compiles.counting() as counts:
        with pytest.raises(fnn.FnnValueError, match="opt_state does not fit"):
            fnn.Trainer(SEED_NET, optimizer=optim.momentum(0.1)).init(params, opt_state=state)
        with pytest.raises(fnn.FnnValueError, match=r"opt_state.*shape"):
            fnn.Trainer(SEED_NET).init(params, opt_state=misshapen)
        with pytest.raises(fnn.FnnValueError, match="non-finite"):
            fnn.Trainer(SEED_NET).init(params, opt_state=bad)
        with pytest.raises(fnn.FnnValueError, match="opt_state does not fit"):  # a state of another optimizer kind
            fnn.fit(SEED_NET, params, x, y, optimizer=optim.momentum(0.1), initial_state=first, epochs=1)
    assert counts["compile"] == 0


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_a_rebuilt_user_optimizer_warns_once(circles, params):
    x, y = circles

    def build():  # a new closure each call: same code, new function objects
        def update(grads, state, params=None):
            return jax.tree.map(lambda g: -0.01 * g, grads), state
        return (lambda p: (), update)

    tiny = fnn.Sequential([fnn.Dense(1, activation="sigmoid")])  # quick to compile: each call compiles anew
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            fnn.fit(tiny, tiny.init(0, 2), x, y, optimizer=build(), epochs=1)
    messages = [str(w.message) for w in caught if "compiles the run anew" in str(w.message)]
    assert len(messages) == 1


def test_hyperparameters_live_in_the_state_in_the_params_dtype():
    p64 = {"w": np.ones(3, np.float64)}
    state = optim.adam(optim.cosine_decay(0.1, 10), b1=0.8).init(p64)
    assert float(state.hyper["b1"]) == 0.8 and state.hyper["b1"].dtype == np.float64
    assert state.hyper["learning_rate"]["decay_steps"].dtype == np.float64
    p32 = {"w": np.ones(3, np.float32)}
    assert optim.momentum(0.1, 0.9).init(p32).hyper["momentum"].dtype == np.float32


def test_no_module_reaches_into_another_modules_private_names():
    import ast
    import pathlib

    root = pathlib.Path(fnn.__file__).parent
    modules = {p.stem for p in root.glob("*.py")}
    offenders = []
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fnn"):
                offenders += [f"{path.name}: from {node.module} import {a.name}" for a in node.names
                              if a.name.startswith("_") and a.name not in modules]  # _validate: a shared module
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in modules and node.attr.startswith("_") and not node.attr.startswith("__")
                    and node.value.id != path.stem and node.attr not in ("_replace", "_asdict", "_fields")):
                offenders.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not offenders, offenders


def test_no_import_cycle():
    import ast
    import pathlib

    root = pathlib.Path(fnn.__file__).parent
    graph = {}
    for path in root.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):  # imports inside functions count too
            if isinstance(node, ast.ImportFrom) and node.module == "fnn":
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fnn."):
                deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("fnn.")}
        graph[path.stem] = {d for d in deps if (root / f"{d}.py").exists()}
    graph["__init__"] = set()  # the package re-exports everything; nothing imports it back by name

    def visit(node, stack):
        if node in stack:
            raise AssertionError(f"import cycle: {' -> '.join(stack[stack.index(node):] + [node])}")
        for dep in graph.get(node, ()):
            visit(dep, stack + [node])

    for module in graph:
        visit(module, [])


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 4096, 5000])
def test_shuffle_order_is_a_permutation_that_varies(n):
    a = np.asarray(engine.shuffle_order(jax.random.key(0), n))
    b = np.asarray(engine.shuffle_order(jax.random.key(1), n))
    assert sorted(a) == list(range(n)) and sorted(b) == list(range(n))
    if n >= 7:
        assert (a != b).any() and (a != np.arange(n)).any()


def test_shuffle_order_is_uniform_enough():
    """Each row lands in each position about equally often over many keys (chi-square, small n)."""
    n, draws = 5, 4000
    orders = np.asarray(jax.vmap(lambda k: engine.shuffle_order(k, n))(jax.random.split(jax.random.key(0), draws)))
    counts = np.stack([(orders == row).sum(axis=0) for row in range(n)])  # (row, position)
    expected = draws / n
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 60, chi2  # 16 degrees of freedom: p ≈ 1e-6 at 60


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_snapshots_keep_the_params_of_those_epochs(circles, params):
    x, y = circles
    kw = dict(optimizer=optim.momentum(0.05, 0.9), shuffle=False)
    r = fnn.fit(SEED_NET, params, x, y, epochs=12, callbacks=[callbacks.Snapshots(every=4)], **kw)
    assert r.snapshot_epochs == (0, 4, 8, 12)  # epoch 0: the params the run started from
    assert r.snapshots[0].w.shape == (4,) + params[0].w.shape
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[0], r.snapshots), params)
    for i, epochs in enumerate(r.snapshot_epochs[1:], start=1):
        alone = fnn.fit(SEED_NET, params, x, y, epochs=epochs, **kw)
        chex.assert_trees_all_close(jax.tree.map(lambda a, i=i: a[i], r.snapshots), alone.params, rtol=1e-6)
    long = fnn.fit(SEED_NET, params, x, y, epochs=engine.CHUNK + 6, callbacks=[callbacks.Snapshots(every=50)],
                   **kw)  # across two calls at least
    assert long.snapshot_epochs == (0, 50, 100, 150, 200, 250)
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[-1], long.snapshots),
                                fnn.fit(SEED_NET, params, x, y, epochs=250, **kw).params, rtol=1e-6)


class EveryThree(callbacks.Callback):
    """A host callback that makes the driver hand back control every 3 epochs (as ModelCheckpoint does)."""

    def next_stop(self, epoch):
        return (epoch // 3 + 1) * 3


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_snapshots_across_calls_that_start_off_the_grid(circles, params):
    """With calls starting at 0, 3, 6, 9 (the driver hands back every 3 epochs), snapshots every 2
    epochs still land on 0, 2, 4, 6, 8, 10, as in one call."""
    x, y = circles
    kw = dict(optimizer=optim.adam(0.01), epochs=10, shuffle=False)
    whole = fnn.fit(SEED_NET, params, x, y, callbacks=[callbacks.Snapshots(every=2)], **kw)
    pieces = fnn.fit(SEED_NET, params, x, y, callbacks=[callbacks.Snapshots(every=2), EveryThree()], **kw)
    assert whole.snapshot_epochs == pieces.snapshot_epochs == (0, 2, 4, 6, 8, 10)
    chex.assert_trees_all_equal(pieces.snapshots, whole.snapshots)


def test_no_snapshots_is_the_program_without_a_snapshot_buffer(circles, params):
    """Without Snapshots the compiled run is the one a plain fit uses, and it holds no buffer of the
    params' copies; with it, a (slots, ...) buffer per leaf."""
    x, y = circles
    fnn.fit(SEED_NET, params, x, y, epochs=3)
    with _compiles.counting() as counts:
        r = fnn.fit(SEED_NET, params, x, y, epochs=3, callbacks=[])
    assert counts == {"trace": 0, "compile": 0} and r.snapshots is None and r.snapshot_epochs is None

    def program(rules):
        trainer = fnn.Trainer(SEED_NET, callbacks=rules)
        state = trainer.init(params)
        data = trainer.data(state, x, y)
        return jax.jit(engine.run, static_argnums=0).lower(trainer.spec_for(data), state, data, np.int32(3),
                                                           None).as_text()

    slots = callbacks.Snapshots.SLOTS + 1
    buffer = re.compile(rf"tensor<{slots}x2x4xf32>")  # the first layer's w, once per kept epoch
    assert buffer.search(program([callbacks.Snapshots(every=1)]))
    assert not buffer.search(program([]))


@pytest.mark.parametrize("max_bad_steps", [0, 1000])
def test_an_update_that_overflows_the_params_is_never_returned(max_bad_steps):
    """Finite loss and gradients, but a huge rate overflows the params: the epoch's end catches it."""
    x = np.linspace(-1, 1, 16, dtype=np.float32)[:, None]
    y = 5 * x[:, 0]
    reg = fnn.Sequential([fnn.Dense(1)])
    p = reg.init(0, 1)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        r = fnn.fit(reg, p, x, y, loss="mse", optimizer=optim.sgd(1e38), epochs=3, batch_size=8, shuffle=False,
                    callbacks=[callbacks.TerminateOnNaN(max_bad_steps=max_bad_steps)])
    assert r.stop_reason == "non_finite_loss" and r.epochs_run == 1
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(r.params))
    chex.assert_trees_all_equal(r.params, p)  # no epoch ended finite: the initial params


def test_a_huge_but_finite_update_is_never_returned():
    """The first epoch's loss is fine, its last update leaves params of ~3e38 (finite, useless): the
    run falls back on the params that epoch started from, not on those it ended with."""
    x = np.linspace(-1, 1, 8, dtype=np.float32)[:, None]
    reg = fnn.Sequential([fnn.Dense(1)])
    p = reg.init(0, 1)
    with pytest.warns(RuntimeWarning, match="returning the initial params"):
        r = fnn.fit(reg, p, x, 5 * x[:, 0], loss="mse", optimizer=optim.sgd(1e38), epochs=3, batch_size=8)
    chex.assert_trees_all_equal(r.params, p)
    assert np.isfinite(np.asarray(fnn.predict(reg, r.params, x))).all()


def test_an_overflow_in_the_last_step_of_an_epoch_is_reported_as_such():
    x = np.linspace(-1, 1, 8, dtype=np.float32)[:, None]
    reg = fnn.Sequential([fnn.Dense(1)])
    with pytest.warns(RuntimeWarning, match=r"at the end of epoch 1: .*first non-finite: update.*initial params"):
        r = fnn.fit(reg, reg.init(0, 1), x, 50 * x[:, 0], loss="mse", optimizer=optim.sgd(1e38), epochs=3,
                    batch_size=8)  # one step per epoch: its update overflows, no later step is refused
    assert r.stop_reason == "non_finite_loss" and r.divergence.step == -1 and r.divergence.epoch == 0
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(r.params))
