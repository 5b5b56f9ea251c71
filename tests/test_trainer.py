"""Trainer and TrainState: runs continue bitwise, states save, load and vmap, numbers compile
nothing, Ctrl-C stops a run cleanly, fit stays small."""
import inspect
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import _compiles
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import callbacks, engine, optim

MODEL = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
PARAMS = MODEL.init(jax.random.key(0), 2, dtype=jnp.float64)
_X, _Y = fnn.data.circles(jax.random.key(0), 40, noise=0.05)
X, Y = np.asarray(_X), np.asarray(_Y)


def _plateau_trainer():
    """Shuffled, with an EarlyStopping that never stops and a ReduceLROnPlateau that does cut the rate."""
    return fnn.Trainer(MODEL, loss="binary_crossentropy", optimizer=optim.adam(5e-2), batch_size=16,
                       callbacks=[callbacks.EarlyStopping(monitor="loss", patience=1000),
                                  callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=2e-2)])


TRAINER = _plateau_trainer()


def host(tree):
    """Every leaf as numpy; typed PRNG keys as their key data (so they compare as numbers)."""
    def one(a):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(a))
        return np.asarray(a)
    return jax.tree.map(one, tree)


def assert_states_equal(a, b):
    assert type(a) is type(b) is fnn.TrainState
    chex.assert_trees_all_equal(host(a), host(b))


def require_checkpoints(folder):
    """Skip unless fnn.save/fnn.load round-trip the leaves a TrainState holds (0-d int and float
    arrays, inf, a typed PRNG key): the checkpoint module is being rewritten."""
    probe = {"count": np.asarray(3, np.int32), "best": np.asarray(np.inf), "key": jax.random.key(1)}
    try:
        fnn.save(folder / "probe.fnn", probe, allow_non_finite=True)
        fnn.load(folder / "probe.fnn", like=probe)
    except fnn.FnnError as e:
        pytest.skip(f"fnn.save/fnn.load do not round-trip a TrainState's leaves yet: {e}")


def test_ten_plus_ten_epochs_equal_twenty_bitwise():
    start = TRAINER.init(PARAMS, key=3)
    half, first = TRAINER.run(start, X, Y, epochs=10)
    both, second = TRAINER.run(half, X, Y, epochs=10)
    whole, history = TRAINER.run(start, X, Y, epochs=20)
    assert_states_equal(both, whole)
    assert int(whole.epoch) == 20 and int(whole.step) == 0
    for name, values in history.history.items():
        assert first[name] + second[name] == values, name
    assert first.epoch + second.epoch == history.epoch == list(range(20))
    rates = history["learning_rate"]
    assert rates[0] > rates[9] > rates[-1]  # the plateau rule cut the rate on both sides of the break:
    # its counters and EarlyStopping's best travelled in the state, not restarted by the second run
    assert first.stop_reason == second.stop_reason == history.stop_reason == "epochs"


def test_run_counts_more_epochs_and_refuses_another_trainers_state():
    state, history = TRAINER.run(TRAINER.init(PARAMS, key=3), X, Y, epochs=2)
    assert int(state.epoch) == 2 and len(history["loss"]) == 2 and history.epoch == [0, 1]
    other = fnn.Trainer(MODEL, optimizer=optim.adam(5e-2), batch_size=16)  # only the TerminateOnNaN added
    with pytest.raises(fnn.FnnValueError, match=r"state\.callbacks does not fit"):
        other.run(state, X, Y, epochs=1)
    with pytest.raises(fnn.FnnTypeError, match="TrainState"):
        TRAINER.run(PARAMS, X, Y, epochs=1)
    momentum = fnn.Trainer(MODEL, optimizer=optim.momentum(0.1), batch_size=16, callbacks=TRAINER.callbacks)
    with pytest.raises(fnn.FnnValueError, match="opt_state does not fit"):
        momentum.run(state, X, Y, epochs=1)


def test_init_builds_the_state_on_the_host():
    with _compiles.counting() as counts:
        state = TRAINER.init(PARAMS, key=jax.random.key(5))
    assert counts["compile"] == 0
    assert int(state.epoch) == 0 and int(state.step) == 0
    assert isinstance(state.callbacks, tuple) and len(state.callbacks) == len(TRAINER.rules) == 3
    chex.assert_trees_all_equal(state.params, PARAMS)
    chex.assert_trees_all_equal(state.start_params, PARAMS)
    floats = [np.asarray(a) for a in jax.tree.leaves(host(state)) if np.asarray(a).dtype.kind == "f"]
    assert all(np.isfinite(a).all() for a in floats)  # "none yet" is a finite number: fnn.save takes the state as is


@pytest.mark.parametrize("options", [{}, {"allow_non_finite": True}], ids=["plain", "allow_non_finite"])
def test_a_saved_train_state_continues_bitwise(tmp_path, options):
    require_checkpoints(tmp_path)
    start = TRAINER.init(PARAMS, key=4)
    five, first = TRAINER.run(start, X, Y, epochs=5)
    whole, history = TRAINER.run(start, X, Y, epochs=10)
    path = tmp_path / "state.fnn"
    fnn.save(path, five, **options)  # plain: a TrainState saves as it is (its "none yet" numbers are finite)
    loaded = fnn.load(path, like=five)
    assert_states_equal(loaded, five)
    assert jnp.issubdtype(loaded.key.dtype, jax.dtypes.prng_key)
    rest, second = TRAINER.run(loaded, X, Y, epochs=5)
    assert_states_equal(rest, whole)
    assert first["loss"] + second["loss"] == history["loss"]


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_vmap_over_stacked_states_equals_separate_runs():
    states = [TRAINER.init(MODEL.init(jax.random.key(seed), 2, dtype=jnp.float64), key=10 + seed)
              for seed in range(4)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
    data = TRAINER.data(states[0], X, Y)
    out, record = jax.vmap(lambda s: TRAINER.train_epochs(s, data, 5))(stacked)
    np.testing.assert_array_equal(record.epochs, [5, 5, 5, 5])
    losses = []
    for i, state in enumerate(states):
        alone, history = TRAINER.run(state, X, Y, epochs=5)
        mine = host(jax.tree.map(lambda a, i=i: a[i], out))
        # vmap's batched kernels round differently from the unbatched ones: float64 keeps that far below 1e-10
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=0), mine, host(alone))
        for name, values in history.history.items():
            np.testing.assert_allclose(np.asarray(record.history[name])[i, :5], values, rtol=1e-10)
        losses.append(history["loss"][-1])
    assert len(set(losses)) == 4  # four different runs, not one run four times


def _numbers_trainer(patience=3, min_delta=0.0, factor=0.5, plateau=2, plateau_delta=1e-4, target=0.01, bad=0,
                     monitor="loss", rate=1e-2, extra=()):
    return fnn.Trainer(MODEL, optimizer=optim.adam(rate), batch_size=16, callbacks=[
        callbacks.TerminateOnNaN(max_bad_steps=bad),
        callbacks.EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta),
        callbacks.ReduceLROnPlateau(monitor="loss", factor=factor, patience=plateau, min_delta=plateau_delta),
        callbacks.TargetLoss(target), *extra])


def test_numbers_compile_nothing_kinds_and_static_options_do():
    first = _numbers_trainer()
    state = first.init(PARAMS, key=0)
    _, base = first.run(state, X, Y, epochs=4)
    changes = [dict(rate=0.3), dict(patience=0, min_delta=1.0), dict(factor=0.1, plateau=0, plateau_delta=1.0),
               dict(target=0.9), dict(bad=3)]
    with _compiles.counting() as counts:
        faster = state._replace(opt_state=optim.set_hyperparameters(state.opt_state, learning_rate=0.3))
        _, by_state = first.run(faster, X, Y, epochs=4)
        runs = []
        for change in changes:
            trainer = _numbers_trainer(**change)
            runs.append(trainer.run(trainer.init(PARAMS, key=0), X, Y, epochs=4)[1])
    assert counts == {"trace": 0, "compile": 0}
    # ... and the numbers were used
    assert by_state["loss"] == runs[0]["loss"] != base["loss"]
    assert runs[1].stop_reason == "early_stopping" and len(runs[1]["loss"]) == 2
    assert runs[2]["learning_rate"] == pytest.approx([1e-2, 1e-2, 1e-3, 1e-4], rel=1e-12)
    assert runs[3].stop_reason == "target_loss" and len(runs[3]["loss"]) == 1
    assert len(runs[4]["loss"]) == 4 and int(_numbers_trainer(bad=3).init(PARAMS).guard.max_bad_steps) == 3
    for change in (dict(monitor="accuracy"), dict(extra=[callbacks.Snapshots(2)])):
        trainer = _numbers_trainer(**change)
        with _compiles.counting() as counts:
            trainer.run(trainer.init(PARAMS, key=0), X, Y, epochs=2)
        assert counts["compile"] >= 1, change


def test_verbose_does_not_change_the_compiled_program(capsys):
    state = TRAINER.init(PARAMS, key=0)
    TRAINER.run(state, X, Y, epochs=3, verbose=0)
    with _compiles.counting() as counts:
        for verbose in (1, 2, True, "auto"):
            TRAINER.run(state, X, Y, epochs=3, verbose=verbose)
    assert counts == {"trace": 0, "compile": 0}
    out = capsys.readouterr().out
    assert out.count("epoch 3/3") == 3 and "compiled in" not in out  # "auto" is silent off a terminal


def test_fit_keeps_its_signature_small():
    parameters = inspect.signature(fnn.fit).parameters
    assert len(parameters) <= 19, list(parameters)  # metrics= too (Keras takes it in compile)
    for gone in ("target_loss", "patience", "min_delta", "restore_best", "max_bad_steps", "checkpoint",
                 "checkpoint_every", "resume", "opt_state", "record_every"):
        assert gone not in parameters


def test_a_continued_run_takes_the_passed_optimizers_numbers_keeps_its_moments_and_equal_histories():
    kw = dict(loss="binary_crossentropy", batch_size=16, key=3, verbose=0)
    first = fnn.fit(MODEL, PARAMS, X, Y, optimizer=optim.adam(1e-3), epochs=2, **kw)
    fast = fnn.fit(MODEL, PARAMS, X, Y, optimizer=optim.adam(1e-1), epochs=4, initial_state=first.state, **kw)
    same = fnn.fit(MODEL, PARAMS, X, Y, optimizer=optim.adam(1e-3), epochs=4, initial_state=first.state, **kw)
    whole = fnn.fit(MODEL, PARAMS, X, Y, optimizer=optim.adam(1e-3), epochs=4, **kw)
    assert float(optim.learning_rate(fast.state.opt_state)) == pytest.approx(0.1)
    assert not np.array_equal(host(fast.params)[0].w, host(same.params)[0].w)  # the new rate trained
    chex.assert_trees_all_equal(host(same.params), host(whole.params))  # moments and counts were kept
    assert int(fast.state.step) == int(same.state.step) and int(fast.state.epoch) == 4
    # validation on a state trained without it, and the reverse: every history list has one entry per epoch
    with_val = fnn.fit(MODEL, PARAMS, X, Y, optimizer=optim.adam(1e-3), epochs=4, validation_split=0.25,
                       initial_state=first.state, **kw)
    assert {len(v) for v in with_val.history.values()} == {2} and "val_loss" in with_val.history
    back = fnn.fit(MODEL, PARAMS, X, Y, optimizer=optim.adam(1e-3), epochs=6, initial_state=with_val.state, **kw)
    assert {len(v) for v in back.history.values()} == {2} and "val_loss" not in back.history
    with pytest.raises(fnn.FnnValueError, match="x has 3 features"):
        fnn.fit(MODEL, PARAMS, np.concatenate([X, X[:, :1]], 1), Y, epochs=4, initial_state=first.state, **kw)


def test_every_module_is_small_documented_and_declares_its_names():
    import ast
    import pathlib

    root = pathlib.Path(fnn.__file__).parent
    for path in sorted(root.glob("*.py")):
        text = path.read_text()
        lines, tree = text.count("\n"), ast.parse(text)
        assert lines <= (400 if path.name == "checkpoint.py" else 500), (path.name, lines)
        assert ast.get_docstring(tree), f"{path.name} has no opening docstring saying what it owns"
        if not path.name.startswith("_"):
            declared = [n for n in tree.body if isinstance(n, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
            assert declared, f"{path.name} declares no __all__"
    for name in fnn.__all__:
        assert hasattr(fnn, name), name


# --------------------------------------------------------------------------- Ctrl-C
WORKER = r"""
import json, sys, warnings
import jax
import numpy as np
import fnn

model = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
params = model.init(jax.random.key(0), 2)
short = [np.asarray(a) for a in fnn.data.circles(jax.random.key(0), 64, noise=0.05)]  # ~0.1 ms an epoch
long = [np.asarray(a) for a in fnn.data.circles(jax.random.key(1), 2**20, noise=0.05)]  # batch 1: seconds an epoch
sizes = {"short": 32, "long": 1}
fnn.fit(model, params, *short, epochs=1, batch_size=32, verbose=0)  # both programs compiled before "ready"
trainer = fnn.Trainer(model, batch_size=1)  # the Trainer fit builds: one step of it compiles the same program
state = trainer.init(params)
jax.block_until_ready(trainer.train_epochs(state, trainer.data(state, *long), 1, max_steps=1))
for line in sys.stdin:
    name, verbose, *mode = line.split()
    x, y = short if name == "short" else long
    print("ready", flush=True)
    if mode == ["uncaught"]:  # a KeyboardInterrupt ends the process
        fnn.fit(model, params, x, y, epochs=10**6, batch_size=sizes[name], verbose=int(verbose))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = fnn.fit(model, params, x, y, epochs=10**6, batch_size=sizes[name], verbose=int(verbose))
    except KeyboardInterrupt:
        print(json.dumps({"raised": "KeyboardInterrupt"}), flush=True)
        continue
    finite = all(bool(np.isfinite(np.asarray(leaf)).all()) for leaf in jax.tree.leaves(r.params))
    print(json.dumps(dict(stop_reason=r.stop_reason, epochs_run=r.epochs_run, losses=len(r.history["loss"]),
                          finite=finite, warnings=[str(w.message) for w in caught])), flush=True)
"""


class Worker:
    """The WORKER process, its stdout lines read into a queue (so that a read can time out)."""

    def __init__(self):
        env = dict(os.environ, FNN_CACHE="off")
        root = os.path.dirname(os.path.dirname(os.path.abspath(fnn.__file__)))
        self.stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 (kept for errors(); not a pipe nobody reads)
        self.process = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, text=True, env=env, cwd=root)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-3000:]

    def readline(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            self.process.kill()
            pytest.fail(f"the worker printed nothing for {timeout} s; stderr: {self.errors()}")

    def start(self, command: str, signals: int) -> float:
        """Start a fit of 10**6 epochs, SIGINT it `signals` times 0.1 s apart about 2 s in: -> when the last went."""
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.readline(timeout=120)  # the worker starts and compiles first
        assert line == "ready\n", (line, self.errors())
        time.sleep(2.0)
        for i in range(signals):
            if i:
                time.sleep(0.1)
            self.process.send_signal(signal.SIGINT)
        return time.perf_counter()

    def close(self) -> int:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    assert w.close() == 0, w.errors()


def _interrupt(worker, command: str, signals: int):
    """The worker's report on an interrupted fit, the seconds from the last signal to it, the lines printed before."""
    sent = worker.start(command, signals)
    printed = []
    while True:
        line = worker.readline(timeout=30)
        if line.startswith("{"):
            return json.loads(line), time.perf_counter() - sent, printed
        printed.append(line)


@pytest.mark.slow  # fresh processes or many examples: `make test-slow`
@pytest.mark.parametrize("verbose", [0, 1])
def test_a_first_ctrl_c_ends_the_run_and_returns_what_was_trained(worker, verbose):
    report, seconds, printed = _interrupt(worker, f"short {verbose}", signals=1)
    assert report.get("stop_reason") == "interrupted", report
    assert seconds < 1.5
    assert report["losses"] == report["epochs_run"] > 0 and report["finite"]
    assert any("interrupted" in w for w in report["warnings"]), report["warnings"]
    if verbose:  # not a terminal: a line every 10**4 epochs, the first one included
        assert printed and printed[0].startswith("epoch 1/1000000 - loss ")


@pytest.mark.slow  # fresh processes or many examples: `make test-slow`
def test_a_second_ctrl_c_raises_keyboard_interrupt(worker):
    report, seconds, _ = _interrupt(worker, "long 0", signals=2)
    assert report == {"raised": "KeyboardInterrupt"}  # at once, not at the end of the epoch under way
    assert seconds < 1.5
    # the worker caught it and serves on; the fixture checks that it exits normally (rc 0) at the end


@pytest.mark.slow  # fresh processes or many examples: `make test-slow`
def test_an_uncaught_second_ctrl_c_ends_python_as_an_interrupt_not_a_crash():
    worker = Worker()
    try:
        sent = worker.start("long 0 uncaught", signals=2)
        raised = None  # seconds from the last signal to the traceback's last line
        while worker.process.poll() is None and time.perf_counter() - sent < 30:
            if raised is None and worker.errors().rstrip().endswith("KeyboardInterrupt"):
                raised = time.perf_counter() - sent
            time.sleep(0.01)
        rc = worker.process.wait(timeout=1)
        ended = time.perf_counter() - sent
        raised = ended if raised is None else raised  # ended between two looks
    finally:
        worker.close()
    errors = worker.errors()
    # Raised at once; the interpreter's teardown after it (0.6-0.9 s, more on a loaded machine) is not the
    # run's: an epoch of this run takes over 10 s, so an exit within 8 s did not wait for the epoch to end.
    assert raised < 1.5, raised
    assert ended < 8, ended
    # Python (3.8+) ends on an uncaught KeyboardInterrupt by re-raising SIGINT at exit, as shells expect:
    # rc -2 here (130 in a shell), with the traceback printed. A crash would be another signal (SEGV, ABRT).
    assert rc == -signal.SIGINT, (rc, errors)
    assert errors.rstrip().endswith("KeyboardInterrupt") and "trainer.py" in errors, errors


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_the_engine_chunk_bounds_one_call():
    state = TRAINER.init(PARAMS, key=0)
    out, record = TRAINER.train_epochs(state, TRAINER.data(state, X, Y), engine.CHUNK + 10)
    assert int(record.epochs) == engine.CHUNK == int(out.epoch)
    assert all(np.asarray(v).shape == (engine.CHUNK,) for v in record.history.values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, record = TRAINER.train_epochs(state, TRAINER.data(state, X, Y), 2, max_steps=3)
    assert int(record.epochs) == 1 and int(record.steps) == 3  # 40 rows in batches of 16: 3 steps an epoch
