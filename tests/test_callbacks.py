"""Callbacks: the compiled rules follow Keras' semantics (checked against Keras' rules replayed in
Python), a user's rule stops a run with its reason, host callbacks see every epoch in order."""
import csv
import math

import _compiles
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import callbacks, optim

MODEL = fnn.Sequential([fnn.Dense(4, activation="tanh"), fnn.Dense(1, activation="sigmoid")])
PARAMS = MODEL.init(jax.random.key(0), 2, dtype=jnp.float64)
_X, _Y = fnn.data.circles(jax.random.key(0), 40, noise=0.05)
X, Y = np.asarray(_X), np.asarray(_Y)


def require_checkpoints(folder):
    """Skip unless fnn.save/fnn.load round-trip the leaves a TrainState holds (0-d int and float
    arrays, inf, a typed PRNG key): the checkpoint module is being rewritten."""
    probe = {"count": np.asarray(3, np.int32), "best": np.asarray(np.inf), "key": jax.random.key(1)}
    try:
        fnn.save(folder / "probe.fnn", probe, allow_non_finite=True)
        fnn.load(folder / "probe.fnn", like=probe)
    except fnn.FnnError as e:
        pytest.skip(f"fnn.save/fnn.load do not round-trip a TrainState's leaves yet: {e}")


def host(tree):
    return jax.tree.map(lambda a: np.asarray(jax.random.key_data(a)) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key)
                        else np.asarray(a), tree)


def at(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


# --------------------------------------------------------------------------- Keras' rules, in Python
def keras_early_stopping(values, patience=0, min_delta=0.0, baseline=None, start_from_epoch=0, mode="min"):
    """Keras 3's EarlyStopping.on_epoch_end replayed over `values`: -> (epochs run, best epoch or None)."""
    def improves(current, reference):
        return current + min_delta < reference if mode == "min" else current - min_delta > reference

    best, wait, best_epoch = (math.inf if mode == "min" else -math.inf), 0, None
    for epoch, current in enumerate(values):
        if epoch < start_from_epoch:
            continue
        wait += 1
        if improves(current, best):
            best, best_epoch = current, epoch
            if baseline is None or improves(current, baseline):
                wait = 0
            continue
        if wait >= patience and epoch > 0:
            return epoch + 1, best_epoch
    return len(values), best_epoch


def keras_plateau_rates(values, rate, factor, patience, min_delta=1e-4, min_lr=0.0, cooldown=0):
    """Keras 3's ReduceLROnPlateau replayed over `values`: the rate each epoch trained with."""
    best, wait, cooldown_counter, rates = math.inf, 0, 0, []
    for current in values:
        rates.append(rate)
        if cooldown_counter > 0:
            cooldown_counter -= 1
            wait = 0
        if current < best - min_delta:
            best, wait = current, 0
        elif cooldown_counter <= 0:
            wait += 1
            if wait >= patience and rate > min_lr:
                rate = max(rate * factor, min_lr)
                cooldown_counter, wait = cooldown, 0
    return rates


def fnn_early_stopping(rule, values, name="loss"):
    """rule.update called on each value in turn, as the compiled run does: -> (epochs run, best epoch or None)."""
    state = rule.init(PARAMS)
    for epoch, value in enumerate(values):
        state, stop = rule.update(state, jnp.int32(epoch), {name: jnp.float64(value)}, PARAMS)
        if bool(stop):
            break
    best = int(state.best_epoch)
    return epoch + 1, None if best < 0 else best


DOWN_UP = [1.0, 0.9, 0.95, 0.91, 0.89, 0.9, 0.9, 0.88, 0.95, 0.97, 0.99, 1.0]
RNG_VALUES = list(np.random.RandomState(0).uniform(0.5, 1.0, 30))


@pytest.mark.parametrize("values", [DOWN_UP, RNG_VALUES, [0.5, float("nan"), 0.6, 0.4, 0.45, 0.5, 0.3, 0.7]],
                         ids=["down_up", "random", "nan"])
@pytest.mark.parametrize("options", [dict(patience=0), dict(patience=2), dict(patience=2, min_delta=0.05),
                                     dict(patience=1, baseline=0.85), dict(patience=3, baseline=0.1),
                                     dict(patience=1, start_from_epoch=4), dict(patience=5, min_delta=0.02,
                                                                                start_from_epoch=2)],
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_early_stopping_matches_keras(values, options):
    assert fnn_early_stopping(callbacks.EarlyStopping(monitor="loss", **options), values) == \
        keras_early_stopping(values, **options)


def test_early_stopping_mode_max_matches_keras():
    values = [0.5, 0.6, 0.62, 0.61, 0.7, 0.69, 0.69, 0.68]
    for options in (dict(patience=1), dict(patience=2, min_delta=0.05), dict(patience=0, baseline=0.65)):
        rule = callbacks.EarlyStopping(monitor="accuracy", **options)  # "auto": larger accuracy is better
        assert fnn_early_stopping(rule, values, "accuracy") == keras_early_stopping(values, mode="max", **options)
        rule = callbacks.EarlyStopping(monitor="loss", mode="max", **options)
        assert fnn_early_stopping(rule, values) == keras_early_stopping(values, mode="max", **options)


def test_early_stopping_patience_zero_stops_at_the_first_epoch_without_improvement():
    assert fnn_early_stopping(callbacks.EarlyStopping(monitor="loss"), [1.0, 0.9, 0.9, 0.8]) == (3, 1)
    assert fnn_early_stopping(callbacks.EarlyStopping(monitor="loss"), [1.0, 1.0]) == (2, 0)  # never at epoch 0


VAL = dict(validation_data=(X[20:], Y[20:]), optimizer=optim.adam(0.03), batch_size=8, verbose=0)


@pytest.mark.slow  # seconds of compiling: make test-slow runs it
def test_early_stopping_restores_the_best_epochs_params():
    """val_loss falls, then rises: the run stops `patience` epochs after the best and returns its params."""
    rule = callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    r = fnn.fit(MODEL, PARAMS, X[:20], Y[:20], epochs=600, callbacks=[rule, callbacks.Snapshots(1)], **VAL)
    val = r.history["val_loss"]
    assert r.stop_reason == "early_stopping"
    assert r.best_epoch == int(np.argmin(val)) > 0 and r.epochs_run == r.best_epoch + 4
    assert r.snapshot_epochs == tuple(range(r.epochs_run + 1))
    chex.assert_trees_all_equal(r.params, at(r.snapshots, r.best_epoch + 1))  # the params after the best epoch
    np.testing.assert_allclose(fnn.evaluate(MODEL, r.params, X[20:], Y[20:])["loss"], min(val), rtol=1e-12)
    # a run that ends before the rule stops it returns the best epoch's params too (Keras 3), while its
    # state holds the last epoch's, to continue from
    short = fnn.fit(MODEL, PARAMS, X[:20], Y[:20], epochs=r.best_epoch + 3, callbacks=[rule, callbacks.Snapshots(1)],
                    **VAL)
    assert short.stop_reason == "epochs"
    chex.assert_trees_all_equal(short.params, at(r.snapshots, r.best_epoch + 1))
    chex.assert_trees_all_equal(short.state.params, at(r.snapshots, r.best_epoch + 3))
    # restore_best_weights=False (Keras' default) returns the last epoch's params
    plain = fnn.fit(MODEL, PARAMS, X[:20], Y[:20], epochs=600, callbacks=[callbacks.EarlyStopping(patience=3),
                                                                            callbacks.Snapshots(1)], **VAL)
    assert plain.epochs_run == r.epochs_run
    chex.assert_trees_all_equal(plain.params, at(plain.snapshots, plain.epochs_run))


def test_monitoring_validation_figures_without_validation_data_is_refused():
    for rule in (callbacks.EarlyStopping(), callbacks.ReduceLROnPlateau(), callbacks.TargetLoss(0.1, "val_loss"),
                 callbacks.EarlyStopping(monitor="val_accuracy")):
        with _compiles.counting() as counts, pytest.raises(fnn.FnnValueError,
                                                           match="no validation data: pass validation_data="):
            fnn.fit(MODEL, PARAMS, X, Y, epochs=2, callbacks=[rule])
        assert counts["compile"] == 0
    with pytest.raises(fnn.FnnValueError, match=r"monitor 'loss'\).*it logs \['loss', 'accuracy'\]"):
        fnn.fit(MODEL, PARAMS, X, Y, epochs=2, callbacks=[callbacks.EarlyStopping()])
    with pytest.raises(fnn.FnnValueError, match="'mse'"):
        fnn.fit(MODEL, PARAMS, X, Y, epochs=2, callbacks=[callbacks.EarlyStopping(monitor="mse")])


# --------------------------------------------------------------------------- ReduceLROnPlateau
PLATEAU = dict(monitor="loss", factor=0.5, patience=2, cooldown=2, min_delta=1e-2, min_lr=2e-4)


def test_reduce_lr_on_plateau_lowers_the_rate_inside_the_run():
    """sgd(1e-3) barely moves the loss, never by min_delta: the rate halves every patience + cooldown
    epochs down to min_lr, as Keras' rule replayed on the same losses says; the epochs did train with it."""
    trainer = fnn.Trainer(MODEL, optimizer=optim.sgd(1e-3), batch_size=16,
                          callbacks=[callbacks.ReduceLROnPlateau(**PLATEAU)])
    start = trainer.init(PARAMS, key=1)
    end, history = trainer.run(start, X, Y, epochs=14)
    rates = history["learning_rate"]
    assert len(rates) == 14
    assert rates == pytest.approx(keras_plateau_rates(history["loss"], 1e-3, 0.5, 2, 1e-2, 2e-4, 2), rel=1e-12)
    assert rates[:4] == [1e-3, 1e-3, 1e-3, 5e-4] and min(rates) == 2e-4 == rates[-1]
    assert end.opt_state.hyper["learning_rate"]["value"] == 2e-4
    # the same epochs, one call each, with the rates set by hand (and the rule's patience out of reach)
    state = start._replace(callbacks=(start.callbacks[0], start.callbacks[1]._replace(patience=np.int32(10**6))))
    for rate in rates:
        state = state._replace(opt_state=optim.set_hyperparameters(state.opt_state, learning_rate=rate))
        state, _ = trainer.run(state, X, Y, epochs=1)
    chex.assert_trees_all_equal(state.params, end.params)


@pytest.mark.parametrize("options", [dict(patience=0), dict(patience=1, cooldown=1), dict(patience=1, cooldown=3),
                                     dict(patience=2, min_delta=0.05, min_lr=0.03), dict(patience=1, factor=0.9)])
def test_reduce_lr_on_plateau_matches_keras(options):
    """The rule's on_epoch called on a made-up sequence, as the compiled run does."""
    values = DOWN_UP + RNG_VALUES
    options = dict(dict(factor=0.5, min_delta=0.0), **options)
    rule = callbacks.ReduceLROnPlateau(monitor="loss", **options)
    opt_state = optim.sgd(0.1).init(PARAMS)
    state, rates = rule.init(PARAMS), []
    for epoch, value in enumerate(values):
        view = fnn.engine.EpochView(jnp.int32(epoch), {"loss": jnp.float64(value)}, PARAMS, PARAMS, opt_state,
                                    jnp.zeros((), bool))
        state, stop, view = rule.on_epoch(state, view)
        assert not bool(stop)
        rates.append(float(view.logs["learning_rate"]))
        opt_state = view.opt_state
    assert rates == pytest.approx(keras_plateau_rates(values, 0.1, **options), rel=1e-12)
    assert min(rates) < 0.1


def test_reduce_lr_on_plateau_refuses_a_schedule():
    with pytest.raises(fnn.FnnValueError, match="schedule"):
        fnn.fit(MODEL, PARAMS, X, Y, epochs=1, optimizer=optim.adam(optim.cosine_decay(0.1, 10)),
                callbacks=[callbacks.ReduceLROnPlateau(monitor="loss")])


# --------------------------------------------------------------------------- a user's rule
class StopAtAccuracy(callbacks.Rule):
    """The module docstring's example, as written there."""

    reason = "accuracy_reached"
    static = ()  # no attribute is structure: update reads its number from the state

    def __init__(self, target=0.99):
        self.target = target

    def init(self, params):
        return jnp.asarray(self.target)

    def update(self, state, epoch, logs, params):
        return state, logs["accuracy"] >= state


def test_a_user_rule_stops_the_run_with_its_reason():
    r = fnn.fit(MODEL, PARAMS, X, Y, epochs=200, optimizer=optim.adam(0.1), callbacks=[StopAtAccuracy(0.9)],
                verbose=0)
    assert r.stop_reason == "accuracy_reached"
    accuracy = r.history["accuracy"]
    assert accuracy[-1] >= 0.9 and all(a < 0.9 for a in accuracy[:-1]) and r.epochs_run == len(accuracy) < 200
    assert float(r.state.callbacks[1]) == 0.9  # after the TerminateOnNaN fit adds


def test_a_user_rules_numbers_in_its_state_compile_nothing():
    """The docstring's promise: "Keep its numbers in the state and they stay runtime values"."""
    fnn.fit(MODEL, PARAMS, X, Y, epochs=3, optimizer=optim.adam(0.1), callbacks=[StopAtAccuracy(0.9)])
    with _compiles.counting() as counts:
        r = fnn.fit(MODEL, PARAMS, X, Y, epochs=3, optimizer=optim.adam(0.1), callbacks=[StopAtAccuracy(0.1)])
    assert r.stop_reason == "accuracy_reached" and r.epochs_run == 1
    assert counts == {"trace": 0, "compile": 0}


def test_rules_are_equal_when_their_kinds_and_static_options_are():
    assert callbacks.EarlyStopping(patience=1, min_delta=0.1) == callbacks.EarlyStopping(patience=9, baseline=2.0)
    assert hash(callbacks.EarlyStopping(patience=1)) == hash(callbacks.EarlyStopping(patience=9))
    assert callbacks.EarlyStopping() != callbacks.EarlyStopping(monitor="loss")
    assert callbacks.EarlyStopping() != callbacks.EarlyStopping(restore_best_weights=True)
    assert callbacks.TerminateOnNaN(0) == callbacks.TerminateOnNaN(5)
    assert callbacks.ReduceLROnPlateau(factor=0.5) == callbacks.ReduceLROnPlateau(factor=0.1, cooldown=3)
    assert callbacks.TargetLoss(0.1) == callbacks.TargetLoss(0.5) != callbacks.TargetLoss(0.1, "val_loss")
    assert callbacks.Snapshots(2) != callbacks.Snapshots(3)
    assert callbacks.EarlyStopping() != callbacks.ReduceLROnPlateau()
    assert StopAtAccuracy(0.9) == StopAtAccuracy(0.5)  # static = (): its number is in its state

    class Baked(callbacks.Rule):  # reads its number from self: each value is another program
        def __init__(self, target):
            self.target = target

        def update(self, state, epoch, logs, params):
            return state, logs["accuracy"] >= self.target

    assert Baked(0.9) != Baked(0.5) and Baked(0.9) == Baked(0.9)


# --------------------------------------------------------------------------- TerminateOnNaN, TargetLoss, StepLoss
def test_terminate_on_nan_stops_a_diverging_run_with_finite_params():
    reg = fnn.Sequential([fnn.Dense(8, activation="relu"), fnn.Dense(1)])
    p = reg.init(jax.random.key(0), 2, dtype=jnp.float64)
    with pytest.warns(RuntimeWarning, match=r"training stopped at epoch \d+.*smaller learning rate"):
        r = fnn.fit(reg, p, X, 1e3 * Y, optimizer=optim.sgd(10.0), epochs=50, batch_size=8, loss="mse",
                    callbacks=[callbacks.Snapshots(1)])
    assert r.stop_reason == "non_finite_loss" and r.epochs_run < 50
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(r.params))
    info = r.divergence
    assert info.epoch == r.epochs_run - 1
    assert info.leaf == "loss" or info.leaf.startswith("[") or info.leaf.startswith("update")
    assert info.step >= 0 or info.leaf.startswith("update")
    # the fallback: the params the epoch with the lowest finite training loss started from
    nan_state = r.state.callbacks[0]
    chex.assert_trees_all_equal(r.params, at(r.snapshots, int(nan_state.best_epoch)))


def test_terminate_on_nan_max_bad_steps_skips_steps_and_counts_them():
    reg = fnn.Sequential([fnn.Dense(1)])
    p = reg.init(jax.random.key(0), 2, dtype=jnp.float64)
    x = X.astype(np.float64)
    x[3] = 1e200  # its batch's loss overflows, every epoch
    with pytest.warns(RuntimeWarning, match="non-finite"):
        stop = fnn.fit(reg, p, x, Y, optimizer=optim.sgd(0.01), epochs=3, batch_size=8, shuffle=False, loss="mse")
    assert stop.stop_reason == "non_finite_loss" and stop.divergence.step == 0 and stop.epochs_run == 1
    with pytest.warns(RuntimeWarning, match=r"3 step\(s\) had a non-finite loss"):
        skip = fnn.fit(reg, p, x, Y, optimizer=optim.sgd(0.01), epochs=3, batch_size=8, shuffle=False, loss="mse",
                       callbacks=[callbacks.TerminateOnNaN(max_bad_steps=1)])
    assert skip.stop_reason == "epochs" and skip.rejected_steps == 3 and skip.first_rejected == (0, 0)
    assert np.isfinite(skip.history["loss"]).all()


def test_target_loss_monitors_what_it_is_told():
    r = fnn.fit(MODEL, PARAMS, X, Y, epochs=50, optimizer=optim.adam(0.1), validation_data=(X, Y),
                callbacks=[callbacks.TargetLoss(0.6, monitor="val_loss")])
    assert r.stop_reason == "target_loss" and r.history["val_loss"][-1] <= 0.6
    assert all(v > 0.6 for v in r.history["val_loss"][:-1])


def test_step_loss_records_every_step_before_its_update():
    r = fnn.fit(MODEL, PARAMS, X, Y, epochs=3, batch_size=16, shuffle=False, optimizer=optim.sgd(0.5),
                callbacks=[callbacks.StepLoss()])
    steps = r.history["step_loss"]
    assert len(steps) == 3 and all(np.shape(s) == (3,) for s in steps)  # 40 rows: batches of 16, 16, 8
    for per_step, loss in zip(steps, r.history["loss"]):
        np.testing.assert_allclose(np.dot(per_step, [16, 16, 8]) / 40, loss, rtol=1e-12)
    objective = fnn.objective(MODEL, "binary_cross_entropy")
    np.testing.assert_allclose(steps[0][0], objective(PARAMS, X[:16], Y[:16]), rtol=1e-12)


# --------------------------------------------------------------------------- host callbacks
def test_lambda_callback_sees_every_epoch_in_order():
    seen, begun, ended = [], [], []
    hook = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, logs)),
                                    on_train_begin=begun.append, on_train_end=ended.append)
    r = fnn.fit(MODEL, PARAMS, X, Y, epochs=fnn.engine.CHUNK + 44, callbacks=[hook])  # several compiled calls
    assert [epoch for epoch, _ in seen] == list(range(fnn.engine.CHUNK + 44))
    assert all(type(v) is float for _, logs in seen for v in logs.values())
    for name, values in r.history.items():
        assert [logs[name] for _, logs in seen] == values
    assert begun == [{}] and ended == [{name: values[-1] for name, values in r.history.items()}]


def test_lambda_callback_refuses_batch_hooks():
    with pytest.raises(fnn.FnnValueError, match=r"on_batch_end.*StepLoss"):
        callbacks.LambdaCallback(on_batch_end=print)
    with pytest.raises(fnn.FnnTypeError, match="on_epoch_end must be callable"):
        callbacks.LambdaCallback(on_epoch_end=3)


def test_csv_logger_writes_a_header_and_a_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    r = fnn.fit(MODEL, PARAMS, X, Y, epochs=5, validation_data=(X, Y), callbacks=[callbacks.CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [int(row[0]) for row in rows[1:]] == list(range(5))
    for i, name in enumerate(rows[0][1:], start=1):
        assert [float(row[i]) for row in rows[1:]] == r.history[name]
    fnn.fit(MODEL, PARAMS, X, Y, epochs=2, validation_data=(X, Y), callbacks=[callbacks.CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        assert len(list(csv.reader(f))) == 1 + 5 + 2  # appended rows, no second header


def test_model_checkpoint_every_k_epochs_and_resuming_from_one(tmp_path):
    require_checkpoints(tmp_path)
    kw = dict(optimizer=optim.adam(0.01), batch_size=16, key=3,
              callbacks=[callbacks.EarlyStopping(monitor="loss", patience=100)])
    whole = fnn.fit(MODEL, PARAMS, X, Y, epochs=10, **kw)
    saver = callbacks.ModelCheckpoint(tmp_path / "run-{epoch:02d}.fnn", every=3)
    cut = fnn.fit(MODEL, PARAMS, X, Y, epochs=7, **dict(kw, callbacks=kw["callbacks"] + [saver]))
    assert sorted(p.name for p in tmp_path.glob("run-*.fnn")) == ["run-03.fnn", "run-06.fnn", "run-07.fnn"]
    assert cut.epochs_run == 7  # the end of the run is saved too
    rest = fnn.fit(MODEL, PARAMS, X, Y, epochs=10, initial_state=tmp_path / "run-06.fnn", **kw)
    assert rest.epochs_run == 10 and rest.history["loss"] == whole.history["loss"][6:]
    chex.assert_trees_all_equal(host(rest.state), host(whole.state))
    chex.assert_trees_all_equal(rest.params, whole.params)


def test_callbacks_refuse_bad_arguments():
    cases = [
        (lambda: callbacks.EarlyStopping(patience=-1), "patience"),
        (lambda: callbacks.EarlyStopping(patience=1.5), "patience"),
        (lambda: callbacks.EarlyStopping(monitor=""), "monitor"),
        (lambda: callbacks.EarlyStopping(mode="up"), "mode"),
        (lambda: callbacks.EarlyStopping(restore_best_weights=1), "restore_best_weights"),
        (lambda: callbacks.EarlyStopping(min_delta=float("nan")), "min_delta"),
        (lambda: callbacks.ReduceLROnPlateau(factor=1.0), "factor"),
        (lambda: callbacks.ReduceLROnPlateau(factor=0.0), "factor"),
        (lambda: callbacks.ReduceLROnPlateau(min_lr=-1.0), "min_lr"),
        (lambda: callbacks.ReduceLROnPlateau(cooldown=-1), "cooldown"),
        (lambda: callbacks.TargetLoss(float("nan")), "target loss"),
        (lambda: callbacks.TargetLoss("0.1"), "target loss"),
        (lambda: callbacks.TerminateOnNaN(max_bad_steps=-1), "max_bad_steps"),
        (lambda: callbacks.Snapshots(every=0), "every"),
        (lambda: callbacks.ModelCheckpoint(3), "path"),
        (lambda: callbacks.ModelCheckpoint("a.fnn", every=0), "every"),
        (lambda: callbacks.CSVLogger(None), "filename"),
        (lambda: fnn.fit(MODEL, PARAMS, X, Y, callbacks=[print]), r"callbacks\[0\]"),
        (lambda: fnn.fit(MODEL, PARAMS, X, Y, callbacks="EarlyStopping"), "callbacks must be a list"),
    ]
    with _compiles.counting() as counts:
        for make, match in cases:
            with pytest.raises(fnn.FnnError, match=match):
                make()
    assert counts["compile"] == 0
